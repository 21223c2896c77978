//! Errors of runs: every one names the config file, key or path it is about.

/// Result alias of this crate.
pub type Result<T, E = RunError> = std::result::Result<T, E>;

/// A boxed error from a zoo crate (model construction, weight mapping).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong opening or running a run config.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key is unknown, missing or out of range; `line` is 0 when unknown.
    #[error("{file}:{line}: {message}")]
    Config {
        /// The config file.
        file: String,
        /// 1-based line of the offending key (0 when it cannot be located).
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// `[model] name` names no registered model.
    #[error("{file}: [model] name = \"{name}\" is not a registered model; registered: {known}")]
    UnknownModel {
        /// The config file.
        file: String,
        /// The name given.
        name: String,
        /// The names the registry holds.
        known: String,
    },
    /// A model was registered twice under one name.
    #[error("model `{0}` is registered twice")]
    Duplicate(String),
    /// A file or data set the config names is missing.
    #[error("{path}: not found{hint}")]
    NotFound {
        /// The path.
        path: std::path::PathBuf,
        /// How to make it (e.g. the `unidl data` command), with a leading `; `.
        hint: String,
    },
    /// Building or loading the model failed in its zoo crate.
    #[error("model `{model}`: {source}")]
    Model {
        /// Registered name.
        model: String,
        /// The zoo crate's error.
        source: BoxError,
    },
    /// Data loading or preparation failed.
    #[error(transparent)]
    Data(#[from] unidl_data::DataError),
    /// Training, inference or evaluation failed.
    #[error(transparent)]
    Train(#[from] unidl_train::TrainError),
    /// The back-end cannot be selected.
    #[error(transparent)]
    Backend(#[from] unidl_backend::BackendError),
    /// Writing an output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<unidl_tensor::TensorError> for RunError {
    fn from(e: unidl_tensor::TensorError) -> Self {
        RunError::Train(e.into())
    }
}
