//! The input transform of torchvision's detectors
//! (`torchvision.models.detection.transform.GeneralizedRCNNTransform`,
//! torchvision 0.24.0), for a batch of images of one size:
//!
//! 1. normalise: `(x − mean) / std` per channel (images in `[0, 1]`);
//! 2. resize (optional): scale `s = min(min_size / min(H, W), max_size /
//!    max(H, W))`, output `⌊H·s⌋ × ⌊W·s⌋`, bilinear, `align_corners =
//!    false` (torchvision's `interpolate(…, scale_factor=s,
//!    recompute_scale_factor=True)`); target boxes scale by
//!    `new / old` per axis (f32, as `resize_boxes`);
//!    with `fixed_size` `[H, W]` every image is resized to exactly that
//!    (torchvision's `fixed_size`, SSD's 300 × 300);
//! 3. pad with zeros at the bottom and right to multiples of
//!    `size_divisible` (32).
//!
//! The detections are mapped back by the inverse ratio
//! (`GeneralizedRCNNTransform.postprocess`). Turning `resize` off keeps the
//! input size, which parity tests use to compare at a fixed size.

use burn::tensor::Tensor;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};
use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};

fn eight_hundred() -> usize {
    800
}
fn max_1333() -> usize {
    1333
}
fn imagenet_mean() -> Vec<f32> {
    vec![0.485, 0.456, 0.406]
}
fn imagenet_std() -> Vec<f32> {
    vec![0.229, 0.224, 0.225]
}
fn yes() -> bool {
    true
}
fn thirty_two() -> usize {
    32
}

/// Configuration of [`DetectionTransform`] (torchvision's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionTransformConfig {
    /// Target length of the shorter side (torchvision: 800).
    #[serde(default = "eight_hundred")]
    pub min_size: usize,
    /// Longest allowed longer side (torchvision: 1333).
    #[serde(default = "max_1333")]
    pub max_size: usize,
    /// Per-channel mean subtracted (ImageNet's).
    #[serde(default = "imagenet_mean")]
    pub image_mean: Vec<f32>,
    /// Per-channel standard deviation divided by (ImageNet's).
    #[serde(default = "imagenet_std")]
    pub image_std: Vec<f32>,
    /// Whether to resize (off: the input size is kept).
    #[serde(default = "yes")]
    pub resize: bool,
    /// Padded sides are multiples of this (torchvision: 32).
    #[serde(default = "thirty_two")]
    pub size_divisible: usize,
    /// Resize every image to exactly `[H, W]`, whatever its aspect ratio
    /// (torchvision's `fixed_size`, which it gives as `(W, H)`; SSD300:
    /// 300 × 300). Replaces `min_size`/`max_size` when set.
    #[serde(default)]
    pub fixed_size: Option<[usize; 2]>,
    /// Value of the padding, after normalisation (torchvision: 0; YOLO's
    /// letterbox grey is 114/255 on unnormalised input).
    #[serde(default)]
    pub pad_value: f32,
}

impl Default for DetectionTransformConfig {
    fn default() -> Self {
        DetectionTransformConfig {
            min_size: 800,
            max_size: 1333,
            image_mean: imagenet_mean(),
            image_std: imagenet_std(),
            resize: true,
            size_divisible: 32,
            fixed_size: None,
            pad_value: 0.0,
        }
    }
}

impl DetectionTransformConfig {
    /// Checks the values; errors are [`VisionError::Config`] naming the key
    /// under `transform.`.
    pub fn init(&self) -> Result<DetectionTransform> {
        let err = |key: &str, reason: String| VisionError::Config {
            key: format!("transform.{key}"),
            reason,
        };
        if self.min_size == 0 || self.max_size == 0 {
            return Err(err(
                "min_size",
                "min_size and max_size must be at least 1".into(),
            ));
        }
        if self.size_divisible == 0 {
            return Err(err("size_divisible", "must be at least 1".into()));
        }
        if !self.pad_value.is_finite() {
            return Err(err("pad_value", "must be finite".into()));
        }
        if self.fixed_size.is_some_and(|s| s.contains(&0)) {
            return Err(err("fixed_size", "both sides must be at least 1".into()));
        }
        if self.image_mean.len() != self.image_std.len() || self.image_mean.is_empty() {
            return Err(err(
                "image_mean",
                format!(
                    "{} means and {} standard deviations: one of each per channel",
                    self.image_mean.len(),
                    self.image_std.len()
                ),
            ));
        }
        if self.image_std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.image_mean.iter().any(|m| !m.is_finite())
        {
            return Err(err(
                "image_std",
                "means must be finite and standard deviations positive".into(),
            ));
        }
        Ok(DetectionTransform {
            config: self.clone(),
        })
    }
}

