//! Building blocks shared by the vision models: convolution + batch norm,
//! squeeze-and-excitation and stochastic depth (drop path).

use burn::module::{Flag, Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{Distribution, Tensor};
use unidl_backend::Device;
use unidl_nn::{BatchNorm2d, BatchNorm2dConfig, Conv2d, Conv2dConfig, Linear, PaddingConfig2d};

/// torchvision's `kaiming_normal_(mode="fan_out")` for a convolution with
/// `out` output channels and a `k×k` kernel: N(0, 2 / (out·k²)). PyTorch's
/// fan-out ignores groups; Burn's `KaimingNormal` divides it by the group
/// count, which would start depthwise convolutions `√groups` times larger.
pub(crate) fn conv_init(out: usize, k: usize) -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: (2.0 / (out * k * k) as f64).sqrt(),
    }
}

/// Maps a layer's bias (torchvision zeroes most biases at initialisation).
pub(crate) trait MapBias {
    /// The layer with `f` applied to its bias, if it has one.
    fn map_bias(self, f: impl Fn(Tensor<1>) -> Tensor<1>) -> Self;
}

impl MapBias for Conv2d {
    fn map_bias(mut self, f: impl Fn(Tensor<1>) -> Tensor<1>) -> Self {
        self.bias = self.bias.map(|b| b.map(&f));
        self
    }
}

impl MapBias for Linear {
    fn map_bias(mut self, f: impl Fn(Tensor<1>) -> Tensor<1>) -> Self {
        self.bias = self.bias.map(|b| b.map(&f));
        self
    }
}

/// Batch-norm settings (PyTorch's `eps` and `momentum`, same convention:
/// `running = (1 - m) · running + m · batch`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormSettings {
    /// `eps`.
    pub epsilon: f64,
    /// `momentum`.
    pub momentum: f64,
    /// Which layer a [`BackboneNorm`](crate::detection::BackboneNorm)
    /// builds (the other norm layers have one kind and ignore it).
    pub backbone: crate::detection::BackboneNormKind,
}

impl Default for NormSettings {
    fn default() -> Self {
        NormSettings {
            epsilon: 1e-5,
            momentum: 0.1,
            backbone: crate::detection::BackboneNormKind::Frozen,
        }
    }
}

/// A 2-D normalisation layer the residual and conv–norm blocks can be
/// built with: [`BatchNorm2d`] (the classification zoo, trainable) or
/// [`FrozenBatchNorm2d`](crate::detection::FrozenBatchNorm2d) (torchvision's
/// detection backbones with pretrained weights: fixed statistics and affine).
///
/// Blocks are generic over it so both keep the same parameter names
/// (`bn1`, `downsample.bn`, …) and the same torchvision key mapping.
pub trait NormLayer: Module {
    /// A layer over `channels` channels with `settings` (γ = 1, β = 0,
    /// running mean 0, running variance 1).
    fn build(channels: usize, settings: NormSettings, device: &Device) -> Self;

    /// Normalises each channel.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    fn normalize(&self, x: Tensor<4>) -> Tensor<4>;
}

impl NormLayer for BatchNorm2d {
    fn build(channels: usize, settings: NormSettings, device: &Device) -> Self {
        settings.init(channels, device)
    }

    fn normalize(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

impl NormSettings {
    /// A batch norm over `channels` with these settings (γ = 1, β = 0,
    /// running mean 0, running variance 1). `unidl-nn`'s [`BatchNorm2d`]
    /// trains as PyTorch's `BatchNorm2d`, running variance included (Burn's
    /// own `BatchNorm` updates it with the biased variance; D20).
    pub fn init(&self, channels: usize, device: &Device) -> BatchNorm2d {
        BatchNorm2dConfig::new(channels)
            .with_epsilon(self.epsilon)
            .with_momentum(self.momentum)
            .init(device)
    }
}

/// A bias-free `k×k` convolution with "same"-style padding `(k-1)/2`
/// (torchvision's `Conv2dNormActivation`, `conv3x3`, `conv1x1`).
pub(crate) fn conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    bias_free_conv(channels, kernel, stride, 1, groups, device)
}

/// A bias-free `k×k` convolution with dilation `d` and padding `d·(k-1)/2`,
/// which keeps the size at stride 1 (torchvision's `conv3x3(…, dilation)`,
/// DeepLab's atrous convolutions).
pub(crate) fn conv_dilated(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    dilation: usize,
    device: &Device,
) -> Conv2d {
    bias_free_conv(channels, kernel, stride, dilation, 1, device)
}

fn bias_free_conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    dilation: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let p = dilation * (kernel - 1) / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(conv_init(channels[1], kernel))
        .init(device)
}

