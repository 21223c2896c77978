//! # DeepLabv3 (Chen et al., 2017, "Rethinking Atrous Convolution for Semantic Image Segmentation", arXiv:1706.05587)
//!
//! torchvision 0.24.0's `deeplabv3_resnet50`: a ResNet body whose last two
//! stages trade their stride for dilation (`replace_stride_with_dilation =
//! [false, true, true]`, output stride 8), the `DeepLabHead` on `layer4`
//! (ASPP: a 1×1 branch, three 3×3 atrous branches at rates 12/24/36 and an
//! image-pooling branch, each convolution + batch norm + ReLU, concatenated,
//! projected back with 1×1 + BN + ReLU and dropout 0.5; then 3×3 + BN +
//! ReLU and a 1×1 classifier) and optionally the auxiliary `FCNHead` on
//! `layer3` (3×3 to a quarter of its channels + BN + ReLU, dropout 0.1,
//! 1×1 classifier). Both outputs are upsampled bilinearly
//! (`align_corners = false`) to the input size. The backbone's norm is
//! trainable batch norm (torchvision's choice, frozen or not, with or
//! without pretrained weights).
//!
//! Training adds the auxiliary loss with weight 0.5 (torchvision's
//! reference `criterion`: `loss = CE(out) + 0.5 · CE(aux)`), through
//! [`SemanticSegmenter::segment_train`](unidl_train::SemanticSegmenter::segment_train).
//!
//! The model does not normalise its input (torchvision's segmentation
//! presets do it before the model); put a normalisation in the data
//! pipeline for pretrained weights.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{BatchNorm2d, Conv2d, Conv2dConfig, Dropout, DropoutConfig};
use unidl_tensor::trace;

use crate::blocks::{ConvBn, NormLayer, NormSettings, conv_dilated};
use crate::detection::{BackboneNormKind, ResNetBody, ResNetBodyConfig};
use crate::error::{Result, VisionError, positive, unit_interval};

fn twenty_one() -> usize {
    21
}
fn two_fifty_six() -> usize {
    256
}
fn rates() -> Vec<usize> {
    vec![12, 24, 36]
}
fn yes() -> bool {
    true
}
fn half() -> f64 {
    0.5
}
fn tenth() -> f64 {
    0.1
}
fn deeplab_backbone() -> ResNetBodyConfig {
    ResNetBodyConfig {
        trainable_layers: 5,
        norm: BackboneNormKind::Batch,
        replace_stride_with_dilation: [false, true, true],
        ..ResNetBodyConfig::default()
    }
}

/// Configuration of [`DeepLabV3`]; the defaults are torchvision's
/// `deeplabv3_resnet50(num_classes=21, aux_loss=True)`.
///
/// ```toml
/// num_classes = 21
/// aspp_channels = 256
/// atrous_rates = [12, 24, 36]
/// aux = true             # the FCN head on layer3, trained with weight 0.5
/// [backbone]             # ResNetBodyConfig; DeepLab's defaults:
/// depth = 50
/// norm = "batch"
/// trainable_layers = 5
/// replace_stride_with_dilation = [false, true, true]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepLabV3Config {
    /// Output classes, background included (torchvision: 21, VOC's).
    #[serde(default = "twenty_one")]
    pub num_classes: usize,
    /// The ResNet body (default: ResNet-50, batch norm, every stage
    /// trainable, `layer3` and `layer4` dilated).
    #[serde(default = "deeplab_backbone")]
    pub backbone: ResNetBodyConfig,
    /// Channels of the ASPP branches and of the head (256).
    #[serde(default = "two_fifty_six")]
    pub aspp_channels: usize,
    /// Dilations of the three atrous ASPP branches (`[12, 24, 36]`).
    #[serde(default = "rates")]
    pub atrous_rates: Vec<usize>,
    /// Build the auxiliary FCN head on `layer3` (torchvision's `aux_loss`).
    #[serde(default = "yes")]
    pub aux: bool,
    /// Weight of the auxiliary loss in training (0.5).
    #[serde(default = "half")]
    pub aux_weight: f64,
    /// Dropout after the ASPP projection (0.5).
    #[serde(default = "half")]
    pub dropout: f64,
    /// Dropout inside the auxiliary head (0.1).
    #[serde(default = "tenth")]
    pub aux_dropout: f64,
}

impl Default for DeepLabV3Config {
    fn default() -> Self {
        DeepLabV3Config {
            num_classes: 21,
            backbone: deeplab_backbone(),
            aspp_channels: 256,
            atrous_rates: rates(),
            aux: true,
            aux_weight: 0.5,
            dropout: 0.5,
            aux_dropout: 0.1,
        }
    }
}

