//! COCO keypoint average precision by Object Keypoint Similarity, as
//! pycocotools' `COCOeval(iouType="keypoints")` computes it.
//!
//! - OKS of a predicted pose and a ground-truth instance with `k₁ > 0`
//!   visible keypoints (`v > 0`): the mean over those keypoints of
//!   `exp(−d² / (2σ)² / (area + ε) / 2)`, `d` the distance between predicted
//!   and true keypoint, `σ` the keypoint's sigma, `ε` the machine epsilon.
//!   With `k₁ = 0`, `d` is instead the distance of each predicted keypoint to
//!   the ground truth's box enlarged by its own width and height on every
//!   side (`[x − w, x + 2w] × [y − h, y + 2h]`), and the mean runs over all
//!   keypoints.
//! - `area`: the annotation's `area` (COCO: the segment's pixel area), else
//!   the ground truth's box area. A predicted pose's area is that of the box
//!   around all its keypoints (pycocotools' `loadRes`).
//! - Ground truth that is a crowd region or has no visible keypoint is
//!   ignored: a prediction it takes neither counts nor misses, and a crowd
//!   region takes any number of predictions.
//! - Then as for boxes ([`super::BoxMap`]): per image, the 20 best-scored
//!   predictions (`maxDets = 20`) matched greedily at OKS thresholds
//!   0.50:0.05:0.95; area ranges all `[0, 1e10]`, medium `[32², 96²]`, large
//!   `[96², 1e10]`; 101-point interpolated precision.
//!
//! Sigmas: COCO's 17 ([`COCO_KEYPOINT_SIGMAS`]) by default; any other
//! keypoint count needs its own ([`KeypointAp::with_sigmas`]). One category:
//! every pose is a person (or whatever the keypoints belong to); the class of
//! the ground truth's box is not used.

use unidl_data::{BBox, Keypoint};

use super::bad;
use super::coco::{AT_50, AT_75, Coco, Dt, Gt};
use crate::error::Result;
use crate::outputs::PredictedKeypoint;

/// pycocotools' `kpt_oks_sigmas` of COCO's 17 person keypoints (nose, eyes,
/// ears, shoulders, elbows, wrists, hips, knees, ankles).
pub const COCO_KEYPOINT_SIGMAS: [f64; 17] = [
    0.26 / 10.0,
    0.25 / 10.0,
    0.25 / 10.0,
    0.35 / 10.0,
    0.35 / 10.0,
    0.79 / 10.0,
    0.79 / 10.0,
    0.72 / 10.0,
    0.72 / 10.0,
    0.62 / 10.0,
    0.62 / 10.0,
    1.07 / 10.0,
    1.07 / 10.0,
    0.87 / 10.0,
    0.87 / 10.0,
    0.89 / 10.0,
    0.89 / 10.0,
];

/// `maxDets` of keypoint evaluation.
const MAX_DET: usize = 20;
/// Keypoint evaluation's area ranges: all, medium, large.
const AREA_RANGES: [(f64, f64); 3] = [(0.0, 1e10), (1024.0, 9216.0), (9216.0, 1e10)];

/// One predicted pose: its keypoints and the confidence it is ranked by.
#[derive(Debug, Clone, PartialEq)]
pub struct PosePrediction {
    /// Keypoints in image pixels (their own scores are not used by OKS).
    pub keypoints: Vec<PredictedKeypoint>,
    /// Instance confidence.
    pub score: f64,
}

impl PosePrediction {
    /// A pose whose score is the mean of its keypoints' scores, for models
    /// that give no instance score (heatmap or regression keypoints; 0 for
    /// a pose without keypoints).
    pub fn from_keypoints(keypoints: Vec<PredictedKeypoint>) -> Self {
        let score = if keypoints.is_empty() {
            0.0
        } else {
            keypoints.iter().map(|k| k.score as f64).sum::<f64>() / keypoints.len() as f64
        };
        PosePrediction { keypoints, score }
    }

    /// The area of the box around all keypoints (pycocotools' `loadRes`).
    fn area(&self) -> f64 {
        let span = |coord: fn(&PredictedKeypoint) -> f32| {
            let (lo, hi) = self
                .keypoints
                .iter()
                .map(|k| coord(k) as f64)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            hi - lo
        };
        span(|k| k.x) * span(|k| k.y)
    }
}

