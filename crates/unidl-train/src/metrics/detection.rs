//! Detection and instance-segmentation mean average precision.
//!
//! [`BoxMap`] and [`MaskMap`] implement pycocotools' `COCOeval` (`bbox` and
//! `segm`) step by step (the machinery shared with keypoint AP is in
//! `metrics/coco.rs`): per image and class, detections sorted by score
//! (stable) and cut to the 100 best; greedy matching of each detection to the
//! unmatched ground truth of highest IoU at ten thresholds 0.50:0.05:0.95,
//! crowd regions (`iscrowd`) absorbing any number of detections without
//! counting (IoU with a crowd region is intersection over the detection's
//! area); ground truth outside an area range ignored, as are unmatched
//! detections outside it; over all images, precision made monotone and read
//! at 101 recall points; AP the mean over thresholds, recall points and
//! classes that have ground truth, AR the mean over thresholds and classes of
//! the final recall. Areas: box `w·h` or mask pixel count; ranges small
//! `[0, 32²]`, medium `[32², 96²]`, large `[96², 1e10]`.
//!
//! [`VocMap`] is the PASCAL VOC style AP at IoU 0.5 with all-points
//! interpolation, as MMDetection's `eval_map` computes it (continuous
//! coordinates, a detection is a hit when its best IoU is `>= 0.5` and that
//! ground truth is not yet taken; crowd ground truth, VOC's "difficult",
//! neither rewards nor punishes the detections it takes); the test checks it
//! against mmdet 3.3.0's own `eval_map`. Detections with equal scores are
//! ranked in image order, then in their order within the image; mmdet ranks
//! them with numpy's unstable sort, so its AP for tied scores depends on the
//! numpy build (its reference run uses a stable sort).

use std::collections::BTreeMap;

use unidl_data::{BBox, Mask};

use super::coco::{AT_50, AT_75, Coco, Dt, Gt};
use super::{bad, same_len};
use crate::error::Result;
use crate::outputs::{Detection, InstanceMask};

/// COCO's `maxDets` for boxes and masks.
const MAX_DETS: [usize; 3] = [1, 10, 100];
/// COCO's area ranges: all, small, medium, large.
const AREA_RANGES: [(f64, f64); 4] = [(0.0, 1e10), (0.0, 1024.0), (1024.0, 9216.0), (9216.0, 1e10)];

/// COCO's summary numbers. `None` is pycocotools' `-1`: no class has ground
/// truth (in that area range).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CocoSummary {
    /// AP averaged over IoU 0.50:0.95 (the COCO "mAP").
    pub map: Option<f64>,
    /// AP at IoU 0.50.
    pub map_50: Option<f64>,
    /// AP at IoU 0.75.
    pub map_75: Option<f64>,
    /// AP of small objects (area ≤ 32²).
    pub map_small: Option<f64>,
    /// AP of medium objects (32² ≤ area ≤ 96²).
    pub map_medium: Option<f64>,
    /// AP of large objects (area ≥ 96²).
    pub map_large: Option<f64>,
    /// AR with at most 1 detection per image.
    pub ar_1: Option<f64>,
    /// AR with at most 10 detections per image.
    pub ar_10: Option<f64>,
    /// AR with at most 100 detections per image.
    pub ar_100: Option<f64>,
    /// AR@100 of small objects.
    pub ar_small: Option<f64>,
    /// AR@100 of medium objects.
    pub ar_medium: Option<f64>,
    /// AR@100 of large objects.
    pub ar_large: Option<f64>,
    /// AP (IoU 0.50:0.95, all areas, 100 detections) of each class that has ground truth.
    pub per_class_ap: BTreeMap<usize, f64>,
}

