//! RetinaNet's heads (torchvision 0.24.0
//! `models.detection.retinanet.RetinaNetHead`): two subnets shared across
//! the pyramid levels, each four 3×3 convolutions with bias and ReLU
//! (`conv.{i}.0`), then a 3×3 output convolution — `cls_logits` with
//! `A · K` channels (A anchors per cell, K classes), `bbox_reg` with `A · 4`.
//! Initialisation as torchvision: weights N(0, 0.01²), biases 0, except
//! `cls_logits`' bias `−ln((1 − π)/π)` with the prior π = 0.01.
//!
//! With [`HeadNorm::Group`] each tower convolution is bias-free and
//! followed by `GroupNorm(32)` before its ReLU (`conv.{i}.1`), the head of
//! torchvision's `retinanet_resnet50_fpn_v2` (its GIoU box loss is not
//! reproduced: the box loss stays L1).

use burn::module::Module;
use burn::nn::{GroupNorm, GroupNormConfig, Initializer};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, PaddingConfig2d};

use crate::blocks::MapBias;
use crate::detection::layout::permute_and_flatten;

/// The normalisation inside the heads' convolution towers.
///
/// ```toml
/// head_norm = "none"    # torchvision's v1 head; "group": the v2 head's GroupNorm(32)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadNorm {
    /// Convolutions with bias, no norm (`retinanet_resnet50_fpn`).
    #[default]
    None,
    /// Bias-free convolutions each followed by `GroupNorm(32, D)`
    /// (`retinanet_resnet50_fpn_v2`'s heads); `D` must divide by 32.
    Group,
}

/// A 3×3 same-padding convolution, N(0, 0.01²) weights, with every bias
/// `bias` or (`bias = None`) none.
fn head_conv(channels: [usize; 2], bias: Option<f32>, device: &Device) -> Conv2d {
    let conv = Conv2dConfig::new(channels, [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias.is_some())
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        })
        .init(device);
    match bias {
        Some(b) => conv.map_bias(|t| t.zeros_like().add_scalar(b)),
        None => conv,
    }
}

/// The four tower convolutions and, with [`HeadNorm::Group`], their norms.
fn tower(d: usize, norm: HeadNorm, device: &Device) -> (Vec<Conv2d>, Vec<GroupNorm>) {
    let grouped = norm == HeadNorm::Group;
    let conv = (0..4)
        .map(|_| head_conv([d, d], (!grouped).then_some(0.0), device))
        .collect();
    let norms = if grouped {
        (0..4)
            .map(|_| GroupNormConfig::new(32, d).init(device))
            .collect()
    } else {
        Vec::new()
    };
    (conv, norms)
}

/// Runs a subnet over every level and flattens its output to
/// `[B, Σ H·W·A, per]` in torchvision's order (cell `y`, `x`, then anchor).
fn run_levels(
    tower: &[Conv2d],
    norms: &[GroupNorm],
    out: &Conv2d,
    features: &[Tensor<4>],
    per: usize,
) -> Tensor<3> {
    let levels: Vec<Tensor<3>> = features
        .iter()
        .map(|f| {
            let mut x = f.clone();
            for (i, c) in tower.iter().enumerate() {
                x = c.forward(x); // [B, D, H, W]
                if let Some(n) = norms.get(i) {
                    x = n.forward(x);
                }
                x = relu(x);
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
    /// Their GroupNorms with [`HeadNorm::Group`] (`conv.{i}.1`), else empty.
    pub norm: Vec<GroupNorm>,
    /// The output convolution, `A · K` channels.
    pub cls_logits: Conv2d,
    /// Classes `K`.
    pub num_classes: usize,
    /// Anchors per cell `A`.
    pub num_anchors: usize,
}

impl RetinaNetClassificationHead {
    /// Over `in_channels` feature channels, with prior probability
    /// `prior` for the output bias and `norm` in the tower.
    pub fn new(
        in_channels: usize,
        num_anchors: usize,
        num_classes: usize,
        prior: f64,
        norm: HeadNorm,
        device: &Device,
    ) -> Self {
        let bias = -((1.0 - prior) / prior).ln() as f32;
        let (conv, norm) = tower(in_channels, norm, device);
        RetinaNetClassificationHead {
            conv,
            norm,
            cls_logits: head_conv([in_channels, num_anchors * num_classes], Some(bias), device),
            num_classes,
            num_anchors,
        }
    }

    /// Class logits of every anchor of every level.
    ///
    /// # Shapes
    /// levels `[B, D, H_l, W_l]` → `[B, Σ_l H_l·W_l·A, K]`.
    pub fn forward(&self, features: &[Tensor<4>]) -> Tensor<3> {
        run_levels(
            &self.conv,
            &self.norm,
            &self.cls_logits,
            features,
            self.num_classes,
        )
    }
}

/// The box-regression subnet.
#[derive(Module, Debug)]
pub struct RetinaNetRegressionHead {
    /// Four 3×3 convolutions, each followed by ReLU (torchvision `conv.{i}.0`).
    pub conv: Vec<Conv2d>,
    /// Their GroupNorms with [`HeadNorm::Group`] (`conv.{i}.1`), else empty.
    pub norm: Vec<GroupNorm>,
    /// The output convolution, `A · 4` channels.
    pub bbox_reg: Conv2d,
    /// Anchors per cell `A`.
    pub num_anchors: usize,
}

impl RetinaNetRegressionHead {
    /// Over `in_channels` feature channels, with `norm` in the tower.
    pub fn new(in_channels: usize, num_anchors: usize, norm: HeadNorm, device: &Device) -> Self {
        let (conv, norm) = tower(in_channels, norm, device);
        RetinaNetRegressionHead {
            conv,
            norm,
            bbox_reg: head_conv([in_channels, num_anchors * 4], Some(0.0), device),
            num_anchors,
        }
    }

    /// Box deltas `(dx, dy, dw, dh)` of every anchor of every level.
    ///
    /// # Shapes
    /// levels `[B, D, H_l, W_l]` → `[B, Σ_l H_l·W_l·A, 4]`.
    pub fn forward(&self, features: &[Tensor<4>]) -> Tensor<3> {
        run_levels(&self.conv, &self.norm, &self.bbox_reg, features, 4)
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
    /// and `num_classes` classes, with `cls_logits`' prior `prior` (0.01)
    /// and `norm` in both towers.
    pub fn new(
        in_channels: usize,
        num_anchors: usize,
        num_classes: usize,
        prior: f64,
        norm: HeadNorm,
        device: &Device,
    ) -> Self {
        RetinaNetHead {
            classification_head: RetinaNetClassificationHead::new(
                in_channels,
                num_anchors,
                num_classes,
                prior,
                norm,
                device,
            ),
            regression_head: RetinaNetRegressionHead::new(in_channels, num_anchors, norm, device),
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
