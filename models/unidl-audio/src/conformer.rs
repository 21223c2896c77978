//! # Conformer (Gulati et al., 2020, "Conformer: Convolution-augmented Transformer for Speech Recognition", arXiv:2005.08100)
//!
//! Each layer is a macaron: half a feed-forward module, multi-head
//! self-attention, a convolution module, the other half feed-forward, a
//! final layer norm — laid out as `torchaudio.models.Conformer` (2.9.0):
//!
//! ```text
//! x = x + ½·FFN₁(x)                       FFN: LN → Linear(d, f) → SiLU → Dropout → Linear(f, d) → Dropout
//! x = x + Dropout(MHSA(LN(x), key padding))
//! x = x + Conv(x)                          Conv: LN → 1×1 conv (d → 2d) → GLU → depthwise conv k (same
//!                                                padding) → BatchNorm (or GroupNorm(1)) → SiLU → 1×1 conv → Dropout
//! x = LN(x + ½·FFN₂(x))
//! ```
//!
//! (`convolution_first` swaps attention and convolution.) As torchaudio,
//! padded frames are masked out of the attention keys only; the
//! convolutions see them as they are.
//!
//! **Positional encoding** (`pos_encoding`): `"none"` (the default) is
//! torchaudio's — no positions at all, `nn.MultiheadAttention`. `"relative"`
//! is the paper's, Transformer-XL's relative sinusoidal self-attention as
//! ESPnet's `RelPositionalEncoding` and `RelPositionMultiHeadedAttention`
//! define it ([`relative`]): after the front end the frames are scaled by
//! `√d_model` and the encodings of the relative positions `T − 1 … −(T − 1)`
//! computed (dropout on both); every layer's attention adds to
//! `self_attn`'s projections its own [`RelPositionTerms`] — `linear_pos`
//! (`d → d`, no bias), `pos_bias_u` and `pos_bias_v` (`[heads, d/heads]`),
//! `d² + 2d` parameters a layer — and scores
//! `((q + u)·k + rel_shift((q + v)·W_pos p)) / √d_head`, with the same
//! key-padding mask and dropout on the probabilities. `d_model` must be even.
//!
//! Options beyond torchaudio's blocks (unidl keys): `subsampling` — the
//! paper's convolutional front end, two 3×3 convolutions of stride 2 with
//! ReLU over `[time, features]` and a linear projection to `d_model`
//! (ESPnet's `Conv2dSubsampling`), 4× fewer frames; `input_dim` ≠
//! `d_model` without it adds a linear projection; `vocab_size` adds the CTC
//! head. Conformer-S: `d_model = 144`, `ffn_dim = 576`, 4 heads, kernel 31,
//! 16 layers (7,771,392 block parameters).
//!
//! Parameter names: `subsampling.{conv1,conv2,out}`, `input_proj`,
//! `layers.{i}.{ffn1,ffn2}.{norm,fc1,fc2}`, `layers.{i}.self_attn_layer_norm`,
//! `layers.{i}.self_attn.{query,key,value,output}`,
//! `layers.{i}.self_attn_pos.{linear_pos,pos_bias_u,pos_bias_v}` (relative only),
//! `layers.{i}.conv_module.{layer_norm,pointwise1,depthwise,norm,pointwise2}`,
//! `layers.{i}.final_layer_norm`, `ctc_head`; the mapping to torchaudio's
//! (and to ESPnet's attention keys) is in [`crate::weights`].

use burn::module::Module;
use burn::tensor::activation::{glu, log_softmax, relu, silu};
use burn::tensor::{Bool, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{
    AttentionMask, BatchNorm1d, BatchNorm1dConfig, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig,
    Dropout, DropoutConfig, GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, MultiHeadAttention, MultiHeadAttentionConfig, PaddingConfig1d,
};

use crate::{AudioError, Result};

pub mod relative;
pub use relative::{RelPositionTerms, RelPositionalEncoding, relative_sinusoids};

/// The positional encoding of the attention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PosEncoding {
    /// None: torchaudio's `Conformer` (`nn.MultiheadAttention`).
    #[default]
    None,
    /// The paper's relative sinusoidal self-attention (Transformer-XL's, as
    /// ESPnet's `RelPositionMultiHeadedAttention`); see the [module docs](self).
    Relative,
}

