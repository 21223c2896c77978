//! The initializer reader: every `graph.initializer` of a model as a host
//! tensor.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use super::proto::*;
use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostData, HostTensor};
use crate::pickle::ElemType;

/// Reads the initializers (weights) of an ONNX model into a checkpoint keyed
/// by initializer name.
///
/// # Errors
/// [`InteropError::NotFound`]; [`InteropError::Corrupt`] for a file that is
/// not a `ModelProto`, has no graph, or whose values do not fill a shape;
/// [`InteropError::Unsupported`] for external data, strings, complex numbers
/// and 8-bit/4-bit float types.
pub fn read_onnx_initializers(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InteropError::NotFound {
            path: path.to_path_buf(),
        },
        _ => corrupt(path, e),
    })?;
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| corrupt(path, format!("not an ONNX ModelProto: {e}")))?;
    let graph = model
        .graph
        .ok_or_else(|| corrupt(path, "ModelProto without a graph"))?;
    let mut tensors = BTreeMap::new();
    for t in &graph.initializer {
        tensors.insert(t.name.clone(), tensor_from_proto(t, path)?);
    }
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework: Framework::Onnx,
        tensors,
    })
}

fn tensor_from_proto(t: &TensorProto, path: &Path) -> Result<HostTensor> {
    let name = &t.name;
    if t.data_location == 1 {
        return Err(unsupported(
            path,
            format!("initializer `{name}` keeps its data in an external file"),
        ));
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            corrupt(
                path,
                format!("initializer `{name}`: negative dim {:?}", t.dims),
            )
        })?;
    let n = crate::host::checked_volume(&shape).ok_or_else(|| {
        corrupt(
            path,
            format!("initializer `{name}`: dims {:?} overflow", t.dims),
        )
    })?;
    let raw = !t.raw_data.is_empty() || n == 0;
    let data = if raw {
        let elem = match t.data_type {
            BOOL => ElemType::Bool,
            UINT8 => ElemType::U8,
            INT8 => ElemType::I8,
            FLOAT16 => ElemType::F16,
            BFLOAT16 => ElemType::BF16,
            INT16 => ElemType::I16,
            UINT16 => ElemType::U16,
            FLOAT => ElemType::F32,
            INT32 => ElemType::I32,
            UINT32 => ElemType::U32,
            DOUBLE => ElemType::F64,
            INT64 => ElemType::I64,
            UINT64 => ElemType::U64,
            d => return Err(dtype_error(path, name, d)),
        };
        let size = elem.size();
        if n.checked_mul(size) != Some(t.raw_data.len()) {
            return Err(corrupt(
                path,
                format!(
                    "initializer `{name}`: raw_data has {} bytes, shape {shape:?} needs {}",
                    t.raw_data.len(),
                    n.saturating_mul(size)
                ),
            ));
        }
        elem.decode(&t.raw_data, false)
            .map_err(|e| corrupt(path, format!("initializer `{name}`: {e}")))?
    } else {
        match t.data_type {
            FLOAT => HostData::F32(t.float_data.clone()),
            DOUBLE => HostData::F64(t.double_data.clone()),
            INT64 => HostData::I64(t.int64_data.clone()),
            INT32 | INT16 | INT8 | UINT16 | UINT8 => {
                HostData::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            }
            BOOL => HostData::Bool(t.int32_data.iter().map(|&v| v != 0).collect()),
            FLOAT16 => HostData::F32(
                t.int32_data
                    .iter()
                    .map(|&v| half::f16::from_bits(v as u16).to_f32())
                    .collect(),
            ),
            BFLOAT16 => HostData::F32(
                t.int32_data
                    .iter()
                    .map(|&v| half::bf16::from_bits(v as u16).to_f32())
                    .collect(),
            ),
            UINT32 | UINT64 => HostData::I64(t.uint64_data.iter().map(|&v| v as i64).collect()),
            d => return Err(dtype_error(path, name, d)),
        }
    };
    HostTensor::new(shape, data, name).map_err(|e| corrupt(path, format!("initializer {e}")))
}

fn dtype_error(path: &Path, name: &str, dtype: i32) -> InteropError {
    unsupported(
        path,
        format!("initializer `{name}` has ONNX data type {dtype} (not a bool, integer or float)"),
    )
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> InteropError {
    InteropError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn unsupported(path: &Path, reason: impl std::fmt::Display) -> InteropError {
    InteropError::Unsupported {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}
