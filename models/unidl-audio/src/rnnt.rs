//! # RNN-T (Graves 2012, "Sequence Transduction with Recurrent Neural Networks", arXiv:1211.3711)
//!
//! A transducer scores every alignment of `T` acoustic frames and `U`
//! labels: the **transcriber** encodes the frames, the **predictor** (a
//! label language model) encodes the labels emitted so far, the **joiner**
//! combines each frame with each label prefix into a distribution over the
//! labels and the blank (`[B, T, U + 1, V]`).
//!
//! Laid out as `torchaudio.models.RNNT` (2.9.0): the predictor is
//! torchaudio's `_Predictor` (embedding → layer norm → `_CustomLSTM` layers,
//! optionally layer-normalised, with dropout → linear → layer norm), the
//! joiner its `_Joiner` (`linear(act(source + target))`, ReLU or tanh). The
//! transcriber is the Conformer one of torchaudio's former prototype
//! `conformer_rnnt_model` (`_ConformerEncoder`: 4× time reduction by
//! stacking frames → linear → Conformer blocks → linear → layer norm),
//! or, with `transcriber = "lstm"`, the same with `_CustomLSTM` layers in
//! place of the blocks. The defaults are the prototype's
//! `conformer_rnnt_base` (but `vocab_size` is yours).
//!
//! Decoding ([`Rnnt::decode`]): greedy (the best label per step, up to
//! [`MAX_SYMBOLS_PER_FRAME`] labels a frame before time is forced on), or a
//! time-synchronous beam search (Saon et al. 2020) that keeps `width` label
//! sequences, extends each by up to [`BEAM_SYMBOLS_PER_FRAME`] labels at a
//! frame, closes every frame with a blank and merges hypotheses that reach
//! the same sequence (log-sum of their probabilities).
//!
//! Parameter names follow torchaudio's (`transcriber.{input_linear,
//! conformer, lstm_layers, output_linear, layer_norm}`,
//! `predictor.{embedding, input_layer_norm, lstm_layers.{i}.{x2g, p2g,
//! g_norm, c_norm}, linear, output_layer_norm}`, `joiner.linear`); the
//! Conformer blocks are [`crate::Conformer`]'s (mapping in
//! [`crate::weights`]).

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::activation::{log_softmax, relu, sigmoid, tanh};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};

use crate::conformer::{Conformer, ConformerConfig, ConvNorm};
use crate::{AudioError, Result};

/// Labels the greedy decoder emits at one frame before it moves on.
pub const MAX_SYMBOLS_PER_FRAME: usize = 10;

/// Labels the beam search adds to a hypothesis at one frame (as many as
/// greedy: a trained transducer over characters emits a short word in one
/// or two frames, and a lower cap makes the beam pay for splitting it).
pub const BEAM_SYMBOLS_PER_FRAME: usize = MAX_SYMBOLS_PER_FRAME;

/// What encodes the frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriberKind {
    /// Conformer blocks (torchaudio's).
    #[default]
    Conformer,
    /// `_CustomLSTM` layers.
    Lstm,
}

/// The joiner's activation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinerActivation {
    /// ReLU (torchaudio's default).
    Relu,
    /// tanh (`conformer_rnnt_base`).
    #[default]
    Tanh,
}

