//! # unidl-nn — the module catalogue (T/AII 008 §6.1.1-d)
//!
//! Neural-network layers for unidl. Every layer is a Burn
//! [`Module`](burn::module::Module) built from a documented `…Config` with
//! `init` (parameterised layers take the [`Device`]; parameter-free ones, like
//! Burn's own pools and activations, take nothing) and used through
//! `forward`, whose documentation has a `# Shapes` section.
//!
//! Where Burn already has a layer it is **re-exported, not rewritten**;
//! this crate adds what Burn lacks.
//!
//! | group          | layers                                                                                   | origin |
//! |----------------|------------------------------------------------------------------------------------------|--------|
//! | [`activation`] | `Sigmoid`, `Relu`, `Tanh`, `Gelu`, `SiLU`, `LeakyRelu`                                   | Burn   |
//! | [`activation`] | [`Softmax`], [`LogSoftmax`] (modules with a `dim`)                                       | here   |
//! | [`attention`]  | [`MultiHeadAttention`] (padding/causal masks, additive position bias, unscaled mode, [`KvCache`]) | here |
//! | [`conv`]       | `Conv1d`/`2d`/`3d`, `ConvTranspose1d`/`2d`/`3d`                                          | Burn   |
//! | [`layers`]     | `Linear`, `Dropout`, `Embedding`                                                         | Burn   |
//! | [`norm`]       | `BatchNorm` (any rank), `LayerNorm`, `GroupNorm`                                         | Burn   |
//! | [`norm`]       | [`BatchNorm1d`], [`BatchNorm2d`], [`BatchNorm3d`], [`batch_norm`] (rank-checked, PyTorch's running-variance update) | here |
//! | [`pool`]       | `MaxPool1d`/`2d`, `AvgPool1d`/`2d`, `AdaptiveAvgPool1d`/`2d`/`3d`                        | Burn   |
//! | [`pool`]       | [`MaxPool3d`], [`AvgPool3d`], [`AdaptiveMaxPool1d`]/[`2d`](AdaptiveMaxPool2d)/[`3d`](AdaptiveMaxPool3d) | here |
//! | [`pool`]       | [`GlobalAvgPool1d`]/`2d`/`3d`, [`GlobalMaxPool1d`]/`2d`/`3d`                             | here   |
//! | [`relative_attention`] | [`RelativeAttention`] (Transformer-XL/XLNet relative attention: content, position and segment terms, two streams), [`rel_shift`], [`sinusoid_relative_positions`], [`segment_matrix`] | here |
//! | [`rnn`]        | [`Rnn`], [`Lstm`], [`Gru`]: multi-layer, bidirectional, PyTorch semantics and names      | here   |
//!
//! Everything is also re-exported at the crate root.
//!
//! Layers written here are composed of differentiable Burn tensor operations
//! only, so they run on every back-end and autodiff derives their gradients.
//!
//! Data layout follows PyTorch: channels first (`[N, C, ...]`); recurrent
//! layers take `[T, B, F]` unless `batch_first`. See [`rnn`] for how
//! recurrent parameter names map onto PyTorch's state-dict keys.
//!
//! ## Architecture invariant
//!
//! This crate depends on `burn` and `unidl-backend` only. It must never
//! depend on `unidl-tensor`, `unidl` or any other unidl crate above it, nor
//! on a specific Burn back-end crate: back-ends are chosen at run time through
//! [`Device`] (cargo features `ndarray`, `tch`, `wgpu`, `cuda` merely forward
//! to `unidl-backend`).
//!
//! Depends on: `unidl-backend`, `unidl-tensor` (the differentiable all-reduce
//! of synchronised batch normalisation).

pub mod activation;
pub mod attention;
pub mod conv;
pub mod layers;
pub mod norm;
pub mod pool;
pub mod relative_attention;
pub mod rnn;

pub use activation::*;
pub use attention::*;
pub use conv::*;
pub use layers::*;
pub use norm::*;
pub use pool::*;
pub use relative_attention::*;
pub use rnn::*;

/// Burn's run-time device (re-exported from `unidl-backend`).
pub use unidl_backend::Device;
