//! # YOLOv8 (Jocher, Chaurasia and Qiu, Ultralytics YOLOv8, 2023)
//!
//! The anchor-free detector of ultralytics' `yolov8.yaml` at every scale
//! (n, s, m, l, x, or a custom depth/width): a CSP backbone of strided
//! `Conv`s and `C2f` blocks with `SPPF`, a PAN neck (nearest upsampling,
//! concatenation, `C2f`), and the decoupled `Detect` head on strides 8, 16
//! and 32 — per cell `4 × reg_max` distance-bin logits (left, top, right,
//! bottom, decoded by the DFL expectation) and one logit per class. The
//! losses are ultralytics' `v8DetectionLoss`: the task-aligned assigner
//! ([`assign`]: candidates whose centre lies in the box, tiny boxes grown
//! to 16 px, metric `score^0.5 · CIoU^6`, top 10 per box, an anchor
//! claimed by several boxes keeping the one it overlaps most, soft targets
//! normalised per box), binary cross entropy on the classes, CIoU and DFL
//! on the assigned boxes, gains 7.5 / 0.5 / 1.5, all divided by the sum of
//! the soft targets. Post-processing is ultralytics' `non_max_suppression`
//! with the best class per cell (confidence 0.25, IoU 0.7, 300 per image).
//!
//! Written from the architecture's description; ultralytics 8.4.190 (AGPL)
//! only produces reference numbers in `tests/reference/gen_yolov8.py`.
//! Parameter names are ultralytics' (`model.{i}.…`, see
//! [`TorchvisionNames`](crate::torchvision::TorchvisionNames) for `YoloV8`).
//!
//! Input: images in `[0, 1]`, resized so that the longer side is `imgsz`
//! (unless `transform.resize = false`) and padded at the bottom and right to
//! multiples of 32 with grey 114/255 — ultralytics centres its letterbox;
//! the boxes map back either way. Classes are the task's `0..K` (no
//! background class).

mod assign;
mod blocks;

use burn::module::Module;
use burn::tensor::activation::{log_softmax, relu, sigmoid};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_tensor::trace;
use unidl_train::ObjectTargets;
use unidl_train::outputs::Detection;

pub use assign::{Assignment, assign, ciou};
pub use blocks::{Bottleneck, C2f, ConvBnSilu, Dfl, HeadBranch, Sppf};

use super::layout::{check_images, host_values};
use super::targets::check_targets;
use super::transform::{DetectionTransform, DetectionTransformConfig, TransformedSize};
use crate::error::{Result, VisionError, positive, unit_interval};

/// Strides of the three output levels.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// YOLOv8 configuration; defaults are ultralytics' YOLOv8n for 80 classes.
///
/// ```toml
/// num_classes = 80
/// scale = "n"            # n, s, m, l, x
/// # depth = 0.33; width = 0.25; max_channels = 1024   # a custom scale instead
/// [transform]
/// min_size = 640         # imgsz: the longer side after resizing
/// max_size = 640
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YoloV8Config {
    /// Classes (no background class).
    pub num_classes: usize,
    /// `n`, `s`, `m`, `l` or `x` (ultralytics' compound scales).
    pub scale: String,
    /// Depth multiple overriding the scale's.
    pub depth: Option<f64>,
    /// Width multiple overriding the scale's.
    pub width: Option<f64>,
    /// Channel cap overriding the scale's.
    pub max_channels: Option<usize>,
    /// Distance bins per box side (16).
    pub reg_max: usize,
    /// The input transform: no normalisation, longer side to `max_size`,
    /// padding to multiples of 32 with 114/255.
    pub transform: DetectionTransformConfig,
    /// Detections below this confidence are dropped (0.25).
    pub conf_thres: f32,
    /// IoU above which NMS suppresses a detection of the same class (0.7).
    pub iou_thres: f32,
    /// Detections kept per image (300).
    pub max_det: usize,
    /// Candidates per box in the assigner (10).
    pub tal_topk: usize,
    /// Loss gains: CIoU (7.5), classification (0.5), DFL (1.5).
    pub gains: [f32; 3],
}

