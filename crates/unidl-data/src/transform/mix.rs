//! Batch-level mixing (A-b: "mixing two images mixes their labels"): MixUp
//! and CutMix pair each sample with another of the batch and set a soft label
//! in exact proportion to what was mixed.

use rand::Rng as _;

use super::Rng;
use crate::error::{DataError, Result};
use crate::sample::{Input, Sample};

/// A transform over a whole batch.
pub trait BatchTransform: Send + Sync + std::fmt::Debug {
    /// Transforms the batch.
    fn apply_batch(&self, batch: Vec<Sample>, rng: &mut Rng) -> Result<Vec<Sample>>;
}

/// Draws λ ~ Beta(α, α) from two Gamma(α) draws (Marsaglia–Tsang).
fn beta(alpha: f64, rng: &mut Rng) -> f64 {
    fn gamma(a: f64, rng: &mut Rng) -> f64 {
        if a < 1.0 {
            let u: f64 = rng.random();
            return gamma(a + 1.0, rng) * u.powf(1.0 / a);
        }
        let d = a - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            // Box–Muller normal
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let x = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u: f64 = rng.random();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    let (x, y) = (gamma(alpha, rng), gamma(alpha, rng));
    x / (x + y)
}

fn one_hot_mix(a: &Sample, b: &Sample, lam: f64, classes: usize) -> Result<Vec<f32>> {
    let la = a.targets.label.ok_or_else(|| DataError::Invalid {
        what: a.source.clone(),
        reason: "mixing needs a class label".into(),
    })?;
    let lb = b.targets.label.ok_or_else(|| DataError::Invalid {
        what: b.source.clone(),
        reason: "mixing needs a class label".into(),
    })?;
    if la >= classes || lb >= classes {
        return Err(DataError::Invalid {
            what: a.source.clone(),
            reason: format!("label {} or {lb} is not below num_classes {classes}", la),
        });
    }
    let mut v = vec![0.0f32; classes];
    v[la] += lam as f32;
    v[lb] += (1.0 - lam) as f32;
    Ok(v)
}

fn partner(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        p.swap(i, j);
    }
    p
}

/// MixUp: `x = λ·x_i + (1-λ)·x_j`, soft label `λ·y_i + (1-λ)·y_j`, λ ~ Beta(α, α).
#[derive(Debug, Clone)]
pub struct MixUp {
    /// Beta parameter (> 0).
    pub alpha: f64,
    /// Number of classes of the soft label.
    pub num_classes: usize,
}

impl BatchTransform for MixUp {
    fn apply_batch(&self, batch: Vec<Sample>, rng: &mut Rng) -> Result<Vec<Sample>> {
        let lam = beta(self.alpha, rng);
        let p = partner(batch.len(), rng);
        let mut out = batch.clone();
        for (i, s) in out.iter_mut().enumerate() {
            let other = &batch[p[i]];
            for (name, input) in s.inputs.iter_mut() {
                if let (Input::Image(a), Some(Input::Image(b))) = (input, other.inputs.get(name)) {
                    if a.data.len() != b.data.len() {
                        return Err(DataError::Invalid {
                            what: s.source.clone(),
                            reason: "MixUp needs images of one size".into(),
                        });
                    }
                    a.data
                        .iter_mut()
                        .zip(&b.data)
                        .for_each(|(x, y)| *x = lam as f32 * *x + (1.0 - lam) as f32 * y);
                }
            }
            s.targets.soft_label = Some(one_hot_mix(&batch[i], other, lam, self.num_classes)?);
        }
        Ok(out)
    }
}

/// CutMix: a random box of area `(1-λ)` from partner `j` is pasted into
/// sample `i`; the soft label uses the exact pasted fraction.
#[derive(Debug, Clone)]
pub struct CutMix {
    /// Beta parameter (> 0).
    pub alpha: f64,
    /// Number of classes of the soft label.
    pub num_classes: usize,
}

impl BatchTransform for CutMix {
    fn apply_batch(&self, batch: Vec<Sample>, rng: &mut Rng) -> Result<Vec<Sample>> {
        let lam = beta(self.alpha, rng);
        let p = partner(batch.len(), rng);
        let mut out = batch.clone();
        for (i, s) in out.iter_mut().enumerate() {
            let other = &batch[p[i]];
            let mut kept = 1.0;
            for (name, input) in s.inputs.iter_mut() {
                if let (Input::Image(a), Some(Input::Image(b))) = (input, other.inputs.get(name)) {
                    if (a.width, a.height, a.channels) != (b.width, b.height, b.channels) {
                        return Err(DataError::Invalid {
                            what: s.source.clone(),
                            reason: "CutMix needs images of one size".into(),
                        });
                    }
                    let (w, h) = (a.width, a.height);
                    let cw = ((w as f64) * (1.0 - lam).sqrt()).round() as usize;
                    let ch = ((h as f64) * (1.0 - lam).sqrt()).round() as usize;
                    let x0 = rng.random_range(0..=w - cw.min(w));
                    let y0 = rng.random_range(0..=h - ch.min(h));
                    for y in y0..(y0 + ch).min(h) {
                        for x in x0..(x0 + cw).min(w) {
                            for c in 0..a.channels {
                                a.set(x, y, c, b.get(x, y, c));
                            }
                        }
                    }
                    kept = 1.0 - (cw.min(w) * ch.min(h)) as f64 / (w * h) as f64;
                }
            }
            s.targets.soft_label = Some(one_hot_mix(&batch[i], other, kept, self.num_classes)?);
        }
        Ok(out)
    }
}
