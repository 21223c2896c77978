//! Building blocks shared by the vision models: convolution + batch norm,
//! squeeze-and-excitation and stochastic depth (drop path).

use burn::module::{Flag, Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{Distribution, Tensor};
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, PaddingConfig2d};

/// torchvision's convolution initialisation: Kaiming normal, fan-out, ReLU gain.
pub(crate) fn kaiming_fan_out() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
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
}

impl Default for NormSettings {
    fn default() -> Self {
        NormSettings {
            epsilon: 1e-5,
            momentum: 0.1,
        }
    }
}

impl NormSettings {
    /// A batch norm over `channels` with these settings (γ = 1, β = 0,
    /// running mean 0, running variance 1).
    pub fn init(&self, channels: usize, device: &Device) -> BatchNorm {
        BatchNorm {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            training: Param::from_bool(true),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

/// Batch normalisation as PyTorch's `BatchNorm2d` in training **and**
/// evaluation. Burn's `BatchNorm` normalises identically but updates the
/// running variance with the biased batch variance; PyTorch uses the
/// unbiased one (`n / (n - 1)` times larger, `n` = values per channel), which
/// matters where few values reach a channel (EfficientNet's 1×1 late stages,
/// small batches). Same parameter names as Burn's (`gamma`, `beta`,
/// `running_mean`, `running_var`), so keys and the torchvision mapping are
/// unchanged.
///
/// Training means: the training flag is on and the input is on an autodiff
/// device (Burn's rule); otherwise the running statistics are used.
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// Scale γ (PyTorch `weight`).
    pub gamma: Param<Tensor<1>>,
    /// Shift β (PyTorch `bias`).
    pub beta: Param<Tensor<1>>,
    /// Whether the layer is in training mode.
    pub training: Param<Flag>,
    /// Running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance.
    pub running_var: RunningState<Tensor<1>>,
    /// Momentum of the running statistics.
    pub momentum: f64,
    /// `eps` added to the variance.
    pub epsilon: f64,
}

impl BatchNorm {
    /// # Shapes
    /// `[B, C, …]` → `[B, C, …]`.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let device = input.device();
        if !(device.is_autodiff() && self.training.is_enabled()) {
            return burn::tensor::module::batch_norm(
                input,
                self.gamma.val(),
                self.beta.val(),
                self.running_mean.value().to_device(&device),
                self.running_var.value().to_device(&device),
                self.epsilon,
            );
        }
        let dims = input.dims();
        let n = dims.iter().product::<usize>() / dims[1];
        let r = burn::tensor::module::batch_norm_train(
            input,
            self.gamma.val(),
            self.beta.val(),
            self.epsilon,
        );
        let unbiased = if n > 1 {
            n as f64 / (n - 1) as f64
        } else {
            1.0
        };
        let m = self.momentum;
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        let mean = mean.mul_scalar(1.0 - m).add(r.mean.detach().mul_scalar(m));
        let var = var
            .mul_scalar(1.0 - m)
            .add(r.variance.detach().mul_scalar(m * unbiased));
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        r.output
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
    let p = (kernel - 1) / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(kaiming_fan_out())
        .init(device)
}

/// Convolution followed by batch norm (torchvision's `Conv2dNormActivation`
/// without its activation, which the caller applies).
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The bias-free convolution.
    pub conv: Conv2d,
    /// The batch norm.
    pub bn: BatchNorm,
}

impl ConvBn {
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
            bn: norm.init(channels[1], device),
        }
    }

    /// # Shapes
    /// `[B, C_in, H, W]` → `[B, C_out, ⌈H/stride⌉, ⌈W/stride⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward(x))
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
        let c = |ch: [usize; 2]| {
            Conv2dConfig::new(ch, [1, 1])
                .with_initializer(kaiming_fan_out())
                .init(device)
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
