//! [`RnntConfig`]: the keys of `[model] name = "rnnt"` and building the model.

use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{DropoutConfig, EmbeddingConfig, LayerNormConfig, LinearConfig};

use super::{CustomLstm, Joiner, Predictor, Rnnt, Transcriber};
use crate::conformer::{ConformerConfig, ConvNorm};
use crate::{AudioError, Result};

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
