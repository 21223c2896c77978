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
    /// A unidl tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] unidl_tensor::TensorError),
}
