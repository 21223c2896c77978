//! Labelled video clips rendered here: a filled shape moving left, right, up or
//! down over a crop of a real photo, encoded to H.264 by `ffmpeg`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng as _;

use super::raster::{PALETTE, background, fill_polygon, load_photos, regular_polygon};
use super::{
    PrepareResult, Prepared, check_test_every, create_dir, is_test, require_tool, run_tool,
};
use crate::error::DataError;
use crate::transform::rng_for;

/// The four classes, in label order.
pub const DIRECTIONS: [&str; 4] = ["left", "right", "up", "down"];

/// Options of [`shapes_video`].
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    /// Clips per direction.
    pub per_class: usize,
    /// Every `test_every`-th clip of each direction is held out (≥ 2).
    pub test_every: usize,
    /// Frame width and height in pixels (even, ≥ 32).
    pub size: u32,
    /// Frames per clip.
    pub frames: usize,
    /// Frames per second.
    pub fps: u32,
    /// Seed of every random choice (photo, crop, shape, colour, path).
    pub seed: u64,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            per_class: 40,
            test_every: 5,
            size: 64,
            frames: 24,
            fps: 12,
            seed: 0,
        }
    }
}

/// Renders `per_class` clips per direction into `out/train/<direction>/<i>.mp4`
/// and `out/test/<direction>/<i>.mp4` (H.264, yuv420p, `size × size`,
/// `frames / fps` seconds). In each clip a filled triangle, square or disc
/// crosses a still crop of one of `photos` in the clip's direction. Frames
/// are drawn here (PNG) and encoded by `ffmpeg` with bit-exact flags and one
/// thread, so a rerun gives identical files with the same FFmpeg build.
/// Needs the `ffmpeg` program ([`super::PrepareError::MissingTool`] otherwise).
pub fn shapes_video(
    photos: &[PathBuf],
    out: &Path,
    opts: &VideoOptions,
) -> PrepareResult<Prepared> {
    check_test_every(opts.test_every)?;
    if opts.size < 32 || !opts.size.is_multiple_of(2) {
        return Err(DataError::Config {
            key: "size".into(),
            reason: format!("{} must be even and at least 32", opts.size),
        }
        .into());
    }
    if opts.frames < 2 || opts.fps == 0 {
        return Err(DataError::Config {
            key: "frames".into(),
            reason: format!(
                "{} frames at {} fps: need at least 2 frames and 1 fps",
                opts.frames, opts.fps
            ),
        }
        .into());
    }
    let ffmpeg = require_tool("ffmpeg", "ffmpeg")?;
    let photos = load_photos(photos)?;
    let scratch = out.join(".frames");
    let mut counts = Prepared { train: 0, test: 0 };
    for (class, dir) in DIRECTIONS.iter().enumerate() {
        for split in ["train", "test"] {
            create_dir(&out.join(split).join(dir))?;
        }
        for i in 0..opts.per_class {
            let mut rng = rng_for(opts.seed, class as u64, i as u64);
            let s = opts.size as f64;
            let bg = background(&photos, &mut rng, opts.size, opts.size);
            let sides = [3usize, 4, 32][rng.random_range(0..3)];
            let r = rng.random_range(s * 0.1..=s * 0.16);
            let rot = rng.random_range(0.0..std::f64::consts::TAU);
            let color = PALETTE[rng.random_range(0..PALETTE.len())];
            let across = rng.random_range(r + 1.0..=s - r - 1.0);
            let (from, to) = (r + 1.0, s - r - 1.0);
            let _ = std::fs::remove_dir_all(&scratch);
            create_dir(&scratch)?;
            for f in 0..opts.frames {
                let t = f as f64 / (opts.frames - 1) as f64;
                let along = from + (to - from) * t;
                let (cx, cy) = match *dir {
                    "right" => (along, across),
                    "left" => (s - along, across),
                    "down" => (across, along),
                    _ => (across, s - along),
                };
                let mut frame = bg.clone();
                fill_polygon(&mut frame, &regular_polygon(cx, cy, r, sides, rot), color);
                let path = scratch.join(format!("{f:04}.png"));
                frame.save(&path).map_err(|e| DataError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            let test = is_test(i, opts.test_every);
            let split = if test { "test" } else { "train" };
            let clip = out.join(split).join(dir).join(format!("{i:04}.mp4"));
            run_tool(
                Command::new(&ffmpeg)
                    .args(["-y", "-v", "error", "-framerate"])
                    .arg(opts.fps.to_string())
                    .arg("-i")
                    .arg(scratch.join("%04d.png"))
                    .args([
                        "-c:v",
                        "libx264",
                        "-pix_fmt",
                        "yuv420p",
                        "-threads",
                        "1",
                        "-map_metadata",
                        "-1",
                        "-fflags",
                        "+bitexact",
                        "-flags:v",
                        "+bitexact",
                    ])
                    .arg(&clip),
            )?;
            counts.count(test);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(counts)
}
