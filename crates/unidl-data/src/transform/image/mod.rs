//! Image transforms. Every geometric one is a scale-and-translate warp applied
//! the same way to the pixels (bilinear), the masks (nearest) and the boxes and
//! keypoints (exact), so targets always stay on the objects (A-b).
//!
//! Coordinates are continuous pixels: pixel `i` covers `[i, i + 1)`, its centre
//! is `i + 0.5`; a horizontal flip maps `x` to `width - x`.

mod colour;
mod geometric;
mod normalize;
mod warp;

use crate::error::{DataError, Result};
use crate::sample::{Image, Input, Sample};

pub use colour::{
    ColorJitter, Grayscale, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation,
};
pub use geometric::{
    CenterCrop, HorizontalFlip, RandomAffine, RandomCrop, RandomResizedCrop, Resize, VerticalFlip,
};
pub use normalize::Normalize;

pub(super) fn map_images(
    mut s: Sample,
    name: &str,
    f: impl Fn(&mut Image) -> Result<()>,
) -> Result<Sample> {
    let mut seen = false;
    for input in s.inputs.values_mut() {
        match input {
            Input::Image(img) => {
                f(img)?;
                seen = true;
            }
            Input::Video(frames, _) => {
                for img in frames {
                    f(img)?;
                }
                seen = true;
            }
            _ => {}
        }
    }
    if !seen {
        return Err(DataError::transform(
            name,
            format!("sample `{}` has no image input", s.source),
        ));
    }
    Ok(s)
}
