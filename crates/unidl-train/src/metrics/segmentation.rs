//! Semantic segmentation: per-class IoU, mIoU, pixel accuracy and mean
//! class accuracy.
//!
//! Convention (mmsegmentation's `IoUMetric`, equal to torchmetrics'
//! `MulticlassJaccardIndex(average="macro", ignore_index=…)`): pixels whose
//! ground truth is `ignore_index` (e.g. 255) are dropped; intersections and
//! unions are summed over the whole data set before dividing (not averaged
//! per image); a class whose union is empty (absent from both ground truth
//! and predictions everywhere) has no IoU (`None`) and is left out of the
//! mean. Pixel accuracy is correct pixels over labelled pixels (mmseg's
//! `aAcc`); mean accuracy averages per-class recall over classes present in
//! the ground truth (mmseg's `mAcc`).

use super::{bad, same_len};
use crate::error::Result;
use crate::outputs::ClassMap;

/// Scores of [`SegmentationCounts::compute`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationScores {
    /// Mean IoU over classes with a non-empty union.
    pub miou: f64,
    /// IoU per class; `None` where the class is absent from both ground truth and predictions.
    pub per_class_iou: Vec<Option<f64>>,
    /// Correct pixels over labelled pixels.
    pub pixel_accuracy: f64,
    /// Mean over classes present in the ground truth of their pixel recall.
    pub mean_accuracy: f64,
    /// Recall per class; `None` where the class is absent from the ground truth.
    pub per_class_accuracy: Vec<Option<f64>>,
}

/// Accumulated intersections and areas per class.
#[derive(Debug, Clone)]
pub struct SegmentationCounts {
    ignore_index: Option<u32>,
    intersect: Vec<u64>,
    area_pred: Vec<u64>,
    area_label: Vec<u64>,
}

impl SegmentationCounts {
    /// Counts over classes `0..classes`; ground-truth pixels equal to
    /// `ignore_index` are not counted.
    pub fn new(classes: usize, ignore_index: Option<u32>) -> Self {
        Self {
            ignore_index,
            intersect: vec![0; classes],
            area_pred: vec![0; classes],
            area_label: vec![0; classes],
        }
    }

    /// Adds one image's predicted class map and its ground truth.
    pub fn update(&mut self, pred: &ClassMap, target: &ClassMap) -> Result<()> {
        if (pred.width, pred.height) != (target.width, target.height) {
            return Err(bad(
                "pred",
                format!(
                    "class map is {}×{} but the ground truth is {}×{}",
                    pred.width, pred.height, target.width, target.height
                ),
            ));
        }
        for (key, m) in [("pred", pred), ("target", target)] {
            same_len(
                key,
                "pixels",
                m.classes.len(),
                "cells of width × height",
                m.width * m.height,
            )?;
        }
        self.update_labels(&pred.classes, &target.classes)
    }

    /// Adds flat per-pixel predicted and true classes.
    pub fn update_labels(&mut self, pred: &[u32], target: &[u32]) -> Result<()> {
        same_len(
            "pred",
            "predicted pixels",
            pred.len(),
            "ground-truth pixels",
            target.len(),
        )?;
        let n = self.intersect.len();
        for (i, (&p, &t)) in pred.iter().zip(target).enumerate() {
            if Some(t) == self.ignore_index {
                continue;
            }
            if t as usize >= n {
                return Err(bad(
                    "target",
                    format!(
                        "pixel {i} has class {t}, outside 0..{n} and not the ignore index {:?}",
                        self.ignore_index
                    ),
                ));
            }
            if p as usize >= n {
                return Err(bad(
                    "pred",
                    format!("pixel {i} has class {p}, outside 0..{n}"),
                ));
            }
        }
        for (&p, &t) in pred.iter().zip(target) {
            if Some(t) == self.ignore_index {
                continue;
            }
            self.area_label[t as usize] += 1;
            self.area_pred[p as usize] += 1;
            if p == t {
                self.intersect[t as usize] += 1;
            }
        }
        Ok(())
    }

    /// The scores; an error when no labelled pixel was seen.
    pub fn compute(&self) -> Result<SegmentationScores> {
        let labelled: u64 = self.area_label.iter().sum();
        if labelled == 0 {
            return Err(bad(
                "target",
                "no labelled (non-ignored) pixel was added; the scores are undefined",
            ));
        }
        let per_class_iou: Vec<Option<f64>> = (0..self.intersect.len())
            .map(|c| {
                let union = self.area_pred[c] + self.area_label[c] - self.intersect[c];
                (union > 0).then(|| self.intersect[c] as f64 / union as f64)
            })
            .collect();
        let per_class_accuracy: Vec<Option<f64>> = (0..self.intersect.len())
            .map(|c| {
                (self.area_label[c] > 0)
                    .then(|| self.intersect[c] as f64 / self.area_label[c] as f64)
            })
            .collect();
        let mean = |v: &[Option<f64>]| {
            let present: Vec<f64> = v.iter().flatten().copied().collect();
            present.iter().sum::<f64>() / present.len() as f64
        };
        Ok(SegmentationScores {
            miou: mean(&per_class_iou),
            pixel_accuracy: self.intersect.iter().sum::<u64>() as f64 / labelled as f64,
            mean_accuracy: mean(&per_class_accuracy),
            per_class_iou,
            per_class_accuracy,
        })
    }
}

/// One-shot scores over pairs of (prediction, ground truth) class maps.
pub fn segmentation_scores(
    pred: &[ClassMap],
    target: &[ClassMap],
    classes: usize,
    ignore_index: Option<u32>,
) -> Result<SegmentationScores> {
    same_len(
        "pred",
        "predicted maps",
        pred.len(),
        "ground-truth maps",
        target.len(),
    )?;
    let mut counts = SegmentationCounts::new(classes, ignore_index);
    for (p, t) in pred.iter().zip(target) {
        counts.update(p, t)?;
    }
    counts.compute()
}
