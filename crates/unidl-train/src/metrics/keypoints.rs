//! Keypoint metrics: PCK@α and NME, MMPose's conventions (checked against
//! MMPose 1.3.2's own `keypoint_pck_accuracy` and `keypoint_nme`; MMPose
//! computes the distances in f32, unidl in f64).
//!
//! A ground-truth keypoint counts when its visibility is > 0 (labelled,
//! occluded or visible; COCO's 0 means "not labelled"). Each instance has a
//! reference length ([`Normalizer`]): the larger side of its box, a given
//! length (head size for PCKh, torso, …), or the inter-ocular distance
//! between two ground-truth keypoints (300W/PFLD: outer eye corners 36 and 45
//! of the 68 landmarks). An instance whose reference length is 0 is skipped,
//! as MMPose masks it out.
//!
//! - PCK (`keypoint_pck_accuracy`): for each keypoint index, the fraction of
//!   counted instances whose distance over the reference length is `< α`;
//!   PCK is the mean over keypoint indices counted at least once.
//! - NME (`keypoint_nme`): the mean over all counted keypoints of distance
//!   over reference length.

use unidl_data::{BBox, Keypoint};

use super::{bad, same_len};
use crate::error::Result;
use crate::outputs::PredictedKeypoint;

/// The reference length of one instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalizer {
    /// `max(width, height)` of the instance's ground-truth box.
    BoxSize(BBox),
    /// A given length in pixels.
    Length(f64),
    /// Distance between ground-truth keypoints `left` and `right`.
    InterOcular {
        /// Index of one eye keypoint (300W: 36).
        left: usize,
        /// Index of the other (300W: 45).
        right: usize,
    },
}

impl Normalizer {
    /// The reference length for ground truth `gt`.
    pub fn length(&self, gt: &[Keypoint]) -> Result<f64> {
        let len = match *self {
            Normalizer::BoxSize(b) => ((b.x1 - b.x0) as f64).max((b.y1 - b.y0) as f64),
            Normalizer::Length(l) => l,
            Normalizer::InterOcular { left, right } => {
                let (Some(l), Some(r)) = (gt.get(left), gt.get(right)) else {
                    return Err(bad(
                        "normalizer",
                        format!(
                            "eye keypoints {left} and {right} do not exist among {} keypoints",
                            gt.len()
                        ),
                    ));
                };
                ((l.x - r.x) as f64).hypot((l.y - r.y) as f64)
            }
        };
        if !len.is_finite() || len < 0.0 {
            return Err(bad(
                "normalizer",
                format!("reference length {len} of {self:?} is not a finite length ≥ 0"),
            ));
        }
        Ok(len)
    }
}

/// Normalised distances of the counted keypoints of one instance: `(index, distance)`.
fn distances(
    pred: &[PredictedKeypoint],
    gt: &[Keypoint],
    norm: &Normalizer,
) -> Result<Vec<(usize, f64)>> {
    same_len(
        "pred",
        "predicted keypoints",
        pred.len(),
        "ground-truth keypoints",
        gt.len(),
    )?;
    if let Some((i, p)) = pred
        .iter()
        .enumerate()
        .find(|(_, p)| !(p.x.is_finite() && p.y.is_finite()))
    {
        return Err(bad("pred", format!("keypoint {i} is not finite: {p:?}")));
    }
    let len = norm.length(gt)?;
    if len == 0.0 {
        return Ok(Vec::new());
    }
    Ok(pred
        .iter()
        .zip(gt)
        .enumerate()
        .filter(|(_, (_, g))| g.visibility > 0)
        .map(|(i, (p, g))| {
            let dx = (p.x as f64 - g.x as f64) / len;
            let dy = (p.y as f64 - g.y as f64) / len;
            (i, dx.hypot(dy))
        })
        .collect())
}

/// PCK scores.
#[derive(Debug, Clone, PartialEq)]
pub struct PckScores {
    /// Mean over keypoint indices counted at least once.
    pub pck: f64,
    /// Per keypoint index; `None` where it was never counted.
    pub per_keypoint: Vec<Option<f64>>,
}