/// The normalisation of the convolution module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvNorm {
    /// `BatchNorm1d` (torchaudio's default and the paper's).
    #[default]
    Batch,
    /// `GroupNorm` with one group (`use_group_norm = True`).
    Group,
}

/// Conformer configuration.
///
/// ```toml
/// input_dim = 80        # log-mel bins
/// d_model = 144
/// num_heads = 4
/// ffn_dim = 576
/// num_layers = 16
/// depthwise_conv_kernel_size = 31
/// subsampling = true    # the paper's 4x convolutional front end
/// pos_encoding = "relative"  # the paper's attention; default "none" (torchaudio's)
/// vocab_size = 29       # CTC head (blank included)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConformerConfig {
    /// Features per input frame.
    pub input_dim: usize,
    /// Model width (torchaudio's `input_dim` of the blocks).
    #[serde(default = "d_model")]
    pub d_model: usize,
    /// Attention heads.
    #[serde(default = "heads")]
    pub num_heads: usize,
    /// Feed-forward width.
    #[serde(default = "ffn")]
    pub ffn_dim: usize,
    /// Layers.
    #[serde(default = "layers")]
    pub num_layers: usize,
    /// Depthwise convolution kernel (odd).
    #[serde(default = "kernel")]
    pub depthwise_conv_kernel_size: usize,
    /// Dropout everywhere torchaudio puts it.
    #[serde(default)]
    pub dropout: f64,
    /// Batch or group norm in the convolution module.
    #[serde(default)]
    pub conv_norm: ConvNorm,
    /// Convolution before attention.
    #[serde(default)]
    pub convolution_first: bool,
    /// The paper's 4× convolutional subsampling front end.
    #[serde(default)]
    pub subsampling: bool,
    /// `"none"` (torchaudio's) or `"relative"` (the paper's relative
    /// sinusoidal self-attention; `d_model` even).
    #[serde(default)]
    pub pos_encoding: PosEncoding,
    /// Labels of the CTC head (blank included); `None`: no head.
    #[serde(default)]
    pub vocab_size: Option<usize>,
}

fn d_model() -> usize {
    144
}
fn heads() -> usize {
    4
}
fn ffn() -> usize {
    576
}
fn layers() -> usize {
    16
}
fn kernel() -> usize {
    31
}

impl ConformerConfig {
    /// Conformer-S blocks (d 144, FFN 576, 4 heads, kernel 31, 16 layers)
    /// over `input_dim` features, nothing else.
    pub fn small(input_dim: usize) -> Self {
        ConformerConfig {
            input_dim,
            d_model: 144,
            num_heads: 4,
            ffn_dim: 576,
            num_layers: 16,
            depthwise_conv_kernel_size: 31,
            dropout: 0.0,
            conv_norm: ConvNorm::Batch,
            convolution_first: false,
            subsampling: false,
            pos_encoding: PosEncoding::None,
            vocab_size: None,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad = |key: &str, reason: String| AudioError::Config {
            key: key.into(),
            reason,
        };
        for (key, v) in [
            ("input_dim", self.input_dim),
            ("d_model", self.d_model),
            ("num_heads", self.num_heads),
            ("ffn_dim", self.ffn_dim),
            (
                "depthwise_conv_kernel_size",
                self.depthwise_conv_kernel_size,
            ),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if !self.d_model.is_multiple_of(self.num_heads) {
            return Err(bad(
                "num_heads",
                format!(
                    "{} does not divide d_model {}",
                    self.num_heads, self.d_model
                ),
            ));
        }
        if self.depthwise_conv_kernel_size.is_multiple_of(2) {
            return Err(bad(
                "depthwise_conv_kernel_size",
                format!(
                    "{} must be odd (same padding)",
                    self.depthwise_conv_kernel_size
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad(
                "dropout",
                format!("{} is outside [0, 1)", self.dropout),
            ));
        }
        if self.subsampling && self.input_dim < 7 {
            return Err(bad(
                "input_dim",
                format!(
                    "{} features: the subsampling front end needs at least 7",
                    self.input_dim
                ),
            ));
        }
        if self.pos_encoding == PosEncoding::Relative && !self.d_model.is_multiple_of(2) {
            return Err(bad(
                "d_model",
                format!(
                    "{} is odd: pos_encoding = \"relative\" pairs sines and cosines",
                    self.d_model
                ),
            ));
        }
        if self.vocab_size == Some(0) {
            return Err(bad("vocab_size", "must be at least 1".into()));
        }
        Ok(())
    }

    /// Builds the model (PyTorch's default initialisation, as torchaudio;
    /// the relative terms as ESPnet). A zero size, an even kernel, heads
    /// that do not divide the width or an odd width with relative
    /// positions are [`AudioError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<Conformer> {
        self.check()?;
        let d = self.d_model;
        let subsampling = self.subsampling.then(|| {
            let f = (((self.input_dim - 1) / 2) - 1) / 2;
            Subsampling {
                conv1: Conv2dConfig::new([1, d], [3, 3])
                    .with_stride([2, 2])
                    .init(device),
                conv2: Conv2dConfig::new([d, d], [3, 3])
                    .with_stride([2, 2])
                    .init(device),
                out: LinearConfig::new(d * f, d).init(device),
            }
        });
        let input_proj = (!self.subsampling && self.input_dim != d)
            .then(|| LinearConfig::new(self.input_dim, d).init(device));
        let layers = (0..self.num_layers)
            .map(|_| ConformerLayer::new(self, device))
            .collect();
        let pos_enc = (self.pos_encoding == PosEncoding::Relative)
            .then(|| RelPositionalEncoding::new(d, self.dropout));
        Ok(Conformer {
            subsampling,
            input_proj,
            pos_enc,
            layers,
            ctc_head: self
                .vocab_size
                .map(|v| LinearConfig::new(d, v).init(device)),
            input_dim: self.input_dim,
        })
    }
}

/// Half of the macaron: LN → Linear → SiLU → Dropout → Linear → Dropout.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// The layer norm.
    pub norm: LayerNorm,
    /// `d → f`.
    pub fc1: Linear,
    /// `f → d`.
    pub fc2: Linear,
    dropout: Dropout,
}

impl FeedForward {
    /// # Shapes
    /// `[B, T, d]` → `[B, T, d]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self
            .dropout
            .forward(silu(self.fc1.forward(self.norm.forward(x))));
        self.dropout.forward(self.fc2.forward(h))
    }
}

/// The convolution module's normalisation.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ConvModuleNorm {
    /// Batch norm.
    Batch(BatchNorm1d),
    /// Group norm with one group.
    Group(GroupNorm),
}