/// RNN-T configuration; the defaults are torchaudio's `conformer_rnnt_base`.
///
/// ```toml
/// input_dim = 80             # log-mel bins
/// vocab_size = 29            # labels and the blank
/// encoding_dim = 1024
/// time_reduction_stride = 4
/// transcriber = "conformer"  # or "lstm"
/// d_model = 256              # the transcriber's width
/// ffn_dim = 1024
/// num_layers = 16
/// num_heads = 4
/// depthwise_conv_kernel_size = 31
/// symbol_embedding_dim = 256
/// num_lstm_layers = 2
/// lstm_hidden_dim = 512
/// joiner_activation = "tanh"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RnntConfig {
    /// Features per input frame.
    pub input_dim: usize,
    /// Labels of the joiner, the blank included.
    pub vocab_size: usize,
    /// Width where transcriber and predictor meet.
    #[serde(default = "encoding_dim")]
    pub encoding_dim: usize,
    /// Frames stacked into one (the transcriber's time reduction).
    #[serde(default = "stride")]
    pub time_reduction_stride: usize,
    /// Conformer blocks or LSTM layers.
    #[serde(default)]
    pub transcriber: TranscriberKind,
    /// The transcriber's width.
    #[serde(default = "d_model")]
    pub d_model: usize,
    /// Conformer: feed-forward width.
    #[serde(default = "ffn_dim")]
    pub ffn_dim: usize,
    /// Transcriber layers.
    #[serde(default = "num_layers")]
    pub num_layers: usize,
    /// Conformer: attention heads.
    #[serde(default = "num_heads")]
    pub num_heads: usize,
    /// Conformer: depthwise kernel (odd).
    #[serde(default = "kernel")]
    pub depthwise_conv_kernel_size: usize,
    /// Conformer: batch or group norm in the convolution module (the
    /// prototype's: group).
    #[serde(default = "group")]
    pub conv_norm: ConvNorm,
    /// Conformer: convolution before attention (the prototype's: yes).
    #[serde(default = "yes")]
    pub convolution_first: bool,
    /// Transcriber dropout.
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// Predictor: label embedding width.
    #[serde(default = "symbol_embedding_dim")]
    pub symbol_embedding_dim: usize,
    /// Predictor: LSTM layers.
    #[serde(default = "num_lstm_layers")]
    pub num_lstm_layers: usize,
    /// Predictor: LSTM width.
    #[serde(default = "lstm_hidden_dim")]
    pub lstm_hidden_dim: usize,
    /// Layer norms inside every LSTM (the predictor's; the transcriber's too
    /// when it is one).
    #[serde(default = "yes")]
    pub lstm_layer_norm: bool,
    /// Their epsilon.
    #[serde(default = "lstm_eps")]
    pub lstm_layer_norm_epsilon: f64,
    /// Predictor dropout after each LSTM layer.
    #[serde(default = "lstm_dropout")]
    pub lstm_dropout: f64,
    /// The joiner's activation.
    #[serde(default)]
    pub joiner_activation: JoinerActivation,
}

fn encoding_dim() -> usize {
    1024
}
fn stride() -> usize {
    4
}
fn d_model() -> usize {
    256
}
fn ffn_dim() -> usize {
    1024
}
fn num_layers() -> usize {
    16
}
fn num_heads() -> usize {
    4
}
fn kernel() -> usize {
    31
}
fn group() -> ConvNorm {
    ConvNorm::Group
}
fn yes() -> bool {
    true
}
fn dropout() -> f64 {
    0.1
}
fn symbol_embedding_dim() -> usize {
    256
}
fn num_lstm_layers() -> usize {
    2
}
fn lstm_hidden_dim() -> usize {
    512
}
fn lstm_eps() -> f64 {
    1e-5
}
fn lstm_dropout() -> f64 {
    0.3
}

impl RnntConfig {
    /// torchaudio's `conformer_rnnt_base` over `input_dim` features with
    /// `vocab_size` labels.
    pub fn base(input_dim: usize, vocab_size: usize) -> Self {
        toml_defaults(input_dim, vocab_size)
    }

    fn check(&self) -> Result<()> {
        let bad = |key: &str, reason: String| AudioError::Config {
            key: key.into(),
            reason,
        };
        for (key, v) in [
            ("input_dim", self.input_dim),
            ("vocab_size", self.vocab_size),
            ("encoding_dim", self.encoding_dim),
            ("time_reduction_stride", self.time_reduction_stride),
            ("d_model", self.d_model),
            ("symbol_embedding_dim", self.symbol_embedding_dim),
            ("lstm_hidden_dim", self.lstm_hidden_dim),
            ("num_lstm_layers", self.num_lstm_layers),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if self.vocab_size < 2 {
            return Err(bad(
                "vocab_size",
                "needs the blank and at least one label".into(),
            ));
        }
        for (key, p) in [
            ("dropout", self.dropout),
            ("lstm_dropout", self.lstm_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(key, format!("{p} is outside [0, 1)")));
            }
        }
        if self.lstm_layer_norm_epsilon <= 0.0 {
            return Err(bad(
                "lstm_layer_norm_epsilon",
                format!("{} must be positive", self.lstm_layer_norm_epsilon),
            ));
        }
        if self.transcriber == TranscriberKind::Conformer {
            self.conformer().check()?;
        }
        Ok(())
    }

