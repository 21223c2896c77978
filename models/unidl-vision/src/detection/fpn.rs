//! Feature Pyramid Network (Lin et al., 2017, "Feature Pyramid Networks for
//! Object Detection", arXiv:1612.03144) as torchvision 0.24.0's
//! `torchvision.ops.FeaturePyramidNetwork`, with its extra blocks
//! `LastLevelP6P7` (RetinaNet) and `LastLevelMaxPool` (Faster R-CNN).
//!
//! Per input level `i`: a 1×1 lateral convolution (`inner_blocks.{i}`);
//! top-down, the coarser merged map is upsampled to the lateral's size with
//! nearest-neighbour interpolation (PyTorch's `mode="nearest"`: source index
//! `⌊dst · in/out⌋`) and added; a 3×3 convolution (`layer_blocks.{i}`)
//! smooths each merged map. Convolutions have biases, no norm, no
//! activation; torchvision initialises them `kaiming_uniform_(a=1)` (bound
//! `√(3/fan_in)`) with zero biases.

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, PaddingConfig2d};

use crate::blocks::MapBias;
use crate::error::{Result, VisionError, positive};

/// The extra levels an FPN appends after its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraBlocks {
    /// None.
    None,
    /// `LastLevelP6P7(in_channels, out_channels)`: P6 = 3×3 stride-2 conv of
    /// P5 (when `in_channels == out_channels`, torchvision's `use_P5`) or of
    /// C5 (otherwise); P7 = 3×3 stride-2 conv of ReLU(P6). torchvision 0.24.0's
    /// `retinanet_resnet50_fpn` builds `LastLevelP6P7(256, 256)`: from P5.
    P6P7 {
        /// Input channels of P6's convolution.
        in_channels: usize,
        /// Output channels of P6 and P7.
        out_channels: usize,
    },
    /// `LastLevelMaxPool`: one more level, the top level subsampled by 2
    /// (`max_pool2d(kernel 1, stride 2)`).
    MaxPool,
}

/// Configuration of [`FeaturePyramidNetwork`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePyramidNetworkConfig {
    /// Channels of each input level, finest first.
    pub in_channels_list: Vec<usize>,
    /// Channels of every output level.
    pub out_channels: usize,
    /// Extra levels.
    pub extra_blocks: ExtraBlocks,
}

/// A 3×3 (or 1×1) convolution with bias, torchvision's FPN initialisation.
fn fpn_conv(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let p = (kernel - 1) / 2;
    let bound = (3.0 / (channels[0] * kernel * kernel) as f64).sqrt();
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_initializer(Initializer::Uniform {
            min: -bound,
            max: bound,
        })
        .init(device)
        .map_bias(|b| b.zeros_like())
}

impl FeaturePyramidNetworkConfig {
    /// Builds the network. No input level, a zero channel count or a P6P7
    /// block whose input is neither P5's nor C5's channel count is
    /// [`VisionError::Config`].
    pub fn init(&self, device: &Device) -> Result<FeaturePyramidNetwork> {
        if self.in_channels_list.is_empty() {
            return Err(VisionError::Config {
                key: "in_channels_list".into(),
                reason: "no input level".into(),
            });
        }
        for &c in &self.in_channels_list {
            positive("in_channels_list", c)?;
        }
        positive("out_channels", self.out_channels)?;
        let d = self.out_channels;
        let inner_blocks = self
            .in_channels_list
            .iter()
            .map(|&c| fpn_conv([c, d], 1, 1, device))
            .collect();
        let layer_blocks = self
            .in_channels_list
            .iter()
            .map(|_| fpn_conv([d, d], 3, 1, device))
            .collect();
        let (extra, max_pool) = match self.extra_blocks {
            ExtraBlocks::None => (None, false),
            ExtraBlocks::MaxPool => (None, true),
            ExtraBlocks::P6P7 {
                in_channels,
                out_channels,
            } => {
                positive("extra_blocks.out_channels", out_channels)?;
                let top = self.in_channels_list[self.in_channels_list.len() - 1];
                if in_channels != out_channels && in_channels != top {
                    return Err(VisionError::Config {
                        key: "extra_blocks.in_channels".into(),
                        reason: format!(
                            "{in_channels}: P6 reads P5 ({out_channels} channels, when equal to \
                             out_channels) or C5 ({top} channels)"
                        ),
                    });
                }
                if in_channels == out_channels && in_channels != d {
                    return Err(VisionError::Config {
                        key: "extra_blocks.in_channels".into(),
                        reason: format!("{in_channels}: P5 has {d} channels"),
                    });
                }
                (
                    Some(LastLevelP6P7 {
                        p6: fpn_conv([in_channels, out_channels], 3, 2, device),
                        p7: fpn_conv([out_channels, out_channels], 3, 2, device),
                        use_p5: in_channels == out_channels,
                    }),
                    false,
                )
            }
        };
        Ok(FeaturePyramidNetwork {
            inner_blocks,
            layer_blocks,
            extra_blocks: extra,
            last_level_max_pool: max_pool,
        })
    }
}

