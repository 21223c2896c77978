//! Top-down keypoint data from a COCO keypoint set: one square crop per
//! annotated instance (its box enlarged by a margin, centred, resized), the
//! keypoints moved into the crop — what a top-down pose network (HRNet) or
//! a landmark regressor (PFLD) trains on.

use std::path::Path;

use image::{Rgb, RgbImage};
use serde_json::{Value, json};

use super::{PrepareResult, Prepared, create_dir, write_file};
use crate::error::DataError;

/// Options of [`keypoint_crops`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointCropOptions {
    /// Side of the square crops in pixels.
    pub size: u32,
    /// The crop's side over the box's longer side (a margin around it).
    pub margin: f64,
    /// Renumber rings of numbered joints (see [`keypoint_crops`]).
    pub renumber_rings: bool,
}

impl Default for KeypointCropOptions {
    fn default() -> Self {
        KeypointCropOptions {
            size: 64,
            margin: 1.25,
            renumber_rings: true,
        }
    }
}

fn invalid(what: &Path, reason: impl Into<String>) -> DataError {
    DataError::Invalid {
        what: what.display().to_string(),
        reason: reason.into(),
    }
}

fn read_json(path: &Path) -> PrepareResult<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| invalid(path, e.to_string()))?;
    Ok(serde_json::from_str(&text).map_err(|e| invalid(path, e.to_string()))?)
}

/// Bilinear sample of `img` at (x, y) in pixel-centre coordinates; black
/// outside the image.
fn sample(img: &RgbImage, x: f64, y: f64) -> [f64; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = ((x - 0.5).floor(), (y - 0.5).floor());
    let (fx, fy) = (x - 0.5 - x0, y - 0.5 - y0);
    let mut out = [0.0; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (px, py) = (x0 as i64 + dx, y0 as i64 + dy);
            if px < 0 || py < 0 || px >= w || py >= h {
                continue;
            }
            let p = img.get_pixel(px as u32, py as u32);
            for c in 0..3 {
                out[c] += wx * wy * f64::from(p[c]);
            }
        }
    }
    out
}

