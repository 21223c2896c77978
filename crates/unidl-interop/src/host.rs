//! Host-side tensors as read from foreign checkpoints, before any mapping.

use std::collections::BTreeMap;
use std::path::PathBuf;

use unidl_backend::Device;
use unidl_tensor::Tensor;

use crate::error::{InteropError, Result};

/// The framework a checkpoint came from (decides the default mapping rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Framework {
    /// PyTorch (`.pt`, `.pth`, `.bin`, safetensors).
    PyTorch,
    /// TensorFlow / Keras (`.keras`, `.h5`, tensor bundles).
    TensorFlow,
    /// PaddlePaddle (`.pdparams`, `.pdiparams`).
    Paddle,
    /// MindSpore (`.ckpt`).
    MindSpore,
    /// ONNX initializers.
    Onnx,
    /// unidl's own safetensors.
    Unidl,
}

/// Element values of a host tensor, in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// float32 (also half and bfloat16, widened on read).
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
    /// Any signed or unsigned integer type up to 64 bits.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl HostData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F64(v) => v.len(),
            HostData::I64(v) => v.len(),
            HostData::Bool(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values at `indices`, in that order (indices must be in range).
    pub fn gather(&self, indices: &[usize]) -> HostData {
        match self {
            HostData::F32(v) => HostData::F32(indices.iter().map(|&i| v[i]).collect()),
            HostData::F64(v) => HostData::F64(indices.iter().map(|&i| v[i]).collect()),
            HostData::I64(v) => HostData::I64(indices.iter().map(|&i| v[i]).collect()),
            HostData::Bool(v) => HostData::Bool(indices.iter().map(|&i| v[i]).collect()),
        }
    }

    /// The values as f32 (integers and booleans converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v.clone(),
            HostData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            HostData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            HostData::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
        }
    }
}

/// A tensor read from a file: shape and values, under the framework's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Values.
    pub data: HostData,
}

impl HostTensor {
    /// A tensor, checking that the values fill the shape.
    pub fn new(shape: Vec<usize>, data: HostData, key: &str) -> Result<Self> {
        let n = checked_volume(&shape).ok_or_else(|| InteropError::Mapping {
            key: key.to_string(),
            reason: format!("shape {shape:?} has more elements than a usize counts"),
        })?;
        if n != data.len() {
            return Err(InteropError::Mapping {
                key: key.to_string(),
                reason: format!("shape {shape:?} needs {n} values, got {}", data.len()),
            });
        }
        Ok(HostTensor { shape, data })
    }

    /// Converts to a unidl tensor on `device` (floats become float32, integers
    /// int64, booleans bool).
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(match &self.data {
            HostData::I64(v) => Tensor::from_i64(v.clone(), &self.shape, device)?,
            HostData::Bool(v) => Tensor::from_i64(
                v.iter().map(|&b| i64::from(b)).collect(),
                &self.shape,
                device,
            )?
            .to_dtype(unidl_tensor::DType::Bool)?,
            other => Tensor::from_f32(other.to_f32(), &self.shape, device)?,
        })
    }
}

/// The number of elements of `shape`, `None` when the product overflows (a
/// shape read from a file can claim anything).
pub fn checked_volume(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Flat positions, in row-major order of `shape`, of the elements of a
/// strided view starting at `offset` (in elements). The caller has checked
/// the view with [`strided_extent`] (so no position overflows) and bounded
/// its element count.
pub fn strided_indices(shape: &[usize], strides: &[usize], offset: usize) -> Vec<usize> {
    let n = checked_volume(shape).expect("a view checked by strided_extent");
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    let mut pos = offset;
    for _ in 0..n {
        out.push(pos);
        for d in (0..rank).rev() {
            idx[d] += 1;
            pos += strides[d];
            if idx[d] < shape[d] {
                break;
            }
            pos -= strides[d] * shape[d];
            idx[d] = 0;
        }
    }
    out
}

/// Largest flat position a strided view touches, plus one (0 for an empty
/// view); `None` when that position, or the view's element count, does not
/// fit in a usize.
pub fn strided_extent(shape: &[usize], strides: &[usize], offset: usize) -> Option<usize> {
    checked_volume(shape)?;
    if shape.contains(&0) {
        return Some(0);
    }
    shape
        .iter()
        .zip(strides)
        .try_fold(offset, |acc, (&n, &s)| {
            acc.checked_add((n - 1).checked_mul(s)?)
        })?
        .checked_add(1)
}

/// Everything a reader found in one file, by the framework's own key names.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The file it came from.
    pub source: PathBuf,
    /// The framework.
    pub framework: Framework,
    /// Tensors by key.
    pub tensors: BTreeMap<String, HostTensor>,
}
