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
mod config;
mod decode;

use burn::module::Module;
use burn::tensor::activation::{log_softmax, relu, sigmoid, tanh};
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_nn::{Dropout, Embedding, LayerNorm, LayerNormConfig, Linear, LinearConfig};

use crate::conformer::Conformer;
use crate::{AudioError, Result};

pub use config::{JoinerActivation, RnntConfig, TranscriberKind};
pub use decode::{BEAM_SYMBOLS_PER_FRAME, MAX_SYMBOLS_PER_FRAME};

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
