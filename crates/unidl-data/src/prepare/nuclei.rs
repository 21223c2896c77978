//! Real fluorescence microscopy for segmentation: the 2-D example image of
//! the `stardist` 0.9.1 wheel (`stardist/data/images/img2d.tif`, 512 × 512,
//! 16-bit, BSD-3-Clause) with its instance mask (`mask2d.tif`, 125 labelled
//! nuclei), tiled into a COCO set with one class, `nucleus`.

use std::path::Path;

use image::{GrayImage, ImageBuffer, Luma};
use serde_json::json;

use super::coco::rle_column_major;
use super::{PrepareResult, Prepared, create_dir, write_file};
use crate::error::DataError;

/// Options of [`nuclei`].
#[derive(Debug, Clone, PartialEq)]
pub struct NucleiOptions {
    /// Tile side in pixels.
    pub tile: u32,
    /// Step between training tiles (tiles overlap when below `tile`).
    pub stride: u32,
    /// Columns from this x on are held out (the image's right part): the
    /// split is by region, so no pixel is in both.
    pub test_from_x: u32,
}

impl Default for NucleiOptions {
    fn default() -> Self {
        NucleiOptions {
            tile: 128,
            stride: 64,
            test_from_x: 384,
        }
    }
}

type Gray16 = ImageBuffer<Luma<u16>, Vec<u16>>;

fn read_tiff(path: &Path) -> PrepareResult<Gray16> {
    let img = image::open(path).map_err(|e| DataError::Invalid {
        what: path.display().to_string(),
        reason: format!("not a readable TIFF: {e}"),
    })?;
    Ok(img.into_luma16())
}

/// The `q`-quantile (0–1) of `values`.
fn quantile(values: &[u16], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    f64::from(v[i])
}

/// Tiles `images_dir/img2d.tif` and `images_dir/mask2d.tif` (the unpacked
/// wheel's `stardist/data/images`) into `out`:
/// - the image normalised as StarDist's examples do (1st and 99.8th
///   percentiles to 0 and 255, clipped) and written as 8-bit grey PNG
///   tiles `images/<split>/<id>.png` of `tile × tile`;
/// - training tiles every `stride` pixels left of `test_from_x`, held-out
///   tiles side by side right of it;
/// - `annotations/<split>.json` (COCO): every nucleus a tile contains,
///   clipped to the tile, as one annotation of category 1 `nucleus` with its
///   box, area and uncompressed RLE mask.
///
/// A missing or unreadable file, images of different sizes, or a tile that
/// does not fit is an error naming it.
pub fn nuclei(images_dir: &Path, out: &Path, opts: &NucleiOptions) -> PrepareResult<Prepared> {
    let img = read_tiff(&images_dir.join("img2d.tif"))?;
    let mask = read_tiff(&images_dir.join("mask2d.tif"))?;
    if img.dimensions() != mask.dimensions() {
        return Err(DataError::Invalid {
            what: images_dir.join("mask2d.tif").display().to_string(),
            reason: format!(
                "{:?} vs the image's {:?}",
                mask.dimensions(),
                img.dimensions()
            ),
        }
        .into());
    }
    let (w, h) = img.dimensions();
    let t = opts.tile;
    if t == 0 || opts.stride == 0 || t > opts.test_from_x || opts.test_from_x + t > w || t > h {
        return Err(DataError::Config {
            key: "tile".into(),
            reason: format!(
                "tiles of {t} px every {} px with the held-out part from x = {} do not fit a \
                 {w}x{h} image",
                opts.stride, opts.test_from_x
            ),
        }
        .into());
    }
    let lo = quantile(img.as_raw(), 0.01);
    let hi = quantile(img.as_raw(), 0.998).max(lo + 1.0);
    let grey = GrayImage::from_fn(w, h, |x, y| {
        let v = (f64::from(img.get_pixel(x, y)[0]) - lo) / (hi - lo);
        Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8])
    });
    let mut corners: Vec<(bool, u32, u32)> = Vec::new();
    for y in (0..=h - t).step_by(opts.stride as usize) {
        for x in (0..=opts.test_from_x - t).step_by(opts.stride as usize) {
            corners.push((false, x, y));
        }
    }
    for y in (0..=h - t).step_by(t as usize) {
        for x in (opts.test_from_x..=w - t).step_by(t as usize) {
            corners.push((true, x, y));
        }
    }
    for split in ["train", "test"] {
        create_dir(&out.join("images").join(split))?;
    }
    create_dir(&out.join("annotations"))?;
    let mut docs = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    let mut counts = Prepared { train: 0, test: 0 };
    let mut ann_id = 1;
    let ts = t as usize;
    for (i, &(test, x0, y0)) in corners.iter().enumerate() {
        let split = if test { "test" } else { "train" };
        let image_id = i + 1;
        let file_name = format!("{image_id:04}.png");
        let path = out.join("images").join(split).join(&file_name);
        let crop = image::imageops::crop_imm(&grey, x0, y0, t, t).to_image();
        crop.save(&path).map_err(|e| DataError::Invalid {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let (images, anns) = &mut docs[usize::from(test)];
        images.push(json!({"id": image_id, "file_name": file_name, "width": t, "height": t}));
        let labels: std::collections::BTreeSet<u16> = (0..t)
            .flat_map(|y| (0..t).map(move |x| (x, y)))
            .map(|(x, y)| mask.get_pixel(x0 + x, y0 + y)[0])
            .filter(|&l| l != 0)
            .collect();
        for label in labels {
            let m: Vec<bool> = (0..t)
                .flat_map(|y| (0..t).map(move |x| (x, y)))
                .map(|(x, y)| mask.get_pixel(x0 + x, y0 + y)[0] == label)
                .collect();
            let area = m.iter().filter(|v| **v).count();
            let (mut bx0, mut by0, mut bx1, mut by1) = (ts, ts, 0, 0);
            for (k, _) in m.iter().enumerate().filter(|(_, v)| **v) {
                let (x, y) = (k % ts, k / ts);
                bx0 = bx0.min(x);
                by0 = by0.min(y);
                bx1 = bx1.max(x + 1);
                by1 = by1.max(y + 1);
            }
            anns.push(json!({
                "id": ann_id, "image_id": image_id, "category_id": 1,
                "bbox": [bx0, by0, bx1 - bx0, by1 - by0], "area": area, "iscrowd": 0,
                "segmentation": {"counts": rle_column_major(&m, ts, ts), "size": [ts, ts]},
            }));
            ann_id += 1;
        }
        counts.count(test);
    }
    for (split, (images, anns)) in ["train", "test"].iter().zip(docs) {
        let doc = json!({
            "info": {"description": "unidl nuclei: tiles of stardist 0.9.1's img2d.tif / mask2d.tif",
                     "version": "1"},
            "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "nucleus", "supercategory": "cell"}],
        });
        let path = out.join("annotations").join(format!("{split}.json"));
        let text = serde_json::to_string(&doc).map_err(|e| DataError::Invalid {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_file(&path, text)?;
    }
    Ok(counts)
}
