//! # Module API (A.2, §6.2.1.2)
//!
//! Works for every Burn `#[derive(Module)]` type through the blanket trait
//! [`ModuleApi`]: `get_parameters`, `get_buffers`, `get_modules`,
//! `get_submodule`, `state_dict`, `load_state_dict` (strict or lenient),
//! training-state save/load for pause and resume (safetensors, atomic), and
//! [`backward`] (gradients of inputs and weights for a given output gradient).
//! [`Forward`] is the dynamic-tensor `forward` convention: one tensor, or
//! named tensors and per-call options ([`Inputs`]).
//!
//! Parameter names are the field paths joined by `.` (`layers.0.weight`), the
//! same rule as PyTorch's `state_dict`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Bool, Int, Tensor as BT, TensorData};
use unidl_backend::{DType, Device};

use crate::error::TensorError;
use crate::tensor::{BurnKind, Tensor};

/// Errors of the Module API.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// `load_state_dict` in strict mode found keys that do not match (A.2.2.4).
    #[error("state dict does not match the module: {0}")]
    Mismatch(LoadReport),
    /// No sub-module has this path.
    #[error("no sub-module `{path}`; modules: {available}")]
    NoSuchModule {
        /// Requested path.
        path: String,
        /// Comma-separated list of existing paths.
        available: String,
    },
    /// Reading or writing a training-state file failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A tensor operation failed (shape, dtype).
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// What `load_state_dict` matched and what it did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Keys loaded.
    pub loaded: Vec<String>,
    /// Module keys absent from the state dict.
    pub missing: Vec<String>,
    /// State-dict keys the module does not have.
    pub unexpected: Vec<String>,
    /// Keys present on both sides with different shapes: (key, module shape, given shape).
    pub shape_mismatch: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    /// True when every key matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.shape_mismatch.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} loaded", self.loaded.len())?;
        if !self.missing.is_empty() {
            write!(f, "; missing keys: {}", self.missing.join(", "))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; unexpected keys: {}", self.unexpected.join(", "))?;
        }
        for (k, m, g) in &self.shape_mismatch {
            write!(f, "; shape mismatch for {k}: module {m:?}, given {g:?}")?;
        }
        Ok(())
    }
}

/// A state dict: parameter and buffer name → tensor (ordered by name).
pub type StateDict = BTreeMap<String, Tensor>;

/// One module in the tree, as `get_modules` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Path from the root (`""` for the root itself).
    pub path: String,
    /// Burn's type name (`Linear`, `Vec`, …).
    pub type_name: String,
    /// Number of parameter and buffer elements directly or indirectly inside.
    pub num_elements: usize,
}

/// A read-only view of one sub-module: its info and its tensors with names
/// relative to it.
#[derive(Debug, Clone)]
pub struct Submodule {
    /// Where it is and what it is.
    pub info: ModuleInfo,
    /// Its trainable parameters, named relative to the sub-module.
    pub parameters: Vec<(String, Tensor)>,
    /// Its buffers (running statistics and other non-trainable state).
    pub buffers: Vec<(String, Tensor)>,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    tensor: Tensor,
}

/// Collects every tensor with its path, and every module path with its type.
#[derive(Default)]
struct Collector {
    stack: Vec<String>,
    entries: Vec<Entry>,
    /// (path, type name); paths that turn out to be parameters are removed later.
    modules: Vec<(String, String)>,
    root_type: Option<String>,
    trainable_flags: Vec<bool>,
}

fn type_of(container: &str) -> String {
    container
        .split_once(':')
        .map(|(_, t)| t)
        .unwrap_or(container)
        .to_string()
}

impl Collector {
    fn push<const D: usize, K: BurnKind>(&mut self, t: &BT<D, K>, trainable: bool) {
        if let Ok(tensor) = Tensor::from_burn(t.clone()) {
            self.entries.push(Entry {
                path: self.stack.join("."),
                tensor,
            });
            self.trainable_flags.push(trainable);
        }
    }
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        // `container_type` names the parent: it types the current path.
        let parent = self.stack.join(".");
        if self.stack.is_empty() && self.root_type.is_none() {
            self.root_type = Some(type_of(container_type));
        }
        if let Some(m) = self.modules.iter_mut().find(|(p, _)| *p == parent) {
            m.1 = type_of(container_type);
        } else if !parent.is_empty() {
            self.modules.push((parent, type_of(container_type)));
        }
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<BT<D>>) {
        let t = param.val();
        let trainable = t.is_require_grad();
        self.push(&t, trainable);
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<BT<D, Int>>) {
        self.push(&param.val(), false);
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<BT<D, Bool>>) {
        self.push(&param.val(), false);
    }
}

