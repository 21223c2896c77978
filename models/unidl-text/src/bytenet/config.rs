//! ByteNet's architecture: the keys and their checks.

use serde::{Deserialize, Serialize};

use crate::TextError;

/// ByteNet's architecture; the defaults are the paper's translation model
/// (§6: 30 + 30 residual blocks, dilations 1, 2, 4, 8, 16 repeated, kernel
/// width 3 on both sides, d = 800 hidden units, a = 1.2 and b = 0 for
/// English→German) over the 261 ids of a byte-level tokenizer without
/// merges (5 special tokens + 256 bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteNetConfig {
    /// Vocabulary size (the run's tokenizer: 261 for `bpe_bytes` with no merges).
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    /// The paper's d: the inner width of a residual block; embeddings and
    /// the residual stream are `2 · hidden_units` wide ([`d_model`](Self::d_model)).
    #[serde(default = "hidden_units")]
    pub hidden_units: usize,
    /// Residual blocks of the encoder (the source network).
    #[serde(default = "blocks")]
    pub encoder_blocks: usize,
    /// Residual blocks of the decoder (the target network).
    #[serde(default = "blocks")]
    pub decoder_blocks: usize,
    /// Width of the encoder's dilated convolutions (odd: centred windows).
    #[serde(default = "kernel")]
    pub encoder_kernel_size: usize,
    /// Width of the decoder's causal dilated convolutions.
    #[serde(default = "kernel")]
    pub decoder_kernel_size: usize,
    /// Dilation of block `i` of each stack: `dilations[i % len]`.
    #[serde(default = "dilations")]
    pub dilations: Vec<usize>,
    /// Dynamic unfolding's a: a source of `|s|` tokens is encoded over
    /// `t̂ = ⌈a·|s| + b⌉` positions (at least 1).
    #[serde(default = "unfold_scale")]
    pub unfold_scale: f64,
    /// Dynamic unfolding's b (at least 0).
    #[serde(default)]
    pub unfold_offset: f64,
    /// Epsilon of the layer norms.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// Dropout on each residual block's output before the addition (the
    /// paper reports none; 0 disables it).
    #[serde(default)]
    pub dropout: f64,
}

fn vocab_size() -> usize {
    261
}
fn hidden_units() -> usize {
    800
}
fn blocks() -> usize {
    30
}
fn kernel() -> usize {
    3
}
fn dilations() -> Vec<usize> {
    vec![1, 2, 4, 8, 16]
}
fn unfold_scale() -> f64 {
    1.2
}
fn eps() -> f64 {
    1e-5
}

impl Default for ByteNetConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

impl ByteNetConfig {
    /// The residual stream's width, the paper's 2d.
    pub fn d_model(&self) -> usize {
        2 * self.hidden_units
    }

    /// Dilation of block `i` of either stack.
    pub fn dilation(&self, i: usize) -> usize {
        self.dilations[i % self.dilations.len()]
    }

    /// Dynamic unfolding: the encoder's length `t̂ = ⌈a·|s| + b⌉` for a
    /// source of `source_len` tokens (never shorter than the source, given
    /// a ≥ 1 and b ≥ 0; a tolerance of 1e-9 keeps `1.2 · 5` at 6).
    pub fn unfolded_length(&self, source_len: usize) -> usize {
        let t = (self.unfold_scale * source_len as f64 + self.unfold_offset - 1e-9).ceil();
        (t.max(0.0) as usize).max(source_len)
    }

    /// Checks the sizes; a typed error names the key.
    pub fn validate(&self) -> Result<(), TextError> {
        let bad = |key: &str, reason: String| TextError::Config {
            key: key.into(),
            reason,
        };
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_units", self.hidden_units),
            ("encoder_kernel_size", self.encoder_kernel_size),
            ("decoder_kernel_size", self.decoder_kernel_size),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if self.encoder_kernel_size.is_multiple_of(2) {
            return Err(bad(
                "encoder_kernel_size",
                format!(
                    "{} is even: the encoder's windows are centred, so the width must be odd",
                    self.encoder_kernel_size
                ),
            ));
        }
        if self.dilations.is_empty() {
            return Err(bad("dilations", "needs at least one dilation".into()));
        }
        if let Some(i) = self.dilations.iter().position(|&r| r == 0) {
            return Err(bad("dilations", format!("entry {i} is 0: at least 1")));
        }
        if !(self.unfold_scale.is_finite() && self.unfold_scale >= 1.0) {
            return Err(bad(
                "unfold_scale",
                format!(
                    "{} is below 1: the unfolded source would be shorter than the source",
                    self.unfold_scale
                ),
            ));
        }
        if !(self.unfold_offset.is_finite() && self.unfold_offset >= 0.0) {
            return Err(bad(
                "unfold_offset",
                format!("{} is negative or not finite", self.unfold_offset),
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon > 0.0) {
            return Err(bad(
                "layer_norm_epsilon",
                format!("{} is not positive", self.layer_norm_epsilon),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad(
                "dropout",
                format!("{} is outside [0, 1)", self.dropout),
            ));
        }
        Ok(())
    }
}
