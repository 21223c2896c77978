//! `cargo xtask bench train` (or `cargo bench -p unidl-train --bench train_step`):
//! the trainer's step time against a hand-written Burn loop on the same model
//! and data, and against PyTorch eager on the same CNN when a Python with torch
//! is found (`UNIDL_BENCH_PYTHON`, else the torch venv). Every figure comes
//! from this one run and is printed as a ratio. Not a test: nothing asserts.
//!
//! The back-end is chosen as everywhere else (`UNIDL_BACKEND`, default flex).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Int, Tensor};
use unidl_backend::Device;
use unidl_data::{DatasetParams, Sample, collate_images, construct_dataset, get_sample};
use unidl_train::{
    ImageClassification, OptimizerConfig, OptimizerMethod, Schedule, TrainerConfig,
    construct_trainer,
};

const BATCH: usize = 64;

/// The quick-start CNN without dropout (so every variant does the same work).
#[derive(Module, Debug)]
struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
}

impl Cnn {
    fn new(device: &Device) -> Self {
        Cnn {
            conv1: Conv2dConfig::new([1, 32], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            conv2: Conv2dConfig::new([32, 64], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(64 * 7 * 7, 128).init(device),
            fc2: LinearConfig::new(128, 10).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(x)));
        let x = self.pool.forward(relu(self.conv2.forward(x)));
        self.fc2.forward(relu(self.fc1.forward(x.flatten(1, 3))))
    }
}

impl unidl_train::ImageClassifier for Cnn {
    fn classify(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Milliseconds per step of each variant: after `warmup` steps each, `rounds`
/// rounds in which every variant runs a timed block of `steps`; the median block.
fn time_interleaved(
    rounds: usize,
    steps: usize,
    warmup: usize,
    variants: &mut [Box<dyn FnMut() + '_>],
) -> Vec<f64> {
    for v in variants.iter_mut() {
        for _ in 0..warmup {
            v();
        }
    }
    let mut blocks = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (v, b) in variants.iter_mut().zip(blocks.iter_mut()) {
            let t = Instant::now();
            for _ in 0..steps {
                v();
            }
            b.push(t.elapsed().as_secs_f64() * 1000.0 / steps as f64);
        }
    }
    blocks.into_iter().map(median).collect()
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("UNIDL_BENCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = std::env::var("UNIDL_TORCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/unidl/torch-venv")
        });
    [
        venv.join("bin/python"),
        "/var/cache/unidl/torch-venv/bin/python".into(),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn torch_ms(samples: &[Sample], steps: usize, warmup: usize) -> Option<(f64, String)> {
    let py = python()?;
    let dir = std::env::temp_dir().join(format!("unidl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for s in samples {
        for v in &s.image_input("image")?.data {
            x.extend_from_slice(&v.to_le_bytes());
        }
        y.extend_from_slice(&(s.targets.label? as i64).to_le_bytes());
    }
    std::fs::write(dir.join("x.f32"), x).ok()?;
    std::fs::write(dir.join("y.i64"), y).ok()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/train_step.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(dir.join("x.f32"))
        .arg(dir.join("y.i64"))
        .args([
            samples.len().to_string(),
            steps.to_string(),
            warmup.to_string(),
        ])
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        eprintln!(
            "PyTorch baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        v["ms_per_step"].as_f64()?,
        format!("torch {} on {} threads", v["torch"], v["threads"]),
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, steps, warmup) = if quick { (3, 5, 2) } else { (9, 10, 5) };
    let rt = unidl_backend::select(None, None)?;
    let device = rt.device.clone();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist/train");
    let ds = construct_dataset(&fixture, &DatasetParams::default())?;
    let samples: Vec<Sample> = (0..BATCH)
        .map(|i| get_sample(&ds, i * ds.len() / BATCH))
        .collect::<Result<_, _>>()?;
    println!(
        "bench train: CNN 1x28x28 -> 10, batch {BATCH}, Adam, back-end {}, {} threads available",
        rt.spec,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Hand-written Burn loop on a batch collated once.
    let ad = device.clone().autodiff();
    unidl_backend::seed(&ad, 0);
    let mut model1 = Cnn::new(&ad);
    let mut opt1 = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let b = collate_images(&samples, &ad)?;
    let x: Tensor<4> = b.images.into_burn()?;
    let y: Tensor<1, Int> = b.labels.ok_or("labels")?.into_burn()?;
    let raw_step = || {
        let loss = loss_fn.forward(model1.forward(x.clone()), y.clone());
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model1);
        model1 = opt1.step(1e-3, model1.clone(), grads);
    };

    // 2. The same loop collating the samples each step (the trainer's data path).
    unidl_backend::seed(&ad, 0);
    let mut model2 = Cnn::new(&ad);
    let mut opt2 = AdamConfig::new().init();
    let collate_step = || {
        let b = collate_images(&samples, &ad).expect("collate");
        let x: Tensor<4> = b.images.into_burn().expect("images");
        let y: Tensor<1, Int> = b.labels.expect("labels").into_burn().expect("labels");
        let loss = loss_fn.forward(model2.forward(x), y);
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model2);
        model2 = opt2.step(1e-3, model2.clone(), grads);
    };

    // 3. unidl's trainer: train_one_batch (collate, forward, loss, NaN guard, backward,
    //    gradient and parameter checks, update, schedule).
    unidl_backend::seed(&ad, 0);
    let out = std::env::temp_dir().join(format!("unidl-bench-run-{}", std::process::id()));
    let mut trainer = construct_trainer(
        Cnn::new(&ad),
        &OptimizerConfig::new(OptimizerMethod::Adam, 1e-3),
        Schedule::Constant,
        ImageClassification::default(),
        TrainerConfig::new(1, BATCH, &out),
        ds.clone(),
        None,
        &device,
    )?;
    let trainer_step = || {
        trainer.train_one_batch(&samples).expect("train_one_batch");
    };
    // The variants take turns block by block, so drift in the machine's load
    // affects all of them alike.
    let mut variants: Vec<Box<dyn FnMut() + '_>> = vec![
        Box::new(raw_step),
        Box::new(collate_step),
        Box::new(trainer_step),
    ];
    let t = time_interleaved(rounds, steps, warmup, &mut variants);
    drop(variants);
    let (raw, raw_collate, unidl) = (t[0], t[1], t[2]);
    let _ = std::fs::remove_dir_all(&out);

    println!("{:<44} {:>10}", "variant", "ms/step");
    println!("{:<44} {raw:>10.2}", "raw Burn loop, batch collated once");
    println!(
        "{:<44} {raw_collate:>10.2}",
        "raw Burn loop, collating every step"
    );
    println!("{:<44} {unidl:>10.2}", "unidl Trainer::train_one_batch");
    println!(
        "trainer overhead over the raw loop with the same data path: {:+.1}%",
        (unidl / raw_collate - 1.0) * 100.0
    );
    match torch_ms(&samples, steps * rounds, warmup) {
        Some((t, what)) => {
            println!("{:<44} {t:>10.2}", format!("PyTorch eager ({what})"));
            println!(
                "ratio raw Burn / PyTorch: {:.2}x; unidl trainer / PyTorch: {:.2}x",
                raw / t,
                unidl / t
            );
        }
        None => println!("PyTorch baseline: no Python with torch found (set UNIDL_BENCH_PYTHON)"),
    }
    Ok(())
}
