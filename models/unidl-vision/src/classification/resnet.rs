//! # ResNet (He et al., 2016, "Deep Residual Learning for Image Recognition", arXiv:1512.03385)
//!
//! ResNet-18/34 (basic blocks: two 3×3 convolutions) and ResNet-50/101/152
//! (bottleneck blocks: 1×1, 3×3, 1×1 with 4× expansion), in **torchvision's
//! v1.5 layout**: in a bottleneck the stride sits on the 3×3 convolution, not
//! on the first 1×1; shortcuts that change shape are a strided 1×1 conv + batch
//! norm. Every convolution is bias-free and followed by batch norm
//! (`eps = 1e-5`, `momentum = 0.1`).
//!
//! Two stems:
//! - ImageNet (default): 7×7 conv stride 2, batch norm, ReLU, 3×3 max-pool stride 2
//!   (total stride 32);
//! - small-image (`small_input = true`, for 28–32 px inputs such as MNIST or
//!   CIFAR): 3×3 conv stride 1, batch norm, ReLU, no max-pool (total stride 8).
//!
//! Parameter names follow torchvision (`conv1`, `bn1`, `layer1.0.conv1`, …,
//! `fc`) except the shortcut, `downsample.conv`/`downsample.bn` for
//! torchvision's `downsample.0`/`downsample.1`; see [`crate::torchvision`].

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{
    BatchNorm2d, Conv2d, Linear, LinearConfig, MaxPool2d, MaxPool2dConfig, PaddingConfig2d,
};
use unidl_tensor::trace;

use crate::blocks::{ConvBn, NormLayer, NormSettings, conv, conv_dilated};
use crate::error::{Result, VisionError, positive};

/// ResNet configuration.
///
/// ```toml
/// depth = 18          # 18, 34, 50, 101 or 152
/// num_classes = 10
/// in_channels = 1
/// small_input = true  # 3×3 stride-1 stem without max-pool, for 28–32 px images
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).
    pub depth: usize,
    /// Output classes (torchvision's default is 1000).
    #[serde(default = "thousand")]
    pub num_classes: usize,
    /// Input channels (3 for RGB, 1 for grey).
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Small-image stem (3×3 stride-1 conv, no max-pool) instead of ImageNet's.
    #[serde(default)]
    pub small_input: bool,
    /// Planes of the stem and first stage; the stages have `width · {1, 2, 4, 8}`.
    /// torchvision's is 64; smaller values build reduced models (tests,
    /// quick CPU training).
    #[serde(default = "sixty_four")]
    pub width: usize,
}

pub(crate) fn sixty_four() -> usize {
    64
}

pub(crate) fn thousand() -> usize {
    1000
}
pub(crate) fn three() -> usize {
    3
}

impl ResNetConfig {
    /// `resnet{depth}` with 1000 classes and 3 input channels, ImageNet stem.
    pub fn new(depth: usize) -> Self {
        ResNetConfig {
            depth,
            num_classes: 1000,
            in_channels: 3,
            small_input: false,
            width: 64,
        }
    }

    /// Sets the base width (64 in torchvision).
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Sets the number of classes.
    pub fn with_num_classes(mut self, n: usize) -> Self {
        self.num_classes = n;
        self
    }

    /// Sets the number of input channels.
    pub fn with_in_channels(mut self, n: usize) -> Self {
        self.in_channels = n;
        self
    }

    /// Chooses the small-image stem.
    pub fn with_small_input(mut self, small: bool) -> Self {
        self.small_input = small;
        self
    }

    /// Blocks per stage and whether they are bottlenecks.
    pub(crate) fn layout(&self) -> Result<([usize; 4], bool)> {
        Ok(match self.depth {
            18 => ([2, 2, 2, 2], false),
            34 => ([3, 4, 6, 3], false),
            50 => ([3, 4, 6, 3], true),
            101 => ([3, 4, 23, 3], true),
            152 => ([3, 8, 36, 3], true),
            d => {
                return Err(VisionError::Config {
                    key: "depth".into(),
                    reason: format!("ResNet depth {d} is not one of 18, 34, 50, 101, 152"),
                });
            }
        })
    }

