//! # PFLD (Guo et al., 2019, "PFLD: A Practical Facial Landmark Detector", arXiv:1902.10859)
//!
//! The backbone of the paper's Table 1 on a 112 × 112 input, every layer a
//! convolution + batch norm + ReLU unless said otherwise: 3×3 stride 2 (64),
//! depthwise 3×3 (64), MobileNetV2 inverted residual blocks (expansion `t`,
//! output `c`, `n` repeats, first stride `s`): (2, 64, 5, 2), (2, 128, 1, 2),
//! (4, 128, 6, 1), (2, 16, 1, 1) → S1 (14 × 14 × 16); 3×3 stride 2 (32) →
//! S2 (7 × 7 × 32); 7×7 without padding (128) → S3 (1 × 1 × 128); the
//! multi-scale fully connected head: S1 and S2 average-pooled, concatenated
//! with S3 (16 + 32 + 128 = 176 values), one linear layer to `2 · L`
//! coordinates as fractions of the input size.
//!
//! The auxiliary network (training only, Table 2) reads the first stage's
//! 28 × 28 × 64 output: 3×3 stride 2 (128), 3×3 (128), 3×3 stride 2 (32),
//! 7×7 (128, padding 1), max-pool over the remaining 3 × 3, then fully
//! connected 128 → 32 → 3 (yaw, pitch, roll). `width` scales every channel
//! count (the paper's 0.25X is `width = 0.25`).
//!
//! The paper gives no package: the PyTorch definition written from the
//! tables in `tests/reference/gen_pfld.py` is the reference, with the same
//! parameter names. The arithmetic of the parameter count is in
//! `docs/ZOO.md`.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{BatchNorm2d, Conv2dConfig, Linear, LinearConfig, PaddingConfig2d};
use unidl_tensor::trace;

use crate::blocks::{ConvBn, NormLayer, NormSettings, conv_init};
use crate::error::{Result, VisionError, positive};

/// PFLD configuration; the defaults are the paper's 1X for 68 landmarks.
///
/// ```toml
/// landmarks = 68
/// width = 1.0        # 0.25 for the paper's 0.25X
/// auxiliary = true   # build the angle network (training only)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PfldConfig {
    /// Landmarks `L`; the head predicts `2L` values.
    pub landmarks: usize,
    /// Image channels.
    pub in_channels: usize,
    /// Multiplier of every channel count (rounded, at least 1).
    pub width: f64,
    /// Build the auxiliary angle network.
    pub auxiliary: bool,
}

impl Default for PfldConfig {
    fn default() -> Self {
        PfldConfig {
            landmarks: 68,
            in_channels: 3,
            width: 1.0,
            auxiliary: true,
        }
    }
}

/// A MobileNetV2 inverted residual block: 1×1 expansion, 3×3 depthwise
/// (carrying the stride), 1×1 linear projection; the input is added when
/// the shape is kept.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1×1 `c_in → t·c_in` + BN (ReLU after).
    pub expand: ConvBn,
    /// 3×3 depthwise + BN (ReLU after).
    pub depthwise: ConvBn,
    /// 1×1 `t·c_in → c_out` + BN (linear).
    pub project: ConvBn,
    /// Whether the input is added.
    pub residual: bool,
}

impl InvertedResidual {
    fn new(c_in: usize, c_out: usize, stride: usize, t: usize, dev: &Device) -> Self {
        let norm = NormSettings::default();
        let hidden = c_in * t;
        InvertedResidual {
            expand: ConvBn::new([c_in, hidden], 1, 1, 1, norm, dev),
            depthwise: ConvBn::new([hidden, hidden], 3, stride, hidden, norm, dev),
            project: ConvBn::new([hidden, c_out], 1, 1, 1, norm, dev),
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.expand.forward(x.clone()));
        let y = relu(self.depthwise.forward(y));
        let y = self.project.forward(y);
        if self.residual { y + x } else { y }
    }
}

