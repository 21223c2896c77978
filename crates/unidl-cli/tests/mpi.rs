//! `mpirun -np 2 unidl train` (built with the `mpi` feature, run by `cargo
//! xtask test` when Open MPI is installed): data-parallel training equals one
//! process with twice the batch, only rank 0 prints and writes, and a resumed
//! run continues bit-exactly.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// 320 real MNIST digits (32 per class) from the committed slice: 10 steps
/// of 32 (or of 2 × 16) per epoch, no short last batch.
fn digits(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist/train");
    let out = dir.join("digits");
    for class in 0..10 {
        let from = src.join(class.to_string());
        let to = out.join(class.to_string());
        std::fs::create_dir_all(&to).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&from)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 32, "{}", from.display());
        for f in &files[..32] {
            std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    out
}

/// A run config: the quick-start CNN without dropout (dropout masks are
/// drawn per rank), momentum SGD, `epochs` epochs of `batch` per process.
fn config(dir: &Path, name: &str, digits: &Path, batch: usize, epochs: usize) -> PathBuf {
    let text = format!(
        r#"seed = 7
[model]
name = "simple_cnn"
num_classes = 10
dropout = 0.0
[data]
train = "{train}"
channels = 1
transforms = [{{ type = "normalize", mean = [0.1307], std = [0.3081] }}]
[optimizer]
optimizer_method = "momentum"
base_learningrate = 0.01
[trainer]
epochs = {epochs}
batch_size = {batch}
output_dir = "{name}"
workers = 1
progress = false
"#,
        train = digits.display(),
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn run(mut cmd: Command) -> String {
    let out = cmd.env_remove("UNIDL_BACKEND").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

fn unidl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_unidl"))
}

fn train(config: &Path, procs: usize, resume: bool) -> String {
    let mut args = vec![
        "train".to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    if resume {
        args.push("--resume".into());
    }
    if procs == 1 {
        let mut c = Command::new(unidl());
        c.args(&args);
        run(c)
    } else {
        run(unidl_env::mpirun_command(procs, &unidl(), &args, &[]))
    }
}

/// The float tensors of the newest checkpoint under `run`, by name.
fn weights(run: &Path) -> Vec<(String, Vec<f32>)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("step-")
        })
        .collect();
    dirs.sort();
    let bytes = std::fs::read(dirs.last().unwrap().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            let f = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (k, f)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn mpirun_two_ranks_equal_one_process_with_twice_the_batch_and_resume_exactly() {
    unidl_env::mpirun_available().expect("the `mpi` feature needs mpirun");
    let dir = std::env::temp_dir().join(format!("unidl-mpi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = digits(&dir);

    // one process, batch 32: 5 epochs of 10 steps
    let single = config(&dir, "single", &d, 32, 5);
    let log = train(&single, 1, false);
    assert!(log.contains("epoch   5"), "{log}");
    // two ranks, batch 16 each
    let dp = config(&dir, "dp", &d, 16, 5);
    let log = train(&dp, 2, false);
    assert_eq!(log.matches("data-parallel: 2 ranks").count(), 1, "{log}");
    assert_eq!(
        log.matches("epoch   5").count(),
        1,
        "rank 0 alone reports: {log}"
    );
    let (a, b) = (weights(&dir.join("single")), weights(&dir.join("dp")));
    assert_eq!(a.len(), b.len());
    for ((k, x), (k2, y)) in a.iter().zip(&b) {
        assert_eq!(k, k2);
        let worst = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "`{k}`: max |diff| {worst}");
    }
    let losses = |run: &str| -> Vec<f64> {
        let t = std::fs::read_to_string(dir.join(run).join("epochs.csv")).unwrap();
        t.lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
            .collect()
    };
    let (ls, ld) = (losses("single"), losses("dp"));
    assert!(ls[4] < ls[0] * 0.7, "it trains: {ls:?}");
    for (x, y) in ls.iter().zip(&ld) {
        assert!((x - y).abs() < 1e-5, "mean losses agree: {ls:?} {ld:?}");
    }

    // interrupted after 2 epochs, resumed to 5 on two ranks: bit-exact
    let part = config(&dir, "part", &d, 16, 2);
    train(&part, 2, false);
    let part = config(&dir, "part", &d, 16, 5);
    let log = train(&part, 2, true);
    assert_eq!(log.matches("resumed at step 20").count(), 1, "{log}");
    assert_eq!(weights(&dir.join("part")), b, "resumed = uninterrupted");
    let _ = std::fs::remove_dir_all(&dir);
}
