//! PaddlePaddle checkpoints: `.pdparams` files written by `paddle.save`
//! (a pickle of a dict of NumPy arrays, protocol 2–4).
//!
//! Read by the [restricted unpickler](crate::pickle): only NumPy arrays,
//! dtypes and plain containers are built; anything else is refused with
//! [`InteropError::Unsupported`]. Paddle's `(name, array)` tuples (older
//! `paddle.save` of tensors) are unwrapped, nested dicts flattened with `.`,
//! and non-array values (e.g. `StructuredToParameterName@@`) skipped.
//!
//! Paddle keeps an LSTM's parameters twice in its state dict, once as
//! `lstm.weight_ih_l0` and once as `lstm.0.cell.weight_ih` (the same
//! tensors); [`default_rules`](crate::mapping::default_rules) ignores the
//! second form.
//!
//! Not read: `.pdiparams` (combined parameters of a static-graph inference
//! model, which need the `.pdmodel` program for their names).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostTensor};
use crate::pickle::{Value, no_persistent_load, unpickle};

/// Reads a `.pdparams` file.
pub fn read_pdparams(path: &Path) -> Result<Checkpoint> {
    let bytes = crate::pytorch::read_file(path)?;
    let (root, _) = unpickle(&bytes, path, no_persistent_load(path))?;
    if !matches!(root, Value::Dict(_)) {
        return Err(InteropError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "the file holds a {} rather than a dict of arrays",
                root.kind()
            ),
        });
    }
    let mut tensors = BTreeMap::new();
    flatten("", &root, &mut tensors);
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework: Framework::Paddle,
        tensors,
    })
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, HostTensor>) {
    match v {
        Value::NdArray(a) if !prefix.is_empty() => {
            out.insert(prefix.to_string(), (**a).clone());
        }
        Value::Tuple(items) => {
            if let [Value::Str(_), inner @ Value::NdArray(_)] = items.as_slice() {
                flatten(prefix, inner, out);
            }
        }
        Value::Dict(items) => {
            for (k, v) in items {
                let Value::Str(k) = k else { continue };
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        _ => {}
    }
}
