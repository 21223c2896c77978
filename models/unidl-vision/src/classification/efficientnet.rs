//! # EfficientNet (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling for
//! Convolutional Neural Networks", arXiv:1905.11946)
//!
//! EfficientNet-B0 … B7 as **torchvision** builds them (`_efficientnet_conf`):
//! a 3×3 stride-2 stem, seven stages of MBConv blocks (1×1 expansion, k×k
//! depthwise convolution, squeeze-and-excitation with a SiLU and a sigmoid,
//! 1×1 projection, residual connection with stochastic depth when the shape
//! is kept), a 1×1 head to 4× the last stage's width, global average pool,
//! dropout and a linear classifier. SiLU everywhere.
//!
//! Compound scaling: each variant multiplies the B0 widths by `width_mult`
//! (rounded to a multiple of 8, never more than 10 % down) and the B0 block
//! counts by `depth_mult` (rounded up):
//!
//! | variant | width | depth | dropout | BN eps / momentum |
//! |---------|-------|-------|---------|-------------------|
//! | b0 | 1.0 | 1.0 | 0.2 | 1e-5 / 0.1 |
//! | b1 | 1.0 | 1.1 | 0.2 | 1e-5 / 0.1 |
//! | b2 | 1.1 | 1.2 | 0.3 | 1e-5 / 0.1 |
//! | b3 | 1.2 | 1.4 | 0.3 | 1e-5 / 0.1 |
//! | b4 | 1.4 | 1.8 | 0.4 | 1e-5 / 0.1 |
//! | b5 | 1.6 | 2.2 | 0.4 | 1e-3 / 0.01 |
//! | b6 | 1.8 | 2.6 | 0.5 | 1e-3 / 0.01 |
//! | b7 | 2.0 | 3.1 | 0.5 | 1e-3 / 0.01 |
//!
//! The stochastic-depth probability grows linearly from 0 (first block) to
//! `stochastic_depth_prob · (n-1)/n` (last block), as in torchvision.
//! `width_mult`/`depth_mult` may be overridden to build reduced models
//! (tests use a quarter-width B0). Two options that torchvision does not
//! have, both off by default: `small_input` (stride-1 stem for 28–32 px
//! images) and `classifier_init_range` (the classifier's uniform init bound).
//!
//! Parameter names: `stem`, `stages.{s}.{b}.{expand,depthwise,se,project}`,
//! `head`, `classifier`; torchvision's `features.{i}…block.{j}` numbering is
//! mapped in [`crate::torchvision`].

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use unidl_tensor::trace;

use crate::blocks::{ConvBn, MapBias, NormSettings, SqueezeExcitation, StochasticDepth};
use crate::error::{Result, VisionError, positive};

/// B0 … B7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum EfficientNetVariant {
    B0,
    B1,
    B2,
    B3,
    B4,
    B5,
    B6,
    B7,
}

impl EfficientNetVariant {
    /// All variants, B0 first.
    pub const ALL: [EfficientNetVariant; 8] = [
        Self::B0,
        Self::B1,
        Self::B2,
        Self::B3,
        Self::B4,
        Self::B5,
        Self::B6,
        Self::B7,
    ];

    /// (width multiplier, depth multiplier, classifier dropout) from torchvision.
    pub fn scaling(self) -> (f64, f64, f64) {
        match self {
            Self::B0 => (1.0, 1.0, 0.2),
            Self::B1 => (1.0, 1.1, 0.2),
            Self::B2 => (1.1, 1.2, 0.3),
            Self::B3 => (1.2, 1.4, 0.3),
            Self::B4 => (1.4, 1.8, 0.4),
            Self::B5 => (1.6, 2.2, 0.4),
            Self::B6 => (1.8, 2.6, 0.5),
            Self::B7 => (2.0, 3.1, 0.5),
        }
    }

    /// Batch-norm settings: B5–B7 use `eps = 1e-3, momentum = 0.01` in torchvision.
    pub fn norm(self) -> NormSettings {
        match self {
            Self::B5 | Self::B6 | Self::B7 => NormSettings {
                epsilon: 1e-3,
                momentum: 0.01,
                ..NormSettings::default()
            },
            _ => NormSettings::default(),
        }
    }

    /// torchvision's name (`efficientnet_b0`).
    pub fn torchvision_name(self) -> String {
        format!("efficientnet_{}", format!("{self:?}").to_lowercase())
    }
}

