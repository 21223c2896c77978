//! μ-law companding (torchaudio's) and the cross-entropy over its classes.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Cross-entropy over μ-law classes, averaged over every position.
///
/// # Shapes
/// `logits`: `[B, Q, T]`, `targets`: `[B, T]` in `0..Q` → `[1]`.
pub fn mu_law_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    let lp = log_softmax(logits, 1); // [B, Q, T]
    lp.gather(1, targets.unsqueeze_dim(1)).mean().neg() // [B, 1, T] → [1]
}

/// μ-law companding and quantisation, as torchaudio's `mu_law_encoding`:
/// `x ∈ [-1, 1]` → `⌊((sign(x)·ln(1 + μ|x|)/ln(1 + μ) + 1)/2·μ + ½⌋` with
/// `μ = quantization_channels − 1`.
///
/// # Shapes
/// Any shape; the classes have the input's.
pub fn mu_law_encode<const D: usize>(x: Tensor<D>, quantization_channels: usize) -> Tensor<D, Int> {
    let mu = (quantization_channels.max(2) - 1) as f32;
    let y = x.clone().sign() * x.abs().mul_scalar(mu).log1p().div_scalar(mu.ln_1p());
    y.add_scalar(1.0)
        .mul_scalar(0.5 * mu)
        .add_scalar(0.5)
        .floor()
        .int()
}

/// The inverse of [`mu_law_encode`], as torchaudio's `mu_law_decoding`:
/// class `q` → `sign(y)·((1 + μ)^|y| − 1)/μ` with `y = 2q/μ − 1`.
///
/// # Shapes
/// Any shape; the samples have the input's.
pub fn mu_law_decode<const D: usize>(
    classes: Tensor<D, Int>,
    quantization_channels: usize,
) -> Tensor<D> {
    let mu = (quantization_channels.max(2) - 1) as f32;
    let y = classes
        .float()
        .div_scalar(mu)
        .mul_scalar(2.0)
        .sub_scalar(1.0);
    y.clone().sign()
        * y.abs()
            .mul_scalar(mu.ln_1p())
            .exp()
            .sub_scalar(1.0)
            .div_scalar(mu)
}
