//! XLNet's architecture: `transformers`' `XLNetConfig` keys and their checks.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TextError;

/// The feed-forward activation (`ff_activation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfActivation {
    /// GELU with the exact error function (XLNet's).
    #[default]
    Gelu,
    /// ReLU.
    Relu,
    /// GELU's tanh approximation (`gelu_new`).
    GeluNew,
    /// SiLU (`silu`, `swish`).
    #[serde(alias = "swish")]
    Silu,
}

/// The `ff_activation` values [`FfActivation`] reads.
const FF_ACTIVATIONS: [&str; 5] = ["gelu", "relu", "gelu_new", "silu", "swish"];

/// XLNet's architecture with `transformers`' `XLNetConfig` names; the
/// defaults are xlnet-base-cased's. Settings of the pretraining set-up that
/// this implementation does not have (Transformer-XL's causal attention,
/// the bidirectional data pipeline, shared relative biases, another
/// sequence summary) are refused by [`validate`](Self::validate) naming the
/// key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XLNetConfig {
    /// Vocabulary size.
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    /// Width of every token's representation (even: the sinusoidal
    /// position encodings pair a sine and a cosine per frequency).
    #[serde(default = "d_model")]
    pub d_model: usize,
    /// Layers.
    #[serde(default = "n_layer")]
    pub n_layer: usize,
    /// Attention heads (must divide `d_model`).
    #[serde(default = "n_head")]
    pub n_head: usize,
    /// Width of each head: `d_model / n_head`, derived when absent (a
    /// `transformers` config writes it; another value is refused).
    #[serde(default)]
    pub d_head: Option<usize>,
    /// Width of the feed-forward layer.
    #[serde(default = "d_inner")]
    pub d_inner: usize,
    /// Feed-forward activation.
    #[serde(default)]
    pub ff_activation: FfActivation,
    /// Whether every layer has its own relative biases (`true`, the only
    /// layout `transformers` has).
    #[serde(default = "yes")]
    pub untie_r: bool,
    /// The attention: `"bi"` (XLNet's bidirectional attention; `"uni"`,
    /// Transformer-XL's causal attention, is refused).
    #[serde(default = "attn_type")]
    pub attn_type: String,
    /// Layer-norm epsilon.
    #[serde(default = "layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Dropout on the embeddings, position encodings, attention
    /// probabilities and outputs, feed-forward and last hidden state.
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// The bidirectional data pipeline of pretraining (`false` only).
    #[serde(default)]
    pub bi_data: bool,
    /// Relative distances beyond `clamp_len` are encoded as `±clamp_len`;
    /// `-1` (or any value `≤ 0`): no clamping.
    #[serde(default = "clamp_len")]
    pub clamp_len: i64,
    /// Same-length attention windows of causal attention (`false` only).
    #[serde(default)]
    pub same_length: bool,
    /// Tokens of memory `transformers` returns for the next segment. No
    /// memory is carried between calls here, and one call's outputs do not
    /// depend on it, so any value is accepted and has no effect.
    #[serde(default)]
    pub mem_len: Option<usize>,
    /// Standard deviation of the initial weights.
    #[serde(default = "initializer_range")]
    pub initializer_range: f64,
    /// How the classifier summarises a sequence: `"last"` (its last real
    /// token; see [`XLNetForSequenceClassification`](super::XLNetForSequenceClassification)).
    #[serde(default = "summary_type")]
    pub summary_type: String,
    /// Whether the summary is projected (`true` only).
    #[serde(default = "yes")]
    pub summary_use_proj: bool,
    /// The summary's activation (`"tanh"` only).
    #[serde(default = "summary_activation")]
    pub summary_activation: Option<String>,
    /// Dropout after the summary's activation.
    #[serde(default = "dropout")]
    pub summary_last_dropout: f64,
}

fn vocab_size() -> usize {
    32000
}
fn d_model() -> usize {
    768
}
fn n_layer() -> usize {
    12
}
fn n_head() -> usize {
    12
}
fn d_inner() -> usize {
    3072
}
fn yes() -> bool {
    true
}
fn attn_type() -> String {
    "bi".into()
}
fn layer_norm_eps() -> f64 {
    1e-12
}
fn dropout() -> f64 {
    0.1
}
fn clamp_len() -> i64 {
    -1
}
fn initializer_range() -> f64 {
    0.02
}
fn summary_type() -> String {
    "last".into()
}
fn summary_activation() -> Option<String> {
    Some("tanh".into())
}