    /// The transcriber's Conformer blocks.
    fn conformer(&self) -> ConformerConfig {
        ConformerConfig {
            input_dim: self.d_model,
            d_model: self.d_model,
            num_heads: self.num_heads,
            ffn_dim: self.ffn_dim,
            num_layers: self.num_layers,
            depthwise_conv_kernel_size: self.depthwise_conv_kernel_size,
            dropout: self.dropout,
            conv_norm: self.conv_norm,
            convolution_first: self.convolution_first,
            subsampling: false,
            pos_encoding: crate::conformer::PosEncoding::None,
            vocab_size: None,
        }
    }

    /// Builds the model (PyTorch's default initialisation, as torchaudio).
    /// A zero size, an even kernel, heads that do not divide the width or a
    /// dropout outside `[0, 1)` are [`AudioError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<Rnnt> {
        self.check()?;
        let d = self.d_model;
        let lstm = |i: usize, h: usize| {
            CustomLstm::new(
                i,
                h,
                self.lstm_layer_norm,
                self.lstm_layer_norm_epsilon,
                device,
            )
        };
        let (conformer, lstm_layers) = match self.transcriber {
            TranscriberKind::Conformer => (Some(self.conformer().init(device)?), Vec::new()),
            TranscriberKind::Lstm => (None, (0..self.num_layers).map(|_| lstm(d, d)).collect()),
        };
        let transcriber = Transcriber {
            input_linear: LinearConfig::new(self.input_dim * self.time_reduction_stride, d)
                .init(device),
            conformer,
            lstm_layers,
            dropout: DropoutConfig::new(self.dropout).init(),
            output_linear: LinearConfig::new(d, self.encoding_dim).init(device),
            layer_norm: LayerNormConfig::new(self.encoding_dim).init(device),
            stride: self.time_reduction_stride,
            input_dim: self.input_dim,
        };
        let e = self.symbol_embedding_dim;
        let h = self.lstm_hidden_dim;
        let predictor = Predictor {
            embedding: EmbeddingConfig::new(self.vocab_size, e).init(device),
            input_layer_norm: LayerNormConfig::new(e).init(device),
            lstm_layers: (0..self.num_lstm_layers)
                .map(|i| lstm(if i == 0 { e } else { h }, h))
                .collect(),
            dropout: DropoutConfig::new(self.lstm_dropout).init(),
            linear: LinearConfig::new(h, self.encoding_dim).init(device),
            output_layer_norm: LayerNormConfig::new(self.encoding_dim).init(device),
        };
        let joiner = Joiner {
            linear: LinearConfig::new(self.encoding_dim, self.vocab_size).init(device),
            tanh: self.joiner_activation == JoinerActivation::Tanh,
        };
        Ok(Rnnt {
            transcriber,
            predictor,
            joiner,
            blank: 0,
            vocab_size: self.vocab_size,
        })
    }
}

/// The serde defaults with the two required keys.
fn toml_defaults(input_dim: usize, vocab_size: usize) -> RnntConfig {
    RnntConfig {
        input_dim,
        vocab_size,
        encoding_dim: encoding_dim(),
        time_reduction_stride: stride(),
        transcriber: TranscriberKind::Conformer,
        d_model: d_model(),
        ffn_dim: ffn_dim(),
        num_layers: num_layers(),
        num_heads: num_heads(),
        depthwise_conv_kernel_size: kernel(),
        conv_norm: group(),
        convolution_first: true,
        dropout: dropout(),
        symbol_embedding_dim: symbol_embedding_dim(),
        num_lstm_layers: num_lstm_layers(),
        lstm_hidden_dim: lstm_hidden_dim(),
        lstm_layer_norm: true,
        lstm_layer_norm_epsilon: lstm_eps(),
        lstm_dropout: lstm_dropout(),
        joiner_activation: JoinerActivation::Tanh,
    }
}

