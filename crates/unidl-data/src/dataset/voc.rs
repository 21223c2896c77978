//! Pascal VOC detection annotations (`format = "voc"`): `root/Annotations/<id>.xml`,
//! `root/JPEGImages/<file>`, and optionally `root/ImageSets/Main/<split>.txt`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Dataset;
use super::rows::{extension, sorted_dir};
use crate::error::{DataError, Result};
use crate::parse::{load_image, read_text, read_xml};
use crate::sample::{BBox, Sample};

/// The 20 Pascal VOC classes in their usual order.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

#[derive(Debug, Deserialize)]
struct VocAnnotation {
    #[serde(default)]
    filename: Option<String>,
    #[serde(rename = "object", default)]
    objects: Vec<VocObject>,
}

#[derive(Debug, Deserialize)]
struct VocObject {
    name: String,
    #[serde(default)]
    difficult: Option<String>,
    bndbox: VocBox,
}

#[derive(Debug, Deserialize)]
struct VocBox {
    xmin: String,
    ymin: String,
    xmax: String,
    ymax: String,
}

/// A Pascal VOC tree, read lazily: each sample parses its XML when loaded.
///
/// Per sample: input `image`, `targets.boxes` and `targets.difficult`
/// (parallel) for every `<object>`. VOC's 1-based inclusive pixel box
/// `xmin..=xmax` becomes `x0 = xmin - 1`, `x1 = xmax` (0-based, right edge
/// exclusive), likewise for y. The class is the object's `name`'s index in the
/// class list; a name not in the list is [`DataError::Invalid`] naming the XML.
#[derive(Debug, Clone)]
pub struct VocDataset {
    root: PathBuf,
    ids: Vec<String>,
    classes: Vec<String>,
    index: HashMap<String, usize>,
    channels: Option<usize>,
}

impl VocDataset {
    /// Lists the sample ids: the lines of `ImageSets/Main/<split>.txt` (first
    /// word of each; a missing list is [`DataError::NotFound`]) or, without a
    /// split, every `Annotations/*.xml` in sorted order. `classes` defaults to
    /// [`VOC_CLASSES`].
    pub fn open(
        root: &Path,
        split: Option<&str>,
        classes: Option<&[String]>,
        channels: Option<usize>,
    ) -> Result<Self> {
        let ann = root.join("Annotations");
        if !ann.is_dir() {
            return Err(DataError::NotFound { path: ann });
        }
        let ids: Vec<String> = match split {
            Some(split) => {
                let list = root.join("ImageSets/Main").join(format!("{split}.txt"));
                read_text(&list)?
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            }
            None => sorted_dir(&ann)?
                .into_iter()
                .filter(|p| extension(p) == "xml")
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect(),
        };
        let classes: Vec<String> = match classes {
            Some([]) => {
                return Err(DataError::config("classes", "the class list is empty"));
            }
            Some(c) => c.to_vec(),
            None => VOC_CLASSES.iter().map(|s| s.to_string()).collect(),
        };
        let mut index = HashMap::new();
        for (i, c) in classes.iter().enumerate() {
            if index.insert(c.clone(), i).is_some() {
                return Err(DataError::config("classes", format!("`{c}` appears twice")));
            }
        }
        Ok(VocDataset {
            root: root.to_path_buf(),
            ids,
            classes,
            index,
            channels,
        })
    }

    fn xml(&self, id: &str) -> PathBuf {
        self.root.join("Annotations").join(format!("{id}.xml"))
    }
}

fn coord(v: &str, key: &str, xml: &Path) -> Result<f32> {
    v.trim().parse::<f32>().map_err(|_| DataError::Parse {
        path: xml.to_path_buf(),
        line: None,
        reason: format!("<{key}> is `{v}`, not a number"),
    })
}

impl Dataset for VocDataset {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let id = self.ids.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.ids.len(),
        })?;
        let xml = self.xml(id);
        let ann: VocAnnotation = read_xml(&xml)?;
        let file = ann.filename.unwrap_or_else(|| format!("{id}.jpg"));
        let path = self.root.join("JPEGImages").join(file.trim());
        let image = load_image(&path, self.channels)?;
        let mut s = Sample::image(image, None, path.display().to_string());
        for o in &ann.objects {
            let name = o.name.trim();
            let &class = self.index.get(name).ok_or_else(|| DataError::Invalid {
                what: xml.display().to_string(),
                reason: format!("object class `{name}` is not in the class list"),
            })?;
            let b = &o.bndbox;
            s.targets.boxes.push(BBox {
                x0: coord(&b.xmin, "xmin", &xml)? - 1.0,
                y0: coord(&b.ymin, "ymin", &xml)? - 1.0,
                x1: coord(&b.xmax, "xmax", &xml)?,
                y1: coord(&b.ymax, "ymax", &xml)?,
                class,
            });
            let difficult = match o.difficult.as_deref().map(str::trim) {
                None | Some("0") | Some("") => false,
                Some("1") => true,
                Some(other) => {
                    return Err(DataError::Parse {
                        path: xml,
                        line: None,
                        reason: format!("<difficult> is `{other}`, not 0 or 1"),
                    });
                }
            };
            s.targets.difficult.push(difficult);
        }
        Ok(s)
    }

    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    fn source(&self, index: usize) -> Option<String> {
        self.ids
            .get(index)
            .map(|id| self.xml(id).display().to_string())
    }
}
