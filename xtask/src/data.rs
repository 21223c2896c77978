//! `cargo xtask data <name|list> [options]`: runs `unidl data …` (the
//! preparation lives in the `unidl` binary, `crates/unidl-cli/src/data/`),
//! built with the same profile and features as the command that needs it, so
//! no second dependency tree is compiled.

use anyhow::Result;

/// How to build the `unidl` binary that prepares data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build<'a> {
    /// Release, with this back-end's feature (what `cargo xtask train` runs).
    Release(&'a str),
    /// The dev profile (dependencies at opt-level 3), shared with `cargo test`.
    Dev,
}

/// `cargo run -p unidl-cli --bin unidl [--release --features B] -- data …`.
fn unidl_data(build: Build, args: &[String]) -> Result<()> {
    let mut cmd = match build {
        Build::Release(b) => crate::env::cargo(&[b]),
        Build::Dev => crate::env::cargo(&[]),
    };
    cmd.args(["run", "--quiet", "-p", "unidl-cli", "--bin", "unidl"]);
    if let Build::Release(b) = build {
        cmd.arg("--release");
        if b != "flex" {
            cmd.args(["--features", b]);
        }
    }
    cmd.args(["--", "data"]).args(args);
    crate::env::run(cmd)
}

/// `cargo xtask data …`: the release `unidl` of the flex back-end, the same
/// binary `cargo xtask train` builds; with `--dev`, the dev-profile binary
/// `cargo xtask test` builds (what CI uses, so it compiles no release tree).
pub fn run(rest: &[String]) -> Result<()> {
    if rest.iter().any(|a| a == "--dev") {
        let rest: Vec<String> = rest.iter().filter(|a| *a != "--dev").cloned().collect();
        return unidl_data(Build::Dev, &rest);
    }
    unidl_data(Build::Release("flex"), rest)
}

/// Prepares `name` unless it is there in its current layout.
pub fn ensure(name: &str, build: Build) -> Result<()> {
    unidl_data(build, &[name.to_string(), "--if-missing".to_string()])
}