/// torchaudio's `_CustomLSTM`: one LSTM layer, batch first here, with
/// optional layer norms on the gates and the cell.
#[derive(Module, Debug)]
pub struct CustomLstm {
    /// `input → 4·hidden` (with a bias unless layer-normalised).
    pub x2g: Linear,
    /// `hidden → 4·hidden`, no bias.
    pub p2g: Linear,
    /// Layer norm of the gates.
    pub g_norm: Option<LayerNorm>,
    /// Layer norm of the cell.
    pub c_norm: Option<LayerNorm>,
    /// Hidden width.
    pub hidden: usize,
}

/// An LSTM layer's `(h, c)`, each `[B, hidden]`.
pub type LstmState = (Tensor<2>, Tensor<2>);

impl CustomLstm {
    fn new(input: usize, hidden: usize, ln: bool, eps: f64, device: &Device) -> Self {
        let norm = |n: usize| ln.then(|| LayerNormConfig::new(n).with_epsilon(eps).init(device));
        CustomLstm {
            x2g: LinearConfig::new(input, 4 * hidden)
                .with_bias(!ln)
                .init(device),
            p2g: LinearConfig::new(hidden, 4 * hidden)
                .with_bias(false)
                .init(device),
            g_norm: norm(4 * hidden),
            c_norm: norm(hidden),
            hidden,
        }
    }

    /// Runs the layer over the sequence from `state` (zeros when `None`).
    ///
    /// # Shapes
    /// `x`: `[B, U, input]` → `[B, U, hidden]` and the last `(h, c)`.
    pub fn forward(&self, x: Tensor<3>, state: Option<LstmState>) -> (Tensor<3>, LstmState) {
        let [b, u, _] = x.dims();
        let device = x.device();
        let (mut h, mut c) = state.unwrap_or_else(|| {
            (
                Tensor::zeros([b, self.hidden], &device),
                Tensor::zeros([b, self.hidden], &device),
            )
        });
        let gx = self.x2g.forward(x);
        let mut out = Vec::with_capacity(u);
        for j in 0..u {
            let g = gx
                .clone()
                .slice([0..b, j..j + 1, 0..4 * self.hidden])
                .reshape([b, 4 * self.hidden])
                + self.p2g.forward(h);
            let g = match &self.g_norm {
                Some(n) => n.forward(g),
                None => g,
            };
            let mut gates = g.chunk(4, 1).into_iter();
            let mut next = || gates.next().expect("four gates");
            let (i, f, cell, o) = (
                sigmoid(next()),
                sigmoid(next()),
                tanh(next()),
                sigmoid(next()),
            );
            c = f * c + i * cell;
            if let Some(n) = &self.c_norm {
                c = n.forward(c);
            }
            h = o * tanh(c.clone());
            out.push(h.clone());
        }
        (Tensor::stack::<3>(out, 1), (h, c))
    }
}

/// The transcriber: time reduction → linear → Conformer blocks (or LSTM
/// layers) → linear → layer norm.
#[derive(Module, Debug)]
pub struct Transcriber {
    /// `input_dim · stride → d_model`.
    pub input_linear: Linear,
    /// The Conformer blocks (`transcriber = "conformer"`).
    pub conformer: Option<Conformer>,
    /// The LSTM layers (`transcriber = "lstm"`).
    pub lstm_layers: Vec<CustomLstm>,
    dropout: Dropout,
    /// `d_model → encoding_dim`.
    pub output_linear: Linear,
    /// The output's layer norm.
    pub layer_norm: LayerNorm,
    /// Frames stacked into one.
    pub stride: usize,
    /// Features per input frame.
    pub input_dim: usize,
}

