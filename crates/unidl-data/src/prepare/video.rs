//! Labelled video clips rendered here: a filled shape moving left, right, up
//! or down, slowly or fast, over a crop of a real photo, with a still
//! distractor shape in half the clips, encoded by `ffmpeg` as H.264, HEVC or
//! AV1.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng as _;

use super::raster::{PALETTE, background, fill_polygon, load_photos, regular_polygon};
use super::{PrepareResult, Prepared, create_dir, require_tool, run_tool};
use crate::error::DataError;
use crate::transform::rng_for;

/// The four directions of motion.
pub const DIRECTIONS: [&str; 4] = ["left", "right", "up", "down"];

/// The eight classes (folder names, in label order): direction × speed.
pub const MOTION_CLASSES: [&str; 8] = [
    "down_fast",
    "down_slow",
    "left_fast",
    "left_slow",
    "right_fast",
    "right_slow",
    "up_fast",
    "up_slow",
];

/// The codecs clips are encoded with (each clip draws one of those the
/// installed `ffmpeg` can encode).
pub const VIDEO_CODECS: [&str; 3] = ["h264", "hevc", "av1"];

/// Options of [`shapes_video`].
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    /// Training clips per class.
    pub per_class: usize,
    /// Held-out clips per class (drawn from their own random streams, on
    /// backgrounds from held-out photos when there are at least two).
    pub test_per_class: usize,
    /// Frame width and height in pixels (even, ≥ 32).
    pub size: u32,
    /// Frames per clip.
    pub frames: usize,
    /// Frames per second.
    pub fps: u32,
    /// Seed of every random choice (photo, crop, shape, colour, path, codec).
    pub seed: u64,
    /// Codecs to draw from (a subset of [`VIDEO_CODECS`]); those the
    /// installed `ffmpeg` cannot encode are left out, at least one must remain.
    pub codecs: Vec<String>,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            per_class: 60,
            test_per_class: 15,
            size: 64,
            frames: 16,
            fps: 8,
            seed: 0,
            codecs: VIDEO_CODECS.iter().map(|c| c.to_string()).collect(),
        }
    }
}

/// The random streams of held-out clips are apart from the training ones.
const TEST_STREAM: u64 = 1 << 32;