fn collect<M: Module>(m: &M) -> Collector {
    // Burn's `RunningState` shows visitors its value as of the update
    // before last (a training forward's update waits in a per-thread map
    // until a sync); `valid()` syncs every running state in place (the copy
    // shares them), so the batch norm statistics read here are current.
    let _synced = m.valid();
    let mut c = Collector::default();
    m.visit(&mut c);
    c
}

/// Paths of the trainable float parameters: decided on an autodiff copy, where
/// parameters require gradients and buffers (running statistics) do not.
fn trainable_paths<M: Module>(m: &M) -> BTreeSet<String> {
    // `train()` reinstates every parameter's configured gradient requirement on
    // an autodiff copy; running statistics never require gradients.
    let c = collect(&m.clone().train());
    c.entries
        .into_iter()
        .zip(c.trainable_flags)
        .filter(|(_, t)| *t)
        .map(|(e, _)| e.path)
        .collect()
}

/// Replaces tensors by path from a state dict.
struct Loader<'a> {
    stack: Vec<String>,
    source: &'a StateDict,
    error: Option<TensorError>,
}

impl Loader<'_> {
    fn take<const D: usize, K: BurnKind>(&mut self, old: BT<D, K>) -> BT<D, K> {
        let path = self.stack.join(".");
        let Some(new) = self.source.get(&path) else {
            return old;
        };
        let device = old.device();
        let dtype = Tensor::from_burn(old.clone())
            .map(|t| t.dtype())
            .unwrap_or(DType::Float32);
        let converted = new
            .to_device(&device)
            .and_then(|t| t.to_dtype(dtype))
            .and_then(|t| t.into_burn::<D, K>());
        match converted {
            Ok(t) => t,
            Err(e) => {
                self.error.get_or_insert(e);
                old
            }
        }
    }
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<BT<D>>) -> Param<BT<D>> {
        let (id, old, mapper) = param.consume();
        let require_grad = old.is_require_grad();
        let new = self.take(old.detach()).set_require_grad(require_grad);
        Param::from_mapped_value(id, new, mapper)
    }
    fn map_int<const D: usize>(&mut self, param: Param<BT<D, Int>>) -> Param<BT<D, Int>> {
        let (id, old, mapper) = param.consume();
        Param::from_mapped_value(id, self.take(old), mapper)
    }
    fn map_bool<const D: usize>(&mut self, param: Param<BT<D, Bool>>) -> Param<BT<D, Bool>> {
        let (id, old, mapper) = param.consume();
        Param::from_mapped_value(id, self.take(old), mapper)
    }
}

/// The standard's Module interfaces for every Burn module (A.2.2).
pub trait ModuleApi: Module + Sized {
    /// `get_parameters()` (A.2.2.2): the trainable parameters with their names.
    fn get_parameters(&self) -> Vec<(String, Tensor)> {
        let trainable = trainable_paths(self);
        collect(self)
            .entries
            .into_iter()
            .filter(|e| trainable.contains(&e.path))
            .map(|e| (e.path, e.tensor))
            .collect()
    }

    /// The non-trainable state (running statistics, integer and bool buffers).
    fn get_buffers(&self) -> Vec<(String, Tensor)> {
        let trainable = trainable_paths(self);
        collect(self)
            .entries
            .into_iter()
            .filter(|e| !trainable.contains(&e.path))
            .map(|e| (e.path, e.tensor))
            .collect()
    }

    /// `get_modules()` (A.2.2.3): the module itself (path `""`) and each
    /// sub-module once, parents before children.
    fn get_modules(&self) -> Vec<ModuleInfo> {
        let c = collect(self);
        let tensor_paths: BTreeSet<&str> = c.entries.iter().map(|e| e.path.as_str()).collect();
        let count = |prefix: &str| -> usize {
            c.entries
                .iter()
                .filter(|e| {
                    prefix.is_empty()
                        || e.path == prefix
                        || e.path.starts_with(&format!("{prefix}."))
                })
                .map(|e| e.tensor.numel())
                .sum()
        };
        let mut out = vec![ModuleInfo {
            path: String::new(),
            type_name: c
                .root_type
                .clone()
                .unwrap_or_else(|| short_type_name::<Self>()),
            num_elements: count(""),
        }];
        for (path, ty) in &c.modules {
            if !tensor_paths.contains(path.as_str()) {
                out.push(ModuleInfo {
                    path: path.clone(),
                    type_name: ty.clone(),
                    num_elements: count(path),
                });
            }
        }
        out
    }

