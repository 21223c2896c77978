//! SSD300's VGG-16 feature extractor (torchvision 0.24.0
//! `models.detection.ssd.SSDFeatureExtractorVGG`, `highres = False`):
//! VGG-16's convolutions up to `conv4_3` (the third max-pool rounds up), an
//! L2 normalisation of `conv4_3` scaled per channel by a learnt weight
//! (initially 20), then `pool4`, `conv5_1…3`, a 3×3 stride-1 max-pool,
//! `fc6` (3×3, dilation 6) and `fc7` (1×1) as convolutions, and four extra
//! blocks (1×1 then 3×3, the first two with stride 2). Six maps come out:
//! 38², 19², 10², 5², 3², 1² for a 300 × 300 input.
//!
//! Widths scale with `width` (torchvision: 64): VGG stages `w, 2w, 4w, 8w,
//! 8w`, `fc6`/`fc7` `16w`, extras `4w→8w`, `2w→4w`, `2w→4w`, `2w→4w`.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, MaxPool2d, MaxPool2dConfig, PaddingConfig2d};
use unidl_tensor::trace;

use crate::blocks::{MapBias, conv_init};
use crate::error::{Result, VisionError};

/// A convolution with bias (zero), `k × k`, padding `p`, stride `s`,
/// dilation `d`, initialised by `init`.
fn conv(
    c: [usize; 2],
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    init: Initializer,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new(c, [k, k])
        .with_stride([s, s])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_dilation([d, d])
        .with_initializer(init)
        .init(device)
        .map_bias(|b| b.zeros_like())
}

fn xavier() -> Initializer {
    Initializer::XavierUniform { gain: 1.0 }
}

/// VGG-16's ten convolutions up to `conv4_3`: (in, out) at base width `w`.
fn vgg_channels(w: usize) -> Vec<[usize; 2]> {
    vec![
        [3, w],
        [w, w],
        [w, 2 * w],
        [2 * w, 2 * w],
        [2 * w, 4 * w],
        [4 * w, 4 * w],
        [4 * w, 4 * w],
        [4 * w, 8 * w],
        [8 * w, 8 * w],
        [8 * w, 8 * w],
    ]
}

/// Index of each of the thirteen VGG-16 convolutions in torchvision's
/// `vgg16().features` (ReLUs and max-pools counted).
pub(crate) const VGG_FEATURE_INDEX: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];

/// One extra block: 1×1 convolution + ReLU, 3×3 convolution + ReLU
/// (torchvision `extra.{k}.0`, `extra.{k}.2`).
#[derive(Module, Debug)]
pub struct ExtraBlock {
    /// 1×1.
    pub conv1: Conv2d,
    /// 3×3.
    pub conv2: Conv2d,
}

/// The extractor. Build it with [`SsdVgg::new`].
#[derive(Module, Debug)]
pub struct SsdVgg {
    /// `conv1_1` … `conv4_3` (torchvision `features.{0,2,5,…,21}`).
    pub features: Vec<Conv2d>,
    /// Per-channel scale of the normalised `conv4_3` (torchvision `scale_weight`).
    pub scale_weight: Param<Tensor<1>>,
    /// `conv5_1` … `conv5_3` (torchvision `extra.0.{1,3,5}`).
    pub conv5: Vec<Conv2d>,
    /// `fc6` as a dilated convolution (torchvision `extra.0.7.1`).
    pub fc6: Conv2d,
    /// `fc7` as a 1×1 convolution (torchvision `extra.0.7.3`).
    pub fc7: Conv2d,
    /// The four extra blocks (torchvision `extra.1` … `extra.4`).
    pub extra: Vec<ExtraBlock>,
    /// 2×2 stride-2 max-pool.
    pub pool: MaxPool2d,
    /// The same, rounding up (after `conv3_3`).
    pub pool_ceil: MaxPool2d,
    /// 3×3 stride-1 max-pool, padding 1 (`pool5`).
    pub pool5: MaxPool2d,
}

