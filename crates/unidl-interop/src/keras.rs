//! Keras weights: `.keras` archives, Keras 3 `.weights.h5` and legacy `.h5`.
//!
//! HDF5 is read with the pure-Rust `hdf5-pure` crate (no libhdf5).
//!
//! Every reader gives the same keys: Keras's variable paths, the names
//! `model.weights[i].path` shows and TensorFlow checkpoints carry as
//! `full_name` — `conv/kernel`, `bn/moving_mean`, `lstm/lstm_cell/kernel`,
//! `attn/query/kernel`, `fc/bias`. Layouts stay Keras's (conv kernels HWIO,
//! dense kernels `[in, out]`); [`keras_to_unidl`] converts them.
//!
//! - **Keras 3** (`.keras` zip holding `model.weights.h5`, or `.weights.h5`)
//!   stores `layers/<class_name>/vars/<i>` with the layer's own name in the
//!   `name` attribute of each `vars` group (nested layers: `layers/lstm/cell`,
//!   `layers/multi_head_attention/query_dense`). Variable names come from
//!   the position in the layer's variable list, per layer class (see
//!   [`keras3_var_names`]); a class not in that table keeps `vars/<i>`.
//! - **Legacy h5** (`model.save("m.h5")`, tf.keras 2 `save_weights`): datasets
//!   under `model_weights/<layer>/` (or the root for weights-only files) are
//!   named by their variable path, with a `:0` suffix in TF 2 files, which is
//!   dropped.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use hdf5_pure::{DType, File as H5File, Group};

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostData, HostTensor};

/// The pieces of a `.keras` archive besides the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasArchive {
    /// The weights, keyed by variable path.
    pub checkpoint: Checkpoint,
    /// `config.json`: the model's architecture.
    pub config: serde_json::Value,
    /// `metadata.json` (Keras version, date saved).
    pub metadata: serde_json::Value,
}

/// Reads a `.keras` archive: weights, config and metadata.
///
/// # Errors
/// [`InteropError::NotFound`], [`InteropError::Corrupt`] for a damaged zip, a
/// missing member or bad JSON/HDF5, [`InteropError::Unsupported`] for tensor
/// dtypes that are not numeric.
pub fn read_keras_archive(path: impl AsRef<Path>) -> Result<KerasArchive> {
    let path = path.as_ref();
    archive_from_bytes(path, read(path)?)
}

/// A `.keras` archive already in memory. (The zip reader looks for the end
/// of the central directory one byte at a time from the end; on an open
/// `File` that is two system calls a byte, 64 KiB of them when the record is
/// missing.)
fn archive_from_bytes(path: &Path, bytes: Vec<u8>) -> Result<KerasArchive> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| corrupt(path, format!("zip: {e}")))?;
    let mut member = |name: &str| -> Result<Vec<u8>> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| corrupt(path, format!("member `{name}`: {e}")))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| corrupt(path, format!("member `{name}`: {e}")))?;
        Ok(buf)
    };
    let json = |name: &str, bytes: Vec<u8>| -> Result<serde_json::Value> {
        serde_json::from_slice(&bytes).map_err(|e| corrupt(path, format!("`{name}`: {e}")))
    };
    let config = json("config.json", member("config.json")?)?;
    let metadata = json("metadata.json", member("metadata.json")?)?;
    let weights = member("model.weights.h5")?;
    let h5 =
        H5File::from_bytes(weights).map_err(|e| corrupt(path, format!("model.weights.h5: {e}")))?;
    let tensors = read_h5_tensors(&h5, path)?;
    Ok(KerasArchive {
        checkpoint: Checkpoint {
            source: path.to_path_buf(),
            framework: Framework::TensorFlow,
            tensors,
        },
        config,
        metadata,
    })
}

/// Reads Keras weights from `.keras`, `.weights.h5` or legacy `.h5`, telling
/// them apart by content (zip or HDF5, Keras 3 or legacy layout).
///
/// # Errors
/// As [`read_keras_archive`]; an HDF5 file with neither a `layers` group nor
/// legacy weights gives [`InteropError::Unsupported`].
pub fn read_keras(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = read(path)?;
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(archive_from_bytes(path, bytes)?.checkpoint);
    }
    let h5 = H5File::from_bytes(bytes).map_err(|e| corrupt(path, format!("HDF5: {e}")))?;
    let tensors = read_h5_tensors(&h5, path)?;
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework: Framework::TensorFlow,
        tensors,
    })
}

