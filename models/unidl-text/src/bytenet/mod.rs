//! ByteNet — Kalchbrenner, Espeholt, Simonyan, van den Oord, Graves and
//! Kavukcuoglu, "Neural Machine Translation in Linear Time",
//! arXiv:1610.10099 (2016): byte-level translation by two stacks of dilated
//! one-dimensional convolutions, the decoder stacked on the encoder and
//! dynamically unfolded over its output.
//!
//! ## Definition
//!
//! With d = `hidden_units` (the paper's "number of hidden units") the
//! residual stream is 2d wide; a, b = `unfold_scale`, `unfold_offset`;
//! kernel widths k; block `i` of each stack has dilation
//! `dilations[i % len]` (the paper: 1, 2, 4, 8, 16 repeated).
//!
//! - **Residual block** (Fig. 3, left, the translation variant): layer norm
//!   (over channels) → ReLU → 1×1 convolution 2d → d → layer norm → ReLU →
//!   k-wide dilated convolution d → d → layer norm → ReLU → 1×1 convolution
//!   d → 2d, added to the block's input. Optional dropout (not in the paper)
//!   acts on the branch before the addition.
//! - **Encoder** (source network): the source embedding (2d), zero at padded
//!   positions; **dynamic unfolding** (§3.2): a source of `|s|` tokens is
//!   encoded over t̂ = ⌈a·|s| + b⌉ positions (the paper's English→German
//!   a = 1.2, b = 0), its embedding zero-padded from `|s|` to t̂; then
//!   `encoder_blocks` residual blocks whose convolutions are centred
//!   (`(k − 1)/2 · dilation` positions each side, k odd) and read zeros at
//!   every position ≥ t̂ (so the zero padding is exactly what a lone,
//!   unpadded source would see: batch padding never leaks into a real
//!   output); the output is zero at positions ≥ t̂.
//! - **Decoder** (target network, stacked on the encoder, §3.1): position t
//!   reads `[E_tgt(y_{t−1}); h_t]` — the target embedding (2d) of the
//!   previous token (`[BOS]` at t = 0) **concatenated** with the encoder's
//!   column t (2d; zero for t ≥ t̂: the decoder may unfold past the
//!   estimated length, conditioned on no source column; columns beyond the
//!   target's length are not read) — projected by a 1×1 convolution 4d → 2d;
//!   then `decoder_blocks` residual blocks with **causal** (masked)
//!   convolutions (`(k − 1)·dilation` zeros on the left), then the paper's
//!   head: 1×1 convolution 2d → 2d, ReLU, 1×1 convolution 2d → vocab (the
//!   logits; softmax in the loss).
//!
//! Choices where the paper is silent: the source column is
//! **concatenated** with the target embedding and projected (§3.1 only
//! stacks the decoder on the encoder's output; a sum would be the special
//! case of a fixed projection, the learnt one weighs the two 2d-wide
//! inputs); t̂ is rounded up; columns past t̂ are zeros (the paper's
//! "no representation", figure 2), not a learnt vector; the head's first
//! convolution ("one more convolution and ReLU") keeps the width 2d;
//! weights follow PyTorch's default initialisation.
//!
//! ## The paper's configuration ([`ByteNetConfig::default`])
//!
//! d = 800, 30 + 30 blocks, k = 3 on both sides, vocabulary 261 (5 special
//! tokens + 256 bytes): **278,312,261 parameters**.
//!
//! - one block, `(4 + k)·d² + 12·d` = 7 · 640,000 + 9,600 = 4,489,600:
//!   1×1 2d → d 1,280,800 (2d·d + d), k-wide d → d 1,920,800 (k·d² + d),
//!   1×1 d → 2d 1,281,600 (d·2d + 2d), layer norms 3,200 + 1,600 + 1,600;
//! - 60 blocks: 269,376,000;
//! - two embeddings: 2 · 261 · 1,600 = 835,200;
//! - decoder input 4d → 2d: 3,200 · 1,600 + 1,600 = 5,121,600;
//! - head: 1,600 · 1,600 + 1,600 = 2,561,600 and 1,600 · 261 + 261 = 417,861;
//! - total 269,376,000 + 835,200 + 5,121,600 + 2,561,600 + 417,861 = 278,312,261
//!   (`tests/reference/gen_bytenet.py` counts the same in PyTorch).
//!
//! ## Decoding
//!
//! [`ByteNet::decode_step`] runs new positions given the last
//! `(k − 1)·dilation` inputs of every decoder convolution
//! ([`ByteNetDecoderCache`]); step-by-step decoding therefore costs one
//! position per step and equals teacher forcing. [`load_bytenet_weights`]
//! loads checkpoints of the PyTorch definition in `gen_bytenet.py` (same
//! names, `Conv1d` layout `[out, in, k]`).

mod config;
mod decoding;
mod model;
mod weights;

pub use config::ByteNetConfig;
pub use model::{ByteNet, ByteNetBlock, ByteNetDecoderCache, ByteNetEncoded};
pub use weights::{ByteNetModelConfig, bytenet_rules, load_bytenet_weights};