/// pycocotools' `summarize` for `bbox` and `segm`.
fn summarize(coco: &Coco) -> CocoSummary {
    let c = coco.curves(&AREA_RANGES, &MAX_DETS);
    CocoSummary {
        map: c.ap(0, 2, None),
        map_50: c.ap(0, 2, Some(AT_50)),
        map_75: c.ap(0, 2, Some(AT_75)),
        map_small: c.ap(1, 2, None),
        map_medium: c.ap(2, 2, None),
        map_large: c.ap(3, 2, None),
        ar_1: c.ar(0, 0, None),
        ar_10: c.ar(0, 1, None),
        ar_100: c.ar(0, 2, None),
        ar_small: c.ar(1, 2, None),
        ar_medium: c.ar(2, 2, None),
        ar_large: c.ar(3, 2, None),
        per_class_ap: c.per_class_ap(0, 2),
    }
}

/// Detections and ground truth of one image in the shape [`Coco::add`] takes;
/// crowd regions are the ignored ground truth.
fn coco_inputs(
    dts: impl Iterator<Item = (usize, f64, f64)>,
    gts: impl Iterator<Item = (usize, f64, bool)>,
) -> (Vec<Dt>, Vec<Gt>) {
    (
        dts.map(|(class, score, area)| Dt { class, score, area })
            .collect(),
        gts.map(|(class, area, crowd)| Gt {
            class,
            area,
            ignore: crowd,
            crowd,
        })
        .collect(),
    )
}

/// pycocotools' box IoU (`bbIou`) on `[x, y, w, h]`; for a crowd ground
/// truth the union is the detection's area.
fn coco_box_iou(d: [f64; 4], g: [f64; 4], crowd: bool) -> f64 {
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let da = d[2] * d[3];
    let u = if crowd { da } else { da + g[2] * g[3] - i };
    i / u
}

fn xywh(x0: f32, y0: f32, x1: f32, y1: f32) -> [f64; 4] {
    let (x0, y0, x1, y1) = (x0 as f64, y0 as f64, x1 as f64, y1 as f64);
    [x0, y0, x1 - x0, y1 - y0]
}

fn check_detections(key: &str, dets: impl Iterator<Item = Detection>) -> Result<()> {
    for (i, d) in dets.enumerate() {
        let v = [d.x0, d.y0, d.x1, d.y1, d.score];
        if v.iter().any(|x| !x.is_finite()) {
            return Err(bad(
                key,
                format!("detection {i} has a non-finite box or score: {d:?}"),
            ));
        }
    }
    Ok(())
}

fn check_boxes(key: &str, boxes: &[BBox]) -> Result<()> {
    for (i, b) in boxes.iter().enumerate() {
        if [b.x0, b.y0, b.x1, b.y1].iter().any(|x| !x.is_finite()) {
            return Err(bad(key, format!("box {i} is not finite: {b:?}")));
        }
    }
    Ok(())
}

/// `crowd` is empty (no crowd regions) or one flag per ground-truth object.
fn crowd_flags(crowd: &[bool], n: usize) -> Result<Vec<bool>> {
    if crowd.is_empty() {
        return Ok(vec![false; n]);
    }
    same_len(
        "crowd",
        "crowd flags",
        crowd.len(),
        "ground-truth objects",
        n,
    )?;
    Ok(crowd.to_vec())
}

/// COCO box mAP accumulator (pycocotools `iouType="bbox"`).
#[derive(Debug, Clone, Default)]
pub struct BoxMap {
    coco: Coco,
}

impl BoxMap {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one image without crowd regions.
    pub fn update(&mut self, detections: &[Detection], ground_truth: &[BBox]) -> Result<()> {
        self.update_with_crowd(detections, ground_truth, &[])
    }

    /// Adds one image; `crowd[i]` marks ground truth `i` as a crowd region
    /// (`iscrowd`); an empty `crowd` means none.
    pub fn update_with_crowd(
        &mut self,
        detections: &[Detection],
        ground_truth: &[BBox],
        crowd: &[bool],
    ) -> Result<()> {
        check_detections("detections", detections.iter().copied())?;
        check_boxes("ground_truth", ground_truth)?;
        let crowd = crowd_flags(crowd, ground_truth.len())?;
        let d: Vec<[f64; 4]> = detections
            .iter()
            .map(|d| xywh(d.x0, d.y0, d.x1, d.y1))
            .collect();
        let g: Vec<[f64; 4]> = ground_truth
            .iter()
            .map(|b| xywh(b.x0, b.y0, b.x1, b.y1))
            .collect();
        let (dts, gts) = coco_inputs(
            detections
                .iter()
                .zip(&d)
                .map(|(det, b)| (det.class, det.score as f64, b[2] * b[3])),
            ground_truth
                .iter()
                .zip(&g)
                .zip(&crowd)
                .map(|((gt, b), &c)| (gt.class, b[2] * b[3], c)),
        );
        self.coco.add(&dts, &gts, MAX_DETS[2], |di, gi| {
            coco_box_iou(d[di], g[gi], crowd[gi])
        });
        Ok(())
    }

