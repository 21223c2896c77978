//! Geometric transforms: resize, crops, flips and random affine warps.

use rand::Rng as _;

use super::warp::{Warp, image_size};
use crate::error::{DataError, Result};
use crate::sample::Sample;
use crate::transform::{Rng, Transform};

/// Resize to `[height, width]`; with `keep_ratio`, scale to fit and pad with `fill` (letterbox).
///
/// Example: a 40×20 image with `size = [32, 32]`, `keep_ratio = true` becomes
/// 32×16 centred on a 32×32 canvas; its boxes scale by 0.8 and move down 8 px.
#[derive(Debug, Clone)]
pub struct Resize {
    /// `[height, width]`.
    pub size: [usize; 2],
    /// Keep the aspect ratio.
    pub keep_ratio: bool,
    /// Padding value.
    pub fill: f32,
}

impl Transform for Resize {
    fn name(&self) -> &str {
        "resize"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let (w, h) = image_size(&s, self.name())?;
        let [oh, ow] = self.size;
        let warp = if self.keep_ratio {
            let sc = (ow as f32 / w as f32).min(oh as f32 / h as f32);
            let (nw, nh) = (w as f32 * sc, h as f32 * sc);
            Warp::scale(
                sc,
                ((ow as f32 - nw) / 2.0).floor(),
                sc,
                ((oh as f32 - nh) / 2.0).floor(),
                ow,
                oh,
            )
        } else {
            Warp::scale(ow as f32 / w as f32, 0.0, oh as f32 / h as f32, 0.0, ow, oh)
        };
        warp.apply(s, self.fill, self.name())
    }
}

/// The window `cw × ch` at `(left, top)`, resized to `out = [height, width]`.
struct Window {
    left: usize,
    top: usize,
    cw: usize,
    ch: usize,
    out: [usize; 2],
}

fn crop(s: Sample, win: Window, name: &str) -> Result<Sample> {
    let [oh, ow] = win.out;
    let (sx, sy) = (ow as f32 / win.cw as f32, oh as f32 / win.ch as f32);
    Warp::scale(
        sx,
        -(win.left as f32) * sx,
        sy,
        -(win.top as f32) * sy,
        ow,
        oh,
    )
    .apply(s, 0.0, name)
}

/// Crop the centre `[height, width]` (zero-padded when the image is smaller).
#[derive(Debug, Clone)]
pub struct CenterCrop {
    /// `[height, width]`.
    pub size: [usize; 2],
}

impl Transform for CenterCrop {
    fn name(&self) -> &str {
        "center_crop"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let (w, h) = image_size(&s, self.name())?;
        let [ch, cw] = self.size;
        let left = (w as isize - cw as isize) / 2;
        let top = (h as isize - ch as isize) / 2;
        let warp = Warp::scale(1.0, -(left as f32), 1.0, -(top as f32), cw, ch);
        warp.apply(s, 0.0, self.name())
    }
}

/// Crop a random `[height, width]` window (the image must be at least that large).
#[derive(Debug, Clone)]
pub struct RandomCrop {
    /// `[height, width]`.
    pub size: [usize; 2],
}

impl Transform for RandomCrop {
    fn name(&self) -> &str {
        "random_crop"
    }
    fn apply(&self, s: Sample, rng: &mut Rng) -> Result<Sample> {
        let (w, h) = image_size(&s, self.name())?;
        let [ch, cw] = self.size;
        if cw > w || ch > h {
            return Err(DataError::transform(
                self.name(),
                format!(
                    "crop {ch}x{cw} is larger than image {h}x{w} of `{}`",
                    s.source
                ),
            ));
        }
        let left = rng.random_range(0..=w - cw);
        let top = rng.random_range(0..=h - ch);
        let win = Window {
            left,
            top,
            cw,
            ch,
            out: self.size,
        };
        crop(s, win, self.name())
    }
}

/// Inception-style crop: a random area fraction in `scale` with aspect ratio in
/// `ratio`, resized to `size` (falls back to a centre crop after 10 tries).
#[derive(Debug, Clone)]
pub struct RandomResizedCrop {
    /// Output `[height, width]`.
    pub size: [usize; 2],
    /// Area fraction range.
    pub scale: [f32; 2],
    /// Aspect-ratio range (width / height).
    pub ratio: [f32; 2],
}

