//! PyTorch checkpoints: `torch.save` files (`.pt`, `.pth`, `.bin`) in the zip
//! format (PyTorch ≥ 1.6: `<name>/data.pkl` + `<name>/data/<key>` storages)
//! and the legacy non-zip format, and safetensors (see [`crate::safetensors`]).
//!
//! The pickle is read by the [restricted unpickler](crate::pickle), so a file
//! that needs anything but tensors and plain containers is refused with
//! [`InteropError::Unsupported`] and nothing from it runs.
//!
//! Nested dicts are flattened with `.` (`{"model": {"fc.weight": …}}` gives
//! `model.fc.weight`); values that are not tensors (epochs, strings,
//! hyper-parameters) are skipped.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostData, HostTensor, strided_extent, strided_indices};
use crate::pickle::{ElemType, TorchTensorRef, Value, torch_persistent_load, unpickle};

/// Reads a PyTorch checkpoint, choosing the format from the content: zip
/// (`torch.save` ≥ 1.6), safetensors, or the legacy pickle stream.
pub fn read_pytorch(path: &Path) -> Result<Checkpoint> {
    let bytes = read_file(path)?;
    // Safetensors before the legacy pickle: a safetensors header length whose
    // low byte is 0x80 starts with the pickle PROTO opcode too.
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        read_zip(path, &bytes)
    } else if crate::safetensors::looks_like_safetensors(&bytes) {
        crate::safetensors::read_safetensors_bytes(path, &bytes, Framework::PyTorch)
    } else if bytes.first() == Some(&0x80) {
        read_legacy(path, &bytes)
    } else {
        Err(InteropError::Corrupt {
            path: path.to_path_buf(),
            reason: "neither a torch.save zip, a legacy torch.save pickle, nor safetensors".into(),
        })
    }
}

/// Reads a whole file, mapping "not found" to [`InteropError::NotFound`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            InteropError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            InteropError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
    })
}

fn corrupt(path: &Path, reason: impl Into<String>) -> InteropError {
    InteropError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_zip(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| corrupt(path, format!("zip: {e}")))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("data.pkl"))
        .min_by_key(|n| n.len())
        .ok_or_else(|| corrupt(path, "zip has no data.pkl: not a torch.save file"))?
        .clone();
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut entry = |name: &str| -> Result<Vec<u8>> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| corrupt(path, format!("zip entry `{name}`: {e}")))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)
            .map_err(|e| corrupt(path, format!("zip entry `{name}`: {e}")))?;
        Ok(out)
    };
    let pickle = entry(&pkl)?;
    if let Ok(order) = entry(&format!("{prefix}byteorder"))
        && order.trim_ascii() != b"little"
    {
        return Err(InteropError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "byte order `{}` (only little-endian files are read)",
                String::from_utf8_lossy(&order)
            ),
        });
    }
    let (root, _) = unpickle(&pickle, path, torch_persistent_load(path))?;
    let mut storages: HashMap<String, HostData> = HashMap::new();
    let tensors = collect_tensors(path, &root, |r: &TorchTensorRef| {
        if !storages.contains_key(&r.storage.key) {
            let raw = entry(&format!("{prefix}data/{}", r.storage.key))?;
            let data = r
                .storage
                .dtype
                .decode(&raw, false)
                .map_err(|e| corrupt(path, format!("storage `{}`: {e}", r.storage.key)))?;
            storages.insert(r.storage.key.clone(), data);
        }
        Ok(storages[&r.storage.key].clone())
    })?;
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework: Framework::PyTorch,
        tensors,
    })
}