    /// Number of images added.
    pub fn images(&self) -> usize {
        self.coco.images()
    }

    /// The COCO summary over every image added.
    pub fn compute(&self) -> CocoSummary {
        summarize(&self.coco)
    }
}

/// One-shot COCO box mAP: `detections[i]` and `ground_truth[i]` belong to image `i`.
pub fn box_map(detections: &[Vec<Detection>], ground_truth: &[Vec<BBox>]) -> Result<CocoSummary> {
    same_len(
        "detections",
        "images of detections",
        detections.len(),
        "images of ground truth",
        ground_truth.len(),
    )?;
    let mut m = BoxMap::new();
    for (d, g) in detections.iter().zip(ground_truth) {
        m.update(d, g)?;
    }
    Ok(m.compute())
}

/// Pixel count of a 0/1 mask and of its intersection with another.
fn mask_iou(d: &[u8], g: &[u8], d_area: u64, g_area: u64, crowd: bool) -> f64 {
    let i = d
        .iter()
        .zip(g)
        .filter(|(a, b)| **a != 0 && **b != 0)
        .count() as u64;
    if i == 0 {
        return 0.0;
    }
    let u = if crowd { d_area } else { d_area + g_area - i };
    i as f64 / u as f64
}

fn check_mask(
    key: &str,
    i: usize,
    width: usize,
    height: usize,
    data: &[u8],
    size: Option<(usize, usize)>,
) -> Result<()> {
    if data.len() != width * height {
        return Err(bad(
            key,
            format!("mask {i} has {} values for {width}×{height}", data.len()),
        ));
    }
    if let Some((w, h)) = size
        && (w, h) != (width, height)
    {
        return Err(bad(
            key,
            format!("mask {i} is {width}×{height} but the image's masks are {w}×{h}"),
        ));
    }
    if let Some(v) = data.iter().find(|v| **v > 1) {
        return Err(bad(
            key,
            format!("mask {i} holds {v}; values must be 0 or 1"),
        ));
    }
    Ok(())
}

/// COCO mask mAP accumulator (pycocotools `iouType="segm"`).
#[derive(Debug, Clone, Default)]
pub struct MaskMap {
    coco: Coco,
}

impl MaskMap {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one image without crowd regions.
    pub fn update(&mut self, predictions: &[InstanceMask], ground_truth: &[Mask]) -> Result<()> {
        self.update_with_crowd(predictions, ground_truth, &[])
    }

    /// Adds one image; `crowd[i]` marks ground truth `i` as a crowd region;
    /// an empty `crowd` means none. All masks of one image must have the same size.
    pub fn update_with_crowd(
        &mut self,
        predictions: &[InstanceMask],
        ground_truth: &[Mask],
        crowd: &[bool],
    ) -> Result<()> {
        check_detections("predictions", predictions.iter().map(|p| p.detection))?;
        let crowd = crowd_flags(crowd, ground_truth.len())?;
        let mut size = None;
        for (i, p) in predictions.iter().enumerate() {
            check_mask("predictions", i, p.width, p.height, &p.mask, size)?;
            size = Some((p.width, p.height));
        }
        for (i, g) in ground_truth.iter().enumerate() {
            check_mask("ground_truth", i, g.width, g.height, &g.data, size)?;
            size = Some((g.width, g.height));
        }
        let count = |m: &[u8]| m.iter().filter(|v| **v != 0).count() as u64;
        let d_area: Vec<u64> = predictions.iter().map(|p| count(&p.mask)).collect();
        let g_area: Vec<u64> = ground_truth.iter().map(|g| count(&g.data)).collect();
        let (dts, gts) = coco_inputs(
            predictions
                .iter()
                .zip(&d_area)
                .map(|(p, &a)| (p.detection.class, p.detection.score as f64, a as f64)),
            ground_truth
                .iter()
                .zip(&g_area)
                .zip(&crowd)
                .map(|((g, &a), &c)| (g.class, a as f64, c)),
        );
        self.coco.add(&dts, &gts, MAX_DETS[2], |di, gi| {
            mask_iou(
                &predictions[di].mask,
                &ground_truth[gi].data,
                d_area[di],
                g_area[gi],
                crowd[gi],
            )
        });
        Ok(())
    }

