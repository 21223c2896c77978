//! The mapping layer: from a framework's key names and layouts to a unidl
//! module's, as an ordered list of named rules, and [`load_into`] which
//! applies them and loads the result with a report.
//!
//! For every checkpoint key, in this order:
//! 1. **ignore** rules (regex) drop keys that have no unidl counterpart
//!    (`num_batches_tracked`);
//! 2. **rename** rules (regex with `$1` captures) are applied one after the
//!    other, each to the result of the previous one; a rule may be limited to
//!    keys whose parent module in the target has a given Burn type
//!    (`BatchNorm`: `weight` → `gamma`);
//! 3. **split** rules cut one tensor into equal parts along an axis and name
//!    each part (PyTorch's fused `in_proj_weight` → `query`/`key`/`value`);
//! 4. **layout** rules convert the tensor of every key they match, in order:
//!    [`Layout::Transpose`] (dense `[out, in]` ↔ Burn's `[in, out]`),
//!    [`Layout::HwioToOihw`] (TensorFlow conv kernels), [`Layout::Permute`],
//!    [`Layout::Gates`] (recurrent gate order, e.g. Keras GRU `z, r, h` →
//!    PyTorch `r, z, n`).
//!
//! [`default_rules`] gives each framework's rule set; users extend it with
//! the builder methods or a TOML file ([`MappingRules::from_toml`]) without
//! forking.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::Deserialize;
use unidl_tensor::module::{LoadReport, ModuleApi, StateDict};

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostData, HostTensor};

/// A tensor layout conversion.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Swaps the two axes of a matrix: dense `[out, in]` (PyTorch, MindSpore)
    /// ↔ `[in, out]` (Burn's `Linear`, Keras, Paddle).
    Transpose,
    /// Conv kernel `[H, W, I, O]` (TensorFlow/Keras) → `[O, I, H, W]` (PyTorch, Burn).
    HwioToOihw,
    /// Conv kernel `[O, I, H, W]` → `[H, W, I, O]`.
    OihwToHwio,
    /// General axis permutation: output axis `k` is input axis `perm[k]`.
    Permute(Vec<usize>),
    /// Reorders equal gate blocks along `axis`. `from` and `to` name the
    /// gates one letter each (`"ifco"` → `"ifgo"`); `c` (Keras' cell
    /// candidate) and `g` (PyTorch's) are the same gate, and so are `h`
    /// (Keras GRU candidate) and `n` (PyTorch's).
    Gates {
        /// Gate order in the source (one letter per gate).
        from: String,
        /// Gate order in the target.
        to: String,
        /// The axis holding the gate blocks (0 for `[G*H, I]`, the last for `[I, G*H]`).
        #[serde(default)]
        axis: usize,
    },
}

impl Layout {
    /// The rule's name in reports.
    pub fn name(&self) -> String {
        match self {
            Layout::Transpose => "transpose".into(),
            Layout::HwioToOihw => "hwio_to_oihw".into(),
            Layout::OihwToHwio => "oihw_to_hwio".into(),
            Layout::Permute(p) => format!("permute{p:?}"),
            Layout::Gates { from, to, axis } => format!("gates {from}->{to} (axis {axis})"),
        }
    }

    /// Applies the conversion to `t` (`key` names it in errors).
    pub fn apply(&self, t: &HostTensor, key: &str) -> Result<HostTensor> {
        let err = |reason: String| InteropError::Mapping {
            key: key.to_string(),
            reason,
        };
        match self {
            Layout::Transpose => {
                if t.shape.len() != 2 {
                    return Err(err(format!(
                        "transpose needs a matrix, got shape {:?}",
                        t.shape
                    )));
                }
                permute(t, &[1, 0])
            }
            Layout::HwioToOihw | Layout::OihwToHwio => {
                if t.shape.len() != 4 {
                    return Err(err(format!(
                        "{} needs a 4-D kernel, got shape {:?}",
                        self.name(),
                        t.shape
                    )));
                }
                let p = if *self == Layout::HwioToOihw {
                    [3, 2, 0, 1]
                } else {
                    [2, 3, 1, 0]
                };
                permute(t, &p)
            }
            Layout::Permute(p) => {
                let mut sorted = p.clone();
                sorted.sort_unstable();
                if sorted != (0..t.shape.len()).collect::<Vec<_>>() {
                    return Err(err(format!(
                        "permutation {p:?} does not fit shape {:?}",
                        t.shape
                    )));
                }
                permute(t, p)
            }
            Layout::Gates { from, to, axis } => {
                let order = gate_order(from, to).map_err(err)?;
                if *axis >= t.shape.len() || !t.shape[*axis].is_multiple_of(order.len()) {
                    return Err(err(format!(
                        "shape {:?} has no axis {axis} divisible into {} gates",
                        t.shape,
                        order.len()
                    )));
                }
                let blocks = split(t, *axis, order.len());
                let reordered: Vec<HostTensor> = order.iter().map(|&i| blocks[i].clone()).collect();
                Ok(concat(&reordered, *axis))
            }
        }
    }
}

