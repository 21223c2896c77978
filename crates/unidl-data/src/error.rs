//! Errors of the data layer. Every variant names the file, key or index at fault.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// What can go wrong reading, transforming or batching data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data set root or sample file does not exist (B.1.1, B.1.2).
    #[error("{path}: not found")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A file exists but cannot be read or decoded (corrupt, truncated, wrong format).
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A text or annotation file does not parse.
    #[error("{path}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A sample fails a validation rule (size, channels, label range…) (P-e).
    #[error("{what}: {reason}")]
    Invalid {
        /// The sample or file.
        what: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A configuration value is missing, unknown or out of range.
    #[error("config key `{key}`: {reason}")]
    Config {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An index outside the data set.
    #[error("index {index} is out of range for a data set of {len} samples")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// Number of samples.
        len: usize,
    },
    /// A transform cannot apply to this sample (e.g. an image transform on audio).
    #[error("transform `{transform}`: {reason}")]
    Transform {
        /// Transform name.
        transform: String,
        /// Why.
        reason: String,
    },
    /// A tensor operation failed while collating.
    #[error(transparent)]
    Tensor(#[from] unidl_tensor::TensorError),
}

impl DataError {
    pub(crate) fn config(key: &str, reason: impl Into<String>) -> Self {
        DataError::Config {
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn transform(name: &str, reason: impl Into<String>) -> Self {
        DataError::Transform {
            transform: name.to_string(),
            reason: reason.into(),
        }
    }

    /// A not-found error for a missing path, else a corrupt-file error with the I/O reason.
    pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
    }
}
