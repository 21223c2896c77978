//! `cargo xtask bench data` (or `cargo bench -p unidl-data --bench loader`):
//! images per second through `construct_dataset` + `DataLoader` +
//! `collate_images` for JPEG decode, random resized crop to 224, horizontal
//! flip and normalize, batch 64, with 1 and 2 workers; beside it the same
//! pipeline in torchvision's `DataLoader` on the same files when a Python with
//! torch and torchvision is found (`UNIDL_BENCH_PYTHON`, else the torch venv
//! of `UNIDL_TORCH_VENV`), with ratios from this one run. A per-stage timing
//! of one thread says where the time goes. Not a test: nothing asserts.
//!
//! Data: 256 JPEGs (quality 90, 320×240 to 640×480) cut deterministically
//! from 3×2 mosaics of the real photos committed in
//! `tests/fixtures/shapes_coco/images` (256×256 each, so nothing is upscaled),
//! written to a temporary folder in the image-folder layout (2 classes), or
//! to `UNIDL_BENCH_DATA_DIR`, which is then kept.

mod common;

use common::{median, torch_baseline};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::{GenericImageView, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unidl_data::dataset::DatasetFormat;
use unidl_data::transform::{Registry, rng_for};
use unidl_data::{
    DataLoader, DatasetParams, LoaderConfig, SamplerConfig, TransformConfig, collate_images,
    construct_dataset, construct_sampler, parse::decode_image,
};

const BATCH: usize = 64;
const IMAGES: usize = 256;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

type Error = Box<dyn std::error::Error>;

/// Writes the benchmark JPEGs under `root/c0`, `root/c1`; returns their paths.
fn make_images(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let photos_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/shapes_coco/images");
    let mut photos = Vec::new();
    for split in ["train", "test"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(photos_dir.join(split))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for p in names {
            photos.push(image::open(&p)?.to_rgb8());
        }
    }
    if photos.is_empty() {
        return Err(format!("no photos under {}", photos_dir.display()).into());
    }
    let (tile_w, tile_h) = photos[0].dimensions();
    let mut paths = Vec::with_capacity(IMAGES);
    for i in 0..IMAGES {
        let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
        let mut mosaic = RgbImage::new(3 * tile_w, 2 * tile_h);
        for ty in 0..2 {
            for tx in 0..3 {
                let p = &photos[rng.random_range(0..photos.len())];
                image::imageops::replace(
                    &mut mosaic,
                    p,
                    i64::from(tx * tile_w),
                    i64::from(ty * tile_h),
                );
            }
        }
        let w = rng.random_range(320..=640u32).min(mosaic.width());
        let h = rng.random_range(240..=480u32).min(mosaic.height());
        let x0 = rng.random_range(0..=mosaic.width() - w);
        let y0 = rng.random_range(0..=mosaic.height() - h);
        let crop = mosaic.view(x0, y0, w, h).to_image();
        let dir = root.join(format!("c{}", i % 2));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{i:04}.jpg"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        JpegEncoder::new_with_quality(&mut file, 90).encode_image(&crop)?;
        paths.push(path);
    }
    Ok(paths)
}

fn transforms() -> Vec<TransformConfig> {
    vec![
        TransformConfig::RandomResizedCrop {
            size: [224, 224],
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        },
        TransformConfig::RandomHorizontalFlip {
            p: 0.5,
            flip_pairs: Vec::new(),
        },
        TransformConfig::Normalize {
            mean: MEAN.to_vec(),
            std: STD.to_vec(),
        },
    ]
}

/// Images per second of whole epochs through the loader and collation (the
/// median of `rounds` epochs after one warm-up epoch).
fn loader_rate(
    root: &Path,
    workers: usize,
    rounds: usize,
    device: &unidl_backend::Device,
) -> Result<f64, Error> {
    let params = DatasetParams {
        format: Some(DatasetFormat::ImageFolder),
        channels: Some(3),
        transforms: transforms(),
        seed: 0,
        ..DatasetParams::default()
    };
    let ds = construct_dataset(root, &params)?;
    let mut rates = Vec::new();
    for round in 0..=rounds {
        let mut cfg = SamplerConfig::new(BATCH);
        cfg.shuffle = true;
        cfg.seed = round as u64;
        let sampler = construct_sampler(&cfg, &ds)?;
        let t = Instant::now();
        let mut n = 0;
        for batch in DataLoader::new(
            ds.clone(),
            sampler,
            LoaderConfig {
                workers,
                prefetch: 2,
            },
        )? {
            let b = collate_images(&batch?.samples, device)?;
            n += b.images.shape()[0];
        }
        if round > 0 {
            rates.push(n as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(median(rates))
}

/// Milliseconds per image of each stage, on one thread.
fn stages(paths: &[PathBuf], device: &unidl_backend::Device) -> Result<Vec<(String, f64)>, Error> {
    let registry = Registry::new();
    let built: Vec<_> = transforms()
        .iter()
        .map(|t| t.build(&registry))
        .collect::<Result<_, _>>()?;
    let names = [
        "random_resized_crop 224",
        "horizontal_flip (p=0.5)",
        "normalize",
    ];
    let mut times = vec![0.0f64; 4 + built.len()];
    let mut samples = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        let t = Instant::now();
        let bytes = std::fs::read(p)?;
        times[0] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let decoded = image::load_from_memory(&bytes)?;
        times[1] += t.elapsed().as_secs_f64();
        drop(decoded);
        let t = Instant::now();
        let img = decode_image(&bytes, Some(3))?;
        times[2] += t.elapsed().as_secs_f64();
        let mut s = unidl_data::Sample::image(img, Some(i % 2), p.display().to_string());
        let mut rng = rng_for(0, 0, i as u64);
        for (k, tf) in built.iter().enumerate() {
            let t = Instant::now();
            s = tf.apply(s, &mut rng)?;
            times[3 + k] += t.elapsed().as_secs_f64();
        }
        samples.push(s);
    }
    let t = Instant::now();
    for chunk in samples.chunks(BATCH) {
        collate_images(chunk, device)?;
    }
    times[3 + built.len()] += t.elapsed().as_secs_f64();
    // decode_image includes the decode: report its conversion part on its own
    times[2] -= times[1];
    let mut labels = vec![
        "read file".to_string(),
        "JPEG decode (image crate)".to_string(),
        "u8 -> f32 image".to_string(),
    ];
    labels.extend(names.iter().map(|s| s.to_string()));
    labels.push("collate_images (batch 64)".to_string());
    let n = paths.len() as f64;
    Ok(labels
        .into_iter()
        .zip(times)
        .map(|(l, t)| (l, t * 1000.0 / n))
        .collect())
}

/// torchvision's rates by `num_workers`, and a description of the versions.
fn torch_rates(root: &Path, rounds: usize) -> Option<(Vec<(usize, f64)>, String)> {
    let args = [
        root.display().to_string(),
        BATCH.to_string(),
        rounds.to_string(),
        "0,1,2".to_string(),
    ];
    let (rates, v) = torch_baseline("loader.py", &args, "images_per_s")?;
    Some((
        rates,
        format!(
            "torch {}, torchvision {}, Pillow {}, {} intra-op thread(s) in-process",
            v["torch"], v["torchvision"], v["pillow"], v["threads"]
        ),
    ))
}

fn main() -> Result<(), Error> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 3 };
    let rt = unidl_backend::select(None, None)?;
    // UNIDL_BENCH_DATA_DIR keeps the images there (to rerun benches/loader.py by hand)
    let keep = std::env::var_os("UNIDL_BENCH_DATA_DIR").map(PathBuf::from);
    let root = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("unidl-bench-loader-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&root);
    let paths = make_images(&root)?;
    let bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()))
        .sum::<Result<_, _>>()?;
    println!(
        "bench data: {IMAGES} JPEGs ({:.1} MiB, 320x240..640x480 cut from the shapes_coco photos) -> \
         random_resized_crop 224 + horizontal flip + normalize + collate, batch {BATCH}, \
         back-end {}, {} threads available, {rounds} timed epoch(s) after 1 warm-up",
        bytes as f64 / (1024.0 * 1024.0),
        rt.spec,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    println!("\nstages on one thread (ms per image):");
    let st = stages(&paths, &rt.device)?;
    let total: f64 = st.iter().map(|s| s.1).sum();
    for (name, ms) in &st {
        println!("  {name:<32} {ms:>8.3}  {:>5.1}%", 100.0 * ms / total);
    }
    println!("  {:<32} {total:>8.3}", "sum");

    let mut ours = Vec::new();
    for workers in [1, 2] {
        ours.push((workers, loader_rate(&root, workers, rounds, &rt.device)?));
    }
    println!("\n{:<52} {:>10}", "variant", "images/s");
    for (w, r) in &ours {
        println!(
            "{:<52} {r:>10.1}",
            format!("unidl DataLoader, {w} worker(s)")
        );
    }
    match torch_rates(&root, rounds) {
        Some((theirs, what)) => {
            for (w, r) in &theirs {
                let how = if *w == 0 { " (in-process)" } else { "" };
                println!(
                    "{:<52} {r:>10.1}",
                    format!("torchvision DataLoader, num_workers={w}{how}")
                );
            }
            println!("({what})");
            let rate = |w: usize| theirs.iter().find(|t| t.0 == w).map(|t| t.1);
            for (w, r) in &ours {
                let pairs: Vec<String> = (if *w == 1 { vec![0, 1] } else { vec![*w] })
                    .into_iter()
                    .filter_map(|tw| rate(tw).map(|t| format!("{:.2}x vs num_workers={tw}", r / t)))
                    .collect();
                println!(
                    "ratio unidl {w} worker(s) / torchvision: {}",
                    pairs.join(", ")
                );
            }
        }
        None => println!(
            "torchvision baseline: no Python with torch and torchvision found (set UNIDL_BENCH_PYTHON or UNIDL_TORCH_VENV)"
        ),
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}