fn canonical_gate(c: char) -> char {
    match c {
        'c' => 'g',
        'h' => 'n',
        other => other,
    }
}

/// For each target gate, the index of the same gate in the source order.
fn gate_order(from: &str, to: &str) -> std::result::Result<Vec<usize>, String> {
    let f: Vec<char> = from.chars().map(canonical_gate).collect();
    let t: Vec<char> = to.chars().map(canonical_gate).collect();
    let mut fs = f.clone();
    let mut ts = t.clone();
    fs.sort_unstable();
    ts.sort_unstable();
    if fs != ts || fs.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!(
            "gate orders `{from}` and `{to}` do not name the same distinct gates"
        ));
    }
    Ok(t.iter()
        .map(|g| f.iter().position(|x| x == g).unwrap_or(0))
        .collect())
}

/// Permutes the axes of a host tensor: output axis `k` is input axis `perm[k]`.
pub fn permute(t: &HostTensor, perm: &[usize]) -> Result<HostTensor> {
    let rank = t.shape.len();
    let mut in_strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * t.shape[d + 1];
    }
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let idx = crate::host::strided_indices(&shape, &strides, 0);
    Ok(HostTensor {
        shape,
        data: t.data.gather(&idx),
    })
}

/// Splits `t` into `n` equal parts along `axis` (the axis must divide evenly).
pub fn split(t: &HostTensor, axis: usize, n: usize) -> Vec<HostTensor> {
    let rank = t.shape.len();
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * t.shape[d + 1];
    }
    let part = t.shape[axis] / n;
    let mut shape = t.shape.clone();
    shape[axis] = part;
    (0..n)
        .map(|k| {
            let idx = crate::host::strided_indices(&shape, &strides, k * part * strides[axis]);
            HostTensor {
                shape: shape.clone(),
                data: t.data.gather(&idx),
            }
        })
        .collect()
}

/// Concatenates tensors of equal shape except along `axis`, and equal dtype.
pub fn concat(parts: &[HostTensor], axis: usize) -> HostTensor {
    let mut shape = parts[0].shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    let outer: usize = shape[..axis].iter().product();
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    // Flat indices into a virtual concatenation of all parts' data.
    let mut base = 0;
    let mut offsets = Vec::new();
    for p in parts {
        offsets.push(base);
        base += p.data.len();
    }
    for o in 0..outer {
        for (p, off) in parts.iter().zip(&offsets) {
            let inner: usize = p.shape[axis..].iter().product();
            chunks.push((off + o * inner..off + (o + 1) * inner).collect());
        }
    }
    let all = match &parts[0].data {
        HostData::F32(_) => HostData::F32(
            parts
                .iter()
                .flat_map(|p| p.data.to_f32())
                .collect::<Vec<_>>(),
        ),
        HostData::F64(_) => HostData::F64(
            parts
                .iter()
                .flat_map(|p| match &p.data {
                    HostData::F64(v) => v.clone(),
                    other => other.to_f32().into_iter().map(f64::from).collect(),
                })
                .collect(),
        ),
        HostData::I64(_) => HostData::I64(
            parts
                .iter()
                .flat_map(|p| match &p.data {
                    HostData::I64(v) => v.clone(),
                    other => other.to_f32().into_iter().map(|x| x as i64).collect(),
                })
                .collect(),
        ),
        HostData::Bool(_) => HostData::Bool(
            parts
                .iter()
                .flat_map(|p| match &p.data {
                    HostData::Bool(v) => v.clone(),
                    other => other.to_f32().into_iter().map(|x| x != 0.0).collect(),
                })
                .collect(),
        ),
    };
    let idx: Vec<usize> = chunks.into_iter().flatten().collect();
    HostTensor {
        shape,
        data: all.gather(&idx),
    }
}

