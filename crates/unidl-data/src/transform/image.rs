//! Image transforms. Every geometric one is a scale-and-translate warp applied
//! the same way to the pixels (bilinear), the masks (nearest) and the boxes and
//! keypoints (exact), so targets always stay on the objects (A-b).
//!
//! Coordinates are continuous pixels: pixel `i` covers `[i, i + 1)`, its centre
//! is `i + 0.5`; a horizontal flip maps `x` to `width - x`.

use rand::Rng as _;

use super::{Rng, Transform};
use crate::error::{DataError, Result};
use crate::sample::{BBox, Image, Input, Keypoint, Mask, Sample};

/// An affine map onto an `out_w × out_h` canvas:
/// `x' = a·x + b·y + tx`, `y' = c·x + d·y + ty`.
#[derive(Debug, Clone, Copy)]
struct Warp {
    a: f32,
    b: f32,
    c: f32,
    d: f32,
    tx: f32,
    ty: f32,
    out_w: usize,
    out_h: usize,
}

impl Warp {
    /// Axis-aligned scale and translation.
    fn scale(sx: f32, tx: f32, sy: f32, ty: f32, out_w: usize, out_h: usize) -> Warp {
        Warp {
            a: sx,
            b: 0.0,
            c: 0.0,
            d: sy,
            tx,
            ty,
            out_w,
            out_h,
        }
    }

