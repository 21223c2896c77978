//! Drawing helpers shared by the synthetic sets: photo backgrounds, filled
//! polygons with their exact pixel masks, regular shapes.

use std::path::{Path, PathBuf};

use image::RgbImage;
use image::imageops::{self, FilterType};
use rand::Rng as _;

use super::PrepareResult;
use crate::error::DataError;
use crate::transform::Rng;

/// Real photos inside the scikit-image wheel (`skimage/data/<name>`) used as
/// backgrounds by [`super::shapes_video`] and [`super::shapes_coco`].
pub const SKIMAGE_PHOTOS: [&str; 12] = [
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "rocket.jpg",
];

/// Distinct, saturated fill colours.
pub(crate) const PALETTE: [[u8; 3]; 8] = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
];

/// Decodes the photos (any of PNG, JPEG, BMP; gray becomes RGB).
pub(crate) fn load_photos(paths: &[PathBuf]) -> PrepareResult<Vec<RgbImage>> {
    if paths.is_empty() {
        return Err(DataError::Config {
            key: "photos".into(),
            reason: "at least one background photo is needed".into(),
        }
        .into());
    }
    paths.iter().map(|p| load_photo(p)).collect()
}

fn load_photo(path: &Path) -> PrepareResult<RgbImage> {
    let bytes = super::read_bytes(path)?;
    let img = image::load_from_memory(&bytes).map_err(|e| DataError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot decode image: {e}"),
    })?;
    if img.width() < 8 || img.height() < 8 {
        return Err(DataError::Invalid {
            what: path.display().to_string(),
            reason: format!(
                "{}x{} is too small for a background (8x8 at least)",
                img.width(),
                img.height()
            ),
        }
        .into());
    }
    Ok(img.to_rgb8())
}

/// A `w × h` background: a random crop of a random photo (between 30 % and
/// 100 % of the largest crop of that aspect), resized with a triangle filter.
pub(crate) fn background(photos: &[RgbImage], rng: &mut Rng, w: u32, h: u32) -> RgbImage {
    let photo = &photos[rng.random_range(0..photos.len())];
    let (pw, ph) = (photo.width() as f64, photo.height() as f64);
    let aspect = w as f64 / h as f64;
    let (max_w, max_h) = if pw / ph > aspect {
        (ph * aspect, ph)
    } else {
        (pw, pw / aspect)
    };
    let scale = rng.random_range(0.3..=1.0);
    let cw = ((max_w * scale).round() as u32).clamp(1, photo.width());
    let ch = ((max_h * scale).round() as u32).clamp(1, photo.height());
    let x = rng.random_range(0..=photo.width() - cw);
    let y = rng.random_range(0..=photo.height() - ch);
    let crop = imageops::crop_imm(photo, x, y, cw, ch).to_image();
    imageops::resize(&crop, w, h, FilterType::Triangle)
}

/// Vertices of a regular `n`-gon of circumradius `r` centred at `(cx, cy)`,
/// the first at angle `rot` (radians, clockwise from +x in image axes),
/// rounded to 1/100 pixel.
pub(crate) fn regular_polygon(cx: f64, cy: f64, r: f64, n: usize, rot: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|k| {
            let a = rot + std::f64::consts::TAU * k as f64 / n as f64;
            (round2(cx + r * a.cos()), round2(cy + r * a.sin()))
        })
        .collect()
}

/// Rounds to two decimals (what the JSON files store).
pub(crate) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Whether `(x, y)` is inside the polygon (even-odd rule).
fn inside(pts: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut c = false;
    let mut j = pts.len() - 1;
    for i in 0..pts.len() {
        let (xi, yi) = pts[i];
        let (xj, yj) = pts[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            c = !c;
        }
        j = i;
    }
    c
}

/// Fills the polygon with `color`: a pixel is painted when its centre
/// `(x + 0.5, y + 0.5)` lies inside. Returns the painted pixels' mask
/// (row-major, `width × height`).
pub(crate) fn fill_polygon(img: &mut RgbImage, pts: &[(f64, f64)], color: [u8; 3]) -> Vec<bool> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut mask = vec![false; w * h];
    if pts.len() < 3 {
        return mask;
    }
    let min_x = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let max_x = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let min_y = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max_y = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let x0 = (min_x.floor().max(0.0)) as usize;
    let y0 = (min_y.floor().max(0.0)) as usize;
    let x1 = (max_x.ceil().max(0.0) as usize).min(w);
    let y1 = (max_y.ceil().max(0.0) as usize).min(h);
    for y in y0..y1 {
        for x in x0..x1 {
            if inside(pts, x as f64 + 0.5, y as f64 + 0.5) {
                mask[y * w + x] = true;
                img.put_pixel(x as u32, y as u32, image::Rgb(color));
            }
        }
    }
    mask
}

/// The tight box `[x, y, w, h]` around a mask's set pixels (`None` when empty).
pub(crate) fn mask_box(mask: &[bool], width: usize) -> Option<[usize; 4]> {
    let mut b: Option<[usize; 4]> = None; // x0, y0, x1, y1 inclusive
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (i % width, i / width);
        b = Some(match b {
            None => [x, y, x, y],
            Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x), y1.max(y)],
        });
    }
    b.map(|[x0, y0, x1, y1]| [x0, y0, x1 - x0 + 1, y1 - y0 + 1])
}
