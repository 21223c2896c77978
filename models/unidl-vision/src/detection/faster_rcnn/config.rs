//! Faster R-CNN's configuration (every default torchvision's), its checks
//! and the model's construction; the non-learnt settings a built model
//! carries.

use serde::{Deserialize, Serialize};
use unidl_backend::Device;

use super::FasterRcnn;
use super::mask::{MASK_POOL_SIZE, MaskHeadConfig};
use super::roi_heads::RoiHeads;
use super::rpn::{RegionProposalNetwork, RpnHead};
use crate::detection::anchors::{AnchorConfig, AnchorGenerator};
use crate::detection::backbone::{BackboneWithFpn, ResNetBodyConfig};
use crate::detection::boxes::{BoxCoder, Matcher};
use crate::detection::fpn::{ExtraBlocks, FeaturePyramidNetworkConfig};
use crate::detection::poolers::MultiScaleRoiAlign;
use crate::detection::sampler::BalancedSampler;
use crate::detection::transform::{DetectionTransform, DetectionTransformConfig};
use crate::error::{Result, VisionError, positive, unit_interval};

/// The region proposal network's settings; every default is torchvision's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpnConfig {
    /// Candidates per level before NMS in training (2000).
    pub pre_nms_top_n_train: usize,
    /// … in evaluation (1000).
    pub pre_nms_top_n_test: usize,
    /// Proposals per image after NMS in training (2000).
    pub post_nms_top_n_train: usize,
    /// … in evaluation (1000).
    pub post_nms_top_n_test: usize,
    /// IoU above which NMS suppresses a proposal (0.7).
    pub nms_thresh: f32,
    /// IoU from which an anchor is foreground (0.7).
    pub fg_iou_thresh: f32,
    /// IoU below which an anchor is background (0.3).
    pub bg_iou_thresh: f32,
    /// Anchors sampled per image for the losses (256).
    pub batch_size_per_image: usize,
    /// Largest share of positives among them (0.5).
    pub positive_fraction: f64,
    /// Proposals whose objectness probability is below this are dropped (0).
    pub score_thresh: f32,
}

impl Default for RpnConfig {
    fn default() -> Self {
        RpnConfig {
            pre_nms_top_n_train: 2000,
            pre_nms_top_n_test: 1000,
            post_nms_top_n_train: 2000,
            post_nms_top_n_test: 1000,
            nms_thresh: 0.7,
            fg_iou_thresh: 0.7,
            bg_iou_thresh: 0.3,
            batch_size_per_image: 256,
            positive_fraction: 0.5,
            score_thresh: 0.0,
        }
    }
}

/// The box branch's settings; every default is torchvision's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoiHeadsConfig {
    /// IoU from which a proposal is foreground (0.5).
    pub fg_iou_thresh: f32,
    /// IoU below which a proposal is background (0.5).
    pub bg_iou_thresh: f32,
    /// Proposals sampled per image for the losses (512).
    pub batch_size_per_image: usize,
    /// Largest share of positives among them (0.25).
    pub positive_fraction: f64,
    /// Weights of the box coder (10, 10, 5, 5).
    pub bbox_reg_weights: [f32; 4],
    /// Scores at or below this are dropped (0.05).
    pub score_thresh: f32,
    /// IoU above which NMS suppresses a detection of the same class (0.5).
    pub nms_thresh: f32,
    /// Detections kept per image (100).
    pub detections_per_img: usize,
    /// Pooled size, `output_size × output_size` (7).
    pub output_size: usize,
    /// RoI Align's sampling ratio (2).
    pub sampling_ratio: i32,
}

impl Default for RoiHeadsConfig {
    fn default() -> Self {
        RoiHeadsConfig {
            fg_iou_thresh: 0.5,
            bg_iou_thresh: 0.5,
            batch_size_per_image: 512,
            positive_fraction: 0.25,
            bbox_reg_weights: [10.0, 10.0, 5.0, 5.0],
            score_thresh: 0.05,
            nms_thresh: 0.5,
            detections_per_img: 100,
            output_size: 7,
            sampling_ratio: 2,
        }
    }
}

/// Faster R-CNN's anchors: sizes 32, 64, 128, 256, 512 (one per level),
/// aspect ratios 0.5, 1, 2 on each.
pub fn faster_rcnn_anchors() -> AnchorConfig {
    AnchorConfig {
        sizes: [32.0, 64.0, 128.0, 256.0, 512.0]
            .iter()
            .map(|&s| vec![s])
            .collect(),
        aspect_ratios: vec![vec![0.5, 1.0, 2.0]; 5],
    }
}