/// Deepest group nesting a Keras file may have (real models nest a few levels).
const MAX_DEPTH: usize = 64;
/// Most groups one file may make the walk visit.
const MAX_GROUPS: usize = 100_000;

/// Bounds the group walks: the file's bytes decide the group tree, and a
/// corrupt file can link a group back to its ancestor (a cycle), which would
/// otherwise recurse until the stack overflows — an abort no caller can catch.
struct Budget {
    groups: usize,
}

impl Budget {
    fn enter(&mut self, depth: usize, h5_path: &str, path: &Path) -> Result<()> {
        self.groups += 1;
        if depth > MAX_DEPTH {
            return Err(corrupt(
                path,
                format!("{h5_path}: groups nested deeper than {MAX_DEPTH} (a cycle in the file?)"),
            ));
        }
        if self.groups > MAX_GROUPS {
            return Err(corrupt(
                path,
                format!("more than {MAX_GROUPS} groups (a cycle in the file?)"),
            ));
        }
        Ok(())
    }
}

fn read_h5_tensors(h5: &H5File, path: &Path) -> Result<BTreeMap<String, HostTensor>> {
    let mut budget = Budget { groups: 0 };
    let root = h5.root();
    let groups = root
        .groups()
        .map_err(|e| corrupt(path, format!("HDF5: {e}")))?;
    let mut out = BTreeMap::new();
    if groups.iter().any(|g| g == "layers") {
        let layers = group(&root, "layers", path)?;
        walk_keras3(&layers, "layers", "", path, &mut out, &mut budget)?;
        // Weights of the model itself (rare) sit in the root `vars`.
        if groups.iter().any(|g| g == "vars") {
            read_vars(&group(&root, "vars", path)?, "vars", "", "", path, &mut out)?;
        }
    } else {
        let base = if groups.iter().any(|g| g == "model_weights") {
            group(&root, "model_weights", path)?
        } else {
            root
        };
        walk_legacy(&base, "", path, &mut out, &mut budget, 0)?;
        if out.is_empty() {
            return Err(InteropError::Unsupported {
                path: path.to_path_buf(),
                reason: "HDF5 file holds no Keras weights (no `layers` or `model_weights` group)"
                    .into(),
            });
        }
    }
    Ok(out)
}

/// Walks the children of `layers`: each is a layer group holding `vars`
/// and possibly nested layers.
fn walk_keras3(
    g: &Group,
    h5_path: &str,
    prefix: &str,
    path: &Path,
    out: &mut BTreeMap<String, HostTensor>,
    budget: &mut Budget,
) -> Result<()> {
    for child in g
        .groups()
        .map_err(|e| corrupt(path, format!("{h5_path}: {e}")))?
    {
        let cg = group(g, &child, path)?;
        walk_layer(
            &cg,
            &format!("{h5_path}/{child}"),
            &child,
            prefix,
            path,
            out,
            budget,
            1,
        )?;
    }
    Ok(())
}

/// One layer group: its `vars` become `<prefix><name>/<var>`, where `name` is
/// the `name` attribute of `vars` (the Keras layer name); other subgroups are
/// nested layers.
#[allow(clippy::too_many_arguments)]
fn walk_layer(
    g: &Group,
    h5_path: &str,
    group_name: &str,
    prefix: &str,
    path: &Path,
    out: &mut BTreeMap<String, HostTensor>,
    budget: &mut Budget,
    depth: usize,
) -> Result<()> {
    budget.enter(depth, h5_path, path)?;
    let subgroups = g
        .groups()
        .map_err(|e| corrupt(path, format!("{h5_path}: {e}")))?;
    let mut name = group_name.to_string();
    if subgroups.iter().any(|s| s == "vars") {
        let vars = group(g, "vars", path)?;
        if let Ok(attrs) = vars.attrs()
            && let Some(s) = attrs.get("name").and_then(|a| a.as_str())
        {
            name = s.to_string();
        }
        let parent = h5_path.rsplit('/').nth(1).unwrap_or("");
        let class = class_of(group_name, parent);
        read_vars(
            &vars,
            &format!("{h5_path}/vars"),
            &format!("{prefix}{name}/"),
            &class,
            path,
            out,
        )?;
    }
    for s in subgroups.iter().filter(|s| *s != "vars") {
        let sg = group(g, s, path)?;
        walk_layer(
            &sg,
            &format!("{h5_path}/{s}"),
            s,
            &format!("{prefix}{name}/"),
            path,
            out,
            budget,
            depth + 1,
        )?;
    }
    Ok(())
}

