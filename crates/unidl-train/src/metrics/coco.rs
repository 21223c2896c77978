//! pycocotools' `COCOeval` machinery shared by box, mask and keypoint AP
//! ([`super::detection`], [`super::keypoint_ap`]): only the similarity
//! (IoU or OKS), the ground truth's ignore flags, the area ranges and the
//! detection limits differ between them.
//!
//! - [`Coco::add`]: one image; per class, detections sorted by score
//!   (stable) and cut to the largest `maxDets`, with their similarity to
//!   every ground truth (`computeIoU` / `computeOks`).
//! - `evaluateImg`: per area range, greedy matching of each detection to the
//!   unmatched ground truth of highest similarity at ten thresholds
//!   0.50:0.05:0.95; ground truth that is ignored (crowd, or no visible
//!   keypoint) or outside the range sorted last and matched only when nothing
//!   else is; crowd regions absorbing any number of detections; unmatched
//!   detections outside the range ignored.
//! - `accumulate` ([`Coco::curves`]): over all images, precision made
//!   monotone and read at 101 recall points, and the final recall.
//! - `summarize` ([`Curves::ap`], [`Curves::ar`]): means over thresholds,
//!   recall points and classes that have ground truth, `None` (COCO's `-1`)
//!   where no class has any.

use std::collections::BTreeMap;

/// Number of recall points of COCO's interpolated precision.
const RECALL_POINTS: usize = 101;
/// Number of IoU thresholds 0.50:0.05:0.95.
pub(crate) const THRESHOLDS: usize = 10;
/// Index of the threshold 0.50.
pub(crate) const AT_50: usize = 0;
/// Index of the threshold 0.75.
pub(crate) const AT_75: usize = 5;

/// The thresholds exactly as `np.linspace(.5, .95, 10)` gives them.
fn thresholds() -> [f64; THRESHOLDS] {
    let step = (0.95 - 0.5) / 9.0;
    let mut t = [0.0; THRESHOLDS];
    for (i, v) in t.iter_mut().enumerate() {
        *v = i as f64 * step + 0.5;
    }
    t[THRESHOLDS - 1] = 0.95;
    t
}

/// The recall points exactly as `np.linspace(0, 1, 101)` gives them.
fn recall_points() -> [f64; RECALL_POINTS] {
    let step = 1.0 / 100.0;
    let mut r = [0.0; RECALL_POINTS];
    for (i, v) in r.iter_mut().enumerate() {
        *v = i as f64 * step;
    }
    r[RECALL_POINTS - 1] = 1.0;
    r
}

/// One detection as `evaluateImg` sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dt {
    /// Class index.
    pub class: usize,
    /// Confidence.
    pub score: f64,
    /// Area compared with the area ranges.
    pub area: f64,
}

/// One ground-truth object as `evaluateImg` sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gt {
    /// Class index.
    pub class: usize,
    /// Area compared with the area ranges.
    pub area: f64,
    /// pycocotools' `ignore`: neither rewarded nor missed.
    pub ignore: bool,
    /// `iscrowd`: may absorb any number of detections.
    pub crowd: bool,
}

/// One (image, class) pair: detections sorted by score and cut, the ground
/// truth, and their similarity matrix.
#[derive(Debug, Clone)]
struct Entry {
    dt_scores: Vec<f64>,
    dt_areas: Vec<f64>,
    gts: Vec<Gt>,
    /// `sim[d][g]`.
    sim: Vec<Vec<f64>>,
}

/// Result of pycocotools' `evaluateImg` for one area range.
struct ImageEval {
    dt_scores: Vec<f64>,
    /// `[threshold][detection]`: matched to a ground truth.
    dt_matched: Vec<Vec<bool>>,
    /// `[threshold][detection]`: ignored.
    dt_ignore: Vec<Vec<bool>>,
    gt_ignore: Vec<bool>,
}

