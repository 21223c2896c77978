//! Persistent-id loaders (PyTorch's storages).

use std::path::Path;

use super::{ElemType, StorageRef, Value};
use crate::error::{InteropError, Result};

/// The persistent-id loader for PyTorch state dicts:
/// `('storage', torch.<T>Storage, key, location, numel[, view_metadata])` → [`Value::Storage`].
pub fn torch_persistent_load(path: &Path) -> impl FnMut(Value) -> Result<Value> + '_ {
    move |pid| {
        let bad = |why: &str| InteropError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("persistent id {pid:?}: {why}"),
        };
        let Value::Tuple(items) = &pid else {
            return Err(bad("not a tuple"));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(class), key, _location, ..] if tag == "storage" => {
                let dtype = class
                    .strip_prefix("torch.")
                    .and_then(ElemType::from_torch_storage)
                    .ok_or_else(|| InteropError::Unsupported {
                        path: path.to_path_buf(),
                        reason: format!("storage type `{class}`"),
                    })?;
                let key = match key {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => return Err(bad("storage key is not a string")),
                };
                Ok(Value::Storage(StorageRef { dtype, key }))
            }
            _ => Err(bad("not a ('storage', type, key, location, numel) tuple")),
        }
    }
}

/// A persistent-id loader that refuses every persistent id (plain pickles).
pub fn no_persistent_load(path: &Path) -> impl FnMut(Value) -> Result<Value> + '_ {
    move |pid| {
        Err(InteropError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("persistent id {pid:?} in a plain pickle"),
        })
    }
}