    /// Number of images added.
    pub fn images(&self) -> usize {
        self.coco.images()
    }

    /// The COCO summary over every image added.
    pub fn compute(&self) -> CocoSummary {
        summarize(&self.coco)
    }
}

/// One-shot COCO mask mAP: `predictions[i]` and `ground_truth[i]` belong to image `i`.
pub fn mask_map(
    predictions: &[Vec<InstanceMask>],
    ground_truth: &[Vec<Mask>],
) -> Result<CocoSummary> {
    same_len(
        "predictions",
        "images of predictions",
        predictions.len(),
        "images of ground truth",
        ground_truth.len(),
    )?;
    let mut m = MaskMap::new();
    for (p, g) in predictions.iter().zip(ground_truth) {
        m.update(p, g)?;
    }
    Ok(m.compute())
}

/// VOC-style results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VocSummary {
    /// Mean of the per-class APs; `None` when no class has ground truth.
    pub map: Option<f64>,
    /// AP of each class that has (non-crowd) ground truth.
    pub per_class_ap: BTreeMap<usize, f64>,
}

/// PASCAL VOC style AP accumulator (all-points interpolation).
#[derive(Debug, Clone)]
pub struct VocMap {
    iou_threshold: f64,
    /// Per class: (score, true positive) of every counted detection.
    hits: BTreeMap<usize, Vec<(f64, bool)>>,
    /// Per class: number of non-crowd ground-truth boxes.
    positives: BTreeMap<usize, u64>,
}

impl Default for VocMap {
    fn default() -> Self {
        Self {
            iou_threshold: 0.5,
            hits: BTreeMap::new(),
            positives: BTreeMap::new(),
        }
    }
}

/// Plain box IoU on continuous coordinates (mmdetection's `bbox_overlaps`).
fn voc_iou(d: &Detection, g: &BBox) -> f64 {
    let (dx0, dy0, dx1, dy1) = (d.x0 as f64, d.y0 as f64, d.x1 as f64, d.y1 as f64);
    let (gx0, gy0, gx1, gy1) = (g.x0 as f64, g.y0 as f64, g.x1 as f64, g.y1 as f64);
    let w = (dx1.min(gx1) - dx0.max(gx0)).max(0.0);
    let h = (dy1.min(gy1) - dy0.max(gy0)).max(0.0);
    let inter = w * h;
    let union = (dx1 - dx0) * (dy1 - dy0) + (gx1 - gx0) * (gy1 - gy0) - inter;
    inter / union.max(f32::EPSILON as f64)
}

impl VocMap {
    /// AP at IoU 0.5 (VOC).
    pub fn new() -> Self {
        Self::default()
    }

    /// AP at another IoU threshold, in (0, 1].
    pub fn with_iou_threshold(iou_threshold: f64) -> Result<Self> {
        if !(iou_threshold > 0.0 && iou_threshold <= 1.0) {
            return Err(bad(
                "iou_threshold",
                format!("{iou_threshold} is outside (0, 1]"),
            ));
        }
        Ok(Self {
            iou_threshold,
            ..Self::default()
        })
    }

