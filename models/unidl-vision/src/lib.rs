//! # unidl-vision — the vision model zoo (T/AII 008 §6.3.1)
//!
//! Computer-vision models built on `unidl-nn` layers, one module per task
//! family. Each model is a documented `…Config` (serde, unknown keys refused)
//! with `init(&Device)` and a `forward` whose documentation has a `# Shapes`
//! section; its `//!` header names the paper and the variant implemented.
//! Forward passes record the output shapes of their top-level stages with
//! [`unidl_tensor::trace::record`], so model summaries show them.
//!
//! | family | module | models |
//! |--------|--------|--------|
//! | image classification | [`classification`] | ResNet-18/34/50/101/152, VGG-11/13/16/19 (± BN), EfficientNet-B0…B7, SimpleCnn |
//! | object detection | [`detection`] | RetinaNet, Faster R-CNN (ResNet-50-FPN), SSD300-VGG16, YOLOv8 n–x; shared parts: FrozenBatchNorm2d, ResNet body, FPN, anchors, box coder and matcher, focal loss, RoI Align, MultiScaleRoIAlign (all checked against torchvision) |
//! | semantic / instance segmentation | [`segmentation`] | DeepLabv3-ResNet-50 (dilated ResNet body, ASPP, auxiliary FCN head), U-Net, Mask R-CNN ResNet-50-FPN |
//! | keypoints / pose | [`keypoints`] | HRNet-W32 (top-down heatmaps) |
//! | text recognition | `ocr/` (later) | |
//!
//! Later families go into their own folder module beside `classification/`
//! and reuse [`blocks`]; a family that grows large gets a cargo feature.
//!
//! Parameter counts equal torchvision's for the same configuration, and
//! torchvision state dicts (saved as safetensors) load through the documented
//! key mapping in [`torchvision`]; the test suite checks both against
//! reference values produced by `tests/reference/gen_torchvision.py`.
//!
//! ## Architecture invariant
//!
//! Depends on the core (`unidl-backend`, `unidl-tensor`, `unidl-nn`,
//! `unidl-interop`, and `unidl-train`/`unidl-run` for the task traits and the
//! registry) and Burn — never on the CLI or another zoo crate. [`register`]
//! adds every model to a [`unidl_run::ModelRegistry`] under its run-config
//! name. No weights are downloaded: loading from a path is the API.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-nn`, `unidl-interop`,
//! `unidl-train`, `unidl-run`.
//! Dev-depends on: `unidl-data`, `unidl-testkit`.

pub mod blocks;
pub mod classification;
pub mod detection;
pub mod error;
pub mod keypoints;
mod registry;
pub mod segmentation;
pub mod torchvision;

pub use registry::register;

pub use classification::{Classifier, ClassifierConfig};
pub use error::{Result, VisionError};
