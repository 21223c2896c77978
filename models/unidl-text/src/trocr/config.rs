//! TrOCR's architecture: `transformers`' `ViTConfig`/`DeiTConfig` (encoder)
//! and `TrOCRConfig` (decoder) keys, and their checks.

use serde::{Deserialize, Serialize};

use crate::TextError;

/// An activation function (`hidden_act`, `activation_function`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The exact GELU (`gelu`).
    #[default]
    Gelu,
    /// GELU's tanh approximation (`gelu_new`).
    GeluNew,
    /// ReLU (`relu`).
    Relu,
}

impl Activation {
    /// Applies the function.
    pub fn apply<const D: usize>(self, x: burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D> {
        use burn::tensor::activation::{gelu, gelu_approximate, relu};
        match self {
            Activation::Gelu => gelu(x),
            Activation::GeluNew => gelu_approximate(x),
            Activation::Relu => relu(x),
        }
    }
}

/// An image or patch size: one number (square) or `[height, width]` (text lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageSize {
    /// `height = width`.
    Square(usize),
    /// `[height, width]`.
    Pair([usize; 2]),
}

impl ImageSize {
    /// `[height, width]`.
    pub fn hw(self) -> [usize; 2] {
        match self {
            ImageSize::Square(s) => [s, s],
            ImageSize::Pair(p) => p,
        }
    }
}

/// The ViT (or DeiT) encoder with `transformers`' `ViTConfig` names; the
/// defaults are TrOCR-small's DeiT-small at 384×384.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrOcrEncoderConfig {
    /// Input size (`[height, width]` or one number); both multiples of `patch_size`.
    #[serde(default = "image_size")]
    pub image_size: ImageSize,
    /// Patch size, one number (square) or `[height, width]` as
    /// `transformers`' `ViTConfig` accepts (the embedding convolution's
    /// kernel and stride); full-height strips (`[32, 8]` on a 32-pixel
    /// line) give every character whole to the tokens that cover it.
    #[serde(default = "patch_size")]
    pub patch_size: ImageSize,
    /// Image channels.
    #[serde(default = "channels")]
    pub num_channels: usize,
    /// Encoder width.
    #[serde(default = "enc_hidden")]
    pub hidden_size: usize,
    /// Encoder blocks.
    #[serde(default = "enc_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads.
    #[serde(default = "enc_heads")]
    pub num_attention_heads: usize,
    /// Feed-forward width.
    #[serde(default = "enc_ffn")]
    pub intermediate_size: usize,
    /// Feed-forward activation.
    #[serde(default)]
    pub hidden_act: Activation,
    /// Layer-norm epsilon.
    #[serde(default = "enc_eps")]
    pub layer_norm_eps: f64,
    /// Whether the query, key and value projections have biases.
    #[serde(default = "yes")]
    pub qkv_bias: bool,
    /// DeiT's distillation token after `[CLS]` (TrOCR-small and -base's
    /// DeiT encoders have it; ViT's has not).
    #[serde(default = "yes")]
    pub distillation_token: bool,
    /// Dropout on the embeddings and residual branches.
    #[serde(default)]
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities.
    #[serde(default)]
    pub attention_probs_dropout_prob: f64,
    /// How the learned position embeddings start (a unidl key; no effect on
    /// loaded weights): `normal` (σ 0.02, `transformers`') or `sincos_2d`
    /// (each patch's row and column as sines and cosines, half the width
    /// each, as MAE's fixed embeddings; `[CLS]` and distillation positions
    /// zero), which lets a model trained from scratch tell patches apart
    /// from its first step.
    #[serde(default)]
    pub position_init: PositionInit,
    /// A convolutional stem before the patch projection (a unidl key, as
    /// ViT-Hybrid's and the "early convolutions" ViTs'; empty by default:
    /// `transformers`' linear patches): one 3×3 stride-2 convolution, batch
    /// norm and ReLU per entry, with that many output channels. Tokens then
    /// start from local features (strokes, glyph parts) instead of raw
    /// pixels. `patch_size` stays in image pixels and must be divisible by
    /// 2^n (n entries); the projection covers `patch_size / 2^n` of the
    /// stem's output. No `transformers` checkpoint has a stem.
    #[serde(default)]
    pub conv_stem: Vec<usize>,
}

/// The starting values of the encoder's learned position embeddings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionInit {
    /// Normal with σ 0.02 (`transformers`' initialisation).
    #[default]
    Normal,
    /// Two-dimensional sines and cosines of the patch's row and column.
    #[serde(rename = "sincos_2d")]
    Sincos2d,
}