/// The layer class a Keras 3 group name stands for (`conv2d_1` → `conv2d`;
/// the `cell` of an `lstm` → `lstm_cell`).
fn class_of(group_name: &str, parent: &str) -> String {
    let base = strip_index(group_name);
    if base == "cell" {
        let p = strip_index(parent.rsplit('/').next().unwrap_or(parent));
        return format!("{p}_cell");
    }
    base.to_string()
}

fn strip_index(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => name,
    }
}

/// Variable names of a Keras 3 layer class, in `vars/<i>` order, given how
/// many variables the layer holds; `None` where the class is not known.
pub fn keras3_var_names(class: &str, count: usize) -> Option<&'static [&'static str]> {
    let names: &'static [&'static str] = match class {
        "conv1d" | "conv2d" | "conv3d" | "conv1d_transpose" | "conv2d_transpose"
        | "conv3d_transpose" | "depthwise_conv1d" | "depthwise_conv2d" | "dense"
        | "einsum_dense" | "query_dense" | "key_dense" | "value_dense" | "output_dense" => {
            &["kernel", "bias"]
        }
        "separable_conv1d" | "separable_conv2d" => {
            &["depthwise_kernel", "pointwise_kernel", "bias"]
        }
        "batch_normalization" if count == 4 => &["gamma", "beta", "moving_mean", "moving_variance"],
        "layer_normalization" | "group_normalization" if count == 2 => &["gamma", "beta"],
        "embedding" => &["embeddings"],
        "lstm_cell" | "gru_cell" | "simple_rnn_cell" => &["kernel", "recurrent_kernel", "bias"],
        _ => return None,
    };
    (count <= names.len()).then_some(names)
}

fn read_vars(
    vars: &Group,
    h5_path: &str,
    prefix: &str,
    class: &str,
    path: &Path,
    out: &mut BTreeMap<String, HostTensor>,
) -> Result<()> {
    let mut idx: Vec<(usize, String)> = vars
        .datasets()
        .map_err(|e| corrupt(path, format!("{h5_path}: {e}")))?
        .into_iter()
        .map(|d| (d.parse::<usize>().unwrap_or(usize::MAX), d))
        .collect();
    idx.sort();
    let names = keras3_var_names(class, idx.len());
    for (i, d) in &idx {
        let ds_path = format!("{h5_path}/{d}");
        let var = match names.and_then(|n| n.get(*i)) {
            Some(n) => (*n).to_string(),
            None => format!("vars/{d}"),
        };
        let t = read_dataset(vars, d, &ds_path, path)?;
        out.insert(format!("{prefix}{var}"), t);
    }
    Ok(())
}

fn walk_legacy(
    g: &Group,
    prefix: &str,
    path: &Path,
    out: &mut BTreeMap<String, HostTensor>,
    budget: &mut Budget,
    depth: usize,
) -> Result<()> {
    budget.enter(depth, prefix, path)?;
    for d in g
        .datasets()
        .map_err(|e| corrupt(path, format!("{prefix}: {e}")))?
    {
        let full = format!("{prefix}{d}");
        let t = read_dataset(g, &d, &full, path)?;
        // `model_weights/<layer>/<layer>/kernel:0` → `<layer>/kernel`.
        let key = full.strip_suffix(":0").unwrap_or(&full);
        let key = match key.split_once('/') {
            Some((outer, rest)) if rest.starts_with(&format!("{outer}/")) => rest.to_string(),
            _ => key.to_string(),
        };
        out.insert(key, t);
    }
    for s in g
        .groups()
        .map_err(|e| corrupt(path, format!("{prefix}: {e}")))?
    {
        let sg = group(g, &s, path)?;
        walk_legacy(&sg, &format!("{prefix}{s}/"), path, out, budget, depth + 1)?;
    }
    Ok(())
}

