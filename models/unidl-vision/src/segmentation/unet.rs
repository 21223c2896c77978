//! # U-Net (Ronneberger, Fischer & Brox, 2015, "U-Net: Convolutional Networks for Biomedical Image Segmentation", arXiv:1505.04597)
//!
//! The paper's network: a contracting path of double 3×3 convolutions with
//! ReLU (64 → 128 → 256 → 512 → 1024 channels) and 2×2 max-pooling, an
//! expanding path of 2×2 up-convolutions that halve the channels, each
//! followed by concatenation with the contracting path's feature map
//! (centre-cropped when the convolutions are unpadded) and a double 3×3
//! convolution, and a 1×1 convolution to the classes. No normalisation,
//! no dropout (the paper's drop-out at the end of the contracting path is a
//! training option here: `dropout`).
//!
//! `padding = "valid"` is the paper's (unpadded convolutions; a 572×572
//! tile gives a 388×388 map) and `"same"` pads every 3×3 convolution by 1
//! (output the input's size when it divides by 2^depth). For any input
//! size, [`UNet::segment_any`] (what the segmentation task calls) extends
//! the image by mirroring as the paper's overlap-tile strategy does
//! (valid) or pads it to a multiple of 2^depth (same), runs the network
//! and crops the logits back to the input.
//!
//! Initialisation: the paper's, N(0, √(2/N)) with `N` the inputs of one
//! unit (`k² · C_in`), biases 0.
//!
//! Parameter names: `encoder.{i}.conv{1,2}`, `decoder.{i}.up`,
//! `decoder.{i}.conv{1,2}`, `head`, the same as the PyTorch definition in
//! `tests/reference/gen_unet.py`.

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{
    Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Dropout, DropoutConfig,
    MaxPool2d, MaxPool2dConfig, PaddingConfig2d,
};
use unidl_tensor::trace;

use crate::blocks::MapBias;
use crate::error::{Result, VisionError, positive, unit_interval};

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn sixty_four() -> usize {
    64
}
fn four() -> usize {
    4
}

/// How the 3×3 convolutions pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UNetPadding {
    /// Unpadded, as the paper (the map shrinks by 4 per double convolution).
    #[default]
    Valid,
    /// Padded by 1 (the map keeps its size).
    Same,
}

/// Configuration of [`UNet`]; the defaults are the paper's.
///
/// ```toml
/// in_channels = 1
/// num_classes = 2
/// base_channels = 64
/// depth = 4              # pooling steps (1024 channels at the bottom)
/// padding = "valid"      # or "same"
/// dropout = 0.0          # before the last pooling and the bottom (paper: drop-out there)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Input channels (1 in the paper).
    #[serde(default = "one")]
    pub in_channels: usize,
    /// Output classes (2 in the paper: cell / border-or-background).
    #[serde(default = "two")]
    pub num_classes: usize,
    /// Channels of the first level (64); level `i` has `base · 2^i`.
    #[serde(default = "sixty_four")]
    pub base_channels: usize,
    /// Pooling steps (4).
    #[serde(default = "four")]
    pub depth: usize,
    /// Convolution padding.
    #[serde(default)]
    pub padding: UNetPadding,
    /// Dropout probability at the end of the contracting path (the two
    /// deepest levels' outputs), 0 for none.
    #[serde(default)]
    pub dropout: f64,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig {
            in_channels: 1,
            num_classes: 2,
            base_channels: 64,
            depth: 4,
            padding: UNetPadding::Valid,
            dropout: 0.0,
        }
    }
}

/// The paper's initialisation for a unit with `fan_in` inputs: N(0, √(2/fan_in)).
fn paper_init(fan_in: usize) -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: (2.0 / fan_in as f64).sqrt(),
    }
}

/// A `k×k` convolution with bias (zero) and the paper's initialisation.
fn conv(channels: [usize; 2], kernel: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_initializer(paper_init(kernel * kernel * channels[0]))
        .init(device)
        .map_bias(|b| b.zeros_like())
}

/// The 2×2 stride-2 up-convolution from `2c` to `c` channels, bias zero.
fn up_conv(c: usize, device: &Device) -> ConvTranspose2d {
    let mut up = ConvTranspose2dConfig::new([2 * c, c], [2, 2])
        .with_stride([2, 2])
        .with_initializer(paper_init(4 * 2 * c))
        .init(device);
    up.bias = up.bias.map(|p| p.map(|t| t.zeros_like()));
    up
}

