//! Dense layers, dropout and embeddings, re-exported from Burn.
//!
//! Note on [`Linear`]: its weight is held as `[d_input, d_output]`, the
//! transpose of PyTorch's `nn.Linear.weight` (`[out_features, in_features]`).
//! With [`LinearLayout::Col`] Burn saves and loads the weight in PyTorch's
//! orientation; with the default [`LinearLayout::Row`] records hold the
//! in-memory orientation.
//!
//! [`Dropout`] is active only when the input lives on an autodiff device and
//! the module is in training mode (`Module::valid` turns it off).

pub use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig,
    LinearLayout,
};