fn read_dataset(g: &Group, name: &str, h5_path: &str, path: &Path) -> Result<HostTensor> {
    let err = |e: hdf5_pure::Error| corrupt(path, format!("dataset `{h5_path}`: {e}"));
    let ds = g.dataset(name).map_err(err)?;
    let shape: Vec<usize> = ds
        .shape()
        .map_err(err)?
        .into_iter()
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect();
    let dtype = ds.dtype().map_err(err)?;
    let data = match dtype {
        DType::F32 => HostData::F32(ds.read_f32().map_err(err)?),
        DType::F64 => HostData::F64(ds.read_f64().map_err(err)?),
        DType::I8 | DType::I16 | DType::I32 | DType::I64 | DType::U8 | DType::U16 | DType::U32 => {
            HostData::I64(ds.read_i64().map_err(err)?)
        }
        other => {
            return Err(InteropError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("dataset `{h5_path}` has dtype {other}"),
            });
        }
    };
    HostTensor::new(shape, data, h5_path).map_err(|_| {
        corrupt(
            path,
            format!("dataset `{h5_path}`: value count does not fill its shape"),
        )
    })
}

fn group(g: &Group, name: &str, path: &Path) -> Result<Group> {
    g.group(name)
        .map_err(|e| corrupt(path, format!("group `{name}`: {e}")))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            InteropError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            corrupt(path, e)
        }
    })
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> InteropError {
    InteropError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// BatchNormalization epsilon when the model config does not say otherwise
/// (Keras's default; PyTorch's is 1e-5).
pub const KERAS_BN_EPSILON: f64 = 1e-3;

impl KerasArchive {
    /// The `epsilon` of the layer called `layer` in `config.json` (any layer
    /// class that has one, e.g. BatchNormalization), if the config has it.
    pub fn layer_epsilon(&self, layer: &str) -> Option<f64> {
        fn find(v: &serde_json::Value, layer: &str) -> Option<f64> {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(c) = m.get("config")
                        && c.get("name").and_then(|n| n.as_str()) == Some(layer)
                        && let Some(e) = c.get("epsilon").and_then(serde_json::Value::as_f64)
                    {
                        return Some(e);
                    }
                    m.values().find_map(|x| find(x, layer))
                }
                serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, layer)),
                _ => None,
            }
        }
        find(&self.config, layer)
    }
}

