//! `FrozenBatchNorm2d`: batch norm with fixed statistics and affine
//! parameters (torchvision 0.24.0's `torchvision.ops.misc.FrozenBatchNorm2d`),
//! the norm of torchvision's detection backbones when a pretrained backbone
//! is used.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use unidl_backend::Device;

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