/// EfficientNet configuration.
///
/// ```toml
/// variant = "b0"
/// num_classes = 10
/// in_channels = 1
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficientNetConfig {
    /// B0 … B7 (`"b0"` … `"b7"`).
    pub variant: EfficientNetVariant,
    /// Output classes.
    #[serde(default = "super::resnet::thousand")]
    pub num_classes: usize,
    /// Input channels (torchvision fixes 3).
    #[serde(default = "super::resnet::three")]
    pub in_channels: usize,
    /// Overrides the variant's width multiplier.
    #[serde(default)]
    pub width_mult: Option<f64>,
    /// Overrides the variant's depth multiplier.
    #[serde(default)]
    pub depth_mult: Option<f64>,
    /// Overrides the variant's classifier dropout.
    #[serde(default)]
    pub dropout: Option<f64>,
    /// Stochastic-depth probability reached by the last block (torchvision: 0.2).
    #[serde(default = "point_two")]
    pub stochastic_depth_prob: f64,
    /// A stride-1 stem for 28–32 px inputs (not in torchvision; the same
    /// idea as ResNet's `small_input`): the network then downsamples 16×
    /// instead of 32×, so a 28-px digit ends in 2×2 maps rather than 1×1.
    /// Parameters and keys are unchanged.
    #[serde(default)]
    pub small_input: bool,
    /// Overrides the bound of the classifier's uniform initialisation
    /// (torchvision: `1/√num_classes`, sized for 1000 classes; with 10
    /// classes it starts training from logits of several units).
    #[serde(default)]
    pub classifier_init_range: Option<f64>,
}

fn point_two() -> f64 {
    0.2
}

/// torchvision's `_make_divisible(v, 8)`.
fn make_divisible(v: f64) -> usize {
    let d = 8.0;
    let mut new = (((v + d / 2.0) as usize) / 8 * 8).max(8);
    if (new as f64) < 0.9 * v {
        new += 8;
    }
    new
}

/// B0's stages: (expand ratio, kernel, stride, in, out, layers).
const B0: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

impl EfficientNetConfig {
    /// The variant with 1000 classes and 3 input channels.
    pub fn new(variant: EfficientNetVariant) -> Self {
        EfficientNetConfig {
            variant,
            num_classes: 1000,
            in_channels: 3,
            width_mult: None,
            depth_mult: None,
            dropout: None,
            stochastic_depth_prob: 0.2,
            small_input: false,
            classifier_init_range: None,
        }
    }

    /// Uses the stride-1 stem for small images ([`Self::small_input`]).
    pub fn with_small_input(mut self, small: bool) -> Self {
        self.small_input = small;
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

    /// Overrides the width and depth multipliers (a reduced or enlarged model).
    pub fn with_scaling(mut self, width_mult: f64, depth_mult: f64) -> Self {
        self.width_mult = Some(width_mult);
        self.depth_mult = Some(depth_mult);
        self
    }

    /// Builds the model with torchvision's initialisation (Kaiming-normal
    /// fan-out convs, BN γ = 1, β = 0, classifier U(±1/√classes), zero bias).
    ///
    /// Errors: [`VisionError::Config`] for zero classes/channels, a
    /// non-positive multiplier, or a probability outside `[0, 1)`.
    pub fn init(&self, device: &Device) -> Result<EfficientNet> {
        positive("num_classes", self.num_classes)?;
        positive("in_channels", self.in_channels)?;
        let (w0, d0, drop0) = self.variant.scaling();
        let width = self.width_mult.unwrap_or(w0);
        let depth = self.depth_mult.unwrap_or(d0);
        let dropout = self.dropout.unwrap_or(drop0);
        for (key, v) in [("width_mult", width), ("depth_mult", depth)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(VisionError::Config {
                    key: key.into(),
                    reason: format!("{v} is not a positive number"),
                });
            }
        }
        for (key, v) in [
            ("dropout", dropout),
            ("stochastic_depth_prob", self.stochastic_depth_prob),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(VisionError::Config {
                    key: key.into(),
                    reason: format!("{v} is not in [0, 1)"),
                });
            }
        }
        let norm = self.variant.norm();
        let ch = |c: usize| make_divisible(c as f64 * width);
        let stages_cfg: Vec<_> = B0
            .iter()
            .map(|&(e, k, s, i, o, n)| (e, k, s, ch(i), ch(o), (n as f64 * depth).ceil() as usize))
            .collect();
        let total: usize = stages_cfg.iter().map(|c| c.5).sum();
        let stem_out = stages_cfg[0].3;
        let mut id = 0;
        let stages = stages_cfg
            .iter()
            .map(|&(e, k, s, i, o, n)| {
                (0..n)
                    .map(|j| {
                        let (cin, stride) = if j == 0 { (i, s) } else { (o, 1) };
                        let p = self.stochastic_depth_prob * id as f64 / total as f64;
                        id += 1;
                        MbConv::new(cin, o, e, k, stride, p, norm, device)
                    })
                    .collect()
            })
            .collect();
        let last = stages_cfg[6].4;
        let bound = self
            .classifier_init_range
            .unwrap_or(1.0 / (self.num_classes as f64).sqrt());
        if !(bound.is_finite() && bound > 0.0) {
            return Err(VisionError::Config {
                key: "classifier_init_range".into(),
                reason: format!("{bound} is not a positive number"),
            });
        }
        let classifier = LinearConfig::new(4 * last, self.num_classes)
            .with_initializer(Initializer::Uniform {
                min: -bound,
                max: bound,
            })
            .init(device)
            .map_bias(|b| b.zeros_like());
        Ok(EfficientNet {
            stem: ConvBn::new(
                [self.in_channels, stem_out],
                3,
                if self.small_input { 1 } else { 2 },
                1,
                norm,
                device,
            ),
            stages,
            head: ConvBn::new([last, 4 * last], 1, 1, 1, norm, device),
            dropout: DropoutConfig::new(dropout).init(),
            classifier,
            in_channels: self.in_channels,
            num_classes: self.num_classes,
        })
    }
}

