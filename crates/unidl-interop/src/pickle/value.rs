//! The values the unpickler builds.

use std::rc::Rc;

use super::ElemType;
use crate::host::HostTensor;

/// A reference to a PyTorch storage, as a persistent id names it.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Element type.
    pub dtype: ElemType,
    /// The storage key (`data/<key>` in a zip checkpoint).
    pub key: String,
}

/// What `torch._utils._rebuild_tensor_v2` would build: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensorRef {
    /// The storage.
    pub storage: StorageRef,
    /// Offset into the storage, in elements.
    pub offset: usize,
    /// Shape.
    pub size: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

/// A NumPy dtype built by `numpy.dtype(code, …)`.
#[derive(Debug, Clone, PartialEq)]
pub struct NumpyDtype {
    /// The type code without byte order (`f4`).
    pub code: String,
    /// Byte order from `BUILD` (`<`, `>`, `|`, `=`).
    pub byteorder: char,
}

/// A value on the unpickler's stack.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A larger integer, as its little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A `str`.
    Str(String),
    /// `bytes` or `bytearray` (or a Python 2 `str`).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A whitelisted global (`module.name`), not yet called.
    Global(String),
    /// A PyTorch storage (from a persistent id).
    Storage(StorageRef),
    /// A PyTorch tensor.
    TorchTensor(TorchTensorRef),
    /// A NumPy array (complete after `BUILD`).
    NdArray(Rc<HostTensor>),
    /// A NumPy array created by `_reconstruct`, waiting for its `BUILD`.
    EmptyNdArray,
    /// A NumPy dtype.
    Dtype(NumpyDtype),
}

impl Value {
    /// A short name of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::TorchTensor(_) => "tensor",
            Value::NdArray(_) | Value::EmptyNdArray => "ndarray",
            Value::Dtype(_) => "dtype",
        }
    }

    pub(super) fn as_usize(&self) -> Option<usize> {
        match self {
            Value::Int(i) => usize::try_from(*i).ok(),
            _ => None,
        }
    }

    pub(super) fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }
}