/// LN → 1×1 conv (d → 2d) → GLU → depthwise conv → norm → SiLU → 1×1 conv → Dropout.
#[derive(Module, Debug)]
pub struct ConvModule {
    /// The layer norm.
    pub layer_norm: LayerNorm,
    /// `d → 2d`, kernel 1, with bias.
    pub pointwise1: Conv1d,
    /// Depthwise, kernel `k`, same padding, with bias.
    pub depthwise: Conv1d,
    /// Batch or group norm.
    pub norm: ConvModuleNorm,
    /// `d → d`, kernel 1, with bias.
    pub pointwise2: Conv1d,
    dropout: Dropout,
}

impl ConvModule {
    /// # Shapes
    /// `[B, T, d]` → `[B, T, d]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.layer_norm.forward(x).swap_dims(1, 2); // [B, d, T]
        let y = glu(self.pointwise1.forward(x), 1); // [B, 2d, T] → [B, d, T]
        let y = self.depthwise.forward(y);
        let y = match &self.norm {
            ConvModuleNorm::Batch(bn) => bn.forward(y),
            ConvModuleNorm::Group(gn) => gn.forward(y),
        };
        let y = self.pointwise2.forward(silu(y));
        self.dropout.forward(y).swap_dims(1, 2)
    }
}

/// One Conformer layer (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct ConformerLayer {
    /// The first half feed-forward.
    pub ffn1: FeedForward,
    /// Before the attention.
    pub self_attn_layer_norm: LayerNorm,
    /// Multi-head self-attention (with biases, scaled); with relative
    /// positions its projections are ESPnet's `linear_{q,k,v,out}`.
    pub self_attn: MultiHeadAttention,
    /// The relative attention's own parameters (`pos_encoding =
    /// "relative"`).
    pub self_attn_pos: Option<RelPositionTerms>,
    /// The convolution module.
    pub conv_module: ConvModule,
    /// The second half feed-forward.
    pub ffn2: FeedForward,
    /// The closing layer norm.
    pub final_layer_norm: LayerNorm,
    dropout: Dropout,
    convolution_first: bool,
}

