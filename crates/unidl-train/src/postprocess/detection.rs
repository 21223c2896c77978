//! Object-detection post-processing: box decoding (anchor deltas as in
//! Faster R-CNN/RetinaNet/SSD, YOLO grids, or boxes already decoded), score
//! threshold, class-wise or class-agnostic NMS, the best
//! [`InferOptions::max_detections`], and boxes mapped back to the original
//! image through [`InferOptions::geometry`].
//!
//! Per sample: every box gets class scores (after the configured activation,
//! times the objectness when there is one); with `multi_label` each
//! (box, class) pair above `score_threshold` (strictly, as torchvision) is a
//! candidate, otherwise only the best class of each box. Candidates are
//! capped at `pre_nms_top_k`, mapped to original pixels and clipped, then
//! suppressed with [`batched_nms`] (or [`nms`] when `class_agnostic`).

use serde::{Deserialize, Serialize};
use unidl_tensor::Tensor;

use super::nms::{batched_nms, nms};
use super::{ImageGeometry, argmax, config_error, geometry_for, shape_error, sigmoid};
use crate::error::Result;
use crate::infer::{InferOptions, PostProcess};
use crate::outputs::Detection;

/// How the four box numbers of already-decoded outputs are laid out.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BoxFormat {
    /// `x0, y0, x1, y1`.
    #[default]
    Xyxy,
    /// `cx, cy, w, h`.
    Cxcywh,
    /// `x0, y0, w, h`.
    Xywh,
}

/// Activation turning raw class outputs (and objectness) into scores.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScoreActivation {
    /// Scores are used as given.
    #[default]
    None,
    /// Logistic sigmoid on every class score and on the objectness.
    Sigmoid,
    /// Softmax over the classes of each box (objectness, if any, used as given).
    Softmax,
}

/// The box parametrisation of a YOLO head.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum YoloVariant {
    /// YOLOv3: `xy = (σ(t) + cell) · stride`, `wh = exp(t) · anchor`.
    V3,
    /// YOLOv5: `xy = (2σ(t) − 0.5 + cell) · stride`, `wh = (2σ(t))² · anchor`.
    V5,
    /// YOLOX (anchor-free): `xy = (t + cell) · stride`, `wh = exp(t) · stride`.
    Yolox,
}

/// One output level of a YOLO head.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GridLevel {
    /// Input pixels per grid cell.
    pub stride: usize,
    /// Anchor `[width, height]`s in input pixels (empty for anchor-free heads).
    #[serde(default)]
    pub anchors: Vec<[f32; 2]>,
}

/// How boxes are encoded in the model output `[B, N, …]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BoxCoding {
    /// Already-decoded boxes: `[B, N, 4 + 1 + C]` with objectness or
    /// `[B, N, 4 + C]` without, in input pixels.
    Decoded {
        /// Layout of the four box numbers.
        #[serde(default)]
        format: BoxFormat,
        /// Whether column 4 is an objectness score.
        #[serde(default)]
        objectness: bool,
    },
    /// Regressions `(dx, dy, dw, dh)` against fixed anchors, `[B, N, 4 + C]`
    /// with `N` = number of anchors (torchvision `BoxCoder.decode_single`):
    /// `cx = dx / wx · w_a + cx_a`, `w = exp(min(dw / ww, clamp)) · w_a`.
    Anchors {
        /// Anchors `[x0, y0, x1, y1]` in input pixels, one per output row.
        anchors: Vec<[f32; 4]>,
        /// Weights `(wx, wy, ww, wh)` dividing the deltas (Faster R-CNN uses
        /// `(10, 10, 5, 5)`); default `(1, 1, 1, 1)`.
        #[serde(default)]
        weights: Option<[f32; 4]>,
        /// SSD-style variances multiplying the deltas (`(0.1, 0.1, 0.2, 0.2)`),
        /// the reciprocal of `weights`; give one of the two.
        #[serde(default)]
        variances: Option<[f32; 4]>,
        /// Upper clamp of the scaled `dw`, `dh` (default `ln(1000 / 16)`).
        #[serde(default = "default_clamp")]
        clamp: f32,
    },
    /// YOLO grid outputs `[B, N, 4 + 1 + C]` (`4 + C` without objectness),
    /// rows ordered level by level, then anchor, row, column (YOLOv5's
    /// `view(bs, na, ny, nx, no)` flattening). Grid sizes are
    /// `input_size / stride`.
    Grid {
        /// Box parametrisation.
        variant: YoloVariant,
        /// Network input `[height, width]`.
        input_size: [usize; 2],
        /// Output levels in the order of the rows.
        levels: Vec<GridLevel>,
        /// Whether column 4 is an objectness logit.
        #[serde(default = "yes")]
        objectness: bool,
    },
}

