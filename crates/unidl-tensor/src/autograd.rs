//! User-defined backward functions (A.2.2.5 `register_backward_function`).
//!
//! Burn derives every backward pass from its own graph. For an operation whose
//! gradient the user wants to define (a straight-through estimator, a clipped
//! or rescaled gradient, an op Burn cannot differentiate), register a
//! [`BackwardFunction`] and apply it through a [`Tape`]:
//!
//! ```
//! use unidl_tensor::autograd::{Tape, register_backward_function};
//! use unidl_tensor::{Axes, Tensor};
//! use unidl_backend::Device;
//!
//! // round() has zero gradient; the straight-through estimator passes it through.
//! let ste = register_backward_function("round_ste", |x| x.floor()?.add_scalar(0.5)?.floor(), |_x, _y, gy| Ok(gy.clone()));
//! let dev = Device::flex().autodiff();
//! let x = Tensor::from_f32(vec![0.2, 1.7], &[2], &dev)?.require_grad()?;
//! let tape = Tape::new();
//! let y = tape.apply(&ste, &x)?;
//! let loss = y.mul_scalar(3.0)?.sum(Axes::All, false)?;
//! let grads = tape.backward(&loss)?;
//! assert_eq!(grads.grad(&x).unwrap().to_vec_f32()?, vec![3.0, 3.0]);
//! # Ok::<(), unidl_tensor::TensorError>(())
//! ```
//!
//! How it works: `apply` runs the forward on a detached copy of the input and
//! returns a fresh leaf that requires gradients. `Tape::backward` runs Burn's
//! backward from the loss, then walks the applied functions newest first: it
//! reads the gradient that reached each output, calls the user's backward to
//! get the input gradient, and continues Burn's backward from the input with
//! that gradient. The gradient of any tensor is the sum over these passes.

use std::sync::{Arc, Mutex};

use crate::error::{Result, TensorError};
use crate::ops::Axes;
use crate::tensor::Tensor;

type ForwardFn = dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync;
type BackwardFn = dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor> + Send + Sync;

/// A differentiable function whose backward the user supplied.
#[derive(Clone)]
pub struct BackwardFunction {
    name: String,
    forward: Arc<ForwardFn>,
    backward: Arc<BackwardFn>,
}

impl std::fmt::Debug for BackwardFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackwardFunction({})", self.name)
    }
}

impl BackwardFunction {
    /// The name given at registration.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `register_backward_function` (A.2.2.5): `forward(x) -> y` and
/// `backward(x, y, dL/dy) -> dL/dx`. The backward must return a tensor of the
/// input's shape; anything else is an error at `Tape::backward` naming the function.
pub fn register_backward_function(
    name: &str,
    forward: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
    backward: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> BackwardFunction {
    BackwardFunction {
        name: name.to_string(),
        forward: Arc::new(forward),
        backward: Arc::new(backward),
    }
}

struct Record {
    function: BackwardFunction,
    input: Tensor,
    output: Tensor,
}

/// Records applications of [`BackwardFunction`]s for one forward/backward pass.
#[derive(Default)]
pub struct Tape {
    records: Mutex<Vec<Record>>,
}

/// Gradients from [`Tape::backward`]: the sum over Burn's backward passes.
pub struct TapeGradients {
    parts: Vec<burn::tensor::Gradients>,
}

impl TapeGradients {
    /// dL/d`tensor`, if any pass reached it.
    pub fn grad(&self, tensor: &Tensor) -> Option<Tensor> {
        let mut total: Option<Tensor> = None;
        for g in &self.parts {
            if let Some(part) = tensor.grad(g) {
                total = Some(match total {
                    None => part,
                    Some(t) => t.add(&part).ok()?,
                });
            }
        }
        total
    }

    /// Gradient of a Burn tensor (e.g. a module parameter's `val()`), summed over passes.
    pub fn grad_burn<const D: usize>(
        &self,
        tensor: &burn::tensor::Tensor<D>,
    ) -> Option<burn::tensor::Tensor<D>> {
        self.parts
            .iter()
            .filter_map(|g| tensor.grad(g))
            .reduce(|a, b| a + b)
    }
}

impl Tape {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `function` to `input` and records it. The input must be a float
    /// tensor on an autodiff device for gradients to flow back into it.
    pub fn apply(&self, function: &BackwardFunction, input: &Tensor) -> Result<Tensor> {
        let y = (function.forward)(&input.detach())?;
        let output = y.detach().require_grad()?;
        self.records.lock().expect("tape lock").push(Record {
            function: function.clone(),
            input: input.clone(),
            output: output.clone(),
        });
        Ok(output)
    }

    /// Back-propagates from `loss` through Burn's graph and every recorded
    /// function (newest first).
    pub fn backward(&self, loss: &Tensor) -> Result<TapeGradients> {
        let mut grads = TapeGradients {
            parts: vec![loss.backward()?],
        };
        let records = std::mem::take(&mut *self.records.lock().expect("tape lock"));
        for rec in records.iter().rev() {
            let Some(gy) = grads.grad(&rec.output) else {
                continue; // the loss does not depend on this output
            };
            let gx =
                (rec.function.backward)(&rec.input.detach(), &rec.output.detach(), &gy.detach())?;
            if gx.shape() != rec.input.shape() {
                return Err(TensorError::ShapeMismatch {
                    op: format!("backward function `{}`", rec.function.name),
                    lhs: rec.input.shape().to_vec(),
                    rhs: gx.shape().to_vec(),
                    detail: " (input vs returned gradient)".into(),
                });
            }
            if !rec.input.is_tracked() {
                continue; // nothing upstream needs a gradient
            }
            // Continue Burn's backward from the input: d/dx sum(x * gx) = gx.
            let surrogate = rec.input.mul(&gx.detach())?.sum(Axes::All, false)?;
            grads.parts.push(surrogate.backward()?);
        }
        Ok(grads)
    }
}
