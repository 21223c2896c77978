//! A user-defined backward function as a node of Burn's autodiff graph.
//!
//! [`crate::autograd::apply`] lowers to this: the input's autodiff primitive
//! is taken out of Burn's dispatch layer for the back-end it lives on, the
//! user's forward runs on the inner (untracked) tensor, and the output is
//! registered with a [`Backward`] step whose backward calls the user's
//! backward on the gradient that reached the output. Burn's single backward
//! pass therefore runs through the function like through any built-in op:
//! shared upstream nodes (residual paths) are differentiated once, and the
//! graph is consumed once.
//!
//! A Burn backward step cannot fail, so an error of the user's backward (or a
//! gradient of the wrong shape, dtype or device) is stored in the call's
//! [`ErrorCell`], a zero gradient is passed on, and
//! [`crate::autograd::backward`] returns the error after the pass.

use std::sync::{Arc, Mutex};

use burn::backend::DispatchKindConversion;
use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::{Autodiff, Backend};
use burn::tensor::DispatchTensor;

use crate::autograd::BackwardFunction;
use crate::error::{Result, TensorError};
use crate::tensor::{Raw, Storage, Tensor};

/// Where a failed backward step leaves its error.
pub(crate) type ErrorCell = Arc<Mutex<Option<TensorError>>>;

/// Runs `function` on `input` (a tracked float tensor) as one graph node.
/// `Ok(None)` when the input's back-end has no custom-op route compiled in.
pub(crate) fn apply_tracked(
    function: &BackwardFunction,
    input: &Tensor,
    raw: &Raw,
    errors: &ErrorCell,
) -> Result<Option<Tensor>> {
    // Each back-end, with and without gradient checkpointing.
    macro_rules! route {
        ($b:ty) => {
            if let Some(out) = on_backend::<$b, NoCheckpointing>(function, input, raw, errors)? {
                return Ok(Some(out));
            }
            if let Some(out) =
                on_backend::<$b, BalancedCheckpointing>(function, input, raw, errors)?
            {
                return Ok(Some(out));
            }
        };
    }
    route!(burn::backend::Flex);
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // Burn deprecates its ndarray back-end; unidl keeps it for conformance
    {
        route!(burn::backend::NdArray);
    }
    #[cfg(feature = "tch")]
    route!(burn::backend::LibTorch);
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    route!(burn::backend::Cube);
    Ok(None)
}

fn on_backend<B: Backend, C: CheckpointStrategy>(
    function: &BackwardFunction,
    input: &Tensor,
    raw: &Raw,
    errors: &ErrorCell,
) -> Result<Option<Tensor>>
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B, C>>,
{
    let Ok(x_ad) = raw.clone().try_into_primitive::<Autodiff<B, C>>() else {
        return Ok(None);
    };
    let guard = x_ad.node();
    let x_inner: B::FloatTensorPrimitive = x_ad.into_primitive();
    let x_shape = input.shape().to_vec();
    let y = (function.forward)(&wrap::<B>(x_inner.clone(), &x_shape))?;
    let y_shape = y.shape().to_vec();
    let y_inner = unwrap::<B>(&y, &format!("forward of `{}`", function.name()))?;
    let state = State::<B> {
        function: function.clone(),
        x: x_inner,
        y: y_inner.clone(),
        x_shape,
        y_shape: y_shape.clone(),
        errors: errors.clone(),
    };
    let out = match UserStep.prepare::<C>([guard]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, y_inner),
        OpsKind::UnTracked(prep) => prep.finish(y_inner),
    };
    let raw: Raw = Raw::from_primitive::<Autodiff<B, C>>(out);
    Ok(Some(Tensor::new(y_shape, Storage::Float(raw))))
}

/// A concrete-backend primitive as a unidl tensor of `shape`.
fn wrap<B: Backend>(t: B::FloatTensorPrimitive, shape: &[usize]) -> Tensor
where
    DispatchTensor: DispatchKindConversion<B>,
{
    Tensor::new(shape.to_vec(), Storage::Float(Raw::from_primitive::<B>(t)))
}

/// A unidl float tensor's primitive on back-end `B` (untracked).
fn unwrap<B: Backend>(t: &Tensor, what: &str) -> Result<B::FloatTensorPrimitive>
where
    DispatchTensor: DispatchKindConversion<B>,
{
    let Storage::Float(raw) = &t.detach().storage else {
        return Err(TensorError::invalid(
            "register_backward_function",
            format!(
                "{what} returned a {:?} tensor; a float tensor is needed",
                t.dtype()
            ),
        ));
    };
    raw.clone().try_into_primitive::<B>().map_err(|e| {
        TensorError::invalid(
            "register_backward_function",
            format!("{what} returned a tensor on another device or back-end ({e:?})"),
        )
    })
}

#[derive(Debug)]
struct UserStep;

struct State<B: Backend> {
    function: BackwardFunction,
    x: B::FloatTensorPrimitive,
    y: B::FloatTensorPrimitive,
    x_shape: Vec<usize>,
    y_shape: Vec<usize>,
    errors: ErrorCell,
}

impl<B: Backend> Clone for State<B> {
    fn clone(&self) -> Self {
        State {
            function: self.function.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            x_shape: self.x_shape.clone(),
            y_shape: self.y_shape.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for State<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserStep({}, {:?})", self.function.name(), self.x_shape)
    }
}

impl<B: Backend> Backward<B, 1> for UserStep
where
    DispatchTensor: DispatchKindConversion<B>,
{
    type State = State<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let state = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |gy| {
            let zeros = || {
                let x = state.x.clone();
                B::float_zeros(x.shape(), &x.device(), x.dtype().into())
            };
            match user_gradient::<B>(&state, gy) {
                Ok(gx) => gx,
                Err(e) => {
                    let mut cell = state.errors.lock().unwrap_or_else(|p| p.into_inner());
                    cell.get_or_insert(e);
                    zeros()
                }
            }
        });
    }
}

/// The user's `backward(x, y, dL/dy)`, checked to be a float tensor of the
/// input's shape on the input's back-end.
fn user_gradient<B: Backend>(
    state: &State<B>,
    gy: B::FloatTensorPrimitive,
) -> Result<B::FloatTensorPrimitive>
where
    DispatchTensor: DispatchKindConversion<B>,
{
    let name = state.function.name();
    let x = wrap::<B>(state.x.clone(), &state.x_shape);
    let y = wrap::<B>(state.y.clone(), &state.y_shape);
    let gy = wrap::<B>(gy, &state.y_shape);
    let gx = (state.function.backward)(&x, &y, &gy)?;
    if gx.shape() != state.x_shape.as_slice() {
        return Err(TensorError::ShapeMismatch {
            op: format!("backward function `{name}`"),
            lhs: state.x_shape.clone(),
            rhs: gx.shape().to_vec(),
            detail: " (input vs returned gradient)".into(),
        });
    }
    unwrap::<B>(&gx, &format!("backward of `{name}`"))
}
