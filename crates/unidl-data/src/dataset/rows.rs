//! Manifest rows with their line numbers: JSON-lines objects and CSV records,
//! so a bad row is reported as `file:line` (shared by the manifest formats).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::parse::read_text;

/// One manifest row: field name → text, and the 1-based line it starts on.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub line: usize,
    pub fields: BTreeMap<String, String>,
}

impl Row {
    /// The field `key`, or a parse error naming the file, line and key.
    pub fn get(&self, key: &str, file: &Path) -> Result<String> {
        self.fields
            .get(key)
            .cloned()
            .ok_or_else(|| DataError::Parse {
                path: file.to_path_buf(),
                line: Some(self.line),
                reason: format!("missing field `{key}`"),
            })
    }

    /// The field `key` when present and not empty.
    pub fn opt(&self, key: &str) -> Option<String> {
        self.fields.get(key).filter(|v| !v.is_empty()).cloned()
    }
}

/// Reads a `.csv` (header row) or, for any other extension, a JSON-lines
/// manifest whose lines are objects of strings, numbers or nulls.
pub(crate) fn read_rows(path: &Path) -> Result<Vec<Row>> {
    if extension(path) == "csv" {
        read_csv_rows(path)
    } else {
        read_jsonl_rows(path)
    }
}

/// The lower-case extension of `path` ("" when none).
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn read_jsonl_rows(path: &Path) -> Result<Vec<Row>> {
    let text = read_text(path)?;
    let parse = |line: usize, reason: String| DataError::Parse {
        path: path.to_path_buf(),
        line: Some(line),
        reason,
    };
    let mut rows = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(l).map_err(|e| parse(i + 1, e.to_string()))?;
        let serde_json::Value::Object(map) = value else {
            return Err(parse(i + 1, "expected a JSON object".into()));
        };
        let mut fields = BTreeMap::new();
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                other => {
                    return Err(parse(
                        i + 1,
                        format!("field `{k}` must be a string or number, not {other}"),
                    ));
                }
            };
            fields.insert(k, v);
        }
        rows.push(Row {
            line: i + 1,
            fields,
        });
    }
    Ok(rows)
}

fn read_csv_rows(path: &Path) -> Result<Vec<Row>> {
    let text = read_text(path)?;
    let parse = |line: usize, reason: String| DataError::Parse {
        path: path.to_path_buf(),
        line: Some(line),
        reason,
    };
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| parse(1, e.to_string()))?.clone();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            parse(line, e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        rows.push(Row {
            line,
            fields: headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.trim().to_string(), v.to_string()))
                .collect(),
        });
    }
    Ok(rows)
}

/// The field names of the first row (CSV header or first JSON object), used to
/// guess a manifest's format; `None` when the file cannot be read.
pub(crate) fn peek_fields(path: &Path) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    if extension(path) == "csv" {
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let h = rdr.headers().ok()?;
        Some(h.iter().map(|s| s.trim().to_string()).collect())
    } else {
        let first = text.lines().find(|l| !l.trim().is_empty())?;
        match serde_json::from_str(first).ok()? {
            serde_json::Value::Object(m) => Some(m.keys().cloned().collect()),
            _ => None,
        }
    }
}

/// Most classes integer labels may imply: a label is a class index and the
/// classes are `"0"..="max"`, so one large number in a manifest would
/// otherwise make billions of class names.
pub const MAX_CLASSES: usize = 1 << 20;

/// Class names and label indices for string labels: integers when every label
/// is a non-negative integer (classes `"0"..="max"`, `max` below
/// [`MAX_CLASSES`], else [`DataError::Invalid`] naming `manifest` and the
/// label), else names numbered in sorted order.
pub(crate) fn index_labels(
    labels: &[String],
    manifest: &Path,
) -> Result<(Vec<String>, Vec<usize>)> {
    let numeric: Option<Vec<usize>> = labels.iter().map(|l| l.trim().parse().ok()).collect();
    if let Some(ids) = numeric {
        let max = ids.iter().copied().max();
        if let Some(m) = max.filter(|&m| m >= MAX_CLASSES) {
            return Err(DataError::Invalid {
                what: manifest.display().to_string(),
                reason: format!(
                    "label {m}: integer labels are class indices, and a data set has at most {MAX_CLASSES} classes"
                ),
            });
        }
        let n = max.map_or(0, |m| m + 1);
        return Ok(((0..n).map(|i| i.to_string()).collect(), ids));
    }
    let classes: Vec<String> = labels
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: BTreeMap<&String, usize> = classes.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let ids = labels.iter().map(|l| index[l]).collect();
    Ok((classes, ids))
}

/// `base.join(rel)`, for paths written in a manifest (absolute paths stay).
pub(crate) fn resolve(base: &Path, rel: &str) -> PathBuf {
    base.join(rel)
}

/// The folder a manifest's relative paths start from.
pub(crate) fn base_dir(manifest: &Path) -> PathBuf {
    manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Entries of a folder in sorted order.
pub(crate) fn sorted_dir(path: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| DataError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// Class names and (file, class index) pairs of a class-per-folder tree.
pub(crate) type ClassFiles = (Vec<String>, Vec<(PathBuf, usize)>);

/// `root/<class>/<file>` with one of `exts` (case-insensitive): class names in
/// sorted order and (file, class index) pairs, files sorted within each class.
pub(crate) fn class_folders(root: &Path, exts: &[&str]) -> Result<ClassFiles> {
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
            if f.is_file() && exts.contains(&extension(&f).as_str()) {
                items.push((f, label));
            }
        }
    }
    if items.is_empty() {
        return Err(DataError::Invalid {
            what: root.display().to_string(),
            reason: format!("no class sub-folders with {} files", exts.join("/")),
        });
    }
    Ok((classes, items))
}
