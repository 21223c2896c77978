//! # ResNet3D (Tran et al., 2018, "A Closer Look at Spatiotemporal Convolutions for Action Recognition", arXiv:1711.11248)
//!
//! torchvision's `VideoResNet` with basic blocks, in three variants that
//! differ only in their convolutions:
//!
//! | variant | stem | stages 1 / 2–4 | torchvision |
//! |---|---|---|---|
//! | `r3d` | 3×7×7 conv, stride 1×2×2 | full 3×3×3 convolutions | `r3d_18` (33,371,472 parameters, 400 classes) |
//! | `mc3` | as `r3d` | 3×3×3 / 1×3×3 (no temporal extent after stage 1) | `mc3_18` (11,695,440) |
//! | `r2plus1d` | 1×7×7 conv to 45 channels, BN, ReLU, 3×1×1 conv | every 3×3×3 factored into 1×3×3 → BN → ReLU → 3×1×1 with `midplanes = ⌊27·in·out / (9·in + 3·out)⌋` | `r2plus1d_18` (31,505,325) |
//!
//! Stages have `width·{1, 2, 4, 8}` planes (64 in torchvision; smaller
//! widths build reduced models, the R(2+1)D stem then has `⌊45·width/64⌋`
//! channels); stages 2–4 halve time, height and width (`mc3`: height and
//! width only). Every convolution is bias-free, followed by batch norm
//! (`eps = 1e-5`, `momentum = 0.1`); global average pooling and a linear
//! classifier end the network. Initialisation as torchvision's: Kaiming-normal
//! (fan-out) convolutions, BN γ = 1, β = 0, linear N(0, 0.01) with zero bias.
//!
//! Parameter names: `stem.{conv,bn,conv_t,bn_t}`, `layer{n}.{b}.conv{k}.{conv,mid_bn,temporal}`,
//! `layer{n}.{b}.bn{k}`, `layer{n}.{b}.downsample.{conv,bn}`, `fc`; the
//! mapping to torchvision's is in [`crate::weights`].

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{BatchNorm3d, Conv3d, Linear, LinearConfig};
use unidl_tensor::trace;

use crate::blocks::{ConvBn3d, ConvInit, Norm, conv3d};
use crate::{Result, VideoError, positive};

/// Which convolutions the network is built from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoResNetVariant {
    /// Full 3-D convolutions everywhere (R3D).
    #[default]
    R3d,
    /// 3-D convolutions in stage 1, 2-D (1×3×3) after it (MC3: mixed convolutions).
    Mc3,
    /// Every 3-D convolution factored into spatial + temporal ((2+1)D).
    R2plus1d,
}

impl VideoResNetVariant {
    /// torchvision's constructor name at depth 18.
    pub fn torchvision_name(self) -> &'static str {
        match self {
            VideoResNetVariant::R3d => "r3d_18",
            VideoResNetVariant::Mc3 => "mc3_18",
            VideoResNetVariant::R2plus1d => "r2plus1d_18",
        }
    }
}

/// ResNet3D configuration (`[model] name = "video_resnet"`).
///
/// ```toml
/// variant = "r3d"      # r3d, mc3 or r2plus1d
/// depth = 18           # 18 or 34 (basic blocks)
/// num_classes = 8
/// width = 16           # 64 in torchvision; smaller builds reduced models
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoResNetConfig {
    /// The convolutions (default `r3d`).
    #[serde(default)]
    pub variant: VideoResNetVariant,
    /// 18 (`[2, 2, 2, 2]` blocks, torchvision's) or 34 (`[3, 4, 6, 3]`).
    #[serde(default = "eighteen")]
    pub depth: usize,
    /// Output classes (torchvision's default: 400, Kinetics).
    #[serde(default = "four_hundred")]
    pub num_classes: usize,
    /// Input channels (3 for RGB).
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Planes of the stem and the first stage (64 in torchvision).
    #[serde(default = "sixty_four")]
    pub width: usize,
}