/// Faster R-CNN configuration; every default is torchvision's.
///
/// ```toml
/// num_classes = 91                 # background included
/// fpn_channels = 256
/// representation_size = 1024
/// [backbone]                       # ResNetBodyConfig
/// depth = 50
/// trainable_layers = 3
/// [transform]                      # DetectionTransformConfig
/// min_size = 800
/// [rpn]                            # RpnConfig
/// batch_size_per_image = 256
/// [roi_heads]                      # RoiHeadsConfig
/// detections_per_img = 100
/// # [mask_head]                    # MaskHeadConfig: Mask R-CNN's mask branch
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FasterRcnnConfig {
    /// Classes `C` including the background class 0 (torchvision: 91).
    pub num_classes: usize,
    /// The ResNet body.
    pub backbone: ResNetBodyConfig,
    /// Channels of the FPN and the RPN (256).
    pub fpn_channels: usize,
    /// Width of the box head's two fully connected layers (1024).
    pub representation_size: usize,
    /// Anchor sizes and ratios per level (levels `0`–`3` and `pool`).
    pub anchors: AnchorConfig,
    /// Normalisation, resizing and padding of the input.
    pub transform: DetectionTransformConfig,
    /// The region proposal network.
    pub rpn: RpnConfig,
    /// The box branch.
    pub roi_heads: RoiHeadsConfig,
    /// Mask R-CNN's mask branch; absent (the default) in Faster R-CNN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_head: Option<MaskHeadConfig>,
}

impl Default for FasterRcnnConfig {
    fn default() -> Self {
        FasterRcnnConfig {
            num_classes: 91,
            backbone: ResNetBodyConfig::default(),
            fpn_channels: 256,
            representation_size: 1024,
            anchors: faster_rcnn_anchors(),
            transform: DetectionTransformConfig::default(),
            rpn: RpnConfig::default(),
            roi_heads: RoiHeadsConfig::default(),
            mask_head: None,
        }
    }
}

/// The non-learnt parts of a [`FasterRcnn`].
#[derive(Debug, Clone, PartialEq)]
pub struct FasterRcnnSettings {
    /// The configuration it was built from.
    pub config: FasterRcnnConfig,
    /// Anchors.
    pub anchors: AnchorGenerator,
    /// Input transform.
    pub transform: DetectionTransform,
    /// The RPN's anchor assignment (0.7 / 0.3, low-quality matches kept).
    pub rpn_matcher: Matcher,
    /// The RPN's anchor sampler.
    pub rpn_sampler: BalancedSampler,
    /// The box branch's proposal assignment (0.5 / 0.5).
    pub box_matcher: Matcher,
    /// The box branch's proposal sampler.
    pub box_sampler: BalancedSampler,
    /// The box branch's deltas (weights 10, 10, 5, 5).
    pub box_coder: BoxCoder,
    /// Pools proposals from levels `0`–`3`.
    pub box_roi_pool: MultiScaleRoiAlign,
    /// Mask R-CNN: pools boxes 14×14 from levels `0`–`3` for the mask head.
    pub mask_roi_pool: Option<MultiScaleRoiAlign>,
}

/// Names of the FPN levels, as torchvision's ordered dict.
pub(super) const LEVELS: [&str; 5] = ["0", "1", "2", "3", "pool"];

impl FasterRcnnConfig {
    /// `fasterrcnn_resnet50_fpn` with `num_classes` classes (background
    /// included), torchvision's other defaults.
    pub fn new(num_classes: usize) -> Self {
        FasterRcnnConfig {
            num_classes,
            ..FasterRcnnConfig::default()
        }
    }