/// The TrOCR decoder with `transformers`' `TrOCRConfig` names; the defaults
/// are TrOCR-small's (`microsoft/trocr-small-printed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrOcrDecoderConfig {
    /// Vocabulary size.
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    /// Decoder width.
    #[serde(default = "d_model")]
    pub d_model: usize,
    /// Decoder blocks.
    #[serde(default = "dec_layers")]
    pub decoder_layers: usize,
    /// Attention heads.
    #[serde(default = "dec_heads")]
    pub decoder_attention_heads: usize,
    /// Feed-forward width.
    #[serde(default = "dec_ffn")]
    pub decoder_ffn_dim: usize,
    /// Feed-forward activation.
    #[serde(default = "relu")]
    pub activation_function: Activation,
    /// Longest decoder sequence.
    #[serde(default = "max_positions")]
    pub max_position_embeddings: usize,
    /// Whether token embeddings are multiplied by `√d_model`.
    #[serde(default = "yes")]
    pub scale_embedding: bool,
    /// Learned positions (offset 2, as fairseq) or, when false, sinusoidal ones.
    #[serde(default = "yes")]
    pub use_learned_position_embeddings: bool,
    /// A layer norm after the token and position embeddings.
    #[serde(default = "yes")]
    pub layernorm_embedding: bool,
    /// Whether the output projection is the token embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Width of the encoder states the cross-attention reads (`None`: the
    /// encoder's output is projected to `d_model` by `enc_to_dec_proj`
    /// when the widths differ).
    #[serde(default)]
    pub cross_attention_hidden_size: Option<usize>,
    /// Dropout on embeddings and residual branches.
    #[serde(default)]
    pub dropout: f64,
    /// Dropout on the attention probabilities.
    #[serde(default)]
    pub attention_dropout: f64,
    /// Dropout after the feed-forward activation.
    #[serde(default)]
    pub activation_dropout: f64,
    /// Standard deviation of the initial weights.
    #[serde(default = "init_std")]
    pub init_std: f64,
    /// Padding id.
    #[serde(default = "one")]
    pub pad_token_id: usize,
    /// Begin-of-sequence id.
    #[serde(default)]
    pub bos_token_id: usize,
    /// End-of-sequence id.
    #[serde(default = "two")]
    pub eos_token_id: usize,
    /// The decoder's first input.
    #[serde(default = "two")]
    pub decoder_start_token_id: usize,
}

/// TrOCR: a ViT/DeiT encoder and a TrOCR decoder (`transformers`'
/// `VisionEncoderDecoderConfig` layout); the defaults are TrOCR-small's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TrOcrConfig {
    /// The image encoder.
    #[serde(default)]
    pub encoder: TrOcrEncoderConfig,
    /// The text decoder.
    #[serde(default)]
    pub decoder: TrOcrDecoderConfig,
    /// A unidl key (default `false`): a linear CTC head from the encoder's
    /// patch tokens to the decoder's vocabulary (padding = CTC blank), for
    /// the hybrid CTC/attention objective (`[task] ctc_weight`, D54). It
    /// adds `hidden_size·vocab_size + vocab_size` parameters, is not part
    /// of `transformers`' model (its loader leaves it as initialised) and
    /// generation never reads it.
    #[serde(default)]
    pub ctc_head: bool,
}

fn image_size() -> ImageSize {
    ImageSize::Square(384)
}
fn patch_size() -> ImageSize {
    ImageSize::Square(16)
}
fn channels() -> usize {
    3
}
fn enc_hidden() -> usize {
    384
}
fn enc_layers() -> usize {
    12
}
fn enc_heads() -> usize {
    6
}
fn enc_ffn() -> usize {
    1536
}
fn enc_eps() -> f64 {
    1e-12
}
fn yes() -> bool {
    true
}
fn vocab_size() -> usize {
    64044
}
fn d_model() -> usize {
    256
}
fn dec_layers() -> usize {
    6
}
fn dec_heads() -> usize {
    8
}
fn dec_ffn() -> usize {
    1024
}
fn relu() -> Activation {
    Activation::Relu
}
fn max_positions() -> usize {
    512
}
fn init_std() -> f64 {
    0.02
}
fn one() -> usize {
    1
}
fn two() -> usize {
    2
}

impl Default for TrOcrEncoderConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

impl Default for TrOcrDecoderConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

fn bad(key: &str, reason: String) -> TextError {
    TextError::Config {
        key: key.into(),
        reason,
    }
}

fn dropout_ok(key: &str, p: f64) -> Result<(), TextError> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(bad(key, format!("{p} is outside [0, 1)")))
    }
}

impl TrOcrEncoderConfig {
    /// Patches along `[height, width]`.
    pub fn grid(&self) -> [usize; 2] {
        let ([h, w], [ph, pw]) = (self.image_size.hw(), self.patch_size.hw());
        [h / ph, w / pw]
    }

    /// How much the convolutional stem shrinks each side: 2^(its layers).
    pub fn stem_scale(&self) -> usize {
        1usize << self.conv_stem.len().min(usize::BITS as usize - 1)
    }