    fn point(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.a * x + self.b * y + self.tx,
            self.c * x + self.d * y + self.ty,
        )
    }

    /// The source point that maps onto `(x, y)`.
    fn inverse(&self, x: f32, y: f32) -> (f32, f32) {
        let det = self.a * self.d - self.b * self.c;
        let (u, v) = (x - self.tx, y - self.ty);
        (
            (self.d * u - self.b * v) / det,
            (-self.c * u + self.a * v) / det,
        )
    }

    /// Bilinear resampling through the inverse map. Axis-aligned warps
    /// (resize, crops, flips) take a separable path that computes the source
    /// columns and rows once; it gives bit-identical results.
    fn image(&self, img: &Image, fill: f32) -> Image {
        if self.b == 0.0 && self.c == 0.0 {
            self.image_separable(img, fill)
        } else {
            self.image_general(img, fill)
        }
    }

    fn image_general(&self, img: &Image, fill: f32) -> Image {
        let mut out = Image::new(self.out_w, self.out_h, img.channels);
        for yo in 0..self.out_h {
            for xo in 0..self.out_w {
                // source coordinate of the output pixel centre, in pixel-index units
                let (xs, ys) = self.inverse(xo as f32 + 0.5, yo as f32 + 0.5);
                for c in 0..img.channels {
                    out.set(xo, yo, c, bilinear(img, xs - 0.5, ys - 0.5, c, fill));
                }
            }
        }
        out
    }

    /// [`Warp::image_general`] for `b = c = 0`: the source column of an output
    /// column does not depend on the row, so the taps and weights of every
    /// column and row are computed once (with the same arithmetic as
    /// [`bilinear`]) and the inner loop only reads slices.
    fn image_separable(&self, img: &Image, fill: f32) -> Image {
        let ch = img.channels;
        let mut out = Image::new(self.out_w, self.out_h, ch);
        if img.width == 0 || img.height == 0 {
            out.data.fill(fill);
            return out;
        }
        // with b = c = 0 the x part of the inverse ignores y and vice versa
        let cols: Vec<Option<Tap>> = (0..self.out_w)
            .map(|xo| Tap::new(self.inverse(xo as f32 + 0.5, 0.5).0 - 0.5, img.width))
            .collect();
        let rows: Vec<Option<Tap>> = (0..self.out_h)
            .map(|yo| Tap::new(self.inverse(0.5, yo as f32 + 0.5).1 - 0.5, img.height))
            .collect();
        let stride = img.width * ch;
        for (row_out, row) in out.data.chunks_exact_mut(self.out_w * ch).zip(&rows) {
            let Some(ry) = row else {
                row_out.fill(fill);
                continue;
            };
            let r0 = &img.data[ry.i0 * stride..(ry.i0 + 1) * stride];
            let r1 = &img.data[ry.i1 * stride..(ry.i1 + 1) * stride];
            for (px, col) in row_out.chunks_exact_mut(ch).zip(&cols) {
                let Some(cx) = col else {
                    px.fill(fill);
                    continue;
                };
                let (a0, a1) = (cx.i0 * ch, cx.i1 * ch);
                for (c, v) in px.iter_mut().enumerate() {
                    let top = r0[a0 + c] * (1.0 - cx.f) + r0[a1 + c] * cx.f;
                    let bottom = r1[a0 + c] * (1.0 - cx.f) + r1[a1 + c] * cx.f;
                    *v = top * (1.0 - ry.f) + bottom * ry.f;
                }
            }
        }
        out
    }

    fn mask(&self, m: &Mask) -> Mask {
        let mut data = vec![0u8; self.out_w * self.out_h];
        for yo in 0..self.out_h {
            for xo in 0..self.out_w {
                let (xs, ys) = self.inverse(xo as f32 + 0.5, yo as f32 + 0.5);
                let (xs, ys) = (xs.floor(), ys.floor());
                if xs >= 0.0 && ys >= 0.0 && (xs as usize) < m.width && (ys as usize) < m.height {
                    data[yo * self.out_w + xo] = m.data[ys as usize * m.width + xs as usize];
                }
            }
        }
        Mask {
            width: self.out_w,
            height: self.out_h,
            data,
            class: m.class,
        }
    }

    fn bbox(&self, b: &BBox) -> Option<BBox> {
        // the box around the four mapped corners
        let corners = [
            self.point(b.x0, b.y0),
            self.point(b.x1, b.y0),
            self.point(b.x0, b.y1),
            self.point(b.x1, b.y1),
        ];
        let (w, h) = (self.out_w as f32, self.out_h as f32);
        let min_x = corners.iter().map(|p| p.0).fold(f32::INFINITY, f32::min);
        let max_x = corners
            .iter()
            .map(|p| p.0)
            .fold(f32::NEG_INFINITY, f32::max);
        let min_y = corners.iter().map(|p| p.1).fold(f32::INFINITY, f32::min);
        let max_y = corners
            .iter()
            .map(|p| p.1)
            .fold(f32::NEG_INFINITY, f32::max);
        let nb = BBox {
            x0: min_x.clamp(0.0, w),
            y0: min_y.clamp(0.0, h),
            x1: max_x.clamp(0.0, w),
            y1: max_y.clamp(0.0, h),
            class: b.class,
        };
        (nb.x1 > nb.x0 && nb.y1 > nb.y0).then_some(nb)
    }

    fn keypoint(&self, k: &Keypoint) -> Keypoint {
        let (x, y) = self.point(k.x, k.y);
        let inside = x >= 0.0 && y >= 0.0 && x < self.out_w as f32 && y < self.out_h as f32;
        Keypoint {
            x,
            y,
            visibility: if inside { k.visibility } else { 0 },
        }
    }

    /// Applies the warp to every image input and every target of `s`. Boxes
    /// that end up with no area are dropped together with everything tied to
    /// them (`crowd`, `difficult`, `areas`, the masks and instance keypoints their
    /// `mask_boxes` / `keypoint_boxes` name); keypoints that leave the canvas
    /// keep their place in the list with visibility 0. Per-instance vectors
    /// that do not line up with the boxes are a [`DataError::Transform`] of
    /// transform `name` naming the sample.
    fn apply(&self, mut s: Sample, fill: f32, name: &str) -> Result<Sample> {
        check_instances(&s, name)?;
        for input in s.inputs.values_mut() {
            match input {
                Input::Image(img) => *img = self.image(img, fill),
                Input::Video(frames, _) => {
                    for f in frames.iter_mut() {
                        *f = self.image(f, fill);
                    }
                }
                _ => {}
            }
        }
        let t = &mut s.targets;
        // new index of every old box, `None` when it left the canvas
        let mut renumber = Vec::with_capacity(t.boxes.len());
        let mut boxes = Vec::with_capacity(t.boxes.len());
        for b in &t.boxes {
            let nb = self.bbox(b);
            renumber.push(nb.map(|_| boxes.len()));
            boxes.extend(nb);
        }
        t.boxes = boxes;
        let kept = |i: usize| renumber[i].is_some();
        for flags in [&mut t.crowd, &mut t.difficult] {
            let mut i = 0;
            flags.retain(|_| {
                i += 1;
                kept(i - 1)
            });
        }
        let mut i = 0;
        t.areas.retain(|_| {
            i += 1;
            kept(i - 1)
        });
        let area_factor = (self.a as f64 * self.d as f64 - self.b as f64 * self.c as f64).abs();
        for a in &mut t.areas {
            *a *= area_factor;
        }
        let masks = std::mem::take(&mut t.masks);
        if t.mask_boxes.is_empty() {
            t.masks = masks.iter().map(|m| self.mask(m)).collect();
        } else {
            let links = std::mem::take(&mut t.mask_boxes);
            for (m, b) in masks.iter().zip(links) {
                if let Some(nb) = renumber[b] {
                    t.masks.push(self.mask(m));
                    t.mask_boxes.push(nb);
                }
            }
        }
        let map_all = |kps: &[Keypoint]| kps.iter().map(|k| self.keypoint(k)).collect::<Vec<_>>();
        t.keypoints = map_all(&t.keypoints);
        let instances = std::mem::take(&mut t.instance_keypoints);
        if t.keypoint_boxes.is_empty() {
            t.instance_keypoints = instances.iter().map(|k| map_all(k)).collect();
        } else {
            let links = std::mem::take(&mut t.keypoint_boxes);
            for (k, b) in instances.iter().zip(links) {
                if let Some(nb) = renumber[b] {
                    t.instance_keypoints.push(map_all(k));
                    t.keypoint_boxes.push(nb);
                }
            }
        }
        Ok(s)
    }
}