impl Transcriber {
    /// Frames per sample after the time reduction.
    pub fn output_length(&self, n: usize) -> usize {
        n / self.stride
    }

    /// # Shapes
    /// `x`: `[B, T, input_dim]`, `lengths` ≤ `T` → `[B, T / stride, encoding_dim]`
    /// and `length / stride` per sample.
    pub fn forward(&self, x: Tensor<3>, lengths: &[usize]) -> (Tensor<3>, Vec<usize>) {
        let [b, t, f] = x.dims();
        let s = self.stride;
        let tr = t / s;
        let x = x.slice([0..b, 0..tr * s, 0..f]).reshape([b, tr, f * s]);
        let lengths: Vec<usize> = lengths.iter().map(|&n| n / s).collect();
        let mut x = self.input_linear.forward(x);
        if let Some(c) = &self.conformer {
            x = c.forward(x, &lengths).0;
        }
        for l in &self.lstm_layers {
            x = self.dropout.forward(l.forward(x, None).0);
        }
        (
            self.layer_norm.forward(self.output_linear.forward(x)),
            lengths,
        )
    }
}

/// The predictor: embedding → layer norm → LSTM layers → linear → layer norm.
#[derive(Module, Debug)]
pub struct Predictor {
    /// Label embeddings (the blank starts every sequence).
    pub embedding: Embedding,
    /// Layer norm of the embeddings.
    pub input_layer_norm: LayerNorm,
    /// The LSTM layers.
    pub lstm_layers: Vec<CustomLstm>,
    dropout: Dropout,
    /// `lstm_hidden_dim → encoding_dim`.
    pub linear: Linear,
    /// The output's layer norm.
    pub output_layer_norm: LayerNorm,
}

impl Predictor {
    /// Encodes label sequences from `state` (zeros when `None`).
    ///
    /// # Shapes
    /// `ids`: `[B, U]` → `[B, U, encoding_dim]` and every layer's `(h, c)`.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        state: Option<Vec<LstmState>>,
    ) -> (Tensor<3>, Vec<LstmState>) {
        let mut x = self.input_layer_norm.forward(self.embedding.forward(ids));
        let mut state = state.map(Vec::into_iter);
        let mut out = Vec::with_capacity(self.lstm_layers.len());
        for l in &self.lstm_layers {
            let (y, s) = l.forward(x, state.as_mut().and_then(Iterator::next));
            x = self.dropout.forward(y);
            out.push(s);
        }
        (self.output_layer_norm.forward(self.linear.forward(x)), out)
    }
}

/// The joiner: `linear(act(source + target))`.
#[derive(Module, Debug)]
pub struct Joiner {
    /// `encoding_dim → vocab`.
    pub linear: Linear,
    /// tanh (else ReLU).
    pub tanh: bool,
}

impl Joiner {
    /// Logits of every (frame, label prefix) pair.
    ///
    /// # Shapes
    /// `source`: `[B, T, E]`, `target`: `[B, U, E]` → `[B, T, U, V]`.
    pub fn forward(&self, source: Tensor<3>, target: Tensor<3>) -> Tensor<4> {
        let [b, t, e] = source.dims();
        let u = target.dims()[1];
        let x = source.unsqueeze_dim::<4>(2).expand([b, t, u, e])
            + target.unsqueeze_dim::<4>(1).expand([b, t, u, e]);
        self.linear.forward(self.act(x))
    }

    fn act<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if self.tanh { tanh(x) } else { relu(x) }
    }

    /// Log-probabilities of frames `[N, E]` against one prefix `[1, E]` (or
    /// `N` prefixes `[N, E]`) → `[N, V]`.
    fn rows(&self, source: Tensor<2>, target: Tensor<2>) -> Tensor<2> {
        let [n, e] = source.dims();
        let target = if target.dims()[0] == n {
            target
        } else {
            target.expand([n, e])
        };
        log_softmax(self.linear.forward(self.act(source + target)), 1)
    }
}

