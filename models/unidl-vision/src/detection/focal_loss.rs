//! Sigmoid focal loss (Lin et al., 2017, "Focal Loss for Dense Object
//! Detection", arXiv:1708.02002) as `torchvision.ops.sigmoid_focal_loss`
//! (torchvision 0.24.0):
//!
//! ```text
//! p    = σ(x)
//! ce   = BCE-with-logits(x, t) = (1 − t)·x − log σ(x)
//! p_t  = p·t + (1 − p)·(1 − t)
//! loss = ce · (1 − p_t)^γ · (α·t + (1 − α)·(1 − t))     (no α factor when α = −1)
//! ```

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, sigmoid};

use crate::error::{Result, VisionError};

/// How [`sigmoid_focal_loss`] reduces the element losses (torchvision's
/// `reduction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FocalReduction {
    /// The element losses, shape of the input (`"none"`).
    None,
    /// Their mean (`"mean"`).
    Mean,
    /// Their sum (`"sum"`).
    Sum,
}

/// The focal loss of `inputs` (logits) against `targets` (0/1, or soft
/// labels in between) of the same shape. `alpha` weighs positives (`α`) and
/// negatives (`1 − α`); torchvision's default is 0.25, and −1 turns the
/// weighting off. `gamma` (default 2) is the focusing exponent.
///
/// With [`FocalReduction::Mean`] or [`FocalReduction::Sum`] the result has
/// one element per axis (`[1, …, 1]`); reshape it as needed.
///
/// An `alpha` outside `[0, 1]` other than −1, a negative or non-finite
/// `gamma`, or targets of another shape is [`VisionError::Input`].
///
/// # Shapes
/// `inputs`, `targets`: any `[…]` → `[…]` (`None`) or `[1, …, 1]`.
pub fn sigmoid_focal_loss<const D: usize>(
    inputs: Tensor<D>,
    targets: Tensor<D>,
    alpha: f64,
    gamma: f64,
    reduction: FocalReduction,
) -> Result<Tensor<D>> {
    let err = |reason: String| VisionError::Input {
        model: "sigmoid_focal_loss".into(),
        shape: inputs.dims().to_vec(),
        reason,
    };
    if !((0.0..=1.0).contains(&alpha) || alpha == -1.0) {
        return Err(err(format!(
            "alpha {alpha}: must be in [0, 1], or -1 to turn the weighting off"
        )));
    }
    if !(gamma.is_finite() && gamma >= 0.0) {
        return Err(err(format!("gamma {gamma}: must be finite and at least 0")));
    }
    if inputs.dims() != targets.dims() {
        return Err(err(format!(
            "targets of shape {:?} differ from the inputs",
            targets.dims()
        )));
    }
    let p = sigmoid(inputs.clone()); // […]
    let one_minus_t = targets.clone().neg().add_scalar(1.0); // 1 − t
    // BCE with logits, stable: (1 − t)·x − log σ(x)
    let ce = one_minus_t.clone() * inputs.clone() - log_sigmoid(inputs); // […]
    let p_t = p.clone() * targets.clone() + p.neg().add_scalar(1.0) * one_minus_t.clone(); // […]
    let modulating = if gamma == 2.0 {
        let q = p_t.neg().add_scalar(1.0);
        q.clone() * q
    } else {
        p_t.neg().add_scalar(1.0).powf_scalar(gamma)
    }; // (1 − p_t)^γ
    let mut loss = ce * modulating; // […]
    if alpha >= 0.0 {
        let alpha_t = targets.mul_scalar(alpha) + one_minus_t.mul_scalar(1.0 - alpha); // […]
        loss = alpha_t * loss;
    }
    Ok(match reduction {
        FocalReduction::None => loss,
        FocalReduction::Sum => loss.sum().reshape([1; D]),
        FocalReduction::Mean => loss.mean().reshape([1; D]),
    })
}
