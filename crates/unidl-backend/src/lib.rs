//! # unidl-backend — the adapter layer (T/AII 008 §6.1)
//!
//! Burn's back-ends are compiled in with cargo features and **chosen by name at
//! start-up** (§6.1.1-f). Everything above this crate works with one concrete
//! [`Device`]; no code outside this crate matches on back-end names.
//!
//! | name      | cargo feature | what runs it                                    |
//! |-----------|---------------|-------------------------------------------------|
//! | `flex`    | `flex`        | pure-Rust CPU (the embedded default, always on) |
//! | `ndarray` | `ndarray`     | ndarray CPU (deprecated upstream)               |
//! | `tch`     | `tch`         | LibTorch 2.9.0, PyTorch's own engine            |
//! | `wgpu`    | `wgpu`        | WGSL over Vulkan/Metal/DX12 (lavapipe on a CPU) |
//! | `cuda`    | `cuda`        | CubeCL CUDA (does not build offline, see docs)  |
//!
//! Order of choice: explicit argument > `UNIDL_BACKEND` environment variable >
//! config-file key > `flex` ([`select`]). A back-end that is not compiled in
//! gives [`BackendError::NotCompiled`] naming the cargo feature to enable.
//!
//! Architecture invariant: this crate depends on Burn (and the dependency-free
//! `unidl-env` for the back-end precedence) only; it never depends
//! on any other unidl crate.
//!
//! Depends on: `unidl-env`.

mod capability;
mod dtype;
mod error;
mod select;

pub use capability::{BackendReport, capabilities, report_for, require_dtype};
pub use dtype::DType;
pub use error::BackendError;
pub use select::{BackendKind, BackendSpec, ENV_VAR, Runtime, backend_of, cpu_devices, select};

/// Burn's run-time device (re-exported so that callers need no direct Burn import).
pub use burn::tensor::Device;

/// Seeds every random generator that unidl uses on `device`, so that random
/// initialisation and sampling are reproducible on that back-end (§6.1.2).
///
/// Burn may apply the seed to the whole back-end rather than this one device;
/// at least `device` is seeded.
pub fn seed(device: &Device, seed: u64) {
    device.seed(seed);
}
