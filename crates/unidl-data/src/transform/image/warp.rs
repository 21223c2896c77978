//! The warp behind every geometric transform: one affine map applied to the
//! pixels (bilinear), the masks (nearest) and the boxes and keypoints (exact).

use crate::error::{DataError, Result};
use crate::sample::{BBox, Frame, Image, Input, Keypoint, Mask, Sample};

/// An affine map onto an `out_w × out_h` canvas:
/// `x' = a·x + b·y + tx`, `y' = c·x + d·y + ty`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Warp {
    pub(super) a: f32,
    pub(super) b: f32,
    pub(super) c: f32,
    pub(super) d: f32,
    pub(super) tx: f32,
    pub(super) ty: f32,
    pub(super) out_w: usize,
    pub(super) out_h: usize,
}

impl Warp {
    /// Axis-aligned scale and translation.
    pub(super) fn scale(sx: f32, tx: f32, sy: f32, ty: f32, out_w: usize, out_h: usize) -> Warp {
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
    pub(super) fn apply(&self, mut s: Sample, fill: f32, name: &str) -> Result<Sample> {
        check_instances(&s, name)?;
        // the frame of the first image (or video) input, before this warp
        let read_size = s.inputs.values().find_map(|input| match input {
            Input::Image(img) => Some((img.width, img.height)),
            Input::Video(frames, _) => frames.first().map(|f| (f.width, f.height)),
            _ => None,
        });
        if let Some((w, h)) = read_size {
            let before = s.frame.unwrap_or_else(|| Frame::identity(w, h));
            s.frame = Some(before.then([self.a, self.b, self.c, self.d, self.tx, self.ty]));
        }
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
pub(super) fn image_size(s: &Sample, name: &str) -> Result<(usize, usize)> {
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
