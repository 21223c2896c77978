//! The ResNet body of torchvision's detection backbones
//! (`torchvision.models.detection.backbone_utils._resnet_fpn_extractor`):
//! the classification ResNet without pooling and classifier, normalised with
//! [`FrozenBatchNorm2d`](super::FrozenBatchNorm2d) (pretrained backbones) or a trainable batch norm
//! (from scratch; [`BackboneNormKind`]), returning the outputs of its four
//! stages, and with the stages nearest the input frozen (`trainable_layers`).
//!
//! Parameter names are torchvision's `backbone.body.*` names after the
//! prefix (`conv1`, `bn1`, `layer{n}.{b}.conv{k}`, …; the shortcut is
//! `downsample.conv`/`downsample.bn` for torchvision's
//! `downsample.0`/`downsample.1`, as in the classifier).

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{Conv2d, MaxPool2d, MaxPool2dConfig, PaddingConfig2d};
use unidl_tensor::trace;

use super::{BackboneNorm, BackboneNormKind};
use crate::blocks::{NormLayer, NormSettings, conv};
use crate::classification::ResNetConfig;
use crate::classification::resnet::{Block, dilated_stages};
use crate::error::{Result, VisionError, positive};

fn fifty() -> usize {
    50
}
fn sixty_four() -> usize {
    64
}
fn three() -> usize {
    3
}
fn frozen_eps() -> f64 {
    1e-5
}

/// Configuration of [`ResNetBody`].
///
/// ```toml
/// depth = 50             # 18, 34, 50, 101 or 152
/// width = 64             # torchvision's; smaller builds reduced models
/// trainable_layers = 3   # torchvision's default with a pretrained backbone
/// norm = "frozen"        # "batch" to train from scratch
/// replace_stride_with_dilation = [false, false, false]   # DeepLab: [false, true, true]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetBodyConfig {
    /// 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).
    #[serde(default = "fifty")]
    pub depth: usize,
    /// Planes of the stem and first stage (torchvision: 64).
    #[serde(default = "sixty_four")]
    pub width: usize,
    /// Input channels.
    #[serde(default = "three")]
    pub in_channels: usize,
    /// How many stages, counted from the output, train: torchvision's
    /// `trainable_layers` in 0..=5, selecting from `layer4`, `layer3`,
    /// `layer2`, `layer1`, `conv1` in that order. The rest are frozen with
    /// Burn's `no_grad()` (torchvision: `requires_grad_(False)`). Default 3,
    /// torchvision's for a pretrained backbone.
    #[serde(default = "three")]
    pub trainable_layers: usize,
    /// `eps` of every norm (torchvision: 1e-5; its
    /// pretrained COCO RetinaNet weights are used with 0).
    #[serde(default = "frozen_eps")]
    pub frozen_bn_eps: f64,
    /// The norm layer: `"frozen"` ([`FrozenBatchNorm2d`](super::FrozenBatchNorm2d), default, for
    /// pretrained weights) or `"batch"` (trainable batch norm with running
    /// statistics, momentum 0.1, for training from scratch). torchvision
    /// picks `FrozenBatchNorm2d` when backbone weights are given and
    /// `nn.BatchNorm2d` otherwise.
    #[serde(default)]
    pub norm: BackboneNormKind,
    /// torchvision's `replace_stride_with_dilation` for `layer2`…`layer4`:
    /// a set entry keeps that stage at its input's resolution and dilates
    /// its 3×3 convolutions instead (DeepLabv3: `[false, true, true]`,
    /// output stride 8). Bottleneck depths (50, 101, 152) only.
    #[serde(default)]
    pub replace_stride_with_dilation: [bool; 3],
}

impl Default for ResNetBodyConfig {
    fn default() -> Self {
        ResNetBodyConfig {
            depth: 50,
            width: 64,
            in_channels: 3,
            trainable_layers: 3,
            frozen_bn_eps: 1e-5,
            norm: BackboneNormKind::Frozen,
            replace_stride_with_dilation: [false; 3],
        }
    }
}