    /// Adds one image without crowd ("difficult") boxes.
    pub fn update(&mut self, detections: &[Detection], ground_truth: &[BBox]) -> Result<()> {
        self.update_with_crowd(detections, ground_truth, &[])
    }

    /// Adds one image; `crowd[i]` marks ground truth `i` as ignored
    /// (VOC's "difficult"); an empty `crowd` means none.
    pub fn update_with_crowd(
        &mut self,
        detections: &[Detection],
        ground_truth: &[BBox],
        crowd: &[bool],
    ) -> Result<()> {
        check_detections("detections", detections.iter().copied())?;
        check_boxes("ground_truth", ground_truth)?;
        let crowd = crowd_flags(crowd, ground_truth.len())?;
        for (g, &c) in ground_truth.iter().zip(&crowd) {
            let n = self.positives.entry(g.class).or_insert(0);
            if !c {
                *n += 1;
            }
        }
        let mut classes: Vec<usize> = detections.iter().map(|d| d.class).collect();
        classes.sort_unstable();
        classes.dedup();
        for class in classes {
            let gts: Vec<usize> = (0..ground_truth.len())
                .filter(|&g| ground_truth[g].class == class)
                .collect();
            let mut dets: Vec<&Detection> =
                detections.iter().filter(|d| d.class == class).collect();
            dets.sort_by(|a, b| b.score.total_cmp(&a.score));
            let mut covered = vec![false; gts.len()];
            let hits = self.hits.entry(class).or_default();
            for d in dets {
                // First maximum, like numpy's argmax.
                let mut best: Option<(usize, f64)> = None;
                for (k, &g) in gts.iter().enumerate() {
                    let iou = voc_iou(d, &ground_truth[g]);
                    if best.is_none_or(|(_, b)| iou > b) {
                        best = Some((k, iou));
                    }
                }
                match best {
                    Some((k, iou)) if iou >= self.iou_threshold => {
                        if crowd[gts[k]] {
                            continue;
                        }
                        hits.push((d.score as f64, !covered[k]));
                        covered[k] = true;
                    }
                    _ => hits.push((d.score as f64, false)),
                }
            }
        }
        Ok(())
    }

    /// Per-class AP (area under the monotone precision envelope at every
    /// recall step) and their mean over classes with ground truth.
    pub fn compute(&self) -> VocSummary {
        let mut per_class_ap = BTreeMap::new();
        for (&class, &npos) in &self.positives {
            if npos == 0 {
                continue;
            }
            let mut hits = self.hits.get(&class).cloned().unwrap_or_default();
            hits.sort_by(|a, b| b.0.total_cmp(&a.0));
            let (mut tp, mut fp) = (0.0f64, 0.0f64);
            let mut rec = vec![0.0];
            let mut prec = vec![0.0];
            for &(_, hit) in &hits {
                if hit {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
                rec.push(tp / npos as f64);
                prec.push(tp / (tp + fp).max(f32::EPSILON as f64));
            }
            rec.push(1.0);
            prec.push(0.0);
            for i in (1..prec.len()).rev() {
                prec[i - 1] = prec[i - 1].max(prec[i]);
            }
            let ap = (0..rec.len() - 1)
                .filter(|&i| rec[i + 1] != rec[i])
                .map(|i| (rec[i + 1] - rec[i]) * prec[i + 1])
                .sum::<f64>();
            per_class_ap.insert(class, ap);
        }
        let map = (!per_class_ap.is_empty())
            .then(|| per_class_ap.values().sum::<f64>() / per_class_ap.len() as f64);
        VocSummary { map, per_class_ap }
    }
}

/// One-shot VOC AP@0.5: `detections[i]` and `ground_truth[i]` belong to image `i`.
pub fn voc_map(detections: &[Vec<Detection>], ground_truth: &[Vec<BBox>]) -> Result<VocSummary> {
    same_len(
        "detections",
        "images of detections",
        detections.len(),
        "images of ground truth",
        ground_truth.len(),
    )?;
    let mut m = VocMap::new();
    for (d, g) in detections.iter().zip(ground_truth) {
        m.update(d, g)?;
    }
    Ok(m.compute())
}