/// The transducer. Build it with [`RnntConfig::init`].
#[derive(Module, Debug)]
pub struct Rnnt {
    /// Encodes the frames.
    pub transcriber: Transcriber,
    /// Encodes the labels so far.
    pub predictor: Predictor,
    /// Combines the two.
    pub joiner: Joiner,
    /// The blank's id (0: the alphabet's blank comes first).
    pub blank: usize,
    /// Labels of the joiner, the blank included.
    pub vocab_size: usize,
}

/// A hypothesis of the beam search.
struct Hyp {
    tokens: Vec<u32>,
    score: f64,
    /// The predictor's output for `tokens` `[1, E]` and its state.
    pred: Tensor<2>,
    state: Vec<LstmState>,
}

impl Rnnt {
    /// Joiner logits for teacher-forced targets: `targets` are label ids
    /// per sample (without the blank), which the predictor reads after a
    /// leading blank.
    ///
    /// # Shapes
    /// `x`: `[B, T, input_dim]` (+ lengths) → `[B, T / stride, U + 1, V]`
    /// (`U` = the longest target) and the frames per sample.
    pub fn forward(
        &self,
        x: Tensor<3>,
        lengths: &[usize],
        targets: &[Vec<u32>],
    ) -> (Tensor<4>, Vec<usize>) {
        let (src, n) = self.transcriber.forward(x, lengths);
        let (tgt, _) = self
            .predictor
            .forward(self.prepend_blank(targets, &src.device()), None);
        (self.joiner.forward(src, tgt), n)
    }

    /// [`forward`](Self::forward) after checking the input: rank 3 with
    /// `input_dim` features, `B` lengths and targets, each length in
    /// `stride..=T`, labels below `vocab_size`.
    pub fn try_forward(
        &self,
        x: Tensor<3>,
        lengths: &[usize],
        targets: &[Vec<u32>],
    ) -> Result<(Tensor<4>, Vec<usize>)> {
        self.check_input(&x, lengths)?;
        let v = self.vocab_size;
        if targets.len() != lengths.len() {
            return Err(self.input_error(
                &x,
                format!("{} targets for {} samples", targets.len(), lengths.len()),
            ));
        }
        if let Some(c) = targets.iter().flatten().find(|&&c| c as usize >= v) {
            return Err(self.input_error(&x, format!("label {c} outside the {v} labels")));
        }
        Ok(self.forward(x, lengths, targets))
    }

    fn input_error(&self, x: &Tensor<3>, reason: String) -> AudioError {
        AudioError::Input {
            model: "RNN-T".into(),
            shape: x.dims().to_vec(),
            reason,
        }
    }

    fn check_input(&self, x: &Tensor<3>, lengths: &[usize]) -> Result<()> {
        let [b, t, f] = x.dims();
        let s = self.transcriber.stride;
        let reason = if f != self.transcriber.input_dim {
            Some(format!(
                "expected {} features per frame",
                self.transcriber.input_dim
            ))
        } else if lengths.len() != b {
            Some(format!("{} lengths for {b} samples", lengths.len()))
        } else {
            lengths.iter().find(|&&n| n < s || n > t).map(|n| {
                format!("length {n} outside {s}..={t} (the time reduction stacks {s} frames)")
            })
        };
        match reason {
            Some(r) => Err(self.input_error(x, r)),
            None => Ok(()),
        }
    }

    /// `[B, U + 1]` ids: the blank, then each target, padded with the blank.
    fn prepend_blank(&self, targets: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
        let u = targets.iter().map(Vec::len).max().unwrap_or(0) + 1;
        let mut ids = vec![self.blank as i64; targets.len() * u];
        for (k, y) in targets.iter().enumerate() {
            for (j, &c) in y.iter().enumerate() {
                ids[k * u + j + 1] = i64::from(c);
            }
        }
        Tensor::from_data(TensorData::new(ids, [targets.len(), u]), device)
    }

