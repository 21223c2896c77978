//! # VGG (Simonyan & Zisserman, 2015, "Very Deep Convolutional Networks for
//! Large-Scale Image Recognition", arXiv:1409.1556)
//!
//! VGG-11/13/16/19 (configurations A, B, D, E of the paper), with or without
//! batch norm after every convolution, in **torchvision's layout**: 3×3 convs
//! with bias and padding 1, 2×2 max-pools, `AdaptiveAvgPool2d(7)`, then the
//! classifier `Linear(512·7·7, 4096) → ReLU → Dropout → Linear(4096, 4096) →
//! ReLU → Dropout → Linear(4096, classes)`.
//!
//! Five max-pools halve the input five times, so inputs must be at least
//! 32×32 (a 28 px MNIST digit is resized to 32 first).
//!
//! Parameter names: `features.{k}.conv`/`features.{k}.bn` for the k-th
//! convolution, `fc1`/`fc2`/`fc3` for the classifier; torchvision numbers the
//! whole `features`/`classifier` sequences instead (ReLU and pool layers
//! included): see [`crate::torchvision`].

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, BatchNorm2d, Conv2d, Conv2dConfig, Dropout,
    DropoutConfig, Linear, LinearConfig, MaxPool2d, MaxPool2dConfig, PaddingConfig2d,
};
use unidl_tensor::trace;

use crate::blocks::{MapBias, NormSettings, conv_init};
use crate::error::{Result, VisionError, positive};

/// VGG configuration.
///
/// ```toml
/// depth = 11           # 11, 13, 16 or 19
/// batch_norm = true
/// num_classes = 10
/// in_channels = 1
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VggConfig {
    /// 11, 13, 16 or 19 weight layers.
    pub depth: usize,
    /// Batch norm after every convolution (`vgg*_bn`).
    #[serde(default)]
    pub batch_norm: bool,
    /// Output classes.
    #[serde(default = "super::resnet::thousand")]
    pub num_classes: usize,
    /// Input channels.
    #[serde(default = "super::resnet::three")]
    pub in_channels: usize,
    /// Dropout probability in the classifier (torchvision: 0.5).
    #[serde(default = "half")]
    pub dropout: f64,
    /// Channels of the first block; the blocks have `width · {1, 2, 4, 8, 8}`
    /// (torchvision: 64). Smaller values build reduced models.
    #[serde(default = "super::resnet::sixty_four")]
    pub width: usize,
    /// Width of the two hidden classifier layers (torchvision: 4096).
    #[serde(default = "four_k")]
    pub hidden: usize,
}

fn four_k() -> usize {
    4096
}

fn half() -> f64 {
    0.5
}

/// Output channels per convolution; `0` marks a max-pool (torchvision's `"M"`).
fn layout(depth: usize) -> Result<&'static [usize]> {
    Ok(match depth {
        11 => &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        13 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
        ],
        16 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
        ],
        19 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512,
            512, 0,
        ],
        d => {
            return Err(VisionError::Config {
                key: "depth".into(),
                reason: format!("VGG depth {d} is not one of 11, 13, 16, 19"),
            });
        }
    })
}

impl VggConfig {
    /// `vgg{depth}` (or `vgg{depth}_bn`) with 1000 classes and 3 input channels.
    pub fn new(depth: usize, batch_norm: bool) -> Self {
        VggConfig {
            depth,
            batch_norm,
            num_classes: 1000,
            in_channels: 3,
            dropout: 0.5,
            width: 64,
            hidden: 4096,
        }
    }

