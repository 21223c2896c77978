//! The whitelist of globals, and what calling (`REDUCE`) or rebuilding
//! (`BUILD`) each of them makes.

use std::rc::Rc;

use super::machine::Machine;
use super::{ElemType, NumpyDtype, TorchTensorRef, Value};
use crate::error::Result;
use crate::host::HostTensor;

/// Globals the unpickler accepts, by `module.name`.
const WHITELIST: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
    "builtins.tuple",
    "builtins.list",
    "__builtin__.tuple",
    "__builtin__.list",
];

pub(super) fn allowed_global(name: &str) -> bool {
    WHITELIST.contains(&name)
        || name
            .strip_prefix("torch.")
            .is_some_and(|s| ElemType::from_torch_storage(s).is_some())
}

impl<F> Machine<'_, F>
where
    F: FnMut(Value) -> Result<Value>,
{
    pub(super) fn reduce(&self, func: Value, args: Value) -> Result<Value> {
        let Value::Global(name) = func else {
            return Err(self.unsupported(format!("REDUCE on a {}", func.kind())));
        };
        let Value::Tuple(args) = args else {
            return Err(self.corrupt(format!("arguments of `{name}` are not a tuple")));
        };
        let bad = |why: &str| self.corrupt(format!("`{name}`: {why}"));
        match name.as_str() {
            "collections.OrderedDict" => match args.as_slice() {
                [] => Ok(Value::Dict(Vec::new())),
                [Value::List(items)] => {
                    let mut d = Vec::new();
                    for it in items {
                        match it.as_seq() {
                            Some([k, v]) => d.push((k.clone(), v.clone())),
                            _ => return Err(bad("items are not pairs")),
                        }
                    }
                    Ok(Value::Dict(d))
                }
                _ => Err(bad("unexpected arguments")),
            },
            "torch._utils._rebuild_tensor_v2" => {
                let [storage, offset, size, stride, ..] = args.as_slice() else {
                    return Err(bad("needs (storage, offset, size, stride, …)"));
                };
                let Value::Storage(storage) = storage else {
                    return Err(bad("first argument is not a storage"));
                };
                let offset = offset.as_usize().ok_or_else(|| bad("bad storage offset"))?;
                let dims = |v: &Value| -> Option<Vec<usize>> {
                    v.as_seq()?.iter().map(Value::as_usize).collect()
                };
                let size = dims(size).ok_or_else(|| bad("bad size"))?;
                let stride = dims(stride).ok_or_else(|| bad("bad stride"))?;
                if size.len() != stride.len() {
                    return Err(bad("size and stride differ in rank"));
                }
                Ok(Value::TorchTensor(TorchTensorRef {
                    storage: storage.clone(),
                    offset,
                    size,
                    stride,
                }))
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.first() {
                    Some(t @ Value::TorchTensor(_)) => Ok(t.clone()),
                    _ => Err(bad("first argument is not a tensor")),
                }
            }
            "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => {
                match args.first() {
                    Some(Value::Global(g)) if g == "numpy.ndarray" => Ok(Value::EmptyNdArray),
                    _ => {
                        Err(self
                            .unsupported(format!("`{name}` of something other than numpy.ndarray")))
                    }
                }
            }
            "numpy.dtype" => match args.first() {
                Some(Value::Str(code)) => Ok(Value::Dtype(NumpyDtype {
                    code: code.clone(),
                    byteorder: '=',
                })),
                _ => Err(bad("first argument is not a type code")),
            },
            "numpy.core.multiarray.scalar" | "numpy._core.multiarray.scalar" => {
                let [Value::Dtype(dt), raw] = args.as_slice() else {
                    return Err(bad("needs (dtype, bytes)"));
                };
                let raw = match raw {
                    Value::Bytes(b) => b.clone(),
                    // Protocol 0/2 writes the bytes as a latin-1 str.
                    Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
                    _ => return Err(bad("value is not bytes")),
                };
                let t = self.array(dt, Vec::new(), &raw, &name)?;
                Ok(Value::NdArray(Rc::new(t)))
            }
            "builtins.tuple" | "__builtin__.tuple" | "builtins.list" | "__builtin__.list" => {
                let items = match args.as_slice() {
                    [] => Vec::new(),
                    [v] => v
                        .as_seq()
                        .ok_or_else(|| bad("argument is not a sequence"))?
                        .to_vec(),
                    _ => return Err(bad("takes one argument")),
                };
                Ok(if name.ends_with("tuple") {
                    Value::Tuple(items)
                } else {
                    Value::List(items)
                })
            }
            other => Err(self.unsupported(format!(
                "refusing to call `{other}`: only tensors, arrays and plain containers are read"
            ))),
        }
    }

    fn array(
        &self,
        dt: &NumpyDtype,
        shape: Vec<usize>,
        raw: &[u8],
        what: &str,
    ) -> Result<HostTensor> {
        let code = dt.code.trim_start_matches(['<', '>', '|', '=']);
        let et = ElemType::from_numpy(code)
            .ok_or_else(|| self.unsupported(format!("NumPy dtype `{}` in `{what}`", dt.code)))?;
        let big = dt.byteorder == '>' || dt.code.starts_with('>');
        let n = crate::host::checked_volume(&shape)
            .ok_or_else(|| self.corrupt(format!("`{what}`: shape {shape:?} overflows")))?;
        if n.checked_mul(et.size()) != Some(raw.len()) {
            return Err(self.corrupt(format!(
                "`{what}`: shape {shape:?} of {} needs {} bytes, got {}",
                dt.code,
                n.saturating_mul(et.size()),
                raw.len()
            )));
        }
        let data = et.decode(raw, big).map_err(|e| self.corrupt(e))?;
        HostTensor::new(shape, data, what)
    }

    pub(super) fn build(&self, obj: Value, state: Value) -> Result<Value> {
        match obj {
            // OrderedDict attributes (PyTorch's `_metadata`): not needed.
            Value::Dict(d) => Ok(Value::Dict(d)),
            Value::Dtype(mut dt) => {
                if let Some(Value::Str(order)) = state.as_seq().and_then(|s| s.get(1)) {
                    dt.byteorder = order.chars().next().unwrap_or('=');
                }
                Ok(Value::Dtype(dt))
            }
            Value::EmptyNdArray => {
                // (version, shape, dtype, is_fortran, raw data)
                let s = state
                    .as_seq()
                    .ok_or_else(|| self.corrupt("ndarray state is not a tuple"))?;
                let [_, shape, Value::Dtype(dt), Value::Bool(fortran), raw] = s else {
                    return Err(self.corrupt(
                        "ndarray state is not (version, shape, dtype, is_fortran, data)",
                    ));
                };
                let shape: Vec<usize> = shape
                    .as_seq()
                    .and_then(|s| s.iter().map(Value::as_usize).collect())
                    .ok_or_else(|| self.corrupt("ndarray shape is not a tuple of ints"))?;
                let raw = match raw {
                    Value::Bytes(b) => b.clone(),
                    Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
                    other => {
                        return Err(self.unsupported(format!(
                            "ndarray data as a {} (object arrays are refused)",
                            other.kind()
                        )));
                    }
                };
                let mut t = self.array(dt, shape.clone(), &raw, "numpy.ndarray")?;
                if *fortran && shape.len() > 1 {
                    t = fortran_to_c(t);
                }
                Ok(Value::NdArray(Rc::new(t)))
            }
            other => Err(self.unsupported(format!(
                "BUILD on a {} is refused: only dicts, dtypes and arrays are rebuilt",
                other.kind()
            ))),
        }
    }
}

/// Reorders column-major values into row-major order.
fn fortran_to_c(t: HostTensor) -> HostTensor {
    let shape = t.shape.clone();
    let rank = shape.len();
    // Column-major strides.
    let mut strides = vec![1usize; rank];
    for d in 1..rank {
        strides[d] = strides[d - 1] * shape[d - 1];
    }
    let order = crate::host::strided_indices(&shape, &strides, 0);
    HostTensor {
        shape,
        data: t.data.gather(&order),
    }
}
