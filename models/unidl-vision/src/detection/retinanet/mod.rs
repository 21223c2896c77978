//! # RetinaNet (Lin et al., 2017, "Focal Loss for Dense Object Detection", arXiv:1708.02002)
//!
//! torchvision 0.24.0's `retinanet_resnet50_fpn` (v1) with a pretrained-style
//! backbone: a ResNet-50 body with [`FrozenBatchNorm2d`](super::FrozenBatchNorm2d) and the last three
//! stages trainable ([`ResNetBody`]), a 256-channel FPN on C3–C5 with P6/P7
//! from P5 (`LastLevelP6P7(256, 256)`), 9 anchors per cell on P3–P7
//! ([`AnchorGenerator`]), the classification and regression subnets
//! ([`RetinaNetHead`]), sigmoid focal loss over the valid anchors and L1 on
//! encoded box deltas, both normalised by the foreground anchors
//! (`RetinaNetHead.compute_loss`), and torchvision's
//! `postprocess_detections`. Images go through torchvision's
//! `GeneralizedRCNNTransform` ([`DetectionTransform`]; resizing can be
//! turned off).
//!
//! Parameter names are torchvision's state-dict keys
//! ([`TorchvisionNames`](crate::torchvision::TorchvisionNames) maps the
//! three places where Burn's tree differs: `Conv2dNormActivation`'s `.0`,
//! the shortcut's `downsample.0/1`, the FPN's `inner_blocks.{i}.0`).
//!
//! Not reproduced: torchvision's `BatchNorm2d` variant (what
//! `retinanet_resnet50_fpn(weights_backbone=None)` builds — the frozen norm
//! is the torchvision recipe whenever pretrained weights are used), images
//! of different sizes in one batch (the task layer collates one size), and
//! torchvision's random choice among several `min_size`s in training.

mod head;
mod loss;
mod postprocess;

use burn::module::Module;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_tensor::trace;

pub use head::{HeadNorm, RetinaNetClassificationHead, RetinaNetHead, RetinaNetRegressionHead};
pub use loss::RetinaNetLosses;

#[cfg(doc)]
use super::ResNetBody;
use super::anchors::{AnchorConfig, AnchorGenerator};
use super::backbone::{BackboneWithFpn, ResNetBodyConfig};
use super::boxes::{BoxCoder, Matcher};
use super::fpn::{ExtraBlocks, FeaturePyramidNetworkConfig};
use super::layout::{check_images, grid_sizes};
use super::transform::{DetectionTransform, DetectionTransformConfig, TransformedSize};
use crate::error::{Result, VisionError, positive, unit_interval};

fn ninety_one() -> usize {
    91
}
fn two_fifty_six() -> usize {
    256
}
fn score_thresh() -> f32 {
    0.05
}
fn half() -> f32 {
    0.5
}
fn three_hundred() -> usize {
    300
}
fn bg_iou() -> f32 {
    0.4
}
fn thousand() -> usize {
    1000
}
fn prior() -> f64 {
    0.01
}

/// RetinaNet configuration; every default is torchvision's.
///
/// ```toml
/// num_classes = 91                 # including torchvision's background slot
/// fpn_channels = 256
/// [backbone]                       # ResNetBodyConfig
/// depth = 50
/// trainable_layers = 3
/// [transform]                      # DetectionTransformConfig
/// min_size = 800
/// max_size = 1333
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetinaNetConfig {
    /// Classes `K` of the sigmoid classifier (torchvision: 91, COCO's ids
    /// with gaps; RetinaNet has no background class of its own).
    #[serde(default = "ninety_one")]
    pub num_classes: usize,
    /// The ResNet body.
    #[serde(default)]
    pub backbone: ResNetBodyConfig,
    /// Channels of the FPN and the heads (torchvision: 256).
    #[serde(default = "two_fifty_six")]
    pub fpn_channels: usize,
    /// Anchor sizes and ratios per level, P3–P7.
    #[serde(default)]
    pub anchors: AnchorConfig,
    /// Normalisation, resizing and padding of the input.
    #[serde(default)]
    pub transform: DetectionTransformConfig,
    /// Scores at or below this are dropped before the top-k (0.05).
    #[serde(default = "score_thresh")]
    pub score_thresh: f32,
    /// IoU above which NMS suppresses a box of the same class (0.5).
    #[serde(default = "half")]
    pub nms_thresh: f32,
    /// Detections kept per image after NMS (300).
    #[serde(default = "three_hundred")]
    pub detections_per_img: usize,
    /// IoU from which an anchor is foreground (0.5).
    #[serde(default = "half")]
    pub fg_iou_thresh: f32,
    /// IoU below which an anchor is background (0.4).
    #[serde(default = "bg_iou")]
    pub bg_iou_thresh: f32,
    /// Candidates kept per level before NMS (1000).
    #[serde(default = "thousand")]
    pub topk_candidates: usize,
    /// Prior probability of the classifier's initial bias (0.01).
    #[serde(default = "prior")]
    pub prior_probability: f64,
    /// Normalisation in the heads' towers: `"none"` (v1, default) or
    /// `"group"` (the v2 head's GroupNorm(32); `fpn_channels` must divide
    /// by 32).
    #[serde(default)]
    pub head_norm: HeadNorm,
}

