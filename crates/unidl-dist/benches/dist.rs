//! `cargo xtask bench dist [--quick]`: data-parallel scaling on this host.
//! For the quick-start CNN (batch 32×1×28×28 per rank) and ResNet-18
//! (small-image stem, batch 32×3×32×32 per rank, 46 MB of gradients per
//! step), trained with Adam through the trainer's own path (backward,
//! bucketed gradient all-reduce, update) on 1, 2 and 4 ranks launched by
//! `mpirun`, one thread per rank (`RAYON_NUM_THREADS=1`): step time,
//! samples per second over all ranks, the share of each step spent in the
//! all-reduce (waiting for the slowest rank included), and the speed-up
//! over one rank. Prints figures; asserts nothing.

use std::sync::Arc;
use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_dist::Collective;
use unidl_train::{
    OptimizerConfig, OptimizerMethod, construct_optimizer, update_learnable_parameter,
};
use unidl_vision::classification::{ResNetConfig, SimpleCnnConfig};

/// One rank's measurement; rank 0 prints `RESULT model ranks step_ms comm_ms`.
fn rank_main(model: &str, steps: usize) -> Result<(), Box<dyn std::error::Error>> {
    let group: Option<Arc<dyn Collective>> = unidl_dist::init_from_env()?;
    let device = Device::flex().autodiff();
    unidl_backend::seed(&device, 0);
    let (c, side) = if model == "cnn" { (1, 28) } else { (3, 32) };
    let batch = 32;
    let rank = group.as_ref().map_or(0, |g| g.rank());
    let xv: Vec<f32> = (0..batch * c * side * side)
        .map(|i| ((i * 7919 + rank * 104_729) % 1000) as f32 / 1000.0)
        .collect();
    let yv: Vec<i64> = (0..batch as i64).map(|i| (i + rank as i64) % 10).collect();
    let x = Tensor::<4>::from_data(TensorData::new(xv, [batch, c, side, side]), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(yv, [batch]), &device);
    let ce = CrossEntropyLossConfig::new().init(&device);
    let opt_cfg = OptimizerConfig::new(OptimizerMethod::Adam, 1e-3);
    macro_rules! run {
        ($m:expr, $fwd:expr) => {{
            let mut m = $m;
            let mut opt = construct_optimizer(&m, &opt_cfg)?;
            let (mut total, mut comm) = (0.0f64, 0.0f64);
            for step in 0..steps + 2 {
                let t0 = Instant::now();
                let loss = ce.forward($fwd(&m, x.clone()), y.clone());
                let loss = unidl_tensor::Tensor::from_burn(loss)?;
                opt.backward(&loss, &m)?;
                let t1 = Instant::now();
                if let Some(g) = &group {
                    opt.average_gradients(&m, g.as_ref())?;
                }
                let c = t1.elapsed().as_secs_f64();
                m = update_learnable_parameter(m, &mut opt)?;
                if step >= 2 {
                    total += t0.elapsed().as_secs_f64();
                    comm += c;
                }
            }
            (total / steps as f64, comm / steps as f64)
        }};
    }
    let (step_s, comm_s) = if model == "cnn" {
        run!(
            SimpleCnnConfig {
                in_channels: 1,
                num_classes: 10,
                image_size: 28,
                dropout: 0.25,
            }
            .init(&device)?,
            |m: &unidl_vision::classification::SimpleCnn, x| m.forward(x)
        )
    } else {
        run!(
            ResNetConfig::new(18)
                .with_num_classes(10)
                .with_small_input(true)
                .init(&device)?,
            |m: &unidl_vision::classification::ResNet, x| m.forward(x)
        )
    };
    let world = group.as_ref().map_or(1, |g| g.world_size());
    if rank == 0 {
        println!(
            "RESULT {model} {world} {:.3} {:.3}",
            step_s * 1e3,
            comm_s * 1e3
        );
    }
    unidl_dist::finalize();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--rank") {
        let model = args.get(i + 1).cloned().unwrap_or_default();
        let steps = args.get(i + 2).and_then(|s| s.parse().ok()).unwrap_or(10);
        return rank_main(&model, steps);
    }
    if let Err(e) = unidl_dist::mpirun_available() {
        println!("bench dist: skipped: {e}");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let me = std::env::current_exe()?;
    println!(
        "bench dist: data-parallel training steps on this host (flex, one thread per rank, Adam, \
         batch 32 per rank; mpirun --oversubscribe)"
    );
    println!(
        "{:<34} {:>5} {:>10} {:>12} {:>10} {:>9}",
        "work", "ranks", "step ms", "samples/s", "comm share", "speed-up"
    );
    for (model, label, steps) in [
        (
            "cnn",
            "quick-start CNN (1x28x28)",
            if quick { 10 } else { 40 },
        ),
        (
            "resnet18",
            "ResNet-18 small stem (3x32x32)",
            if quick { 3 } else { 8 },
        ),
    ] {
        let mut base = None;
        for ranks in [1usize, 2, 4] {
            let mut cmd = unidl_dist::mpirun_command(
                ranks,
                &me,
                &["--rank".into(), model.into(), steps.to_string()],
                &["-x".into(), "RAYON_NUM_THREADS".into()],
            );
            cmd.env("RAYON_NUM_THREADS", "1");
            let out = cmd.output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let Some(line) = text.lines().find(|l| l.starts_with("RESULT ")) else {
                println!(
                    "{label:<34} {ranks:>5}   failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
                continue;
            };
            let f: Vec<f64> = line
                .split_whitespace()
                .skip(3)
                .filter_map(|v| v.parse().ok())
                .collect();
            let (step_ms, comm_ms) = (f[0], f[1]);
            let samples = ranks as f64 * 32.0 / (step_ms / 1e3);
            let b = *base.get_or_insert(samples);
            println!(
                "{label:<34} {ranks:>5} {step_ms:>10.1} {samples:>12.1} {:>9.1}% {:>8.2}x",
                100.0 * comm_ms / step_ms,
                samples / b
            );
        }
    }
    Ok(())
}
