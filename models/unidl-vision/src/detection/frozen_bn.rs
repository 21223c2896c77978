//! `FrozenBatchNorm2d`: batch norm with fixed statistics and affine
//! parameters (torchvision 0.24.0's `torchvision.ops.misc.FrozenBatchNorm2d`),
//! the norm of torchvision's detection backbones when a pretrained backbone
//! is used, and [`BackboneNorm`], the frozen-or-trainable choice those
//! backbones make.

use burn::module::{
    Content, Devices, DisplaySettings, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper,
    ModuleVisitor, Param,
};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::BatchNorm2d;

use crate::blocks::{NormLayer, NormSettings};

/// Batch norm whose `weight`, `bias`, `running_mean` and `running_var` are
/// constants: `y = x · scale + (bias − running_mean · scale)` with
/// `scale = weight / √(running_var + eps)`, computed in that order as
/// torchvision does.
///
/// The four tensors are Burn parameters that never require gradients
/// (`Param::set_require_grad(false)`), so they are saved, loaded and moved
/// with the model but are buffers to the standard's Module API
/// (`get_buffers`, not `get_parameters`) and no optimizer touches them. The
/// names are torchvision's, so state dicts map one to one. The layer has no
/// training mode: it normalises the same way in training and evaluation.
///
/// `eps` is 1e-5 (torchvision's default). torchvision's pretrained
/// `retinanet_resnet50_fpn` COCO weights set it to 0 after loading
/// (`overwrite_eps(model, 0.0)`); give `eps = 0` to reproduce those.
#[derive(Module, Debug)]
pub struct FrozenBatchNorm2d {
    /// γ, `[C]`.
    pub weight: Param<Tensor<1>>,
    /// β, `[C]`.
    pub bias: Param<Tensor<1>>,
    /// Running mean, `[C]`.
    pub running_mean: Param<Tensor<1>>,
    /// Running variance, `[C]`.
    pub running_var: Param<Tensor<1>>,
    /// Added to the variance.
    pub eps: f64,
}

/// A tensor that is a buffer, never a trainable parameter.
fn buffer(t: Tensor<1>) -> Param<Tensor<1>> {
    Param::from_tensor(t).set_require_grad(false)
}

impl FrozenBatchNorm2d {
    /// γ = 1, β = 0, mean 0, variance 1 over `channels` channels (the
    /// identity up to `eps`), as torchvision initialises it.
    pub fn new(channels: usize, eps: f64, device: &Device) -> Self {
        FrozenBatchNorm2d {
            weight: buffer(Tensor::ones([channels], device)),
            bias: buffer(Tensor::zeros([channels], device)),
            running_mean: buffer(Tensor::zeros([channels], device)),
            running_var: buffer(Tensor::ones([channels], device)),
            eps,
        }
    }

    /// Normalises each channel with the fixed statistics.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [c] = self.weight.dims();
        let w = self.weight.val().reshape([1, c, 1, 1]); // [1, C, 1, 1]
        let b = self.bias.val().reshape([1, c, 1, 1]); // [1, C, 1, 1]
        let rv = self.running_var.val().reshape([1, c, 1, 1]); // [1, C, 1, 1]
        let rm = self.running_mean.val().reshape([1, c, 1, 1]); // [1, C, 1, 1]
        let scale = w * rv.add_scalar(self.eps).sqrt().recip(); // [1, C, 1, 1]
        let bias = b - rm * scale.clone(); // [1, C, 1, 1]
        x * scale + bias // [B, C, H, W]
    }
}

impl NormLayer for FrozenBatchNorm2d {
    /// Uses `settings.epsilon`; the momentum does not apply.
    fn build(channels: usize, settings: NormSettings, device: &Device) -> Self {
        FrozenBatchNorm2d::new(channels, settings.epsilon, device)
    }

