//! Colour transforms: torchvision's `adjust_*` functions, colour jitter and grayscale.

use rand::Rng as _;

use super::map_images;
use crate::error::Result;
use crate::sample::{Image, Sample};
use crate::transform::{Rng, Transform};

/// Gray value of one pixel as torchvision's `rgb_to_grayscale`:
/// `0.2989·r + 0.587·g + 0.114·b` in f32 (the first channel of a gray image).
fn gray(px: &[f32]) -> f32 {
    if px.len() >= 3 {
        0.2989 * px[0] + 0.587 * px[1] + 0.114 * px[2]
    } else {
        px[0]
    }
}

/// The colour channels of a pixel: R, G, B of an RGB(A) image, the gray
/// channel of a gray(+alpha) one; the rest (alpha) is left alone by the
/// colour functions.
fn colour_channels(channels: usize) -> usize {
    if channels >= 3 { 3 } else { 1 }
}

/// torchvision's `_blend` of float images: `(r·a + (1 − r)·b).clamp(0, 1)`,
/// in f32, with `1 − r` computed in f64 as Python computes it.
fn blend(a: f32, b: f32, ratio: f32) -> f32 {
    let other = (1.0 - ratio as f64) as f32;
    (ratio * a + other * b).clamp(0.0, 1.0)
}

/// Brightness as torchvision's `adjust_brightness`: every colour channel
/// blended with black, `(factor·v).clamp(0, 1)`; `factor` ≥ 0 (0 gives a
/// black image, 1 the original). An alpha channel is kept.
pub fn adjust_brightness(img: &mut Image, factor: f32) {
    let cc = colour_channels(img.channels);
    for px in img.data.chunks_mut(img.channels.max(1)) {
        for v in &mut px[..cc] {
            *v = blend(*v, 0.0, factor);
        }
    }
}

/// Contrast as torchvision's `adjust_contrast`: every colour channel blended
/// with the mean gray value `m` of the whole image (gray by
/// `0.2989·r + 0.587·g + 0.114·b`, or the gray channel itself),
/// `(factor·v + (1 − factor)·m).clamp(0, 1)`; 0 gives a uniform gray image,
/// 1 the original. An alpha channel is kept.
pub fn adjust_contrast(img: &mut Image, factor: f32) {
    let ch = img.channels.max(1);
    let n = img.data.len() / ch;
    if n == 0 {
        return;
    }
    let mean = (img.data.chunks(ch).map(|px| gray(px) as f64).sum::<f64>() / n as f64) as f32;
    let cc = colour_channels(img.channels);
    for px in img.data.chunks_mut(ch) {
        for v in &mut px[..cc] {
            *v = blend(*v, mean, factor);
        }
    }
}

/// Saturation as torchvision's `adjust_saturation`: R, G and B blended with
/// the pixel's own gray value, `(factor·v + (1 − factor)·gray).clamp(0, 1)`;
/// 0 gives the grayscale image, 1 the original. Images with fewer than 3
/// channels are left unchanged; an alpha channel is kept.
pub fn adjust_saturation(img: &mut Image, factor: f32) {
    if img.channels < 3 {
        return;
    }
    for px in img.data.chunks_mut(img.channels) {
        let g = gray(px);
        for v in &mut px[..3] {
            *v = blend(*v, g, factor);
        }
    }
}

/// Random brightness, contrast and saturation factors drawn from
/// `[max(0, 1 - x), 1 + x]` and a hue shift drawn from `[-hue, hue]`,
/// applied in that fixed order with [`adjust_brightness`],
/// [`adjust_contrast`], [`adjust_saturation`] and [`adjust_hue`] (each
/// torchvision's formula, results clamped to [0, 1]). torchvision's
/// `ColorJitter` applies the four in a random order; here the order is
/// fixed. A strength of 0 draws nothing and skips its step.
///
/// ```toml
/// [[transforms]]
/// type = "color_jitter"
/// brightness = 0.2
/// contrast = 0.2
/// saturation = 0.2
/// hue = 0.05
/// ```
#[derive(Debug, Clone)]
pub struct ColorJitter {
    /// Brightness strength.
    pub brightness: f32,
    /// Contrast strength.
    pub contrast: f32,
    /// Saturation strength.
    pub saturation: f32,
    /// Hue strength in [0, 0.5] (fractions of a turn of the colour wheel).
    pub hue: f32,
}

