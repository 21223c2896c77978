//! A small two-block CNN: the quick start's digit classifier (not a paper
//! model; the smallest useful baseline of the classification zoo).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_tensor::trace;

/// [`SimpleCnn`]'s config (`[model] name = "simple_cnn"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleCnnConfig {
    /// Input channels.
    #[serde(default = "one")]
    pub in_channels: usize,
    /// Classes.
    pub num_classes: usize,
    /// Input side length (square images, a multiple of 4).
    #[serde(default = "twenty_eight")]
    pub image_size: usize,
    /// Dropout before the classifier, in `[0, 1)`.
    #[serde(default = "quarter")]
    pub dropout: f64,
}

fn quarter() -> f64 {
    0.25
}

fn one() -> usize {
    1
}
fn twenty_eight() -> usize {
    28
}

impl SimpleCnnConfig {
    /// Builds the model; zero sizes are [`VisionError::Config`](crate::VisionError::Config).
    pub fn init(&self, device: &Device) -> crate::Result<SimpleCnn> {
        for (key, v) in [
            ("in_channels", self.in_channels),
            ("num_classes", self.num_classes),
            ("image_size", self.image_size / 4),
        ] {
            if v == 0 {
                return Err(crate::VisionError::Config {
                    key: format!("simple_cnn.{key}"),
                    reason: "too small (image_size must be at least 4)".into(),
                });
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(crate::VisionError::Config {
                key: "simple_cnn.dropout".into(),
                reason: format!("{} is outside [0, 1)", self.dropout),
            });
        }
        Ok(SimpleCnn::new(
            self.in_channels,
            self.num_classes,
            self.image_size,
            self.dropout,
            device,
        ))
    }
}

/// Two 3×3 conv blocks (32 and 64 channels, each with 2×2 max-pooling), a
/// 128-unit dense layer with dropout, and the classifier.
#[derive(Module, Debug)]
pub struct SimpleCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    dropout: Dropout,
    fc2: Linear,
}

impl SimpleCnn {
    /// Builds the model for `in_channels` × `image_size`² inputs, with
    /// `dropout` before the classifier.
    pub fn new(
        in_channels: usize,
        num_classes: usize,
        image_size: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let side = image_size / 4;
        SimpleCnn {
            conv1: Conv2dConfig::new([in_channels, 32], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            conv2: Conv2dConfig::new([32, 64], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(64 * side * side, 128).init(device),
            dropout: DropoutConfig::new(dropout).init(),
            fc2: LinearConfig::new(128, num_classes).init(device),
        }
    }

    /// # Shapes
    /// `[B, C, S, S]` → logits `[B, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(x)); // [B, 32, S, S]
        trace::record("conv1", &x.dims());
        let x = self.pool.forward(x); // [B, 32, S/2, S/2]
        let x = relu(self.conv2.forward(x)); // [B, 64, S/2, S/2]
        trace::record("conv2", &x.dims());
        let x = self.pool.forward(x); // [B, 64, S/4, S/4]
        trace::record("pool", &x.dims());
        let x = relu(self.fc1.forward(x.flatten(1, 3))); // [B, 128]
        trace::record("fc1", &x.dims());
        let y = self.fc2.forward(self.dropout.forward(x)); // [B, classes]
        trace::record("fc2", &y.dims());
        trace::record("(model)", &y.dims());
        y
    }
}