fn eighteen() -> usize {
    18
}
fn four_hundred() -> usize {
    400
}
fn three() -> usize {
    3
}
fn sixty_four() -> usize {
    64
}

impl Default for VideoResNetConfig {
    fn default() -> Self {
        VideoResNetConfig::new(VideoResNetVariant::R3d)
    }
}

/// The one batch-norm setting of the network (PyTorch's defaults).
const NORM: Norm = Norm {
    epsilon: 1e-5,
    momentum: 0.1,
};

impl VideoResNetConfig {
    /// torchvision's `{variant}_18`: 400 classes, RGB, width 64.
    pub fn new(variant: VideoResNetVariant) -> Self {
        VideoResNetConfig {
            variant,
            depth: 18,
            num_classes: 400,
            in_channels: 3,
            width: 64,
        }
    }

    /// Channels of the R(2+1)D stem's spatial convolution (45 at width 64).
    pub fn stem_mid(&self) -> usize {
        (45 * self.width / 64).max(1)
    }

    /// Builds the model with torchvision's initialisation. A depth other
    /// than 18/34 or a zero count is [`VideoError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<VideoResNet> {
        let blocks = match self.depth {
            18 => [2, 2, 2, 2],
            34 => [3, 4, 6, 3],
            d => {
                return Err(VideoError::Config {
                    key: "depth".into(),
                    reason: format!("{d} is not 18 or 34"),
                });
            }
        };
        positive("num_classes", self.num_classes)?;
        positive("in_channels", self.in_channels)?;
        positive("width", self.width)?;
        let w = self.width;
        let k = ConvInit::KaimingFanOut;
        let stem = match self.variant {
            VideoResNetVariant::R3d | VideoResNetVariant::Mc3 => VideoStem {
                conv: conv3d(
                    [self.in_channels, w],
                    [3, 7, 7],
                    [1, 2, 2],
                    [1, 3, 3],
                    k,
                    device,
                ),
                bn: NORM.init(w, device),
                conv_t: None,
                bn_t: None,
            },
            VideoResNetVariant::R2plus1d => {
                let mid = self.stem_mid();
                VideoStem {
                    conv: conv3d(
                        [self.in_channels, mid],
                        [1, 7, 7],
                        [1, 2, 2],
                        [0, 3, 3],
                        k,
                        device,
                    ),
                    bn: NORM.init(mid, device),
                    conv_t: Some(conv3d([mid, w], [3, 1, 1], [1, 1, 1], [1, 0, 0], k, device)),
                    bn_t: Some(NORM.init(w, device)),
                }
            }
        };
        let mut in_planes = w;
        let mut stage = |index: usize, planes: usize, n: usize, stride: usize| -> Vec<VideoBlock> {
            let kind = match (self.variant, index) {
                (VideoResNetVariant::R3d, _) | (VideoResNetVariant::Mc3, 0) => ConvKind::Full,
                (VideoResNetVariant::Mc3, _) => ConvKind::NoTemporal,
                (VideoResNetVariant::R2plus1d, _) => ConvKind::Factored,
            };
            (0..n)
                .map(|i| {
                    let s = if i == 0 { stride } else { 1 };
                    let b = VideoBlock::new(in_planes, planes, s, kind, device);
                    in_planes = planes;
                    b
                })
                .collect()
        };
        let layer1 = stage(0, w, blocks[0], 1);
        let layer2 = stage(1, 2 * w, blocks[1], 2);
        let layer3 = stage(2, 4 * w, blocks[2], 2);
        let layer4 = stage(3, 8 * w, blocks[3], 2);
        let mut fc = LinearConfig::new(8 * w, self.num_classes)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            })
            .init(device);
        fc.bias = fc.bias.map(|b| b.map(|t| t.zeros_like()));
        Ok(VideoResNet {
            stem,
            layer1,
            layer2,
            layer3,
            layer4,
            fc,
            in_channels: self.in_channels,
        })
    }
}

