//! The discretised mixture of logistics (Salimans et al., 2017,
//! "PixelCNN++", arXiv:1701.05517; Oord et al., 2017, "Parallel WaveNet",
//! arXiv:1711.10433): `wavenet_vocoder.mixture`'s loss, and the host-side
//! samplers that [`generate`](super::generate) shares between its fast and
//! naive paths.

use burn::tensor::activation::{log_softmax, sigmoid, softplus};
use burn::tensor::{Int, Tensor};

/// Samples `x ∈ [-1, 1]` of `levels`-level linear quantisation: level `q` is
/// `2q/(levels − 1) − 1`.
///
/// # Shapes
/// Any shape; the samples have the levels'.
pub fn linear_dequantize<const D: usize>(levels: Tensor<D, Int>, num_classes: usize) -> Tensor<D> {
    levels
        .float()
        .mul_scalar(level_step(num_classes))
        .sub_scalar(1.0)
}

/// `2/(levels − 1)`, the spacing of the levels, in f32 (the device and
/// host paths multiply by the same value).
pub(crate) fn level_step(num_classes: usize) -> f32 {
    2.0 / (num_classes.max(2) - 1) as f32
}

/// The sample of level `q` on the host, as [`linear_dequantize`].
pub(crate) fn level_to_sample(q: usize, num_classes: usize) -> f32 {
    q as f32 * level_step(num_classes) - 1.0
}

/// The level nearest `x` (clamped to `[-1, 1]`): `round((x + 1)/2·(n − 1))`.
pub(crate) fn sample_to_level(x: f64, num_classes: usize) -> usize {
    let top = (num_classes.max(2) - 1) as f64;
    ((x.clamp(-1.0, 1.0) + 1.0) / 2.0 * top)
        .round()
        .clamp(0.0, top) as usize
}

/// Negative log-likelihood of `y` under the discretised mixture of
/// logistics `y_hat` at every step — `wavenet_vocoder`'s
/// `discretized_mix_logistic_loss(y_hat, y, num_classes, log_scale_min,
/// reduce=False)`, differentiable (Burn tensor ops). `y_hat`'s channels are
/// `K` mixture logits, `K` means and `K` log scales (clamped below at
/// `log_scale_min`); the bins are `2/(num_classes − 1)` wide. Per mixture:
/// `y < −0.999`: `log σ(plus)` (the lowest bin takes the mass below);
/// `y > 0.999`: `log(1 − σ(min))` (the highest, the mass above); else
/// `log(max(cdf_delta, 1e-12))` when `cdf_delta > 1e-5`, and the density
/// at the bin's centre `− log((num_classes − 1)/2)` otherwise; then the
/// log-sum-exp over the mixtures of those plus the logits' log-softmax.
/// `K = C / 3` (at least 1): channels past `3K` are ignored.
///
/// # Shapes
/// `y_hat`: `[B, 3K, T]`, `y`: `[B, T]` in `[-1, 1]` → `[B, T]`.
pub fn mixture_of_logistics_nll(
    y_hat: Tensor<3>,
    y: Tensor<2>,
    num_classes: usize,
    log_scale_min: f32,
) -> Tensor<2> {
    let [_, c, _] = y_hat.dims();
    let k = c / 3;
    let logits = y_hat.clone().narrow(1, 0, k); // [B, K, T]
    let means = y_hat.clone().narrow(1, k, k);
    let log_scales = y_hat.narrow(1, 2 * k, k).clamp_min(log_scale_min);
    let y = y.unsqueeze_dim::<3>(1).repeat_dim(1, k); // [B, K, T]
    let half_bin = 1.0 / (num_classes.max(2) - 1) as f32;
    let centered = y.clone() - means;
    let inv_stdv = log_scales.clone().neg().exp();
    let plus_in = inv_stdv.clone() * centered.clone().add_scalar(half_bin);
    let min_in = inv_stdv.clone() * centered.clone().sub_scalar(half_bin);
    let cdf_delta = sigmoid(plus_in.clone()) - sigmoid(min_in.clone());
    let log_cdf_plus = plus_in.clone() - softplus(plus_in, 1.0);
    let log_one_minus_cdf_min = softplus(min_in, 1.0).neg();
    let mid_in = inv_stdv * centered;
    let log_pdf_mid = mid_in.clone() - log_scales - softplus(mid_in, 1.0).mul_scalar(2.0);
    let inner_inner = log_pdf_mid
        .sub_scalar((((num_classes.max(2) - 1) as f64) / 2.0).ln() as f32)
        .mask_where(
            cdf_delta.clone().greater_elem(1e-5),
            cdf_delta.clamp_min(1e-12).log(),
        );
    let inner = inner_inner.mask_where(y.clone().greater_elem(0.999), log_one_minus_cdf_min);
    let log_probs = inner.mask_where(y.lower_elem(-0.999), log_cdf_plus) + log_softmax(logits, 1);
    let max = log_probs.clone().max_dim(1).detach(); // [B, 1, T]
    let lse = (log_probs - max.clone()).exp().sum_dim(1).log() + max;
    lse.neg().squeeze_dim(1) // [B, T]
}

/// What one generation step draws from the model's output at a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Sampler {
    /// A class from `softmax(logits / τ)` (argmax at τ = 0).
    Softmax,
    /// A sample of the mixture of logistics, quantised to `num_classes`
    /// linear levels.
    Mixture {
        num_classes: usize,
        log_scale_min: f32,
    },
}