/// Converts a Keras checkpoint (keys as [`read_keras`] gives them) to unidl's
/// parameter names and layouts:
///
/// | Keras | unidl |
/// |---|---|
/// | `<l>/kernel` rank 2 (`[in, out]`) | `<l>.weight` unchanged (Burn `Linear` is `[in, out]`) |
/// | `<l>/kernel` rank 3–5 (`[k…, in, out]`, e.g. HWIO) | `<l>.weight` `[out, in, k…]` (OIHW) |
/// | `<l>/embeddings` | `<l>.weight` |
/// | `<l>/{gamma, beta, moving_mean, moving_variance}` | `<l>.{gamma, beta, running_mean, running_var}` |
/// | `<l>/<cell>/{kernel, recurrent_kernel, bias}` (LSTM, i f c o) | `<l>.layers.0.forward.{weight_ih, weight_hh, bias_ih}` transposed, same gate order, `bias_hh` zeros |
/// | the same for GRU (z r h, `reset_after`, bias `[2, 3h]`) | gates reordered to r z n, bias rows to `bias_ih`/`bias_hh` |
/// | `<m>/{query, key, value}/kernel` `[E, heads, head_dim]`, bias `[heads, head_dim]` | `<m>.{query, key, value}.weight` `[E, heads·head_dim]`, bias flattened |
/// | `<m>/attention_output/kernel` `[heads, head_dim, E]` | `<m>.output.weight` `[heads·head_dim, E]` |
///
/// Other keys keep their name with `/` turned into `.`.
///
/// # Errors
/// [`InteropError::Mapping`] naming the key when a tensor has a rank or
/// shape the rule cannot convert (a GRU without `reset_after`, a recurrent
/// kernel whose width is not 1, 3 or 4 times the hidden size).
pub fn keras_to_unidl(ckpt: &Checkpoint) -> Result<Checkpoint> {
    let mut layers: BTreeMap<&str, BTreeMap<&str, &HostTensor>> = BTreeMap::new();
    for (k, t) in &ckpt.tensors {
        let (layer, var) = k.rsplit_once('/').unwrap_or(("", k.as_str()));
        layers.entry(layer).or_default().insert(var, t);
    }
    let dotted = |s: &str| s.replace('/', ".");
    let mut out: BTreeMap<String, HostTensor> = BTreeMap::new();
    let mut done: std::collections::HashSet<&str> = std::collections::HashSet::new();

    // Multi-head attention: a parent of query/key/value/attention_output.
    let parents: Vec<&str> = layers
        .keys()
        .filter_map(|l| l.strip_suffix("/query"))
        .filter(|p| {
            ["key", "value", "attention_output"]
                .iter()
                .all(|c| layers.contains_key(format!("{p}/{c}").as_str()))
        })
        .collect();
    for p in parents {
        for (child, name) in [
            ("query", "query"),
            ("key", "key"),
            ("value", "value"),
            ("attention_output", "output"),
        ] {
            let lname = format!("{p}/{child}");
            let Some((&lkey, vars)) = layers.get_key_value(lname.as_str()) else {
                continue;
            };
            for (var, t) in vars {
                let key = format!("{lname}/{var}");
                let t = match (*var, t.shape.as_slice()) {
                    ("kernel", [e, h, d]) if child != "attention_output" => {
                        reshape(t, vec![*e, h * d])
                    }
                    ("kernel", [h, d, e]) => reshape(t, vec![h * d, *e]),
                    ("bias", s) if !s.is_empty() => reshape(t, vec![s.iter().product()]),
                    (_, s) => {
                        return Err(InteropError::Mapping {
                            key,
                            reason: format!("attention projection of shape {s:?}"),
                        });
                    }
                };
                let var = if *var == "kernel" { "weight" } else { var };
                out.insert(format!("{}.{name}.{var}", dotted(p)), t);
            }
            done.insert(lkey);
        }
    }

    for (layer, vars) in &layers {
        if done.contains(layer) {
            continue;
        }
        let dl = dotted(layer);
        if let (Some(k), Some(rk)) = (vars.get("kernel"), vars.get("recurrent_kernel")) {
            let prefix = match layer.rsplit_once('/') {
                Some((parent, last)) if last == "cell" || last.ends_with("_cell") => dotted(parent),
                _ => dl.clone(),
            };
            rnn_to_unidl(layer, k, rk, vars.get("bias").copied(), &prefix, &mut out)?;
            continue;
        }
        for (var, t) in vars {
            let key = format!("{layer}/{var}");
            let (name, t) = match *var {
                "kernel" if t.shape.len() == 2 => ("weight", (*t).clone()),
                "kernel" if (3..=5).contains(&t.shape.len()) => {
                    // [k…, in, out] → [out, in, k…]
                    let r = t.shape.len();
                    let mut perm = vec![r - 1, r - 2];
                    perm.extend(0..r - 2);
                    ("weight", crate::mapping::permute(t, &perm)?)
                }
                "kernel" => {
                    return Err(InteropError::Mapping {
                        key,
                        reason: format!("kernel of rank {}", t.shape.len()),
                    });
                }
                "embeddings" => ("weight", (*t).clone()),
                "moving_mean" => ("running_mean", (*t).clone()),
                "moving_variance" => ("running_var", (*t).clone()),
                other => (other, (*t).clone()),
            };
            let name = name.replace('/', ".");
            let full = if dl.is_empty() {
                name
            } else {
                format!("{dl}.{name}")
            };
            out.insert(full, t);
        }
    }
    Ok(Checkpoint {
        source: ckpt.source.clone(),
        framework: ckpt.framework,
        tensors: out,
    })
}