impl Entry {
    fn evaluate(&self, (lo, hi): (f64, f64), thresholds: &[f64; THRESHOLDS]) -> ImageEval {
        let outside = |a: f64| a < lo || a > hi;
        let ignore: Vec<bool> = self
            .gts
            .iter()
            .map(|g| g.ignore || outside(g.area))
            .collect();
        // Ground truth sorted with ignored ones last (stable).
        let mut order: Vec<usize> = (0..ignore.len()).collect();
        order.sort_by_key(|&g| ignore[g]);
        let gt_ignore: Vec<bool> = order.iter().map(|&g| ignore[g]).collect();
        let crowd: Vec<bool> = order.iter().map(|&g| self.gts[g].crowd).collect();
        let nd = self.dt_scores.len();
        let mut dt_matched = vec![vec![false; nd]; THRESHOLDS];
        let mut dt_ignore = vec![vec![false; nd]; THRESHOLDS];
        if !order.is_empty() {
            for (ti, &t) in thresholds.iter().enumerate() {
                let mut gt_taken = vec![false; order.len()];
                for d in 0..nd {
                    let mut best = t.min(1.0 - 1e-10);
                    let mut m: Option<usize> = None;
                    for (gi, &g) in order.iter().enumerate() {
                        if gt_taken[gi] && !crowd[gi] {
                            continue;
                        }
                        if let Some(mi) = m
                            && !gt_ignore[mi]
                            && gt_ignore[gi]
                        {
                            break;
                        }
                        let s = self.sim[d][g];
                        if s < best {
                            continue;
                        }
                        best = s;
                        m = Some(gi);
                    }
                    if let Some(mi) = m {
                        dt_ignore[ti][d] = gt_ignore[mi];
                        dt_matched[ti][d] = true;
                        gt_taken[mi] = true;
                    }
                }
            }
        }
        for ti in 0..THRESHOLDS {
            for d in 0..nd {
                if !dt_matched[ti][d] && outside(self.dt_areas[d]) {
                    dt_ignore[ti][d] = true;
                }
            }
        }
        ImageEval {
            dt_scores: self.dt_scores.clone(),
            dt_matched,
            dt_ignore,
            gt_ignore,
        }
    }
}

/// Precision at each recall point and final recall, per threshold.
type Curve = (Vec<[f64; RECALL_POINTS]>, Vec<f64>);
/// Per class: its curve, `None` without non-ignored ground truth.
type ClassCurves = Vec<(usize, Option<Curve>)>;

/// The COCO accumulator: entries by class, in image order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Coco {
    entries: BTreeMap<usize, Vec<Entry>>,
    images: usize,
}

impl Coco {
    /// Adds one image: per class, its detections sorted by score (stable)
    /// and cut to `max_det`; `sim(d, g)` is the similarity of detection `d`
    /// and ground truth `g` (indices into `dts` and `gts`).
    pub(crate) fn add(
        &mut self,
        dts: &[Dt],
        gts: &[Gt],
        max_det: usize,
        sim: impl Fn(usize, usize) -> f64,
    ) {
        let mut classes: Vec<usize> = dts
            .iter()
            .map(|d| d.class)
            .chain(gts.iter().map(|g| g.class))
            .collect();
        classes.sort_unstable();
        classes.dedup();
        for class in classes {
            let mut d: Vec<usize> = (0..dts.len()).filter(|&i| dts[i].class == class).collect();
            d.sort_by(|&a, &b| dts[b].score.total_cmp(&dts[a].score));
            d.truncate(max_det);
            let g: Vec<usize> = (0..gts.len()).filter(|&i| gts[i].class == class).collect();
            let entry = Entry {
                dt_scores: d.iter().map(|&i| dts[i].score).collect(),
                dt_areas: d.iter().map(|&i| dts[i].area).collect(),
                gts: g.iter().map(|&i| gts[i]).collect(),
                sim: d
                    .iter()
                    .map(|&di| g.iter().map(|&gi| sim(di, gi)).collect())
                    .collect(),
            };
            self.entries.entry(class).or_default().push(entry);
        }
        self.images += 1;
    }

    /// Number of images added.
    pub(crate) fn images(&self) -> usize {
        self.images
    }