/// Rotates the hue of an RGB(A) image by `factor` turns (`factor` in
/// [-0.5, 0.5]), keeping saturation and value, as torchvision's `adjust_hue`:
/// RGB → HSV, `h = (h + factor) mod 1`, HSV → RGB. Images with fewer than 3
/// channels are left unchanged; an alpha channel is kept.
pub fn adjust_hue(img: &mut Image, factor: f32) {
    if img.channels < 3 || factor == 0.0 {
        return;
    }
    let ch = img.channels;
    for px in img.data.chunks_mut(ch) {
        let (r, g, b) = (px[0], px[1], px[2]);
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        let cr = maxc - minc;
        let eq = maxc == minc;
        let s = cr / if eq { 1.0 } else { maxc };
        let div = if eq { 1.0 } else { cr };
        let (rc, gc, bc) = ((maxc - r) / div, (maxc - g) / div, (maxc - b) / div);
        let h = if maxc == r {
            bc - gc
        } else if maxc == g {
            2.0 + rc - bc
        } else {
            4.0 + gc - rc
        };
        let h = (h / 6.0 + 1.0) % 1.0;
        let h = (h + factor).rem_euclid(1.0);
        let v = maxc;
        let i = (h * 6.0).floor();
        let f = h * 6.0 - i;
        let p = (v * (1.0 - s)).clamp(0.0, 1.0);
        let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
        let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
        let (r, g, b) = match (i as i32).rem_euclid(6) {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        px[0] = r;
        px[1] = g;
        px[2] = b;
    }
}

impl Transform for ColorJitter {
    fn name(&self) -> &str {
        "color_jitter"
    }
    fn apply(&self, s: Sample, rng: &mut Rng) -> Result<Sample> {
        // a strength of 0 draws nothing and leaves its step out, as torchvision
        let mut draw = |x: f32| (x > 0.0).then(|| rng.random_range((1.0 - x).max(0.0)..=1.0 + x));
        let (b, c, sat) = (
            draw(self.brightness),
            draw(self.contrast),
            draw(self.saturation),
        );
        let hue = if self.hue > 0.0 {
            rng.random_range(-self.hue..=self.hue)
        } else {
            0.0
        };
        map_images(s, self.name(), |img| {
            if let Some(b) = b {
                adjust_brightness(img, b);
            }
            if let Some(c) = c {
                adjust_contrast(img, c);
            }
            if let Some(sat) = sat {
                adjust_saturation(img, sat);
            }
            adjust_hue(img, hue);
            Ok(())
        })
    }
}

/// Converts to gray as torchvision's `rgb_to_grayscale`
/// (`0.2989·r + 0.587·g + 0.114·b`), with 1 or 3 identical channels.
#[derive(Debug, Clone)]
pub struct Grayscale {
    /// Output channels (1 or 3).
    pub channels: usize,
}

impl Transform for Grayscale {
    fn name(&self) -> &str {
        "grayscale"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let channels = self.channels;
        map_images(s, self.name(), |img| {
            let mut out = Image::new(img.width, img.height, channels);
            for y in 0..img.height {
                for x in 0..img.width {
                    let i = (y * img.width + x) * img.channels;
                    let g = gray(&img.data[i..i + img.channels]);
                    for c in 0..channels {
                        out.set(x, y, c, g);
                    }
                }
            }
            *img = out;
            Ok(())
        })
    }
}