/// One ground-truth instance of keypoint AP.
#[derive(Debug, Clone, PartialEq)]
pub struct PoseGroundTruth {
    /// Keypoints; those with visibility 0 are not labelled.
    pub keypoints: Vec<Keypoint>,
    /// The instance's box (its class is not used).
    pub bbox: BBox,
    /// The annotation's `area`; `None` uses the box area.
    pub area: Option<f64>,
    /// COCO `iscrowd`.
    pub crowd: bool,
}

impl PoseGroundTruth {
    /// The area OKS scales by: `area`, else the box's `w·h`.
    pub fn area(&self) -> f64 {
        self.area.unwrap_or_else(|| {
            let b = self.bbox;
            (b.x1 as f64 - b.x0 as f64) * (b.y1 as f64 - b.y0 as f64)
        })
    }

    /// Number of keypoints with visibility > 0 (COCO's `num_keypoints`).
    pub fn visible(&self) -> usize {
        self.keypoints.iter().filter(|k| k.visibility > 0).count()
    }
}

/// `np.sum` of a 1-D float64 array: pairwise summation, which for fewer than
/// 129 values is eight interleaved partial sums, combined pairwise, then the
/// remainder in order.
fn numpy_sum(v: &[f64]) -> f64 {
    if v.len() < 8 {
        return v.iter().fold(0.0, |s, x| s + x);
    }
    if v.len() > 128 {
        let half = v.len() / 2 / 8 * 8;
        return numpy_sum(&v[..half]) + numpy_sum(&v[half..]);
    }
    let mut r = [0.0f64; 8];
    r.copy_from_slice(&v[..8]);
    let full = v.len() - v.len() % 8;
    for chunk in v[8..full].chunks_exact(8) {
        for (acc, x) in r.iter_mut().zip(chunk) {
            *acc += x;
        }
    }
    let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for x in &v[full..] {
        res += x;
    }
    res
}

/// OKS after the inputs were checked; `vars[i] = (2σᵢ)²`.
fn oks(pred: &[PredictedKeypoint], gt: &PoseGroundTruth, vars: &[f64]) -> f64 {
    let visible = gt.visible() > 0;
    let area = gt.area() + f64::EPSILON;
    let b = gt.bbox;
    let (bx, by) = (b.x0 as f64, b.y0 as f64);
    let (bw, bh) = (b.x1 as f64 - bx, b.y1 as f64 - by);
    let (x0, x1) = (bx - bw, bx + bw * 2.0);
    let (y0, y1) = (by - bh, by + bh * 2.0);
    let e: Vec<f64> = pred
        .iter()
        .zip(&gt.keypoints)
        .zip(vars)
        .filter(|((_, g), _)| !visible || g.visibility > 0)
        .map(|((p, g), var)| {
            let (xd, yd) = (p.x as f64, p.y as f64);
            let (dx, dy) = if visible {
                (xd - g.x as f64, yd - g.y as f64)
            } else {
                (
                    (x0 - xd).max(0.0) + (xd - x1).max(0.0),
                    (y0 - yd).max(0.0) + (yd - y1).max(0.0),
                )
            };
            (-((dx * dx + dy * dy) / var / area / 2.0)).exp()
        })
        .collect();
    numpy_sum(&e) / e.len() as f64
}

fn vars_of(sigmas: &[f64]) -> Vec<f64> {
    sigmas
        .iter()
        .map(|s| {
            let d = s * 2.0;
            d * d
        })
        .collect()
}

/// The sigmas in use and whether they are COCO's defaults.
#[derive(Debug, Clone)]
struct Sigmas {
    values: Vec<f64>,
    default: bool,
}

impl Sigmas {
    fn new(sigmas: Option<&[f64]>) -> Result<Self> {
        let Some(s) = sigmas else {
            return Ok(Sigmas {
                values: COCO_KEYPOINT_SIGMAS.to_vec(),
                default: true,
            });
        };
        if s.is_empty() {
            return Err(bad("sigmas", "give one sigma per keypoint, not none"));
        }
        if let Some((i, v)) = s
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Err(bad(
                "sigmas",
                format!("sigma {i} is {v}; sigmas must be finite and > 0"),
            ));
        }
        Ok(Sigmas {
            values: s.to_vec(),
            default: false,
        })
    }

    /// `n` keypoints must have one sigma each.
    fn check(&self, key: &str, i: usize, n: usize) -> Result<()> {
        let k = self.values.len();
        if n == k {
            return Ok(());
        }
        Err(bad(
            key,
            if self.default {
                format!(
                    "instance {i} has {n} keypoints; COCO's default OKS sigmas cover 17, so \
                     {n} keypoints need {n} sigmas given explicitly (`sigmas`)"
                )
            } else {
                format!("instance {i} has {n} keypoints but {k} sigmas were given")
            },
        ))
    }
}

