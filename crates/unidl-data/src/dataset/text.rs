//! Text classification data sets: a JSON-lines/CSV manifest with `text` and
//! `label` (`format = "text_classification"`) or one folder of `.txt` files
//! per class (`format = "text_folder"`).

use std::path::{Path, PathBuf};

use super::Dataset;
use super::rows::{class_folders, index_labels, read_rows};
use crate::error::{DataError, Result};
use crate::parse::read_text;
use crate::sample::{Input, Sample};

#[derive(Debug, Clone)]
enum TextSource {
    /// Text held in memory (from a manifest), with the manifest's line.
    Inline(String, String),
    /// A `.txt` file read when the sample is loaded.
    File(PathBuf),
}

/// Labelled texts. Per sample: input `text` ([`Input::Text`]) and
/// `targets.label`. Class names are the folder names (sorted) or the
/// manifest's labels: integers as given when every label is a non-negative
/// integer, else names numbered in sorted order.
#[derive(Debug, Clone)]
pub struct TextClassification {
    items: Vec<(TextSource, usize)>,
    classes: Vec<String>,
}

impl TextClassification {
    /// A `.jsonl` or `.csv` manifest with `text` and `label` fields; a row
    /// missing either is [`DataError::Parse`] with its line. Texts are kept in memory.
    pub fn open_manifest(path: &Path) -> Result<Self> {
        let rows = read_rows(path)?;
        let mut texts = Vec::with_capacity(rows.len());
        let mut labels = Vec::with_capacity(rows.len());
        for r in &rows {
            texts.push((
                r.get("text", path)?,
                format!("{}:{}", path.display(), r.line),
            ));
            labels.push(r.get("label", path)?);
        }
        if texts.is_empty() {
            return Err(DataError::Invalid {
                what: path.display().to_string(),
                reason: "no rows".into(),
            });
        }
        let (classes, ids) = index_labels(&labels, path)?;
        Ok(TextClassification {
            items: texts
                .into_iter()
                .zip(ids)
                .map(|((t, src), id)| (TextSource::Inline(t, src), id))
                .collect(),
            classes,
        })
    }

    /// `root/<class>/*.txt`: classes are the sub-folder names in sorted
    /// order; files are read (UTF-8) when their sample is loaded.
    pub fn open_folder(root: &Path) -> Result<Self> {
        let (classes, files) = class_folders(root, &["txt"])?;
        Ok(TextClassification {
            items: files
                .into_iter()
                .map(|(f, c)| (TextSource::File(f), c))
                .collect(),
            classes,
        })
    }
}

/// A sample with one text input named `text`.
pub(crate) fn text_sample(text: String, source: String) -> Sample {
    let mut s = Sample {
        source,
        ..Sample::default()
    };
    s.inputs.insert("text".into(), Input::Text(text));
    s
}

impl Dataset for TextClassification {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (src, label) = self.items.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.items.len(),
        })?;
        let mut s = match src {
            TextSource::Inline(t, line) => text_sample(t.clone(), line.clone()),
            TextSource::File(f) => text_sample(read_text(f)?, f.display().to_string()),
        };
        s.targets.label = Some(*label);
        Ok(s)
    }

    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    /// Characters of an inline text; `None` for files (not read here).
    fn length(&self, index: usize) -> Option<usize> {
        match &self.items.get(index)?.0 {
            TextSource::Inline(t, _) => Some(t.chars().count()),
            TextSource::File(_) => None,
        }
    }

    fn source(&self, index: usize) -> Option<String> {
        self.items.get(index).map(|(s, _)| match s {
            TextSource::Inline(_, line) => line.clone(),
            TextSource::File(f) => f.display().to_string(),
        })
    }
}