/// The convolutions of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConvKind {
    /// 3×3×3.
    Full,
    /// 1×3×3.
    NoTemporal,
    /// 1×3×3 → BN → ReLU → 3×1×1.
    Factored,
}

/// The stem: one convolution + BN (+ the temporal half for R(2+1)D), ReLU after each.
#[derive(Module, Debug)]
pub struct VideoStem {
    /// 3×7×7 (R3D, MC3) or 1×7×7 (R(2+1)D) convolution, stride 1×2×2.
    pub conv: Conv3d,
    /// Its batch norm.
    pub bn: BatchNorm3d,
    /// R(2+1)D: the 3×1×1 convolution.
    pub conv_t: Option<Conv3d>,
    /// R(2+1)D: its batch norm.
    pub bn_t: Option<BatchNorm3d>,
}

impl VideoStem {
    /// # Shapes
    /// `[B, C, T, H, W]` → `[B, width, T, ⌈H/2⌉, ⌈W/2⌉]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let x = relu(self.bn.forward(self.conv.forward(x)));
        match (&self.conv_t, &self.bn_t) {
            (Some(c), Some(b)) => relu(b.forward(c.forward(x))),
            _ => x,
        }
    }
}

/// One block convolution: full, spatial only, or factored (2+1)D.
#[derive(Module, Debug)]
pub struct FactorConv {
    /// 3×3×3 (full), or 1×3×3 (spatial only, and the factored one's first half).
    pub conv: Conv3d,
    /// (2+1)D: the batch norm between the halves.
    pub mid_bn: Option<BatchNorm3d>,
    /// (2+1)D: the 3×1×1 convolution.
    pub temporal: Option<Conv3d>,
}

impl FactorConv {
    fn new(
        channels: [usize; 2],
        midplanes: usize,
        stride: usize,
        kind: ConvKind,
        device: &Device,
    ) -> Self {
        let k = ConvInit::KaimingFanOut;
        let s = stride;
        match kind {
            ConvKind::Full => FactorConv {
                conv: conv3d(channels, [3, 3, 3], [s, s, s], [1, 1, 1], k, device),
                mid_bn: None,
                temporal: None,
            },
            ConvKind::NoTemporal => FactorConv {
                conv: conv3d(channels, [1, 3, 3], [1, s, s], [0, 1, 1], k, device),
                mid_bn: None,
                temporal: None,
            },
            ConvKind::Factored => FactorConv {
                conv: conv3d(
                    [channels[0], midplanes],
                    [1, 3, 3],
                    [1, s, s],
                    [0, 1, 1],
                    k,
                    device,
                ),
                mid_bn: Some(NORM.init(midplanes, device)),
                temporal: Some(conv3d(
                    [midplanes, channels[1]],
                    [3, 1, 1],
                    [s, 1, 1],
                    [1, 0, 0],
                    k,
                    device,
                )),
            },
        }
    }

    /// # Shapes
    /// `[B, C_in, T, H, W]` → `[B, C_out, T/s, H/s, W/s]` (spatial only: `T` kept).
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let y = self.conv.forward(x);
        match (&self.mid_bn, &self.temporal) {
            (Some(bn), Some(t)) => t.forward(relu(bn.forward(y))),
            _ => y,
        }
    }
}

/// A basic residual block: two convolutions with batch norm, a projection
/// shortcut when the shape changes.
#[derive(Module, Debug)]
pub struct VideoBlock {
    /// First convolution (carries the stride).
    pub conv1: FactorConv,
    /// Its batch norm.
    pub bn1: BatchNorm3d,
    /// Second convolution.
    pub conv2: FactorConv,
    /// Its batch norm.
    pub bn2: BatchNorm3d,
    /// 1×1×1 strided convolution + batch norm when the shape changes.
    pub downsample: Option<ConvBn3d>,
}

