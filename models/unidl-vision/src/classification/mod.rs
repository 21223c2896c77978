//! Image classification: an image batch `[B, C, H, W]` in, class logits
//! `[B, classes]` out.
//!
//! | model | variants | file |
//! |-------|----------|------|
//! | [`ResNet`] | 18, 34, 50, 101, 152; ImageNet or small-image stem | [`resnet`] |
//! | [`Vgg`] | 11, 13, 16, 19; with or without batch norm | [`vgg`] |
//! | [`EfficientNet`] | B0 … B7 | [`efficientnet`] |
//! | [`SimpleCnn`] | two conv blocks (the quick start's) | [`simple_cnn`] |
//!
//! [`ClassifierConfig`] selects one by name (`name = "resnet"`), which is how
//! run configs and the CLI refer to them.

pub mod efficientnet;
pub mod resnet;
pub mod simple_cnn;
pub mod vgg;

use burn::module::Module;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_tensor::trace;

pub use efficientnet::{EfficientNet, EfficientNetConfig, EfficientNetVariant, MbConv};
pub use resnet::{Block, ResNet, ResNetConfig};
pub use simple_cnn::{SimpleCnn, SimpleCnnConfig};
pub use vgg::{Vgg, VggConfig, VggConv};

use crate::error::{Result, VisionError};

/// Any classifier of this module, chosen by `name` (serde-tagged, as in TOML:
/// `name = "resnet", depth = 18, small_input = true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum ClassifierConfig {
    /// [`ResNetConfig`].
    Resnet(ResNetConfig),
    /// [`VggConfig`].
    Vgg(VggConfig),
    /// [`EfficientNetConfig`].
    Efficientnet(EfficientNetConfig),
}

impl ClassifierConfig {
    /// Builds the chosen model.
    pub fn init(&self, device: &Device) -> Result<Classifier> {
        Ok(match self {
            Self::Resnet(c) => Classifier::ResNet(c.init(device)?),
            Self::Vgg(c) => Classifier::Vgg(c.init(device)?),
            Self::Efficientnet(c) => Classifier::EfficientNet(c.init(device)?),
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        match self {
            Self::Resnet(c) => c.in_channels,
            Self::Vgg(c) => c.in_channels,
            Self::Efficientnet(c) => c.in_channels,
        }
    }

    /// The smallest square input side the model takes (VGG's five
    /// max-pools need 32; the others take any size).
    pub fn min_input_size(&self) -> usize {
        match self {
            Self::Vgg(_) => 32,
            _ => 1,
        }
    }
}

/// One of the zoo's classifiers, as a single Burn module (so trainers,
/// checkpoints and the CLI handle every model with one type).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Classifier {
    /// A ResNet.
    ResNet(ResNet),
    /// A VGG.
    Vgg(Vgg),
    /// An EfficientNet.
    EfficientNet(EfficientNet),
}

impl Classifier {
    /// Class logits.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, classes]`.
    /// Traced output shapes are recorded twice: with the inner model's paths
    /// and prefixed with the variant (`ResNet.layer1`), the paths this enum's
    /// modules have.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let (prefix, run): (&str, &dyn Fn(Tensor<4>) -> Tensor<2>) = match self {
            Self::ResNet(m) => ("ResNet", &|x| m.forward(x)),
            Self::Vgg(m) => ("Vgg", &|x| m.forward(x)),
            Self::EfficientNet(m) => ("EfficientNet", &|x| m.forward(x)),
        };
        if !trace::active() {
            return run(x);
        }
        let (y, inner) = trace::capture(|| run(x));
        for t in inner {
            trace::record(&format!("{prefix}.{}", t.path), &t.shape);
        }
        y
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        match self {
            Self::ResNet(m) => m.in_channels,
            Self::Vgg(m) => m.in_channels,
            Self::EfficientNet(m) => m.in_channels,
        }
    }

    /// Checks an input shape before [`Classifier::forward`], which (like
    /// Burn's layers) panics on a wrong channel count: wrong rank, channels or
    /// a side below the model's minimum is [`VisionError::Input`].
    pub fn check_input(&self, shape: &[usize]) -> Result<()> {
        let (name, min) = match self {
            Self::ResNet(_) => ("resnet", 1),
            Self::Vgg(_) => ("vgg", 32),
            Self::EfficientNet(_) => ("efficientnet", 1),
        };
        let err = |reason: String| {
            Err(VisionError::Input {
                model: name.into(),
                shape: shape.to_vec(),
                reason,
            })
        };
        if shape.len() != 4 {
            return err("expected [batch, channels, height, width]".into());
        }
        if shape[1] != self.in_channels() {
            return err(format!("expected {} channels", self.in_channels()));
        }
        if shape[2] < min || shape[3] < min || shape[0] == 0 {
            return err(format!(
                "height and width must be at least {min}, batch at least 1"
            ));
        }
        Ok(())
    }
}

impl crate::torchvision::TorchvisionNames for Classifier {
    /// An enum module's keys start with the variant's name (`ResNet.conv1`),
    /// which torchvision's do not.
    fn torchvision_path(&self, path: &str) -> Option<String> {
        match self {
            Self::ResNet(m) => m.torchvision_path(path.strip_prefix("ResNet.")?),
            Self::Vgg(m) => m.torchvision_path(path.strip_prefix("Vgg.")?),
            Self::EfficientNet(m) => m.torchvision_path(path.strip_prefix("EfficientNet.")?),
        }
    }
}