/// SplitMix64: a small seeded generator, the same stream on every machine.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[1e-5, 1 − 1e-5]` (the package's range for logistic
    /// and Gumbel noise).
    fn next_open(&mut self) -> f64 {
        1e-5 + (1.0 - 2e-5) * self.next_f64()
    }
}

/// The first index of the largest value.
fn argmax(v: impl Iterator<Item = f64>) -> usize {
    v.enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

impl Sampler {
    /// The level drawn from one step's output `out` (`Q` logits, or `3K`
    /// mixture parameters) at `temperature`.
    pub(crate) fn draw(&self, out: &[f32], temperature: f32, rng: &mut SplitMix64) -> usize {
        match *self {
            Sampler::Softmax => draw_softmax(out, temperature, rng),
            Sampler::Mixture {
                num_classes,
                log_scale_min,
            } => sample_to_level(
                draw_mixture(out, temperature, log_scale_min, rng),
                num_classes,
            ),
        }
    }
}

/// A class drawn from `softmax(logits / temperature)`, or the first most
/// likely one at temperature 0.
pub(crate) fn draw_softmax(logits: &[f32], temperature: f32, rng: &mut SplitMix64) -> usize {
    let best = argmax(logits.iter().map(|&v| f64::from(v)));
    if temperature <= 0.0 {
        return best;
    }
    let max = logits[best];
    let inv = 1.0 / f64::from(temperature);
    let total: f64 = logits
        .iter()
        .map(|&v| (f64::from(v - max) * inv).exp())
        .sum();
    let mut u = rng.next_f64() * total;
    for (i, &v) in logits.iter().enumerate() {
        u -= (f64::from(v - max) * inv).exp();
        if u < 0.0 {
            return i;
        }
    }
    best
}

/// A sample in `[-1, 1]` of the mixture `params` (`K` logits, means, log
/// scales): at `temperature > 0` the mixture by Gumbel-max over the logits
/// (`u ∈ [1e-5, 1 − 1e-5]`, as the package's
/// `sample_from_discretized_mix_logistic`), then `mean + τ·s·(ln u −
/// ln(1 − u))` with `s = exp(max(log_scale, log_scale_min))`, clamped; at
/// 0 the most probable mixture's mean.
pub(crate) fn draw_mixture(
    params: &[f32],
    temperature: f32,
    log_scale_min: f32,
    rng: &mut SplitMix64,
) -> f64 {
    let k = params.len() / 3;
    let (logits, means, log_scales) = (&params[..k], &params[k..2 * k], &params[2 * k..3 * k]);
    if temperature <= 0.0 || k == 0 {
        let i = argmax(logits.iter().map(|&v| f64::from(v)));
        return means.get(i).map_or(0.0, |&m| f64::from(m).clamp(-1.0, 1.0));
    }
    let i = argmax(
        logits
            .iter()
            .map(|&v| f64::from(v) - (-rng.next_open().ln()).ln()),
    );
    let u = rng.next_open();
    let scale = f64::from(log_scales[i].max(log_scale_min)).exp();
    let x = f64::from(means[i]) + f64::from(temperature) * scale * (u.ln() - (1.0 - u).ln());
    x.clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_takes_the_argmax_at_temperature_zero_and_follows_the_softmax() {
        let mut rng = SplitMix64(3);
        assert_eq!(draw_softmax(&[0.1, 2.0, -1.0, 2.0], 0.0, &mut rng), 1);
        let logits = [0.0, (3.0f32).ln()];
        let n = 20_000;
        let ones = (0..n)
            .filter(|_| draw_softmax(&logits, 1.0, &mut rng) == 1)
            .count();
        let p = ones as f64 / n as f64;
        assert!((p - 0.75).abs() < 0.02, "{p}");
    }

    #[test]
    fn mixture_draws_pick_mixtures_by_weight_and_spread_by_scale() {
        let mut rng = SplitMix64(5);
        // two logistics: weight 1:3, means -0.5 and 0.5, scale e^-4
        let params = [0.0, (3.0f32).ln(), -0.5, 0.5, -4.0, -4.0];
        assert_eq!(draw_mixture(&params, 0.0, -7.0, &mut rng), 0.5);
        let n = 20_000;
        let xs: Vec<f64> = (0..n)
            .map(|_| draw_mixture(&params, 1.0, -7.0, &mut rng))
            .collect();
        let upper = xs.iter().filter(|&&x| x > 0.0).count() as f64 / n as f64;
        assert!((upper - 0.75).abs() < 0.02, "{upper}");
        // the logistic's mean absolute deviation is 2 ln 2 · s
        let mad = xs.iter().map(|x| (x.abs() - 0.5).abs()).sum::<f64>() / n as f64;
        let want = 2.0 * 2f64.ln() * (-4f64).exp();
        assert!((mad / want - 1.0).abs() < 0.05, "{mad} vs {want}");
        assert_eq!(sample_to_level(-1.0, 65536), 0);
        assert_eq!(sample_to_level(1.0, 65536), 65535);
        assert_eq!(sample_to_level(0.0, 256), 128); // 127.5 rounds up
        assert_eq!(level_to_sample(65535, 65536), 1.0);
    }
}
