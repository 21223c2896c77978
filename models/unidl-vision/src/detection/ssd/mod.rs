//! # SSD300-VGG16 (Liu et al., 2016, "SSD: Single Shot MultiBox Detector", arXiv:1512.02325)
//!
//! torchvision 0.24.0's `ssd300_vgg16`: the VGG-16 extractor ([`SsdVgg`]:
//! `conv4_3` L2-normalised and scaled, `fc6`/`fc7` as convolutions, four
//! extra blocks; six maps), default boxes ([`DefaultBoxes`]: 4 or 6 per
//! cell, 8,732 for 300 × 300), one 3×3 convolution per map for class
//! logits and one for box deltas ([`SsdHead`], Xavier-initialised), the
//! SSD matcher (IoU ≥ 0.5, and each ground-truth box's best default box),
//! hard-negative mining (the negatives with the highest cross entropy, three
//! per positive), smooth L1 (β = 1) on deltas weighted 10/10/5/5, and
//! `postprocess_detections` (softmax, per class score > 0.01 and top 400,
//! class-wise NMS 0.45, 200 per image). Images go through torchvision's
//! transform with `fixed_size` 300 × 300 (every image resized to exactly
//! that, whatever its aspect ratio) and `ssd300_vgg16`'s normalisation
//! (mean 0.48235/0.45882/0.40784, std 1/255: the network sees 0–255 pixel
//! values less the mean).
//!
//! Classes follow torchvision, as Faster R-CNN's (D37): class 0 is the
//! background and `num_classes` counts it; a task class `c` is label
//! `c + 1`.

mod backbone;
mod default_boxes;

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, PaddingConfig2d};
use unidl_tensor::trace;
use unidl_train::ObjectTargets;
use unidl_train::outputs::Detection;
use unidl_train::postprocess::batched_nms;

pub(crate) use backbone::VGG_FEATURE_INDEX;
pub use backbone::{ExtraBlock, SsdVgg};
pub use default_boxes::{DefaultBoxConfig, DefaultBoxes};

use super::boxes::{BoxCoder, Matcher, box_iou, clip_box};
use super::faster_rcnn::smooth_l1_sum;
use super::layout::{check_images, grid_sizes, host_values, permute_and_flatten};
use super::targets::check_targets;
use super::transform::{DetectionTransform, DetectionTransformConfig, TransformedSize};
use crate::blocks::MapBias;
use crate::error::{Result, VisionError, positive, unit_interval};

/// SSD300 configuration; every default is `ssd300_vgg16`'s.
///
/// ```toml
/// num_classes = 91          # background included
/// width = 64                # VGG-16's base width
/// trainable_layers = 5      # 4 with pretrained VGG weights
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SsdConfig {
    /// Classes `C` including the background class 0 (torchvision: 91).
    pub num_classes: usize,
    /// VGG-16's base width (torchvision: 64); every width scales with it.
    pub width: usize,
    /// VGG stages, counted from the output, that train (0–5; torchvision:
    /// 5 without pretrained weights, 4 with).
    pub trainable_layers: usize,
    /// Default boxes.
    pub default_boxes: DefaultBoxConfig,
    /// The input transform (`fixed_size` 300 × 300, SSD's mean and std).
    pub transform: DetectionTransformConfig,
    /// Scores at or below this are dropped (0.01).
    pub score_thresh: f32,
    /// IoU above which NMS suppresses a detection of the same class (0.45).
    pub nms_thresh: f32,
    /// Detections kept per image (200).
    pub detections_per_img: usize,
    /// IoU from which a default box is matched (0.5).
    pub iou_thresh: f32,
    /// Candidates per class before NMS (400).
    pub topk_candidates: usize,
    /// Share of positives among the classified boxes: negatives are
    /// `(1 − f)/f` per positive (0.25: three).
    pub positive_fraction: f32,
}

