//! Task post-processing (§6.2.3.5 Post-a/Post-b, B.5): raw output tensors of
//! a batch → one meaningful structure per sample.
//!
//! Every processor implements [`PostProcess`](crate::PostProcess), is built
//! from a serde config (`deny_unknown_fields`, validated on construction with
//! [`TrainError::Config`] naming the key) and reports tensors of the wrong
//! layout as [`TrainError::Shape`]. All work happens on the host in f32/f64:
//! the outputs are small and these steps are sequential (NMS, beam search).
//!
//! | task | processor | input | output |
//! |---|---|---|---|
//! | detection | [`DetectionPost`] | `[B, N, 4 (+1) + C]` or anchor deltas or YOLO grids | [`Detection`](crate::outputs::Detection) |
//! | semantic segmentation | [`SemanticSegmentation`] | logits `[B, C, h, w]` | [`ClassMap`](crate::outputs::ClassMap) |
//! | instance segmentation | [`InstanceSegmentation`] | `[B, N, 6 + h·w]` boxes, scores, classes, mask logits | [`InstanceMask`](crate::outputs::InstanceMask) |
//! | keypoints | [`HeatmapKeypoints`], [`RegressionKeypoints`] | heatmaps `[B, K, h, w]`, coordinates `[B, 2K]` | [`PredictedKeypoint`](crate::outputs::PredictedKeypoint) |
//! | text | [`TextDecoding`], [`Similarity`] | ids `[B, T]` / logits `[B, T, V]`, embeddings `[B, D]` | [`DecodedSequence`](crate::outputs::DecodedSequence), [`Neighbour`] |
//! | speech (CTC) | [`CtcDecoding`] | log-probs `[B, T, V]` or `[T, B, V]` | [`DecodedSequence`](crate::outputs::DecodedSequence) |
//!
//! Boxes, masks and keypoints come out in the pixels of the original image
//! when [`InferOptions::geometry`](crate::InferOptions) says how each sample
//! was resized or letterboxed ([`ImageGeometry`]); otherwise in network-input
//! pixels.

pub mod ctc;
pub mod detection;
pub mod keypoints;
pub mod nms;
pub mod segmentation;
pub mod text;

pub use ctc::{CtcConfig, CtcDecoding, CtcLayout, CtcMethod, ctc_greedy, ctc_prefix_beam_search};
pub use detection::{
    BoxCoding, BoxFormat, DetectionConfig, DetectionPost, GridLevel, ScoreActivation, YoloVariant,
};
pub use keypoints::{
    HeatmapConfig, HeatmapKeypoints, HeatmapRefinement, RegressionConfig, RegressionKeypoints,
};
pub use nms::{batched_nms, box_iou, nms};
pub use segmentation::{
    InstanceConfig, InstanceSegmentation, SegmentationConfig, SemanticSegmentation, paste_mask,
    resize_bilinear,
};
pub use text::{
    Neighbour, Similarity, SimilarityConfig, TextConfig, TextDecoding, Vocabulary,
    cosine_similarity_matrix,
};

use crate::error::{Result, TrainError};
pub use crate::geometry::ImageGeometry;
pub(crate) use crate::geometry::{check_unit, config_error};
use crate::infer::InferOptions;

/// The geometry of sample `index` of a batch of `batch`: one entry applies to
/// every sample, otherwise there must be one per sample.
pub fn geometry_for(
    options: &InferOptions,
    index: usize,
    batch: usize,
) -> Result<Option<ImageGeometry>> {
    match options.geometry.len() {
        0 => Ok(None),
        1 => Ok(Some(options.geometry[0])),
        n if n == batch => Ok(Some(options.geometry[index])),
        n => Err(config_error(
            "infer.geometry",
            format!(
                "{n} entries for a batch of {batch}: give one for all samples or one per sample"
            ),
        )),
    }
}

pub(crate) fn shape_error(what: &str, expected: &str, got: &[usize]) -> TrainError {
    TrainError::Shape {
        what: what.into(),
        expected: expected.into(),
        got: got.to_vec(),
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Log-softmax of each row of `values` (rows of `width`), in f64.
pub(crate) fn log_softmax_rows(values: &[f64], width: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    for row in values.chunks(width) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|v| v - lse));
    }
    out
}

/// Index of the first maximum (NaN never wins).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] || row[best].is_nan() {
            best = i;
        }
    }
    best
}
