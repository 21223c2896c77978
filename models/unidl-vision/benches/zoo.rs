//! `cargo xtask bench zoo` (or `cargo bench -p unidl-vision --bench zoo`):
//! ResNet-18 training step (small-image stem, batch 32×3×32×32, Adam),
//! ResNet-50 inference (batch 8×3×224×224, eval mode), Faster R-CNN
//! ResNet-50-FPN inference (one 3×480×640 image, torchvision's transform to
//! 800×1067, 91 classes) and a YOLOv8n training step (batch 8×3×320×320,
//! 80 classes, 3 boxes per image, Adam) on the selected back-end
//! (`UNIDL_BACKEND`, default flex), against PyTorch eager with torchvision
//! (ultralytics for YOLOv8) on the same input bytes in the same run
//! (`benches/zoo.py`, Python from `UNIDL_BENCH_PYTHON` or the torch venv
//! `UNIDL_TORCH_VENV`). Figures are printed with their ratios. Not a test:
//! nothing asserts.
//!
//! Flags: `--quick` (fewer rounds), `--only train|infer|frcnn|yolo` (one
//! workload, e.g. under a profiler), `--no-baseline` (skip PyTorch).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_train::ObjectTargets;
use unidl_vision::classification::ResNetConfig;
use unidl_vision::detection::{FasterRcnnConfig, YoloV8Config};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Milliseconds per step: the median of `rounds` timed blocks of `steps` after `warmup`.
fn time(rounds: usize, steps: usize, warmup: usize, mut step: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        step();
    }
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..steps {
                    step();
                }
                t.elapsed().as_secs_f64() * 1000.0 / steps as f64
            })
            .collect(),
    )
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

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Runs `zoo.py` on files in a temporary folder; returns (ms, description).
fn torch_ms(mode: &str, files: &[(&str, Vec<u8>)], args: &[usize]) -> Option<(f64, String)> {
    let py = python()?;
    let dir = std::env::temp_dir().join(format!("unidl-bench-zoo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let mut cmd = std::process::Command::new(py);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/zoo.py"))
        .arg(mode);
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).ok()?;
        cmd.arg(dir.join(name));
    }
    cmd.args(args.iter().map(|a| a.to_string()));
    let out = cmd.output().ok()?;
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

fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn report(what: &str, unidl: f64, torch: Option<(f64, String)>) {
    println!("{:<52} {unidl:>10.1} ms", format!("{what}: unidl"));
    match torch {
        Some((t, desc)) => {
            println!(
                "{:<52} {t:>10.1} ms",
                format!("{what}: PyTorch eager ({desc})")
            );
            println!("{what}: ratio unidl / PyTorch = {:.2}x", unidl / t);
        }
        None => println!(
            "{what}: PyTorch baseline not run (--no-baseline, or no Python with torch and torchvision: set UNIDL_BENCH_PYTHON)"
        ),
    }
}

/// How each workload is timed, and whether PyTorch runs beside it.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    steps: usize,
    warmup: usize,
    baseline: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let baseline = !args.iter().any(|a| a == "--no-baseline");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| args.get(i + 1).map(String::as_str).unwrap_or(""));
    const WORKLOADS: [&str; 4] = ["train", "infer", "frcnn", "yolo"];
    if let Some(o) = only
        && !WORKLOADS.contains(&o)
    {
        return Err(format!("--only expects one of train, infer, frcnn, yolo; got `{o}`").into());
    }
    let runs = |w: &str| only.is_none_or(|o| o == w);
    let (rounds, steps, warmup) = if quick { (3, 2, 1) } else { (5, 5, 2) };
    let plan = Plan {
        rounds,
        steps,
        warmup,
        baseline,
    };
    let rt = unidl_backend::select(None, None)?;
    let device: Device = rt.device.clone();
    println!(
        "bench zoo: back-end {}, {} threads available{}",
        rt.spec,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if quick { ", --quick" } else { "" }
    );

    if runs("train") {
        train_bench(&device, plan)?;
    }
    if runs("infer") {
        infer_bench(&device, plan)?;
    }
    // a detection step takes seconds on flex: fewer repetitions
    let slow = Plan {
        rounds: plan.rounds.min(3),
        steps: if quick { 1 } else { 2 },
        warmup: 1,
        baseline,
    };
    if runs("frcnn") {
        faster_rcnn_bench(&device, slow)?;
    }
    if runs("yolo") {
        yolo_bench(&device, slow)?;
    }
    Ok(())
}

/// ResNet-18 (small-image stem, 10 classes) training step, batch 32×3×32×32, Adam.
fn train_bench(device: &Device, plan: Plan) -> Result<(), Box<dyn std::error::Error>> {
    let Plan {
        rounds,
        steps,
        warmup,
        baseline,
    } = plan;
    let ad = device.clone().autodiff();
    unidl_backend::seed(&ad, 0);
    let xv = values(32 * 3 * 32 * 32, 1);
    let yv: Vec<i64> = (0..32).map(|i| i % 10).collect();
    let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [32, 3, 32, 32]), &ad);
    let y = Tensor::<1, Int>::from_data(TensorData::new(yv.clone(), [32]), &ad);
    let mut model = ResNetConfig::new(18)
        .with_num_classes(10)
        .with_small_input(true)
        .init(&ad)?;
    let mut opt = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let train = time(rounds, steps, warmup, || {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(1e-3, model.clone(), grads);
    });
    let ybytes: Vec<u8> = yv.iter().flat_map(|v| v.to_le_bytes()).collect();
    report(
        "ResNet-18 train step, batch 32x3x32x32",
        train,
        baseline
            .then(|| {
                torch_ms(
                    "train",
                    &[("x.f32", bytes_f32(&xv)), ("y.i64", ybytes)],
                    &[rounds * steps, warmup],
                )
            })
            .flatten(),
    );
    Ok(())
}

