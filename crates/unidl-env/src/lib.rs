//! # unidl-env — where things live and who chooses the back-end
//!
//! The one home of three conventions that the libraries, the `unidl` binary
//! and `cargo xtask` all follow (xtask cannot depend on the Burn-based
//! crates, so they live here, without dependencies):
//!
//! - [`data_dir`]: the data cache (`UNIDL_DATA_DIR`, default `~/.cache/unidl/data`);
//! - [`torch_venv`]: the Python venv with torch for the `tch` back-end
//!   (`UNIDL_TORCH_VENV`, default `$XDG_CACHE_HOME/unidl/torch-venv`);
//! - [`backend_choice`]: explicit argument > `UNIDL_BACKEND` > config key > `flex`;
//! - [`mpirun_command`]: how a data-parallel run is launched (`mpirun`).
//!
//! Architecture invariant: no dependencies, no Burn; nothing here touches a
//! device.
//!
//! Depends on: none.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the back-end.
pub const BACKEND_VAR: &str = "UNIDL_BACKEND";

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

fn cache() -> PathBuf {
    std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| home().join(".cache"))
}

/// The data cache: `UNIDL_DATA_DIR`, else `~/.cache/unidl/data`.
pub fn data_dir() -> PathBuf {
    match std::env::var("UNIDL_DATA_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => home().join(".cache/unidl/data"),
    }
}

/// The torch venv: `UNIDL_TORCH_VENV`, else `$XDG_CACHE_HOME/unidl/torch-venv`
/// (`~/.cache/unidl/torch-venv`).
pub fn torch_venv() -> PathBuf {
    match std::env::var("UNIDL_TORCH_VENV") {
        Ok(v) if !v.is_empty() => PathBuf::from(v),
        _ => cache().join("unidl/torch-venv"),
    }
}

/// The back-end spec (`flex`, `tch`, `wgpu:0`, …) and where it came from:
/// `explicit` (a CLI argument or API call) wins, then `UNIDL_BACKEND`, then
/// `config` (a run config's `backend` key), then `flex`.
pub fn backend_choice(explicit: Option<&str>, config: Option<&str>) -> (String, String) {
    let env = std::env::var(BACKEND_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty());
    if let Some(e) = explicit {
        (e.to_string(), "argument".to_string())
    } else if let Some(e) = env {
        (e, format!("environment variable {BACKEND_VAR}"))
    } else if let Some(c) = config {
        (c.to_string(), "config key `backend`".to_string())
    } else {
        ("flex".to_string(), "default".to_string())
    }
}

/// The data-set names of `data:<name>/…` specs (deduplicated, in order):
/// what `unidl data` must prepare for a run config's `[data] train`/`val`.
pub fn data_set_names<'a>(specs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for name in specs
        .into_iter()
        .filter_map(|s| s.strip_prefix("data:"))
        .filter_map(|r| r.split('/').next())
        .filter(|n| !n.is_empty())
    {
        if !v.iter().any(|x| x == name) {
            v.push(name.to_string());
        }
    }
    v
}

/// The back-end kind of a spec (`wgpu:0` → `wgpu`).
pub fn backend_kind(spec: &str) -> &str {
    spec.split(':').next().unwrap_or("flex")
}

/// Whether `program` is an executable file in a directory of `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(program);
            p.is_file()
                && std::fs::metadata(&p)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false)
        })
    })
}

/// Whether `mpirun` (Open MPI's launcher) is on the `PATH`; the error says
/// what to install.
pub fn mpirun_available() -> Result<(), String> {
    if on_path("mpirun") {
        Ok(())
    } else {
        Err("`mpirun` is not on the PATH (apt-get install openmpi-bin libopenmpi-dev)".into())
    }
}

/// `mpirun -np <procs> … <program> <args>` for a data-parallel run:
/// `--oversubscribe` (more ranks than cores is allowed, e.g. 4 ranks on 2
/// cores for a scaling curve), `--bind-to none` (ranks are not pinned; each
/// uses the threads its back-end starts), `--allow-run-as-root` when running
/// as root (containers, CI), every `UNIDL_*` variable, `LD_LIBRARY_PATH` and
/// `RAYON_NUM_THREADS` exported to the ranks (`-x`, which matters on other hosts), then `extra`
/// (e.g. `--hostfile FILE` or `-H a,b`: docs/DISTRIBUTED.md).
pub fn mpirun_command(procs: usize, program: &Path, args: &[String], extra: &[String]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "-np",
        &procs.to_string(),
        "--oversubscribe",
        "--bind-to",
        "none",
    ]);
    if is_root() {
        cmd.arg("--allow-run-as-root");
    }
    let mut names: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("UNIDL_") || k == "LD_LIBRARY_PATH" || k == "RAYON_NUM_THREADS")
        .collect();
    names.sort();
    for k in names {
        cmd.args(["-x", &k]);
    }
    cmd.args(extra);
    cmd.arg(program);
    cmd.args(args);
    cmd
}

/// Whether the effective user is root (Open MPI refuses root without
/// `--allow-run-as-root`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_beats_config_beats_default() {
        // UNIDL_BACKEND is not set in the test environment of CI.
        if std::env::var(BACKEND_VAR).is_ok() {
            return;
        }
        assert_eq!(backend_choice(Some("tch"), Some("wgpu")).0, "tch");
        assert_eq!(backend_choice(None, Some("wgpu:1")).0, "wgpu:1");
        assert_eq!(
            backend_choice(None, None),
            ("flex".into(), "default".into())
        );
        assert_eq!(backend_kind("wgpu:1"), "wgpu");
        assert_eq!(
            data_set_names([
                "data:mnist/train",
                "data:mnist/test",
                "./x",
                "data:spam/a.jsonl"
            ]),
            ["mnist", "spam"]
        );
    }
}
