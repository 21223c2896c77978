//! Object detection: the pieces two-stage detectors share.
//!
//! | piece | torchvision | file |
//! |-------|-------------|------|
//! | [`roi_align()`], [`RoiAlign`] | `torchvision.ops.roi_align`, `ops.RoIAlign` | [`mod@roi_align`] |
//! | [`MultiScaleRoiAlign`], [`LevelMapper`] | `torchvision.ops.MultiScaleRoIAlign`, `ops.poolers.LevelMapper` | [`poolers`] |
//! | [`RoiAlignError`] | — (torchvision raises, or crashes) | `error.rs` |
//!
//! Both reproduce torchvision 0.24.0's CPU results — forward values and the
//! gradient with respect to the features — and are written with Burn tensor
//! operations, so they run and differentiate on every back-end. The test
//! suite compares them with `tests/reference/roi_align.json`, produced by
//! `tests/reference/gen_roi_align.py`. The detectors themselves (Faster
//! R-CNN, Mask R-CNN, …) are later work.

pub mod anchors;
pub mod backbone;
pub mod boxes;
mod error;
pub mod fpn;
pub mod frozen_bn;
pub mod poolers;
pub mod roi_align;
mod sampling;
pub mod transform;

pub use anchors::{AnchorConfig, AnchorGenerator};
pub use backbone::{BackboneWithFpn, ResNetBody, ResNetBodyConfig};
pub use error::{MAX_SAMPLING_GRID, RoiAlignError};
pub use fpn::{ExtraBlocks, FeaturePyramidNetwork, FeaturePyramidNetworkConfig, LastLevelP6P7};
pub use frozen_bn::FrozenBatchNorm2d;
pub use poolers::{LevelMapper, MultiScaleRoiAlign};
pub use roi_align::{RoiAlign, roi_align, rois_from_boxes};
pub use transform::{DetectionTransform, DetectionTransformConfig, TransformedSize};
