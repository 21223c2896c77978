//! # S3D (Xie et al., 2018, "Rethinking Spatiotemporal Feature Learning: Speed-Accuracy Trade-offs in Video Classification", arXiv:1712.04851)
//!
//! torchvision's `video.s3d` (8,320,048 parameters with 400 classes):
//! Inception-v1 with every 3×3 convolution (and the 7×7 stem) separated
//! into a spatial `1×k×k` and a temporal `k×1×1` convolution, each with
//! batch norm and ReLU:
//!
//! ```text
//! sep 7 (3→64, stride 2) · maxpool 1×3×3/1×2×2 · conv 1 (64→64) · sep 3 (64→192) · maxpool 1×3×3/1×2×2
//! inception 3b 3c · maxpool 3×3×3/2 · inception 4b 4c 4d 4e 4f · maxpool 2×2×2/2 · inception 5b 5c
//! avgpool 2×7×7 stride 1 · dropout · conv 1×1×1 (1024→classes, bias) · mean over time and space
//! ```
//!
//! An inception block concatenates four branches: `1×1×1`; `1×1×1` then a
//! separable 3; `1×1×1` then a separable 3; `3×3×3` max-pool then `1×1×1`.
//! Batch norm uses torchvision's `eps = 0.001`, `momentum = 0.001`; the
//! convolutions start at PyTorch's default initialisation, as torchvision's do.
//!
//! unidl keys (torchvision's values by default): `channel_divisor` divides
//! every channel count (all are multiples of 8) for reduced models;
//! `bn_momentum` (0.001 updates running statistics so slowly that a model
//! trained from scratch for a few thousand steps evaluates badly: training
//! configs set 0.1); `avgpool_kernel` ([2, 7, 7] fits torchvision's 16-frame
//! 224×224 clips; a map smaller than the kernel in some dimension is pooled
//! whole in it, so small clips work too).
//!
//! Parameter names: `stem1.{spatial,temporal}.{conv,bn}`, `stem2.{conv,bn}`,
//! `stem3.…`, `blocks.{i}.{branch0,branch1_reduce,branch2_reduce,branch3}.{conv,bn}`,
//! `blocks.{i}.{branch1,branch2}.{spatial,temporal}.{conv,bn}`, `classifier`;
//! the mapping to torchvision's is in [`crate::weights`].

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{
    AvgPool3dConfig, Conv3d, Conv3dConfig, Dropout, DropoutConfig, MaxPool3d, MaxPool3dConfig,
};
use unidl_tensor::trace;

use crate::blocks::{ConvBn3d, ConvInit, Norm};
use crate::{Result, VideoError, positive};

/// S3D configuration (`[model] name = "s3d"`).
///
/// ```toml
/// num_classes = 8
/// channel_divisor = 4   # 1 in torchvision
/// bn_momentum = 0.1     # torchvision: 0.001
/// avgpool_kernel = [2, 2, 2]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3dConfig {
    /// Output classes (torchvision's default: 400).
    #[serde(default = "four_hundred")]
    pub num_classes: usize,
    /// Input channels (3 for RGB).
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Dropout before the classifier.
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// Divides every channel count (1, 2, 4 or 8).
    #[serde(default = "one")]
    pub channel_divisor: usize,
    /// Batch-norm momentum (PyTorch's convention).
    #[serde(default = "bn_constant")]
    pub bn_momentum: f64,
    /// Batch-norm epsilon.
    #[serde(default = "bn_constant")]
    pub bn_epsilon: f64,
    /// The final average pool's `[t, h, w]` kernel (stride 1).
    #[serde(default = "avgpool_kernel")]
    pub avgpool_kernel: [usize; 3],
}

fn four_hundred() -> usize {
    400
}
fn three() -> usize {
    3
}
fn one() -> usize {
    1
}
fn dropout() -> f64 {
    0.2
}
fn bn_constant() -> f64 {
    0.001
}
fn avgpool_kernel() -> [usize; 3] {
    [2, 7, 7]
}

impl Default for S3dConfig {
    fn default() -> Self {
        S3dConfig {
            num_classes: 400,
            in_channels: 3,
            dropout: 0.2,
            channel_divisor: 1,
            bn_momentum: 0.001,
            bn_epsilon: 0.001,
            avgpool_kernel: [2, 7, 7],
        }
    }
}

/// torchvision's inception blocks: input, branch 0, branch 1 reduce/out,
/// branch 2 reduce/out, branch 3 (Mixed 3b … 5c).
const INCEPTION: [[usize; 7]; 9] = [
    [192, 64, 96, 128, 16, 32, 32],
    [256, 128, 128, 192, 32, 96, 64],
    [480, 192, 96, 208, 16, 48, 64],
    [512, 160, 112, 224, 24, 64, 64],
    [512, 128, 128, 256, 24, 64, 64],
    [512, 112, 144, 288, 32, 64, 64],
    [528, 256, 160, 320, 32, 128, 128],
    [832, 256, 160, 320, 32, 128, 128],
    [832, 384, 192, 384, 48, 128, 128],
];