/// Mobile inverted bottleneck (MBConv, Sandler et al. 2018 with
/// squeeze-and-excitation): 1×1 expansion (absent when the ratio is 1), k×k
/// depthwise convolution, SE, 1×1 projection; residual with stochastic depth
/// when stride is 1 and the width is kept.
#[derive(Module, Debug)]
pub struct MbConv {
    /// 1×1 expansion conv + BN (+ SiLU), when the expanded width differs.
    pub expand: Option<ConvBn>,
    /// k×k depthwise conv + BN (+ SiLU), carrying the stride.
    pub depthwise: ConvBn,
    /// Squeeze-and-excitation to `max(1, in/4)` channels.
    pub se: SqueezeExcitation,
    /// 1×1 projection conv + BN (no activation).
    pub project: ConvBn,
    /// Drop-path on the residual branch.
    pub stochastic_depth: StochasticDepth,
    /// Whether the block adds its input (stride 1, same width).
    pub residual: bool,
}

impl MbConv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        cin: usize,
        cout: usize,
        expand_ratio: usize,
        kernel: usize,
        stride: usize,
        drop: f64,
        norm: NormSettings,
        device: &Device,
    ) -> Self {
        let mid = make_divisible((cin * expand_ratio) as f64);
        MbConv {
            expand: (mid != cin).then(|| ConvBn::new([cin, mid], 1, 1, 1, norm, device)),
            depthwise: ConvBn::new([mid, mid], kernel, stride, mid, norm, device),
            se: SqueezeExcitation::new(mid, (cin / 4).max(1), device),
            project: ConvBn::new([mid, cout], 1, 1, 1, norm, device),
            stochastic_depth: StochasticDepth::new(drop),
            residual: stride == 1 && cin == cout,
        }
    }

    /// # Shapes
    /// `[B, C_in, H, W]` → `[B, C_out, ⌈H/stride⌉, ⌈W/stride⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = match &self.expand {
            Some(e) => e.forward_silu(x.clone()), // [B, mid, H, W]
            None => x.clone(),
        };
        let y = self.depthwise.forward_silu(y); // [B, mid, H/s, W/s]
        let y = self.se.forward(y); // [B, mid, H/s, W/s]
        let y = self.project.forward(y); // [B, C_out, H/s, W/s]
        if self.residual {
            self.stochastic_depth.forward(y) + x
        } else {
            y
        }
    }
}

/// EfficientNet. Build it with [`EfficientNetConfig::init`].
#[derive(Module, Debug)]
pub struct EfficientNet {
    /// 3×3 stride-2 conv + BN + SiLU.
    pub stem: ConvBn,
    /// Seven stages of MBConv blocks.
    pub stages: Vec<Vec<MbConv>>,
    /// 1×1 conv to 4× the last width + BN + SiLU.
    pub head: ConvBn,
    /// Dropout before the classifier.
    pub dropout: Dropout,
    /// Linear classifier.
    pub classifier: Linear,
    /// Input channels.
    pub in_channels: usize,
    /// Output classes.
    pub num_classes: usize,
}

impl EfficientNet {
    /// Class logits. Records the output shape of the stem, each stage
    /// (`stages.0` … `stages.6`), the head and the classifier.
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → `[B, num_classes]`. Any `H, W ≥ 1`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward_silu(x); // [B, 32·w, H/2, W/2] (small input: H, W)
        trace::record("stem", &x.dims());
        for (s, stage) in self.stages.iter().enumerate() {
            for b in stage {
                x = b.forward(x); // stage s: strides 1,2,2,2,1,2,1 → up to H/32
            }
            if trace::active() {
                trace::record(&format!("stages.{s}"), &x.dims());
            }
        }
        let x = self.head.forward_silu(x); // [B, 1280·w, H/32, W/32]
        trace::record("head", &x.dims());
        let [b, c, _, _] = x.dims();
        let x = x.mean_dim(3).mean_dim(2).reshape([b, c]); // [B, 1280·w]
        let y = self.classifier.forward(self.dropout.forward(x)); // [B, num_classes]
        trace::record("classifier", &y.dims());
        y
    }
}
