//! Errors of the Tensor and Module API.

use unidl_backend::{BackendError, DType};

/// Result alias of this crate.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// Everything a tensor operation can reject. Every variant names what was
/// wrong (shape, position, dimension, dtype); no operation panics on bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    /// Nested data whose lists differ in length at the same depth.
    #[error("ragged data at {position}: expected {expected} elements, found {found}")]
    Ragged {
        /// Path of the offending list, e.g. `[1][0]`.
        position: String,
        /// Length of the first list at that depth.
        expected: usize,
        /// Length found here.
        found: usize,
    },
    /// Nested data mixing scalars and lists, or strings and numbers.
    #[error("inconsistent data at {position}: {reason}")]
    BadData {
        /// Path of the offending element.
        position: String,
        /// What is inconsistent.
        reason: String,
    },
    /// Two shapes that cannot be combined by the operation.
    #[error("{op}: shapes {lhs:?} and {rhs:?} are incompatible{detail}")]
    ShapeMismatch {
        /// Operation name.
        op: String,
        /// First shape.
        lhs: Vec<usize>,
        /// Second shape.
        rhs: Vec<usize>,
        /// Extra explanation (may be empty).
        detail: String,
    },
    /// A reshape whose target does not hold the same number of elements.
    #[error("reshape: cannot reshape {from:?} ({from_volume} elements) into {to:?}")]
    ReshapeVolume {
        /// Original shape.
        from: Vec<usize>,
        /// Number of elements of the original.
        from_volume: usize,
        /// Requested shape as given (−1 allowed once).
        to: Vec<isize>,
    },
    /// Data length that does not match the shape it is given with.
    #[error("data of {len} elements does not fill shape {shape:?} ({volume} elements)")]
    DataLength {
        /// Number of values.
        len: usize,
        /// Shape.
        shape: Vec<usize>,
        /// Its volume.
        volume: usize,
    },
    /// An index outside its axis.
    #[error("index {index} is out of range for axis {axis} of size {size}")]
    IndexOutOfRange {
        /// Axis.
        axis: usize,
        /// Index as given (negative allowed).
        index: isize,
        /// Size of the axis.
        size: usize,
    },
    /// A dimension argument outside the tensor's rank.
    #[error("{op}: dimension {dim} is out of range for a tensor of rank {rank}")]
    BadDim {
        /// Operation name.
        op: String,
        /// Dimension as given.
        dim: isize,
        /// Rank of the tensor.
        rank: usize,
    },
    /// A rank beyond what unidl supports.
    #[error("tensors of rank {rank} are not supported (at most {max})")]
    RankTooLarge {
        /// Requested rank.
        rank: usize,
        /// Maximum rank.
        max: usize,
    },
    /// An operation that does not exist for a dtype (e.g. arithmetic on strings).
    #[error("{op} is not defined for dtype {dtype}")]
    DTypeOp {
        /// Operation name.
        op: String,
        /// The dtype.
        dtype: DType,
    },
    /// A bad argument value.
    #[error("{op}: {reason}")]
    Invalid {
        /// Operation name.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// The back-end cannot do it.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl TensorError {
    pub(crate) fn invalid(op: &str, reason: impl Into<String>) -> Self {
        TensorError::Invalid {
            op: op.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn dtype_op(op: &str, dtype: DType) -> Self {
        TensorError::DTypeOp {
            op: op.to_string(),
            dtype,
        }
    }
}