/// YOLO's transform: longer side to `imgsz`, no normalisation, padding to
/// multiples of 32 with 114/255.
pub fn yolo_transform(imgsz: usize) -> DetectionTransformConfig {
    DetectionTransformConfig {
        min_size: imgsz,
        max_size: imgsz,
        image_mean: vec![0.0; 3],
        image_std: vec![1.0; 3],
        resize: true,
        size_divisible: 32,
        fixed_size: None,
        pad_value: 114.0 / 255.0,
    }
}

impl Default for YoloV8Config {
    fn default() -> Self {
        YoloV8Config {
            num_classes: 80,
            scale: "n".into(),
            depth: None,
            width: None,
            max_channels: None,
            reg_max: 16,
            transform: yolo_transform(640),
            conf_thres: 0.25,
            iou_thres: 0.7,
            max_det: 300,
            tal_topk: 10,
            gains: [7.5, 0.5, 1.5],
        }
    }
}

/// `make_divisible(x, 8)`: the smallest multiple of 8 at least `x`.
fn divisible8(x: f64) -> usize {
    ((x / 8.0).ceil() * 8.0) as usize
}

/// Python's `round` (half to even) of a non-negative value.
fn round_half_even(x: f64) -> usize {
    x.round_ties_even() as usize
}

/// The non-learnt parts of a [`YoloV8`].
#[derive(Debug, Clone, PartialEq)]
pub struct YoloV8Settings {
    /// The configuration it was built from.
    pub config: YoloV8Config,
    /// Input transform.
    pub transform: DetectionTransform,
}

impl YoloV8Config {
    /// YOLOv8 at `scale` for `num_classes` classes.
    pub fn new(scale: &str, num_classes: usize) -> Self {
        YoloV8Config {
            num_classes,
            scale: scale.into(),
            ..YoloV8Config::default()
        }
    }

    /// `(depth, width, max_channels)` of the scale, with the overrides.
    pub fn multiples(&self) -> Result<(f64, f64, usize)> {
        let (d, w, m) = match self.scale.as_str() {
            "n" => (0.33, 0.25, 1024),
            "s" => (0.33, 0.50, 1024),
            "m" => (0.67, 0.75, 768),
            "l" => (1.00, 1.00, 512),
            "x" => (1.00, 1.25, 512),
            other => {
                return Err(VisionError::Config {
                    key: "scale".into(),
                    reason: format!("`{other}` is not one of n, s, m, l, x"),
                });
            }
        };
        let (d, w, m) = (
            self.depth.unwrap_or(d),
            self.width.unwrap_or(w),
            self.max_channels.unwrap_or(m),
        );
        if !(d.is_finite() && d > 0.0 && w.is_finite() && w > 0.0) || m == 0 {
            return Err(VisionError::Config {
                key: "width".into(),
                reason: format!("depth {d}, width {w}, max_channels {m}: all must be positive"),
            });
        }
        Ok((d, w, m))
    }