/// What the transform did to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformedSize {
    /// `[H, W]` of the input images.
    pub original: [usize; 2],
    /// `[H, W]` after resizing, before padding (torchvision's `image_sizes`).
    pub resized: [usize; 2],
    /// `[H, W]` of the padded batch the network sees.
    pub padded: [usize; 2],
}

impl TransformedSize {
    /// A box in input pixels scaled to the resized image (torchvision's
    /// `resize_boxes(box, original, resized)`).
    pub fn to_resized(&self, b: [f32; 4]) -> [f32; 4] {
        scale_box(b, self.original, self.resized)
    }

    /// A box on the resized image mapped back to input pixels
    /// (`resize_boxes(box, resized, original)`).
    pub fn to_original(&self, b: [f32; 4]) -> [f32; 4] {
        scale_box(b, self.resized, self.original)
    }
}

/// `resize_boxes`: `x · (new_w / old_w)`, `y · (new_h / old_h)`, the ratios in f32.
fn scale_box(b: [f32; 4], from: [usize; 2], to: [usize; 2]) -> [f32; 4] {
    let rh = to[0] as f32 / from[0] as f32;
    let rw = to[1] as f32 / from[1] as f32;
    [b[0] * rw, b[1] * rh, b[2] * rw, b[3] * rh]
}

/// The transform. Build it with [`DetectionTransformConfig::init`].
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionTransform {
    config: DetectionTransformConfig,
}

impl DetectionTransform {
    /// The configuration.
    pub fn config(&self) -> &DetectionTransformConfig {
        &self.config
    }

    /// The resized size of an `[H, W]` image (itself without resizing).
    pub fn resized_size(&self, size: [usize; 2]) -> [usize; 2] {
        if !self.config.resize {
            return size;
        }
        if let Some(fixed) = self.config.fixed_size {
            return fixed;
        }
        let (h, w) = (size[0] as f64, size[1] as f64);
        let scale =
            (self.config.min_size as f64 / h.min(w)).min(self.config.max_size as f64 / h.max(w));
        [(h * scale).floor() as usize, (w * scale).floor() as usize]
    }

    /// Normalises, resizes and pads a batch.
    ///
    /// A channel count other than the configured means' or an image that
    /// would resize to nothing is [`VisionError::Input`].
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, C, H_p, W_p]`, `H_p`, `W_p` the resized sides
    /// rounded up to multiples of `size_divisible`.
    pub fn apply(&self, images: Tensor<4>) -> Result<(Tensor<4>, TransformedSize)> {
        let [_, c, h, w] = images.dims();
        let cfg = &self.config;
        if c != cfg.image_mean.len() || h == 0 || w == 0 {
            return Err(VisionError::Input {
                model: "detection transform".into(),
                shape: images.dims().to_vec(),
                reason: format!(
                    "expected {} channels (one mean and std each) and a non-empty image",
                    cfg.image_mean.len()
                ),
            });
        }
        let dev = images.device();
        let mean = Tensor::<1>::from_floats(cfg.image_mean.as_slice(), &dev).reshape([1, c, 1, 1]);
        let std = Tensor::<1>::from_floats(cfg.image_std.as_slice(), &dev).reshape([1, c, 1, 1]);
        let x = (images - mean) / std; // [B, C, H, W]
        let resized = self.resized_size([h, w]);
        if resized[0] == 0 || resized[1] == 0 {
            return Err(VisionError::Input {
                model: "detection transform".into(),
                shape: vec![h, w],
                reason: format!("resizes to {resized:?}"),
            });
        }
        let x = if resized == [h, w] {
            x
        } else {
            interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size(resized),
            ) // [B, C, H', W']
        };
        let d = cfg.size_divisible;
        let padded = [resized[0].div_ceil(d) * d, resized[1].div_ceil(d) * d];
        let x = if padded == resized {
            x
        } else {
            x.pad(
                (0, padded[1] - resized[1], 0, padded[0] - resized[0]),
                PadMode::Constant(cfg.pad_value),
            ) // [B, C, H_p, W_p]
        };
        Ok((
            x,
            TransformedSize {
                original: [h, w],
                resized,
                padded,
            },
        ))
    }
}