impl ConformerLayer {
    fn new(c: &ConformerConfig, device: &Device) -> Self {
        let d = c.d_model;
        let ffn = || FeedForward {
            norm: LayerNormConfig::new(d).init(device),
            fc1: LinearConfig::new(d, c.ffn_dim).init(device),
            fc2: LinearConfig::new(c.ffn_dim, d).init(device),
            dropout: DropoutConfig::new(c.dropout).init(),
        };
        let k = c.depthwise_conv_kernel_size;
        ConformerLayer {
            ffn1: ffn(),
            self_attn_layer_norm: LayerNormConfig::new(d).init(device),
            self_attn: MultiHeadAttentionConfig::new(d, c.num_heads)
                .with_dropout(c.dropout)
                .init(device),
            self_attn_pos: (c.pos_encoding == PosEncoding::Relative)
                .then(|| RelPositionTerms::new(d, c.num_heads, c.dropout, device)),
            conv_module: ConvModule {
                layer_norm: LayerNormConfig::new(d).init(device),
                pointwise1: Conv1dConfig::new(d, 2 * d, 1).init(device),
                depthwise: Conv1dConfig::new(d, d, k)
                    .with_groups(d)
                    .with_padding(PaddingConfig1d::Explicit((k - 1) / 2, (k - 1) / 2))
                    .init(device),
                norm: match c.conv_norm {
                    ConvNorm::Batch => {
                        ConvModuleNorm::Batch(BatchNorm1dConfig::new(d).init(device))
                    }
                    ConvNorm::Group => {
                        ConvModuleNorm::Group(GroupNormConfig::new(1, d).init(device))
                    }
                },
                pointwise2: Conv1dConfig::new(d, d, 1).init(device),
                dropout: DropoutConfig::new(c.dropout).init(),
            },
            ffn2: ffn(),
            final_layer_norm: LayerNormConfig::new(d).init(device),
            dropout: DropoutConfig::new(c.dropout).init(),
            convolution_first: c.convolution_first,
        }
    }

    /// `pos`: the relative position encodings ([`RelPositionalEncoding`]),
    /// needed by a layer with [`self_attn_pos`](Self::self_attn_pos) and
    /// ignored by one without.
    ///
    /// # Shapes
    /// `x`: `[B, T, d]`; `mask.key_padding`: `[B, T]`; `pos`: `[2T − 1, d]`
    /// → `[B, T, d]`.
    ///
    /// # Panics
    /// A relative layer given no `pos`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        mask: &AttentionMask,
        pos: Option<&Tensor<2>>,
    ) -> Tensor<3> {
        let x = x.clone() + self.ffn1.forward(x).mul_scalar(0.5);
        let x = if self.convolution_first {
            x.clone() + self.conv_module.forward(x)
        } else {
            x
        };
        let h = self.self_attn_layer_norm.forward(x.clone());
        let a = match &self.self_attn_pos {
            Some(rel) => {
                let pos = pos.expect("a relative Conformer layer needs the position encodings");
                rel.forward(&self.self_attn, h, pos.clone(), mask)
            }
            None => self.self_attn.forward(h, None, mask),
        };
        let x = x + self.dropout.forward(a);
        let x = if self.convolution_first {
            x
        } else {
            x.clone() + self.conv_module.forward(x)
        };
        let x = x.clone() + self.ffn2.forward(x).mul_scalar(0.5);
        self.final_layer_norm.forward(x)
    }
}

/// The paper's convolutional front end: two 3×3 convolutions of stride 2
/// with ReLU over `[time, features]`, then `Linear(d·F', d)`.
#[derive(Module, Debug)]
pub struct Subsampling {
    /// `1 → d` channels.
    pub conv1: Conv2d,
    /// `d → d` channels.
    pub conv2: Conv2d,
    /// `d·F' → d`.
    pub out: Linear,
}

impl Subsampling {
    /// Frames left of `n` input frames: `⌊(⌊(n − 1)/2⌋ − 1)/2⌋`.
    pub fn output_length(n: usize) -> usize {
        (n.saturating_sub(1) / 2).saturating_sub(1) / 2
    }

    /// # Shapes
    /// `[B, T, F]` → `[B, ⌊(⌊(T − 1)/2⌋ − 1)/2⌋, d]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = relu(self.conv1.forward(x.unsqueeze_dim::<4>(1))); // [B, d, T/2, F/2]
        let x = relu(self.conv2.forward(x)); // [B, d, T/4, F/4]
        let [b, c, t, f] = x.dims();
        let x = x.swap_dims(1, 2).reshape([b, t, c * f]);
        self.out.forward(x)
    }
}