/// `ssd300_vgg16`'s transform: 300 × 300 fixed, mean 0.48235/0.45882/0.40784, std 1/255.
pub fn ssd300_transform() -> DetectionTransformConfig {
    DetectionTransformConfig {
        min_size: 300,
        max_size: 300,
        image_mean: vec![0.48235, 0.45882, 0.40784],
        image_std: vec![1.0 / 255.0; 3],
        resize: true,
        size_divisible: 1,
        fixed_size: Some([300, 300]),
        pad_value: 0.0,
    }
}

impl Default for SsdConfig {
    fn default() -> Self {
        SsdConfig {
            num_classes: 91,
            width: 64,
            trainable_layers: 5,
            default_boxes: DefaultBoxConfig::default(),
            transform: ssd300_transform(),
            score_thresh: 0.01,
            nms_thresh: 0.45,
            detections_per_img: 200,
            iou_thresh: 0.5,
            topk_candidates: 400,
            positive_fraction: 0.25,
        }
    }
}

/// The non-learnt parts of an [`Ssd`].
#[derive(Debug, Clone, PartialEq)]
pub struct SsdSettings {
    /// The configuration it was built from.
    pub config: SsdConfig,
    /// Default boxes.
    pub default_boxes: DefaultBoxes,
    /// Input transform.
    pub transform: DetectionTransform,
    /// Deltas (weights 10, 10, 5, 5).
    pub coder: BoxCoder,
}

impl SsdConfig {
    /// `ssd300_vgg16` with `num_classes` classes (background included).
    pub fn new(num_classes: usize) -> Self {
        SsdConfig {
            num_classes,
            ..SsdConfig::default()
        }
    }

    fn settings(&self) -> Result<SsdSettings> {
        if self.num_classes < 2 {
            return Err(VisionError::Config {
                key: "num_classes".into(),
                reason: format!(
                    "{}: counts the background class 0, so at least 2",
                    self.num_classes
                ),
            });
        }
        positive("detections_per_img", self.detections_per_img)?;
        positive("topk_candidates", self.topk_candidates)?;
        unit_interval("score_thresh", self.score_thresh)?;
        unit_interval("nms_thresh", self.nms_thresh)?;
        unit_interval("iou_thresh", self.iou_thresh)?;
        if !(self.positive_fraction > 0.0 && self.positive_fraction <= 1.0) {
            return Err(VisionError::Config {
                key: "positive_fraction".into(),
                reason: format!("{} is not in (0, 1]", self.positive_fraction),
            });
        }
        let default_boxes = self.default_boxes.init()?;
        if default_boxes.levels() != 6 {
            return Err(VisionError::Config {
                key: "default_boxes.aspect_ratios".into(),
                reason: format!(
                    "{} levels; the VGG extractor gives 6 maps",
                    default_boxes.levels()
                ),
            });
        }
        Ok(SsdSettings {
            config: self.clone(),
            default_boxes,
            transform: self.transform.init()?,
            coder: BoxCoder {
                weights: [10.0, 10.0, 5.0, 5.0],
                ..BoxCoder::default()
            },
        })
    }

    /// Builds the model with torchvision's initialisation. Invalid values
    /// are [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<Ssd> {
        let settings = self.settings()?;
        let backbone = SsdVgg::new(self.width, self.trainable_layers, device)?;
        let head = SsdHead::new(
            &backbone.out_channels(),
            &settings.default_boxes.num_anchors_per_location(),
            self.num_classes,
            device,
        );
        Ok(Ssd {
            backbone,
            head,
            settings,
        })
    }
}