impl Default for RetinaNetConfig {
    fn default() -> Self {
        RetinaNetConfig {
            num_classes: 91,
            backbone: ResNetBodyConfig::default(),
            fpn_channels: 256,
            anchors: AnchorConfig::default(),
            transform: DetectionTransformConfig::default(),
            score_thresh: 0.05,
            nms_thresh: 0.5,
            detections_per_img: 300,
            fg_iou_thresh: 0.5,
            bg_iou_thresh: 0.4,
            topk_candidates: 1000,
            prior_probability: 0.01,
            head_norm: HeadNorm::None,
        }
    }
}

/// The non-learnt parts of a [`RetinaNet`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetinaNetSettings {
    /// The configuration it was built from.
    pub config: RetinaNetConfig,
    /// Anchors.
    pub anchors: AnchorGenerator,
    /// Input transform.
    pub transform: DetectionTransform,
    /// Anchor assignment (fg 0.5, bg 0.4, low-quality matches kept).
    pub matcher: Matcher,
    /// Box deltas (weights 1).
    pub coder: BoxCoder,
}

impl RetinaNetConfig {
    /// `retinanet_resnet50_fpn` with `num_classes` classes, torchvision's
    /// other defaults.
    pub fn new(num_classes: usize) -> Self {
        RetinaNetConfig {
            num_classes,
            ..RetinaNetConfig::default()
        }
    }

    /// Checks every value; errors are [`VisionError::Config`] naming the key.
    fn settings(&self) -> Result<RetinaNetSettings> {
        positive("num_classes", self.num_classes)?;
        positive("fpn_channels", self.fpn_channels)?;
        positive("detections_per_img", self.detections_per_img)?;
        positive("topk_candidates", self.topk_candidates)?;
        unit_interval("score_thresh", self.score_thresh)?;
        unit_interval("nms_thresh", self.nms_thresh)?;
        unit_interval("fg_iou_thresh", self.fg_iou_thresh)?;
        unit_interval("bg_iou_thresh", self.bg_iou_thresh)?;
        if self.bg_iou_thresh > self.fg_iou_thresh {
            return Err(VisionError::Config {
                key: "bg_iou_thresh".into(),
                reason: format!(
                    "{} is above fg_iou_thresh {}",
                    self.bg_iou_thresh, self.fg_iou_thresh
                ),
            });
        }
        if !(self.prior_probability > 0.0 && self.prior_probability < 1.0) {
            return Err(VisionError::Config {
                key: "prior_probability".into(),
                reason: format!("{} is not in (0, 1)", self.prior_probability),
            });
        }
        let anchors = self.anchors.init()?;
        if anchors.levels() != 5 {
            return Err(VisionError::Config {
                key: "anchors.sizes".into(),
                reason: format!("{} levels; RetinaNet has 5 (P3–P7)", anchors.levels()),
            });
        }
        let per = anchors.num_anchors_per_location();
        if per.iter().any(|&a| a != per[0]) {
            return Err(VisionError::Config {
                key: "anchors.sizes".into(),
                reason: format!(
                    "anchors per cell {per:?}: the heads are shared, every level needs the same count"
                ),
            });
        }
        Ok(RetinaNetSettings {
            config: self.clone(),
            anchors,
            transform: self.transform.init()?,
            matcher: Matcher {
                high_threshold: self.fg_iou_thresh,
                low_threshold: self.bg_iou_thresh,
                allow_low_quality_matches: true,
            },
            coder: BoxCoder::default(),
        })
    }

