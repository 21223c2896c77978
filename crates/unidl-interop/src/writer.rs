//! Writers: a unidl module's weights out under another framework's names.
//!
//! [`to_pytorch_state_dict`] is the inverse of the PyTorch
//! [`default_rules`](crate::mapping::default_rules), driven by the module
//! tree's Burn types:
//!
//! | unidl (Burn) | PyTorch |
//! |---|---|
//! | `Linear` `weight` `[in, out]` | `weight` `[out, in]` (transposed) |
//! | `MultiHeadAttention` `query`/`key`/`value` `.weight`/`.bias` | `in_proj_weight` `[3E, E]`, `in_proj_bias` `[3E]` (rows q, k, v) |
//! | `MultiHeadAttention` `output` | `out_proj` |
//! | `BatchNorm` `gamma`, `beta`, `running_mean`, `running_var` | `weight`, `bias`, `running_mean`, `running_var`, plus `num_batches_tracked` = 0 |
//! | `layers.{k}.forward.{w}` / `.reverse.{w}` of `Lstm`/`Gru`/`Rnn` | `{w}_l{k}` / `{w}_l{k}_reverse` |
//! | anything else (conv, embedding, …) | unchanged |
//!
//! [`save_pytorch_safetensors`] writes the result as safetensors, which
//! `safetensors.torch.load_file` + `torch.nn.Module.load_state_dict` take.

use std::collections::BTreeMap;
use std::path::Path;

use unidl_tensor::Tensor;
use unidl_tensor::module::ModuleApi;

use crate::error::{InteropError, Result};
use crate::host::{HostData, HostTensor};
use crate::mapping::{Layout, concat, module_types};

fn to_host(key: &str, t: &Tensor) -> Result<HostTensor> {
    use unidl_backend::DType;
    let data = match t.dtype() {
        DType::Float64 => HostData::F64(t.to_vec_f64()?),
        DType::Bool => HostData::Bool(t.to_vec_bool()?),
        DType::Int64 | DType::Int32 | DType::Int16 | DType::Int8 | DType::UInt8 => {
            HostData::I64(t.to_vec_i64()?)
        }
        DType::Float32 | DType::Float16 | DType::BFloat16 => HostData::F32(t.to_vec_f32()?),
        other => {
            return Err(InteropError::Mapping {
                key: key.to_string(),
                reason: format!("dtype {other} has no PyTorch counterpart here"),
            });
        }
    };
    HostTensor::new(t.shape().to_vec(), data, key)
}

fn split_parent(key: &str) -> (&str, &str) {
    key.rsplit_once('.').unwrap_or(("", key))
}

fn join(prefix: &str, leaf: &str) -> String {
    if prefix.is_empty() {
        leaf.to_string()
    } else {
        format!("{prefix}.{leaf}")
    }
}

/// `…layers.{k}.{forward|reverse}.{w}` → `…{w}_l{k}[_reverse]` when the
/// module at `…` is a recurrent stack.
fn torch_rnn_name(key: &str, types: &BTreeMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let [prefix @ .., "layers", k, dir, w] = parts.as_slice() else {
        return None;
    };
    let owner = prefix.join(".");
    let ty = types.get(&owner)?;
    if !matches!(ty.as_str(), "Lstm" | "Gru" | "Rnn") || k.parse::<usize>().is_err() {
        return None;
    }
    let suffix = match *dir {
        "forward" => "",
        "reverse" => "_reverse",
        _ => return None,
    };
    Some(join(&owner, &format!("{w}_l{k}{suffix}")))
}

/// The module's state dict under PyTorch's names and layouts (see the
/// [module docs](self)).
pub fn to_pytorch_state_dict<M: ModuleApi>(module: &M) -> Result<BTreeMap<String, HostTensor>> {
    let types = module_types(module);
    let ty = |p: &str| types.get(p).map(String::as_str).unwrap_or("");
    let mut out = BTreeMap::new();
    // Attention projections waiting to be fused: (mha path, weight|bias) → [q, k, v].
    let mut qkv: BTreeMap<(String, &'static str), [Option<HostTensor>; 3]> = BTreeMap::new();
    for (key, t) in module.state_dict() {
        let mut h = to_host(&key, &t)?;
        let (parent, leaf) = split_parent(&key);
        let (grand, proj) = split_parent(parent);
        if ty(parent) == "Linear" && leaf == "weight" {
            h = Layout::Transpose.apply(&h, &key)?;
        }
        if ty(grand) == "MultiHeadAttention" && ty(parent) == "Linear" {
            let slot = match proj {
                "query" => Some(0),
                "key" => Some(1),
                "value" => Some(2),
                _ => None,
            };
            let kind: &'static str = if leaf == "weight" { "weight" } else { "bias" };
            match slot {
                Some(i) => {
                    qkv.entry((grand.to_string(), kind)).or_default()[i] = Some(h);
                }
                None if proj == "output" => {
                    out.insert(join(grand, &format!("out_proj.{leaf}")), h);
                }
                None => {
                    out.insert(key.clone(), h);
                }
            }
            continue;
        }
        if ty(parent) == "BatchNorm" {
            let name = match leaf {
                "gamma" => "weight",
                "beta" => "bias",
                other => other,
            };
            out.insert(join(parent, name), h);
            out.entry(join(parent, "num_batches_tracked"))
                .or_insert(HostTensor {
                    shape: Vec::new(),
                    data: HostData::I64(vec![0]),
                });
            continue;
        }
        if let Some(name) = torch_rnn_name(&key, &types) {
            out.insert(name, h);
            continue;
        }
        out.insert(key, h);
    }
    for ((mha, kind), parts) in qkv {
        let key = join(&mha, &format!("in_proj_{kind}"));
        let parts: Vec<HostTensor> =
            parts
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| InteropError::Mapping {
                    key: key.clone(),
                    reason: "query, key and value projections must all have it".into(),
                })?;
        out.insert(key, concat(&parts, 0));
    }
    Ok(out)
}

/// Writes [`to_pytorch_state_dict`] as a safetensors file (atomically), with
/// `format = pt` metadata as `safetensors.torch` writes.
pub fn save_pytorch_safetensors<M: ModuleApi>(module: &M, path: &Path) -> Result<()> {
    let sd = to_pytorch_state_dict(module)?;
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = crate::safetensors::to_safetensors_bytes(&sd, Some(meta))?;
    unidl_tensor::module::write_atomic(path, &bytes).map_err(|e| InteropError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("writing: {e}"),
    })
}