/// A bias-free convolution with dilation `d` and "same" padding, then batch
/// norm (torchvision's `ASPPConv` and `Conv2dNormActivation` without ReLU).
fn conv_bn(channels: [usize; 2], kernel: usize, dilation: usize, device: &Device) -> ConvBn {
    ConvBn {
        conv: conv_dilated(channels, kernel, 1, dilation, device),
        bn: BatchNorm2d::build(channels[1], NormSettings::default(), device),
    }
}

/// A 1×1 classifier convolution with bias (PyTorch's default initialisation).
fn classifier(channels: [usize; 2], device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [1, 1]).init(device)
}

impl DeepLabV3Config {
    /// torchvision's `deeplabv3_resnet50` with `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        DeepLabV3Config {
            num_classes,
            ..DeepLabV3Config::default()
        }
    }

    /// Builds the model: the backbone as [`ResNetBodyConfig::init`] builds
    /// it, the heads with PyTorch's default convolution initialisation
    /// (torchvision does not re-initialise them), norms γ = 1, β = 0.
    ///
    /// A zero class or channel count, no atrous rate or a zero one, a
    /// weight or dropout outside `[0, 1]`, or an invalid backbone is
    /// [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<DeepLabV3> {
        positive("num_classes", self.num_classes)?;
        positive("aspp_channels", self.aspp_channels)?;
        if self.atrous_rates.is_empty() || self.atrous_rates.contains(&0) {
            return Err(VisionError::Config {
                key: "atrous_rates".into(),
                reason: format!("{:?}: give one or more positive rates", self.atrous_rates),
            });
        }
        unit_interval("aux_weight", self.aux_weight as f32)?;
        unit_interval("dropout", self.dropout as f32)?;
        unit_interval("aux_dropout", self.aux_dropout as f32)?;
        let backbone = self.backbone.init(device).map_err(|e| match e {
            VisionError::Config { key, reason } => VisionError::Config {
                key: format!("backbone.{key}"),
                reason,
            },
            other => other,
        })?;
        let [_, _, c4, c5] = self.backbone.stage_channels()?;
        let a = self.aspp_channels;
        let aspp = Aspp {
            convs: std::iter::once(conv_bn([c5, a], 1, 1, device))
                .chain(
                    self.atrous_rates
                        .iter()
                        .map(|&r| conv_bn([c5, a], 3, r, device)),
                )
                .collect(),
            pooling: conv_bn([c5, a], 1, 1, device),
            project: conv_bn([(self.atrous_rates.len() + 2) * a, a], 1, 1, device),
            dropout: DropoutConfig::new(self.dropout).init(),
        };
        let head = DeepLabHead {
            aspp,
            conv: conv_bn([a, a], 3, 1, device),
            out: classifier([a, self.num_classes], device),
        };
        let aux = self.aux.then(|| {
            let inter = c4 / 4;
            FcnHead {
                conv: conv_bn([c4, inter], 3, 1, device),
                dropout: DropoutConfig::new(self.aux_dropout).init(),
                out: classifier([inter, self.num_classes], device),
            }
        });
        Ok(DeepLabV3 {
            backbone,
            classifier: head,
            aux_classifier: aux,
            num_classes: self.num_classes,
            aux_weight: self.aux_weight,
        })
    }
}

/// Atrous spatial pyramid pooling (torchvision's `ASPP`).
#[derive(Module, Debug)]
pub struct Aspp {
    /// The 1×1 branch, then one 3×3 branch per atrous rate
    /// (torchvision's `convs.0` … `convs.{R}`).
    pub convs: Vec<ConvBn>,
    /// The image-pooling branch's 1×1 convolution and norm
    /// (`convs.{R+1}.1`, `.2`).
    pub pooling: ConvBn,
    /// The 1×1 projection of the concatenated branches (`project.0`, `.1`).
    pub project: ConvBn,
    /// Dropout after the projection (`project.3`).
    pub dropout: Dropout,
}

impl Aspp {
    /// # Shapes
    /// `[B, C, h, w]` → `[B, aspp_channels, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, _, h, w] = x.dims();
        let mut branches: Vec<Tensor<4>> = self
            .convs
            .iter()
            .map(|c| relu(c.forward(x.clone()))) // [B, A, h, w]
            .collect();
        let pooled = x.mean_dim(3).mean_dim(2); // [B, C, 1, 1]
        let pooled = relu(self.pooling.forward(pooled)); // [B, A, 1, 1]
        let a = pooled.dims()[1];
        // bilinear upsampling of a 1×1 map is the broadcast
        branches.push(pooled.expand([b, a, h, w])); // [B, A, h, w]
        let cat = Tensor::cat(branches, 1); // [B, (R+2)·A, h, w]
        self.dropout.forward(relu(self.project.forward(cat))) // [B, A, h, w]
    }
}

