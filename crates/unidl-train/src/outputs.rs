//! Structured task outputs shared by post-processing (§6.2.3.5, Post-b) and
//! evaluation (B.6): what a detector, segmenter, keypoint model or sequence
//! model returns per sample once its raw tensors are decoded.

use serde::Serialize;

/// One detected object: a box in input-image pixels (`x0, y0` top-left,
/// `x1, y1` bottom-right), its class and confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detection {
    /// Left.
    pub x0: f32,
    /// Top.
    pub y0: f32,
    /// Right.
    pub x1: f32,
    /// Bottom.
    pub y1: f32,
    /// Class index.
    pub class: usize,
    /// Confidence in [0, 1].
    pub score: f32,
}

impl Detection {
    /// Box area (0 for degenerate boxes).
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// Intersection over union with another box.
    pub fn iou(&self, other: &Detection) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// A per-pixel class map (semantic segmentation), row-major `height × width`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMap {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Class index per pixel.
    pub classes: Vec<u32>,
}

/// One segmented instance: its detection and a binary mask the size of the input image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceMask {
    /// Box, class and score.
    pub detection: Detection,
    /// Width of the mask.
    pub width: usize,
    /// Height of the mask.
    pub height: usize,
    /// Row-major 0/1 values.
    pub mask: Vec<u8>,
}

/// A predicted keypoint in input-image pixels with its confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PredictedKeypoint {
    /// x.
    pub x: f32,
    /// y.
    pub y: f32,
    /// Confidence (heatmap peak, or 1 for regression).
    pub score: f32,
}

/// A decoded token sequence: ids and, when a vocabulary is known, the text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodedSequence {
    /// Token ids after decoding (CTC blanks and repeats removed, special tokens dropped).
    pub ids: Vec<u32>,
    /// The text, when a vocabulary or tokenizer was given.
    pub text: Option<String>,
    /// Log-probability of the sequence under the model (sum over steps).
    pub log_prob: f64,
}
