//! # unidl — a deep-learning framework implementing T/AII 008-2023
//!
//! One interface for tensors, models, data, training, inference and evaluation,
//! whichever Burn back-end runs underneath. This crate only re-exports; each
//! layer lives in its own crate:
//!
//! | module        | crate           | standard                                  |
//! |---------------|-----------------|-------------------------------------------|
//! | [`backend`]   | `unidl-backend` | §6.1 adapter layer: back-end choice, dtypes, capability report |
//! | [`tensor`]    | `unidl-tensor`  | §6.2.1, A.1 Tensor; A.2 Module API        |
//! | [`nn`]        | `unidl-nn`      | §6.1.1-d module catalogue                 |
//!
//! ## Cargo features
//!
//! | feature   | default | back-end |
//! |-----------|---------|----------|
//! | `flex`    | yes     | pure-Rust CPU (embedded default) |
//! | `ndarray` | no      | ndarray CPU |
//! | `tch`     | no      | LibTorch 2.9.0 — build with `LIBTORCH_USE_PYTORCH=1` and a Python with `torch==2.9.0` on `PATH`; run with its `torch/lib` on `LD_LIBRARY_PATH` (`scripts/setup-torch.sh` does both) |
//! | `wgpu`    | no      | WGPU; on a CPU-only Linux box through Mesa's lavapipe (`apt install mesa-vulkan-drivers`) |
//! | `cuda`    | no      | CUDA via CubeCL; its build script downloads an LLVM bundle, so it cannot build offline |
//!
//! The back-end is chosen at start-up by name ([`backend::select`]): explicit
//! argument > `UNIDL_BACKEND` > config key > `flex`.
//!
//! ```
//! use unidl::prelude::*;
//! let rt = unidl::backend::select(Some("flex"), None).unwrap();
//! let t = initialize(vec![vec![1.0, 2.0], vec![3.0, 4.0]], None, &rt.device).unwrap();
//! let s = t.sum(Axes::All, false).unwrap();
//! assert_eq!(s.item().unwrap(), 10.0);
//! ```

pub use unidl_backend as backend;
pub use unidl_nn as nn;
pub use unidl_tensor as tensor;

/// The names most programs need.
pub mod prelude {
    pub use unidl_backend::{BackendKind, DType, Device, select};
    pub use unidl_tensor::module::{Forward, ModuleApi, backward, forward};
    pub use unidl_tensor::{
        Axes, Data, Idx, Tensor, TensorError, index, initialize, permute, reshape,
    };
}
