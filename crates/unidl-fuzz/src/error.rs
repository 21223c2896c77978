//! Errors of the harness itself (never of a reader under test: those are
//! outcomes or findings).

use std::path::{Path, PathBuf};

/// What can stop the harness.
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No target has this name.
    #[error("no fuzz target `{name}`; targets: {known}")]
    UnknownTarget {
        /// The name asked for.
        name: String,
        /// The targets of this build.
        known: String,
    },
    /// A target has no seed file.
    #[error("fuzz target `{target}` has no seed file")]
    NoSeeds {
        /// The target.
        target: String,
    },
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// A worker process could not be started or spoke nonsense.
    #[error("worker for `{target}`: {reason}")]
    Worker {
        /// The target.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl FuzzError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        FuzzError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