/// Convolution followed by batch norm (torchvision's `Conv2dNormActivation`
/// without its activation, which the caller applies). The norm is
/// [`BatchNorm2d`] unless another [`NormLayer`] is named.
#[derive(Module, Debug)]
pub struct ConvBn<N: Module + NormLayer = BatchNorm2d> {
    /// The bias-free convolution.
    pub conv: Conv2d,
    /// The batch norm.
    pub bn: N,
}

impl<N: Module + NormLayer> ConvBn<N> {
    /// A `k×k` convolution with padding `(k-1)/2`, `groups` groups, then batch norm.
    pub fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        norm: NormSettings,
        device: &Device,
    ) -> Self {
        ConvBn {
            conv: conv(channels, kernel, stride, groups, device),
            bn: N::build(channels[1], norm, device),
        }
    }

    /// # Shapes
    /// `[B, C_in, H, W]` → `[B, C_out, ⌈H/stride⌉, ⌈W/stride⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.normalize(self.conv.forward(x))
    }

    /// The same followed by SiLU.
    pub fn forward_silu(&self, x: Tensor<4>) -> Tensor<4> {
        silu(self.forward(x))
    }
}

/// Squeeze-and-excitation (Hu et al., 2018, arXiv:1709.01507) as torchvision's
/// `SqueezeExcitation` with a SiLU δ and a sigmoid σ: global average pool,
/// 1×1 conv down to `squeeze` channels, SiLU, 1×1 conv back up, sigmoid, and
/// the input scaled channel-wise.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    /// 1×1 conv `channels → squeeze` (with bias).
    pub fc1: Conv2d,
    /// 1×1 conv `squeeze → channels` (with bias).
    pub fc2: Conv2d,
}

impl SqueezeExcitation {
    /// Squeeze `channels` down to `squeeze` channels.
    pub fn new(channels: usize, squeeze: usize, device: &Device) -> Self {
        // torchvision: Kaiming-normal weights, zero biases
        let c = |ch: [usize; 2]| {
            Conv2dConfig::new(ch, [1, 1])
                .with_initializer(conv_init(ch[1], 1))
                .init(device)
                .map_bias(|b| b.zeros_like())
        };
        SqueezeExcitation {
            fc1: c([channels, squeeze]),
            fc2: c([squeeze, channels]),
        }
    }

    /// # Shapes
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = x.clone().mean_dim(3).mean_dim(2); // [B, C, 1, 1]
        let s = silu(self.fc1.forward(s)); // [B, squeeze, 1, 1]
        let s = sigmoid(self.fc2.forward(s)); // [B, C, 1, 1]
        x * s // [B, C, H, W]
    }
}

/// Stochastic depth, "row" mode (Huang et al., 2016, arXiv:1603.09382;
/// torchvision's `StochasticDepth(p, "row")`): in training each sample's
/// residual branch is zeroed with probability `prob` and the survivors are
/// scaled by `1 / (1 - prob)`; in evaluation it is the identity.
///
/// Training means: the layer's training flag is on (Burn's `train()` /
/// `valid()`) **and** the tensor is on an autodiff device, the rule Burn's
/// `Dropout` follows. The mask is drawn from the device's generator, which the
/// trainer re-seeds before every step, so runs are reproducible.
#[derive(Module, Debug)]
pub struct StochasticDepth {
    /// Probability of dropping the branch.
    pub prob: f64,
    /// Whether the layer is in training mode.
    pub training: Param<Flag>,
}

impl StochasticDepth {
    /// Drops the branch with probability `prob` (in `[0, 1)`).
    pub fn new(prob: f64) -> Self {
        StochasticDepth {
            prob,
            training: Param::from_bool(true),
        }
    }

    /// # Shapes
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.prob == 0.0 || !self.training.is_enabled() || !x.device().is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.prob;
        let [b, _, _, _] = x.dims();
        let mask = Tensor::<4>::random([b, 1, 1, 1], Distribution::Bernoulli(keep), &x.device()); // [B, 1, 1, 1]
        x * mask.div_scalar(keep)
    }
}