impl ResNetBodyConfig {
    /// Channels of the four stage outputs `C2…C5` (`width · {1, 2, 4, 8}`,
    /// times 4 for bottleneck depths).
    pub fn stage_channels(&self) -> Result<[usize; 4]> {
        let (_, bottleneck) = self.layout()?;
        let e = if bottleneck { 4 } else { 1 };
        let w = self.width;
        Ok([w * e, 2 * w * e, 4 * w * e, 8 * w * e])
    }

    fn layout(&self) -> Result<([usize; 4], bool)> {
        ResNetConfig::new(self.depth).layout()
    }

    /// Builds the body: torchvision's initialisation (Kaiming-normal
    /// fan-out convolutions; norms start as the identity: γ = 1, β = 0,
    /// mean 0, variance 1), then the stages outside `trainable_layers`
    /// frozen.
    ///
    /// An unknown depth, a zero width or channel count, `trainable_layers`
    /// above 5, a negative or non-finite `frozen_bn_eps` or dilation with
    /// basic blocks is [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<ResNetBody> {
        let (blocks, bottleneck) = self.layout()?;
        positive("width", self.width)?;
        positive("in_channels", self.in_channels)?;
        if self.trainable_layers > 5 {
            return Err(VisionError::Config {
                key: "trainable_layers".into(),
                reason: format!("{} is not in 0..=5", self.trainable_layers),
            });
        }
        if !(self.frozen_bn_eps.is_finite() && self.frozen_bn_eps >= 0.0) {
            return Err(VisionError::Config {
                key: "frozen_bn_eps".into(),
                reason: format!("{} must be finite and at least 0", self.frozen_bn_eps),
            });
        }
        let w = self.width;
        let norm = NormSettings {
            epsilon: self.frozen_bn_eps,
            backbone: self.norm,
            ..NormSettings::default()
        };
        let conv1 = conv([self.in_channels, w], 7, 2, 1, device);
        if !bottleneck && self.replace_stride_with_dilation.contains(&true) {
            return Err(VisionError::Config {
                key: "replace_stride_with_dilation".into(),
                reason: format!(
                    "dilation needs bottleneck blocks (depth 50, 101 or 152), not depth {}",
                    self.depth
                ),
            });
        }
        let [layer1, layer2, layer3, layer4] = dilated_stages(
            blocks,
            bottleneck,
            w,
            self.replace_stride_with_dilation,
            norm,
            device,
        );
        let body = ResNetBody {
            conv1,
            bn1: BackboneNorm::build(w, norm, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
        };
        Ok(body.freeze_below(self.trainable_layers))
    }
}

/// A ResNet without its pooling and classifier, normalised with
/// [`BackboneNorm`] (frozen or trainable): the stem (7×7 stride-2
/// convolution, norm, ReLU, 3×3 stride-2 max-pool) and four stages. Build it with
/// [`ResNetBodyConfig::init`].
#[derive(Module, Debug)]
pub struct ResNetBody {
    /// Stem convolution (7×7, stride 2).
    pub conv1: Conv2d,
    /// Stem norm.
    pub bn1: BackboneNorm,
    /// Stem max-pool (3×3, stride 2).
    pub maxpool: MaxPool2d,
    /// Stage 1 (`C2`, stride 4).
    pub layer1: Vec<Block<BackboneNorm>>,
    /// Stage 2 (`C3`, stride 8).
    pub layer2: Vec<Block<BackboneNorm>>,
    /// Stage 3 (`C4`, stride 16).
    pub layer3: Vec<Block<BackboneNorm>>,
    /// Stage 4 (`C5`, stride 32).
    pub layer4: Vec<Block<BackboneNorm>>,
}

