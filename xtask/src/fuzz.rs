//! `cargo xtask fuzz [TARGET…|all] [--time S] [--cases N] [--seed K] [--jobs J]
//! [--list] [--replay FILE]`: builds the mutation fuzzer (`crates/unidl-fuzz`)
//! in release and runs it with these arguments; with FFmpeg's development
//! libraries installed, its FFmpeg targets are compiled in. Findings go to
//! `target/fuzz-findings/<target>/`; see docs/RELIABILITY.md.

use anyhow::Result;

/// Runs the command.
pub fn run(rest: &[String]) -> Result<()> {
    let mut cmd = crate::env::cargo(&[]);
    cmd.args(["run", "--release", "--quiet", "-p", "unidl-fuzz"]);
    if crate::env::ffmpeg_available().is_ok() {
        cmd.args(["--features", "ffmpeg"]);
    }
    cmd.arg("--").args(rest);
    crate::env::run(cmd)
}