    /// Builds the model with torchvision's initialisation, the backbone
    /// frozen below `backbone.trainable_layers`. Invalid values are
    /// [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<RetinaNet> {
        let settings = self.settings()?;
        let body = self.backbone.init(device)?;
        let [_, c3, c4, c5] = self.backbone.stage_channels()?;
        let d = self.fpn_channels;
        let fpn = FeaturePyramidNetworkConfig {
            in_channels_list: vec![c3, c4, c5],
            out_channels: d,
            extra_blocks: ExtraBlocks::P6P7 {
                in_channels: d,
                out_channels: d,
            },
        }
        .init(device)?;
        let a = settings.anchors.num_anchors_per_location()[0];
        if self.head_norm == HeadNorm::Group && !d.is_multiple_of(32) {
            return Err(VisionError::Config {
                key: "head_norm".into(),
                reason: format!("GroupNorm(32) needs fpn_channels divisible by 32, not {d}"),
            });
        }
        let head = RetinaNetHead::new(
            d,
            a,
            self.num_classes,
            self.prior_probability,
            self.head_norm,
            device,
        );
        Ok(RetinaNet {
            backbone: BackboneWithFpn {
                body,
                fpn,
                returned_layers: vec![2, 3, 4],
            },
            head,
            settings,
        })
    }
}

/// RetinaNet. Build it with [`RetinaNetConfig::init`].
#[derive(Module, Debug)]
pub struct RetinaNet {
    /// ResNet body + FPN (torchvision `backbone.body`, `backbone.fpn`).
    pub backbone: BackboneWithFpn,
    /// Classification and regression subnets (torchvision `head`).
    pub head: RetinaNetHead,
    /// Anchors, transform, matcher, thresholds.
    #[module(skip)]
    pub settings: RetinaNetSettings,
}

/// The raw outputs of [`RetinaNet::forward`].
#[derive(Debug, Clone)]
pub struct RetinaNetOutput {
    /// Class logits, `[B, N, K]`.
    pub cls_logits: Tensor<3>,
    /// Box deltas, `[B, N, 4]`.
    pub bbox_regression: Tensor<3>,
    /// The `N` anchors `[x0, y0, x1, y1]` on the transformed image (the
    /// same for every image of the batch).
    pub anchors: Vec<[f32; 4]>,
    /// Anchors per level (P3…P7), summing to `N`.
    pub level_anchors: Vec<usize>,
    /// The sizes before and after the transform.
    pub size: TransformedSize,
}

impl RetinaNet {
    /// Classes `K`.
    pub fn num_classes(&self) -> usize {
        self.settings.config.num_classes
    }

    /// Transform, backbone, heads and anchors. Records the shapes of the
    /// backbone stages, `fpn` (P3) and `head` for model summaries.
    ///
    /// Images are `[0, 1]`-valued; a channel count other than the
    /// backbone's is [`VisionError::Input`].
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `cls_logits [B, N, K]`, `bbox_regression
    /// [B, N, 4]`, `N = Σ_l H_l·W_l·A` over P3–P7 of the transformed image.
    pub fn forward(&self, images: Tensor<4>) -> Result<RetinaNetOutput> {
        check_images(
            "RetinaNet",
            &images,
            self.settings.config.backbone.in_channels,
        )?;
        let (x, size) = self.settings.transform.apply(images)?; // [B, C, H_p, W_p]
        let features = self.backbone.forward(x)?; // P3…P7: [B, D, H_l, W_l]
        trace::record("fpn", &features[0].dims());
        let grids = grid_sizes(&features);
        let per_level = self.settings.anchors.grid_anchors(size.padded, &grids)?;
        let level_anchors = per_level.iter().map(Vec::len).collect();
        let (cls_logits, bbox_regression) = self.head.forward(&features); // [B, N, K], [B, N, 4]
        trace::record("head", &cls_logits.dims());
        Ok(RetinaNetOutput {
            cls_logits,
            bbox_regression,
            anchors: per_level.into_iter().flatten().collect(),
            level_anchors,
            size,
        })
    }
}

impl unidl_train::Detector for RetinaNet {
    /// torchvision's train-mode loss dict: `classification` and
    /// `bbox_regression`.
    fn detection_losses(
        &self,
        images: Tensor<4>,
        targets: &[unidl_train::ObjectTargets],
    ) -> unidl_train::Result<Vec<(String, Tensor<1>)>> {
        let l = self
            .forward_losses(images, targets)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))?;
        Ok(vec![
            ("classification".into(), l.classification),
            ("bbox_regression".into(), l.bbox_regression),
        ])
    }

    /// The detections of [`predict`](RetinaNet::predict) (torchvision's
    /// eval-mode output: score threshold, top-k, NMS and the cap already
    /// applied), one row each: the box in input pixels, then a score
    /// vector that is zero except at the detection's class. Images with
    /// fewer detections are padded with all-zero rows, which a score
    /// threshold ≥ 0 drops, so the task's post-processor returns exactly
    /// these detections (its own NMS keeps them all at an IoU threshold of
    /// at least `nms_thresh`).
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `[B, max(1, D_max), 4 + K]`.
    fn detect(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<3>> {
        crate::detection::layout::detect_with(images, self.num_classes(), |x| self.predict(x))
    }
}
