//! `cargo xtask train --config FILE [--backend NAME] [--resume]`: builds the
//! `unidl` CLI in release with the back-end's feature, prepares the config's
//! `data:` sets if missing, and runs `unidl train`.

use anyhow::Result;

/// Runs `unidl <command> …` built in release for the chosen back-end.
pub fn run_cli(rest: &[String], command: &str) -> Result<()> {
    let backend = crate::flag(rest, "--backend")
        .or_else(|| std::env::var("UNIDL_BACKEND").ok())
        .unwrap_or_else(|| "flex".into());
    let name = backend.split(':').next().unwrap_or("flex").to_string();
    crate::env::availability(&name)?;
    if let Some(cfg) = crate::flag(rest, "--config") {
        prepare_data(&cfg)?;
    }
    let mut cmd = crate::env::cargo(&[name.as_str()]);
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "unidl-cli",
        "--bin",
        "unidl",
    ]);
    if name != "flex" {
        cmd.args(["--features", &name]);
    }
    cmd.args(["--", command]);
    cmd.args(rest);
    crate::env::run(cmd)
}

/// Runs `cargo xtask data NAME` for every `data:NAME/…` the config names that
/// is not there yet, or is there in an older layout.
fn prepare_data(config: &str) -> Result<()> {
    let text = std::fs::read_to_string(config).unwrap_or_default();
    for part in text.split("\"data:").skip(1) {
        let name = part.split(['/', '"']).next().unwrap_or_default();
        if !name.is_empty() {
            crate::data::ensure(name)?;
        }
    }
    Ok(())
}
