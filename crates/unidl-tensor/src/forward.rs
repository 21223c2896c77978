//! `forward(input, **kwargs)` (A.2.2.1) on dynamic tensors.
//!
//! A module that takes one tensor implements [`Forward::forward_dyn`] and is
//! done: [`forward_with`] then accepts the one tensor under the name `input`
//! and no options. A module with several inputs (token ids and an attention
//! mask, images and targets, encoder and decoder inputs) or per-call options
//! (a decoding length, a flag) also implements [`Forward::forward_named`],
//! reading what it needs from [`Inputs`]; a missing, unknown or mistyped key
//! is a typed error naming it. Static Burn code keeps calling the module's
//! own typed `forward`; nothing here boxes a simple model.
//!
//! ```
//! use unidl_tensor::module::{Forward, Inputs, Outputs, forward_with};
//! use unidl_tensor::{Axes, Tensor};
//! use unidl_backend::Device;
//!
//! /// `sum(x * mask) * scale` over the last axis.
//! struct MaskedSum;
//! impl Forward for MaskedSum {
//!     fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
//!         input.sum(Axes::Dims(&[-1]), false)
//!     }
//!     fn forward_named(&self, inputs: &Inputs) -> unidl_tensor::Result<Outputs> {
//!         inputs.expect_only(&["input", "mask", "scale"])?;
//!         let x = inputs.tensor("input")?;
//!         let masked = match inputs.optional_tensor("mask") {
//!             Some(m) => x.mul(m)?,
//!             None => x.clone(),
//!         };
//!         let y = self.forward_dyn(&masked)?.mul_scalar(inputs.float_or("scale", 1.0)?)?;
//!         Ok(Outputs::from([("output".to_string(), y)]))
//!     }
//! }
//!
//! let dev = Device::flex();
//! let x = Tensor::from_f32(vec![1.0, 2.0, 3.0], &[1, 3], &dev)?;
//! let mask = Tensor::from_f32(vec![1.0, 1.0, 0.0], &[1, 3], &dev)?;
//! let out = forward_with(&MaskedSum, &Inputs::new().with("input", x).with("mask", mask).with("scale", 2.0))?;
//! assert_eq!(out["output"].to_vec_f32()?, vec![6.0]);
//! # Ok::<(), unidl_tensor::TensorError>(())
//! ```

use std::collections::BTreeMap;

use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

/// One named argument of a forward call: a tensor or an option value.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A tensor input (boxed: a tensor handle is large next to an option).
    Tensor(Box<Tensor>),
    /// A flag.
    Bool(bool),
    /// An integer option (a length, a count, an index).
    Int(i64),
    /// A real option (a temperature, a threshold, a scale).
    Float(f64),
    /// A text option (a mode name).
    Str(String),
}

impl Arg {
    fn kind(&self) -> &'static str {
        match self {
            Arg::Tensor(_) => "a tensor",
            Arg::Bool(_) => "a bool",
            Arg::Int(_) => "an integer",
            Arg::Float(_) => "a number",
            Arg::Str(_) => "a string",
        }
    }
}