/// The legacy (`_use_new_zipfile_serialization=False`) stream: magic number,
/// protocol version and system info pickles, the object pickle, the list of
/// storage keys, then each storage as an 8-byte element count and its bytes.
fn read_legacy(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    let mut pos = 0;
    let mut next = |persistent: bool| -> Result<Value> {
        let slice = bytes.get(pos..).unwrap_or(&[]);
        let (v, n) = if persistent {
            unpickle(slice, path, torch_persistent_load(path))?
        } else {
            unpickle(slice, path, crate::pickle::no_persistent_load(path))?
        };
        pos += n;
        Ok(v)
    };
    match next(false)? {
        Value::BigInt(b) if b == MAGIC => {}
        _ => {
            return Err(corrupt(
                path,
                "pickle without PyTorch's magic number: not a torch.save file",
            ));
        }
    }
    let _protocol = next(false)?;
    let _sys_info = next(false)?;
    let root = next(true)?;
    let keys = match next(false)? {
        Value::List(k) => k
            .into_iter()
            .map(|k| match k {
                Value::Str(s) => Ok(s),
                _ => Err(corrupt(path, "storage key is not a string")),
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(corrupt(path, "storage key list missing")),
    };
    // Storage dtypes come from the object pickle's persistent ids.
    let mut dtypes: HashMap<String, ElemType> = HashMap::new();
    visit_tensor_refs(&root, &mut |r| {
        dtypes.insert(r.storage.key.clone(), r.storage.dtype);
    });
    let mut storages: HashMap<String, HostData> = HashMap::new();
    for key in keys {
        let dtype = *dtypes
            .get(&key)
            .ok_or_else(|| corrupt(path, format!("storage `{key}` is used by no tensor")))?;
        let head = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| corrupt(path, format!("truncated before storage `{key}`")))?;
        let numel = u64::from_le_bytes(head.try_into().unwrap_or([0; 8]));
        pos += 8;
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| corrupt(path, format!("storage `{key}`: size {numel} too large")))?;
        let raw = bytes
            .get(pos..pos + len)
            .ok_or_else(|| corrupt(path, format!("truncated in storage `{key}`")))?;
        pos += len;
        let data = dtype
            .decode(raw, false)
            .map_err(|e| corrupt(path, format!("storage `{key}`: {e}")))?;
        storages.insert(key, data);
    }
    let tensors = collect_tensors(path, &root, |r: &TorchTensorRef| {
        storages
            .get(&r.storage.key)
            .cloned()
            .ok_or_else(|| corrupt(path, format!("storage `{}` missing", r.storage.key)))
    })?;
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework: Framework::PyTorch,
        tensors,
    })
}

fn visit_tensor_refs(v: &Value, f: &mut impl FnMut(&TorchTensorRef)) {
    match v {
        Value::TorchTensor(r) => f(r),
        Value::Dict(items) => items.iter().for_each(|(_, v)| visit_tensor_refs(v, f)),
        Value::List(items) | Value::Tuple(items) => {
            items.iter().for_each(|v| visit_tensor_refs(v, f))
        }
        _ => {}
    }
}

/// Flattens nested dicts of tensors into `a.b.c` keys, materialising each
/// tensor from its storage (fetched by `storage`).
fn collect_tensors(
    path: &Path,
    root: &Value,
    mut storage: impl FnMut(&TorchTensorRef) -> Result<HostData>,
) -> Result<BTreeMap<String, HostTensor>> {
    let mut flat = Vec::new();
    flatten("", root, &mut flat);
    if flat.is_empty() && !matches!(root, Value::Dict(_)) {
        return Err(InteropError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "the file holds a {} rather than a state dict (dict of tensors)",
                root.kind()
            ),
        });
    }
    let mut out = BTreeMap::new();
    // Elements materialised beyond what the storages hold (views that read
    // one element several times, such as `expand`): bounded, since a view's
    // size comes from the file and costs no bytes in it.
    let mut expanded = 0usize;
    for (key, r) in flat {
        let data = storage(r)?;
        let need = strided_extent(&r.size, &r.stride, r.offset).ok_or_else(|| {
            corrupt(
                path,
                format!(
                    "tensor `{key}`: view {:?} (stride {:?}, offset {}) overflows",
                    r.size, r.stride, r.offset
                ),
            )
        })?;
        let n = crate::host::checked_volume(&r.size).unwrap_or(usize::MAX);
        expanded = expanded.saturating_add(n.saturating_sub(data.len()));
        if expanded > MAX_EXPANDED_ELEMENTS {
            return Err(InteropError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor `{key}`: view {:?} (stride {:?}) has {n} elements over a storage of {}; \
                     overlapping views may add at most {MAX_EXPANDED_ELEMENTS} elements to a checkpoint",
                    r.size,
                    r.stride,
                    data.len()
                ),
            });
        }
        if need > data.len() {
            return Err(InteropError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor `{key}`: view {:?} (stride {:?}, offset {}) needs {need} elements, storage `{}` has {}",
                    r.size,
                    r.stride,
                    r.offset,
                    r.storage.key,
                    data.len()
                ),
            });
        }
        let idx = strided_indices(&r.size, &r.stride, r.offset);
        let t = HostTensor::new(r.size.clone(), data.gather(&idx), &key)?;
        out.insert(key, t);
    }
    Ok(out)
}

/// Most elements that overlapping views (stride 0, as `expand` makes) may add
/// to a checkpoint beyond the elements its storages hold: 2^26 (256 MiB of
/// float32).
pub const MAX_EXPANDED_ELEMENTS: usize = 1 << 26;

fn flatten<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a TorchTensorRef)>) {
    match v {
        Value::TorchTensor(r) if !prefix.is_empty() => out.push((prefix.to_string(), r)),
        Value::Dict(items) => {
            for (k, v) in items {
                let k = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        _ => {}
    }
}
