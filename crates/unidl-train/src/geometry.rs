//! How an original image became the network input (resize, letterbox), and
//! the small config checks shared by inference options and post-processors.
//! A leaf module: `infer` and `postprocess` both build on it.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// How one sample's original image became the network input:
/// `input = original · scale + pad` per axis (the inverse is applied to
/// boxes, masks and keypoints).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageGeometry {
    /// Width of the original image in pixels.
    pub original_width: usize,
    /// Height of the original image in pixels.
    pub original_height: usize,
    /// Horizontal scale from original to input pixels.
    #[serde(default = "one")]
    pub scale_x: f64,
    /// Vertical scale from original to input pixels.
    #[serde(default = "one")]
    pub scale_y: f64,
    /// Padding added on the left, in input pixels.
    #[serde(default)]
    pub pad_x: f64,
    /// Padding added on the top, in input pixels.
    #[serde(default)]
    pub pad_y: f64,
}

fn one() -> f64 {
    1.0
}

impl ImageGeometry {
    /// The identity: the original image is the input.
    pub fn identity(width: usize, height: usize) -> Self {
        ImageGeometry {
            original_width: width,
            original_height: height,
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
        }
    }

    /// A plain resize of a `width × height` image to `input_width × input_height`.
    pub fn resize(width: usize, height: usize, input_width: usize, input_height: usize) -> Self {
        ImageGeometry {
            original_width: width,
            original_height: height,
            scale_x: input_width as f64 / width as f64,
            scale_y: input_height as f64 / height as f64,
            pad_x: 0.0,
            pad_y: 0.0,
        }
    }

    /// A letterbox: scale to fit keeping the aspect ratio, centred with the
    /// padding floored — exactly what `unidl_data`'s `Resize { keep_ratio: true }` does.
    pub fn letterbox(width: usize, height: usize, input_width: usize, input_height: usize) -> Self {
        let s = (input_width as f32 / width as f32).min(input_height as f32 / height as f32);
        let (nw, nh) = (width as f32 * s, height as f32 * s);
        ImageGeometry {
            original_width: width,
            original_height: height,
            scale_x: f64::from(s),
            scale_y: f64::from(s),
            pad_x: f64::from(((input_width as f32 - nw) / 2.0).floor()),
            pad_y: f64::from(((input_height as f32 - nh) / 2.0).floor()),
        }
    }

    /// The geometry a sample's preprocessing gave it (its
    /// [`Frame`](unidl_data::Frame)). A frame that rotates, shears or flips
    /// cannot be undone per axis: a [`TrainError::Config`] naming the
    /// sample's source and the `preprocess` pipeline.
    pub fn from_frame(frame: &unidl_data::Frame, source: &str) -> Result<Self> {
        if !frame.is_axis_aligned() {
            return Err(config_error(
                "preprocess",
                format!(
                    "the inference preprocessing rotates, shears or flips `{source}` \
                     ({frame:?}): outputs cannot be mapped back to the image as read; \
                     keep such transforms to training augmentation"
                ),
            ));
        }
        Ok(ImageGeometry {
            original_width: frame.original_width,
            original_height: frame.original_height,
            scale_x: f64::from(frame.a),
            scale_y: f64::from(frame.d),
            pad_x: f64::from(frame.tx),
            pad_y: f64::from(frame.ty),
        })
    }

    /// Input-pixel x → original-pixel x.
    pub fn x_to_original(&self, x: f64) -> f64 {
        (x - self.pad_x) / self.scale_x
    }

    /// Input-pixel y → original-pixel y.
    pub fn y_to_original(&self, y: f64) -> f64 {
        (y - self.pad_y) / self.scale_y
    }

    /// Checks that sizes are non-zero and scales positive and finite.
    pub fn validate(&self, key: &str) -> Result<()> {
        if self.original_width == 0 || self.original_height == 0 {
            return Err(config_error(
                key,
                "original_width/original_height must be at least 1",
            ));
        }
        for (name, v) in [("scale_x", self.scale_x), ("scale_y", self.scale_y)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(config_error(
                    &format!("{key}.{name}"),
                    format!("{v} is not a positive number"),
                ));
            }
        }
        for (name, v) in [("pad_x", self.pad_x), ("pad_y", self.pad_y)] {
            if !v.is_finite() {
                return Err(config_error(
                    &format!("{key}.{name}"),
                    format!("{v} is not finite"),
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn config_error(key: &str, reason: impl Into<String>) -> TrainError {
    TrainError::Config {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Validates a probability threshold in [0, 1].
pub(crate) fn check_unit(key: &str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(config_error(key, format!("{v} is outside [0, 1]")))
    }
}