/// torchvision's `LastLevelP6P7`: two stride-2 3×3 convolutions on top of
/// the pyramid (RetinaNet's P6 and P7).
#[derive(Module, Debug)]
pub struct LastLevelP6P7 {
    /// P6: 3×3 stride 2 on P5 (or C5).
    pub p6: Conv2d,
    /// P7: 3×3 stride 2 on ReLU(P6).
    pub p7: Conv2d,
    /// Whether P6 reads P5 (`in_channels == out_channels`) rather than C5.
    pub use_p5: bool,
}

/// The Feature Pyramid Network. Build it with
/// [`FeaturePyramidNetworkConfig::init`].
#[derive(Module, Debug)]
pub struct FeaturePyramidNetwork {
    /// 1×1 lateral convolutions, one per input level (torchvision
    /// `inner_blocks.{i}.0`).
    pub inner_blocks: Vec<Conv2d>,
    /// 3×3 output convolutions, one per input level (torchvision
    /// `layer_blocks.{i}.0`).
    pub layer_blocks: Vec<Conv2d>,
    /// P6/P7 (RetinaNet).
    pub extra_blocks: Option<LastLevelP6P7>,
    /// Whether `LastLevelMaxPool` appends a subsampled top level.
    pub last_level_max_pool: bool,
}

impl FeaturePyramidNetwork {
    /// The pyramid, finest level first, then the extra levels.
    ///
    /// Returns [`VisionError::Input`] when the number of levels or their
    /// channels differ from the configuration.
    ///
    /// # Shapes
    /// `C_i: [B, in_channels_list[i], H_i, W_i]` → `P_i: [B, out_channels,
    /// H_i, W_i]`, then P6 `[B, out, ⌈H_top/2⌉, ⌈W_top/2⌉]` and P7
    /// `[B, out, ⌈H_6/2⌉, ⌈W_6/2⌉]` (P6P7), or the top level at stride 2
    /// (max-pool).
    pub fn forward(&self, features: Vec<Tensor<4>>) -> Result<Vec<Tensor<4>>> {
        let n = self.inner_blocks.len();
        if features.len() != n {
            return Err(VisionError::Input {
                model: "FeaturePyramidNetwork".into(),
                shape: vec![features.len()],
                reason: format!("{} feature maps given, {n} expected", features.len()),
            });
        }
        for (i, (f, c)) in features.iter().zip(&self.inner_blocks).enumerate() {
            let want = c.weight.dims()[1];
            if f.dims()[1] != want {
                return Err(VisionError::Input {
                    model: "FeaturePyramidNetwork".into(),
                    shape: f.dims().to_vec(),
                    reason: format!("level {i} has {} channels, {want} expected", f.dims()[1]),
                });
            }
        }
        let top = features[n - 1].clone();
        let mut last_inner = self.inner_blocks[n - 1].forward(top.clone()); // [B, D, H_top, W_top]
        let mut results = vec![self.layer_blocks[n - 1].forward(last_inner.clone())];
        for idx in (0..n - 1).rev() {
            let lateral = self.inner_blocks[idx].forward(features[idx].clone()); // [B, D, H_i, W_i]
            let [_, _, h, w] = lateral.dims();
            let top_down = interpolate(
                last_inner,
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
            ); // [B, D, H_i, W_i]
            last_inner = lateral + top_down;
            results.insert(0, self.layer_blocks[idx].forward(last_inner.clone())); // [B, D, H_i, W_i]
        }
        if let Some(e) = &self.extra_blocks {
            let x = if e.use_p5 {
                results[n - 1].clone() // P5
            } else {
                top // C5
            };
            let p6 = e.p6.forward(x); // [B, D, ⌈H/2⌉, ⌈W/2⌉]
            let p7 = e.p7.forward(relu(p6.clone())); // [B, D, ⌈H/4⌉, ⌈W/4⌉]
            results.push(p6);
            results.push(p7);
        } else if self.last_level_max_pool {
            let last = results[results.len() - 1].clone();
            let [_, _, h, w] = last.dims();
            let dev = last.device();
            // max_pool2d(kernel 1, stride 2): every other row and column
            let rows = Tensor::<1, Int>::arange_step(0..h as i64, 2, &dev);
            let cols = Tensor::<1, Int>::arange_step(0..w as i64, 2, &dev);
            results.push(last.select(2, rows).select(3, cols)); // [B, D, ⌈H/2⌉, ⌈W/2⌉]
        }
        Ok(results)
    }
}
