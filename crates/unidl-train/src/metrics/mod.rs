//! Task metrics (B.6): host-side accumulators and one-shot functions for
//! every task family of the model zoo. No tensors: predictions are the
//! structures of [`crate::outputs`], ground truth the ones of `unidl_data`.
//!
//! Every metric follows one pattern: `new(...)`, `update(...)` once per
//! batch or image, `compute()` at the end; and a one-shot function that does
//! all three. Bad input (length mismatch, class out of range, non-finite
//! values) is a [`TrainError::Config`] naming the argument; a metric that is
//! undefined on what it saw (no reference words, no labelled pixels) is an
//! error too, or an `Option` where the reference tool reports "absent"
//! (COCO's `-1`), never a NaN.
//!
//! | family | items | reference |
//! |---|---|---|
//! | classification | [`ClassCounts`], [`prf`], [`multilabel_prf`] | scikit-learn |
//! | detection | [`BoxMap`], [`box_map`], [`VocMap`], [`voc_map`] | pycocotools (`bbox`); MMDetection's own `eval_map` (tied scores in stable order) |
//! | instance segmentation | [`MaskMap`], [`mask_map`] | pycocotools (`segm`) |
//! | semantic segmentation | [`SegmentationCounts`], [`segmentation_scores`] | mmseg's `IoUMetric` convention written in numpy, checked against torchmetrics `MulticlassJaccardIndex` and scikit-learn |
//! | keypoints | [`Pck`], [`Nme`], [`pck`], [`nme`] | MMPose's own `keypoint_pck_accuracy`, `keypoint_nme` |
//! | keypoints (COCO) | [`KeypointAp`], [`keypoint_ap()`], [`object_keypoint_similarity`] | pycocotools (`keypoints`) |
//! | text, speech | [`ErrorRate`], [`cer`], [`wer`], [`Bleu`], [`corpus_bleu`], [`ChrF`], [`Perplexity`] | jiwer, sacrebleu, torchmetrics |
//!
//! The reference values of the tests come from
//! `crates/unidl-train/tests/reference/gen_task_metrics.py` and, for keypoint
//! AP, `gen_keypoint_ap.py` beside it. They run the tools named above
//! (MMDetection 3.3.0 and MMPose 1.3.2: their own functions, loaded without
//! mmcv), except where a row says "convention".

pub mod classification;
mod coco;
pub mod detection;
pub mod keypoint_ap;
pub mod keypoints;
pub mod segmentation;
pub mod text;

pub use classification::{Average, ClassCounts, ClassReport, Prf, multilabel_prf, prf};
pub use detection::{BoxMap, CocoSummary, MaskMap, VocMap, VocSummary, box_map, mask_map, voc_map};
pub use keypoint_ap::{
    COCO_KEYPOINT_SIGMAS, KeypointAp, KeypointApSummary, PoseGroundTruth, PosePrediction,
    keypoint_ap, object_keypoint_similarity,
};
pub use keypoints::{Nme, Normalizer, Pck, PckScores, nme, pck};
pub use segmentation::{SegmentationCounts, SegmentationScores, segmentation_scores};
pub use text::{
    Bleu, BleuScore, BleuSmoothing, ChrF, ErrorRate, ErrorUnit, Perplexity, cer, corpus_bleu,
    levenshtein, perplexity, perplexity_from_mean_nll, tokenize_13a, wer,
};

use crate::error::{Result, TrainError};

/// A [`TrainError::Config`] for `key`.
pub(crate) fn bad(key: &str, reason: impl Into<String>) -> TrainError {
    TrainError::Config {
        key: key.into(),
        reason: reason.into(),
    }
}

/// `a` and `b` must have the same length.
pub(crate) fn same_len(key: &str, what_a: &str, a: usize, what_b: &str, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(bad(
            key,
            format!("{a} {what_a} but {b} {what_b}; they must pair up one to one"),
        ))
    }
}

/// `num / den`, or 0 where `den` is 0 (scikit-learn's `zero_division=0`).
pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 { num / den } else { 0.0 }
}
