//! TrOCR — Li et al., "TrOCR: Transformer-based Optical Character
//! Recognition with Pre-trained Models", AAAI 2023 (arXiv 2021), laid out
//! as `transformers`' `VisionEncoderDecoderModel` with a ViT (or DeiT)
//! encoder and a `TrOCRForCausalLM` decoder: the image is cut into square
//! patches (a convolution with kernel = stride = patch), a `[CLS]` token
//! (and DeiT's distillation token) is prepended and learned positions added;
//! pre-norm Transformer blocks and a final layer norm encode it; a linear
//! `enc_to_dec_proj` maps the encoder's width to the decoder's when they
//! differ; the decoder embeds tokens (× `√d_model` when `scale_embedding`),
//! adds learned positions (offset 2, as fairseq) or sinusoidal ones, an
//! optional layer norm, then post-norm blocks of causal self-attention,
//! cross-attention over the encoder states and a feed-forward; the output
//! projection (no bias) is its own matrix or the token embedding.
//!
//! [`TrOcrConfig`] uses `transformers`' key names; [`load_hf_trocr_weights`]
//! maps `transformers` state dicts (both the hub checkpoints' ViT names and
//! transformers 5's) onto these modules.

mod config;
mod decoding;
mod model;
mod weights;

pub use config::{
    Activation, ImageSize, PositionInit, TrOcrConfig, TrOcrDecoderConfig, TrOcrEncoderConfig,
};
pub use model::{
    POSITION_OFFSET, StemLayer, TrOcr, TrOcrDecoder, TrOcrDecoderCache, TrOcrDecoderLayer,
    VitEmbeddings, VitEncoder, VitLayer,
};
pub use weights::{TrOcrModelConfig, hf_trocr_rules, load_hf_trocr_weights};
