//! Errors of the adapter layer.

use crate::DType;

/// What can go wrong when choosing or using a back-end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The back-end exists but this binary was built without its feature.
    #[error(
        "back-end `{backend}` is not compiled into this build: rebuild with cargo feature `{feature}` (e.g. `cargo build --features {feature}`); compiled in: {available}"
    )]
    NotCompiled {
        /// Requested back-end name.
        backend: String,
        /// Cargo feature that enables it.
        feature: String,
        /// Comma-separated names of the compiled-in back-ends.
        available: String,
    },
    /// The name matches no back-end unidl knows.
    #[error("unknown back-end `{name}` (from {source_of}); known back-ends: {known}")]
    Unknown {
        /// The name as given.
        name: String,
        /// Where the name came from (argument, environment variable, config key).
        source_of: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// The device part of a spec such as `wgpu:x` is not a device index.
    #[error(
        "invalid device index `{index}` in back-end spec `{spec}`: expected `name` or `name:N`"
    )]
    BadIndex {
        /// The whole spec.
        spec: String,
        /// The part after the colon.
        index: String,
    },
    /// The back-end cannot run this operation on this dtype.
    #[error("operation `{op}` is not supported for dtype {dtype} on back-end `{backend}`")]
    Unsupported {
        /// Operation name.
        op: String,
        /// Dtype that was asked for.
        dtype: DType,
        /// Back-end name.
        backend: String,
    },
}
