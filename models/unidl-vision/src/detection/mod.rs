//! Object detection: detectors and the pieces they share, each matching
//! torchvision 0.24.0.
//!
//! | piece | torchvision | file |
//! |-------|-------------|------|
//! | [`FasterRcnn`], [`FasterRcnnConfig`] | `models.detection.fasterrcnn_resnet50_fpn` | [`faster_rcnn`] |
//! | [`RetinaNet`], [`RetinaNetConfig`] | `models.detection.retinanet_resnet50_fpn` | [`retinanet`] |
//! | [`Ssd`], [`SsdConfig`] | `models.detection.ssd300_vgg16` | [`ssd`] |
//! | [`YoloV8`], [`YoloV8Config`] | ultralytics 8.4.190 `DetectionModel("yolov8n.yaml")` (numbers only) | [`yolo`] |
//! | [`FrozenBatchNorm2d`] | `ops.misc.FrozenBatchNorm2d` | [`frozen_bn`] |
//! | [`ResNetBody`], [`BackboneWithFpn`] | `detection.backbone_utils._resnet_fpn_extractor`, `BackboneWithFPN` | [`backbone`] |
//! | [`FeaturePyramidNetwork`], [`LastLevelP6P7`] | `ops.FeaturePyramidNetwork`, `ops.feature_pyramid_network.LastLevelP6P7` / `LastLevelMaxPool` | [`fpn`] |
//! | [`AnchorGenerator`] | `detection.anchor_utils.AnchorGenerator` | [`anchors`] |
//! | [`boxes::Matcher`], [`boxes::BoxCoder`], [`boxes::box_iou`] | `detection._utils.Matcher`, `BoxCoder`, `ops.box_iou` | [`boxes`] |
//! | [`sigmoid_focal_loss`] | `ops.sigmoid_focal_loss` | [`focal_loss`] |
//! | [`DetectionTransform`] | `detection.transform.GeneralizedRCNNTransform` | [`transform`] |
//! | [`roi_align()`], [`RoiAlign`] | `torchvision.ops.roi_align`, `ops.RoIAlign` | [`mod@roi_align`] |
//! | [`MultiScaleRoiAlign`], [`LevelMapper`] | `torchvision.ops.MultiScaleRoIAlign`, `ops.poolers.LevelMapper` | [`poolers`] |
//! | [`faster_rcnn::RpnHead`], [`faster_rcnn::filter_proposals`] | `detection.rpn.RPNHead`, `RegionProposalNetwork.filter_proposals` | [`faster_rcnn`] |
//! | [`BalancedSampler`] | `detection._utils.BalancedPositiveNegativeSampler` | [`sampler`] |
//! | [`RoiAlignError`] | — (torchvision raises, or crashes) | `error.rs` |
//!
//! The tensor work is Burn operations, so everything runs and
//! differentiates on every back-end; what depends only on box coordinates
//! (anchors, matching, delta encoding, decoding and NMS) runs on the host
//! in f32 with torchvision's order of operations. The test suite compares
//! RoI Align with `tests/reference/roi_align.json`
//! (`tests/reference/gen_roi_align.py`) and RetinaNet — its FPN levels,
//! head outputs, anchors, losses, gradients and detections — with
//! `tests/reference/retinanet/` (`tests/reference/gen_retinanet.py`).
//! Faster R-CNN against `tests/reference/faster_rcnn/`
//! (`tests/reference/gen_faster_rcnn.py`) and SSD against
//! `tests/reference/ssd/` (`tests/reference/gen_ssd.py`), YOLOv8 against
//! `tests/reference/yolov8/` (`tests/reference/gen_yolov8.py`).

pub mod anchors;
pub mod backbone;
pub mod boxes;
mod error;
pub mod faster_rcnn;
pub mod focal_loss;
pub mod fpn;
pub mod frozen_bn;
pub(crate) mod layout;
pub mod poolers;
pub mod retinanet;
pub mod roi_align;
pub mod sampler;
mod sampling;
pub mod ssd;
mod targets;
pub mod transform;
pub mod yolo;

pub use anchors::{AnchorConfig, AnchorGenerator};
pub use backbone::{BackboneWithFpn, ResNetBody, ResNetBodyConfig};
pub use error::{MAX_SAMPLING_GRID, RoiAlignError};
pub use faster_rcnn::{FasterRcnn, FasterRcnnConfig, FasterRcnnLosses, FasterRcnnOutput};
pub use focal_loss::{FocalReduction, sigmoid_focal_loss};
pub use fpn::{ExtraBlocks, FeaturePyramidNetwork, FeaturePyramidNetworkConfig, LastLevelP6P7};
pub use frozen_bn::{BackboneNorm, BackboneNormKind, FrozenBatchNorm2d};
pub use poolers::{LevelMapper, MultiScaleRoiAlign};
pub use retinanet::{HeadNorm, RetinaNet, RetinaNetConfig, RetinaNetLosses, RetinaNetOutput};
pub use roi_align::{RoiAlign, roi_align, rois_from_boxes};
pub use sampler::BalancedSampler;
pub use ssd::{Ssd, SsdConfig, SsdLosses, SsdOutput};
pub use transform::{DetectionTransform, DetectionTransformConfig, TransformedSize};
pub use yolo::{YoloV8, YoloV8Config, YoloV8Losses, YoloV8Output};