    /// Builds the model with freshly initialised weights (torchvision's
    /// scheme: Kaiming-normal fan-out convolutions, BN γ = 1, β = 0).
    ///
    /// A depth outside 18/34/50/101/152 or a zero class/channel count is
    /// [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        let (blocks, bottleneck) = self.layout()?;
        positive("num_classes", self.num_classes)?;
        positive("in_channels", self.in_channels)?;
        positive("width", self.width)?;
        let w = self.width;
        let norm = NormSettings::default();
        let expansion = if bottleneck { 4 } else { 1 };
        let (conv1, maxpool) = if self.small_input {
            (conv([self.in_channels, w], 3, 1, 1, device), None)
        } else {
            (
                conv([self.in_channels, w], 7, 2, 1, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            )
        };
        let [layer1, layer2, layer3, layer4] = stages(blocks, bottleneck, w, norm, device);
        Ok(ResNet {
            conv1,
            bn1: norm.init(w, device),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(8 * w * expansion, self.num_classes).init(device),
            in_channels: self.in_channels,
            num_classes: self.num_classes,
        })
    }
}

/// The four stages of residual blocks of a ResNet with base width `w`
/// (`w`, `2w`, `4w`, `8w` planes; strides 1, 2, 2, 2), normalised with `N`.
/// Shared by the classifier and the detection backbone
/// ([`ResNetBody`](crate::detection::ResNetBody)).
pub(crate) fn stages<N: Module + NormLayer>(
    blocks: [usize; 4],
    bottleneck: bool,
    w: usize,
    norm: NormSettings,
    device: &Device,
) -> [Vec<Block<N>>; 4] {
    dilated_stages(blocks, bottleneck, w, [false; 3], norm, device)
}

/// [`stages`] with torchvision's `replace_stride_with_dilation`: stage
/// `k + 2` keeps its resolution when `dilate[k]` is set, its 3×3
/// convolutions dilated instead (the dilation doubles at each such stage;
/// a stage's first block still uses the previous dilation, as
/// torchvision's `_make_layer` does). Bottleneck blocks only: the caller
/// refuses dilation with basic blocks, as torchvision does.
pub(crate) fn dilated_stages<N: Module + NormLayer>(
    blocks: [usize; 4],
    bottleneck: bool,
    w: usize,
    dilate: [bool; 3],
    norm: NormSettings,
    device: &Device,
) -> [Vec<Block<N>>; 4] {
    let expansion = if bottleneck { 4 } else { 1 };
    let mut in_planes = w;
    let mut dilation = 1;
    let mut stage = |planes: usize, n: usize, stride: usize, dilate: bool| -> Vec<Block<N>> {
        let previous = dilation;
        let stride = if dilate {
            dilation *= stride;
            1
        } else {
            stride
        };
        (0..n)
            .map(|i| {
                let (s, d) = if i == 0 {
                    (stride, previous)
                } else {
                    (1, dilation)
                };
                let b = Block::new(in_planes, planes, s, d, bottleneck, norm, device);
                in_planes = planes * expansion;
                b
            })
            .collect()
    };
    let layer1 = stage(w, blocks[0], 1, false);
    let layer2 = stage(2 * w, blocks[1], 2, dilate[0]);
    let layer3 = stage(4 * w, blocks[2], 2, dilate[1]);
    let layer4 = stage(8 * w, blocks[3], 2, dilate[2]);
    [layer1, layer2, layer3, layer4]
}

/// A residual block: basic (`conv1` 3×3 → `conv2` 3×3) or bottleneck
/// (`conv1` 1×1 → `conv2` 3×3 carrying the stride → `conv3` 1×1, 4× wider).
/// Normalised with [`BatchNorm2d`] in the classifier; the detection
/// backbone names [`FrozenBatchNorm2d`](crate::detection::FrozenBatchNorm2d).
#[derive(Module, Debug)]
pub struct Block<N: Module + NormLayer = BatchNorm2d> {
    /// First convolution (3×3 strided in a basic block, 1×1 in a bottleneck).
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: N,
    /// Second convolution (3×3; strided in a bottleneck).
    pub conv2: Conv2d,
    /// Its batch norm.
    pub bn2: N,
    /// Third convolution (1×1 expansion), bottleneck only.
    pub conv3: Option<Conv2d>,
    /// Its batch norm, bottleneck only.
    pub bn3: Option<N>,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<ConvBn<N>>,
}