impl ResNetBody {
    /// Freezes what torchvision's `_resnet_fpn_extractor(backbone,
    /// trainable_layers)` freezes: every parameter outside the last
    /// `trainable` of `layer4`, `layer3`, `layer2`, `layer1`, `conv1`
    /// stops requiring gradients (Burn's `no_grad()`, kept through
    /// `train()`, checkpoints and loading). Frozen norms never train; batch
    /// norms in frozen stages keep updating their running statistics in
    /// training mode, as in torchvision.
    pub fn freeze_below(mut self, trainable: usize) -> Self {
        if trainable < 5 {
            // torchvision trains the stem's norm only with all five
            self.conv1 = self.conv1.no_grad();
            self.bn1 = self.bn1.no_grad();
        }
        let freeze = |stage: Vec<Block<BackboneNorm>>| -> Vec<Block<BackboneNorm>> {
            stage.into_iter().map(|b| b.no_grad()).collect()
        };
        if trainable < 4 {
            self.layer1 = freeze(self.layer1);
        }
        if trainable < 3 {
            self.layer2 = freeze(self.layer2);
        }
        if trainable < 2 {
            self.layer3 = freeze(self.layer3);
        }
        if trainable < 1 {
            self.layer4 = freeze(self.layer4);
        }
        self
    }

    /// The outputs of the four stages, `[C2, C3, C4, C5]`. Records the
    /// shapes of `stem` and `layer1` … `layer4` for model summaries.
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → `C_k: [B, width·2^(k-2)·e, ⌈H/2^k⌉, ⌈W/2^k⌉]`
    /// (approximately: each stride-2 step rounds up), `e` = 4 for
    /// bottleneck depths, else 1. A dilated stage keeps its input's size
    /// (DeepLab's `[false, true, true]`: `C4`, `C5` at `⌈H/8⌉ × ⌈W/8⌉`).
    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 4] {
        let x = relu(self.bn1.forward(self.conv1.forward(x))); // [B, w, H/2, W/2]
        let x = self.maxpool.forward(x); // [B, w, H/4, W/4]
        trace::record("stem", &x.dims());
        let run = |stage: &[Block<BackboneNorm>], mut x: Tensor<4>| {
            for b in stage {
                x = b.forward(x);
            }
            x
        };
        let c2 = run(&self.layer1, x); // [B, w·e, H/4, W/4]
        trace::record("layer1", &c2.dims());
        let c3 = run(&self.layer2, c2.clone()); // [B, 2w·e, H/8, W/8]
        trace::record("layer2", &c3.dims());
        let c4 = run(&self.layer3, c3.clone()); // [B, 4w·e, H/16, W/16]
        trace::record("layer3", &c4.dims());
        let c5 = run(&self.layer4, c4.clone()); // [B, 8w·e, H/32, W/32]
        trace::record("layer4", &c5.dims());
        [c2, c3, c4, c5]
    }
}

/// A ResNet body with a Feature Pyramid Network on the stages it returns
/// (torchvision's `BackboneWithFPN`: `backbone.body`, `backbone.fpn`).
#[derive(Module, Debug)]
pub struct BackboneWithFpn {
    /// The ResNet body.
    pub body: ResNetBody,
    /// The pyramid over the returned stages.
    pub fpn: crate::detection::FeaturePyramidNetwork,
    /// The stages fed to the pyramid, 1-based as torchvision's
    /// `returned_layers` (RetinaNet: `[2, 3, 4]`, i.e. C3–C5).
    #[module(skip)]
    pub returned_layers: Vec<usize>,
}

impl BackboneWithFpn {
    /// The pyramid levels, finest first (RetinaNet: P3–P7).
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → per level `[B, out_channels, H_l, W_l]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Vec<Tensor<4>>> {
        let stages = self.body.forward(x);
        let picked = self
            .returned_layers
            .iter()
            .map(|&k| {
                stages
                    .get(k.wrapping_sub(1))
                    .cloned()
                    .ok_or_else(|| VisionError::Config {
                        key: "returned_layers".into(),
                        reason: format!("{k} is not a stage in 1..=4"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        self.fpn.forward(picked)
    }
}