impl From<Tensor> for Arg {
    fn from(t: Tensor) -> Self {
        Arg::Tensor(Box::new(t))
    }
}
impl From<&Tensor> for Arg {
    fn from(t: &Tensor) -> Self {
        Arg::Tensor(Box::new(t.clone()))
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<usize> for Arg {
    fn from(v: usize) -> Self {
        Arg::Int(v as i64)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Float(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Str(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Str(v)
    }
}

/// The named inputs and options of one forward call (`**kwargs`).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    args: BTreeMap<String, Arg>,
}

/// Named outputs of a forward call (a model with one output names it `output`).
pub type Outputs = BTreeMap<String, Tensor>;

fn error(reason: String) -> TensorError {
    TensorError::invalid("forward", reason)
}

impl Inputs {
    /// No inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// One tensor named `input` (what a single-input module takes).
    pub fn single(input: &Tensor) -> Self {
        Self::new().with("input", input)
    }

    /// Adds (or replaces) the argument `name`.
    pub fn with(mut self, name: &str, value: impl Into<Arg>) -> Self {
        self.args.insert(name.to_string(), value.into());
        self
    }

    /// Adds (or replaces) the argument `name` in place.
    pub fn insert(&mut self, name: &str, value: impl Into<Arg>) {
        self.args.insert(name.to_string(), value.into());
    }

    /// The argument names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.args.keys().map(String::as_str).collect()
    }

    /// The raw argument `name`, if given.
    pub fn get(&self, name: &str) -> Option<&Arg> {
        self.args.get(name)
    }

    /// An error unless every given name is in `known` (a misspelt option is
    /// not silently ignored).
    pub fn expect_only(&self, known: &[&str]) -> Result<()> {
        match self.args.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(error(format!(
                "unknown input `{k}`; this module takes {}",
                list(known)
            ))),
            None => Ok(()),
        }
    }

    /// The tensor `name`; missing or not a tensor is an error naming it.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        match self.args.get(name) {
            Some(Arg::Tensor(t)) => Ok(t.as_ref()),
            Some(other) => Err(self.mistyped(name, "a tensor", other)),
            None => Err(error(format!(
                "missing input `{name}` (given: {})",
                list(&self.names())
            ))),
        }
    }

    /// The tensor `name` if given (an option given as a tensor of another
    /// kind is still an error: see [`Inputs::tensor`]).
    pub fn optional_tensor(&self, name: &str) -> Option<&Tensor> {
        match self.args.get(name) {
            Some(Arg::Tensor(t)) => Some(t.as_ref()),
            _ => None,
        }
    }

    /// The flag `name`, or `default` when absent; another kind is an error.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.args.get(name) {
            None => Ok(default),
            Some(Arg::Bool(v)) => Ok(*v),
            Some(other) => Err(self.mistyped(name, "a bool", other)),
        }
    }

    /// The integer `name`, or `default` when absent; another kind is an error.
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        match self.args.get(name) {
            None => Ok(default),
            Some(Arg::Int(v)) => Ok(*v),
            Some(other) => Err(self.mistyped(name, "an integer", other)),
        }
    }

    /// The number `name` (an integer is accepted), or `default` when absent.
    pub fn float_or(&self, name: &str, default: f64) -> Result<f64> {
        match self.args.get(name) {
            None => Ok(default),
            Some(Arg::Float(v)) => Ok(*v),
            Some(Arg::Int(v)) => Ok(*v as f64),
            Some(other) => Err(self.mistyped(name, "a number", other)),
        }
    }

    /// The string `name`, or `default` when absent; another kind is an error.
    pub fn str_or<'a>(&'a self, name: &str, default: &'a str) -> Result<&'a str> {
        match self.args.get(name) {
            None => Ok(default),
            Some(Arg::Str(v)) => Ok(v),
            Some(other) => Err(self.mistyped(name, "a string", other)),
        }
    }

    fn mistyped(&self, name: &str, wanted: &str, got: &Arg) -> TensorError {
        error(format!(
            "input `{name}` must be {wanted}, got {}",
            got.kind()
        ))
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "nothing".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `forward(input, **kwargs)` (A.2.2.1) on dynamic tensors.
pub trait Forward {
    /// Runs the module on one tensor. On an autodiff device the graph is recorded.
    fn forward_dyn(&self, input: &Tensor) -> Result<Tensor>;

    /// Runs the module on named inputs and options. The default serves a
    /// single-input module: the tensor `input`, no other key, and the result
    /// as `output`.
    fn forward_named(&self, inputs: &Inputs) -> Result<Outputs> {
        inputs.expect_only(&["input"])?;
        let y = self.forward_dyn(inputs.tensor("input")?)?;
        Ok(Outputs::from([("output".to_string(), y)]))
    }
}

/// `forward(module, input)` (A.2.2.1).
pub fn forward<M: Forward>(module: &M, input: &Tensor) -> Result<Tensor> {
    module.forward_dyn(input)
}

/// `forward(module, input, **kwargs)` (A.2.2.1): named tensors and options.
pub fn forward_with<M: Forward>(module: &M, inputs: &Inputs) -> Result<Outputs> {
    module.forward_named(inputs)
}
