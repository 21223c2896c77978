//! Convolutions and transposed convolutions (1-D, 2-D, 3-D), re-exported from Burn.
//!
//! Inputs are channels-first: `[N, C_in, L]`, `[N, C_in, H, W]`,
//! `[N, C_in, D, H, W]`. Weights are stored as in PyTorch,
//! `[C_out, C_in / groups, k..]` for convolutions and
//! `[C_in, C_out / groups, k..]` for transposed convolutions.

pub use burn::nn::conv::{
    Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Conv3d, Conv3dConfig, ConvTranspose1d,
    ConvTranspose1dConfig, ConvTranspose2d, ConvTranspose2dConfig, ConvTranspose3d,
    ConvTranspose3dConfig,
};
pub use burn::nn::{PaddingConfig1d, PaddingConfig2d, PaddingConfig3d};