/// Checks that the per-instance vectors of `s` line up with its boxes.
fn check_instances(s: &Sample, name: &str) -> Result<()> {
    let t = &s.targets;
    let n = t.boxes.len();
    let bad = |reason: String| {
        Err(DataError::transform(
            name,
            format!("sample `{}`: {reason}", s.source),
        ))
    };
    for (key, len) in [
        ("crowd", t.crowd.len()),
        ("difficult", t.difficult.len()),
        ("areas", t.areas.len()),
    ] {
        if len != 0 && len != n {
            return bad(format!("`{key}` has {len} entries for {n} boxes"));
        }
    }
    for (key, links, of, len) in [
        ("mask_boxes", &t.mask_boxes, "masks", t.masks.len()),
        (
            "keypoint_boxes",
            &t.keypoint_boxes,
            "instance_keypoints",
            t.instance_keypoints.len(),
        ),
    ] {
        if links.is_empty() {
            continue;
        }
        if links.len() != len {
            return bad(format!(
                "`{key}` has {} entries for {len} `{of}`",
                links.len()
            ));
        }
        if let Some(b) = links.iter().find(|&&b| b >= n) {
            return bad(format!("`{key}` names box {b}, but there are {n} boxes"));
        }
    }
    Ok(())
}

/// The two source taps and the weight of the second along one axis, for a
/// source coordinate `x` in pixel-index units; `None` outside the image (the
/// pixel gets the fill value). Same arithmetic as [`bilinear`].
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    f: f32,
}

impl Tap {
    fn new(x: f32, n: usize) -> Option<Tap> {
        let len = n as f32;
        if x < -0.5 || x > len - 0.5 || x.is_nan() {
            return None;
        }
        let x = x.clamp(0.0, len - 1.0);
        let i0 = x.floor() as usize;
        Some(Tap {
            i0,
            i1: (i0 + 1).min(n - 1),
            f: x - i0 as f32,
        })
    }
}