fn default_clamp() -> f32 {
    (1000.0f32 / 16.0).ln()
}
fn yes() -> bool {
    true
}

/// Configuration of [`DetectionPost`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// Box encoding of the outputs.
    pub coding: BoxCoding,
    /// Activation of class scores (and objectness).
    #[serde(default)]
    pub score_activation: ScoreActivation,
    /// A background class never reported (e.g. 0 for softmax heads);
    /// reported classes keep their output index.
    #[serde(default)]
    pub background_class: Option<usize>,
    /// Suppress across classes instead of within each class.
    #[serde(default)]
    pub class_agnostic: bool,
    /// Every class above the threshold is a candidate (else only the best).
    #[serde(default = "yes")]
    pub multi_label: bool,
    /// Keep at most this many candidates per sample before NMS.
    #[serde(default)]
    pub pre_nms_top_k: Option<usize>,
    /// Clip boxes to the original image (needs `geometry`).
    #[serde(default = "yes")]
    pub clip: bool,
}

impl DetectionConfig {
    /// A config for `coding` with the defaults.
    pub fn new(coding: BoxCoding) -> Self {
        DetectionConfig {
            coding,
            score_activation: ScoreActivation::None,
            background_class: None,
            class_agnostic: false,
            multi_label: true,
            pre_nms_top_k: None,
            clip: true,
        }
    }

    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<()> {
        if self.pre_nms_top_k == Some(0) {
            return Err(config_error(
                "detection.pre_nms_top_k",
                "must be at least 1",
            ));
        }
        match &self.coding {
            BoxCoding::Decoded { .. } => Ok(()),
            BoxCoding::Anchors {
                anchors,
                weights,
                variances,
                clamp,
            } => {
                if anchors.is_empty() {
                    return Err(config_error("detection.coding.anchors", "no anchors given"));
                }
                if let Some(i) = anchors.iter().position(|a| !(a[2] >= a[0] && a[3] >= a[1])) {
                    return Err(config_error(
                        "detection.coding.anchors",
                        format!(
                            "anchor {i} {:?} is not [x0, y0, x1, y1] with x0 <= x1, y0 <= y1",
                            anchors[i]
                        ),
                    ));
                }
                if weights.is_some() && variances.is_some() {
                    return Err(config_error(
                        "detection.coding.variances",
                        "give either weights or variances, not both",
                    ));
                }
                for (key, v) in [("weights", weights), ("variances", variances)] {
                    if let Some(v) = v
                        && v.iter().any(|x| !(x.is_finite() && *x > 0.0))
                    {
                        return Err(config_error(
                            &format!("detection.coding.{key}"),
                            format!("{v:?} must be positive"),
                        ));
                    }
                }
                if clamp.is_nan() {
                    return Err(config_error("detection.coding.clamp", "is NaN"));
                }
                Ok(())
            }
            BoxCoding::Grid {
                input_size, levels, ..
            } => {
                if levels.is_empty() {
                    return Err(config_error("detection.coding.levels", "no levels given"));
                }
                for (i, l) in levels.iter().enumerate() {
                    if l.stride == 0
                        || input_size[0] % l.stride != 0
                        || input_size[1] % l.stride != 0
                    {
                        return Err(config_error(
                            &format!("detection.coding.levels[{i}].stride"),
                            format!("{} does not divide input_size {:?}", l.stride, input_size),
                        ));
                    }
                    if l.anchors.iter().any(|a| !(a[0] > 0.0 && a[1] > 0.0)) {
                        return Err(config_error(
                            &format!("detection.coding.levels[{i}].anchors"),
                            "anchor sizes must be positive",
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Columns before the class scores (4 box numbers, plus objectness).
    fn leading(&self) -> usize {
        match &self.coding {
            BoxCoding::Decoded { objectness, .. } | BoxCoding::Grid { objectness, .. } => {
                4 + usize::from(*objectness)
            }
            BoxCoding::Anchors { .. } => 4,
        }
    }

    /// Rows the coding expects, if fixed.
    fn rows(&self) -> Option<usize> {
        match &self.coding {
            BoxCoding::Decoded { .. } => None,
            BoxCoding::Anchors { anchors, .. } => Some(anchors.len()),
            BoxCoding::Grid {
                input_size, levels, ..
            } => Some(
                levels
                    .iter()
                    .map(|l| {
                        l.anchors.len().max(1)
                            * (input_size[0] / l.stride)
                            * (input_size[1] / l.stride)
                    })
                    .sum(),
            ),
        }
    }
}

/// Detection post-processing → [`Detection`]s per sample, best first.
#[derive(Debug, Clone)]
pub struct DetectionPost {
    config: DetectionConfig,
}

impl DetectionPost {
    /// Validates `config`.
    pub fn new(config: DetectionConfig) -> Result<Self> {
        config.validate()?;
        Ok(DetectionPost { config })
    }

    /// The configuration.
    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    /// Decodes the boxes of one sample (`rows` of `width`) into input pixels `[x0, y0, x1, y1]`.
    fn decode_boxes(&self, rows: &[f32], width: usize) -> Vec<[f32; 4]> {
        let n = rows.len() / width;
        let row = |i: usize| &rows[i * width..i * width + 4];
        match &self.config.coding {
            BoxCoding::Decoded { format, .. } => (0..n)
                .map(|i| {
                    let r = row(i);
                    match format {
                        BoxFormat::Xyxy => [r[0], r[1], r[2], r[3]],
                        BoxFormat::Cxcywh => {
                            let (hw, hh) = (0.5 * r[2], 0.5 * r[3]);
                            [r[0] - hw, r[1] - hh, r[0] + hw, r[1] + hh]
                        }
                        BoxFormat::Xywh => [r[0], r[1], r[0] + r[2], r[1] + r[3]],
                    }
                })
                .collect(),
            BoxCoding::Anchors {
                anchors,
                weights,
                variances,
                clamp,
            } => (0..n)
                .map(|i| {
                    let (d, a) = (row(i), anchors[i]);
                    let scaled: [f32; 4] = match (weights, variances) {
                        (_, Some(v)) => [d[0] * v[0], d[1] * v[1], d[2] * v[2], d[3] * v[3]],
                        (Some(w), None) => [d[0] / w[0], d[1] / w[1], d[2] / w[2], d[3] / w[3]],
                        (None, None) => [d[0], d[1], d[2], d[3]],
                    };
                    let (aw, ah) = (a[2] - a[0], a[3] - a[1]);
                    let (acx, acy) = (a[0] + 0.5 * aw, a[1] + 0.5 * ah);
                    let cx = scaled[0] * aw + acx;
                    let cy = scaled[1] * ah + acy;
                    let w = scaled[2].min(*clamp).exp() * aw;
                    let h = scaled[3].min(*clamp).exp() * ah;
                    let (hw, hh) = (0.5 * w, 0.5 * h);
                    [cx - hw, cy - hh, cx + hw, cy + hh]
                })
                .collect(),
            BoxCoding::Grid {
                variant,
                input_size,
                levels,
                ..
            } => {
                let mut out = Vec::with_capacity(n);
                for l in levels {
                    let (gh, gw) = (input_size[0] / l.stride, input_size[1] / l.stride);
                    let s = l.stride as f32;
                    let anchors: Vec<[f32; 2]> = if l.anchors.is_empty() {
                        vec![[s, s]]
                    } else {
                        l.anchors.clone()
                    };
                    for anchor in &anchors {
                        for gy in 0..gh {
                            for gx in 0..gw {
                                let r = row(out.len());
                                let (cx, cy, w, h) = match variant {
                                    YoloVariant::V3 => (
                                        (sigmoid(r[0]) + gx as f32) * s,
                                        (sigmoid(r[1]) + gy as f32) * s,
                                        r[2].exp() * anchor[0],
                                        r[3].exp() * anchor[1],
                                    ),
                                    YoloVariant::V5 => (
                                        (sigmoid(r[0]) * 2.0 - 0.5 + gx as f32) * s,
                                        (sigmoid(r[1]) * 2.0 - 0.5 + gy as f32) * s,
                                        (sigmoid(r[2]) * 2.0).powi(2) * anchor[0],
                                        (sigmoid(r[3]) * 2.0).powi(2) * anchor[1],
                                    ),
                                    YoloVariant::Yolox => (
                                        (r[0] + gx as f32) * s,
                                        (r[1] + gy as f32) * s,
                                        r[2].exp() * s,
                                        r[3].exp() * s,
                                    ),
                                };
                                out.push([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h]);
                            }
                        }
                    }
                }
                out
            }
        }
    }

    /// Class scores of one sample `[n, classes]` after activation and objectness.
    fn scores(&self, rows: &[f32], width: usize) -> Vec<f32> {
        let lead = self.config.leading();
        let classes = width - lead;
        let has_obj = lead == 5;
        let mut out = Vec::with_capacity(rows.len() / width * classes);
        for r in rows.chunks(width) {
            let logits = &r[lead..];
            let obj = if has_obj {
                match self.config.score_activation {
                    ScoreActivation::Sigmoid => sigmoid(r[4]),
                    _ => r[4],
                }
            } else {
                1.0
            };
            match self.config.score_activation {
                ScoreActivation::None => out.extend(logits.iter().map(|v| v * obj)),
                ScoreActivation::Sigmoid => out.extend(logits.iter().map(|v| sigmoid(*v) * obj)),
                ScoreActivation::Softmax => {
                    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
                    let sum: f32 = e.iter().sum();
                    out.extend(e.iter().map(|v| v / sum * obj));
                }
            }
        }
        out
    }

    /// Detections of one sample.
    fn process_one(
        &self,
        rows: &[f32],
        width: usize,
        geometry: Option<ImageGeometry>,
        options: &InferOptions,
    ) -> Vec<Detection> {
        let cfg = &self.config;
        let classes = width - cfg.leading();
        let boxes = self.decode_boxes(rows, width);
        let scores = self.scores(rows, width);
        let allowed = |c: usize| cfg.background_class != Some(c);
        // candidates (box, class, score) in row-major order
        let mut cand: Vec<(usize, usize, f32)> = Vec::new();
        for (i, s) in scores.chunks(classes).enumerate() {
            if cfg.multi_label {
                for (c, &v) in s.iter().enumerate() {
                    if allowed(c) && f64::from(v) > options.score_threshold {
                        cand.push((i, c, v));
                    }
                }
            } else {
                let masked: Vec<f32> = s
                    .iter()
                    .enumerate()
                    .map(|(c, &v)| if allowed(c) { v } else { f32::NEG_INFINITY })
                    .collect();
                let c = argmax(&masked);
                if allowed(c) && f64::from(masked[c]) > options.score_threshold {
                    cand.push((i, c, masked[c]));
                }
            }
        }
        if let Some(k) = cfg.pre_nms_top_k
            && cand.len() > k
        {
            cand.sort_by(|a, b| b.2.total_cmp(&a.2));
            cand.truncate(k);
        }
        let cand_boxes: Vec<[f32; 4]> = cand
            .iter()
            .map(|&(i, _, _)| to_original(boxes[i], geometry, cfg.clip))
            .collect();
        let cand_scores: Vec<f32> = cand.iter().map(|c| c.2).collect();
        let cand_classes: Vec<usize> = cand.iter().map(|c| c.1).collect();
        let keep = if cfg.class_agnostic {
            nms(&cand_boxes, &cand_scores, options.iou_threshold)
        } else {
            batched_nms(
                &cand_boxes,
                &cand_scores,
                &cand_classes,
                options.iou_threshold,
            )
        };
        keep.into_iter()
            .take(options.max_detections)
            .map(|k| {
                let b = cand_boxes[k];
                Detection {
                    x0: b[0],
                    y0: b[1],
                    x1: b[2],
                    y1: b[3],
                    class: cand_classes[k],
                    score: cand_scores[k],
                }
            })
            .collect()
    }
}

/// An input-pixel box in original pixels, clipped to the image when asked.
fn to_original(b: [f32; 4], geometry: Option<ImageGeometry>, clip: bool) -> [f32; 4] {
    let Some(g) = geometry else { return b };
    let (w, h) = (g.original_width as f32, g.original_height as f32);
    let mut out = [
        g.x_to_original(f64::from(b[0])) as f32,
        g.y_to_original(f64::from(b[1])) as f32,
        g.x_to_original(f64::from(b[2])) as f32,
        g.y_to_original(f64::from(b[3])) as f32,
    ];
    if clip {
        out[0] = out[0].clamp(0.0, w);
        out[2] = out[2].clamp(0.0, w);
        out[1] = out[1].clamp(0.0, h);
        out[3] = out[3].clamp(0.0, h);
    }
    out
}

impl PostProcess for DetectionPost {
    type Output = Vec<Detection>;

    fn process(&self, outputs: &Tensor, options: &InferOptions) -> Result<Vec<Vec<Detection>>> {
        let shape = outputs.shape();
        let lead = self.config.leading();
        let expected = match &self.config.coding {
            BoxCoding::Anchors { .. } => "[batch, anchors, 4 + classes]",
            _ if lead == 5 => "[batch, boxes, 4 + 1 + classes]",
            _ => "[batch, boxes, 4 + classes]",
        };
        if shape.len() != 3 || shape[2] <= lead {
            return Err(shape_error("detection outputs", expected, shape));
        }
        if let Some(rows) = self.config.rows()
            && shape[1] != rows
        {
            return Err(shape_error(
                "detection outputs",
                &format!("{expected} with {rows} rows (from the anchors/levels)"),
                shape,
            ));
        }
        if let Some(bg) = self.config.background_class
            && bg >= shape[2] - lead
        {
            return Err(config_error(
                "detection.background_class",
                format!("{bg} is not one of the {} classes", shape[2] - lead),
            ));
        }
        let (batch, per) = (shape[0], shape[1] * shape[2]);
        let values = outputs.to_vec_f32()?;
        (0..batch)
            .map(|b| {
                let g = geometry_for(options, b, batch)?;
                Ok(self.process_one(&values[b * per..(b + 1) * per], shape[2], g, options))
            })
            .collect()
    }
}
