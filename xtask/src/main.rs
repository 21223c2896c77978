//! `cargo xtask <command>`: the project's tasks, kept thin. Each command turns
//! a back-end choice into cargo features and the environment the back-end
//! needs (LibTorch paths, Vulkan driver check), then runs cargo.
//!
//! Commands:
//! - `demo [--backend NAME]` — the quick-start demo (a few training steps, loss printed).
//! - `test [--backends a,b,…]` — every test; the conformance suite on every available back-end.
//! - `train|eval|infer --config FILE [--backend NAME]` — the `unidl` CLI, built in release;
//!   `train … --procs N` trains data-parallel on N processes (`mpirun`, docs/DISTRIBUTED.md).
//! - `data <name>` — prepare a real data set from a registry package (`unidl data`).
//! - `bench <train|data|video|zoo|dist|wavenet>` — benchmarks with ratios against baselines from the same run.
//! - `fuzz [target|all] [--time S] [--cases N] [--seed K]` — the mutation fuzzer of every reader.
//! - `conformance [--markdown] [--check]` — every requirement of the standard with the
//!   items and tests mapped to it in docs/STANDARD.md and their outcome in the last
//!   `cargo xtask test`; `--markdown` writes docs/CONFORMANCE.md, `--check` fails on a
//!   requirement marked done without passing tests or on a stale report.
//! - `backends` — what each back-end needs here and whether it is available.
//!
//! Depends on: `unidl-env`.

mod bench;
mod conformance;
mod data;
mod env;
mod fuzz;
mod results;
mod train;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        bail!(
            "usage: cargo xtask <demo|test|data|train|eval|infer|bench|fuzz|conformance|backends> [options]"
        );
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "demo" => demo(rest),
        "test" => test(rest),
        "data" => data::run(rest),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "conformance" => conformance::run(rest),
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
            "unknown command `{other}`; expected demo, test, data, train, eval, infer, bench, fuzz, conformance or backends"
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
    // Everything this run leaves out, with the way to enable it: printed
    // before and again after the tests, so that nothing is dropped silently.
    let mut skipped: Vec<String> = Vec::new();
    let mut enabled = Vec::new();
    for b in &wanted {
        match env::availability(b) {
            Ok(()) => enabled.push(b.as_str()),
            Err(e) => skipped.push(format!("back-end `{b}`: {e}")),
        }
    }
    skipped.push(
        "back-end `cuda`: not built here (CubeCL's build downloads an LLVM bundle; see docs/BACKENDS.md)"
            .into(),
    );
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
            features.push("unidl-fuzz/ffmpeg".into());
        }
        Err(e) => skipped.push(format!(
            "FFmpeg decoding tests and the ffmpeg-audio/ffmpeg-video fuzz targets: {e}"
        )),
    }
    if std::env::var("UNIDL_REQUIRE_MEDIA_TOOLS").as_deref() != Ok("1") {
        let missing: Vec<&str> = ["espeak-ng", "ffmpeg", "sox"]
            .into_iter()
            .filter(|t| !unidl_env::on_path(t))
            .collect();
        if !missing.is_empty() {
            skipped.push(format!(
                "tests that render speech/video with {}: skipped (apt-get install {}; UNIDL_REQUIRE_MEDIA_TOOLS=1 makes them fail instead)",
                missing.join(", "),
                missing.join(" ")
            ));
        }
    }
    match mpi_available() {
        Ok(()) => {
            features.push("unidl-dist/mpi".into());
            features.push("unidl-cli/mpi".into());
        }
        Err(e) => skipped.push(format!(
            "data-parallel tests over mpirun (unidl-dist, unidl-cli `mpi`): {e}"
        )),
    }
    let zoo_ref = std::env::var_os("UNIDL_ZOO_REF").map(std::path::PathBuf::from);
    if !zoo_ref.as_ref().is_some_and(|d| d.is_dir()) {
        skipped.push(
            "full-size torchvision parity (21 variants): no reference cache (generate it as .ci/run does: \
             python models/unidl-vision/tests/reference/gen_torchvision.py --full DIR, then UNIDL_ZOO_REF=DIR)"
                .into(),
        );
    }
    let minilm = std::env::var_os("UNIDL_MINILM_REF").map(std::path::PathBuf::from);
    if !minilm
        .as_ref()
        .is_some_and(|d| d.join("minilm.json").is_file())
    {
        skipped.push(
            "BERT with all-MiniLM-L6-v2's real weights: no reference (`cargo xtask data minilm`, then \
             python models/unidl-text/tests/reference/gen_bert.py --minilm <data>/minilm DIR, then UNIDL_MINILM_REF=DIR)"
                .into(),
        );
    }
    for s in &skipped {
        println!("xtask test: NOT RUN: {s}");
    }
    // The quick-start and TextCNN tests train on real MNIST digits and
    // SpamAssassin mails, the similarity config reads Brown's genres, T5
    // translates GIMP's en→de pairs, all from the data cache; prepared by the dev-profile
    // `unidl`, whose dependencies the test build shares.
    data::ensure("mnist", data::Build::Dev)?;
    data::ensure("spam", data::Build::Dev)?;
    data::ensure("brown", data::Build::Dev)?;
    data::ensure("gimp-de", data::Build::Dev)?;
    let mut args: Vec<String> = [
        "test",
        "--workspace",
        "--exclude",
        "xtask",
        "--no-fail-fast",
    ]
    .map(String::from)
    .to_vec();
    if !features.is_empty() {
        args.extend(["--features".to_string(), features.join(",")]);
    }
    // Every outcome is recorded for `cargo xtask conformance`.
    let (passed, tests) = results::run(|| env::cargo(&enabled), &args)?;
    results::save(&results::Results {
        date: results::now(),
        backends: enabled.iter().map(|b| b.to_string()).collect(),
        tests,
    })?;
    let result = if passed {
        Ok(())
    } else {
        Err(anyhow::anyhow!("some tests failed"))
    };
    println!(
        "xtask test: summary — back-ends tested: {}",
        enabled.join(", ")
    );
    if skipped.is_empty() {
        println!("xtask test: nothing was left out");
    }
    for s in &skipped {
        println!("xtask test: NOT RUN: {s}");
    }
    result
}

/// `Ok` when Open MPI can be built against and launched (the `mpi` features).
fn mpi_available() -> Result<()> {
    unidl_env::mpirun_available().map_err(|e| anyhow::anyhow!(e))?;
    if !unidl_env::on_path("mpicc") {
        bail!("no MPI development files (apt-get install libopenmpi-dev libclang-dev)");
    }
    Ok(())
}
