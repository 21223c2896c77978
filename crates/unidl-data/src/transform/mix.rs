//! Batch-level mixing (A-b: "mixing two images mixes their labels"): MixUp
//! and CutMix pair each sample with another of the batch and set a soft label
//! in exact proportion to what was mixed.

use rand::Rng as _;

use super::{Rng, shuffled};
use crate::error::{DataError, Result};
use crate::sample::{Image, Input, Sample};

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

/// Refuses a sample with boxes, masks or keypoints: mixing moves pixels of
/// another sample under them, and only class labels are mixed.
fn labels_only(s: &Sample) -> Result<()> {
    let t = &s.targets;
    let spatial = [
        ("boxes", t.boxes.len()),
        ("masks", t.masks.len()),
        ("keypoints", t.keypoints.len()),
        ("instance keypoints", t.instance_keypoints.len()),
    ];
    match spatial.iter().find(|(_, n)| *n > 0) {
        Some((what, n)) => Err(DataError::Invalid {
            what: s.source.clone(),
            reason: format!(
                "MixUp/CutMix mix class labels only, and the {n} {what} of this sample would not follow the mixed pixels"
            ),
        }),
        None => Ok(()),
    }
}

/// Pairs every sample with a partner (a shuffle of the batch), draws λ, lets
/// `mix(own, partner, λ, rng)` blend each image input and return the fraction
/// of the own image that remains, and sets the soft label in that proportion.
/// Samples with boxes, masks or keypoints are refused ([`labels_only`]).
fn mix_batch(
    batch: Vec<Sample>,
    rng: &mut Rng,
    alpha: f64,
    num_classes: usize,
    mix: impl Fn(&mut Image, &Image, f64, &mut Rng) -> std::result::Result<f64, String>,
) -> Result<Vec<Sample>> {
    batch.iter().try_for_each(labels_only)?;
    let lam = beta(alpha, rng);
    let p = shuffled(batch.len(), rng);
    let mut out = batch.clone();
    for (i, s) in out.iter_mut().enumerate() {
        let other = &batch[p[i]];
        let mut kept = lam;
        for (name, input) in s.inputs.iter_mut() {
            if let (Input::Image(a), Some(Input::Image(b))) = (input, other.inputs.get(name)) {
                kept = mix(a, b, lam, rng).map_err(|reason| DataError::Invalid {
                    what: s.source.clone(),
                    reason,
                })?;
            }
        }
        s.targets.soft_label = Some(one_hot_mix(&batch[i], other, kept, num_classes)?);
    }
    Ok(out)
}

/// MixUp: `x = λ·x_i + (1-λ)·x_j`, soft label `λ·y_i + (1-λ)·y_j`, λ ~ Beta(α, α).
/// Classification only: a sample with boxes, masks or keypoints is an error.
#[derive(Debug, Clone)]
pub struct MixUp {
    /// Beta parameter (> 0).
    pub alpha: f64,
    /// Number of classes of the soft label.
    pub num_classes: usize,
}

impl BatchTransform for MixUp {
    fn apply_batch(&self, batch: Vec<Sample>, rng: &mut Rng) -> Result<Vec<Sample>> {
        mix_batch(
            batch,
            rng,
            self.alpha,
            self.num_classes,
            |a, b, lam, _rng| {
                if a.data.len() != b.data.len() {
                    return Err("MixUp needs images of one size".into());
                }
                a.data
                    .iter_mut()
                    .zip(&b.data)
                    .for_each(|(x, y)| *x = lam as f32 * *x + (1.0 - lam) as f32 * y);
                Ok(lam)
            },
        )
    }
}

/// CutMix: a random box of area `(1-λ)` from partner `j` is pasted into
/// sample `i`; the soft label uses the exact pasted fraction. Classification
/// only: a sample with boxes, masks or keypoints is an error.
#[derive(Debug, Clone)]
pub struct CutMix {
    /// Beta parameter (> 0).
    pub alpha: f64,
    /// Number of classes of the soft label.
    pub num_classes: usize,
}

impl BatchTransform for CutMix {
    fn apply_batch(&self, batch: Vec<Sample>, rng: &mut Rng) -> Result<Vec<Sample>> {
        mix_batch(
            batch,
            rng,
            self.alpha,
            self.num_classes,
            |a, b, lam, rng| {
                if (a.width, a.height, a.channels) != (b.width, b.height, b.channels) {
                    return Err("CutMix needs images of one size".into());
                }
                let (w, h) = (a.width, a.height);
                let cw = (((w as f64) * (1.0 - lam).sqrt()).round() as usize).min(w);
                let ch = (((h as f64) * (1.0 - lam).sqrt()).round() as usize).min(h);
                let x0 = rng.random_range(0..=w - cw);
                let y0 = rng.random_range(0..=h - ch);
                for y in y0..y0 + ch {
                    for x in x0..x0 + cw {
                        for c in 0..a.channels {
                            a.set(x, y, c, b.get(x, y, c));
                        }
                    }
                }
                Ok(1.0 - (cw * ch) as f64 / (w * h) as f64)
            },
        )
    }
}

/// A batch transform as written in a run config's `[data] batch_transforms`
/// (`{ type = "mixup", alpha = 0.2, num_classes = 10 }`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchTransformConfig {
    /// [`MixUp`].
    Mixup {
        /// Beta parameter (> 0).
        alpha: f64,
        /// Number of classes of the soft label.
        num_classes: usize,
    },
    /// [`CutMix`].
    Cutmix {
        /// Beta parameter (> 0).
        alpha: f64,
        /// Number of classes of the soft label.
        num_classes: usize,
    },
}

impl BatchTransformConfig {
    /// Builds the transform; a non-positive `alpha` or zero `num_classes` is a
    /// config error naming the key.
    pub fn build(&self) -> Result<Box<dyn BatchTransform>> {
        let (alpha, num_classes) = match self {
            BatchTransformConfig::Mixup { alpha, num_classes }
            | BatchTransformConfig::Cutmix { alpha, num_classes } => (*alpha, *num_classes),
        };
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(DataError::config(
                "batch_transforms.alpha",
                format!("{alpha} must be a positive number"),
            ));
        }
        if num_classes == 0 {
            return Err(DataError::config(
                "batch_transforms.num_classes",
                "must be at least 1",
            ));
        }
        Ok(match self {
            BatchTransformConfig::Mixup { .. } => Box::new(MixUp { alpha, num_classes }),
            BatchTransformConfig::Cutmix { .. } => Box::new(CutMix { alpha, num_classes }),
        })
    }
}