fn check_prediction(i: usize, p: &PosePrediction, sigmas: &Sigmas) -> Result<()> {
    sigmas.check("predictions", i, p.keypoints.len())?;
    if !p.score.is_finite() {
        return Err(bad(
            "predictions",
            format!("instance {i} has a non-finite score {}", p.score),
        ));
    }
    if let Some((j, k)) = p
        .keypoints
        .iter()
        .enumerate()
        .find(|(_, k)| !(k.x.is_finite() && k.y.is_finite()))
    {
        return Err(bad(
            "predictions",
            format!("keypoint {j} of instance {i} is not finite: {k:?}"),
        ));
    }
    Ok(())
}

fn check_ground_truth(i: usize, g: &PoseGroundTruth, sigmas: &Sigmas) -> Result<()> {
    sigmas.check("ground_truth", i, g.keypoints.len())?;
    let b = g.bbox;
    if ![b.x0, b.y0, b.x1, b.y1].iter().all(|v| v.is_finite()) || b.x1 < b.x0 || b.y1 < b.y0 {
        return Err(bad(
            "ground_truth",
            format!("instance {i} has a bad box {b:?} (finite, x0 ≤ x1, y0 ≤ y1)"),
        ));
    }
    if let Some(a) = g.area
        && !(a.is_finite() && a >= 0.0)
    {
        return Err(bad(
            "ground_truth",
            format!("instance {i} has area {a}; it must be finite and ≥ 0"),
        ));
    }
    if let Some((j, k)) = g
        .keypoints
        .iter()
        .enumerate()
        .find(|(_, k)| k.visibility > 0 && !(k.x.is_finite() && k.y.is_finite()))
    {
        return Err(bad(
            "ground_truth",
            format!("keypoint {j} of instance {i} is labelled but not finite: {k:?}"),
        ));
    }
    Ok(())
}

/// Object Keypoint Similarity of one predicted pose with one ground-truth
/// instance (pycocotools' `computeOks`), with COCO's sigmas when `sigmas`
/// is `None`. A keypoint count that differs from the sigmas' is a
/// [`crate::TrainError::Config`].
pub fn object_keypoint_similarity(
    pred: &[PredictedKeypoint],
    gt: &PoseGroundTruth,
    sigmas: Option<&[f64]>,
) -> Result<f64> {
    let sigmas = Sigmas::new(sigmas)?;
    let p = PosePrediction {
        keypoints: pred.to_vec(),
        score: 0.0,
    };
    check_prediction(0, &p, &sigmas)?;
    check_ground_truth(0, gt, &sigmas)?;
    Ok(oks(pred, gt, &vars_of(&sigmas.values)))
}

/// The ten numbers of pycocotools' `summarize()` for keypoints. `None` is
/// its `-1`: no non-ignored ground truth (in that area range).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KeypointApSummary {
    /// AP averaged over OKS 0.50:0.95.
    pub ap: Option<f64>,
    /// AP at OKS 0.50.
    pub ap_50: Option<f64>,
    /// AP at OKS 0.75.
    pub ap_75: Option<f64>,
    /// AP of medium instances (32² ≤ area ≤ 96²).
    pub ap_medium: Option<f64>,
    /// AP of large instances (area ≥ 96²).
    pub ap_large: Option<f64>,
    /// AR averaged over OKS 0.50:0.95 (20 predictions per image).
    pub ar: Option<f64>,
    /// AR at OKS 0.50.
    pub ar_50: Option<f64>,
    /// AR at OKS 0.75.
    pub ar_75: Option<f64>,
    /// AR of medium instances.
    pub ar_medium: Option<f64>,
    /// AR of large instances.
    pub ar_large: Option<f64>,
}

