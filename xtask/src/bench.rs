//! `cargo xtask bench <train|data|video|zoo|dist|wavenet> [--backend NAME]
//! [--quick] [--only train|infer] [--no-baseline]` (the last two: zoo only):
//! builds a benchmark in release with the back-end's feature and runs it.
//! Each benchmark prints its own figures and ratios against baselines
//! measured in the same run (a hand-written Burn loop, PyTorch/torchvision
//! when a Python with torch is found, naive WaveNet generation). Nothing here
//! is a test.

use anyhow::{Result, bail};

/// (name, package, bench target).
const BENCHES: [(&str, &str, &str); 6] = [
    ("train", "unidl-train", "train_step"),
    ("data", "unidl-data", "loader"),
    ("video", "unidl-data", "video_loader"),
    ("zoo", "unidl-vision", "zoo"),
    ("dist", "unidl-dist", "dist"),
    ("wavenet", "unidl-audio", "wavenet_generation"),
];

/// Runs the command.
pub fn run(rest: &[String]) -> Result<()> {
    let Some(which) = rest.first() else {
        bail!(
            "usage: cargo xtask bench <train|data|video|zoo|dist|wavenet> [--backend NAME] [--quick] [--only train|infer] [--no-baseline]"
        );
    };
    let Some(&(_, package, target)) = BENCHES.iter().find(|b| b.0 == which) else {
        bail!("unknown benchmark `{which}`; expected train, data, video, zoo, dist or wavenet");
    };
    let backend = crate::flag(rest, "--backend")
        .or_else(|| std::env::var("UNIDL_BACKEND").ok())
        .unwrap_or_else(|| "flex".into());
    let name = backend.split(':').next().unwrap_or("flex").to_string();
    crate::env::availability(&name)?;
    let mut cmd = crate::env::cargo(&[name.as_str()]);
    cmd.args(["bench", "-p", package, "--bench", target]);
    let mut features = Vec::new();
    if name != "flex" {
        features.push(format!("unidl-backend/{name}"));
    }
    if which == "dist" {
        features.push("unidl-dist/mpi".into());
    }
    if which == "video" {
        crate::env::ffmpeg_available()?;
        features.push("unidl-data/ffmpeg".into());
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.env("UNIDL_BACKEND", &backend);
    cmd.env("UNIDL_TORCH_VENV", crate::env::torch_venv());
    cmd.arg("--");
    // Flags the benchmark binaries read themselves (zoo: `--only`, `--no-baseline`).
    for flag in ["--quick", "--no-baseline"] {
        if rest.iter().any(|a| a == flag) {
            cmd.arg(flag);
        }
    }
    if let Some(only) = crate::flag(rest, "--only") {
        cmd.args(["--only", &only]);
    }
    crate::env::run(cmd)
}