    /// Builds the model with ultralytics' initialisation (PyTorch's default
    /// convolution init, box biases 2, class biases `ln(5 / K / (640/s)²)`).
    /// Invalid values are [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<YoloV8> {
        positive("num_classes", self.num_classes)?;
        positive("max_det", self.max_det)?;
        positive("tal_topk", self.tal_topk)?;
        if self.reg_max < 2 {
            return Err(VisionError::Config {
                key: "reg_max".into(),
                reason: format!("{}: the DFL head needs at least 2 bins", self.reg_max),
            });
        }
        unit_interval("conf_thres", self.conf_thres)?;
        unit_interval("iou_thres", self.iou_thres)?;
        if !self.transform.size_divisible.is_multiple_of(32) {
            return Err(VisionError::Config {
                key: "transform.size_divisible".into(),
                reason: format!(
                    "{}: the stride-32 level needs a multiple of 32",
                    self.transform.size_divisible
                ),
            });
        }
        let (d, w, m) = self.multiples()?;
        let ch = |c: usize| divisible8(c.min(m) as f64 * w);
        let n = |k: usize| {
            if k > 1 {
                round_half_even(k as f64 * d).max(1)
            } else {
                k
            }
        };
        let dv = device;
        let (c64, c128, c256, c512, c1024) = (ch(64), ch(128), ch(256), ch(512), ch(1024));
        let m12 = C2f::new(c1024 + c512, c512, n(3), false, dv);
        let m15 = C2f::new(c512 + c256, c256, n(3), false, dv);
        let m18 = C2f::new(c256 + c512, c512, n(3), false, dv);
        let m21 = C2f::new(c512 + c1024, c1024, n(3), false, dv);
        let head_ch = [c256, c512, c1024];
        let nc = self.num_classes;
        let r = self.reg_max;
        let c2 = 16usize.max(head_ch[0] / 4).max(4 * r);
        let c3 = head_ch[0].max(nc.min(100));
        let m22 = Detect {
            cv2: head_ch
                .iter()
                .map(|&c| HeadBranch::new(c, c2, 4 * r, 2.0, dv))
                .collect(),
            cv3: head_ch
                .iter()
                .zip(STRIDES)
                .map(|(&c, s)| {
                    let b = (5.0 / nc as f64 / (640.0 / s as f64).powi(2)).ln() as f32;
                    HeadBranch::new(c, c3, nc, b, dv)
                })
                .collect(),
            dfl: Dfl::new(r, dv),
        };
        Ok(YoloV8 {
            m0: ConvBnSilu::new([3, c64], 3, 2, dv),
            m1: ConvBnSilu::new([c64, c128], 3, 2, dv),
            m2: C2f::new(c128, c128, n(3), true, dv),
            m3: ConvBnSilu::new([c128, c256], 3, 2, dv),
            m4: C2f::new(c256, c256, n(6), true, dv),
            m5: ConvBnSilu::new([c256, c512], 3, 2, dv),
            m6: C2f::new(c512, c512, n(6), true, dv),
            m7: ConvBnSilu::new([c512, c1024], 3, 2, dv),
            m8: C2f::new(c1024, c1024, n(3), true, dv),
            m9: Sppf::new(c1024, c1024, dv),
            m12,
            m15,
            m16: ConvBnSilu::new([c256, c256], 3, 2, dv),
            m18,
            m19: ConvBnSilu::new([c512, c512], 3, 2, dv),
            m21,
            m22,
            settings: YoloV8Settings {
                config: self.clone(),
                transform: self.transform.init()?,
            },
        })
    }
}

/// The decoupled head (ultralytics `Detect`: `cv2` boxes, `cv3` classes, `dfl`).
#[derive(Module, Debug)]
pub struct Detect {
    /// Distance-bin branches, one per level.
    pub cv2: Vec<HeadBranch>,
    /// Class branches, one per level.
    pub cv3: Vec<HeadBranch>,
    /// The DFL projection.
    pub dfl: Dfl,
}

/// YOLOv8. Build it with [`YoloV8Config::init`]. Fields are named by
/// ultralytics' layer index (`m{i}` ↔ `model.{i}`; 10, 11, 13, 14, 17, 20
/// are parameter-free upsampling and concatenation).
#[derive(Module, Debug)]
#[allow(missing_docs)]
pub struct YoloV8 {
    pub m0: ConvBnSilu,
    pub m1: ConvBnSilu,
    pub m2: C2f,
    pub m3: ConvBnSilu,
    pub m4: C2f,
    pub m5: ConvBnSilu,
    pub m6: C2f,
    pub m7: ConvBnSilu,
    pub m8: C2f,
    pub m9: Sppf,
    pub m12: C2f,
    pub m15: C2f,
    pub m16: ConvBnSilu,
    pub m18: C2f,
    pub m19: ConvBnSilu,
    pub m21: C2f,
    pub m22: Detect,
    /// Transform and thresholds.
    #[module(skip)]
    pub settings: YoloV8Settings,
}