/// Renames keys matching `pattern` (captures usable as `$1`, `${name}`).
#[derive(Debug, Clone)]
pub struct RenameRule {
    /// Matched against the whole current key.
    pub pattern: Regex,
    /// Replacement with captures.
    pub replace: String,
    /// Only when the renamed key's parent module in the target has this Burn type.
    pub module_type: Option<String>,
}

/// Splits one tensor into equal parts along `axis`, one new key per part.
#[derive(Debug, Clone)]
pub struct SplitRule {
    /// Matched against the renamed key.
    pub pattern: Regex,
    /// The axis to split.
    pub axis: usize,
    /// One replacement (with captures) per part.
    pub into: Vec<String>,
}

/// Converts the layout of keys matching `pattern`.
#[derive(Debug, Clone)]
pub struct LayoutRule {
    /// Matched against the final (unidl) key.
    pub pattern: Regex,
    /// Only when the key's parent module in the target has this Burn type.
    pub module_type: Option<String>,
    /// The conversion.
    pub layout: Layout,
}

/// An ordered rule set (see the [module docs](self) for the order of application).
#[derive(Debug, Clone, Default)]
pub struct MappingRules {
    /// Keys dropped before anything else.
    pub ignore: Vec<Regex>,
    /// Renames, applied in order.
    pub renames: Vec<RenameRule>,
    /// Splits of fused tensors.
    pub splits: Vec<SplitRule>,
    /// Layout conversions, applied in order.
    pub layouts: Vec<LayoutRule>,
    /// BatchNorm epsilon the source framework uses by default (reported).
    pub bn_epsilon: Option<f64>,
}

fn regex(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| InteropError::Mapping {
        key: pattern.to_string(),
        reason: format!("invalid regex: {e}"),
    })
}

