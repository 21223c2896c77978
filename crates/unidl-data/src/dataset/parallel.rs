//! Parallel text for translation (`format = "parallel_text"`): a `.tsv` of
//! `source<TAB>target` lines or JSON lines with `source` and `target`.

use std::path::Path;

use super::Dataset;
use super::rows::{extension, read_rows};
use super::text::text_sample;
use crate::error::{DataError, Result};
use crate::parse::read_text;

/// Sentence pairs held in memory. Per sample: input `text` = the source
/// sentence, `targets.text` = its translation.
///
/// TSV: one pair per line, split at the single tab (no tab or more than one
/// is [`DataError::Parse`] with the line); blank lines are skipped, and a
/// first line that is exactly `source<TAB>target` is taken as a header.
#[derive(Debug, Clone)]
pub struct ParallelText {
    pairs: Vec<(String, String, String)>,
}

impl ParallelText {
    /// Reads a `.tsv`, or JSON lines for any other extension.
    pub fn open(path: &Path) -> Result<Self> {
        let mut pairs = Vec::new();
        if extension(path) == "tsv" {
            let text = read_text(path)?;
            for (i, line) in text.lines().enumerate() {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.trim().is_empty() || (i == 0 && line == "source\ttarget") {
                    continue;
                }
                let fields: Vec<&str> = line.split('\t').collect();
                let [src, tgt] = fields[..] else {
                    return Err(DataError::Parse {
                        path: path.to_path_buf(),
                        line: Some(i + 1),
                        reason: format!(
                            "expected `source<TAB>target`, found {} tab-separated fields",
                            fields.len()
                        ),
                    });
                };
                pairs.push((
                    src.to_string(),
                    tgt.to_string(),
                    format!("{}:{}", path.display(), i + 1),
                ));
            }
        } else {
            for r in read_rows(path)? {
                pairs.push((
                    r.get("source", path)?,
                    r.get("target", path)?,
                    format!("{}:{}", path.display(), r.line),
                ));
            }
        }
        if pairs.is_empty() {
            return Err(DataError::Invalid {
                what: path.display().to_string(),
                reason: "no sentence pairs".into(),
            });
        }
        Ok(ParallelText { pairs })
    }
}

impl ParallelText {
    /// The `(source, target)` pairs, in file order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(s, t, _)| (s.as_str(), t.as_str()))
    }
}

impl Dataset for ParallelText {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn get(&self, index: usize) -> Result<crate::sample::Sample> {
        let (src, tgt, at) = self.pairs.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.pairs.len(),
        })?;
        let mut s = text_sample(src.clone(), at.clone());
        s.targets.text = Some(tgt.clone());
        Ok(s)
    }

    fn source(&self, index: usize) -> Option<String> {
        self.pairs.get(index).map(|p| p.2.clone())
    }

    /// Characters of the source and the target.
    fn length(&self, index: usize) -> Option<usize> {
        self.pairs
            .get(index)
            .map(|(s, t, _)| s.chars().count() + t.chars().count())
    }
}