/// Writes one crop per annotation of `src` (a COCO keypoint set laid out as
/// `annotations/<split>.json` and `images/<split>/<file_name>`, e.g. what
/// `unidl data shapes-coco` prepares) that has at least one labelled
/// keypoint and is not a crowd, into `out`:
/// - the square of side `margin × max(box width, box height)` centred on
///   the box, sampled bilinearly (black outside the image) into a
///   `size × size` PNG `images/<split>/<annotation id>.png`;
/// - `annotations/<split>.json`: one annotation per crop with the box and
///   keypoints in crop pixels, its category, and every keypoint list padded
///   with unlabelled joints (`0, 0, 0`) to the largest joint count among the
///   categories, so that every instance has the same joints; categories
///   whose names are fewer get `unused_<k>` names for the padding;
/// - with `renumber_rings`, a category's joints named `<name>_1` … `<name>_n`
///   (the vertices of a regular polygon, numbered only by how it was drawn,
///   so a turned square looks the same under four numberings) are
///   renumbered, keeping their cyclic order, to start from the one at the
///   smallest clockwise angle from the image's x axis about their mean —
///   a numbering the picture determines. Other joints keep their places.
///
/// A missing or malformed file, an image that cannot be read, or a
/// category without a `keypoints` list is an error naming it.
pub fn keypoint_crops(
    src: &Path,
    out: &Path,
    opts: &KeypointCropOptions,
) -> PrepareResult<Prepared> {
    if opts.size == 0 || !(opts.margin.is_finite() && opts.margin >= 1.0) {
        return Err(DataError::Config {
            key: "crops".into(),
            reason: format!(
                "size {} and margin {}: give a positive size and a margin of at least 1",
                opts.size, opts.margin
            ),
        }
        .into());
    }
    let mut counts = Prepared { train: 0, test: 0 };
    create_dir(&out.join("annotations"))?;
    for split in ["train", "test"] {
        let ann_path = src.join("annotations").join(format!("{split}.json"));
        let doc = read_json(&ann_path)?;
        let field = |k: &str| {
            doc[k]
                .as_array()
                .ok_or_else(|| invalid(&ann_path, format!("no `{k}` list")))
        };
        let (images, anns, cats) = (
            field("images")?,
            field("annotations")?,
            field("categories")?,
        );
        let mut joints = 0;
        let mut categories = Vec::with_capacity(cats.len());
        for c in cats {
            let names = c["keypoints"].as_array().ok_or_else(|| {
                invalid(
                    &ann_path,
                    format!("category {} has no `keypoints` list", c["id"]),
                )
            })?;
            joints = joints.max(names.len());
            categories.push(c.clone());
        }
        // per category id: the joint indices of its numbered ring, in order
        let rings: std::collections::HashMap<i64, Vec<usize>> = categories
            .iter()
            .filter_map(|c| {
                let names = c["keypoints"].as_array()?;
                let ring: Vec<usize> = (0..names.len())
                    .filter(|&k| {
                        names[k]
                            .as_str()
                            .and_then(|n| n.rsplit_once('_'))
                            .is_some_and(|(_, i)| i.parse::<usize>().is_ok())
                    })
                    .collect();
                (opts.renumber_rings && ring.len() > 1)
                    .then(|| (c["id"].as_i64().unwrap_or(-1), ring))
            })
            .collect();
        for c in &mut categories {
            let names = c["keypoints"].as_array_mut().expect("checked above");
            for k in names.len()..joints {
                names.push(json!(format!("unused_{k}")));
            }
        }
        let files: std::collections::HashMap<i64, &str> = images
            .iter()
            .filter_map(|i| Some((i["id"].as_i64()?, i["file_name"].as_str()?)))
            .collect();
        let dir = out.join("images").join(split);
        create_dir(&dir)?;
        let mut loaded: Option<(i64, RgbImage)> = None;
        let (mut out_images, mut out_anns) = (Vec::new(), Vec::new());
        let s = opts.size as f64;
        for a in anns {
            let kp = a["keypoints"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let labelled = kp
                .chunks(3)
                .any(|k| k.get(2).and_then(Value::as_f64).unwrap_or(0.0) > 0.0);
            if !labelled || a["iscrowd"].as_i64().unwrap_or(0) != 0 {
                continue;
            }
            let image_id = a["image_id"].as_i64().ok_or_else(|| {
                invalid(&ann_path, format!("annotation {} has no image_id", a["id"]))
            })?;
            let id = a["id"].as_i64().unwrap_or(out_anns.len() as i64 + 1);
            let file = files.get(&image_id).ok_or_else(|| {
                invalid(
                    &ann_path,
                    format!("annotation {id}: image {image_id} is not listed"),
                )
            })?;
            if loaded.as_ref().map(|l| l.0) != Some(image_id) {
                let path = src.join("images").join(split).join(file);
                let img = image::open(&path).map_err(|e| invalid(&path, e.to_string()))?;
                loaded = Some((image_id, img.into_rgb8()));
            }
            let img = &loaded.as_ref().expect("loaded above").1;
            let b: Vec<f64> = a["bbox"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            if b.len() != 4 || !(b[2] > 0.0 && b[3] > 0.0) {
                return Err(
                    invalid(&ann_path, format!("annotation {id}: bbox {:?}", a["bbox"])).into(),
                );
            }
            let side = opts.margin * b[2].max(b[3]);
            let (x0, y0) = (
                b[0] + b[2] / 2.0 - side / 2.0,
                b[1] + b[3] / 2.0 - side / 2.0,
            );
            let scale = s / side;
            let crop = RgbImage::from_fn(opts.size, opts.size, |x, y| {
                let v = sample(
                    img,
                    x0 + (f64::from(x) + 0.5) / scale,
                    y0 + (f64::from(y) + 0.5) / scale,
                );
                Rgb(v.map(|c| c.round().clamp(0.0, 255.0) as u8))
            });
            let file_name = format!("{id:06}.png");
            let path = dir.join(&file_name);
            crop.save(&path)
                .map_err(|e| invalid(&path, e.to_string()))?;
            let mut order: Vec<usize> = (0..joints).collect();
            if let Some(ring) = a["category_id"].as_i64().and_then(|c| rings.get(&c)) {
                let at = |k: usize| -> Option<(f64, f64)> {
                    let p = kp.get(3 * k..3 * k + 3)?;
                    (p[2].as_f64()? > 0.0)
                        .then(|| (p[0].as_f64().unwrap_or(0.0), p[1].as_f64().unwrap_or(0.0)))
                };
                let pts: Option<Vec<(f64, f64)>> = ring.iter().map(|&k| at(k)).collect();
                if let Some(pts) = pts {
                    let n = pts.len() as f64;
                    let (mx, my) = pts
                        .iter()
                        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
                    let angle = |p: &(f64, f64)| {
                        (p.1 - my).atan2(p.0 - mx).rem_euclid(std::f64::consts::TAU)
                    };
                    let first = (0..pts.len())
                        .min_by(|&i, &j| angle(&pts[i]).total_cmp(&angle(&pts[j])))
                        .unwrap_or(0);
                    for (slot, &k) in ring.iter().enumerate() {
                        order[k] = ring[(first + slot) % ring.len()];
                    }
                }
            }
            let mut points = Vec::with_capacity(3 * joints);
            let mut labelled = 0;
            for &k in &order {
                let p = kp.get(3 * k..3 * k + 3).map(|p| {
                    p.iter()
                        .map(|v| v.as_f64().unwrap_or(0.0))
                        .collect::<Vec<_>>()
                });
                match p {
                    Some(p) if p[2] > 0.0 => {
                        let round = |v: f64| (v * 100.0).round() / 100.0;
                        points.extend([
                            json!(round((p[0] - x0) * scale)),
                            json!(round((p[1] - y0) * scale)),
                            json!(p[2]),
                        ]);
                        labelled += 1;
                    }
                    _ => points.extend([json!(0), json!(0), json!(0)]),
                }
            }
            let bw = b[2] * scale;
            let bh = b[3] * scale;
            out_images.push(
                json!({"id": id, "file_name": file_name, "width": opts.size, "height": opts.size}),
            );
            out_anns.push(json!({
                "id": id, "image_id": id, "category_id": a["category_id"],
                "bbox": [(b[0] - x0) * scale, (b[1] - y0) * scale, bw, bh],
                "area": bw * bh, "iscrowd": 0,
                "keypoints": points, "num_keypoints": labelled,
            }));
            counts.count(split == "test");
        }
        let doc = json!({
            "info": {"description": format!("unidl keypoint crops of {}", src.display()), "version": "1"},
            "images": out_images, "annotations": out_anns, "categories": categories,
        });
        let path = out.join("annotations").join(format!("{split}.json"));
        let text = serde_json::to_string(&doc).map_err(|e| invalid(&path, e.to_string()))?;
        write_file(&path, text)?;
    }
    Ok(counts)
}