/// The encoders the installed `ffmpeg` lists (`ffmpeg -encoders`).
fn ffmpeg_encoders(ffmpeg: &Path) -> PrepareResult<String> {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-encoders"])
        .output()
        .map_err(|e| DataError::Config {
            key: "ffmpeg".into(),
            reason: format!("cannot run {}: {e}", ffmpeg.display()),
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ffmpeg` arguments and container extension of `codec`, given the
/// encoders the build has (`list`); `None` when it has none for it.
fn encoder_args(
    list: &str,
    codec: &str,
) -> PrepareResult<Option<(Vec<&'static str>, &'static str)>> {
    let has = |name: &str| list.split_whitespace().any(|w| w == name);
    Ok(match codec {
        "h264" if has("libx264") => Some((vec!["-c:v", "libx264", "-threads", "1"], "mp4")),
        "hevc" if has("libx265") => Some((
            vec![
                "-c:v",
                "libx265",
                "-preset",
                "veryfast",
                "-x265-params",
                "log-level=error:pools=none:frame-threads=1",
            ],
            "mkv",
        )),
        "av1" if has("libaom-av1") => Some((
            vec![
                "-c:v",
                "libaom-av1",
                "-cpu-used",
                "8",
                "-crf",
                "35",
                "-b:v",
                "0",
                "-threads",
                "1",
                "-row-mt",
                "0",
            ],
            "mkv",
        )),
        "av1" if has("libsvtav1") => Some((
            vec!["-c:v", "libsvtav1", "-preset", "12", "-crf", "40"],
            "mkv",
        )),
        "h264" | "hevc" | "av1" => None,
        other => {
            return Err(DataError::Config {
                key: "codecs".into(),
                reason: format!("{other:?} is not one of {VIDEO_CODECS:?}"),
            }
            .into());
        }
    })
}

/// Renders the clips into `out/{train,test}/<class>/<i>.{mp4,mkv}`
/// (`size × size`, `frames / fps` seconds, yuv420p), classes
/// [`MOTION_CLASSES`]. In each clip a filled triangle, square, pentagon,
/// hexagon or disc, spinning at its own rate, crosses a still crop of one
/// of `photos` in the class's direction: a slow clip moves it by 25–40 %
/// of the free span, a fast one by 75–95 %, from a random start, so
/// neither position nor one frame tells the class; half the clips hold a
/// still distractor shape. Each clip is encoded with a codec drawn from
/// `codecs`. Held-out clips come from their own random streams and, with
/// two or more photos, from held-out photos (every fourth; the last of
/// fewer than four).
/// Frames are drawn here (PNG) and encoded by `ffmpeg` with one thread and
/// bit-exact flags, so a rerun gives identical files with the same FFmpeg
/// build. Needs the `ffmpeg` program ([`super::PrepareError::MissingTool`]
/// otherwise).
pub fn shapes_video(
    photos: &[PathBuf],
    out: &Path,
    opts: &VideoOptions,
) -> PrepareResult<Prepared> {
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
    if opts.per_class == 0 || opts.test_per_class == 0 {
        return Err(DataError::Config {
            key: "per_class".into(),
            reason: "need at least one training and one held-out clip per class".into(),
        }
        .into());
    }
    let ffmpeg = require_tool("ffmpeg", "ffmpeg")?;
    let list = ffmpeg_encoders(&ffmpeg)?;
    let mut encoders = Vec::new();
    for c in &opts.codecs {
        if let Some(e) = encoder_args(&list, c)? {
            encoders.push(e);
        }
    }
    if encoders.is_empty() {
        return Err(DataError::Config {
            key: "codecs".into(),
            reason: format!("ffmpeg can encode none of {:?}", opts.codecs),
        }
        .into());
    }
    let photos = load_photos(photos)?;
    let (train_photos, test_photos): (Vec<_>, Vec<_>) = if photos.len() >= 2 {
        let n = photos.len();
        let held = |i: usize| i % 4 == 3 || (n < 4 && i == n - 1);
        let (a, b): (Vec<_>, Vec<_>) = photos.into_iter().enumerate().partition(|(i, _)| !held(*i));
        (
            a.into_iter().map(|(_, p)| p).collect(),
            b.into_iter().map(|(_, p)| p).collect(),
        )
    } else {
        (photos.clone(), photos)
    };
    let scratch = out.join(".frames");
    let mut counts = Prepared { train: 0, test: 0 };
    for (class, name) in MOTION_CLASSES.iter().enumerate() {
        let (dir, speed) = name.split_once('_').unwrap_or((name, "slow"));
        for (split, n, stream, pool) in [
            ("train", opts.per_class, class as u64, &train_photos),
            (
                "test",
                opts.test_per_class,
                TEST_STREAM + class as u64,
                &test_photos,
            ),
        ] {
            create_dir(&out.join(split).join(name))?;
            for i in 0..n {
                let mut rng = rng_for(opts.seed, stream, i as u64);
                let s = opts.size as f64;
                let bg = background(pool, &mut rng, opts.size, opts.size);
                let sides = [3usize, 4, 5, 6, 32][rng.random_range(0..5)];
                let r = rng.random_range(s * 0.1..=s * 0.16);
                let rot = rng.random_range(0.0..std::f64::consts::TAU);
                let spin = rng.random_range(-1.5..=1.5);
                let color = PALETTE[rng.random_range(0..PALETTE.len())];
                let span = s - 2.0 * r - 2.0;
                let fraction = if speed == "fast" {
                    rng.random_range(0.75..=0.95)
                } else {
                    rng.random_range(0.25..=0.4)
                };
                let distance = span * fraction;
                let start = r + 1.0 + rng.random_range(0.0..=span - distance);
                let across = rng.random_range(r + 1.0..=s - r - 1.0);
                let distractor = rng.random_bool(0.5).then(|| {
                    let rd = rng.random_range(s * 0.06..=s * 0.1);
                    (
                        rng.random_range(rd..=s - rd),
                        rng.random_range(rd..=s - rd),
                        rd,
                        [3usize, 4, 32][rng.random_range(0..3)],
                        PALETTE[rng.random_range(0..PALETTE.len())],
                    )
                });
                let (args, ext) = &encoders[rng.random_range(0..encoders.len())];
                let _ = std::fs::remove_dir_all(&scratch);
                create_dir(&scratch)?;
                for f in 0..opts.frames {
                    let t = f as f64 / (opts.frames - 1) as f64;
                    let along = start + distance * t;
                    let (cx, cy) = match dir {
                        "right" => (along, across),
                        "left" => (s - along, across),
                        "down" => (across, along),
                        _ => (across, s - along),
                    };
                    let mut frame = bg.clone();
                    if let Some((dx, dy, rd, ds, dc)) = distractor {
                        fill_polygon(&mut frame, &regular_polygon(dx, dy, rd, ds, 0.3), dc);
                    }
                    let pts = regular_polygon(cx, cy, r, sides, rot + spin * t);
                    fill_polygon(&mut frame, &pts, color);
                    let path = scratch.join(format!("{f:04}.png"));
                    frame.save(&path).map_err(|e| DataError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                let clip = out.join(split).join(name).join(format!("{i:04}.{ext}"));
                run_tool(
                    Command::new(&ffmpeg)
                        .args(["-y", "-v", "error", "-framerate"])
                        .arg(opts.fps.to_string())
                        .arg("-i")
                        .arg(scratch.join("%04d.png"))
                        .args(args)
                        .args([
                            "-pix_fmt",
                            "yuv420p",
                            "-map_metadata",
                            "-1",
                            "-fflags",
                            "+bitexact",
                            "-flags:v",
                            "+bitexact",
                        ])
                        .arg(&clip),
                )?;
                counts.count(split == "test");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(counts)
}
