//! Errors of the training layer.

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can go wrong configuring or running training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A config value is missing, unknown or out of range (B.3.1, B.4.1).
    #[error("config key `{key}`: {reason}")]
    Config {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The model cannot be trained as defined (B.3.1, B.3.2 "model definition error").
    #[error("model: {0}")]
    Model(String),
    /// `update_learnable_parameter` without gradients (no backward ran) (B.3.2).
    #[error(
        "no gradients to apply: run backward on a loss computed from the model on an autodiff device first"
    )]
    NoGradients,
    /// A gradient or parameter became NaN or infinite (B.3.2, B.4.2).
    #[error("non-finite {what} at step {step}: parameter `{param}`")]
    NonFinite {
        /// "gradient" or "parameter after the update".
        what: String,
        /// Parameter path.
        param: String,
        /// Optimizer step.
        step: u64,
    },
    /// Writing a record (evaluation predictions, scores) failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Writing or reading a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A tensor handed to post-processing (or another step) has the wrong
    /// rank or size for what it is declared to be.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// What the tensor is (e.g. "detection outputs").
        what: String,
        /// The expected layout, e.g. `[batch, boxes, 4 + classes]`.
        expected: String,
        /// The shape received.
        got: Vec<usize>,
    },
    /// A data-parallel rank failed or timed out in a collective (the job
    /// ends on every rank; the message names the rank and the cause).
    #[error("rank {rank}: {reason}")]
    Distributed {
        /// The rank that reports it.
        rank: usize,
        /// What went wrong.
        reason: String,
    },
    /// Reading or collating data failed.
    #[error(transparent)]
    Data(#[from] unidl_data::DataError),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] unidl_tensor::TensorError),
}
