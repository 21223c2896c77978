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

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::infer::InferOptions;

/// How one sample's original image became the network input:
/// `input = original · scale + pad` per axis (the inverse is applied to
/// boxes, masks and keypoints).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageGeometry {
    /// Width of the original image in pixels.
    pub original_width: usize,
    /// Height of the original image in pixels.
    pub original_height: usize,
    /// Horizontal scale from original to input pixels.
    #[serde(default = "one")]
    pub scale_x: f64,
    /// Vertical scale from original to input pixels.
    #[serde(default = "one")]
    pub scale_y: f64,
    /// Padding added on the left, in input pixels.
    #[serde(default)]
    pub pad_x: f64,
    /// Padding added on the top, in input pixels.
    #[serde(default)]
    pub pad_y: f64,
}

fn one() -> f64 {
    1.0
}

impl ImageGeometry {
    /// The identity: the original image is the input.
    pub fn identity(width: usize, height: usize) -> Self {
        ImageGeometry {
            original_width: width,
            original_height: height,
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
        }
    }

    /// A plain resize of a `width × height` image to `input_width × input_height`.
    pub fn resize(width: usize, height: usize, input_width: usize, input_height: usize) -> Self {
        ImageGeometry {
            original_width: width,
            original_height: height,
            scale_x: input_width as f64 / width as f64,
            scale_y: input_height as f64 / height as f64,
            pad_x: 0.0,
            pad_y: 0.0,
        }
    }

    /// A letterbox: scale to fit keeping the aspect ratio, centred with the
    /// padding floored — exactly what `unidl_data`'s `Resize { keep_ratio: true }` does.
    pub fn letterbox(width: usize, height: usize, input_width: usize, input_height: usize) -> Self {
        let s = (input_width as f32 / width as f32).min(input_height as f32 / height as f32);
        let (nw, nh) = (width as f32 * s, height as f32 * s);
        ImageGeometry {
            original_width: width,
            original_height: height,
            scale_x: f64::from(s),
            scale_y: f64::from(s),
            pad_x: f64::from(((input_width as f32 - nw) / 2.0).floor()),
            pad_y: f64::from(((input_height as f32 - nh) / 2.0).floor()),
        }
    }

    /// Input-pixel x → original-pixel x.
    pub fn x_to_original(&self, x: f64) -> f64 {
        (x - self.pad_x) / self.scale_x
    }

    /// Input-pixel y → original-pixel y.
    pub fn y_to_original(&self, y: f64) -> f64 {
        (y - self.pad_y) / self.scale_y
    }

    /// Checks that sizes are non-zero and scales positive and finite.
    pub fn validate(&self, key: &str) -> Result<()> {
        if self.original_width == 0 || self.original_height == 0 {
            return Err(config_error(
                key,
                "original_width/original_height must be at least 1",
            ));
        }
        for (name, v) in [("scale_x", self.scale_x), ("scale_y", self.scale_y)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(config_error(
                    &format!("{key}.{name}"),
                    format!("{v} is not a positive number"),
                ));
            }
        }
        for (name, v) in [("pad_x", self.pad_x), ("pad_y", self.pad_y)] {
            if !v.is_finite() {
                return Err(config_error(
                    &format!("{key}.{name}"),
                    format!("{v} is not finite"),
                ));
            }
        }
        Ok(())
    }
}

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

pub(crate) fn config_error(key: &str, reason: impl Into<String>) -> TrainError {
    TrainError::Config {
        key: key.into(),
        reason: reason.into(),
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

/// Validates a probability threshold in [0, 1].
pub(crate) fn check_unit(key: &str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(config_error(key, format!("{v} is outside [0, 1]")))
    }
}
