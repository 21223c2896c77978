//! Parsing files into host data (§6.2.2.1): images (jpg, png, bmp) and text
//! (txt, json, jsonl, csv, xml). Every failure names the file.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::sample::Image;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Decodes a JPEG, PNG or BMP file into an [`Image`] with `channels` channels
/// (1 = gray, 3 = RGB; `None` keeps gray as 1 and everything else as RGB).
pub fn load_image(path: &Path, channels: Option<usize>) -> Result<Image> {
    let bytes = read(path)?;
    decode_image(&bytes, channels).map_err(|reason| DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })
}

/// Pixels any image may have whatever its size in bytes (2^22: 2048 × 2048).
pub const MIN_PIXEL_BUDGET: u64 = 1 << 22;

/// Pixels an image may have per byte of its file beyond [`MIN_PIXEL_BUDGET`].
/// Deflate and JPEG cannot compress much past 1000:1 even for a blank
/// picture, so real files stay far below; a header that declares more is a
/// decompression bomb (a 421-byte RLE BMP of 516 × 62210 pixels, found by
/// the fuzzer, decoded to 384 MiB of `f32`).
pub const PIXELS_PER_BYTE: u64 = 1024;

/// Decodes image bytes (format sniffed from the content). The header's
/// width and height are checked against the file's size first (see
/// [`PIXELS_PER_BYTE`]), so a declared size the file cannot justify is an
/// error before anything is allocated.
pub fn decode_image(bytes: &[u8], channels: Option<usize>) -> Result<Image, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot decode image: {e}"))
    };
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let budget = MIN_PIXEL_BUDGET.max(PIXELS_PER_BYTE.saturating_mul(bytes.len() as u64));
    if u64::from(w) * u64::from(h) > budget {
        return Err(format!(
            "header declares {w}×{h} pixels, more than a {}-byte image can hold ({budget})",
            bytes.len()
        ));
    }
    let img = reader()?
        .decode()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let gray_source = matches!(img.color().channel_count(), 1 | 2);
    let want = channels.unwrap_or(if gray_source { 1 } else { 3 });
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<f32> = match want {
        1 => img
            .into_luma8()
            .into_raw()
            .into_iter()
            .map(|v| v as f32 / 255.0)
            .collect(),
        3 => img
            .into_rgb8()
            .into_raw()
            .into_iter()
            .map(|v| v as f32 / 255.0)
            .collect(),
        4 => img
            .into_rgba8()
            .into_raw()
            .into_iter()
            .map(|v| v as f32 / 255.0)
            .collect(),
        other => return Err(format!("cannot convert to {other} channels (1, 3 or 4)")),
    };
    Ok(Image {
        width: w,
        height: h,
        channels: want,
        data,
    })
}

/// Writes an image as PNG (used by data preparation and tests).
pub fn save_png(image: &Image, path: &Path) -> Result<()> {
    let bytes: Vec<u8> = image
        .data
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let color = match image.channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        4 => image::ExtendedColorType::Rgba8,
        c => {
            return Err(DataError::Invalid {
                what: path.display().to_string(),
                reason: format!("{c} channels cannot be saved as PNG"),
            });
        }
    };
    image::save_buffer(path, &bytes, image.width as u32, image.height as u32, color).map_err(|e| {
        DataError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })
}

/// Reads a UTF-8 text file (P-a).
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|e| DataError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text: {e}"),
    })
}

/// Parses a JSON file.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| DataError::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        reason: e.to_string(),
    })
}

/// Parses a JSON-lines file: one JSON value per non-empty line.
pub fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| DataError::Parse {
                path: path.to_path_buf(),
                line: Some(i + 1),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Parses a CSV file with a header row into records of (column → value).
pub fn read_csv(path: &Path) -> Result<Vec<std::collections::BTreeMap<String, String>>> {
    let bytes = read(path)?;
    let mut rdr = csv::Reader::from_reader(bytes.as_slice());
    let headers = rdr
        .headers()
        .map_err(|e| DataError::Parse {
            path: path.to_path_buf(),
            line: Some(1),
            reason: e.to_string(),
        })?
        .clone();
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| DataError::Parse {
            path: path.to_path_buf(),
            line: Some(i + 2),
            reason: e.to_string(),
        })?;
        out.push(
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect(),
        );
    }
    Ok(out)
}

/// Parses an XML file into `T` with serde (quick-xml), e.g. a Pascal VOC annotation.
pub fn read_xml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_text(path)?;
    quick_xml::de::from_str(&text).map_err(|e| DataError::Parse {
        path: path.to_path_buf(),
        line: None,
        reason: e.to_string(),
    })
}