/// TOML form of a rule set (see [`MappingRules::from_toml`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlRules {
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    rename: Vec<TomlRename>,
    #[serde(default)]
    split: Vec<TomlSplit>,
    #[serde(default)]
    layout: Vec<TomlLayout>,
    bn_epsilon: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlRename {
    pattern: String,
    replace: String,
    module_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlSplit {
    pattern: String,
    #[serde(default)]
    axis: usize,
    into: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlLayout {
    pattern: String,
    module_type: Option<String>,
    transform: Layout,
}

impl MappingRules {
    /// An empty rule set (keys and layouts pass through unchanged).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an ignore rule.
    pub fn ignore(mut self, pattern: &str) -> Result<Self> {
        self.ignore.push(regex(pattern)?);
        Ok(self)
    }

    /// Adds a rename rule (anchored or not, as the pattern says).
    pub fn rename(mut self, pattern: &str, replace: &str) -> Result<Self> {
        self.renames.push(RenameRule {
            pattern: regex(pattern)?,
            replace: replace.to_string(),
            module_type: None,
        });
        Ok(self)
    }

    /// Adds a rename rule that applies only when the renamed key's parent
    /// module has Burn type `module_type` (e.g. `BatchNorm`).
    pub fn rename_in(mut self, module_type: &str, pattern: &str, replace: &str) -> Result<Self> {
        self.renames.push(RenameRule {
            pattern: regex(pattern)?,
            replace: replace.to_string(),
            module_type: Some(module_type.to_string()),
        });
        Ok(self)
    }

    /// Adds a split rule.
    pub fn split(mut self, pattern: &str, axis: usize, into: &[&str]) -> Result<Self> {
        self.splits.push(SplitRule {
            pattern: regex(pattern)?,
            axis,
            into: into.iter().map(|s| s.to_string()).collect(),
        });
        Ok(self)
    }

    /// Adds a layout rule for keys matching `pattern`.
    pub fn layout(mut self, pattern: &str, layout: Layout) -> Result<Self> {
        self.layouts.push(LayoutRule {
            pattern: regex(pattern)?,
            module_type: None,
            layout,
        });
        Ok(self)
    }

    /// Adds a layout rule for keys matching `pattern` whose parent module has
    /// Burn type `module_type` (e.g. `Linear`).
    pub fn layout_in(mut self, module_type: &str, pattern: &str, layout: Layout) -> Result<Self> {
        self.layouts.push(LayoutRule {
            pattern: regex(pattern)?,
            module_type: Some(module_type.to_string()),
            layout,
        });
        Ok(self)
    }

    /// Appends `other`'s rules after this set's (its epsilon wins if set).
    pub fn then(mut self, other: MappingRules) -> Self {
        self.ignore.extend(other.ignore);
        self.renames.extend(other.renames);
        self.splits.extend(other.splits);
        self.layouts.extend(other.layouts);
        self.bn_epsilon = other.bn_epsilon.or(self.bn_epsilon);
        self
    }

    /// Parses a rule set from TOML:
    ///
    /// ```toml
    /// ignore = ["\\.num_batches_tracked$"]
    /// bn_epsilon = 1e-5
    /// [[rename]]
    /// pattern = "^backbone\\.(.*)$"
    /// replace = "$1"
    /// [[rename]]
    /// module_type = "BatchNorm"
    /// pattern = "^(.*)\\.weight$"
    /// replace = "$1.gamma"
    /// [[split]]
    /// pattern = "^(.*)\\.in_proj_weight$"
    /// axis = 0
    /// into = ["$1.query.weight", "$1.key.weight", "$1.value.weight"]
    /// [[layout]]
    /// module_type = "Linear"
    /// pattern = "\\.weight$"
    /// transform = "transpose"      # or "hwio_to_oihw", { permute = [1, 0] },
    ///                              # { gates = { from = "zrh", to = "rzn", axis = 0 } }
    /// ```
    ///
    /// Unknown keys are errors naming the key.
    pub fn from_toml(text: &str) -> Result<Self> {
        let t: TomlRules = toml::from_str(text).map_err(|e| InteropError::Mapping {
            key: "<toml rules>".into(),
            reason: e.to_string(),
        })?;
        let mut r = MappingRules::new();
        for p in &t.ignore {
            r = r.ignore(p)?;
        }
        for x in &t.rename {
            r.renames.push(RenameRule {
                pattern: regex(&x.pattern)?,
                replace: x.replace.clone(),
                module_type: x.module_type.clone(),
            });
        }
        for x in &t.split {
            r.splits.push(SplitRule {
                pattern: regex(&x.pattern)?,
                axis: x.axis,
                into: x.into.clone(),
            });
        }
        for x in &t.layout {
            r.layouts.push(LayoutRule {
                pattern: regex(&x.pattern)?,
                module_type: x.module_type.clone(),
                layout: x.transform.clone(),
            });
        }
        r.bn_epsilon = t.bn_epsilon;
        Ok(r)
    }

    /// Reads [`MappingRules::from_toml`] from a file.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| InteropError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            InteropError::Mapping { reason, .. } => InteropError::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }
}

/// PyTorch's recurrent names `{w}_l{k}[_reverse]` → unidl's
/// `layers.{k}.{forward|reverse}.{w}` (see `unidl_nn::rnn`).
fn torch_rnn_renames(r: MappingRules) -> Result<MappingRules> {
    r.rename(
        r"^(.*?)\.?(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)_reverse$",
        "${1}.layers.${3}.reverse.${2}",
    )?
    .rename(
        r"^(.*?)\.?(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$",
        "${1}.layers.${3}.forward.${2}",
    )
}

/// BatchNorm `weight`/`bias` → Burn's `gamma`/`beta`.
fn norm_affine_renames(r: MappingRules) -> Result<MappingRules> {
    let mut r = r;
    for norm in ["BatchNorm", "LayerNorm", "GroupNorm"] {
        r = r
            .rename_in(norm, r"^(.*)\.weight$", "$1.gamma")?
            .rename_in(norm, r"^(.*)\.bias$", "$1.beta")?;
    }
    Ok(r)
}

/// The default rule set for a framework's checkpoints into unidl modules
/// built from `unidl_nn`/Burn layers:
///
/// | framework | rules |
/// |---|---|
/// | PyTorch | drop `num_batches_tracked`; BatchNorm, LayerNorm and GroupNorm `weight`/`bias` → `gamma`/`beta`; `{w}_l{k}[_reverse]` → `layers.{k}.{forward\|reverse}.{w}`; `in_proj_{weight,bias}` → `query`/`key`/`value`; `out_proj` → `output`; `Linear` weights transposed |
/// | Paddle | as PyTorch, plus `_mean`/`_variance` → `running_mean`/`running_var`; Paddle's `Linear` is already `[in, out]` (no transpose); `MultiHeadAttention` `q_proj`/`k_proj`/`v_proj`/`out_proj` → `query`/`key`/`value`/`output`; LSTM `weight_ih_l0` as PyTorch (also under `.cell.`/`.0.cell_fw.` paths, see [`crate::paddle`]) |
/// | MindSpore | `moving_mean`/`moving_variance`/`gamma`/`beta` → Burn's names; `embedding_table` → `weight`; `Dense` `[out, in]` transposed; LSTM as PyTorch names (see [`crate::mindspore`]); `MultiheadAttention` as PyTorch's |
/// | others | none (the TensorFlow/Keras and ONNX readers bring their own) |
pub fn default_rules(framework: Framework) -> Result<MappingRules> {
    let r = MappingRules::new();
    let mut r = match framework {
        Framework::PyTorch | Framework::Unidl => {
            let r = r.ignore(r"(^|\.)num_batches_tracked$")?;
            let r = norm_affine_renames(r)?;
            let r = torch_rnn_renames(r)?;
            r.rename(r"^(.*)\.out_proj\.(weight|bias)$", "$1.output.$2")?
                .split(
                    r"^(.*)\.in_proj_(weight|bias)$",
                    0,
                    &["$1.query.$2", "$1.key.$2", "$1.value.$2"],
                )?
                .layout_in("Linear", r"\.weight$", Layout::Transpose)?
        }
        Framework::Paddle => {
            let r = r
                .ignore(r"\.\d+\.cell(_fw|_bw)?\.(weight|bias)_(ih|hh)$")?
                .rename(r"^(.*)\._mean$", "$1.running_mean")?
                .rename(r"^(.*)\._variance$", "$1.running_var")?;
            let r = norm_affine_renames(r)?;
            let r = torch_rnn_renames(r)?;
            r.rename(r"^(.*)\.q_proj\.(weight|bias)$", "$1.query.$2")?
                .rename(r"^(.*)\.k_proj\.(weight|bias)$", "$1.key.$2")?
                .rename(r"^(.*)\.v_proj\.(weight|bias)$", "$1.value.$2")?
                .rename(r"^(.*)\.out_proj\.(weight|bias)$", "$1.output.$2")?
        }
        Framework::MindSpore => {
            let r = r
                .rename(r"^(.*)\.moving_mean$", "$1.running_mean")?
                .rename(r"^(.*)\.moving_variance$", "$1.running_var")?
                .rename(r"^(.*)\.embedding_table$", "$1.weight")?;
            let r = torch_rnn_renames(r)?;
            r.rename(r"^(.*)\.out_proj\.(weight|bias)$", "$1.output.$2")?
                .split(
                    r"^(.*)\.in_proj_(weight|bias)$",
                    0,
                    &["$1.query.$2", "$1.key.$2", "$1.value.$2"],
                )?
                .layout_in("Linear", r"\.weight$", Layout::Transpose)?
        }
        Framework::TensorFlow | Framework::Onnx => r,
    };
    r.bn_epsilon = Some(framework.default_bn_epsilon());
    Ok(r)
}

impl Framework {
    /// The framework's default BatchNorm epsilon (PyTorch, Paddle, MindSpore
    /// 1e-5; Keras 1e-3; ONNX's `BatchNormalization` 1e-5).
    pub fn default_bn_epsilon(self) -> f64 {
        match self {
            Framework::TensorFlow => 1e-3,
            _ => 1e-5,
        }
    }
}

/// What [`map_checkpoint`] did to each key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappingLog {
    /// (checkpoint key, unidl key) for every key that was renamed or split.
    pub renamed: Vec<(String, String)>,
    /// (unidl key, conversion name) for every layout conversion applied.
    pub converted: Vec<(String, String)>,
    /// Checkpoint keys dropped by ignore rules.
    pub ignored: Vec<String>,
}

/// Applies `rules` to a checkpoint. `module_types` maps module paths of the
/// target to Burn type names (from `ModuleApi::get_modules`) for
/// type-conditioned rules. Returns the tensors under unidl names and a log.
pub fn map_checkpoint(
    ckpt: &Checkpoint,
    rules: &MappingRules,
    module_types: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, HostTensor>, MappingLog)> {
    let parent_type = |key: &str| -> Option<&String> {
        let parent = key.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
        module_types.get(parent)
    };
    let mut out = BTreeMap::new();
    let mut log = MappingLog::default();
    for (orig, tensor) in &ckpt.tensors {
        if rules.ignore.iter().any(|r| r.is_match(orig)) {
            log.ignored.push(orig.clone());
            continue;
        }
        let mut key = orig.clone();
        for r in &rules.renames {
            if !r.pattern.is_match(&key) {
                continue;
            }
            let new = r.pattern.replace(&key, r.replace.as_str()).into_owned();
            if let Some(ty) = &r.module_type
                && parent_type(&new) != Some(ty)
            {
                continue;
            }
            key = new;
        }
        let mut parts: Vec<(String, HostTensor)> = vec![(key.clone(), tensor.clone())];
        if let Some(s) = rules.splits.iter().find(|s| s.pattern.is_match(&key)) {
            let n = s.into.len();
            if s.axis >= tensor.shape.len() || n == 0 || !tensor.shape[s.axis].is_multiple_of(n) {
                return Err(InteropError::Mapping {
                    key: orig.clone(),
                    reason: format!(
                        "cannot split shape {:?} into {n} parts along axis {}",
                        tensor.shape, s.axis
                    ),
                });
            }
            parts = split(tensor, s.axis, n)
                .into_iter()
                .zip(&s.into)
                .map(|(t, tpl)| (s.pattern.replace(&key, tpl.as_str()).into_owned(), t))
                .collect();
        }
        for (k, mut t) in parts {
            for l in &rules.layouts {
                if !l.pattern.is_match(&k) {
                    continue;
                }
                if let Some(ty) = &l.module_type
                    && parent_type(&k) != Some(ty)
                {
                    continue;
                }
                t = l.layout.apply(&t, &k)?;
                log.converted.push((k.clone(), l.layout.name()));
            }
            if &k != orig {
                log.renamed.push((orig.clone(), k.clone()));
            }
            if out.insert(k.clone(), t).is_some() {
                return Err(InteropError::Mapping {
                    key: k,
                    reason: format!("two checkpoint keys map to this key (second: `{orig}`)"),
                });
            }
        }
    }
    Ok((out, log))
}

/// The result of [`load_into`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Loaded, missing, unexpected and shape-mismatched keys (unidl names).
    pub load: LoadReport,
    /// What the rules did.
    pub mapping: MappingLog,
    /// The BatchNorm epsilon of the source framework (build the module with it).
    pub bn_epsilon: Option<f64>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; {} renamed, {} converted, {} ignored",
            self.load,
            self.mapping.renamed.len(),
            self.mapping.converted.len(),
            self.mapping.ignored.len()
        )?;
        if let Some(e) = self.bn_epsilon {
            write!(f, "; source BatchNorm epsilon {e}")?;
        }
        Ok(())
    }
}

