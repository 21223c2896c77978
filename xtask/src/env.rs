//! What each back-end needs on this machine, and the cargo command that provides it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

/// Back-ends the tasks know (cuda is left out: it cannot build offline).
pub const ALL: [&str; 4] = ["flex", "ndarray", "wgpu", "tch"];

/// The torch venv ([`unidl_env::torch_venv`]).
pub fn torch_venv() -> PathBuf {
    unidl_env::torch_venv()
}

fn torch_lib(venv: &Path) -> PathBuf {
    venv.join("lib/python3.11/site-packages/torch/lib")
}

/// `Ok` when the back-end can build and run here, else why not.
pub fn availability(backend: &str) -> Result<()> {
    match backend {
        "flex" | "ndarray" => Ok(()),
        "tch" => {
            let venv = torch_venv();
            if !torch_lib(&venv).join("libtorch_cpu.so").exists() {
                bail!(
                    "no torch 2.9.0 in {} (run scripts/setup-torch.sh)",
                    venv.display()
                );
            }
            Ok(())
        }
        "wgpu" => {
            let icd = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
            let found = icd.iter().any(|d| {
                std::fs::read_dir(d)
                    .map(|mut r| r.next().is_some())
                    .unwrap_or(false)
            });
            if !found {
                bail!("no Vulkan driver (apt install mesa-vulkan-drivers for lavapipe)");
            }
            Ok(())
        }
        "cuda" => bail!(
            "the cuda feature's build script downloads an LLVM bundle, which cannot be fetched here"
        ),
        other => bail!("unknown back-end `{other}`"),
    }
}

/// A `cargo` command with the environment the given back-ends need.
pub fn cargo(backends: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    if backends.contains(&"tch") {
        let venv = torch_venv();
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", venv.join("bin").display()));
        cmd.env("LIBTORCH_USE_PYTORCH", "1");
        let ld = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        cmd.env(
            "LD_LIBRARY_PATH",
            format!("{}:{ld}", torch_lib(&venv).display()),
        );
    }
    cmd
}

/// Runs `cmd`, failing with its exit status.
pub fn run(mut cmd: Command) -> Result<()> {
    let status = cmd.status()?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// `Ok` when FFmpeg's development libraries are installed (for `unidl-media/ffmpeg`).
pub fn ffmpeg_available() -> Result<()> {
    let ok = Command::new("pkg-config")
        .args([
            "--exists",
            "libavcodec",
            "libavformat",
            "libswscale",
            "libswresample",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "FFmpeg development libraries not found (apt install libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libclang-dev clang pkg-config)"
        );
    }
    Ok(())
}