/// A `k×k` convolution with bias-free weights and explicit `padding`, then
/// batch norm (what the paper's 7×7 layers are).
fn conv_bn_padded(c: [usize; 2], k: usize, stride: usize, pad: usize, dev: &Device) -> ConvBn {
    ConvBn {
        conv: Conv2dConfig::new(c, [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .with_initializer(conv_init(c[1], k))
            .init(dev),
        bn: BatchNorm2d::build(c[1], NormSettings::default(), dev),
    }
}

/// The auxiliary network: angles from the first stage's features.
#[derive(Module, Debug)]
pub struct AuxiliaryNet {
    /// 3×3 stride 2.
    pub conv1: ConvBn,
    /// 3×3.
    pub conv2: ConvBn,
    /// 3×3 stride 2.
    pub conv3: ConvBn,
    /// 7×7, padding 1.
    pub conv4: ConvBn,
    /// Pooled features → 32.
    pub fc1: Linear,
    /// 32 → 3 angles.
    pub fc2: Linear,
}

impl AuxiliaryNet {
    /// # Shapes
    /// `[B, 64·w, 28, 28]` → `[B, 3]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x = relu(self.conv3.forward(x));
        let x = relu(self.conv4.forward(x)); // [B, 128w, 3, 3]
        let [b, c, h, w] = x.dims();
        let x = x.reshape([b, c, h * w]).max_dim(2).reshape([b, c]); // global max pool
        let x = self.fc1.forward(x);
        self.fc2.forward(x)
    }
}

/// PFLD. Build it with [`PfldConfig::init`].
#[derive(Module, Debug)]
pub struct Pfld {
    /// 3×3 stride 2.
    pub conv1: ConvBn,
    /// 3×3 depthwise.
    pub conv2: ConvBn,
    /// (t 2, c 64, n 5, s 2): the auxiliary network's input.
    pub stage1: Vec<InvertedResidual>,
    /// (2, 128, 1, 2), (4, 128, 6, 1), (2, 16, 1, 1): S1 at its end.
    pub stage2: Vec<InvertedResidual>,
    /// 3×3 stride 2: S2.
    pub conv7: ConvBn,
    /// 7×7, no padding: S3.
    pub conv8: ConvBn,
    /// The multi-scale fully connected layer.
    pub fc: Linear,
    /// The auxiliary angle network.
    pub auxiliary: Option<AuxiliaryNet>,
}

/// Everything a forward pass computes.
#[derive(Debug, Clone)]
pub struct PfldOutput {
    /// `[B, 2L]`: `x0, y0, x1, y1, …` as fractions of the input size.
    pub landmarks: Tensor<2>,
    /// `[B, 3]` angles, when the auxiliary network is built.
    pub angles: Option<Tensor<2>>,
}

impl PfldConfig {
    /// The paper's 1X for `landmarks` landmarks.
    pub fn new(landmarks: usize) -> Self {
        PfldConfig {
            landmarks,
            ..PfldConfig::default()
        }
    }

    fn ch(&self, c: usize) -> usize {
        ((c as f64 * self.width).round() as usize).max(1)
    }

    /// Builds the network: convolutions Kaiming normal (fan-out), norms
    /// γ = 1, β = 0, linear layers PyTorch's default. A zero count or a
    /// non-positive width is [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<Pfld> {
        positive("landmarks", self.landmarks)?;
        positive("in_channels", self.in_channels)?;
        if !(self.width.is_finite() && self.width > 0.0) {
            return Err(VisionError::Config {
                key: "width".into(),
                reason: format!("{}: give a positive multiplier", self.width),
            });
        }
        let dev = device;
        let norm = NormSettings::default();
        let (c64, c128, c16, c32) = (self.ch(64), self.ch(128), self.ch(16), self.ch(32));
        let stack =
            |c_in: usize, c: usize, n: usize, s: usize, t: usize| -> Vec<InvertedResidual> {
                (0..n)
                    .map(|i| {
                        let (inp, stride) = if i == 0 { (c_in, s) } else { (c, 1) };
                        InvertedResidual::new(inp, c, stride, t, dev)
                    })
                    .collect()
            };
        let stage1 = stack(c64, c64, 5, 2, 2);
        let mut stage2 = stack(c64, c128, 1, 2, 2);
        stage2.extend(stack(c128, c128, 6, 1, 4));
        stage2.extend(stack(c128, c16, 1, 1, 2));
        let auxiliary = self.auxiliary.then(|| AuxiliaryNet {
            conv1: ConvBn::new([c64, c128], 3, 2, 1, norm, dev),
            conv2: ConvBn::new([c128, c128], 3, 1, 1, norm, dev),
            conv3: ConvBn::new([c128, c32], 3, 2, 1, norm, dev),
            conv4: conv_bn_padded([c32, c128], 7, 1, 1, dev),
            fc1: LinearConfig::new(c128, c32).init(dev),
            fc2: LinearConfig::new(c32, 3).init(dev),
        });
        Ok(Pfld {
            conv1: ConvBn::new([self.in_channels, c64], 3, 2, 1, norm, dev),
            conv2: ConvBn::new([c64, c64], 3, 1, c64, norm, dev),
            stage1,
            stage2,
            conv7: ConvBn::new([c16, c32], 3, 2, 1, norm, dev),
            conv8: conv_bn_padded([c32, c128], 7, 1, 0, dev),
            fc: LinearConfig::new(c16 + c32 + c128, 2 * self.landmarks).init(dev),
            auxiliary,
        })
    }
}