    /// Checks every value; errors are [`VisionError::Config`] naming the key.
    fn settings(&self) -> Result<FasterRcnnSettings> {
        if self.num_classes < 2 {
            return Err(VisionError::Config {
                key: "num_classes".into(),
                reason: format!(
                    "{}: counts the background class 0, so at least 2",
                    self.num_classes
                ),
            });
        }
        positive("fpn_channels", self.fpn_channels)?;
        positive("representation_size", self.representation_size)?;
        let (r, h) = (&self.rpn, &self.roi_heads);
        for (key, v) in [
            ("rpn.pre_nms_top_n_train", r.pre_nms_top_n_train),
            ("rpn.pre_nms_top_n_test", r.pre_nms_top_n_test),
            ("rpn.post_nms_top_n_train", r.post_nms_top_n_train),
            ("rpn.post_nms_top_n_test", r.post_nms_top_n_test),
            ("rpn.batch_size_per_image", r.batch_size_per_image),
            ("roi_heads.batch_size_per_image", h.batch_size_per_image),
            ("roi_heads.detections_per_img", h.detections_per_img),
            ("roi_heads.output_size", h.output_size),
        ] {
            positive(key, v)?;
        }
        for (key, v) in [
            ("rpn.nms_thresh", r.nms_thresh),
            ("rpn.fg_iou_thresh", r.fg_iou_thresh),
            ("rpn.bg_iou_thresh", r.bg_iou_thresh),
            ("rpn.score_thresh", r.score_thresh),
            ("rpn.positive_fraction", r.positive_fraction as f32),
            ("roi_heads.fg_iou_thresh", h.fg_iou_thresh),
            ("roi_heads.bg_iou_thresh", h.bg_iou_thresh),
            ("roi_heads.score_thresh", h.score_thresh),
            ("roi_heads.nms_thresh", h.nms_thresh),
            ("roi_heads.positive_fraction", h.positive_fraction as f32),
        ] {
            unit_interval(key, v)?;
        }
        for (key, bg, fg) in [
            ("rpn.bg_iou_thresh", r.bg_iou_thresh, r.fg_iou_thresh),
            ("roi_heads.bg_iou_thresh", h.bg_iou_thresh, h.fg_iou_thresh),
        ] {
            if bg > fg {
                return Err(VisionError::Config {
                    key: key.into(),
                    reason: format!("{bg} is above the foreground threshold {fg}"),
                });
            }
        }
        if let Some(w) = h
            .bbox_reg_weights
            .iter()
            .find(|w| !(w.is_finite() && **w > 0.0))
        {
            return Err(VisionError::Config {
                key: "roi_heads.bbox_reg_weights".into(),
                reason: format!("{w} is not finite and positive"),
            });
        }
        let anchors = self.anchors.init()?;
        if anchors.levels() != LEVELS.len() {
            return Err(VisionError::Config {
                key: "anchors.sizes".into(),
                reason: format!(
                    "{} levels; Faster R-CNN's FPN has 5 (0–3 and pool)",
                    anchors.levels()
                ),
            });
        }
        let per = anchors.num_anchors_per_location();
        if per.iter().any(|&a| a != per[0]) {
            return Err(VisionError::Config {
                key: "anchors.sizes".into(),
                reason: format!(
                    "anchors per cell {per:?}: the RPN head is shared, every level needs the same count"
                ),
            });
        }
        let box_roi_pool = MultiScaleRoiAlign::new(
            &LEVELS[..4],
            [h.output_size, h.output_size],
            h.sampling_ratio,
        );
        let mask_roi_pool = match &self.mask_head {
            Some(m) => {
                m.check()?;
                Some(MultiScaleRoiAlign::new(
                    &LEVELS[..4],
                    [MASK_POOL_SIZE, MASK_POOL_SIZE],
                    m.sampling_ratio,
                ))
            }
            None => None,
        };
        Ok(FasterRcnnSettings {
            config: self.clone(),
            anchors,
            transform: self.transform.init()?,
            rpn_matcher: Matcher {
                high_threshold: r.fg_iou_thresh,
                low_threshold: r.bg_iou_thresh,
                allow_low_quality_matches: true,
            },
            rpn_sampler: BalancedSampler {
                batch_size_per_image: r.batch_size_per_image,
                positive_fraction: r.positive_fraction,
            },
            box_matcher: Matcher {
                high_threshold: h.fg_iou_thresh,
                low_threshold: h.bg_iou_thresh,
                allow_low_quality_matches: false,
            },
            box_sampler: BalancedSampler {
                batch_size_per_image: h.batch_size_per_image,
                positive_fraction: h.positive_fraction,
            },
            box_coder: BoxCoder {
                weights: h.bbox_reg_weights,
                ..BoxCoder::default()
            },
            box_roi_pool,
            mask_roi_pool,
        })
    }

    /// Builds the model with torchvision's initialisation, the backbone
    /// frozen below `backbone.trainable_layers`. Invalid values are
    /// [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<FasterRcnn> {
        let settings = self.settings()?;
        let body = self.backbone.init(device)?;
        let d = self.fpn_channels;
        let fpn = FeaturePyramidNetworkConfig {
            in_channels_list: self.backbone.stage_channels()?.to_vec(),
            out_channels: d,
            extra_blocks: ExtraBlocks::MaxPool,
        }
        .init(device)?;
        let a = settings.anchors.num_anchors_per_location()[0];
        let s = self.roi_heads.output_size;
        let mut roi_heads = RoiHeads::new(
            d * s * s,
            self.representation_size,
            self.num_classes,
            device,
        );
        if let Some(m) = &self.mask_head {
            let (head, predictor) = m.init(d, self.num_classes, device);
            roi_heads.mask_head = Some(head);
            roi_heads.mask_predictor = Some(predictor);
        }
        Ok(FasterRcnn {
            backbone: BackboneWithFpn {
                body,
                fpn,
                returned_layers: vec![1, 2, 3, 4],
            },
            rpn: RegionProposalNetwork {
                head: RpnHead::new(d, a, device),
            },
            roi_heads,
            settings,
        })
    }
}