impl Default for XLNetConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

fn config_error(key: &str, reason: impl Into<String>) -> TextError {
    TextError::Config {
        key: key.into(),
        reason: reason.into(),
    }
}

impl XLNetConfig {
    /// Reads a `transformers` `config.json`: the architecture keys are
    /// taken, bookkeeping keys (`architectures`, `id2label`, `reuse_len`,
    /// `use_mems_eval`, …) are ignored, and a setting this implementation
    /// does not have is refused naming the key.
    pub fn from_hf_json(path: &Path) -> Result<Self, TextError> {
        let map = crate::hf::read_json_object(path)?;
        if let Some(v) = map.get("ff_activation")
            && !v.as_str().is_some_and(|a| FF_ACTIVATIONS.contains(&a))
        {
            return Err(config_error(
                &format!("{}: ff_activation", path.display()),
                format!("{v} is not supported (one of {FF_ACTIVATIONS:?})"),
            ));
        }
        let known = serde_json::to_value(XLNetConfig::default()).expect("serialisable");
        let known = known.as_object().expect("an object");
        let kept: serde_json::Map<_, _> = map
            .into_iter()
            .filter(|(k, _)| known.contains_key(k))
            .collect();
        let cfg: XLNetConfig =
            serde_json::from_value(serde_json::Value::Object(kept)).map_err(|e| {
                TextError::File {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        cfg.validate().map_err(|e| match e {
            TextError::Config { key, reason } => TextError::Config {
                key: format!("{}: {key}", path.display()),
                reason,
            },
            other => other,
        })?;
        Ok(cfg)
    }

    /// Width of each head (`d_head`, or `d_model / n_head`).
    pub fn head_width(&self) -> usize {
        self.d_head
            .unwrap_or_else(|| self.d_model.checked_div(self.n_head).unwrap_or(0))
    }

    /// `clamp_len` as a distance, `None` when nothing is clamped.
    pub fn clamp(&self) -> Option<usize> {
        usize::try_from(self.clamp_len).ok().filter(|&c| c > 0)
    }

    /// Checks the sizes and settings; a typed error names the key.
    pub fn validate(&self) -> Result<(), TextError> {
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_head", self.n_head),
            ("d_inner", self.d_inner),
        ] {
            if v == 0 {
                return Err(config_error(key, "must be at least 1"));
            }
        }
        if !self.d_model.is_multiple_of(self.n_head) {
            return Err(config_error(
                "n_head",
                format!("{} does not divide d_model {}", self.n_head, self.d_model),
            ));
        }
        if !self.d_model.is_multiple_of(2) {
            return Err(config_error(
                "d_model",
                format!(
                    "{} is odd: the position encodings need an even width",
                    self.d_model
                ),
            ));
        }
        if let Some(h) = self.d_head
            && h != self.d_model / self.n_head
        {
            return Err(config_error(
                "d_head",
                format!(
                    "{h} is not d_model / n_head = {}",
                    self.d_model / self.n_head
                ),
            ));
        }
        if self.attn_type != "bi" {
            return Err(config_error(
                "attn_type",
                format!(
                    "{:?} is not supported (only \"bi\": XLNet's bidirectional attention)",
                    self.attn_type
                ),
            ));
        }
        for (key, got, wanted, what) in [
            ("untie_r", self.untie_r, true, "per-layer relative biases"),
            ("bi_data", self.bi_data, false, "one data direction"),
            (
                "same_length",
                self.same_length,
                false,
                "no same-length windows",
            ),
            (
                "summary_use_proj",
                self.summary_use_proj,
                true,
                "a projected summary",
            ),
        ] {
            if got != wanted {
                return Err(config_error(
                    key,
                    format!("{got} is not supported (only {wanted}: {what})"),
                ));
            }
        }
        if self.summary_type != "last" {
            return Err(config_error(
                "summary_type",
                format!("{:?} is not supported (only \"last\")", self.summary_type),
            ));
        }
        if self.summary_activation.as_deref() != Some("tanh") {
            return Err(config_error(
                "summary_activation",
                format!(
                    "{:?} is not supported (only \"tanh\")",
                    self.summary_activation
                ),
            ));
        }
        for (key, p) in [
            ("dropout", self.dropout),
            ("summary_last_dropout", self.summary_last_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(config_error(key, format!("{p} is outside [0, 1)")));
            }
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(config_error(
                "layer_norm_eps",
                format!("{} is not positive", self.layer_norm_eps),
            ));
        }
        Ok(())
    }
}
