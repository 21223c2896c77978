//! T5 — Raffel et al., "Exploring the Limits of Transfer Learning with a
//! Unified Text-to-Text Transformer", JMLR 2020, laid out as
//! `transformers`' `T5ForConditionalGeneration`: a shared embedding; an
//! encoder and a decoder of pre-norm blocks with RMS layer norms (no bias,
//! no mean subtraction), unscaled attention without biases whose scores get
//! a learnt relative-position bias (log-spaced buckets, computed by the
//! first block of each stack and shared by the others), a ReLU or gated-GELU
//! feed-forward; the decoder adds cross-attention; the language-model head
//! is the shared embedding (scaled by `d_model^-1/2`) or its own matrix.
//!
//! [`T5Config`] uses `transformers`' key names; [`load_hf_t5_weights`] maps
//! `transformers` state dicts onto these modules.

mod config;
mod decoding;
mod model;
mod weights;

pub use config::{FeedForwardProj, T5Config};
pub use model::{
    T5Attention, T5Block, T5DecoderCache, T5Encoded, T5FeedForward, T5ForConditionalGeneration,
    T5Stack, relative_position_bucket,
};
pub use weights::{T5ModelConfig, hf_t5_rules, load_hf_t5_weights};
