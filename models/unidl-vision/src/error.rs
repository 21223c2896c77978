//! Errors of the vision zoo.

use std::path::PathBuf;

/// What can go wrong when building a model or loading its weights.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// A config value is out of range; `key` names the config key.
    #[error("[model] {key}: {reason}")]
    Config {
        /// The config key (`depth`, `num_classes`, …).
        key: String,
        /// Why the value is refused.
        reason: String,
    },
    /// An input tensor has a shape the model cannot take.
    #[error("{model}: input of shape {shape:?}: {reason}")]
    Input {
        /// The model.
        model: String,
        /// The shape given.
        shape: Vec<usize>,
        /// Why it is refused.
        reason: String,
    },
    /// A torchvision state dict does not fit the model (strict loading).
    #[error("{path}: torchvision state dict does not match the model: {report}")]
    Mismatch {
        /// The weights file.
        path: PathBuf,
        /// What matched and what did not, in torchvision's key names.
        report: unidl_tensor::module::LoadReport,
    },
    /// A PyTorch checkpoint could not be read (missing, corrupt, unsupported
    /// pickle content); the error names the file.
    #[error(transparent)]
    Checkpoint(#[from] unidl_interop::InteropError),
    /// Reading the weights file or moving a tensor failed.
    #[error(transparent)]
    Module(#[from] unidl_tensor::module::ModuleError),
    /// A tensor operation failed (shape, dtype).
    #[error(transparent)]
    Tensor(#[from] unidl_tensor::TensorError),
    /// RoI Align refused its input (boxes, batch indices, sizes, scales).
    #[error(transparent)]
    RoiAlign(#[from] crate::detection::RoiAlignError),
}

/// Result with [`VisionError`].
pub type Result<T> = std::result::Result<T, VisionError>;

/// Checks that a config value is at least one.
pub(crate) fn positive(key: &str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(VisionError::Config {
            key: key.into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// Checks that a config value is a probability or IoU in `[0, 1]`.
pub(crate) fn unit_interval(key: &str, value: f32) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(VisionError::Config {
            key: key.into(),
            reason: format!("{value} is not in [0, 1]"),
        })
    }
}