impl UNetConfig {
    /// The paper's network: 1 input channel, 2 classes, 64 → 1024 channels,
    /// unpadded convolutions (31,030,658 parameters).
    pub fn new() -> Self {
        UNetConfig::default()
    }

    /// Spatial shrinkage of one double convolution (4 when unpadded).
    fn shrink(&self) -> usize {
        match self.padding {
            UNetPadding::Valid => 4,
            UNetPadding::Same => 0,
        }
    }

    /// The network's output size for an input side `n`, or `None` when a
    /// pooling step would meet an odd or too small map.
    pub fn output_side(&self, n: usize) -> Option<usize> {
        let s = self.shrink();
        let mut x = n;
        for _ in 0..self.depth {
            x = x.checked_sub(s).filter(|&v| v > 0 && v % 2 == 0)? / 2;
        }
        x = x.checked_sub(s).filter(|&v| v > 0)?;
        for _ in 0..self.depth {
            x = (2 * x).checked_sub(s).filter(|&v| v > 0)?;
        }
        Some(x)
    }

    /// The smallest input side `≥ n` whose output side is at least `n`,
    /// and that output side.
    pub fn tile_for(&self, n: usize) -> (usize, usize) {
        let mut p = n;
        loop {
            if let Some(o) = self.output_side(p).filter(|&o| o >= n) {
                return (p, o);
            }
            p += 1;
        }
    }

    /// Builds the network. A zero channel or class count, a zero depth, or
    /// a dropout outside `[0, 1]` is [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<UNet> {
        positive("in_channels", self.in_channels)?;
        positive("num_classes", self.num_classes)?;
        positive("base_channels", self.base_channels)?;
        positive("depth", self.depth)?;
        unit_interval("dropout", self.dropout as f32)?;
        let pad = match self.padding {
            UNetPadding::Valid => 0,
            UNetPadding::Same => 1,
        };
        let b = self.base_channels;
        let double = |cin: usize, cout: usize| DoubleConv {
            conv1: conv([cin, cout], 3, pad, device),
            conv2: conv([cout, cout], 3, pad, device),
        };
        let encoder = (0..=self.depth)
            .map(|i| {
                let cin = if i == 0 {
                    self.in_channels
                } else {
                    b << (i - 1)
                };
                double(cin, b << i)
            })
            .collect();
        let decoder = (0..self.depth)
            .rev()
            .map(|i| UpBlock {
                up: up_conv(b << i, device),
                conv: double(2 * (b << i), b << i),
            })
            .collect();
        Ok(UNet {
            encoder,
            decoder,
            head: conv([b, self.num_classes], 1, 0, device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            config: self.clone(),
        })
    }
}

/// Two 3×3 convolutions, each followed by ReLU.
#[derive(Module, Debug)]
pub struct DoubleConv {
    /// First convolution.
    pub conv1: Conv2d,
    /// Second convolution.
    pub conv2: Conv2d,
}

impl DoubleConv {
    /// # Shapes
    /// `[B, C_in, H, W]` → `[B, C_out, H − s, W − s]`, `s` = 4 unpadded, 0 padded.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.conv2.forward(relu(self.conv1.forward(x))))
    }
}

/// One step of the expanding path: 2×2 up-convolution halving the
/// channels, concatenation with the (cropped) skip, double convolution.
#[derive(Module, Debug)]
pub struct UpBlock {
    /// The 2×2 stride-2 up-convolution (`up`).
    pub up: ConvTranspose2d,
    /// The double convolution after the concatenation (`conv1`, `conv2`).
    pub conv: DoubleConv,
}

/// U-Net. Build it with [`UNetConfig::init`].
#[derive(Module, Debug)]
pub struct UNet {
    /// The contracting path, `depth + 1` double convolutions (the last is
    /// the bottom, 1024 channels in the paper).
    pub encoder: Vec<DoubleConv>,
    /// The expanding path, deepest first.
    pub decoder: Vec<UpBlock>,
    /// The 1×1 classifier.
    pub head: Conv2d,
    /// 2×2 max-pool.
    pub pool: MaxPool2d,
    /// Dropout at the end of the contracting path.
    pub dropout: Dropout,
    /// The configuration.
    #[module(skip)]
    pub config: UNetConfig,
}