    /// Sets the first block's channels (64) and the classifier's hidden width (4096).
    pub fn with_width(mut self, width: usize, hidden: usize) -> Self {
        self.width = width;
        self.hidden = hidden;
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

    /// Builds the model with torchvision's initialisation (Kaiming-normal
    /// fan-out convs with zero bias, linear weights N(0, 0.01²) with zero bias).
    ///
    /// Errors: [`VisionError::Config`] for an unknown depth, zero classes or
    /// channels, or a dropout outside `[0, 1)`.
    pub fn init(&self, device: &Device) -> Result<Vgg> {
        let layout = layout(self.depth)?;
        positive("num_classes", self.num_classes)?;
        positive("in_channels", self.in_channels)?;
        positive("width", self.width)?;
        positive("hidden", self.hidden)?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(VisionError::Config {
                key: "dropout".into(),
                reason: format!("{} is not in [0, 1)", self.dropout),
            });
        }
        let norm = NormSettings::default();
        let mut features = Vec::new();
        let mut c = self.in_channels;
        for (i, &v) in layout.iter().enumerate() {
            if v == 0 {
                continue;
            }
            let v = v * self.width / 64;
            features.push(VggConv {
                conv: Conv2dConfig::new([c, v], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_initializer(conv_init(v, 3))
                    .init(device)
                    .map_bias(|b| b.zeros_like()),
                bn: self.batch_norm.then(|| norm.init(v, device)),
                pool: layout.get(i + 1) == Some(&0),
            });
            c = v;
        }
        let linear = |i: usize, o: usize| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.01,
                })
                .init(device)
                .map_bias(|b| b.zeros_like())
        };
        Ok(Vgg {
            features,
            maxpool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([7, 7]).init(),
            fc1: linear(c * 7 * 7, self.hidden),
            fc2: linear(self.hidden, self.hidden),
            fc3: linear(self.hidden, self.num_classes),
            dropout: DropoutConfig::new(self.dropout).init(),
            in_channels: self.in_channels,
            num_classes: self.num_classes,
        })
    }
}

/// One VGG convolution: 3×3 conv (with bias), optional batch norm, ReLU, and
/// a 2×2 max-pool when it ends a block.
#[derive(Module, Debug)]
pub struct VggConv {
    /// 3×3 convolution, padding 1.
    pub conv: Conv2d,
    /// Batch norm (`vgg*_bn` only).
    pub bn: Option<BatchNorm2d>,
    /// Whether a max-pool follows.
    pub pool: bool,
}

/// VGG: convolution blocks, adaptive 7×7 average pool, three-layer classifier.
/// Build it with [`VggConfig::init`].
#[derive(Module, Debug)]
pub struct Vgg {
    /// The convolutions in order.
    pub features: Vec<VggConv>,
    /// 2×2 max-pool, stride 2.
    pub maxpool: MaxPool2d,
    /// `AdaptiveAvgPool2d(7)`.
    pub avgpool: AdaptiveAvgPool2d,
    /// `Linear(25088, 4096)` (`8·width·49 → hidden`).
    pub fc1: Linear,
    /// `Linear(4096, 4096)` (`hidden → hidden`).
    pub fc2: Linear,
    /// `Linear(4096, num_classes)` (`hidden → num_classes`).
    pub fc3: Linear,
    /// Dropout after `fc1` and `fc2`.
    pub dropout: Dropout,
    /// Input channels.
    pub in_channels: usize,
    /// Output classes.
    pub num_classes: usize,
}

impl Vgg {
    /// Class logits. Records the output shape of each convolution (after its
    /// ReLU and pool: `features.{k}`), of each block (`features.block1` …
    /// `block5`), the average pool, `fc1` … `fc3` and `classifier`.
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → `[B, num_classes]`, `H, W ≥ 32`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        let mut block = 0;
        for (k, f) in self.features.iter().enumerate() {
            x = f.conv.forward(x); // [B, C_k, H_k, W_k]
            if let Some(bn) = &f.bn {
                x = bn.forward(x);
            }
            x = relu(x);
            if f.pool {
                x = self.maxpool.forward(x); // [B, C_k, H_k/2, W_k/2]
                block += 1;
            }
            if trace::active() {
                trace::record(&format!("features.{k}"), &x.dims());
                if f.pool {
                    trace::record(&format!("features.block{block}"), &x.dims());
                }
            }
        }
        let x = self.avgpool.forward(x); // [B, 512, 7, 7]
        trace::record("avgpool", &x.dims());
        let x = x.flatten::<2>(1, 3); // [B, 25088]
        let x = relu(self.fc1.forward(x)); // [B, 4096]
        trace::record("fc1", &x.dims());
        let x = relu(self.fc2.forward(self.dropout.forward(x))); // [B, 4096]
        trace::record("fc2", &x.dims());
        let y = self.fc3.forward(self.dropout.forward(x)); // [B, num_classes]
        trace::record("fc3", &y.dims());
        trace::record("classifier", &y.dims());
        y
    }
}