/// One 3×3 convolution per map (torchvision `SSDScoringHead.module_list`).
fn scoring(channels: &[usize], anchors: &[usize], per: usize, device: &Device) -> Vec<Conv2d> {
    channels
        .iter()
        .zip(anchors)
        .map(|(&c, &a)| {
            Conv2dConfig::new([c, a * per], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
                .map_bias(|b| b.zeros_like())
        })
        .collect()
}

/// SSD's heads (torchvision `head.classification_head.module_list`,
/// `head.regression_head.module_list`).
#[derive(Module, Debug)]
pub struct SsdHead {
    /// Class logits per map, `A_k · C` channels.
    pub classification_head: Vec<Conv2d>,
    /// Box deltas per map, `A_k · 4` channels.
    pub regression_head: Vec<Conv2d>,
    /// Classes `C`.
    pub num_classes: usize,
}

impl SsdHead {
    /// Heads over maps of `channels` with `anchors` boxes per cell.
    pub fn new(channels: &[usize], anchors: &[usize], num_classes: usize, device: &Device) -> Self {
        SsdHead {
            classification_head: scoring(channels, anchors, num_classes, device),
            regression_head: scoring(channels, anchors, 4, device),
            num_classes,
        }
    }

    /// `(cls_logits, bbox_regression)` over every default box.
    ///
    /// # Shapes
    /// maps `[B, D_k, H_k, W_k]` → `([B, N, C], [B, N, 4])`, `N = Σ H_k·W_k·A_k`.
    pub fn forward(&self, maps: &[Tensor<4>]) -> (Tensor<3>, Tensor<3>) {
        let run = |convs: &[Conv2d], per: usize| {
            let parts: Vec<Tensor<3>> = maps
                .iter()
                .zip(convs)
                .map(|(m, c)| permute_and_flatten(c.forward(m.clone()), per))
                .collect();
            Tensor::cat(parts, 1)
        };
        (
            run(&self.classification_head, self.num_classes),
            run(&self.regression_head, 4),
        )
    }
}

/// SSD300. Build it with [`SsdConfig::init`].
#[derive(Module, Debug)]
pub struct Ssd {
    /// The VGG-16 extractor (torchvision `backbone`).
    pub backbone: SsdVgg,
    /// Class and box heads (torchvision `head`).
    pub head: SsdHead,
    /// Default boxes, transform, thresholds.
    #[module(skip)]
    pub settings: SsdSettings,
}

/// The raw outputs of [`Ssd::forward`].
#[derive(Debug, Clone)]
pub struct SsdOutput {
    /// The six maps.
    pub features: Vec<Tensor<4>>,
    /// Class logits, `[B, N, C]`.
    pub cls_logits: Tensor<3>,
    /// Box deltas, `[B, N, 4]`.
    pub bbox_regression: Tensor<3>,
    /// The `N` default boxes on the transformed image.
    pub anchors: Vec<[f32; 4]>,
    /// The sizes before and after the transform.
    pub size: TransformedSize,
}

/// The two training losses, `[1]` each, torchvision's names.
#[derive(Debug, Clone)]
pub struct SsdLosses {
    /// Smooth L1 of the matched boxes (`bbox_regression`).
    pub bbox_regression: Tensor<1>,
    /// Cross entropy of the positives and mined negatives (`classification`).
    pub classification: Tensor<1>,
}

impl Ssd {
    /// Classes `C`, background included.
    pub fn num_classes(&self) -> usize {
        self.settings.config.num_classes
    }

    /// Transform, extractor, heads and default boxes.
    ///
    /// # Shapes
    /// images `[B, 3, H, W]` → `cls_logits [B, N, C]`, `bbox_regression
    /// [B, N, 4]` (N = 8,732 at 300 × 300).
    pub fn forward(&self, images: Tensor<4>) -> Result<SsdOutput> {
        check_images("Ssd", &images, 3)?;
        let (x, size) = self.settings.transform.apply(images)?;
        let features = self.backbone.forward(x);
        let grids = grid_sizes(&features);
        let anchors = self.settings.default_boxes.boxes(size.padded, &grids)?;
        let (cls_logits, bbox_regression) = self.head.forward(&features);
        trace::record("head", &cls_logits.dims());
        Ok(SsdOutput {
            features,
            cls_logits,
            bbox_regression,
            anchors,
            size,
        })
    }

    /// torchvision's `SSDMatcher`: IoU ≥ `iou_thresh` (no low-quality
    /// matches), then each ground-truth box takes its best default box
    /// (later boxes win a shared one). `-1`: unmatched.
    fn match_boxes(&self, gt: &[[f32; 4]], anchors: &[[f32; 4]]) -> Vec<i64> {
        let n = anchors.len();
        if gt.is_empty() {
            return vec![-1; n];
        }
        let t = self.settings.config.iou_thresh;
        let iou = box_iou(gt, anchors);
        let matcher = Matcher {
            high_threshold: t,
            low_threshold: t,
            allow_low_quality_matches: false,
        };
        let mut m = matcher.assign(&iou, gt.len(), n);
        for j in 0..gt.len() {
            let row = &iou[j * n..(j + 1) * n];
            let best = (0..n).fold(0, |b, a| if row[a] > row[b] { a } else { b });
            m[best] = j as i64;
        }
        m.iter().map(|&v| v.max(-1)).collect()
    }

    /// The losses of `out` against one [`ObjectTargets`] per image (boxes in
    /// input pixels, classes `0..C−1`), as torchvision's
    /// `SSD.compute_loss`: smooth L1 over the matched boxes and cross
    /// entropy over them and the hardest `3·positives` negatives of each
    /// image, both divided by the batch's positives (at least 1).
    pub fn losses(&self, out: &SsdOutput, targets: &[ObjectTargets]) -> Result<SsdLosses> {
        let [b, n, c] = out.cls_logits.dims();
        check_targets("Ssd", &[b, n, c], targets, b, c - 1)?;
        let device = out.cls_logits.device();
        let cfg = &self.settings.config;
        let mut labels = vec![0i64; b * n];
        let mut fg_rows = Vec::new();
        let mut fg_targets = Vec::new();
        let mut fg_per_image = vec![0usize; b];
        for (i, t) in targets.iter().enumerate() {
            let gt: Vec<[f32; 4]> = t.boxes.iter().map(|&bx| out.size.to_resized(bx)).collect();
            let matched = self.match_boxes(&gt, &out.anchors);
            for (a, &m) in matched.iter().enumerate() {
                if m >= 0 {
                    labels[i * n + a] = t.classes[m as usize] as i64 + 1;
                    fg_rows.push((i * n + a) as i64);
                    fg_targets.extend(self.settings.coder.encode(&gt[m as usize], &out.anchors[a]));
                    fg_per_image[i] += 1;
                }
            }
        }
        let total_fg = fg_rows.len();
        let norm = total_fg.max(1) as f32;
        // per-box cross entropy [B, N]
        let lab = Tensor::<2, Int>::from_data(TensorData::new(labels.clone(), [b, n]), &device);
        let one_hot = lab
            .reshape([b, n, 1])
            .equal(Tensor::<1, Int>::arange(0..c as i64, &device).reshape([1, 1, c]))
            .float();
        let ce = (log_softmax(out.cls_logits.clone(), 2) * one_hot)
            .sum_dim(2)
            .neg()
            .reshape([b, n]); // [B, N]
        // hard negatives: per image the 3·fg highest cross entropies among the rest
        let ce_host = host_values(&ce, "Ssd", "cross entropy")?;
        let ratio = (1.0 - cfg.positive_fraction) / cfg.positive_fraction;
        let mut weight = vec![0f32; b * n];
        for i in 0..b {
            let row = &ce_host[i * n..(i + 1) * n];
            let mut neg: Vec<usize> = (0..n).filter(|&a| labels[i * n + a] == 0).collect();
            neg.sort_by(|&x, &y| row[y].total_cmp(&row[x]));
            let k = ((ratio * fg_per_image[i] as f32) as usize).min(neg.len());
            for &a in &neg[..k] {
                weight[i * n + a] = 1.0;
            }
            for a in 0..n {
                if labels[i * n + a] > 0 {
                    weight[i * n + a] = 1.0;
                }
            }
        }
        let w = Tensor::<2>::from_data(TensorData::new(weight, [b, n]), &device);
        let classification = (ce * w).sum().div_scalar(norm);
        let bbox_regression = if total_fg == 0 {
            out.bbox_regression.clone().sum().mul_scalar(0.0)
        } else {
            let rows = Tensor::<1, Int>::from_data(TensorData::new(fg_rows, [total_fg]), &device);
            let pred = out
                .bbox_regression
                .clone()
                .reshape([b * n, 4])
                .select(0, rows);
            let target =
                Tensor::<2>::from_data(TensorData::new(fg_targets, [total_fg, 4]), &device);
            smooth_l1_sum(pred, target, 1.0).div_scalar(norm)
        };
        Ok(SsdLosses {
            bbox_regression,
            classification,
        })
    }

    /// [`forward`](Self::forward) and [`losses`](Self::losses) in one call.
    pub fn forward_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> Result<SsdLosses> {
        let out = self.forward(images)?;
        self.losses(&out, targets)
    }

    /// Detections per image, best first, boxes in input pixels, classes
    /// `label − 1` (torchvision's `postprocess_detections` and the
    /// transform's `postprocess`).
    pub fn postprocess(&self, out: &SsdOutput) -> Result<Vec<Vec<Detection>>> {
        let [b, n, c] = out.cls_logits.dims();
        let probs = host_values(
            &softmax(out.cls_logits.clone(), 2),
            "Ssd",
            "class probabilities",
        )?;
        let deltas = host_values(&out.bbox_regression, "Ssd", "box deltas")?;
        let cfg = &self.settings.config;
        let mut all = Vec::with_capacity(b);
        for i in 0..b {
            let boxes: Vec<[f32; 4]> = (0..n)
                .map(|a| {
                    let d = &deltas[(i * n + a) * 4..(i * n + a) * 4 + 4];
                    clip_box(
                        self.settings
                            .coder
                            .decode(&[d[0], d[1], d[2], d[3]], &out.anchors[a]),
                        out.size.resized,
                    )
                })
                .collect();
            let (mut cb, mut cs, mut cl) = (Vec::new(), Vec::new(), Vec::new());
            for label in 1..c {
                let mut cand: Vec<(usize, f32)> = (0..n)
                    .map(|a| (a, probs[(i * n + a) * c + label]))
                    .filter(|&(_, s)| s > cfg.score_thresh)
                    .collect();
                cand.sort_by(|x, y| y.1.total_cmp(&x.1));
                cand.truncate(cfg.topk_candidates);
                for (a, s) in cand {
                    cb.push(boxes[a]);
                    cs.push(s);
                    cl.push(label);
                }
            }
            let keep = batched_nms(&cb, &cs, &cl, f64::from(cfg.nms_thresh));
            all.push(
                keep.into_iter()
                    .take(cfg.detections_per_img)
                    .map(|j| {
                        let [x0, y0, x1, y1] = out.size.to_original(cb[j]);
                        Detection {
                            x0,
                            y0,
                            x1,
                            y1,
                            class: cl[j] - 1,
                            score: cs[j],
                        }
                    })
                    .collect(),
            );
        }
        Ok(all)
    }

    /// Transform, network and post-processing: torchvision's eval-mode call.
    pub fn predict(&self, images: Tensor<4>) -> Result<Vec<Vec<Detection>>> {
        let out = self.forward(images)?;
        self.postprocess(&out)
    }
}

impl unidl_train::Detector for Ssd {
    /// torchvision's train-mode loss dict: `bbox_regression`, `classification`.
    fn detection_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> unidl_train::Result<Vec<(String, Tensor<1>)>> {
        let l = self
            .forward_losses(images, targets)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))?;
        Ok(vec![
            ("bbox_regression".into(), l.bbox_regression),
            ("classification".into(), l.classification),
        ])
    }

    /// The detections of [`predict`](Ssd::predict) as one-hot score rows
    /// over the `C − 1` foreground classes, padded with zero rows.
    ///
    /// # Shapes
    /// images `[B, 3, H, W]` → `[B, max(1, D_max), 4 + C − 1]`.
    fn detect(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<3>> {
        crate::detection::layout::detect_with(images, self.num_classes() - 1, |x| self.predict(x))
    }
}