/// The raw outputs of [`YoloV8::forward`].
#[derive(Debug, Clone)]
pub struct YoloV8Output {
    /// The maps the head reads (P3, P4, P5).
    pub features: Vec<Tensor<4>>,
    /// Distance-bin logits, `[B, 4·reg_max, A]`.
    pub boxes: Tensor<3>,
    /// Class logits, `[B, K, A]`.
    pub scores: Tensor<3>,
    /// Cell centres in grid units, `A` of them, level by level.
    pub anchor_points: Vec<[f32; 2]>,
    /// The stride of each cell.
    pub strides: Vec<f32>,
    /// The sizes before and after the transform.
    pub size: TransformedSize,
}

/// The three training losses, `[1]` each, after their gains.
#[derive(Debug, Clone)]
pub struct YoloV8Losses {
    /// `1 − CIoU` of the assigned cells (`box`).
    pub box_loss: Tensor<1>,
    /// Binary cross entropy against the soft targets (`cls`).
    pub cls: Tensor<1>,
    /// Distribution focal loss (`dfl`).
    pub dfl: Tensor<1>,
}

fn up2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]),
    )
}

impl YoloV8 {
    /// Classes `K`.
    pub fn num_classes(&self) -> usize {
        self.settings.config.num_classes
    }

    /// Transform, backbone, neck and head. Records `p3`, `p4`, `p5`.
    ///
    /// # Shapes
    /// images `[B, 3, H, W]` → `boxes [B, 4·reg_max, A]`, `scores [B, K, A]`,
    /// `A = Σ_s (H_p/s)(W_p/s)` over strides 8, 16, 32 of the padded input.
    pub fn forward(&self, images: Tensor<4>) -> Result<YoloV8Output> {
        check_images("YoloV8", &images, 3)?;
        let (x, size) = self.settings.transform.apply(images)?;
        let x = self.m1.forward(self.m0.forward(x));
        let x = self.m3.forward(self.m2.forward(x));
        let x4 = self.m4.forward(x); // P3/8
        let x6 = self.m6.forward(self.m5.forward(x4.clone())); // P4/16
        let x9 = self
            .m9
            .forward(self.m8.forward(self.m7.forward(x6.clone()))); // P5/32
        let x12 = self.m12.forward(Tensor::cat(vec![up2(x9.clone()), x6], 1));
        let x15 = self.m15.forward(Tensor::cat(vec![up2(x12.clone()), x4], 1));
        let x18 = self
            .m18
            .forward(Tensor::cat(vec![self.m16.forward(x15.clone()), x12], 1));
        let x21 = self
            .m21
            .forward(Tensor::cat(vec![self.m19.forward(x18.clone()), x9], 1));
        let features = vec![x15, x18, x21];
        for (name, f) in ["p3", "p4", "p5"].iter().zip(&features) {
            trace::record(name, &f.dims());
        }
        let d = &self.m22;
        let flat = |y: Tensor<4>| {
            let [b, c, h, w] = y.dims();
            y.reshape([b, c, h * w])
        };
        let boxes = Tensor::cat(
            features
                .iter()
                .zip(&d.cv2)
                .map(|(f, br)| flat(br.forward(f.clone())))
                .collect(),
            2,
        );
        let scores = Tensor::cat(
            features
                .iter()
                .zip(&d.cv3)
                .map(|(f, br)| flat(br.forward(f.clone())))
                .collect(),
            2,
        );
        let mut anchor_points = Vec::new();
        let mut strides = Vec::new();
        for (f, s) in features.iter().zip(STRIDES) {
            let [_, _, h, w] = f.dims();
            for y in 0..h {
                for x in 0..w {
                    anchor_points.push([x as f32 + 0.5, y as f32 + 0.5]);
                    strides.push(s as f32);
                }
            }
        }
        Ok(YoloV8Output {
            features,
            boxes,
            scores,
            anchor_points,
            strides,
            size,
        })
    }