/// A max-pool's `(block it follows, kernel, stride, padding)`.
type PoolAfter = (usize, [usize; 3], [usize; 3], [usize; 3]);

/// The max-pools between inception blocks.
const POOLS: [PoolAfter; 2] = [
    (1, [3, 3, 3], [2, 2, 2], [1, 1, 1]),
    (6, [2, 2, 2], [2, 2, 2], [0, 0, 0]),
];

/// Where each inception block sits in torchvision's `features` sequence.
pub const FEATURE_INDEX: [usize; 9] = [5, 6, 8, 9, 10, 11, 12, 14, 15];

fn max_pool(kernel: [usize; 3], stride: [usize; 3], padding: [usize; 3]) -> MaxPool3d {
    MaxPool3dConfig::new(kernel)
        .with_stride(stride)
        .with_padding(padding)
        .init()
}

impl S3dConfig {
    /// Builds the model. A zero count, a divisor that does not divide every
    /// channel count, a dropout outside [0, 1) or a BN setting outside
    /// (0, 1] is [`VideoError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<S3d> {
        positive("num_classes", self.num_classes)?;
        positive("in_channels", self.in_channels)?;
        positive("channel_divisor", self.channel_divisor)?;
        let bad = |key: &str, reason: String| VideoError::Config {
            key: key.into(),
            reason,
        };
        if !8usize.is_multiple_of(self.channel_divisor) {
            return Err(bad(
                "channel_divisor",
                format!(
                    "{} is not 1, 2, 4 or 8 (it must divide every channel count)",
                    self.channel_divisor
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad(
                "dropout",
                format!("{} is outside [0, 1)", self.dropout),
            ));
        }
        for (key, v) in [
            ("bn_momentum", self.bn_momentum),
            ("bn_epsilon", self.bn_epsilon),
        ] {
            if v.is_nan() || v <= 0.0 || v > 1.0 {
                return Err(bad(key, format!("{v} is outside (0, 1]")));
            }
        }
        if self.avgpool_kernel.contains(&0) {
            return Err(bad(
                "avgpool_kernel",
                "every extent must be at least 1".into(),
            ));
        }
        let d = self.channel_divisor;
        let norm = Norm {
            epsilon: self.bn_epsilon,
            momentum: self.bn_momentum,
        };
        let unit = |i: usize, o: usize| {
            ConvBn3d::new(
                [i, o],
                [1, 1, 1],
                [1, 1, 1],
                [0, 0, 0],
                ConvInit::Default,
                norm,
                device,
            )
        };
        let blocks = INCEPTION
            .iter()
            .map(|c| {
                let c = c.map(|v| v / d);
                Inception {
                    branch0: unit(c[0], c[1]),
                    branch1_reduce: unit(c[0], c[2]),
                    branch1: SepConv::new(c[2], c[3], 3, 1, 1, norm, device),
                    branch2_reduce: unit(c[0], c[4]),
                    branch2: SepConv::new(c[4], c[5], 3, 1, 1, norm, device),
                    branch3: unit(c[0], c[6]),
                    pool: max_pool([3, 3, 3], [1, 1, 1], [1, 1, 1]),
                }
            })
            .collect();
        Ok(S3d {
            stem1: SepConv::new(self.in_channels, 64 / d, 7, 2, 3, norm, device),
            stem2: unit(64 / d, 64 / d),
            stem3: SepConv::new(64 / d, 192 / d, 3, 1, 1, norm, device),
            stem_pool: max_pool([1, 3, 3], [1, 2, 2], [0, 1, 1]),
            blocks,
            pools: POOLS
                .iter()
                .map(|&(_, k, s, p)| max_pool(k, s, p))
                .collect(),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: Conv3dConfig::new([1024 / d, self.num_classes], [1, 1, 1]).init(device),
            in_channels: self.in_channels,
            avgpool_kernel: self.avgpool_kernel,
        })
    }
}

/// A separable convolution: `1×k×k` (stride `1×s×s`) then `k×1×1` (stride
/// `s×1×1`), each with batch norm and ReLU.
#[derive(Module, Debug)]
pub struct SepConv {
    /// The spatial half.
    pub spatial: ConvBn3d,
    /// The temporal half.
    pub temporal: ConvBn3d,
}

impl SepConv {
    fn new(
        in_planes: usize,
        out_planes: usize,
        k: usize,
        s: usize,
        p: usize,
        norm: Norm,
        device: &Device,
    ) -> Self {
        SepConv {
            spatial: ConvBn3d::new(
                [in_planes, out_planes],
                [1, k, k],
                [1, s, s],
                [0, p, p],
                ConvInit::Default,
                norm,
                device,
            ),
            temporal: ConvBn3d::new(
                [out_planes, out_planes],
                [k, 1, 1],
                [s, 1, 1],
                [p, 0, 0],
                ConvInit::Default,
                norm,
                device,
            ),
        }
    }