impl<N: Module + NormLayer> Block<N> {
    pub(crate) fn new(
        in_planes: usize,
        planes: usize,
        stride: usize,
        dilation: usize,
        bottleneck: bool,
        norm: NormSettings,
        device: &Device,
    ) -> Self {
        let expansion = if bottleneck { 4 } else { 1 };
        let out = planes * expansion;
        let downsample = (stride != 1 || in_planes != out)
            .then(|| ConvBn::new([in_planes, out], 1, stride, 1, norm, device));
        if bottleneck {
            Block {
                conv1: conv([in_planes, planes], 1, 1, 1, device),
                bn1: N::build(planes, norm, device),
                conv2: conv_dilated([planes, planes], 3, stride, dilation, device),
                bn2: N::build(planes, norm, device),
                conv3: Some(conv([planes, out], 1, 1, 1, device)),
                bn3: Some(N::build(out, norm, device)),
                downsample,
            }
        } else {
            Block {
                conv1: conv([in_planes, planes], 3, stride, 1, device),
                bn1: N::build(planes, norm, device),
                conv2: conv([planes, planes], 3, 1, 1, device),
                bn2: N::build(planes, norm, device),
                conv3: None,
                bn3: None,
                downsample,
            }
        }
    }

    /// # Shapes
    /// `[B, C_in, H, W]` → `[B, planes·expansion, H/stride, W/stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => d.forward(x.clone()), // [B, C_out, H/s, W/s]
            None => x.clone(),               // [B, C_in, H, W]
        };
        let y = relu(self.bn1.normalize(self.conv1.forward(x))); // [B, planes, H', W']
        let y = self.bn2.normalize(self.conv2.forward(y)); // [B, planes, H/s, W/s]
        let y = match (&self.conv3, &self.bn3) {
            (Some(c), Some(b)) => b.normalize(c.forward(relu(y))), // [B, 4·planes, H/s, W/s]
            _ => y,
        };
        relu(y + identity) // [B, C_out, H/s, W/s]
    }
}

/// ResNet: stem, four stages of residual blocks, global average pool, linear
/// classifier. Build it with [`ResNetConfig::init`].
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution (7×7 stride 2, or 3×3 stride 1 for small images).
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm2d,
    /// Stem max-pool (absent with the small-image stem).
    pub maxpool: Option<MaxPool2d>,
    /// Stage 1: `width` planes (64), stride 1.
    pub layer1: Vec<Block>,
    /// Stage 2: `2·width` planes (128), stride 2.
    pub layer2: Vec<Block>,
    /// Stage 3: `4·width` planes (256), stride 2.
    pub layer3: Vec<Block>,
    /// Stage 4: `8·width` planes (512), stride 2.
    pub layer4: Vec<Block>,
    /// Classifier.
    pub fc: Linear,
    /// Input channels the stem expects.
    pub in_channels: usize,
    /// Output classes.
    pub num_classes: usize,
}

impl ResNet {
    /// Class logits. Records the output shapes of `bn1` (stem before the
    /// pool), `stem`, `layer1` … `layer4`, `avgpool` and `fc` for model
    /// summaries ([`unidl_tensor::trace`]).
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → `[B, num_classes]`. Any `H, W ≥ 1`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.bn1.forward(self.conv1.forward(x))); // [B, 64, H/2, W/2] (small: [B, 64, H, W])
        trace::record("bn1", &x.dims());
        let x = match &self.maxpool {
            Some(p) => p.forward(x), // [B, 64, H/4, W/4]
            None => x,
        };
        trace::record("stem", &x.dims());
        let mut x = x;
        for (name, stage) in [
            ("layer1", &self.layer1), // [B, 64·e, H/4, W/4]
            ("layer2", &self.layer2), // [B, 128·e, H/8, W/8]
            ("layer3", &self.layer3), // [B, 256·e, H/16, W/16]
            ("layer4", &self.layer4), // [B, 512·e, H/32, W/32]
        ] {
            for b in stage {
                x = b.forward(x);
            }
            trace::record(name, &x.dims());
        }
        let [b, c, _, _] = x.dims();
        let x = x.mean_dim(3).mean_dim(2).reshape([b, c]); // [B, 512·e]
        trace::record("avgpool", &x.dims());
        let y = self.fc.forward(x); // [B, num_classes]
        trace::record("fc", &y.dims());
        y
    }
}