impl VideoBlock {
    fn new(
        in_planes: usize,
        planes: usize,
        stride: usize,
        kind: ConvKind,
        device: &Device,
    ) -> Self {
        let midplanes = (in_planes * planes * 27) / (in_planes * 9 + 3 * planes);
        let downsample = (stride != 1 || in_planes != planes).then(|| {
            let s = if kind == ConvKind::NoTemporal {
                [1, stride, stride]
            } else {
                [stride; 3]
            };
            ConvBn3d::new(
                [in_planes, planes],
                [1, 1, 1],
                s,
                [0, 0, 0],
                ConvInit::KaimingFanOut,
                NORM,
                device,
            )
        });
        VideoBlock {
            conv1: FactorConv::new([in_planes, planes], midplanes, stride, kind, device),
            bn1: NORM.init(planes, device),
            conv2: FactorConv::new([planes, planes], midplanes, 1, kind, device),
            bn2: NORM.init(planes, device),
            downsample,
        }
    }

    /// # Shapes
    /// `[B, C_in, T, H, W]` → `[B, planes, T/s, H/s, W/s]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let identity = match &self.downsample {
            Some(d) => d.forward(x.clone()),
            None => x.clone(),
        };
        let y = relu(self.bn1.forward(self.conv1.forward(x)));
        let y = self.bn2.forward(self.conv2.forward(y));
        relu(y + identity)
    }
}

/// ResNet3D: stem, four stages of basic blocks, global average pool, linear
/// classifier. Build it with [`VideoResNetConfig::init`].
#[derive(Module, Debug)]
pub struct VideoResNet {
    /// The stem.
    pub stem: VideoStem,
    /// Stage 1: `width` planes, stride 1.
    pub layer1: Vec<VideoBlock>,
    /// Stage 2: `2·width` planes, stride 2.
    pub layer2: Vec<VideoBlock>,
    /// Stage 3: `4·width` planes, stride 2.
    pub layer3: Vec<VideoBlock>,
    /// Stage 4: `8·width` planes, stride 2.
    pub layer4: Vec<VideoBlock>,
    /// The classifier.
    pub fc: Linear,
    /// Input channels the stem expects.
    pub in_channels: usize,
}

impl VideoResNet {
    /// Class logits. Records the output shapes of `stem`, `layer1` …
    /// `layer4`, `avgpool` and `fc` for model summaries.
    ///
    /// # Shapes
    /// `[B, in_channels, T, H, W]` → `[B, num_classes]`; any `T, H, W ≥ 1`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let mut x = self.stem.forward(x); // [B, w, T, H/2, W/2]
        trace::record("stem", &x.dims());
        for (name, stage) in [
            ("layer1", &self.layer1), // [B, w, T, H/2, W/2]
            ("layer2", &self.layer2), // [B, 2w, T/2, H/4, W/4]
            ("layer3", &self.layer3), // [B, 4w, T/4, H/8, W/8]
            ("layer4", &self.layer4), // [B, 8w, T/8, H/16, W/16]
        ] {
            for b in stage {
                x = b.forward(x);
            }
            trace::record(name, &x.dims());
        }
        let [b, c, t, h, w] = x.dims();
        let x = x.reshape([b, c, t * h * w]).mean_dim(2).reshape([b, c]); // [B, 8w]
        trace::record("avgpool", &x.dims());
        let y = self.fc.forward(x);
        trace::record("fc", &y.dims());
        y
    }

    /// [`forward`](Self::forward) after checking the clip: rank-5, the
    /// configured channels, a non-empty batch and extent.
    pub fn try_forward(&self, x: Tensor<5>) -> Result<Tensor<2>> {
        crate::blocks::check_clip("ResNet3D", &x.dims(), self.in_channels, [1, 1, 1])?;
        Ok(self.forward(x))
    }
}

impl unidl_train::VideoClassifier for VideoResNet {
    fn classify_clips(&self, clips: Tensor<5>) -> Tensor<2> {
        self.forward(clips)
    }
}
