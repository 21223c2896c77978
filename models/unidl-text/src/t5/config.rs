//! T5's architecture: `transformers`' `T5Config` keys and their checks.

use serde::{Deserialize, Serialize};

use crate::TextError;

/// The feed-forward block (`feed_forward_proj`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedForwardProj {
    /// `wo(relu(wi x))` (T5 v1.0, t5-small).
    #[default]
    Relu,
    /// `wo(gelu_new(wi_0 x) · wi_1 x)` (T5 v1.1, flan-t5).
    GatedGelu,
}

/// T5's architecture with `transformers`' `T5Config` names; the defaults are t5-small's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct T5Config {
    /// Vocabulary size.
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    /// Model width.
    #[serde(default = "d_model")]
    pub d_model: usize,
    /// Width of each attention head.
    #[serde(default = "d_kv")]
    pub d_kv: usize,
    /// Feed-forward width.
    #[serde(default = "d_ff")]
    pub d_ff: usize,
    /// Encoder blocks.
    #[serde(default = "layers")]
    pub num_layers: usize,
    /// Decoder blocks (default: `num_layers`).
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads.
    #[serde(default = "heads")]
    pub num_heads: usize,
    /// Relative-position buckets.
    #[serde(default = "buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance from which all positions share the last bucket.
    #[serde(default = "max_distance")]
    pub relative_attention_max_distance: usize,
    /// Dropout everywhere (embeddings, attention, feed-forward, residuals).
    #[serde(default = "dropout")]
    pub dropout_rate: f64,
    /// RMS-norm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// The feed-forward block.
    #[serde(default)]
    pub feed_forward_proj: FeedForwardProj,
    /// Whether the language-model head is the shared embedding.
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    /// Padding id.
    #[serde(default)]
    pub pad_token_id: usize,
    /// End-of-sequence id.
    #[serde(default = "eos")]
    pub eos_token_id: usize,
    /// The decoder's first input (T5: the padding id).
    #[serde(default)]
    pub decoder_start_token_id: usize,
    /// Scale of the initial weights (`initializer_factor`).
    #[serde(default = "one")]
    pub initializer_factor: f64,
}

fn vocab_size() -> usize {
    32128
}
fn d_model() -> usize {
    512
}
fn d_kv() -> usize {
    64
}
fn d_ff() -> usize {
    2048
}
fn layers() -> usize {
    6
}
fn heads() -> usize {
    8
}
fn buckets() -> usize {
    32
}
fn max_distance() -> usize {
    128
}
fn dropout() -> f64 {
    0.1
}
fn eps() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}
fn eos() -> usize {
    1
}
fn one() -> f64 {
    1.0
}

impl Default for T5Config {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

impl T5Config {
    /// Decoder blocks.
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// Checks the sizes; a typed error names the key.
    pub fn validate(&self) -> Result<(), TextError> {
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
            (
                "relative_attention_num_buckets",
                self.relative_attention_num_buckets,
            ),
        ] {
            if v == 0 {
                return Err(TextError::Config {
                    key: key.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.relative_attention_num_buckets < 4
            || self.relative_attention_max_distance < self.relative_attention_num_buckets / 2
        {
            return Err(TextError::Config {
                key: "relative_attention_num_buckets".into(),
                reason: format!(
                    "{} buckets up to distance {}: need at least 4 buckets and a distance of at least half of them",
                    self.relative_attention_num_buckets, self.relative_attention_max_distance
                ),
            });
        }
        for (key, id) in [
            ("pad_token_id", self.pad_token_id),
            ("eos_token_id", self.eos_token_id),
            ("decoder_start_token_id", self.decoder_start_token_id),
        ] {
            if id >= self.vocab_size {
                return Err(TextError::Config {
                    key: key.into(),
                    reason: format!("{id} is not below vocab_size {}", self.vocab_size),
                });
            }
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            return Err(TextError::Config {
                key: "dropout_rate".into(),
                reason: format!("{} is outside [0, 1)", self.dropout_rate),
            });
        }
        Ok(())
    }
}