impl SsdVgg {
    /// The extractor at base width `width` (torchvision: 64) with
    /// torchvision's initialisation (VGG: Kaiming normal, fan-out; `fc6`,
    /// `fc7` and the extras: Xavier uniform; biases 0; scale 20) and the VGG
    /// convolutions before the last `trainable_layers` of its five stages
    /// frozen (torchvision's `_vgg_extractor`; 5: none frozen).
    pub fn new(width: usize, trainable_layers: usize, device: &Device) -> Result<Self> {
        if width == 0 {
            return Err(VisionError::Config {
                key: "width".into(),
                reason: "must be at least 1".into(),
            });
        }
        if trainable_layers > 5 {
            return Err(VisionError::Config {
                key: "trainable_layers".into(),
                reason: format!("{trainable_layers} is not in 0..=5"),
            });
        }
        let w = width;
        let vgg = |c: [usize; 2]| conv(c, 3, 1, 1, 1, conv_init(c[1], 3), device);
        let mut features: Vec<Conv2d> = vgg_channels(w).into_iter().map(vgg).collect();
        let mut conv5: Vec<Conv2d> = (0..3).map(|_| vgg([8 * w, 8 * w])).collect();
        // stages: conv1_x (2), conv2_x (2), conv3_x (3), conv4_x (3), conv5_x (3)
        let frozen_convs = match trainable_layers {
            5 => 0,
            4 => 2,
            3 => 4,
            2 => 7,
            1 => 10,
            _ => 13,
        };
        for (i, c) in features.iter_mut().chain(conv5.iter_mut()).enumerate() {
            if i < frozen_convs {
                *c = c.clone().no_grad();
            }
        }
        let extra = [
            (16 * w, 4 * w, 8 * w, 2, 1),
            (8 * w, 2 * w, 4 * w, 2, 1),
            (4 * w, 2 * w, 4 * w, 1, 0),
            (4 * w, 2 * w, 4 * w, 1, 0),
        ]
        .into_iter()
        .map(|(i, m, o, s, p)| ExtraBlock {
            conv1: conv([i, m], 1, 1, 0, 1, xavier(), device),
            conv2: conv([m, o], 3, s, p, 1, xavier(), device),
        })
        .collect();
        Ok(SsdVgg {
            features,
            scale_weight: Param::from_tensor(Tensor::ones([8 * w], device).mul_scalar(20.0)),
            conv5,
            fc6: conv([8 * w, 16 * w], 3, 1, 6, 6, xavier(), device),
            fc7: conv([16 * w, 16 * w], 1, 1, 0, 1, xavier(), device),
            extra,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pool_ceil: MaxPool2dConfig::new([2, 2])
                .with_strides([2, 2])
                .with_ceil_mode(true)
                .init(),
            pool5: MaxPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
        })
    }

    /// The six feature maps. Records `conv4_3`, `fc7` and `extra{k}` for
    /// model summaries.
    ///
    /// # Shapes
    /// `[B, 3, 300, 300]` → `[B, 8w, 38, 38]`, `[B, 16w, 19, 19]`,
    /// `[B, 8w, 10, 10]`, `[B, 4w, 5, 5]`, `[B, 4w, 3, 3]`, `[B, 4w, 1, 1]`.
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = x;
        for (k, c) in self.features.iter().enumerate() {
            x = relu(c.forward(x));
            match k {
                1 | 3 => x = self.pool.forward(x),
                6 => x = self.pool_ceil.forward(x),
                _ => {}
            }
        }
        trace::record("conv4_3", &x.dims());
        // F.normalize(x, dim=1): x / max(‖x‖₂, 1e-12), then the scale
        let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12); // [B, 1, H, W]
        let c = self.scale_weight.dims()[0];
        let scale = self.scale_weight.val().reshape([1, c, 1, 1]);
        let mut out = vec![x.clone() / norm * scale];
        let mut x = self.pool.forward(x);
        for c in &self.conv5 {
            x = relu(c.forward(x));
        }
        x = self.pool5.forward(x);
        x = relu(self.fc7.forward(relu(self.fc6.forward(x))));
        trace::record("fc7", &x.dims());
        out.push(x.clone());
        for (k, e) in self.extra.iter().enumerate() {
            x = relu(e.conv2.forward(relu(e.conv1.forward(x))));
            trace::record(&format!("extra{}", k + 1), &x.dims());
            out.push(x.clone());
        }
        out
    }

    /// Channels of the six maps.
    pub fn out_channels(&self) -> Vec<usize> {
        let w = self.features[0].weight.dims()[0];
        vec![8 * w, 16 * w, 8 * w, 4 * w, 4 * w, 4 * w]
    }
}