/// Keras recurrent cell → unidl `layers.0.forward.*` (PyTorch layouts).
fn rnn_to_unidl(
    layer: &str,
    kernel: &HostTensor,
    recurrent: &HostTensor,
    bias: Option<&HostTensor>,
    prefix: &str,
    out: &mut BTreeMap<String, HostTensor>,
) -> Result<()> {
    let key = format!("{layer}/recurrent_kernel");
    let (&[input, width], &[hidden, width2]) =
        (kernel.shape.as_slice(), recurrent.shape.as_slice())
    else {
        return Err(InteropError::Mapping {
            key,
            reason: format!(
                "kernel {:?} / recurrent kernel {:?} are not 2-D",
                kernel.shape, recurrent.shape
            ),
        });
    };
    if width != width2
        || hidden == 0
        || width % hidden != 0
        || ![1, 3, 4].contains(&(width / hidden))
    {
        return Err(InteropError::Mapping {
            key,
            reason: format!(
                "kernel [{input}, {width}] and recurrent kernel [{hidden}, {width2}] are not an RNN, GRU or LSTM cell"
            ),
        });
    }
    let filled = |t: &HostTensor| t.data.len() == t.shape.iter().product::<usize>();
    if !filled(kernel) || !filled(recurrent) || bias.is_some_and(|b| !filled(b)) {
        return Err(InteropError::Mapping {
            key,
            reason: "value count does not match the shape".into(),
        });
    }
    let gates = width / hidden;
    // Keras GRU gates are z, r, h; PyTorch's r, z, n. LSTM (i f c o) and
    // SimpleRNN keep their order.
    let order: Vec<usize> = if gates == 3 {
        vec![1, 0, 2]
    } else {
        (0..gates).collect()
    };
    let reorder = |t: &HostTensor| -> HostTensor {
        // t: [rows, gates·hidden] → columns regrouped per `order`, then transposed.
        let rows = t.shape[0];
        let src = t.data.to_f32();
        let mut dst = Vec::with_capacity(src.len());
        for &g in &order {
            for j in 0..hidden {
                let c = g * hidden + j;
                dst.extend((0..rows).map(|r| src[r * width + c]));
            }
        }
        HostTensor {
            shape: vec![width, rows],
            data: HostData::F32(dst),
        }
    };
    let reorder_vec = |v: &[f32]| -> Vec<f32> {
        order
            .iter()
            .flat_map(|&g| v[g * hidden..(g + 1) * hidden].iter().copied())
            .collect()
    };
    let p = format!("{prefix}.layers.0.forward");
    out.insert(format!("{p}.weight_ih"), reorder(kernel));
    out.insert(format!("{p}.weight_hh"), reorder(recurrent));
    if let Some(b) = bias {
        let v = b.data.to_f32();
        let (bih, bhh) = match (gates, b.shape.as_slice()) {
            (3, [2, w]) if *w == width => (reorder_vec(&v[..width]), reorder_vec(&v[width..])),
            (g, [w]) if *w == width && g != 3 => (reorder_vec(&v), vec![0.0; width]),
            (_, s) => {
                return Err(InteropError::Mapping {
                    key: format!("{layer}/bias"),
                    reason: format!(
                        "bias {s:?} for {gates} gates of {hidden} (a GRU needs reset_after=True, bias [2, {width}])"
                    ),
                });
            }
        };
        out.insert(
            format!("{p}.bias_ih"),
            HostTensor {
                shape: vec![width],
                data: HostData::F32(bih),
            },
        );
        out.insert(
            format!("{p}.bias_hh"),
            HostTensor {
                shape: vec![width],
                data: HostData::F32(bhh),
            },
        );
    }
    Ok(())
}

fn reshape(t: &HostTensor, shape: Vec<usize>) -> HostTensor {
    HostTensor {
        shape,
        data: t.data.clone(),
    }
}