fn global_mean(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
}

impl Pfld {
    /// Landmarks and (with the auxiliary network) angles. Records `stage1`,
    /// `s1`, `s2`, `s3` shapes.
    ///
    /// # Shapes
    /// `[B, C, 112, 112]` → landmarks `[B, 2L]`, angles `[B, 3]`.
    pub fn forward_all(&self, images: Tensor<4>) -> Result<PfldOutput> {
        self.run(images, true)
    }

    /// Landmarks only (what inference needs; the auxiliary network is not run).
    ///
    /// # Shapes
    /// `[B, C, 112, 112]` → `[B, 2L]`.
    pub fn forward(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        Ok(self.run(images, false)?.landmarks)
    }

    fn run(&self, images: Tensor<4>, auxiliary: bool) -> Result<PfldOutput> {
        let dims = images.dims();
        let c = self.conv1.conv.weight.dims()[1];
        if dims[1] != c || dims[2] != 112 || dims[3] != 112 {
            return Err(VisionError::Input {
                model: "Pfld".into(),
                shape: dims.to_vec(),
                reason: format!("expected [B, {c}, 112, 112]"),
            });
        }
        let x = relu(self.conv1.forward(images)); // [B, 64, 56, 56]
        let x = relu(self.conv2.forward(x)); // [B, 64, 56, 56]
        let f1 = self.stage1.iter().fold(x, |x, b| b.forward(x)); // [B, 64, 28, 28]
        trace::record("stage1", &f1.dims());
        let s1 = self.stage2.iter().fold(f1.clone(), |x, b| b.forward(x)); // [B, 16, 14, 14]
        trace::record("s1", &s1.dims());
        let s2 = relu(self.conv7.forward(s1.clone())); // [B, 32, 7, 7]
        trace::record("s2", &s2.dims());
        let s3 = relu(self.conv8.forward(s2.clone())); // [B, 128, 1, 1]
        trace::record("s3", &s3.dims());
        let features = Tensor::cat(vec![global_mean(s1), global_mean(s2), global_mean(s3)], 1); // [B, 176]
        let landmarks = self.fc.forward(features);
        let angles = match (&self.auxiliary, auxiliary) {
            (Some(a), true) => Some(a.forward(f1)),
            _ => None,
        };
        Ok(PfldOutput { landmarks, angles })
    }

    /// Landmarks predicted.
    pub fn landmarks(&self) -> usize {
        self.fc.weight.dims()[1] / 2
    }
}
