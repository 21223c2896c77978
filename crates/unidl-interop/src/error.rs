//! Errors of the adapters. Every variant names the file, key or shape at fault.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = InteropError> = std::result::Result<T, E>;

/// What can go wrong reading, converting or writing foreign checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// The file does not exist.
    #[error("{path}: not found")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The file is truncated, malformed or not of the expected format.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is well-formed but uses something this reader does not support
    /// (a dtype, a record type, a pickle that needs arbitrary code).
    #[error("{path}: unsupported: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// A key cannot be mapped or converted (wrong rank for a layout rule,
    /// shape mismatch, missing key in strict mode).
    #[error("key `{key}`: {reason}")]
    Mapping {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Strict loading found missing, unexpected or shape-mismatched keys
    /// (unidl names, after mapping); nothing was loaded.
    #[error("{path}: checkpoint does not match the module: {report}")]
    Load {
        /// The checkpoint.
        path: PathBuf,
        /// Every key that did not match.
        report: Box<unidl_tensor::module::LoadReport>,
    },
    /// The module API failed while loading.
    #[error(transparent)]
    Module(Box<unidl_tensor::module::ModuleError>),
    /// A unidl tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] unidl_tensor::TensorError),
}
