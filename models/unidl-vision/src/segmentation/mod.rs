//! Semantic and instance segmentation (T/AII 008 §6.3.1): DeepLabv3, U-Net.
//!
//! Models serve `unidl_train::PixelClassification` through
//! [`unidl_train::SemanticSegmenter`]; their parameter names map to
//! torchvision's through [`crate::torchvision`].

pub mod deeplabv3;
pub mod mask_rcnn;
pub mod unet;

pub use deeplabv3::{Aspp, DeepLabHead, DeepLabV3, DeepLabV3Config, DeepLabV3Output, FcnHead};
pub use mask_rcnn::{InstancePrediction, MaskRcnn, MaskRcnnConfig};
pub use unet::{DoubleConv, UNet, UNetConfig, UNetPadding, UpBlock};
