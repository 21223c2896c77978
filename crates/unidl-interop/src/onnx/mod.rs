//! ONNX: initializers in (any framework's export) and unidl modules out.
//!
//! The protobuf subset both directions need is declared here with `prost`
//! derives (no protoc, no generated code): `ModelProto`, `GraphProto`,
//! `NodeProto`, `AttributeProto`, `TensorProto`, `ValueInfoProto`.
//!
//! - [`read_onnx_initializers`] returns every `graph.initializer` as a host
//!   tensor under its ONNX name, from `raw_data` or the typed fields
//!   (`float_data`, `int32_data`, `int64_data`, `double_data`,
//!   `uint64_data`). Tensors kept in external files give
//!   [`InteropError::Unsupported`](crate::error::InteropError::Unsupported).
//! - [`export_sequential`] writes a chain of [`OnnxLayer`]s (convolution,
//!   linear, batch norm, pooling, activations, flatten, LSTM and GRU) as an
//!   opset-17 model; the `OnnxLayer::from_*` constructors take the unidl
//!   (Burn) modules. Whole-graph import into Burn is burn-onnx's job
//!   (build-time code generation), see `docs/INTEROP.md`.

mod builder;
mod export;
mod layer;
mod proto;
mod reader;
mod recurrent;

pub use export::{EXPORT_OPSET, export_sequential};
pub use layer::{OnnxActivation, OnnxLayer, RecurrentHost};
pub use reader::read_onnx_initializers;