impl KeypointApSummary {
    /// The numbers in the order of pycocotools' `stats`.
    pub fn stats(&self) -> [Option<f64>; 10] {
        [
            self.ap,
            self.ap_50,
            self.ap_75,
            self.ap_medium,
            self.ap_large,
            self.ar,
            self.ar_50,
            self.ar_75,
            self.ar_medium,
            self.ar_large,
        ]
    }
}

/// COCO keypoint AP accumulator (pycocotools `iouType="keypoints"`).
#[derive(Debug, Clone)]
pub struct KeypointAp {
    sigmas: Sigmas,
    vars: Vec<f64>,
    coco: Coco,
}

impl Default for KeypointAp {
    fn default() -> Self {
        let sigmas = Sigmas {
            values: COCO_KEYPOINT_SIGMAS.to_vec(),
            default: true,
        };
        KeypointAp {
            vars: vars_of(&sigmas.values),
            sigmas,
            coco: Coco::default(),
        }
    }
}

impl KeypointAp {
    /// An empty accumulator with COCO's 17 sigmas.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty accumulator with one sigma per keypoint (each finite and
    /// > 0), for skeletons other than COCO's.
    pub fn with_sigmas(sigmas: &[f64]) -> Result<Self> {
        let sigmas = Sigmas::new(Some(sigmas))?;
        Ok(KeypointAp {
            vars: vars_of(&sigmas.values),
            sigmas,
            coco: Coco::default(),
        })
    }

    /// Adds one image: its predicted poses and its ground-truth instances.
    /// Every instance must have one keypoint per sigma.
    pub fn update(
        &mut self,
        predictions: &[PosePrediction],
        ground_truth: &[PoseGroundTruth],
    ) -> Result<()> {
        for (i, p) in predictions.iter().enumerate() {
            check_prediction(i, p, &self.sigmas)?;
        }
        for (i, g) in ground_truth.iter().enumerate() {
            check_ground_truth(i, g, &self.sigmas)?;
        }
        let dts: Vec<Dt> = predictions
            .iter()
            .map(|p| Dt {
                class: 0,
                score: p.score,
                area: p.area(),
            })
            .collect();
        let gts: Vec<Gt> = ground_truth
            .iter()
            .map(|g| Gt {
                class: 0,
                area: g.area(),
                ignore: g.crowd || g.visible() == 0,
                crowd: g.crowd,
            })
            .collect();
        self.coco.add(&dts, &gts, MAX_DET, |d, g| {
            oks(&predictions[d].keypoints, &ground_truth[g], &self.vars)
        });
        Ok(())
    }

    /// Number of images added.
    pub fn images(&self) -> usize {
        self.coco.images()
    }

    /// pycocotools' summary over every image added.
    pub fn compute(&self) -> KeypointApSummary {
        let c = self.coco.curves(&AREA_RANGES, &[MAX_DET]);
        KeypointApSummary {
            ap: c.ap(0, 0, None),
            ap_50: c.ap(0, 0, Some(AT_50)),
            ap_75: c.ap(0, 0, Some(AT_75)),
            ap_medium: c.ap(1, 0, None),
            ap_large: c.ap(2, 0, None),
            ar: c.ar(0, 0, None),
            ar_50: c.ar(0, 0, Some(AT_50)),
            ar_75: c.ar(0, 0, Some(AT_75)),
            ar_medium: c.ar(1, 0, None),
            ar_large: c.ar(2, 0, None),
        }
    }
}

/// One-shot COCO keypoint AP: `predictions[i]` and `ground_truth[i]` belong
/// to image `i`; COCO's sigmas when `sigmas` is `None`.
pub fn keypoint_ap(
    predictions: &[Vec<PosePrediction>],
    ground_truth: &[Vec<PoseGroundTruth>],
    sigmas: Option<&[f64]>,
) -> Result<KeypointApSummary> {
    super::same_len(
        "predictions",
        "images of predictions",
        predictions.len(),
        "images of ground truth",
        ground_truth.len(),
    )?;
    let mut m = match sigmas {
        Some(s) => KeypointAp::with_sigmas(s)?,
        None => KeypointAp::new(),
    };
    for (p, g) in predictions.iter().zip(ground_truth) {
        m.update(p, g)?;
    }
    Ok(m.compute())
}
