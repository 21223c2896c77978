//! MindSpore checkpoints: `.ckpt` files written by `mindspore.save_checkpoint`.
//!
//! The file is one protobuf message (MindSpore's `checkpoint.proto`):
//!
//! ```text
//! message Checkpoint {
//!   message Value {
//!     required string tag = 1;                    // parameter name
//!     oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; }
//!   }
//!   repeated Value value = 1;
//! }
//! message TensorProto {
//!   repeated int64 dims = 1;
//!   required string tensor_type = 2;              // "Float32", "Int64", ...
//!   required bytes tensor_content = 3;            // little-endian, row-major
//! }
//! ```
//!
//! decoded with `prost` from the hand-written structs below (no `protoc`).
//! `MapTensorProto` entries (embedding hash maps) are refused.
//!
//! Layouts: MindSpore's `Dense` weight is `[out, in]` like PyTorch's,
//! `Conv2d` `[O, I, H, W]`, `nn.LSTM` parameters `weight_ih_l{k}`… with
//! PyTorch's gate order `i, f, g, o`, and `nn.MultiheadAttention` a fused
//! `in_proj_weight`; [`default_rules`](crate::mapping::default_rules) maps
//! them.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostTensor};
use crate::pickle::ElemType;

/// `Checkpoint` message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckpointProto {
    /// Named values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<ValueProto>,
}

/// `Checkpoint.Value` message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueProto {
    /// Parameter name.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A dense tensor.
    #[prost(message, optional, tag = "2")]
    pub tensor: Option<TensorProto>,
    /// A map tensor (not supported; only its presence is recorded).
    #[prost(message, optional, tag = "3")]
    pub maptensor: Option<MapTensorProto>,
}

/// `TensorProto` message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Shape.
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// MindSpore dtype name (`Float32`, …).
    #[prost(string, tag = "2")]
    pub tensor_type: String,
    /// Raw little-endian values.
    #[prost(bytes = "vec", tag = "3")]
    pub tensor_content: Vec<u8>,
}

/// `MapTensorProto` message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MapTensorProto {
    /// Key, value and status tensors.
    #[prost(message, repeated, tag = "1")]
    pub tensor: Vec<TensorProto>,
}

fn elem_type(name: &str) -> Option<ElemType> {
    Some(match name {
        "Float32" => ElemType::F32,
        "Float64" => ElemType::F64,
        "Float16" => ElemType::F16,
        "BFloat16" => ElemType::BF16,
        "Int64" => ElemType::I64,
        "Int32" => ElemType::I32,
        "Int16" => ElemType::I16,
        "Int8" => ElemType::I8,
        "UInt8" => ElemType::U8,
        "UInt16" => ElemType::U16,
        "UInt32" => ElemType::U32,
        "UInt64" => ElemType::U64,
        "Bool" => ElemType::Bool,
        _ => return None,
    })
}

/// Reads a MindSpore `.ckpt` file.
pub fn read_mindspore(path: &Path) -> Result<Checkpoint> {
    let bytes = crate::pytorch::read_file(path)?;
    let corrupt = |reason: String| InteropError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let proto = CheckpointProto::decode(bytes.as_slice())
        .map_err(|e| corrupt(format!("not a MindSpore checkpoint protobuf: {e}")))?;
    if proto.value.is_empty() {
        return Err(corrupt("checkpoint holds no values".into()));
    }
    let mut tensors = BTreeMap::new();
    for v in proto.value {
        let key = v.tag;
        let Some(t) = v.tensor else {
            return Err(InteropError::Unsupported {
                path: path.to_path_buf(),
                reason: if v.maptensor.is_some() {
                    format!("`{key}` is a MapTensor")
                } else {
                    format!("`{key}` has no tensor")
                },
            });
        };
        let et = elem_type(&t.tensor_type).ok_or_else(|| InteropError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("`{key}` has dtype `{}`", t.tensor_type),
        })?;
        let shape = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<usize>, _>>()
            .map_err(|_| corrupt(format!("`{key}` has negative dims {:?}", t.dims)))?;
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| corrupt(format!("`{key}`: dims {:?} overflow", t.dims)))?;
        if n.checked_mul(et.size()) != Some(t.tensor_content.len()) {
            return Err(corrupt(format!(
                "`{key}`: dims {shape:?} of {} need {} bytes, got {}",
                t.tensor_type,
                n.saturating_mul(et.size()),
                t.tensor_content.len()
            )));
        }
        let data = et
            .decode(&t.tensor_content, false)
            .map_err(|e| corrupt(format!("`{key}`: {e}")))?;
        tensors.insert(key.clone(), HostTensor::new(shape, data, &key)?);
    }
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework: Framework::MindSpore,
        tensors,
    })
}
