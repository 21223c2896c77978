//! safetensors files: reading into a [`Checkpoint`] and writing one out.
//!
//! safetensors holds no code, only a JSON header and raw little-endian
//! tensors, so reading it is safe by construction; the `safetensors` crate
//! checks the header and the offsets.

use std::collections::BTreeMap;
use std::path::Path;

use ::safetensors::{Dtype, SafeTensors};

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostData, HostTensor};
use crate::pickle::ElemType;

/// True when `bytes` start like a safetensors file (an 8-byte header length
/// followed by a JSON object).
pub fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9
        && bytes[8] == b'{'
        && u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0xff; 8]))
            <= (bytes.len() - 8) as u64
}

/// Reads a safetensors file; `framework` says whose names it holds.
pub fn read_safetensors(path: &Path, framework: Framework) -> Result<Checkpoint> {
    let bytes = crate::pytorch::read_file(path)?;
    read_safetensors_bytes(path, &bytes, framework)
}

/// Reads safetensors from memory (`path` names the source in errors).
pub fn read_safetensors_bytes(
    path: &Path,
    bytes: &[u8],
    framework: Framework,
) -> Result<Checkpoint> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| InteropError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("safetensors: {e}"),
    })?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let et = match view.dtype() {
            Dtype::F32 => ElemType::F32,
            Dtype::F64 => ElemType::F64,
            Dtype::F16 => ElemType::F16,
            Dtype::BF16 => ElemType::BF16,
            Dtype::I64 => ElemType::I64,
            Dtype::I32 => ElemType::I32,
            Dtype::I16 => ElemType::I16,
            Dtype::I8 => ElemType::I8,
            Dtype::U8 => ElemType::U8,
            Dtype::U16 => ElemType::U16,
            Dtype::U32 => ElemType::U32,
            Dtype::U64 => ElemType::U64,
            Dtype::BOOL => ElemType::Bool,
            other => {
                return Err(InteropError::Unsupported {
                    path: path.to_path_buf(),
                    reason: format!("tensor `{name}` has dtype {other:?}"),
                });
            }
        };
        let data = et
            .decode(view.data(), false)
            .map_err(|e| InteropError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("tensor `{name}`: {e}"),
            })?;
        let t = HostTensor::new(view.shape().to_vec(), data, &name)?;
        tensors.insert(name, t);
    }
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework,
        tensors,
    })
}

/// Serialises host tensors as safetensors bytes (keys sorted; float32 stays
/// float32, float64 float64, integers int64, booleans bool), with optional
/// `__metadata__` entries.
pub fn to_safetensors_bytes(
    tensors: &BTreeMap<String, HostTensor>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let owned: Vec<(&String, Dtype, &Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, t)| {
            let (dt, bytes) = match &t.data {
                HostData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                HostData::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                HostData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                HostData::Bool(v) => (Dtype::BOOL, v.iter().map(|&b| u8::from(b)).collect()),
            };
            (k, dt, &t.shape, bytes)
        })
        .collect();
    let views = owned
        .iter()
        .map(|(k, dt, shape, bytes)| {
            ::safetensors::tensor::TensorView::new(*dt, shape.to_vec(), bytes)
                .map(|v| (k.to_string(), v))
                .map_err(|e| InteropError::Mapping {
                    key: k.to_string(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    ::safetensors::serialize(views, metadata).map_err(|e| InteropError::Mapping {
        key: String::new(),
        reason: format!("safetensors: {e}"),
    })
}
