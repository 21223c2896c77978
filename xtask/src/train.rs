//! `cargo xtask train|eval|infer --config FILE [--backend NAME] […]`: builds
//! the `unidl` CLI in release with the back-end's feature, prepares the
//! config's `data:` sets if missing with that same binary, and runs it.

use anyhow::{Context, Result};

/// Runs `unidl <command> …` built in release for the chosen back-end
/// (`--backend` > `UNIDL_BACKEND` > the config's `backend` > flex).
pub fn run_cli(rest: &[String], command: &str) -> Result<()> {
    // `--procs N`: data-parallel over N processes through `mpirun`.
    let procs = crate::flag(rest, "--procs")
        .map(|n| {
            n.parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .with_context(|| format!("--procs {n}: expected a number of processes ≥ 1"))
        })
        .transpose()?;
    let rest: Vec<String> = {
        let mut v = Vec::new();
        let mut it = rest.iter();
        while let Some(a) = it.next() {
            if a == "--procs" {
                it.next();
            } else if !a.starts_with("--procs=") {
                v.push(a.clone());
            }
        }
        v
    };
    let rest = rest.as_slice();
    let config = crate::flag(rest, "--config")
        .map(|c| {
            let text = std::fs::read_to_string(&c).with_context(|| format!("{c}: cannot read"))?;
            text.parse::<toml::Table>()
                .with_context(|| format!("{c}: not TOML"))
        })
        .transpose()?;
    let config_backend = config
        .as_ref()
        .and_then(|t| t.get("backend"))
        .and_then(toml::Value::as_str);
    let explicit = crate::flag(rest, "--backend");
    let (backend, _) = unidl_env::backend_choice(explicit.as_deref(), config_backend);
    let name = unidl_env::backend_kind(&backend).to_string();
    crate::env::availability(&name)?;
    if let Some(t) = &config {
        for set in data_names(t) {
            crate::data::ensure(&set, crate::data::Build::Release(&name))?;
        }
    }
    if let Some(procs) = procs.filter(|_| command == "train") {
        return train_mpi(procs, &name, command, rest);
    }
    let mut cmd = unidl_cargo("run", &name, &[]);
    cmd.args(["--", command]);
    cmd.args(rest);
    crate::env::run(cmd)
}

/// The `data:<name>/…` sets of `[data] train` and `val`.
fn data_names(config: &toml::Table) -> Vec<String> {
    let data = config.get("data").and_then(toml::Value::as_table);
    unidl_env::data_set_names(
        ["train", "val"]
            .iter()
            .filter_map(|k| data?.get(*k)?.as_str()),
    )
}

/// `mpirun -np <procs> unidl train …` with `unidl` built in release with
/// the `mpi` feature (and the back-end's), the back-end's environment
/// passed to every rank.
fn train_mpi(procs: usize, backend: &str, command: &str, rest: &[String]) -> Result<()> {
    unidl_env::mpirun_available().map_err(|e| anyhow::anyhow!("--procs: {e}"))?;
    let build = unidl_cargo("build", backend, &["mpi"]);
    let envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = build
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    crate::env::run(build)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let mut args = vec![command.to_string()];
    args.extend(rest.iter().cloned());
    // Share the cores: each rank's thread pool gets cores / procs threads
    // (unless RAYON_NUM_THREADS says otherwise), not every core each.
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / procs).max(1).to_string()
    });
    let extra = ["-x".to_string(), "RAYON_NUM_THREADS".to_string()];
    let mut cmd = unidl_env::mpirun_command(procs, &target.join("release/unidl"), &args, &extra);
    cmd.env("RAYON_NUM_THREADS", &threads);
    for (k, v) in envs {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    crate::env::run(cmd)
}

/// `cargo <verb> --quiet --release -p unidl-cli --bin unidl` with the
/// back-end's feature (none for flex), `ffmpeg` when FFmpeg's development
/// files are installed (audio and video decoding) and `extra` features, in
/// the back-end's environment.
fn unidl_cargo(verb: &str, backend: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = crate::env::cargo(&[backend]);
    cmd.args([
        verb,
        "--quiet",
        "--release",
        "-p",
        "unidl-cli",
        "--bin",
        "unidl",
    ]);
    let mut features: Vec<&str> = extra.to_vec();
    if crate::env::ffmpeg_available().is_ok() {
        features.push("ffmpeg");
    }
    if backend != "flex" {
        features.push(backend);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd
}