fn bilinear(img: &Image, x: f32, y: f32, c: usize, fill: f32) -> f32 {
    let (w, h) = (img.width as f32, img.height as f32);
    if x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5 {
        return fill;
    }
    let x = x.clamp(0.0, w - 1.0);
    let y = y.clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(img.width - 1), (y0 + 1).min(img.height - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let top = img.get(x0, y0, c) * (1.0 - fx) + img.get(x1, y0, c) * fx;
    let bottom = img.get(x0, y1, c) * (1.0 - fx) + img.get(x1, y1, c) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// The size of the first image or video frame of a sample.
fn image_size(s: &Sample, name: &str) -> Result<(usize, usize)> {
    for input in s.inputs.values() {
        match input {
            Input::Image(i) => return Ok((i.width, i.height)),
            Input::Video(f, _) if !f.is_empty() => return Ok((f[0].width, f[0].height)),
            _ => {}
        }
    }
    Err(DataError::transform(
        name,
        format!("sample `{}` has no image input", s.source),
    ))
}

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

fn map_images(mut s: Sample, name: &str, f: impl Fn(&mut Image) -> Result<()>) -> Result<Sample> {
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

/// `(x - mean[c]) / std[c]`; one value applies to every channel.
#[derive(Debug, Clone)]
pub struct Normalize {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
}

impl Transform for Normalize {
    fn name(&self) -> &str {
        "normalize"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let source = s.source.clone();
        map_images(s, self.name(), |img| {
            let n = self.mean.len();
            if n != 1 && n != img.channels {
                return Err(DataError::transform(
                    "normalize",
                    format!(
                        "{n} means for an image with {} channels (`{source}`)",
                        img.channels
                    ),
                ));
            }
            if n == 1 {
                let (m, sd) = (self.mean[0], self.std[0]);
                img.data.iter_mut().for_each(|v| *v = (*v - m) / sd);
            } else {
                for px in img.data.chunks_exact_mut(n) {
                    for ((v, m), sd) in px.iter_mut().zip(&self.mean).zip(&self.std) {
                        *v = (*v - m) / sd;
                    }
                }
            }
            Ok(())
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A non-constant RGB image with values that do not repeat.
    fn ramp(w: usize, h: usize) -> Image {
        let mut img = Image::new(w, h, 3);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i * 7919) % 1013) as f32 / 1013.0;
        }
        img
    }

    #[test]
    fn separable_warp_matches_the_general_warp_bit_for_bit() {
        let img = ramp(37, 23);
        let warps = [
            // flip, crop, down- and up-scaling with fractional offsets, a canvas
            // larger than the image (fill), a shrink with negative scale
            Warp::scale(-1.0, 37.0, 1.0, 0.0, 37, 23),
            Warp::scale(1.0, -5.0, 1.0, -3.0, 20, 12),
            Warp::scale(0.37, 1.3, 0.61, -0.7, 16, 11),
            Warp::scale(3.3, -20.25, 2.7, -9.5, 64, 48),
            Warp::scale(0.8, 4.0, 0.8, 9.0, 40, 40),
            Warp::scale(-0.5, 30.0, -1.5, 40.0, 25, 31),
        ];
        for (k, w) in warps.iter().enumerate() {
            let (a, b) = (w.image_separable(&img, 0.25), w.image_general(&img, 0.25));
            assert_eq!((a.width, a.height), (b.width, b.height));
            let same = a
                .data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "warp {k} differs");
            assert!(a.data.iter().any(|&v| v != 0.25), "warp {k} saw no pixel");
        }
        // the fill shows where the canvas is not covered
        let pad = warps[4].image_separable(&img, 0.25);
        assert_eq!(pad.get(0, 0, 0), 0.25);
    }
}