/// ResNet-50 inference, batch 8×3×224×224, eval mode, no autodiff.
fn infer_bench(device: &Device, plan: Plan) -> Result<(), Box<dyn std::error::Error>> {
    let Plan {
        rounds,
        steps,
        warmup,
        baseline,
    } = plan;
    unidl_backend::seed(device, 0);
    let xv = values(8 * 3 * 224 * 224, 2);
    let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [8, 3, 224, 224]), device);
    let model = ResNetConfig::new(50).init(device)?.valid();
    let infer = time(rounds, steps, warmup, || {
        let _ = model.forward(x.clone()).sum().into_scalar::<f32>();
    });
    report(
        "ResNet-50 inference, batch 8x3x224x224",
        infer,
        baseline
            .then(|| {
                torch_ms(
                    "infer",
                    &[("x.f32", bytes_f32(&xv))],
                    &[rounds * steps, warmup],
                )
            })
            .flatten(),
    );
    Ok(())
}

/// Faster R-CNN ResNet-50-FPN inference (torchvision's standard config, 91
/// classes, random weights), one 3×480×640 image resized to 800×1067:
/// transform, backbone, RPN, RoI heads and post-processing.
fn faster_rcnn_bench(device: &Device, plan: Plan) -> Result<(), Box<dyn std::error::Error>> {
    let Plan {
        rounds,
        steps,
        warmup,
        baseline,
    } = plan;
    unidl_backend::seed(device, 0);
    let xv: Vec<f32> = values(3 * 480 * 640, 3)
        .into_iter()
        .map(|v| v * 0.5 + 0.5)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [1, 3, 480, 640]), device);
    let model = FasterRcnnConfig::new(91).init(device)?.valid();
    let infer = time(rounds, steps, warmup, || {
        let _ = model.predict(x.clone()).expect("Faster R-CNN inference");
    });
    report(
        "Faster R-CNN R50-FPN inference, 1x3x480x640",
        infer,
        baseline
            .then(|| {
                torch_ms(
                    "frcnn",
                    &[("x.f32", bytes_f32(&xv))],
                    &[rounds * steps, warmup],
                )
            })
            .flatten(),
    );
    Ok(())
}

/// The boxes of the YOLOv8 benchmark: three per image, in pixels of a
/// 320×320 input, classes 0..80 (also written for `zoo.py`).
fn yolo_targets() -> Vec<[f32; 5]> {
    (0..8)
        .flat_map(|i| {
            (0..3).map(move |k| {
                let x0 = (20 + 37 * i + 61 * k) % 200;
                let y0 = (30 + 53 * k + 17 * i) % 200;
                let side = 24 + (i * 13 + k * 29) % 90;
                [
                    x0 as f32,
                    y0 as f32,
                    (x0 + side) as f32,
                    (y0 + side * 3 / 4) as f32,
                    ((i * 7 + k * 11) % 80) as f32,
                ]
            })
        })
        .collect()
}

/// YOLOv8n training step: batch 8×3×320×320, 80 classes, three boxes per
/// image, ultralytics' loss (task-aligned assignment, CIoU, DFL, BCE), Adam.
fn yolo_bench(device: &Device, plan: Plan) -> Result<(), Box<dyn std::error::Error>> {
    let Plan {
        rounds,
        steps,
        warmup,
        baseline,
    } = plan;
    let ad = device.clone().autodiff();
    unidl_backend::seed(&ad, 0);
    let xv: Vec<f32> = values(8 * 3 * 320 * 320, 4)
        .into_iter()
        .map(|v| v * 0.5 + 0.5)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [8, 3, 320, 320]), &ad);
    let boxes = yolo_targets();
    let targets: Vec<ObjectTargets> = (0..8)
        .map(|i| ObjectTargets {
            boxes: boxes[i * 3..i * 3 + 3]
                .iter()
                .map(|b| [b[0], b[1], b[2], b[3]])
                .collect(),
            classes: boxes[i * 3..i * 3 + 3]
                .iter()
                .map(|b| b[4] as usize)
                .collect(),
            masks: vec![],
            size: [320, 320],
        })
        .collect();
    let mut model = YoloV8Config::new("n", 80).init(&ad)?.train();
    let mut opt = AdamConfig::new().init();
    let train = time(rounds, steps, warmup, || {
        let l = model
            .forward_losses(x.clone(), &targets)
            .expect("YOLOv8 losses");
        let loss = l.box_loss + l.cls + l.dfl;
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(1e-3, model.clone(), grads);
    });
    let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
    report(
        "YOLOv8n train step, batch 8x3x320x320",
        train,
        baseline
            .then(|| {
                torch_ms(
                    "yolo",
                    &[("x.f32", bytes_f32(&xv)), ("boxes.f32", bytes_f32(&flat))],
                    &[rounds * steps, warmup],
                )
            })
            .flatten(),
    );
    Ok(())
}