    fn normalize(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

/// Which norm a detection backbone uses (torchvision's
/// `norm_layer = FrozenBatchNorm2d if is_trained else nn.BatchNorm2d`).
///
/// ```toml
/// norm = "frozen"   # or "batch"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackboneNormKind {
    /// [`FrozenBatchNorm2d`]: fixed statistics and affine, for pretrained
    /// backbones (torchvision's choice when backbone weights are given).
    #[default]
    Frozen,
    /// PyTorch's trainable `nn.BatchNorm2d` (`unidl_nn::BatchNorm2d`),
    /// for training from scratch (torchvision's choice without backbone
    /// weights).
    Batch,
}

/// The norm of a detection backbone, frozen or trainable, chosen at
/// configuration time ([`BackboneNormKind`]).
///
/// The layer is transparent in parameter paths: it adds no name of its own,
/// so a frozen norm's tensors are `weight`, `bias`, `running_mean`,
/// `running_var` and a batch norm's `gamma`, `beta`, `running_mean`,
/// `running_var` directly under the owning field (`bn1`, `downsample.bn`,
/// …), the names torchvision's state dicts map to either way.
#[derive(Debug, Clone)]
pub enum BackboneNorm {
    /// Fixed statistics and affine.
    Frozen(FrozenBatchNorm2d),
    /// Trainable batch norm with running statistics.
    Batch(BatchNorm2d),
}

impl BackboneNorm {
    /// Normalises each channel.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            BackboneNorm::Frozen(n) => n.forward(x),
            BackboneNorm::Batch(n) => n.forward(x),
        }
    }

    /// Which kind of norm this is.
    pub fn kind(&self) -> BackboneNormKind {
        match self {
            BackboneNorm::Frozen(_) => BackboneNormKind::Frozen,
            BackboneNorm::Batch(_) => BackboneNormKind::Batch,
        }
    }
}

impl NormLayer for BackboneNorm {
    /// A [`FrozenBatchNorm2d`] or a [`BatchNorm2d`] as `settings.backbone`
    /// says, with its epsilon (and momentum, for the batch norm).
    fn build(channels: usize, settings: NormSettings, device: &Device) -> Self {
        match settings.backbone {
            BackboneNormKind::Frozen => {
                BackboneNorm::Frozen(FrozenBatchNorm2d::new(channels, settings.epsilon, device))
            }
            BackboneNormKind::Batch => BackboneNorm::Batch(settings.init(channels, device)),
        }
    }

    fn normalize(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

/// Applies the same expression to whichever norm `$n` holds, rebuilding the
/// same variant when the expression yields a layer.
macro_rules! each {
    ($self:expr, $n:ident => $e:expr) => {
        match $self {
            BackboneNorm::Frozen($n) => $e,
            BackboneNorm::Batch($n) => $e,
        }
    };
    (wrap $self:expr, $n:ident => $e:expr) => {
        match $self {
            BackboneNorm::Frozen($n) => BackboneNorm::Frozen($e),
            BackboneNorm::Batch($n) => BackboneNorm::Batch($e),
        }
    };
}

impl Module for BackboneNorm {
    fn collect_devices(&self, devices: Devices) -> Devices {
        each!(self, n => n.collect_devices(devices))
    }

    fn fork(self, device: &Device) -> Self {
        each!(wrap self, n => n.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        each!(wrap self, n => n.to_device(device))
    }

    fn train(self) -> Self {
        each!(wrap self, n => n.train())
    }

    fn valid(&self) -> Self {
        each!(wrap self, n => n.valid())
    }

    fn materialize(self) -> Self {
        each!(wrap self, n => n.materialize())
    }

    fn num_params(&self) -> usize {
        each!(self, n => Module::num_params(n))
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        each!(self, n => n.visit(visitor))
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        each!(wrap self, n => n.map(mapper))
    }
}

impl ModuleDisplayDefault for BackboneNorm {
    fn content(&self, content: Content) -> Option<Content> {
        each!(self, n => n.content(content))
    }

    fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}

impl ModuleDisplay for BackboneNorm {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        each!(self, n => n.custom_settings())
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        each!(self, n => n.custom_content(content))
    }
}

impl core::fmt::Display for BackboneNorm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&ModuleDisplay::format(self, DisplaySettings::default()))
    }
}