/// The Conformer encoder (with its optional front end and CTC head). Build
/// it with [`ConformerConfig::init`].
#[derive(Module, Debug)]
pub struct Conformer {
    /// The 4× convolutional front end.
    pub subsampling: Option<Subsampling>,
    /// `input_dim → d_model` when they differ and there is no front end.
    pub input_proj: Option<Linear>,
    /// The relative positional encoding (`pos_encoding = "relative"`).
    pub pos_enc: Option<RelPositionalEncoding>,
    /// The layers.
    pub layers: Vec<ConformerLayer>,
    /// `d_model → vocab` (CTC).
    pub ctc_head: Option<Linear>,
    /// Features per input frame.
    pub input_dim: usize,
}

impl Conformer {
    /// Encodes padded frames; returns the encodings and the frames left per
    /// sample. With relative positions the frames entering the layers are
    /// scaled by `√d_model` first ([`RelPositionalEncoding`]).
    ///
    /// # Shapes
    /// `x`: `[B, T, input_dim]`, `lengths`: `B` values ≤ `T` → `[B, T', d_model]`
    /// (`T' = T`, or the front end's output length).
    pub fn forward(&self, x: Tensor<3>, lengths: &[usize]) -> (Tensor<3>, Vec<usize>) {
        let (x, lengths) = match &self.subsampling {
            Some(s) => (
                s.forward(x),
                lengths
                    .iter()
                    .map(|&n| Subsampling::output_length(n))
                    .collect(),
            ),
            None => (
                match &self.input_proj {
                    Some(p) => p.forward(x),
                    None => x,
                },
                lengths.to_vec(),
            ),
        };
        let [b, t, _] = x.dims();
        let pad: Vec<bool> = lengths
            .iter()
            .flat_map(|&n| (0..t).map(move |j| j >= n))
            .collect();
        let mask = AttentionMask::padding(Tensor::<2, Bool>::from_data(
            TensorData::new(pad, [b, t]),
            &x.device(),
        ));
        let (mut x, pos) = match &self.pos_enc {
            Some(p) => {
                let (x, pos) = p.forward(x);
                (x, Some(pos))
            }
            None => (x, None),
        };
        for layer in &self.layers {
            x = layer.forward(x, &mask, pos.as_ref());
        }
        (x, lengths)
    }

    /// [`forward`](Self::forward) after checking the input: rank 3 with
    /// `input_dim` features, `B` lengths each in `1..=T`, and enough frames
    /// for the front end.
    pub fn try_forward(&self, x: Tensor<3>, lengths: &[usize]) -> Result<(Tensor<3>, Vec<usize>)> {
        let dims = x.dims();
        let [b, t, f] = dims;
        let reason = if f != self.input_dim {
            Some(format!("expected {} features per frame", self.input_dim))
        } else if lengths.len() != b {
            Some(format!("{} lengths for {b} samples", lengths.len()))
        } else if let Some(n) = lengths.iter().find(|&&n| n == 0 || n > t) {
            Some(format!("length {n} outside 1..={t}"))
        } else if self.subsampling.is_some() && Subsampling::output_length(t) == 0 {
            Some("the subsampling front end needs at least 7 frames".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(AudioError::Input {
                model: "Conformer".into(),
                shape: dims.to_vec(),
                reason,
            });
        }
        Ok(self.forward(x, lengths))
    }

    /// CTC log-probabilities (log-softmax over the head's labels) and the
    /// frames per sample; `None` without a head.
    ///
    /// # Shapes
    /// `[B, T, input_dim]` → `[B, T', vocab]`.
    pub fn ctc(&self, x: Tensor<3>, lengths: &[usize]) -> Option<(Tensor<3>, Vec<usize>)> {
        let head = self.ctc_head.as_ref()?;
        let (h, n) = self.forward(x, lengths);
        Some((log_softmax(head.forward(h), 2), n))
    }
}

impl unidl_train::CtcModel for Conformer {
    /// # Panics
    /// Without a CTC head (`vocab_size`): the zoo's config always has one.
    fn ctc_log_probs(&self, features: Tensor<3>, lengths: &[usize]) -> (Tensor<3>, Vec<usize>) {
        self.ctc(features, lengths)
            .expect("a Conformer for speech recognition has a CTC head (vocab_size)")
    }
}
