//! RetinaNet's heads (torchvision 0.24.0
//! `models.detection.retinanet.RetinaNetHead`): two subnets shared across
//! the pyramid levels, each four 3×3 convolutions with bias and ReLU
//! (`conv.{i}.0`), then a 3×3 output convolution — `cls_logits` with
//! `A · K` channels (A anchors per cell, K classes), `bbox_reg` with `A · 4`.
//! Initialisation as torchvision: weights N(0, 0.01²), biases 0, except
//! `cls_logits`' bias `−ln((1 − π)/π)` with the prior π = 0.01.

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, PaddingConfig2d};

use crate::blocks::MapBias;
use crate::detection::layout::permute_and_flatten;

/// A 3×3 same-padding convolution with bias, N(0, 0.01²) weights and every
/// bias `bias`.
fn head_conv(channels: [usize; 2], bias: f32, device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        })
        .init(device)
        .map_bias(|b| b.zeros_like().add_scalar(bias))
}

/// Runs a subnet over every level and flattens its output to
/// `[B, Σ H·W·A, per]` in torchvision's order (cell `y`, `x`, then anchor).
fn run_levels(tower: &[Conv2d], out: &Conv2d, features: &[Tensor<4>], per: usize) -> Tensor<3> {
    let levels: Vec<Tensor<3>> = features
        .iter()
        .map(|f| {
            let mut x = f.clone();
            for c in tower {
                x = relu(c.forward(x)); // [B, D, H, W]
            }
            permute_and_flatten(out.forward(x), per) // [B, H·W·A, per]
        })
        .collect();
    Tensor::cat(levels, 1) // [B, Σ H·W·A, per]
}

/// The classification subnet.
#[derive(Module, Debug)]
pub struct RetinaNetClassificationHead {
    /// Four 3×3 convolutions, each followed by ReLU (torchvision `conv.{i}.0`).
    pub conv: Vec<Conv2d>,
    /// The output convolution, `A · K` channels.
    pub cls_logits: Conv2d,
    /// Classes `K`.
    pub num_classes: usize,
    /// Anchors per cell `A`.
    pub num_anchors: usize,
}

impl RetinaNetClassificationHead {
    /// Over `in_channels` feature channels, with prior probability
    /// `prior` for the output bias.
    pub fn new(
        in_channels: usize,
        num_anchors: usize,
        num_classes: usize,
        prior: f64,
        device: &Device,
    ) -> Self {
        let bias = -((1.0 - prior) / prior).ln() as f32;
        RetinaNetClassificationHead {
            conv: (0..4)
                .map(|_| head_conv([in_channels, in_channels], 0.0, device))
                .collect(),
            cls_logits: head_conv([in_channels, num_anchors * num_classes], bias, device),
            num_classes,
            num_anchors,
        }
    }

    /// Class logits of every anchor of every level.
    ///
    /// # Shapes
    /// levels `[B, D, H_l, W_l]` → `[B, Σ_l H_l·W_l·A, K]`.
    pub fn forward(&self, features: &[Tensor<4>]) -> Tensor<3> {
        run_levels(&self.conv, &self.cls_logits, features, self.num_classes)
    }
}

/// The box-regression subnet.
#[derive(Module, Debug)]
pub struct RetinaNetRegressionHead {
    /// Four 3×3 convolutions, each followed by ReLU (torchvision `conv.{i}.0`).
    pub conv: Vec<Conv2d>,
    /// The output convolution, `A · 4` channels.
    pub bbox_reg: Conv2d,
    /// Anchors per cell `A`.
    pub num_anchors: usize,
}

impl RetinaNetRegressionHead {
    /// Over `in_channels` feature channels.
    pub fn new(in_channels: usize, num_anchors: usize, device: &Device) -> Self {
        RetinaNetRegressionHead {
            conv: (0..4)
                .map(|_| head_conv([in_channels, in_channels], 0.0, device))
                .collect(),
            bbox_reg: head_conv([in_channels, num_anchors * 4], 0.0, device),
            num_anchors,
        }
    }

    /// Box deltas `(dx, dy, dw, dh)` of every anchor of every level.
    ///
    /// # Shapes
    /// levels `[B, D, H_l, W_l]` → `[B, Σ_l H_l·W_l·A, 4]`.
    pub fn forward(&self, features: &[Tensor<4>]) -> Tensor<3> {
        run_levels(&self.conv, &self.bbox_reg, features, 4)
    }
}

/// Both subnets (torchvision `head.classification_head`,
/// `head.regression_head`).
#[derive(Module, Debug)]
pub struct RetinaNetHead {
    /// Class logits.
    pub classification_head: RetinaNetClassificationHead,
    /// Box deltas.
    pub regression_head: RetinaNetRegressionHead,
}

impl RetinaNetHead {
    /// Heads over `in_channels` channels for `num_anchors` anchors per cell
    /// and `num_classes` classes, with `cls_logits`' prior `prior` (0.01).
    pub fn new(
        in_channels: usize,
        num_anchors: usize,
        num_classes: usize,
        prior: f64,
        device: &Device,
    ) -> Self {
        RetinaNetHead {
            classification_head: RetinaNetClassificationHead::new(
                in_channels,
                num_anchors,
                num_classes,
                prior,
                device,
            ),
            regression_head: RetinaNetRegressionHead::new(in_channels, num_anchors, device),
        }
    }

    /// `(cls_logits, bbox_regression)`.
    ///
    /// # Shapes
    /// levels `[B, D, H_l, W_l]` → `([B, N, K], [B, N, 4])`, `N = Σ_l H_l·W_l·A`.
    pub fn forward(&self, features: &[Tensor<4>]) -> (Tensor<3>, Tensor<3>) {
        (
            self.classification_head.forward(features),
            self.regression_head.forward(features),
        )
    }
}