/// PCK@α accumulator.
#[derive(Debug, Clone)]
pub struct Pck {
    alpha: f64,
    hits: Vec<u64>,
    counts: Vec<u64>,
}

impl Pck {
    /// PCK at threshold `alpha` (> 0, e.g. 0.05 or 0.2) of the reference length.
    pub fn new(alpha: f64) -> Result<Self> {
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(bad("alpha", format!("{alpha} must be a finite number > 0")));
        }
        Ok(Self {
            alpha,
            hits: Vec::new(),
            counts: Vec::new(),
        })
    }

    /// Adds one instance.
    pub fn update(
        &mut self,
        pred: &[PredictedKeypoint],
        gt: &[Keypoint],
        norm: &Normalizer,
    ) -> Result<()> {
        if self.counts.is_empty() {
            self.counts = vec![0; gt.len()];
            self.hits = vec![0; gt.len()];
        } else {
            same_len(
                "gt",
                "keypoints in this instance",
                gt.len(),
                "in earlier ones",
                self.counts.len(),
            )?;
        }
        for (i, d) in distances(pred, gt, norm)? {
            self.counts[i] += 1;
            if d < self.alpha {
                self.hits[i] += 1;
            }
        }
        Ok(())
    }

    /// The scores; an error when no keypoint was counted.
    pub fn compute(&self) -> Result<PckScores> {
        let per_keypoint: Vec<Option<f64>> = self
            .hits
            .iter()
            .zip(&self.counts)
            .map(|(&h, &c)| (c > 0).then(|| h as f64 / c as f64))
            .collect();
        let counted: Vec<f64> = per_keypoint.iter().flatten().copied().collect();
        if counted.is_empty() {
            return Err(bad(
                "gt",
                "no labelled keypoint with a positive reference length was added",
            ));
        }
        Ok(PckScores {
            pck: counted.iter().sum::<f64>() / counted.len() as f64,
            per_keypoint,
        })
    }
}

/// NME accumulator.
#[derive(Debug, Clone, Default)]
pub struct Nme {
    sum: f64,
    count: u64,
}

impl Nme {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one instance.
    pub fn update(
        &mut self,
        pred: &[PredictedKeypoint],
        gt: &[Keypoint],
        norm: &Normalizer,
    ) -> Result<()> {
        for (_, d) in distances(pred, gt, norm)? {
            self.sum += d;
            self.count += 1;
        }
        Ok(())
    }

    /// Mean normalised error; an error when no keypoint was counted.
    pub fn compute(&self) -> Result<f64> {
        if self.count == 0 {
            return Err(bad(
                "gt",
                "no labelled keypoint with a positive reference length was added",
            ));
        }
        Ok(self.sum / self.count as f64)
    }
}

/// One-shot PCK@α over instances.
pub fn pck(
    pred: &[Vec<PredictedKeypoint>],
    gt: &[Vec<Keypoint>],
    norms: &[Normalizer],
    alpha: f64,
) -> Result<PckScores> {
    same_len(
        "pred",
        "predicted instances",
        pred.len(),
        "ground-truth instances",
        gt.len(),
    )?;
    same_len("norms", "normalizers", norms.len(), "instances", gt.len())?;
    let mut m = Pck::new(alpha)?;
    for ((p, g), n) in pred.iter().zip(gt).zip(norms) {
        m.update(p, g, n)?;
    }
    m.compute()
}

/// One-shot NME over instances.
pub fn nme(
    pred: &[Vec<PredictedKeypoint>],
    gt: &[Vec<Keypoint>],
    norms: &[Normalizer],
) -> Result<f64> {
    same_len(
        "pred",
        "predicted instances",
        pred.len(),
        "ground-truth instances",
        gt.len(),
    )?;
    same_len("norms", "normalizers", norms.len(), "instances", gt.len())?;
    let mut m = Nme::new();
    for ((p, g), n) in pred.iter().zip(gt).zip(norms) {
        m.update(p, g, n)?;
    }
    m.compute()
}
