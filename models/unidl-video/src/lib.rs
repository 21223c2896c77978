//! # unidl-video — the video model zoo (T/AII 008 §6.3.4)
//!
//! | task | model | module |
//! |---|---|---|
//! | video classification | ResNet3D: R3D-18, MC3-18, R(2+1)D-18 (Tran et al. 2018) | [`resnet3d`] |
//! | video classification | S3D (Xie et al. 2018) | [`s3d`] |
//!
//! Both are laid out as torchvision 0.24's `video.r3d_18` / `mc3_18` /
//! `r2plus1d_18` and `video.s3d`: same layers, same initialisation, and
//! torchvision's state dicts (`.pth`, safetensors) load through
//! [`weights`]. Each model is a documented `…Config` (serde, unknown keys
//! refused) with `init(&Device)` and a `forward` whose documentation has a
//! `# Shapes` section; `try_forward` checks the clip first and returns a
//! typed error. [`register`] adds them to a [`unidl_run::ModelRegistry`]
//! for `video_classification` runs (`format = "video_folder"`).
//!
//! ## Architecture invariant
//!
//! Depends on the core (`unidl-backend`, `unidl-tensor`, `unidl-nn`,
//! `unidl-interop`, `unidl-train`, `unidl-run`) and Burn — never on the CLI
//! or another zoo crate. Nothing is downloaded.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-nn`, `unidl-interop`, `unidl-train`, `unidl-run`.
//! Dev-depends on: `unidl-data`, `unidl-testkit`.

mod blocks;
mod registry;
pub mod resnet3d;
pub mod s3d;
pub mod weights;

pub use resnet3d::{VideoResNet, VideoResNetConfig, VideoResNetVariant};
pub use s3d::{S3d, S3dConfig};

/// Errors of the video zoo.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// A config value is out of range; names the key.
    #[error("[model] {key}: {reason}")]
    Config {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A clip the model cannot take; names the model and the shape.
    #[error("{model}: clip of shape {shape:?}: {reason}")]
    Input {
        /// The model.
        model: String,
        /// The shape given.
        shape: Vec<usize>,
        /// Why.
        reason: String,
    },
    /// Foreign weights do not load (the report lists every key at fault).
    #[error("weights: {0}")]
    Weights(String),
}

/// Result with [`VideoError`].
pub type Result<T> = std::result::Result<T, VideoError>;

pub(crate) fn positive(key: &str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(VideoError::Config {
            key: key.into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// Registers `video_resnet` (R3D, MC3, R(2+1)D) and `s3d`.
pub fn register(registry: &mut unidl_run::ModelRegistry) -> unidl_run::Result<()> {
    registry.register::<VideoResNetConfig>(
        "video_resnet",
        "ResNet3D video classifier: R3D, MC3 or R(2+1)D convolutions (Tran et al. 2018; torchvision's weights load)",
    )?;
    registry.register::<S3dConfig>(
        "s3d",
        "S3D video classifier: separable 3-D inception blocks (Xie et al. 2018; torchvision's weights load)",
    )?;
    Ok(())
}
