//! `cargo xtask bench video` (or `cargo bench -p unidl-data --bench
//! video_loader --features ffmpeg`): clips per second through
//! `construct_dataset` (`video_folder`: FFmpeg decoding, 16 frames sampled
//! uniformly, resized to 64×64) + normalize + `DataLoader` with collation into
//! one `[B, C, T, H, W]` tensor, batch 16, with 1 and 2 workers; beside it
//! torchvision's `read_video`-based pipeline (PyAV decoding, the same
//! uniform indices, resize, normalize, `DataLoader`) on the same files when a
//! Python with torch, torchvision and PyAV is found (`UNIDL_BENCH_PYTHON`,
//! else the torch venv), with ratios from this one run. Not a test: nothing
//! asserts.
//!
//! Data: 96 clips of `unidl data shapes-video` (H.264, HEVC and AV1 drawn per
//! clip; 16 frames of 64×64 at 8 fps) rendered on the photos committed in
//! `tests/fixtures/shapes_coco/images`, into a temporary folder or
//! `UNIDL_BENCH_DATA_DIR` (then kept).

mod common;

use common::{median, torch_baseline};
use std::path::{Path, PathBuf};
use std::time::Instant;

use unidl_data::dataset::DatasetFormat;
use unidl_data::prepare::{VideoOptions, shapes_video};
use unidl_data::{
    DataLoader, DatasetParams, LoaderConfig, SamplerConfig, TransformConfig, construct_dataset,
    construct_sampler, stack_clips,
};

const BATCH: usize = 16;
const FRAMES: usize = 16;
const MEAN: [f32; 3] = [0.43216, 0.394666, 0.37645];
const STD: [f32; 3] = [0.22803, 0.22145, 0.216989];

type Error = Box<dyn std::error::Error>;

fn photos() -> Result<Vec<PathBuf>, Error> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/shapes_coco/images");
    let mut out = Vec::new();
    for split in ["train", "test"] {
        for e in std::fs::read_dir(dir.join(split))? {
            out.push(e?.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Clips per second of whole epochs (the median of `rounds` after a warm-up).
fn loader_rate(
    root: &Path,
    workers: usize,
    rounds: usize,
    device: &unidl_backend::Device,
) -> Result<f64, Error> {
    let params = DatasetParams {
        format: Some(DatasetFormat::VideoFolder),
        frames: Some(FRAMES),
        frame_size: Some([64, 64]),
        transforms: vec![TransformConfig::Normalize {
            mean: MEAN.to_vec(),
            std: STD.to_vec(),
        }],
        ..DatasetParams::default()
    };
    let ds = construct_dataset(root, &params)?;
    let mut rates = Vec::new();
    for round in 0..=rounds {
        let mut cfg = SamplerConfig::new(BATCH);
        cfg.shuffle = true;
        cfg.seed = round as u64;
        let sampler = construct_sampler(&cfg, &ds)?;
        let dev = device.clone();
        let t = Instant::now();
        let mut n = 0;
        let loader = DataLoader::with_collate(
            ds.clone(),
            sampler,
            LoaderConfig {
                workers,
                prefetch: 2,
            },
            move |samples, _| stack_clips(&samples, "video", &dev),
        )?;
        for batch in loader {
            n += batch?.batch.shape()[0];
        }
        if round > 0 {
            rates.push(n as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(median(rates))
}

/// torchvision's rates by `num_workers`, and the versions.
fn torch_rates(root: &Path, rounds: usize) -> Option<(Vec<(usize, f64)>, String)> {
    let args = [
        root.display().to_string(),
        BATCH.to_string(),
        FRAMES.to_string(),
        rounds.to_string(),
        "1,2".to_string(),
    ];
    let (rates, v) = torch_baseline("video_loader.py", &args, "clips_per_s")?;
    Some((
        rates,
        format!(
            "torch {}, torchvision {}, PyAV {}, {} intra-op thread(s)",
            v["torch"], v["torchvision"], v["av"], v["threads"]
        ),
    ))
}

fn main() -> Result<(), Error> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 3 };
    let rt = unidl_backend::select(None, None)?;
    let keep = std::env::var_os("UNIDL_BENCH_DATA_DIR").map(PathBuf::from);
    let root = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("unidl-bench-video-{}", std::process::id()))
    });
    if !root.join("train").is_dir() {
        shapes_video(
            &photos()?,
            &root,
            &VideoOptions {
                per_class: 12,
                test_per_class: 1,
                ..VideoOptions::default()
            },
        )?;
    }
    let train = root.join("train");
    println!(
        "bench data: 96 shapes-video clips (H.264/HEVC/AV1, 16 frames of 64x64) -> {FRAMES} \
         uniform frames, resize 64x64, normalize, collate [B, C, T, H, W], batch {BATCH}, \
         back-end {}, {} threads available, {rounds} timed epoch(s) after 1 warm-up",
        rt.spec,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut ours = Vec::new();
    for workers in [1, 2] {
        ours.push((workers, loader_rate(&train, workers, rounds, &rt.device)?));
    }
    println!("\n{:<52} {:>10}", "variant", "clips/s");
    for (w, r) in &ours {
        println!(
            "{:<52} {r:>10.1}",
            format!("unidl DataLoader, {w} worker(s)")
        );
    }
    match torch_rates(&train, rounds) {
        Some((theirs, what)) => {
            for (w, r) in &theirs {
                println!(
                    "{:<52} {r:>10.1}",
                    format!("torchvision read_video DataLoader, num_workers={w}")
                );
            }
            println!("({what})");
            for (w, r) in &ours {
                if let Some(t) = theirs.iter().find(|t| t.0 == *w) {
                    println!(
                        "ratio unidl / torchvision at {w} worker(s): {:.2}x",
                        r / t.1
                    );
                }
            }
        }
        None => println!(
            "torchvision baseline: no Python with torch, torchvision and PyAV found (set UNIDL_BENCH_PYTHON or UNIDL_TORCH_VENV)"
        ),
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}