    /// Encoder positions: the patches, `[CLS]` and the distillation token.
    pub fn positions(&self) -> usize {
        let [gh, gw] = self.grid();
        gh * gw + 1 + usize::from(self.distillation_token)
    }

    /// Checks the sizes; a typed error names the key (`encoder.…`).
    pub fn validate(&self) -> Result<(), TextError> {
        let [ph, pw] = self.patch_size.hw();
        for (key, v) in [
            ("encoder.patch_size", ph.min(pw)),
            ("encoder.num_channels", self.num_channels),
            ("encoder.hidden_size", self.hidden_size),
            ("encoder.num_attention_heads", self.num_attention_heads),
            ("encoder.intermediate_size", self.intermediate_size),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if let Some(i) = self.conv_stem.iter().position(|&c| c == 0) {
            return Err(bad(
                "encoder.conv_stem",
                format!("entry {i} is 0 channels; each must be at least 1"),
            ));
        }
        let scale = self.stem_scale();
        if ph % scale != 0 || pw % scale != 0 {
            return Err(bad(
                "encoder.conv_stem",
                format!(
                    "{} stride-2 layers shrink by {scale}, which does not divide patch_size {ph}×{pw}",
                    self.conv_stem.len()
                ),
            ));
        }
        let [h, w] = self.image_size.hw();
        if h == 0 || w == 0 || h % ph != 0 || w % pw != 0 {
            return Err(bad(
                "encoder.image_size",
                format!("{h}×{w} is not a non-empty multiple of patch_size {ph}×{pw}"),
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(bad(
                "encoder.num_attention_heads",
                format!(
                    "{} does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            ));
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(bad(
                "encoder.layer_norm_eps",
                format!("{} is not positive", self.layer_norm_eps),
            ));
        }
        dropout_ok("encoder.hidden_dropout_prob", self.hidden_dropout_prob)?;
        dropout_ok(
            "encoder.attention_probs_dropout_prob",
            self.attention_probs_dropout_prob,
        )
    }
}

impl TrOcrDecoderConfig {
    /// Checks the sizes; a typed error names the key (`decoder.…`).
    pub fn validate(&self) -> Result<(), TextError> {
        for (key, v) in [
            ("decoder.vocab_size", self.vocab_size),
            ("decoder.d_model", self.d_model),
            (
                "decoder.decoder_attention_heads",
                self.decoder_attention_heads,
            ),
            ("decoder.decoder_ffn_dim", self.decoder_ffn_dim),
            (
                "decoder.max_position_embeddings",
                self.max_position_embeddings,
            ),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if !self.d_model.is_multiple_of(self.decoder_attention_heads) {
            return Err(bad(
                "decoder.decoder_attention_heads",
                format!(
                    "{} does not divide d_model {}",
                    self.decoder_attention_heads, self.d_model
                ),
            ));
        }
        if !self.use_learned_position_embeddings && self.d_model < 4 {
            return Err(bad(
                "decoder.d_model",
                "sinusoidal positions need d_model ≥ 4".into(),
            ));
        }
        if self.cross_attention_hidden_size == Some(0) {
            return Err(bad(
                "decoder.cross_attention_hidden_size",
                "must be at least 1".into(),
            ));
        }
        for (key, id) in [
            ("decoder.pad_token_id", self.pad_token_id),
            ("decoder.bos_token_id", self.bos_token_id),
            ("decoder.eos_token_id", self.eos_token_id),
            (
                "decoder.decoder_start_token_id",
                self.decoder_start_token_id,
            ),
        ] {
            if id >= self.vocab_size {
                return Err(bad(
                    key,
                    format!("{id} is not below vocab_size {}", self.vocab_size),
                ));
            }
        }
        dropout_ok("decoder.dropout", self.dropout)?;
        dropout_ok("decoder.attention_dropout", self.attention_dropout)?;
        dropout_ok("decoder.activation_dropout", self.activation_dropout)
    }
}

impl TrOcrConfig {
    /// Checks both halves and how they meet; a typed error names the key.
    pub fn validate(&self) -> Result<(), TextError> {
        self.encoder.validate()?;
        self.decoder.validate()?;
        if let Some(c) = self.decoder.cross_attention_hidden_size
            && c != self.encoder.hidden_size
        {
            return Err(bad(
                "decoder.cross_attention_hidden_size",
                format!(
                    "{c} is not the encoder's hidden_size {} (as transformers requires)",
                    self.encoder.hidden_size
                ),
            ));
        }
        Ok(())
    }

    /// Whether the encoder's output is projected to `d_model` (`enc_to_dec_proj`).
    pub fn projects_encoder(&self) -> bool {
        self.encoder.hidden_size != self.decoder.d_model
            && self.decoder.cross_attention_hidden_size.is_none()
    }
}
