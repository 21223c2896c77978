//! Printed text lines for OCR: Brown corpus text rendered with real fonts,
//! with noise and blur.

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::{GrayImage, Luma};
use rand::Rng as _;
use serde::Serialize;

use super::{PrepareResult, Prepared, create_dir, read_bytes, write_jsonl};
use crate::error::DataError;
use crate::parse::read_jsonl;
use crate::transform::{Rng, rng_for};

/// Options of [`text_lines`].
#[derive(Debug, Clone, PartialEq)]
pub struct TextLineOptions {
    /// Training lines rendered.
    pub train_lines: usize,
    /// Held-out lines rendered.
    pub test_lines: usize,
    /// Image height in pixels.
    pub height: u32,
    /// Image width in pixels (a line is shrunk to fit).
    pub width: u32,
    /// Shortest line in characters.
    pub min_chars: usize,
    /// Longest line in characters.
    pub max_chars: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for TextLineOptions {
    fn default() -> Self {
        TextLineOptions {
            train_lines: 12_000,
            test_lines: 1_000,
            height: 32,
            width: 384,
            min_chars: 8,
            max_chars: 40,
            seed: 0,
        }
    }
}

#[derive(Serialize)]
struct Row {
    path: String,
    text: String,
    font: String,
}

/// A font read from its file, with its name for the manifest.
struct LoadedFont {
    name: String,
    font: FontVec,
}

fn load_fonts(files: &[PathBuf]) -> PrepareResult<Vec<LoadedFont>> {
    let mut out = Vec::new();
    for f in files {
        let font = FontVec::try_from_vec(read_bytes(f)?).map_err(|e| DataError::Corrupt {
            path: f.clone(),
            reason: format!("not a TrueType/OpenType font: {e}"),
        })?;
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(LoadedFont { name, font });
    }
    if out.is_empty() {
        return Err(DataError::config("fonts", "no font files given").into());
    }
    Ok(out)
}

/// Lines of `min..=max` characters cut from `texts` at word boundaries
/// (lengths drawn at random), printable ASCII only.
fn cut_lines(texts: &[String], opts: &TextLineOptions, rng: &mut Rng) -> Vec<String> {
    let mut lines = Vec::new();
    for text in texts {
        let mut current = String::new();
        let mut target = rng.random_range(opts.min_chars..=opts.max_chars);
        for word in text.split_whitespace() {
            if !word.chars().all(|c| c.is_ascii_graphic()) || word.len() > opts.max_chars {
                current.clear();
                continue;
            }
            let extra = usize::from(!current.is_empty()) + word.len();
            if current.len() + extra > target {
                if current.len() >= opts.min_chars {
                    lines.push(std::mem::take(&mut current));
                } else {
                    current.clear();
                }
                target = rng.random_range(opts.min_chars..=opts.max_chars);
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        if current.len() >= opts.min_chars && current.len() <= opts.max_chars {
            lines.push(current);
        }
    }
    lines
}

/// One standard normal draw (Box–Muller).
fn normal(rng: &mut Rng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Renders `text` in `font` on a `width × height` gray image: a random
/// size (text height 60–90 % of the image, shrunk to fit the width), left
/// margin, baseline jitter, paper and ink levels, then Gaussian noise
/// (σ up to 12 levels) and, for half of the lines, a Gaussian blur (σ up to 1 px).
fn render(text: &str, font: &FontVec, opts: &TextLineOptions, rng: &mut Rng) -> GrayImage {
    let (w, h) = (opts.width as f32, opts.height as f32);
    let unit = font.as_scaled(PxScale::from(1.0));
    let em_height = (unit.ascent() - unit.descent()).max(1e-3);
    let mut px = h * rng.random_range(0.6..0.9) / em_height;
    let advance = |px: f32| {
        let s = font.as_scaled(PxScale::from(px));
        let mut x = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += s.kern(p, id);
            }
            x += s.h_advance(id);
            prev = Some(id);
        }
        x
    };
    let margin = rng.random_range(2.0..12.0f32);
    let width = advance(px);
    if width > w - 2.0 * margin {
        px *= (w - 2.0 * margin) / width;
    }
    let scaled = font.as_scaled(PxScale::from(px));
    let text_h = scaled.ascent() - scaled.descent();
    let spare = (h - text_h).max(0.0);
    let baseline = scaled.ascent() + rng.random_range(0.0..=spare);
    let paper: f32 = rng.random_range(190.0..255.0);
    let ink: f32 = rng.random_range(0.0..90.0);
    let (wi, hi) = (opts.width as usize, opts.height as usize);
    let mut canvas = vec![paper; wi * hi];
    let mut x = margin;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(px, point(x, baseline));
        if let Some(outlined) = font.outline_glyph(glyph) {
            let b = outlined.px_bounds();
            outlined.draw(|gx, gy, cov| {
                let px_x = b.min.x as i64 + i64::from(gx);
                let px_y = b.min.y as i64 + i64::from(gy);
                if (0..wi as i64).contains(&px_x) && (0..hi as i64).contains(&px_y) {
                    let v = &mut canvas[px_y as usize * wi + px_x as usize];
                    let cov = cov.clamp(0.0, 1.0);
                    *v = *v * (1.0 - cov) + ink * cov;
                }
            });
        }
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    let sigma = rng.random_range(0.0..12.0f32);
    for v in &mut canvas {
        *v += sigma * normal(rng);
    }
    let mut img = GrayImage::from_fn(opts.width, opts.height, |x, y| {
        Luma([canvas[y as usize * wi + x as usize]
            .round()
            .clamp(0.0, 255.0) as u8])
    });
    if rng.random_bool(0.5) {
        let blur = rng.random_range(0.3..1.0f32);
        img = image::imageops::blur(&img, blur);
    }
    img
}

fn texts_of(manifest: &Path) -> PrepareResult<Vec<String>> {
    let rows = read_jsonl(manifest)?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        match r.get("text").and_then(|t| t.as_str()) {
            Some(t) => out.push(t.to_string()),
            None => {
                return Err(DataError::Parse {
                    path: manifest.to_path_buf(),
                    line: Some(i + 1),
                    reason: "missing field `text`".into(),
                }
                .into());
            }
        }
    }
    Ok(out)
}

/// Renders printed text lines for OCR from a prepared Brown corpus
/// (`brown/train.jsonl`, `brown/test.jsonl` of [`brown_from_npm`](super::brown_from_npm),
/// split by document) into `out/images/<split>/<n>.png` (8-bit gray,
/// `opts.width × opts.height`) and `out/train.jsonl`, `out/test.jsonl`
/// (`{"path", "text", "font"}`; `format = "image_text"`).
///
/// Lines are cut from the paragraphs at word boundaries
/// (`min_chars..=max_chars`, printable ASCII), taken evenly spread;
/// training lines come from training documents in `train_fonts`, held-out
/// lines from held-out documents in `test_fonts` — held-out text *and*
/// held-out fonts. Every choice is seeded (`opts.seed`): the same inputs
/// give byte-identical files.
pub fn text_lines(
    brown: &Path,
    train_fonts: &[PathBuf],
    test_fonts: &[PathBuf],
    out: &Path,
    opts: &TextLineOptions,
) -> PrepareResult<Prepared> {
    if opts.min_chars == 0 || opts.min_chars > opts.max_chars {
        return Err(DataError::config(
            "min_chars",
            format!(
                "{}..={} is not a range of line lengths",
                opts.min_chars, opts.max_chars
            ),
        )
        .into());
    }
    if opts.height < 8 || opts.width < opts.height {
        return Err(DataError::config(
            "width",
            format!(
                "{}×{} is not a line image (height ≥ 8, width ≥ height)",
                opts.width, opts.height
            ),
        )
        .into());
    }
    let fonts = [load_fonts(train_fonts)?, load_fonts(test_fonts)?];
    let mut counts = Prepared { train: 0, test: 0 };
    for (s, (split, n)) in [("train", opts.train_lines), ("test", opts.test_lines)]
        .into_iter()
        .enumerate()
    {
        let texts = texts_of(&brown.join(format!("{split}.jsonl")))?;
        let mut rng = rng_for(opts.seed, 100 + s as u64, 0);
        let lines = cut_lines(&texts, opts, &mut rng);
        if lines.len() < n {
            return Err(DataError::Invalid {
                what: brown.join(format!("{split}.jsonl")).display().to_string(),
                reason: format!("{} lines can be cut, {n} asked for", lines.len()),
            }
            .into());
        }
        let dir = out.join("images").join(split);
        create_dir(&dir)?;
        let mut rows = Vec::with_capacity(n);
        for (i, idx) in super::spread(lines.len(), Some(n)).into_iter().enumerate() {
            let mut rng = rng_for(opts.seed, s as u64, i as u64);
            let font = &fonts[s][rng.random_range(0..fonts[s].len())];
            let img = render(&lines[idx], &font.font, opts, &mut rng);
            let rel = format!("images/{split}/{i:06}.png");
            let path = out.join(&rel);
            img.save_with_format(&path, image::ImageFormat::Png)
                .map_err(|e| DataError::Corrupt {
                    path: path.clone(),
                    reason: format!("cannot write the PNG: {e}"),
                })?;
            rows.push(Row {
                path: rel,
                text: lines[idx].clone(),
                font: font.name.clone(),
            });
        }
        write_jsonl(&out.join(format!("{split}.jsonl")), &rows)?;
        if s == 0 {
            counts.train = rows.len();
        } else {
            counts.test = rows.len();
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_words_within_the_lengths() {
        let opts = TextLineOptions {
            min_chars: 8,
            max_chars: 20,
            ..Default::default()
        };
        let mut rng = rng_for(1, 2, 3);
        let texts = vec![
            "The jury said it did find that the city's election was conducted well.".to_string(),
            "Short. Thé accented word is dropped with its line part ok then".to_string(),
        ];
        let lines = cut_lines(&texts, &opts, &mut rng);
        assert!(lines.len() >= 3, "{lines:?}");
        for l in &lines {
            assert!((8..=20).contains(&l.len()), "{l:?}");
            assert!(l.is_ascii(), "{l:?}");
            assert!(texts.iter().any(|t| t.contains(l.as_str())), "{l:?}");
        }
    }
}