    /// pycocotools' `accumulate` for one class, area range and max
    /// detections: `None` when the class has no non-ignored ground truth.
    fn curve(evals: &[ImageEval], max_det: usize) -> Option<Curve> {
        let mut dets: Vec<(f64, usize, usize)> = Vec::new(); // (score, image, detection)
        for (i, e) in evals.iter().enumerate() {
            for d in 0..e.dt_scores.len().min(max_det) {
                dets.push((e.dt_scores[d], i, d));
            }
        }
        dets.sort_by(|a, b| b.0.total_cmp(&a.0));
        let npig = evals
            .iter()
            .flat_map(|e| &e.gt_ignore)
            .filter(|&&ig| !ig)
            .count();
        if npig == 0 {
            return None;
        }
        let recall_at = recall_points();
        let mut precision = Vec::with_capacity(THRESHOLDS);
        let mut recall = Vec::with_capacity(THRESHOLDS);
        for t in 0..THRESHOLDS {
            let (mut tp, mut fp) = (0.0f64, 0.0f64);
            let mut rc = Vec::with_capacity(dets.len());
            let mut pr = Vec::with_capacity(dets.len());
            for &(_, i, d) in &dets {
                let (m, ig) = (evals[i].dt_matched[t][d], evals[i].dt_ignore[t][d]);
                if m && !ig {
                    tp += 1.0;
                }
                if !m && !ig {
                    fp += 1.0;
                }
                rc.push(tp / npig as f64);
                pr.push(tp / (fp + tp + f64::EPSILON));
            }
            recall.push(rc.last().copied().unwrap_or(0.0));
            for k in (1..pr.len()).rev() {
                if pr[k] > pr[k - 1] {
                    pr[k - 1] = pr[k];
                }
            }
            let mut q = [0.0; RECALL_POINTS];
            for (ri, &r) in recall_at.iter().enumerate() {
                let pi = rc.partition_point(|&x| x < r);
                if pi >= pr.len() {
                    break;
                }
                q[ri] = pr[pi];
            }
            precision.push(q);
        }
        Some((precision, recall))
    }

    /// `evaluate` and `accumulate` over every image added, for each area
    /// range and each of `max_dets` (ascending; the entries were cut to the
    /// last).
    pub(crate) fn curves(&self, area_ranges: &[(f64, f64)], max_dets: &[usize]) -> Curves {
        let thresholds = thresholds();
        let by_area = area_ranges
            .iter()
            .map(|&range| {
                let evals: Vec<(usize, Vec<ImageEval>)> = self
                    .entries
                    .iter()
                    .map(|(&c, es)| {
                        (
                            c,
                            es.iter().map(|e| e.evaluate(range, &thresholds)).collect(),
                        )
                    })
                    .collect();
                max_dets
                    .iter()
                    .map(|&m| evals.iter().map(|(c, e)| (*c, Self::curve(e, m))).collect())
                    .collect()
            })
            .collect();
        Curves { by_area }
    }
}

/// The accumulated curves: `by_area[area][max_det]` per class.
pub(crate) struct Curves {
    by_area: Vec<Vec<ClassCurves>>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

impl Curves {
    /// `summarize`'s AP: the mean precision over recall points, the
    /// thresholds (`threshold`: one index, or all) and the classes with
    /// ground truth in area range `area`, with `max_det` (an index).
    pub(crate) fn ap(&self, area: usize, max_det: usize, threshold: Option<usize>) -> Option<f64> {
        mean(
            self.by_area[area][max_det]
                .iter()
                .filter_map(|(_, c)| c.as_ref())
                .flat_map(|(p, _)| {
                    p.iter()
                        .enumerate()
                        .filter(move |(ti, _)| threshold.is_none_or(|t| t == *ti))
                        .flat_map(|(_, q)| q.iter().copied())
                }),
        )
    }

    /// `summarize`'s AR: the mean final recall over the thresholds and the
    /// classes with ground truth in area range `area`, with `max_det`.
    pub(crate) fn ar(&self, area: usize, max_det: usize, threshold: Option<usize>) -> Option<f64> {
        mean(
            self.by_area[area][max_det]
                .iter()
                .filter_map(|(_, c)| c.as_ref())
                .flat_map(|(_, r)| {
                    r.iter()
                        .enumerate()
                        .filter(move |(ti, _)| threshold.is_none_or(|t| t == *ti))
                        .map(|(_, v)| *v)
                }),
        )
    }

    /// AP over all thresholds of each class that has ground truth in area
    /// range `area`, with `max_det`.
    pub(crate) fn per_class_ap(&self, area: usize, max_det: usize) -> BTreeMap<usize, f64> {
        self.by_area[area][max_det]
            .iter()
            .filter_map(|(c, curve)| {
                let (p, _) = curve.as_ref()?;
                Some((*c, mean(p.iter().flat_map(|q| q.iter().copied()))?))
            })
            .collect()
    }
}