    /// # Shapes
    /// `[B, C_in, T, H, W]` → `[B, C_out, T/s, H/s, W/s]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        relu(self.temporal.forward(relu(self.spatial.forward(x))))
    }
}

/// A separable inception block (four concatenated branches).
#[derive(Module, Debug)]
pub struct Inception {
    /// `1×1×1`.
    pub branch0: ConvBn3d,
    /// `1×1×1` before branch 1's separable convolution.
    pub branch1_reduce: ConvBn3d,
    /// Separable 3.
    pub branch1: SepConv,
    /// `1×1×1` before branch 2's separable convolution.
    pub branch2_reduce: ConvBn3d,
    /// Separable 3.
    pub branch2: SepConv,
    /// `1×1×1` after the max-pool.
    pub branch3: ConvBn3d,
    pool: MaxPool3d,
}

impl Inception {
    /// # Shapes
    /// `[B, C_in, T, H, W]` → `[B, b0 + b1 + b2 + b3, T, H, W]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let x0 = relu(self.branch0.forward(x.clone()));
        let x1 = self
            .branch1
            .forward(relu(self.branch1_reduce.forward(x.clone())));
        let x2 = self
            .branch2
            .forward(relu(self.branch2_reduce.forward(x.clone())));
        let x3 = relu(self.branch3.forward(self.pool.forward(x)));
        Tensor::cat(vec![x0, x1, x2, x3], 1)
    }
}

/// S3D. Build it with [`S3dConfig::init`].
#[derive(Module, Debug)]
pub struct S3d {
    /// Separable 7×7×7 stem, stride 2.
    pub stem1: SepConv,
    /// `1×1×1` convolution.
    pub stem2: ConvBn3d,
    /// Separable 3×3×3.
    pub stem3: SepConv,
    stem_pool: MaxPool3d,
    /// The nine inception blocks (Mixed 3b … 5c).
    pub blocks: Vec<Inception>,
    pools: Vec<MaxPool3d>,
    dropout: Dropout,
    /// `1×1×1` convolution to the classes (with bias).
    pub classifier: Conv3d,
    /// Input channels.
    pub in_channels: usize,
    avgpool_kernel: [usize; 3],
}

impl S3d {
    /// Class logits. Records the output shapes of `stem`, each block
    /// (`mixed_3b` … `mixed_5c`), `avgpool` and `classifier`.
    ///
    /// # Shapes
    /// `[B, in_channels, T, H, W]` → `[B, num_classes]`; `T ≥ 1`, `H, W ≥ 1`
    /// ([`try_forward`](Self::try_forward) checks).
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let x = self.stem_pool.forward(self.stem1.forward(x)); // [B, 64, T/2, H/4, W/4]
        let x = self.stem2.forward(x);
        let mut x = self.stem_pool.forward(self.stem3.forward(relu(x))); // [B, 192, T/2, H/8, W/8]
        trace::record("stem", &x.dims());
        const NAMES: [&str; 9] = [
            "mixed_3b", "mixed_3c", "mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f",
            "mixed_5b", "mixed_5c",
        ];
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            trace::record(NAMES[i], &x.dims());
            if let Some(k) = POOLS.iter().position(|p| p.0 == i) {
                x = self.pools[k].forward(x); // 3c: [B, 480, T/4, H/16, W/16]; 4f: [B, 832, T/8, H/32, W/32]
            }
        }
        let [_, _, t, h, w] = x.dims();
        let [kt, kh, kw] = self.avgpool_kernel;
        let kernel = [kt.min(t), kh.min(h), kw.min(w)];
        let x = AvgPool3dConfig::new(kernel)
            .with_stride([1, 1, 1])
            .init()
            .forward(x); // [B, 1024, t-kt+1, …]
        trace::record("avgpool", &x.dims());
        let x = self.classifier.forward(self.dropout.forward(x)); // [B, classes, …]
        let [b, c, t, h, w] = x.dims();
        let y = x.reshape([b, c, t * h * w]).mean_dim(2).reshape([b, c]);
        trace::record("classifier", &y.dims());
        y
    }

    /// [`forward`](Self::forward) after checking the clip: the configured
    /// channels, a non-empty batch and at least 1 frame of 1×1.
    pub fn try_forward(&self, x: Tensor<5>) -> Result<Tensor<2>> {
        crate::blocks::check_clip("S3D", &x.dims(), self.in_channels, [1, 1, 1])?;
        Ok(self.forward(x))
    }
}

impl unidl_train::VideoClassifier for S3d {
    fn classify_clips(&self, clips: Tensor<5>) -> Tensor<2> {
        self.forward(clips)
    }
}
