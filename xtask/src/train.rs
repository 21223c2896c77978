//! `cargo xtask train|eval|infer --config FILE [--backend NAME] […]`: builds
//! the `unidl` CLI in release with the back-end's feature, prepares the
//! config's `data:` sets if missing with that same binary, and runs it.

use anyhow::{Context, Result};

/// Runs `unidl <command> …` built in release for the chosen back-end
/// (`--backend` > `UNIDL_BACKEND` > the config's `backend` > flex).
pub fn run_cli(rest: &[String], command: &str) -> Result<()> {
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

/// The `data:<name>/…` sets of `[data] train` and `val`.
fn data_names(config: &toml::Table) -> Vec<String> {
    let data = config.get("data").and_then(toml::Value::as_table);
    unidl_env::data_set_names(
        ["train", "val"]
            .iter()
            .filter_map(|k| data?.get(*k)?.as_str()),
    )
}