/// Centre crop of `x` to `[h, w]`.
fn centre_crop(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [b, c, xh, xw] = x.dims();
    let (top, left) = ((xh - h) / 2, (xw - w) / 2);
    x.slice([0..b, 0..c, top..top + h, left..left + w])
}

/// Mirror padding by any amount (repeated reflections when the padding
/// exceeds the side).
fn mirror_pad(
    mut x: Tensor<4>,
    mut top: usize,
    mut bottom: usize,
    mut left: usize,
    mut right: usize,
) -> Tensor<4> {
    while top + bottom + left + right > 0 {
        let [_, _, h, w] = x.dims();
        let (t, b) = (top.min(h - 1), bottom.min(h - 1));
        let (l, r) = (left.min(w - 1), right.min(w - 1));
        if t + b + l + r == 0 {
            // a 1-pixel side cannot reflect: repeat the edge
            return x.pad((left, right, top, bottom), PadMode::Edge);
        }
        x = x.pad((l, r, t, b), PadMode::Reflect);
        top -= t;
        bottom -= b;
        left -= l;
        right -= r;
    }
    x
}

impl UNet {
    /// The network on an input whose size it accepts (see
    /// [`UNetConfig::output_side`]); an unusable size is
    /// [`VisionError::Input`].
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → `[B, num_classes, H', W']` (valid: 572 →
    /// 388; same: `H' = H` when `H` divides by `2^depth`).
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let [_, c, h, w] = x.dims();
        let cfg = &self.config;
        if c != cfg.in_channels || cfg.output_side(h).is_none() || cfg.output_side(w).is_none() {
            return Err(VisionError::Input {
                model: "U-Net".into(),
                shape: x.dims().to_vec(),
                reason: format!(
                    "needs {} channels and sides the network can pool {} times ({:?} padding; \
                     `segment_any` pads any size)",
                    cfg.in_channels, cfg.depth, cfg.padding
                ),
            });
        }
        let depth = self.encoder.len() - 1;
        let mut skips = Vec::with_capacity(depth);
        let mut x = x;
        for (i, level) in self.encoder.iter().enumerate() {
            x = level.forward(x); // [B, base·2^i, h_i, w_i]
            if i + 1 >= depth {
                x = self.dropout.forward(x);
            }
            if i < depth {
                skips.push(x.clone());
                x = self.pool.forward(x); // [B, base·2^i, h_i/2, w_i/2]
            }
        }
        trace::record("encoder", &x.dims());
        for up in &self.decoder {
            let skip = skips.pop().expect("one skip per decoder level");
            let y = up.up.forward(x); // [B, C/2, 2h, 2w]
            let [_, _, yh, yw] = y.dims();
            let skip = centre_crop(skip, yh, yw); // [B, C/2, 2h, 2w]
            x = up.conv.forward(Tensor::cat(vec![skip, y], 1)); // [B, C/2, 2h − s, 2w − s]
        }
        trace::record("decoder", &x.dims());
        Ok(self.head.forward(x)) // [B, K, H', W']
    }

    /// Logits at the input's size for any input size: valid padding
    /// mirrors the image outward (the paper's overlap-tile strategy) to the
    /// smallest tile whose output covers it, same padding pads to a
    /// multiple of `2^depth` by mirroring; the logits are cropped back.
    ///
    /// # Shapes
    /// `[B, in_channels, H, W]` → `[B, num_classes, H, W]`.
    pub fn segment_any(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let [_, _, h, w] = x.dims();
        let cfg = &self.config;
        let (ph, oh) = cfg.tile_for(h);
        let (pw, ow) = cfg.tile_for(w);
        // the output is centred on the tile: pad so the image lands there
        let (top, left) = ((ph - oh) / 2 + (oh - h) / 2, (pw - ow) / 2 + (ow - w) / 2);
        let x = mirror_pad(x, top, ph - h - top, left, pw - w - left);
        let y = self.forward(x)?; // [B, K, oh, ow]
        let (ct, cl) = ((oh - h) / 2, (ow - w) / 2);
        let [b, k, _, _] = y.dims();
        Ok(y.slice([0..b, 0..k, ct..ct + h, cl..cl + w]))
    }
}

impl unidl_train::SemanticSegmenter for UNet {
    /// [`UNet::segment_any`].
    fn segment(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<4>> {
        self.segment_any(images)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))
    }
}