/// torchvision's `DeepLabHead`: ASPP, 3×3 + BN + ReLU, 1×1 classifier.
#[derive(Module, Debug)]
pub struct DeepLabHead {
    /// `classifier.0`.
    pub aspp: Aspp,
    /// `classifier.1` (convolution) and `classifier.2` (norm).
    pub conv: ConvBn,
    /// `classifier.4`.
    pub out: Conv2d,
}

impl DeepLabHead {
    /// # Shapes
    /// `[B, C, h, w]` → `[B, num_classes, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.aspp.forward(x); // [B, A, h, w]
        self.out.forward(relu(self.conv.forward(x))) // [B, K, h, w]
    }
}

/// torchvision's `FCNHead`: 3×3 to a quarter of the channels + BN + ReLU,
/// dropout, 1×1 classifier.
#[derive(Module, Debug)]
pub struct FcnHead {
    /// `aux_classifier.0` (convolution) and `.1` (norm).
    pub conv: ConvBn,
    /// `aux_classifier.3`.
    pub dropout: Dropout,
    /// `aux_classifier.4`.
    pub out: Conv2d,
}

impl FcnHead {
    /// # Shapes
    /// `[B, C, h, w]` → `[B, num_classes, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.dropout.forward(relu(self.conv.forward(x))); // [B, C/4, h, w]
        self.out.forward(x) // [B, K, h, w]
    }
}

/// DeepLabv3 with a ResNet body. Build it with [`DeepLabV3Config::init`].
#[derive(Module, Debug)]
pub struct DeepLabV3 {
    /// The dilated ResNet body (`backbone.*`).
    pub backbone: ResNetBody,
    /// The DeepLab head on `layer4` (`classifier.*`).
    pub classifier: DeepLabHead,
    /// The auxiliary FCN head on `layer3` (`aux_classifier.*`).
    pub aux_classifier: Option<FcnHead>,
    /// Output classes.
    #[module(skip)]
    pub num_classes: usize,
    /// Weight of the auxiliary loss.
    #[module(skip)]
    pub aux_weight: f64,
}

/// What [`DeepLabV3::forward`] returns.
#[derive(Debug, Clone)]
pub struct DeepLabV3Output {
    /// Class logits at the input size, `[B, K, H, W]` (torchvision's `out`).
    pub out: Tensor<4>,
    /// The auxiliary head's logits at the input size (`aux`), when built.
    pub aux: Option<Tensor<4>>,
}

/// Bilinear resize to `size` (`align_corners = false`).
fn upsample(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size(size),
    )
}

impl DeepLabV3 {
    /// Logits of both heads at the input size. Records `backbone`,
    /// `classifier` and `aux_classifier` shapes for model summaries.
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → `out`, `aux`: `[B, num_classes, H, W]`
    /// (the heads run at `⌈H/8⌉ × ⌈W/8⌉` with the default dilation).
    pub fn forward(&self, x: Tensor<4>) -> DeepLabV3Output {
        let [_, _, h, w] = x.dims();
        let [_, _, c4, c5] = self.backbone.forward(x); // C4, C5: [B, ·, H/8, W/8]
        trace::record("backbone", &c5.dims());
        let out = self.classifier.forward(c5); // [B, K, H/8, W/8]
        trace::record("classifier", &out.dims());
        let aux = self.aux_classifier.as_ref().map(|a| {
            let y = a.forward(c4); // [B, K, H/8, W/8]
            trace::record("aux_classifier", &y.dims());
            upsample(y, [h, w]) // [B, K, H, W]
        });
        DeepLabV3Output {
            out: upsample(out, [h, w]), // [B, K, H, W]
            aux,
        }
    }
}

impl unidl_train::SemanticSegmenter for DeepLabV3 {
    /// The main head's logits.
    fn segment(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<4>> {
        Ok(self.forward(images).out)
    }

    /// The main logits and, when built, the auxiliary head's with
    /// `aux_weight`.
    #[allow(clippy::type_complexity)]
    fn segment_train(
        &self,
        images: Tensor<4>,
    ) -> unidl_train::Result<(Tensor<4>, Vec<(f64, Tensor<4>)>)> {
        let o = self.forward(images);
        let aux = o
            .aux
            .map(|a| vec![(self.aux_weight, a)])
            .unwrap_or_default();
        Ok((o.out, aux))
    }
}