    /// The predictor after `tokens` fed one at a time from `state`.
    fn predict(
        &self,
        ids: &[u32],
        state: Option<Vec<LstmState>>,
        device: &Device,
    ) -> (Tensor<2>, Vec<LstmState>) {
        let n = ids.len();
        let ids: Vec<i64> = ids.iter().map(|&c| i64::from(c)).collect();
        let (y, s) = self.predictor.forward(
            Tensor::from_data(TensorData::new(ids, [n, 1]), device),
            state,
        );
        let e = y.dims()[2];
        (y.reshape([n, e]), s)
    }

    /// Decodes a batch: label ids per sample (the blank never among them).
    /// `beam_width` 1 is greedy, more a beam search (see the [module docs](self)).
    ///
    /// # Shapes
    /// `x`: `[B, T, input_dim]` (+ lengths) → `B` label sequences.
    pub fn decode(&self, x: Tensor<3>, lengths: &[usize], beam_width: usize) -> Vec<Vec<u32>> {
        let device = x.device();
        let (enc, n) = self.transcriber.forward(x, lengths);
        let [b, _, e] = enc.dims();
        (0..b)
            .map(|k| {
                let frames = enc
                    .clone()
                    .slice([k..k + 1, 0..n[k], 0..e])
                    .reshape([n[k], e]);
                if beam_width <= 1 {
                    self.greedy(frames, &device)
                } else {
                    self.beam(frames, beam_width, &device)
                }
            })
            .collect()
    }

    /// Greedy search over one sample's frames `[N, E]`: with the predictor
    /// fixed between emissions, the joiner scores every remaining frame at
    /// once and the first non-blank best label is the next emission.
    fn greedy(&self, frames: Tensor<2>, device: &Device) -> Vec<u32> {
        let [n, e] = frames.dims();
        let (mut pred, mut state) = self.predict(&[self.blank as u32], None, device);
        let mut tokens = Vec::new();
        let (mut t, mut here) = (0usize, 0usize);
        while t < n {
            if here >= MAX_SYMBOLS_PER_FRAME {
                (t, here) = (t + 1, 0);
                continue;
            }
            let lp = self
                .joiner
                .rows(frames.clone().slice([t..n, 0..e]), pred.clone());
            let v = lp.dims()[1];
            let host = host_f32(lp);
            let next = host.chunks(v).enumerate().find_map(|(r, row)| {
                let best = argmax(row);
                (best != self.blank).then_some((r, best))
            });
            let Some((r, best)) = next else { break };
            if r > 0 {
                (t, here) = (t + r, 0);
            }
            tokens.push(best as u32);
            here += 1;
            (pred, state) = self.predict(&[best as u32], Some(state), device);
        }
        tokens
    }

