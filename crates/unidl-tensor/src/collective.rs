//! Sums across data-parallel ranks inside a forward pass, differentiably:
//! what synchronised batch normalisation needs (its batch statistics are
//! sums over every rank's samples).
//!
//! The process group itself lives above this crate (`unidl-train`'s
//! `Collective`, MPI in `unidl-dist`); the trainer hands a [`RankSum`] to
//! the thread that runs a training step ([`with_rank_sum`]), and layers ask
//! for it with [`current_rank_sum`]. [`all_reduce_sum`] is one node of the
//! autodiff graph: forward `y = Σ_ranks x`, backward `dx = Σ_ranks dy` (the
//! all-reduce is its own adjoint), so every rank's loss reaches every
//! rank's inputs.

use std::cell::RefCell;
use std::sync::Arc;

use crate::autograd::{apply_burn, register_backward_function};
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

/// Element-wise sums over the ranks of a data-parallel group.
pub trait RankSum: Send + Sync {
    /// Number of ranks.
    fn world_size(&self) -> usize;
    /// Replaces `values` on every rank by their sum over ranks.
    fn all_reduce_sum(&self, values: &mut [f32]) -> std::result::Result<(), String>;
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn RankSum>>> = const { RefCell::new(None) };
}

/// Runs `f` with `group` as this thread's [`current_rank_sum`] (restored after).
pub fn with_rank_sum<R>(group: Arc<dyn RankSum>, f: impl FnOnce() -> R) -> R {
    let before = CURRENT.with(|c| c.borrow_mut().replace(group));
    let r = f();
    CURRENT.with(|c| *c.borrow_mut() = before);
    r
}

/// The group [`with_rank_sum`] set on this thread, if any.
pub fn current_rank_sum() -> Option<Arc<dyn RankSum>> {
    CURRENT.with(|c| c.borrow().clone())
}

fn summed(group: &Arc<dyn RankSum>, t: &Tensor, what: &str) -> Result<Tensor> {
    let mut v = t.to_vec_f32()?;
    group
        .all_reduce_sum(&mut v)
        .map_err(|e| TensorError::invalid(what, e))?;
    Tensor::from_f32(v, t.shape(), &t.device())
}

/// `x` summed over the ranks of `group`, as a differentiable operation
/// (gradient: the sum over ranks of the output's gradient).
///
/// # Shapes
/// any → the same.
pub fn all_reduce_sum<const D: usize>(
    x: burn::tensor::Tensor<D>,
    group: &Arc<dyn RankSum>,
) -> Result<burn::tensor::Tensor<D>> {
    let (fwd, bwd) = (Arc::clone(group), Arc::clone(group));
    let f = register_backward_function(
        "all_reduce_sum",
        move |x| summed(&fwd, x, "all_reduce_sum"),
        move |_x, _y, dy| summed(&bwd, dy, "all_reduce_sum (backward)"),
    );
    apply_burn(&f, x)
}
