//! Convolution + batch norm in 3-D and the clip check, shared by ResNet3D and S3D.

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::Tensor;
use unidl_backend::Device;
use unidl_nn::{BatchNorm3d, BatchNorm3dConfig, Conv3d, Conv3dConfig, PaddingConfig3d};

use crate::{Result, VideoError};

/// Batch-norm settings (PyTorch's `eps` and `momentum`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Norm {
    pub epsilon: f64,
    pub momentum: f64,
}

impl Norm {
    pub(crate) fn init(self, channels: usize, device: &Device) -> BatchNorm3d {
        BatchNorm3dConfig::new(channels)
            .with_epsilon(self.epsilon)
            .with_momentum(self.momentum)
            .init(device)
    }
}

/// How a convolution's weights start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ConvInit {
    /// torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
    KaimingFanOut,
    /// PyTorch's default (Kaiming-uniform with a = √5, as Burn's default).
    Default,
}

/// A bias-free 3-D convolution, `kernel`/`stride`/`padding` as `[t, h, w]`.
pub(crate) fn conv3d(
    channels: [usize; 2],
    kernel: [usize; 3],
    stride: [usize; 3],
    padding: [usize; 3],
    init: ConvInit,
    device: &Device,
) -> Conv3d {
    let mut c = Conv3dConfig::new(channels, kernel)
        .with_stride(stride)
        .with_padding(PaddingConfig3d::Explicit(
            padding[0], padding[1], padding[2],
        ))
        .with_bias(false);
    if init == ConvInit::KaimingFanOut {
        let fan_out = channels[1] * kernel.iter().product::<usize>();
        c = c.with_initializer(Initializer::Normal {
            mean: 0.0,
            std: (2.0 / fan_out as f64).sqrt(),
        });
    }
    c.init(device)
}

/// A bias-free convolution and its batch norm.
#[derive(Module, Debug)]
pub struct ConvBn3d {
    /// The convolution.
    pub conv: Conv3d,
    /// Its batch norm.
    pub bn: BatchNorm3d,
}

impl ConvBn3d {
    pub(crate) fn new(
        channels: [usize; 2],
        kernel: [usize; 3],
        stride: [usize; 3],
        padding: [usize; 3],
        init: ConvInit,
        norm: Norm,
        device: &Device,
    ) -> Self {
        ConvBn3d {
            conv: conv3d(channels, kernel, stride, padding, init, device),
            bn: norm.init(channels[1], device),
        }
    }

    /// # Shapes
    /// `[B, C_in, T, H, W]` → `[B, C_out, T', H', W']`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.bn.forward(self.conv.forward(x))
    }
}

/// Checks a clip's shape: rank 5 is given; `channels` channels, a
/// non-empty batch, and at least `min` frames/rows/columns.
pub(crate) fn check_clip(
    model: &str,
    dims: &[usize; 5],
    channels: usize,
    min: [usize; 3],
) -> Result<()> {
    let [b, c, t, h, w] = *dims;
    let reason = if b == 0 {
        Some("the batch is empty".to_string())
    } else if c != channels {
        Some(format!("expected {channels} channels"))
    } else if t < min[0] || h < min[1] || w < min[2] {
        Some(format!(
            "needs at least {} frames of {}×{} pixels",
            min[0], min[1], min[2]
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(VideoError::Input {
            model: model.into(),
            shape: dims.to_vec(),
            reason,
        }),
        None => Ok(()),
    }
}