    /// ultralytics' eval-mode output: boxes `(cx, cy, w, h)` in pixels of
    /// the transformed image from the DFL expectation, then sigmoid class
    /// scores.
    ///
    /// # Shapes
    /// `[B, 4 + K, A]`.
    pub fn decode(&self, out: &YoloV8Output) -> Tensor<3> {
        let device = out.boxes.device();
        let dist = self.m22.dfl.forward(out.boxes.clone()); // [B, 4, A]
        let a = out.anchor_points.len();
        let pts: Vec<f32> = out
            .anchor_points
            .iter()
            .flat_map(|p| [p[0], p[1]])
            .collect();
        let anchors = Tensor::<2>::from_data(TensorData::new(pts, [a, 2]), &device)
            .transpose()
            .reshape([1, 2, a]); // [1, 2, A]
        let stride = Tensor::<1>::from_data(TensorData::new(out.strides.clone(), [a]), &device)
            .reshape([1, 1, a]);
        let lt = dist.clone().narrow(1, 0, 2);
        let rb = dist.narrow(1, 2, 2);
        let x1y1 = anchors.clone() - lt;
        let x2y2 = anchors + rb;
        let c = (x1y1.clone() + x2y2.clone()).div_scalar(2.0);
        let wh = x2y2 - x1y1;
        let dbox = Tensor::cat(vec![c, wh], 1) * stride; // [B, 4, A]
        Tensor::cat(vec![dbox, sigmoid(out.scores.clone())], 1)
    }

    /// ultralytics' `non_max_suppression` (best class per cell, class-wise
    /// NMS through coordinate offsets of 7680 px as it does, at most 30,000
    /// candidates) on [`decode`](Self::decode)'s output; boxes mapped back
    /// to input pixels.
    pub fn postprocess(&self, out: &YoloV8Output) -> Result<Vec<Vec<Detection>>> {
        let y = self.decode(out);
        let [b, c, a] = y.dims();
        let k = c - 4;
        let v = host_values(&y, "YoloV8", "decoded output")?;
        let cfg = &self.settings.config;
        let mut all = Vec::with_capacity(b);
        for i in 0..b {
            let at = |row: usize, j: usize| v[(i * c + row) * a + j];
            let mut cand: Vec<([f32; 4], f32, usize)> = Vec::new();
            for j in 0..a {
                let (mut best, mut score) = (0, at(4, j));
                for cl in 1..k {
                    let s = at(4 + cl, j);
                    if s > score {
                        best = cl;
                        score = s;
                    }
                }
                if score > cfg.conf_thres {
                    let (cx, cy, w, h) = (at(0, j), at(1, j), at(2, j) / 2.0, at(3, j) / 2.0);
                    cand.push(([cx - w, cy - h, cx + w, cy + h], score, best));
                }
            }
            if cand.len() > 30_000 {
                cand.sort_by(|x, y| y.1.total_cmp(&x.1));
                cand.truncate(30_000);
            }
            let offset: Vec<[f32; 4]> = cand
                .iter()
                .map(|(bx, _, cl)| {
                    let o = *cl as f32 * 7680.0;
                    [bx[0] + o, bx[1] + o, bx[2] + o, bx[3] + o]
                })
                .collect();
            let scores: Vec<f32> = cand.iter().map(|x| x.1).collect();
            let keep = unidl_train::postprocess::nms(&offset, &scores, f64::from(cfg.iou_thres));
            all.push(
                keep.into_iter()
                    .take(cfg.max_det)
                    .map(|j| {
                        let [x0, y0, x1, y1] = out.size.to_original(cand[j].0);
                        Detection {
                            x0,
                            y0,
                            x1,
                            y1,
                            class: cand[j].2,
                            score: cand[j].1,
                        }
                    })
                    .collect(),
            );
        }
        Ok(all)
    }

    /// Transform, network and post-processing.
    pub fn predict(&self, images: Tensor<4>) -> Result<Vec<Vec<Detection>>> {
        let out = self.forward(images)?;
        self.postprocess(&out)
    }