/// Burn type name of every module path in `module`.
pub fn module_types<M: ModuleApi>(module: &M) -> BTreeMap<String, String> {
    module
        .get_modules()
        .into_iter()
        .map(|m| (m.path, m.type_name))
        .collect()
}

/// Maps `ckpt` with `rules` and loads it into `module`.
///
/// With `strict`, any missing, unexpected or shape-mismatched key is
/// [`InteropError::Load`] (listing all of them) and nothing is loaded;
/// otherwise every key that matches is loaded and the report lists the rest.
pub fn load_into<M: ModuleApi>(
    module: M,
    ckpt: &Checkpoint,
    rules: &MappingRules,
    strict: bool,
) -> Result<(M, Report)> {
    let types = module_types(&module);
    let (tensors, mapping) = map_checkpoint(ckpt, rules, &types)?;
    let device = module.devices().first().cloned().unwrap_or_default();
    let own: BTreeSet<String> = module.state_dict().into_keys().collect();
    let mut state = StateDict::new();
    for (k, t) in &tensors {
        // Unexpected keys are only reported; a placeholder stands in for
        // tensors a unidl tensor cannot hold (rank above 6).
        let t = match t.to_tensor(&device) {
            Ok(t) => t,
            Err(_) if !own.contains(k) => {
                HostTensor::new(vec![1], HostData::F32(vec![0.0]), k)?.to_tensor(&device)?
            }
            Err(e) => return Err(e),
        };
        state.insert(k.clone(), t);
    }
    let (loaded, load) = module
        .load_state_dict_lenient(&state)
        .map_err(|e| InteropError::Module(Box::new(e)))?;
    let report = Report {
        load,
        mapping,
        bn_epsilon: rules.bn_epsilon,
    };
    if strict && !report.load.is_clean() {
        return Err(InteropError::Load {
            path: ckpt.source.clone(),
            report: Box::new(report.load),
        });
    }
    Ok((loaded, report))
}