    /// Beam search over one sample's frames `[N, E]`, time-synchronous
    /// (Saon et al. 2020): at each frame, hypotheses are extended by up to
    /// [`BEAM_SYMBOLS_PER_FRAME`] labels (the `width` best kept after each
    /// expansion), and every one of them closes the frame with a blank;
    /// closed hypotheses with equal label sequences merge (log-sum of their
    /// probabilities) and the `width` best go on to the next frame. Scores
    /// are the transducer's own path probabilities (a blank ends every frame);
    /// the result is the final hypothesis of the best score.
    fn beam(&self, frames: Tensor<2>, width: usize, device: &Device) -> Vec<u32> {
        let [n, e] = frames.dims();
        let (pred, state) = self.predict(&[self.blank as u32], None, device);
        let mut hyps = vec![Hyp {
            tokens: Vec::new(),
            score: 0.0,
            pred,
            state,
        }];
        for t in 0..n {
            let frame = frames.clone().slice([t..t + 1, 0..e]);
            let mut closed: HashMap<Vec<u32>, Hyp> = HashMap::new();
            let mut open = hyps;
            for step in 0..=BEAM_SYMBOLS_PER_FRAME {
                if open.is_empty() {
                    break;
                }
                let preds = Tensor::cat(open.iter().map(|h| h.pred.clone()).collect(), 0);
                let lp = self
                    .joiner
                    .rows(frame.clone().expand([open.len(), e]), preds);
                let v = lp.dims()[1];
                let host = host_f32(lp);
                // (parent, label, score) of the extensions
                let mut grow: Vec<(usize, u32, f64)> = Vec::new();
                for (i, h) in open.iter().enumerate() {
                    let row = &host[i * v..(i + 1) * v];
                    if step < BEAM_SYMBOLS_PER_FRAME {
                        for (c, &l) in row.iter().enumerate() {
                            if c != self.blank {
                                grow.push((i, c as u32, h.score + f64::from(l)));
                            }
                        }
                    }
                    let score = h.score + f64::from(row[self.blank]);
                    match closed.get_mut(&h.tokens) {
                        Some(c) => c.score = log_add(c.score, score),
                        None => {
                            closed.insert(
                                h.tokens.clone(),
                                Hyp {
                                    tokens: h.tokens.clone(),
                                    score,
                                    pred: h.pred.clone(),
                                    state: h.state.clone(),
                                },
                            );
                        }
                    }
                }
                grow.sort_by(|a, b| b.2.total_cmp(&a.2));
                grow.truncate(width);
                // an extension worse than `width` closed hypotheses cannot survive
                let mut scores: Vec<f64> = closed.values().map(|h| h.score).collect();
                scores.sort_by(|a, b| b.total_cmp(a));
                if let Some(&floor) = scores.get(width - 1) {
                    grow.retain(|g| g.2 > floor);
                }
                open = self.extend(&open, &grow, device);
            }
            let mut next: Vec<Hyp> = closed.into_values().collect();
            next.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then_with(|| a.tokens.cmp(&b.tokens))
            });
            next.truncate(width);
            hyps = next;
        }
        hyps.into_iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|h| h.tokens)
            .unwrap_or_default()
    }

    /// The hypotheses `open[parent] + label` with their scores, their
    /// predictor steps batched.
    fn extend(&self, open: &[Hyp], grow: &[(usize, u32, f64)], device: &Device) -> Vec<Hyp> {
        if grow.is_empty() {
            return Vec::new();
        }
        let layers = open[0].state.len();
        let state: Vec<LstmState> = (0..layers)
            .map(|l| {
                let (hs, cs): (Vec<_>, Vec<_>) =
                    grow.iter().map(|g| open[g.0].state[l].clone()).unzip();
                (Tensor::cat(hs, 0), Tensor::cat(cs, 0))
            })
            .collect();
        let ids: Vec<u32> = grow.iter().map(|g| g.1).collect();
        let (p, s) = self.predict(&ids, Some(state), device);
        let [_, e] = p.dims();
        let h = s[0].0.dims()[1];
        grow.iter()
            .enumerate()
            .map(|(j, &(parent, label, score))| {
                let one = |x: &Tensor<2>| x.clone().slice([j..j + 1, 0..h]);
                let mut tokens = open[parent].tokens.clone();
                tokens.push(label);
                Hyp {
                    tokens,
                    score,
                    pred: p.clone().slice([j..j + 1, 0..e]),
                    state: s.iter().map(|(hh, cc)| (one(hh), one(cc))).collect(),
                }
            })
            .collect()
    }
}

fn host_f32<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float data")
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn log_add(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    if m == f64::NEG_INFINITY {
        m
    } else {
        m + ((x - m).exp() + (y - m).exp()).ln()
    }
}

impl unidl_train::TransducerModel for Rnnt {
    fn joint_log_probs(
        &self,
        features: Tensor<3>,
        lengths: &[usize],
        targets: &[Vec<u32>],
    ) -> (Tensor<4>, Vec<usize>) {
        let (logits, n) = self.forward(features, lengths, targets);
        (log_softmax(logits, 3), n)
    }

    fn decode(&self, features: Tensor<3>, lengths: &[usize], beam_width: usize) -> Vec<Vec<u32>> {
        Rnnt::decode(self, features, lengths, beam_width)
    }
}
