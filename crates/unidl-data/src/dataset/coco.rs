//! COCO object detection / instance segmentation / keypoint annotations
//! (`format = "coco"`): one sample per entry of `images`, with boxes, masks,
//! crowd flags and keypoints of its annotations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Dataset;
use super::coco_mask::Rle;
use crate::error::{DataError, Result};
use crate::parse::{load_image, read_text};
use crate::sample::{BBox, Keypoint, Mask, Sample};

#[derive(Debug, Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Debug, Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
    width: usize,
    height: usize,
}

#[derive(Debug, Clone, Deserialize)]
struct CocoAnnotation {
    #[serde(default)]
    id: Option<u64>,
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    #[serde(default)]
    segmentation: Option<Segmentation>,
    #[serde(default)]
    iscrowd: u8,
    #[serde(default)]
    area: Option<f64>,
    #[serde(default)]
    keypoints: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct CocoCategory {
    id: u64,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Segmentation {
    Polygons(Vec<Vec<f64>>),
    Rle { size: [usize; 2], counts: Counts },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Counts {
    Uncompressed(Vec<u64>),
    Compressed(String),
}

/// One annotation, checked and with its class index resolved.
#[derive(Debug, Clone)]
struct Instance {
    id: Option<u64>,
    bbox: BBox,
    crowd: bool,
    area: f64,
    segmentation: Option<Segmentation>,
    keypoints: Vec<Keypoint>,
}

#[derive(Debug, Clone)]
struct ImageEntry {
    path: PathBuf,
    width: usize,
    height: usize,
    instances: Vec<Instance>,
}

/// A COCO annotation file. Images are read lazily from `images_dir`
/// (default: the JSON file's folder) joined with each `file_name`.
///
/// Per sample: input `image`; `targets.boxes` from `bbox = [x, y, w, h]` as
/// `(x, y, x + w, y + h)`; `targets.crowd` parallel to the boxes (`iscrowd`),
/// and `targets.areas` (`area`, else `w·h`);
/// `targets.masks` for annotations with a `segmentation` (polygons, plain or
/// compressed RLE, decoded as pycocotools does), in annotation order, with
/// `targets.mask_boxes` naming each one's box;
/// `targets.instance_keypoints` for annotations with `keypoints`, with
/// `targets.keypoint_boxes` naming each one's box, and
/// `targets.keypoints` = the first of them. Geometric transforms drop a box's
/// crowd flag, mask and keypoints with it, so these stay aligned. Category ids become class indices
/// 0, 1, … in sorted id order; [`Dataset::classes`] gives their names.
#[derive(Debug, Clone)]
pub struct CocoDataset {
    json: PathBuf,
    images: Vec<ImageEntry>,
    classes: Vec<String>,
    channels: Option<usize>,
}

/// `images_dir` with `{stem}` replaced by the annotation file's stem, so one
/// setting serves a train and a held-out split laid out as
/// `annotations/<split>.json` + `images/<split>/` (`"../images/{stem}"`).
fn expand_stem(images_dir: &Path, json: &Path) -> PathBuf {
    let text = images_dir.to_string_lossy();
    if !text.contains("{stem}") {
        return images_dir.to_path_buf();
    }
    let stem = json.file_stem().unwrap_or_default().to_string_lossy();
    PathBuf::from(text.replace("{stem}", &stem))
}

impl CocoDataset {
    /// Parses `json` (a malformed file is [`DataError::Parse`] with its line;
    /// an annotation naming an unknown image or category, or with a bad
    /// polygon/keypoint length, is [`DataError::Parse`] naming the annotation).
    pub fn open(json: &Path, images_dir: Option<&Path>, channels: Option<usize>) -> Result<Self> {
        let text = read_text(json)?;
        let file: CocoFile = serde_json::from_str(&text).map_err(|e| DataError::Parse {
            path: json.to_path_buf(),
            line: Some(e.line()),
            reason: e.to_string(),
        })?;
        let bad = |reason: String| DataError::Parse {
            path: json.to_path_buf(),
            line: None,
            reason,
        };
        let base = super::rows::base_dir(json);
        let dir = images_dir.map_or(base.clone(), |d| base.join(expand_stem(d, json)));

        let mut cats: Vec<(u64, String)> = file
            .categories
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        cats.sort_by_key(|c| c.0);
        if let Some(w) = cats.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(bad(format!("category id {} appears twice", w[0].0)));
        }
        let class_of: HashMap<u64, usize> =
            cats.iter().enumerate().map(|(i, c)| (c.0, i)).collect();

        let mut images: Vec<ImageEntry> = Vec::with_capacity(file.images.len());
        let mut slot: HashMap<u64, usize> = HashMap::new();
        for img in file.images {
            if slot.insert(img.id, images.len()).is_some() {
                return Err(bad(format!("image id {} appears twice", img.id)));
            }
            images.push(ImageEntry {
                path: dir.join(&img.file_name),
                width: img.width,
                height: img.height,
                instances: Vec::new(),
            });
        }

        for (n, a) in file.annotations.into_iter().enumerate() {
            let name = match a.id {
                Some(id) => format!("annotation id {id}"),
                None => format!("annotation #{n}"),
            };
            let &i = slot
                .get(&a.image_id)
                .ok_or_else(|| bad(format!("{name}: unknown image_id {}", a.image_id)))?;
            let &class = class_of
                .get(&a.category_id)
                .ok_or_else(|| bad(format!("{name}: unknown category_id {}", a.category_id)))?;
            let [x, y, w, h] = a.bbox;
            if !(w >= 0.0 && h >= 0.0 && x.is_finite() && y.is_finite()) {
                return Err(bad(format!(
                    "{name}: bbox {:?} is not [x, y, w >= 0, h >= 0]",
                    a.bbox
                )));
            }
            let area = a.area.unwrap_or(w * h);
            if !(area.is_finite() && area >= 0.0) {
                return Err(bad(format!(
                    "{name}: area {area} is not a finite number >= 0"
                )));
            }
            if let Some(Segmentation::Polygons(polys)) = &a.segmentation
                && let Some(p) = polys.iter().find(|p| p.len() < 4 || p.len() % 2 != 0)
            {
                return Err(bad(format!(
                    "{name}: a polygon needs an even number (>= 4) of coordinates, got {}",
                    p.len()
                )));
            }
            if !a.keypoints.len().is_multiple_of(3) {
                return Err(bad(format!(
                    "{name}: keypoints has {} values, not a multiple of 3 ([x, y, v]*)",
                    a.keypoints.len()
                )));
            }
            let keypoints = a
                .keypoints
                .chunks_exact(3)
                .map(|k| Keypoint {
                    x: k[0] as f32,
                    y: k[1] as f32,
                    visibility: k[2].clamp(0.0, 2.0) as u8,
                })
                .collect();
            images[i].instances.push(Instance {
                id: a.id,
                bbox: BBox {
                    x0: x as f32,
                    y0: y as f32,
                    x1: (x + w) as f32,
                    y1: (y + h) as f32,
                    class,
                },
                crowd: a.iscrowd != 0,
                area,
                segmentation: a.segmentation,
                keypoints,
            });
        }
        Ok(CocoDataset {
            json: json.to_path_buf(),
            images,
            classes: cats.into_iter().map(|c| c.1).collect(),
            channels,
        })
    }

    fn mask(&self, img: &ImageEntry, inst: &Instance, seg: &Segmentation) -> Result<Mask> {
        let (h, w) = (img.height, img.width);
        let what = || match inst.id {
            Some(id) => format!("{}: annotation id {id}", self.json.display()),
            None => format!(
                "{}: an annotation of {}",
                self.json.display(),
                img.path.display()
            ),
        };
        let invalid = |reason: String| DataError::Invalid {
            what: what(),
            reason,
        };
        let data = match seg {
            Segmentation::Polygons(polys) => {
                // Rasterising walks every polygon edge on a 5× grid, so a
                // vertex far outside the image (1e22 in a fuzzed file) makes
                // billions of boundary points. Vertices may lie outside the
                // image by its own size, no further.
                let reach = 2.0 * (h + w) as f64 + 16.0;
                if let Some(v) = polys
                    .iter()
                    .flatten()
                    .find(|v| v.is_nan() || v.abs() > reach)
                {
                    return Err(invalid(format!(
                        "polygon coordinate {v} lies further than {reach} pixels from a {w}×{h} image"
                    )));
                }
                let mut data = vec![0u8; h * w];
                for p in polys {
                    let m = Rle::from_polygon(p, h, w).decode().map_err(invalid)?;
                    for (d, v) in data.iter_mut().zip(m) {
                        *d |= v;
                    }
                }
                data
            }
            Segmentation::Rle { size, counts } => {
                if *size != [h, w] {
                    return Err(invalid(format!(
                        "RLE size {size:?} differs from the image's [height, width] [{h}, {w}]"
                    )));
                }
                let rle = match counts {
                    Counts::Uncompressed(c) => Rle {
                        height: h,
                        width: w,
                        counts: c.clone(),
                    },
                    Counts::Compressed(s) => Rle::from_compressed(s, h, w).map_err(invalid)?,
                };
                rle.decode().map_err(invalid)?
            }
        };
        Ok(Mask {
            width: w,
            height: h,
            data,
            class: inst.bbox.class,
        })
    }
}

impl Dataset for CocoDataset {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let img = self.images.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.images.len(),
        })?;
        let image = load_image(&img.path, self.channels)?;
        if (image.width, image.height) != (img.width, img.height) {
            return Err(DataError::Invalid {
                what: img.path.display().to_string(),
                reason: format!(
                    "image is {}×{}, but {} says {}×{}",
                    image.width,
                    image.height,
                    self.json.display(),
                    img.width,
                    img.height
                ),
            });
        }
        let mut s = Sample::image(image, None, img.path.display().to_string());
        for (b, inst) in img.instances.iter().enumerate() {
            s.targets.boxes.push(inst.bbox);
            s.targets.crowd.push(inst.crowd);
            s.targets.areas.push(inst.area);
            if let Some(seg) = &inst.segmentation {
                s.targets.masks.push(self.mask(img, inst, seg)?);
                s.targets.mask_boxes.push(b);
            }
            if !inst.keypoints.is_empty() {
                s.targets.instance_keypoints.push(inst.keypoints.clone());
                s.targets.keypoint_boxes.push(b);
            }
        }
        if let Some(first) = s.targets.instance_keypoints.first() {
            s.targets.keypoints = first.clone();
        }
        Ok(s)
    }

    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    fn source(&self, index: usize) -> Option<String> {
        self.images.get(index).map(|i| i.path.display().to_string())
    }
}
