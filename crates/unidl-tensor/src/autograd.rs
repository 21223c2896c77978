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
//! How it works: an application is a node of Burn's own autodiff graph (a
//! custom `Backward` step on the back-end the input lives on). The user's
//! forward runs on the untracked input; in Burn's backward pass the step
//! calls the user's backward with the gradient that reached the output and
//! hands the result on to the input. So there is one backward pass, the
//! graph is consumed once, and paths that join again (a residual around the
//! function) are summed as for any op.
//!
//! ## Inside a model
//!
//! A model's `forward` has no tape to pass around: it calls [`apply`] (or
//! [`apply_burn`] on Burn tensors) and training differentiates through it —
//! the trainer (`unidl_train::Optimizer::backward`) and the module-level
//! [`crate::module::backward`] both go through [`backward`], which also
//! reports an error of a user's backward (Burn's backward steps cannot fail,
//! so the error is kept and returned after the pass). When the input is not
//! tracked (inference, or nothing upstream needs a gradient) the plain
//! forward runs and nothing is recorded.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::custom_op::{ErrorCell, apply_tracked};
use crate::error::{Result, TensorError};
use crate::tensor::{Storage, Tensor};

type ForwardFn = dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync;
type BackwardFn = dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor> + Send + Sync;

/// A differentiable function whose backward the user supplied.
#[derive(Clone)]
pub struct BackwardFunction {
    name: String,
    pub(crate) forward: Arc<ForwardFn>,
    pub(crate) backward: Arc<BackwardFn>,
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
/// `backward(x, y, dL/dy) -> dL/dx`. The backward must return a float tensor
/// of the input's shape on the input's device; anything else is an error
/// from [`backward`] naming the function.
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

/// Applies `function` as one node of the autodiff graph; `cell` receives an
/// error of its backward.
fn apply_node(function: &BackwardFunction, input: &Tensor, cell: &ErrorCell) -> Result<Tensor> {
    let Storage::Float(raw) = &input.storage else {
        return Err(TensorError::invalid(
            "register_backward_function",
            format!(
                "`{}` needs a float input to differentiate, got {:?}",
                function.name,
                input.dtype()
            ),
        ));
    };
    apply_tracked(function, input, raw, cell)?.ok_or_else(|| {
        TensorError::invalid(
            "register_backward_function",
            format!(
                "`{}`: the input's back-end has no route for user-defined backward functions in this build",
                function.name
            ),
        )
    })
}

/// Takes the first error a backward step left in `cells`.
fn first_error(cells: Vec<ErrorCell>) -> Result<()> {
    for cell in cells {
        if let Some(e) = cell.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
    }
    Ok(())
}

/// Applications of [`BackwardFunction`]s for one forward/backward pass, for
/// code that prefers an explicit tape to [`apply`]/[`backward`].
#[derive(Default)]
pub struct Tape {
    cells: Mutex<Vec<ErrorCell>>,
}

/// Gradients from [`Tape::backward`] or [`backward`].
pub struct TapeGradients {
    grads: burn::tensor::Gradients,
}

impl TapeGradients {
    /// dL/d`tensor`, if the backward reached it.
    pub fn grad(&self, tensor: &Tensor) -> Option<Tensor> {
        tensor.grad(&self.grads)
    }

    /// Gradient of a Burn tensor (e.g. a module parameter's `val()`).
    pub fn grad_burn<const D: usize>(
        &self,
        tensor: &burn::tensor::Tensor<D>,
    ) -> Option<burn::tensor::Tensor<D>> {
        tensor.grad(&self.grads)
    }

    /// Burn's gradients (e.g. for `GradientsParams::from_grads`).
    pub fn into_inner(self) -> burn::tensor::Gradients {
        self.grads
    }
}

impl Tape {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `function` to `input`. A tracked float input gets the user's
    /// backward in the graph; an untracked one just runs the forward.
    pub fn apply(&self, function: &BackwardFunction, input: &Tensor) -> Result<Tensor> {
        if !input.is_tracked() {
            return (function.forward)(input);
        }
        let cell = ErrorCell::default();
        let out = apply_node(function, input, &cell)?;
        self.cells.lock().expect("tape lock").push(cell);
        Ok(out)
    }

    /// Back-propagates from `loss` (one pass through Burn's graph, the
    /// applied functions included); an error of a user's backward is returned.
    pub fn backward(&self, loss: &Tensor) -> Result<TapeGradients> {
        let grads = loss.backward()?;
        first_error(std::mem::take(&mut *self.cells.lock().expect("tape lock")))?;
        Ok(TapeGradients { grads })
    }
}

thread_local! {
    static PENDING: RefCell<Vec<ErrorCell>> = const { RefCell::new(Vec::new()) };
}

/// Applies `function` to `input` inside a model's forward. A tracked float
/// input puts the user's backward into the autodiff graph (errors of it are
/// reported by [`backward`] on this thread); an untracked input just runs the
/// forward.
pub fn apply(function: &BackwardFunction, input: &Tensor) -> Result<Tensor> {
    if !input.is_tracked() {
        return (function.forward)(input);
    }
    let cell = ErrorCell::default();
    let out = apply_node(function, input, &cell)?;
    PENDING.with(|p| p.borrow_mut().push(cell));
    Ok(out)
}

/// [`apply`] on a Burn float tensor of rank `D`, for models written against
/// Burn's typed tensors.
pub fn apply_burn<const D: usize>(
    function: &BackwardFunction,
    input: burn::tensor::Tensor<D>,
) -> Result<burn::tensor::Tensor<D>> {
    apply(function, &Tensor::from_burn(input)?)?.into_burn()
}

/// `backward` from `loss`: Burn's backward pass, through every function
/// [`apply`] put in the graph. The same as [`Tensor::backward`], which also
/// returns the first error a user's backward raised on this thread's
/// applications since the last backward.
pub fn backward(loss: &Tensor) -> Result<TapeGradients> {
    Ok(TapeGradients {
        grads: loss.backward()?,
    })
}

/// The first error of a user's backward among this thread's pending
/// applications (all of which are forgotten).
pub(crate) fn take_pending_error() -> Result<()> {
    first_error(PENDING.with(|p| std::mem::take(&mut *p.borrow_mut())))
}

/// Applications on this thread whose backward has not run yet.
pub fn pending() -> usize {
    PENDING.with(|p| p.borrow().len())
}

/// Forgets this thread's pending applications (a step that failed between
/// forward and backward; the trainer calls it then).
pub fn clear_pending() {
    PENDING.with(|p| p.borrow_mut().clear());
}
