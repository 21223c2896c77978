//! Images with their text (`format = "image_text"`): JSON lines
//! `{"path", "text"}` or CSV `path,text` — printed or handwritten lines for
//! OCR, captions.

use std::path::{Path, PathBuf};

use super::Dataset;
use super::rows::{base_dir, read_rows, resolve};
use crate::error::{DataError, Result};
use crate::parse::load_image;
use crate::sample::Sample;

/// Images listed in a manifest (paths relative to it) with the text each
/// shows, decoded lazily.
///
/// Per sample: input `image`, `targets.text` = the text. Extra fields
/// (e.g. `font`) are ignored.
#[derive(Debug, Clone)]
pub struct ImageText {
    items: Vec<(PathBuf, String)>,
    channels: Option<usize>,
}

impl ImageText {
    /// Reads the manifest; a row without `path` or `text` is
    /// [`DataError::Parse`] with its line, an empty manifest
    /// [`DataError::Invalid`]. `channels` converts every image (1, 3 or 4).
    pub fn open(manifest: &Path, channels: Option<usize>) -> Result<Self> {
        let base = base_dir(manifest);
        let mut items = Vec::new();
        for r in read_rows(manifest)? {
            items.push((
                resolve(&base, &r.get("path", manifest)?),
                r.get("text", manifest)?,
            ));
        }
        if items.is_empty() {
            return Err(DataError::Invalid {
                what: manifest.display().to_string(),
                reason: "no rows".into(),
            });
        }
        Ok(ImageText { items, channels })
    }
}

impl Dataset for ImageText {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (path, text) = self.items.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.items.len(),
        })?;
        let img = load_image(path, self.channels)?;
        let mut s = Sample::image(img, None, path.display().to_string());
        s.targets.text = Some(text.clone());
        Ok(s)
    }

    fn source(&self, index: usize) -> Option<String> {
        self.items.get(index).map(|(p, _)| p.display().to_string())
    }

    /// Characters of the line's text (the decoder's length).
    fn length(&self, index: usize) -> Option<usize> {
        self.items.get(index).map(|(_, t)| t.chars().count())
    }
}
