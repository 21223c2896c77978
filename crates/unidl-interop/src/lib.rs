//! # unidl-interop — framework adapters (T/AII 008 G-a, §6.1.1-e, §6.1.2)
//!
//! Burn has compute back-ends, not framework front-ends, so unidl adapts the
//! four frameworks the standard names (PyTorch, TensorFlow, PaddlePaddle,
//! MindSpore) and ONNX at the model level: a *reader* turns a native
//! checkpoint into a [`Checkpoint`] of host tensors under the framework's own
//! names and layouts; the *mapping* layer renames keys, converts layouts and
//! loads the result into a unidl module with a report; *writers* send unidl
//! weights back out.
//!
//! Architecture invariant: depends on `unidl-tensor`/`unidl-backend`,
//! `unidl-nn` (the ONNX writer and the recurrent-weight layouts take its
//! layers) and file-format crates; never on the data or training layers or
//! the zoo. No reader executes code from a file.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-nn`.

pub mod error;
pub mod host;
pub mod keras;
pub mod mapping;
pub mod mindspore;
pub mod onnx;
pub mod paddle;
pub mod pickle;
pub mod pytorch;
pub mod safetensors;
pub mod tf;
pub mod writer;

pub use error::{InteropError, Result};
pub use host::{Checkpoint, Framework, HostData, HostTensor};
pub use mapping::{Layout, MappingRules, Report, default_rules, load_into};
pub use mindspore::read_mindspore;
pub use paddle::read_pdparams;
pub use pytorch::read_pytorch;
pub use safetensors::read_safetensors;
pub use writer::{save_pytorch_safetensors, to_pytorch_state_dict};