impl Transform for RandomResizedCrop {
    fn name(&self) -> &str {
        "random_resized_crop"
    }
    fn apply(&self, s: Sample, rng: &mut Rng) -> Result<Sample> {
        let (w, h) = image_size(&s, self.name())?;
        let area = (w * h) as f32;
        for _ in 0..10 {
            let target = area * rng.random_range(self.scale[0]..=self.scale[1]);
            let log_r = rng.random_range(self.ratio[0].ln()..=self.ratio[1].ln());
            let ar = log_r.exp();
            let cw = (target * ar).sqrt().round() as usize;
            let ch = (target / ar).sqrt().round() as usize;
            if cw > 0 && ch > 0 && cw <= w && ch <= h {
                let left = rng.random_range(0..=w - cw);
                let top = rng.random_range(0..=h - ch);
                let win = Window {
                    left,
                    top,
                    cw,
                    ch,
                    out: self.size,
                };
                return crop(s, win, self.name());
            }
        }
        let side = w.min(h);
        let win = Window {
            left: (w - side) / 2,
            top: (h - side) / 2,
            cw: side,
            ch: side,
            out: self.size,
        };
        crop(s, win, self.name())
    }
}

/// Mirror left-right; keypoint pairs in `flip_pairs` swap places (left eye ↔ right eye).
#[derive(Debug, Clone, Default)]
pub struct HorizontalFlip {
    /// Keypoint index pairs to swap.
    pub flip_pairs: Vec<[usize; 2]>,
}

impl Transform for HorizontalFlip {
    fn name(&self) -> &str {
        "horizontal_flip"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let (w, h) = image_size(&s, self.name())?;
        let mut s = Warp::scale(-1.0, w as f32, 1.0, 0.0, w, h).apply(s, 0.0, self.name())?;
        let t = &mut s.targets;
        for kps in std::iter::once(&mut t.keypoints).chain(t.instance_keypoints.iter_mut()) {
            for &[a, b] in &self.flip_pairs {
                if a < kps.len() && b < kps.len() {
                    kps.swap(a, b);
                }
            }
        }
        Ok(s)
    }
}

/// Mirror top-bottom.
#[derive(Debug, Clone)]
pub struct VerticalFlip;

impl Transform for VerticalFlip {
    fn name(&self) -> &str {
        "vertical_flip"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let (w, h) = image_size(&s, self.name())?;
        Warp::scale(1.0, 0.0, -1.0, h as f32, w, h).apply(s, 0.0, self.name())
    }
}

/// Random rotation (degrees in `degrees`), translation (up to `translate`
/// times the width/height) and scaling (factor in `scale`) about the image
/// centre, on a canvas of the same size; uncovered pixels get `fill`. Boxes
/// become the box around their rotated corners; masks and keypoints follow.
///
/// Example: `degrees = [90, 90]` turns a 20×20 image a quarter turn clockwise
/// (y points down); a keypoint at (5, 2) moves to (18, 5).
#[derive(Debug, Clone)]
pub struct RandomAffine {
    /// Rotation range in degrees.
    pub degrees: [f32; 2],
    /// Maximum translation as fractions of `[width, height]`.
    pub translate: [f32; 2],
    /// Scale range.
    pub scale: [f32; 2],
    /// Value of uncovered pixels.
    pub fill: f32,
}

impl Transform for RandomAffine {
    fn name(&self) -> &str {
        "random_affine"
    }
    fn apply(&self, s: Sample, rng: &mut Rng) -> Result<Sample> {
        let (w, h) = image_size(&s, self.name())?;
        let mut draw = |r: [f32; 2]| {
            if r[0] < r[1] {
                rng.random_range(r[0]..=r[1])
            } else {
                r[0]
            }
        };
        let theta = draw(self.degrees).to_radians();
        let sc = draw(self.scale);
        let tx = draw([-self.translate[0], self.translate[0]]) * w as f32;
        let ty = draw([-self.translate[1], self.translate[1]]) * h as f32;
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let (a, b, c, d) = (
            sc * theta.cos(),
            -sc * theta.sin(),
            sc * theta.sin(),
            sc * theta.cos(),
        );
        let warp = Warp {
            a,
            b,
            c,
            d,
            tx: cx + tx - (a * cx + b * cy),
            ty: cy + ty - (c * cx + d * cy),
            out_w: w,
            out_h: h,
        };
        warp.apply(s, self.fill, self.name())
    }
}
