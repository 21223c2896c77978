//! The one error type of the crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while probing, decoding or validating media.
///
/// Every variant that concerns a file names that file's path, so an error from
/// deep inside a data pipeline can be traced back to the sample that caused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The file does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },

    /// The file exists but could not be read.
    #[error("{}: I/O error: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file is zero bytes long.
    #[error("{}: file is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// The file ends before the end its own header announces: decoding it
    /// would have returned silently fewer samples or frames.
    #[error("{}: file is truncated: {detail}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was announced and what was found.
        detail: String,
    },

    /// The file is not valid media of the kind its name or header says, or a
    /// packet in it failed to decode.
    #[error("{}: corrupt or unreadable media: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder reported.
        detail: String,
    },

    /// The file is well formed, but its format or codec is not supported by
    /// the decoders compiled in.
    #[error("{}: unsupported media: {detail}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        detail: String,
    },

    /// Decoding this file needs a cargo feature of `unidl-media` that was not
    /// enabled at build time.
    #[error("{}: decoding this file needs unidl-media's `{feature}` feature, which is not enabled", path.display())]
    FeatureDisabled {
        /// The file.
        path: PathBuf,
        /// The cargo feature that would handle it.
        feature: &'static str,
    },

    /// The file has no stream of the kind that was asked for (for example
    /// `load_audio` on a video without sound).
    #[error("{}: no {kind} stream", path.display())]
    NoStream {
        /// The file.
        path: PathBuf,
        /// `"audio"` or `"video"`.
        kind: &'static str,
    },

    /// The file's audio could not be resampled or remixed as asked.
    #[error("{}: cannot convert audio: {detail}", path.display())]
    Conversion {
        /// The file (empty for in-memory audio).
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },

    /// `AudioOptions`, `FrameSelection`, `VideoOptions` or `AudioLimits` hold
    /// a value that makes no sense (zero rate, zero frames, reversed window…).
    #[error("invalid options: {0}")]
    InvalidOptions(String),

    /// Decoded audio is shorter than `AudioLimits::min_secs`.
    #[error("audio is {duration_secs:.3} s long, shorter than the minimum {min_secs:.3} s")]
    TooShort {
        /// The audio's duration.
        duration_secs: f64,
        /// The limit.
        min_secs: f64,
    },

    /// Decoded audio is longer than `AudioLimits::max_secs`.
    #[error("audio is {duration_secs:.3} s long, longer than the maximum {max_secs:.3} s")]
    TooLong {
        /// The audio's duration.
        duration_secs: f64,
        /// The limit.
        max_secs: f64,
    },

    /// Decoded audio does not have the sample rate `AudioLimits::sample_rate`
    /// requires.
    #[error("audio has sample rate {actual} Hz, expected {expected} Hz")]
    SampleRateMismatch {
        /// The required rate.
        expected: u32,
        /// The audio's rate.
        actual: u32,
    },

    /// An [`Audio`](crate::Audio) value is inconsistent (no channels, a sample
    /// count that is not a multiple of the channel count, NaN or infinite
    /// samples).
    #[error("malformed audio buffer: {0}")]
    MalformedAudio(String),
}

impl MediaError {
    /// The file this error is about, if it is about a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            MediaError::NotFound { path }
            | MediaError::Io { path, .. }
            | MediaError::Empty { path }
            | MediaError::Truncated { path, .. }
            | MediaError::Corrupt { path, .. }
            | MediaError::Unsupported { path, .. }
            | MediaError::FeatureDisabled { path, .. }
            | MediaError::NoStream { path, .. }
            | MediaError::Conversion { path, .. } => Some(path),
            MediaError::InvalidOptions(_)
            | MediaError::TooShort { .. }
            | MediaError::TooLong { .. }
            | MediaError::SampleRateMismatch { .. }
            | MediaError::MalformedAudio(_) => None,
        }
    }

    pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> Self {
        MediaError::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn truncated(path: &Path, detail: impl Into<String>) -> Self {
        MediaError::Truncated {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn unsupported(path: &Path, detail: impl Into<String>) -> Self {
        MediaError::Unsupported {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            MediaError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            MediaError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    #[cfg_attr(feature = "ffmpeg", allow(dead_code))]
    pub(crate) fn feature_disabled(path: &Path) -> Self {
        MediaError::FeatureDisabled {
            path: path.to_path_buf(),
            feature: "ffmpeg",
        }
    }
}