    /// ultralytics' `v8DetectionLoss` terms (after their gains, not
    /// multiplied by the batch size) against one [`ObjectTargets`] per
    /// image, boxes in input pixels, classes `0..K`.
    pub fn losses(&self, out: &YoloV8Output, targets: &[ObjectTargets]) -> Result<YoloV8Losses> {
        let [b, k, a] = out.scores.dims();
        check_targets("YoloV8", &[b, k, a], targets, b, k)?;
        let device = out.scores.device();
        let cfg = &self.settings.config;
        let r = cfg.reg_max;
        // predictions [B, A, 4·r] and [B, A, K]
        let pred_dist = out.boxes.clone().swap_dims(1, 2); // [B, A, 4r]
        let pred_scores = out.scores.clone().swap_dims(1, 2); // [B, A, K]
        // decoded boxes in grid units, xyxy: [B, A, 4]
        let proj = Tensor::<1, Int>::arange(0..r as i64, &device)
            .float()
            .reshape([1, 1, 1, r]);
        let dist = (burn::tensor::activation::softmax(pred_dist.clone().reshape([b, a, 4, r]), 3)
            * proj)
            .sum_dim(3)
            .reshape([b, a, 4]);
        let pts: Vec<f32> = out
            .anchor_points
            .iter()
            .flat_map(|p| [p[0], p[1]])
            .collect();
        let anchors =
            Tensor::<2>::from_data(TensorData::new(pts, [a, 2]), &device).reshape([1, a, 2]);
        let pred_boxes = Tensor::cat(
            vec![
                anchors.clone() - dist.clone().narrow(2, 0, 2),
                anchors + dist.narrow(2, 2, 2),
            ],
            2,
        ); // [B, A, 4]
        // assignment on the host, in pixels
        let scores_host = host_values(&sigmoid(pred_scores.clone()), "YoloV8", "scores")?;
        let boxes_host = host_values(&pred_boxes, "YoloV8", "boxes")?;
        let mut target_scores = vec![0f32; b * a * k];
        let mut fg_rows: Vec<i64> = Vec::new();
        let mut fg_boxes: Vec<f32> = Vec::new(); // grid units
        let mut fg_weight: Vec<f32> = Vec::new();
        let mut dfl_lo: Vec<i64> = Vec::new();
        let mut dfl_w: Vec<f32> = Vec::new(); // (wl, wr) per side
        for (i, t) in targets.iter().enumerate() {
            let gt: Vec<[f32; 4]> = t.boxes.iter().map(|&bx| out.size.to_resized(bx)).collect();
            let pd: Vec<[f32; 4]> = (0..a)
                .map(|j| {
                    let s = out.strides[j];
                    let p = &boxes_host[(i * a + j) * 4..(i * a + j) * 4 + 4];
                    [p[0] * s, p[1] * s, p[2] * s, p[3] * s]
                })
                .collect();
            let centres: Vec<[f32; 2]> = (0..a)
                .map(|j| {
                    let s = out.strides[j];
                    [out.anchor_points[j][0] * s, out.anchor_points[j][1] * s]
                })
                .collect();
            let asg = assign(
                &scores_host[i * a * k..(i + 1) * a * k],
                &pd,
                &centres,
                &gt,
                &t.classes,
                k,
                cfg.tal_topk,
                STRIDES[1] as f32,
            );
            for j in 0..a {
                let Some(g) = asg.gt[j] else { continue };
                let norm = asg.norm[j];
                target_scores[(i * a + j) * k + t.classes[g]] = norm;
                let s = out.strides[j];
                let tb = [gt[g][0] / s, gt[g][1] / s, gt[g][2] / s, gt[g][3] / s];
                fg_rows.push((i * a + j) as i64);
                fg_boxes.extend(tb);
                fg_weight.push(norm);
                // bbox2dist, clamped to [0, r − 1 − 0.01]
                let [px, py] = out.anchor_points[j];
                let hi = r as f32 - 1.0 - 0.01;
                for d in [px - tb[0], py - tb[1], tb[2] - px, tb[3] - py] {
                    let d = d.clamp(0.0, hi);
                    let lo = d.floor();
                    let wl = lo + 1.0 - d;
                    dfl_lo.push(lo as i64);
                    dfl_w.extend([wl, 1.0 - wl]);
                }
            }
        }
        let tss = target_scores.iter().sum::<f32>().max(1.0);
        let ts = Tensor::<3>::from_data(TensorData::new(target_scores, [b, a, k]), &device);
        // BCE with logits, summed
        let x = pred_scores;
        let bce = relu(x.clone()) - x.clone() * ts + x.abs().neg().exp().log1p();
        let cls = bce.sum().div_scalar(tss).mul_scalar(cfg.gains[1]);
        let f = fg_rows.len();
        let (box_loss, dfl) = if f == 0 {
            let zero = out.boxes.clone().sum().mul_scalar(0.0);
            (zero.clone(), zero)
        } else {
            let rows = Tensor::<1, Int>::from_data(TensorData::new(fg_rows, [f]), &device);
            let w = Tensor::<1>::from_data(TensorData::new(fg_weight, [f]), &device);
            let pb = pred_boxes.reshape([b * a, 4]).select(0, rows.clone()); // [F, 4]
            let tb = Tensor::<2>::from_data(TensorData::new(fg_boxes, [f, 4]), &device);
            let iou = ciou(pb, tb); // [F]
            let box_loss = ((iou.neg().add_scalar(1.0)) * w.clone())
                .sum()
                .div_scalar(tss)
                .mul_scalar(cfg.gains[0]);
            // DFL: −(log p[lo]·wl + log p[lo+1]·wr), mean over the 4 sides
            let logp = log_softmax(
                pred_dist
                    .reshape([b * a, 4 * r])
                    .select(0, rows)
                    .reshape([f * 4, r]),
                1,
            );
            let bins = Tensor::<1, Int>::arange(0..r as i64, &device).reshape([1, r]);
            let lo = Tensor::<1, Int>::from_data(TensorData::new(dfl_lo, [f * 4]), &device)
                .reshape([f * 4, 1]);
            let wts = Tensor::<2>::from_data(TensorData::new(dfl_w, [f * 4, 2]), &device);
            let pick_lo = lo.clone().equal(bins.clone()).float() * wts.clone().narrow(1, 0, 1);
            let pick_hi = lo.add_scalar(1).equal(bins).float() * wts.narrow(1, 1, 1);
            let per_side = ((pick_lo + pick_hi) * logp)
                .sum_dim(1)
                .neg()
                .reshape([f, 4]); // [F, 4]
            let dfl = (per_side.mean_dim(1).reshape([f]) * w)
                .sum()
                .div_scalar(tss)
                .mul_scalar(cfg.gains[2]);
            (box_loss, dfl)
        };
        Ok(YoloV8Losses { box_loss, cls, dfl })
    }

    /// [`forward`](Self::forward) and [`losses`](Self::losses) in one call.
    pub fn forward_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> Result<YoloV8Losses> {
        let out = self.forward(images)?;
        self.losses(&out, targets)
    }
}

impl unidl_train::Detector for YoloV8 {
    /// ultralytics' loss items: `box`, `cls`, `dfl` (after gains).
    fn detection_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> unidl_train::Result<Vec<(String, Tensor<1>)>> {
        let l = self
            .forward_losses(images, targets)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))?;
        Ok(vec![
            ("box".into(), l.box_loss),
            ("cls".into(), l.cls),
            ("dfl".into(), l.dfl),
        ])
    }

    /// The detections of [`predict`](YoloV8::predict) as one-hot score rows
    /// over the `K` classes, padded with zero rows.
    ///
    /// # Shapes
    /// images `[B, 3, H, W]` → `[B, max(1, D_max), 4 + K]`.
    fn detect(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<3>> {
        crate::detection::layout::detect_with(images, self.num_classes(), |x| self.predict(x))
    }
}
