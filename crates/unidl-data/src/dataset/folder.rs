//! Image data sets on disk: a class-per-folder tree and CSV/JSONL manifests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{DataError, Result};
use crate::parse::{load_image, read_csv, read_jsonl};
use crate::sample::Sample;

const IMAGE_EXT: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "PNG"];

/// Labelled image files, decoded lazily: built from a class-per-folder tree
/// ([`LabeledImages::open_folder`]) or a CSV/JSONL manifest ([`LabeledImages::open_manifest`]).
#[derive(Debug, Clone)]
pub struct LabeledImages {
    items: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
    channels: Option<usize>,
}

fn sorted_dir(path: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| DataError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

impl LabeledImages {
    /// `root/<class>/<file>`: classes are the sub-folder names in sorted order,
    /// files are sorted within each class. Only names are read here.
    pub fn open_folder(root: &Path, channels: Option<usize>) -> Result<Self> {
        let mut classes = Vec::new();
        let mut items = Vec::new();
        for dir in sorted_dir(root)?.into_iter().filter(|p| p.is_dir()) {
            let label = classes.len();
            classes.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            for f in sorted_dir(&dir)? {
                let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
                if IMAGE_EXT.contains(&ext) {
                    items.push((f, label));
                }
            }
        }
        if items.is_empty() {
            return Err(DataError::Invalid {
                what: root.display().to_string(),
                reason: "no class sub-folders with png/jpg/bmp images".into(),
            });
        }
        Ok(LabeledImages {
            items,
            classes,
            channels,
        })
    }

    /// A CSV (`path,label` columns) or JSON-lines (`{"path": …, "label": …}`)
    /// manifest; paths are relative to the manifest's folder; labels are
    /// integers or class names (names are numbered in sorted order).
    pub fn open_manifest(path: &Path, channels: Option<usize>) -> Result<Self> {
        let base = path.parent().unwrap_or(Path::new("."));
        let rows: Vec<(usize, String, String)> =
            if path.extension().and_then(|e| e.to_str()) == Some("csv") {
                read_csv(path)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| {
                        Ok((
                            i + 2,
                            field(&r, "path", path, i + 2)?,
                            field(&r, "label", path, i + 2)?,
                        ))
                    })
                    .collect::<Result<_>>()?
            } else {
                read_jsonl(path)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let get = |k: &str| match &v[k] {
                            serde_json::Value::String(s) => Ok(s.clone()),
                            serde_json::Value::Number(n) => Ok(n.to_string()),
                            _ => Err(DataError::Parse {
                                path: path.to_path_buf(),
                                line: Some(i + 1),
                                reason: format!("missing field `{k}`"),
                            }),
                        };
                        Ok((i + 1, get("path")?, get("label")?))
                    })
                    .collect::<Result<_>>()?
            };
        let labels: Vec<String> = rows.iter().map(|(_, _, l)| l.clone()).collect();
        let (classes, ids) = super::rows::index_labels(&labels, path)?;
        let items = rows
            .iter()
            .zip(ids)
            .map(|((_, p, _), id)| (base.join(p), id))
            .collect();
        Ok(LabeledImages {
            items,
            classes,
            channels,
        })
    }
}

fn field(r: &BTreeMap<String, String>, key: &str, path: &Path, line: usize) -> Result<String> {
    r.get(key).cloned().ok_or_else(|| DataError::Parse {
        path: path.to_path_buf(),
        line: Some(line),
        reason: format!("missing column `{key}`"),
    })
}

impl Dataset for LabeledImages {
    fn len(&self) -> usize {
        self.items.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let (path, label) = self.items.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.items.len(),
        })?;
        let img = load_image(path, self.channels)?;
        Ok(Sample::image(img, Some(*label), path.display().to_string()))
    }
    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn source(&self, index: usize) -> Option<String> {
        self.items.get(index).map(|(p, _)| p.display().to_string())
    }
}