    /// `get_submodule(path)` (M-f): a view of the sub-module at `path`.
    fn get_submodule(&self, path: &str) -> Result<Submodule, ModuleError> {
        let modules = self.get_modules();
        let Some(info) = modules.iter().find(|m| m.path == path).cloned() else {
            return Err(ModuleError::NoSuchModule {
                path: path.to_string(),
                available: modules
                    .iter()
                    .map(|m| format!("`{}`", m.path))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let strip = |list: Vec<(String, Tensor)>| -> Vec<(String, Tensor)> {
            list.into_iter()
                .filter_map(|(k, t)| {
                    if path.is_empty() {
                        Some((k, t))
                    } else {
                        k.strip_prefix(&format!("{path}."))
                            .map(|r| (r.to_string(), t))
                    }
                })
                .collect()
        };
        Ok(Submodule {
            info,
            parameters: strip(self.get_parameters()),
            buffers: strip(self.get_buffers()),
        })
    }

    /// Every parameter and buffer by name (M-d: the state to pause training).
    fn state_dict(&self) -> StateDict {
        collect(self)
            .entries
            .into_iter()
            .map(|e| (e.path, e.tensor))
            .collect()
    }

    /// `load_state_dict(state_dict)` (A.2.2.4), strict: any missing key,
    /// unexpected key or shape mismatch is [`ModuleError::Mismatch`] listing
    /// all of them. The module is taken by value and is not returned on an
    /// error (it is dropped, so no half-loaded module reaches the caller):
    /// clone it first to keep it, or call
    /// [`ModuleApi::load_state_dict_lenient`] and read the report.
    fn load_state_dict(self, state: &StateDict) -> Result<Self, ModuleError> {
        let (m, report) = self.load_state_dict_lenient(state)?;
        if report.is_clean() {
            Ok(m)
        } else {
            Err(ModuleError::Mismatch(report))
        }
    }

    /// Loads every key whose name and shape match and returns the module with
    /// the report of the rest (PyTorch's `strict=False`). It errs (and drops
    /// the module) only when a matching tensor cannot be moved to the module's
    /// device or cast to its dtype. [`ModuleApi::load_state_dict`] is this
    /// plus a check that the report is clean.
    fn load_state_dict_lenient(self, state: &StateDict) -> Result<(Self, LoadReport), ModuleError> {
        let own = self.state_dict();
        let mut report = LoadReport::default();
        let mut usable = StateDict::new();
        for (k, t) in &own {
            match state.get(k) {
                None => report.missing.push(k.clone()),
                Some(g) if g.shape() != t.shape() => {
                    report
                        .shape_mismatch
                        .push((k.clone(), t.shape().to_vec(), g.shape().to_vec()))
                }
                Some(g) => {
                    usable.insert(k.clone(), g.clone());
                }
            }
        }
        report.unexpected = state
            .keys()
            .filter(|k| !own.contains_key(*k))
            .cloned()
            .collect();
        report.loaded = usable.keys().cloned().collect();
        let mut loader = Loader {
            stack: Vec::new(),
            source: &usable,
            error: None,
        };
        let m = self.map(&mut loader);
        if let Some(e) = loader.error {
            return Err(e.into());
        }
        Ok((m, report))
    }

    /// Saves the state dict to a safetensors file (M-d), atomically: the data
    /// goes to a temporary file in the same directory which is then renamed,
    /// so an interrupted save never leaves a corrupt file at `path`.
    fn save_training_state(&self, path: &Path) -> Result<(), ModuleError> {
        save_state_dict(&self.state_dict(), path)
    }

    /// Loads a file written by [`ModuleApi::save_training_state`] (M-e), strictly.
    fn load_training_state(self, path: &Path) -> Result<Self, ModuleError> {
        let device = self.devices().first().cloned().unwrap_or_default();
        let state = load_state_dict_file(path, &device)?;
        self.load_state_dict(&state)
    }
}

impl<M: Module + Sized> ModuleApi for M {}

fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full).to_string()
}

fn st_dtype(d: DType) -> Option<safetensors::Dtype> {
    use safetensors::Dtype as S;
    Some(match d {
        DType::Float32 => S::F32,
        DType::Float64 => S::F64,
        DType::Float16 => S::F16,
        DType::BFloat16 => S::BF16,
        DType::Int64 => S::I64,
        DType::Int32 => S::I32,
        DType::Int16 => S::I16,
        DType::Int8 => S::I8,
        DType::UInt8 => S::U8,
        DType::Bool => S::BOOL,
        DType::String | DType::Complex64 => return None,
    })
}

/// Writes a state dict as safetensors, atomically (temporary file + fsync + rename).
pub fn save_state_dict(state: &StateDict, path: &Path) -> Result<(), ModuleError> {
    let data = state_dict_to_bytes(state).map_err(|e| match e {
        ModuleError::Io { reason, .. } => ModuleError::Io {
            path: path.to_path_buf(),
            reason,
        },
        other => other,
    })?;
    write_atomic(path, &data).map_err(|e| ModuleError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A state dict as the bytes of a safetensors file (what
/// [`save_state_dict`] writes; e.g. to send it to other processes).
pub fn state_dict_to_bytes(state: &StateDict) -> Result<Vec<u8>, ModuleError> {
    let io = |reason: String| ModuleError::Io {
        path: "(in memory)".into(),
        reason,
    };
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (k, t) in state {
        let dt = st_dtype(t.dtype()).ok_or_else(|| {
            io(format!(
                "tensor `{k}` has dtype {}, which safetensors cannot hold",
                t.dtype()
            ))
        })?;
        let bytes = t.raw_bytes()?;
        owned.push((k.clone(), dt, t.shape().to_vec(), bytes));
    }
    let views = owned
        .iter()
        .map(|(k, dt, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (k.clone(), v))
                .map_err(|e| io(format!("tensor `{k}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, None).map_err(|e| io(e.to_string()))
}

/// Writes `bytes` to `path` so that readers see either the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a safetensors file into a state dict on `device`. A truncated or
/// malformed file is an error naming the file.
pub fn load_state_dict_file(path: &Path, device: &Device) -> Result<StateDict, ModuleError> {
    let io = |reason: String| ModuleError::Io {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = fs::read(path).map_err(|e| io(e.to_string()))?;
    state_dict_from_bytes(&bytes, device).map_err(|e| match e {
        ModuleError::Io { reason, .. } => io(reason),
        other => other,
    })
}

/// A state dict from the bytes of a safetensors file, on `device` (the
/// inverse of [`state_dict_to_bytes`]); malformed bytes are an error.
pub fn state_dict_from_bytes(bytes: &[u8], device: &Device) -> Result<StateDict, ModuleError> {
    let io = |reason: String| ModuleError::Io {
        path: "(in memory)".into(),
        reason,
    };
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| io(format!("not a valid safetensors file: {e}")))?;
    let mut out = StateDict::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let t = tensor_from_bytes(view.dtype(), &shape, view.data(), device)
            .map_err(|e| io(format!("tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

fn tensor_from_bytes(
    dt: safetensors::Dtype,
    shape: &[usize],
    data: &[u8],
    device: &Device,
) -> Result<Tensor, TensorError> {
    use burn::tensor::DType as B;
    use safetensors::Dtype as S;
    let bdt = match dt {
        S::F32 => B::F32,
        S::F64 => B::F64,
        S::F16 => B::F16,
        S::BF16 => B::BF16,
        S::I64 => B::I64,
        S::I32 => B::I32,
        S::I16 => B::I16,
        S::I8 => B::I8,
        S::U8 => B::U8,
        S::BOOL => B::Bool(burn::tensor::BoolStore::Native),
        other => {
            return Err(TensorError::invalid(
                "load",
                format!("unsupported safetensors dtype {other:?}"),
            ));
        }
    };
    let padded = crate::shape::pad(shape)?;
    let td = TensorData::from_bytes_vec(data.to_vec(), padded, bdt);
    Tensor::from_tensor_data(td, shape, device)
}

impl Tensor {
    /// The elements as little-endian bytes in the tensor's dtype (bool as one byte each).
    pub fn raw_bytes(&self) -> Result<Vec<u8>, TensorError> {
        use crate::tensor::Storage;
        let data = match &self.storage {
            Storage::Float(t) => t.to_data(),
            Storage::Int(t) => t.to_data(),
            Storage::Bool(t) => {
                let v: Vec<u8> = t.to_data().iter::<bool>().map(u8::from).collect();
                return Ok(v);
            }
            _ => return Err(TensorError::dtype_op("raw_bytes", self.dtype())),
        };
        Ok(data.as_bytes().to_vec())
    }

    /// Builds a tensor from Burn `TensorData` (any numeric or bool dtype), giving it `shape`.
    pub fn from_tensor_data(
        data: TensorData,
        shape: &[usize],
        device: &Device,
    ) -> Result<Tensor, TensorError> {
        use crate::tensor::{Raw, Storage};
        let dtype = DType::from_burn(data.dtype()).ok_or_else(|| {
            TensorError::invalid(
                "from_tensor_data",
                format!("unsupported dtype {:?}", data.dtype()),
            )
        })?;
        unidl_backend::require_dtype(device, "from_tensor_data", dtype)?;
        if data.num_elements() != crate::shape::volume(shape) {
            return Err(TensorError::DataLength {
                len: data.num_elements(),
                shape: shape.to_vec(),
                volume: crate::shape::volume(shape),
            });
        }
        let padded = crate::shape::pad(shape)?;
        let data =
            TensorData::from_bytes(data.into_bytes(), padded, crate::tensor::burn_dtype(dtype));
        let storage = match dtype {
            DType::Bool => Storage::Bool(Raw::<Bool>::from_data(data, device)),
            d if d.is_float() => {
                Storage::Float(Raw::from_data(data, (device, crate::tensor::burn_dtype(d))))
            }
            d => Storage::Int(Raw::<Int>::from_data(
                data,
                (device, crate::tensor::burn_dtype(d)),
            )),
        };
        Ok(Tensor::new(shape.to_vec(), storage))
    }
}

pub use crate::forward::{Arg, Forward, Inputs, Outputs, forward, forward_with};

/// Result of [`backward`]: gradients of the input and of every trainable parameter.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// dL/d(input); `None` for integer inputs (token ids), which have no gradient.
    pub input: Option<Tensor>,
    /// dL/d(parameter) by parameter name.
    pub parameters: BTreeMap<String, Tensor>,
}

/// `backward(grad_output)` (A.2.2.5, M-b): runs `forward` on an autodiff copy
/// of `module` and back-propagates `grad_output` (the gradient of some loss
/// with respect to the output, like `output.backward(grad_output)` in
/// PyTorch). Returns the gradients of the input and of each trainable weight.
pub fn backward<M: Module + Forward>(
    module: &M,
    input: &Tensor,
    grad_output: &Tensor,
) -> Result<Gradients, ModuleError> {
    let device = input.device();
    let ad = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    // Track the parameters (as `train()` does) but keep each layer's own
    // train/eval flag, so an eval-mode BatchNorm stays in eval mode.
    let mut flags = FlagReader::default();
    module.visit(&mut flags);
    let m = module.clone().train().map(&mut FlagWriter {
        flags: flags.flags,
        next: 0,
    });
    let float_input = input.dtype().is_float();
    let x = if float_input {
        input.to_device(&ad)?.detach().require_grad()?
    } else {
        input.to_device(&ad)?
    };
    let y = m.forward_dyn(&x)?;
    if y.shape() != grad_output.shape() {
        return Err(TensorError::ShapeMismatch {
            op: "backward".into(),
            lhs: y.shape().to_vec(),
            rhs: grad_output.shape().to_vec(),
            detail: " (output vs grad_output)".into(),
        }
        .into());
    }
    let g = grad_output.to_device(&ad)?.detach();
    let loss = y.mul(&g)?.sum(crate::Axes::All, false)?;
    // Through Burn's graph and any user-defined backward function the
    // forward applied (`autograd::apply`).
    let grads = crate::autograd::backward(&loss)?;
    let input_grad = if float_input {
        Some(match grads.grad(&x) {
            Some(t) => t,
            None => x.zeros_like()?.detach(),
        })
    } else {
        None
    };
    let mut collector = GradCollector {
        stack: Vec::new(),
        grads: &grads,
        out: BTreeMap::new(),
    };
    m.visit(&mut collector);
    let parameters = collector.out;
    Ok(Gradients {
        input: input_grad,
        parameters,
    })
}

/// Reads the gradient of every tracked float parameter, by path.
struct GradCollector<'a> {
    stack: Vec<String>,
    grads: &'a crate::autograd::TapeGradients,
    out: BTreeMap<String, Tensor>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<BT<D>>) {
        if let Some(g) = self.grads.grad_burn(&param.val())
            && let Ok(t) = Tensor::from_burn(g)
        {
            self.out.insert(self.stack.join("."), t);
        }
    }
}

/// Reads every train/eval flag of a module in visit order.
#[derive(Default)]
struct FlagReader {
    flags: Vec<bool>,
}

impl ModuleVisitor for FlagReader {
    fn visit_flag(&mut self, flag: &Param<burn::module::Flag>) {
        self.flags.push(flag.val().is_enabled());
    }
}

/// Writes flags back in the same order.
struct FlagWriter {
    flags: Vec<bool>,
    next: usize,
}

impl ModuleMapper for FlagWriter {
    fn map_flag(&mut self, flag: Param<burn::module::Flag>) -> Param<burn::module::Flag> {
        let Some(&value) = self.flags.get(self.next) else {
            return flag;
        };
        self.next += 1;
        let (id, _, mapper) = flag.consume();
        Param::from_mapped_value(id, burn::module::Flag::new(value), mapper)
    }
}
