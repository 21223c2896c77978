//! Runs `cargo test` and records every test's outcome with the package and
//! target it belongs to, for `cargo xtask conformance`.
//!
//! Cargo prints which binary it runs (`Running tests/api.rs
//! (target/debug/deps/api-1a2b…)`, `Doc-tests unidl_tensor`) and libtest
//! prints one line per test (`test path ... ok`). Both streams go through one
//! pipe so that their order is kept; a `--no-run --message-format=json`
//! build first maps each test binary to its package and target.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// One test's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Cargo package (`unidl-tensor`).
    pub package: String,
    /// Test target (`api`; the lib's name for unit tests; `doc` for doc-tests).
    pub target: String,
    /// The test's path inside its binary (`trainer::trains_on_real_digits…`).
    pub name: String,
    /// `ok`, `FAILED` or `ignored`.
    pub outcome: String,
}

/// What the last `cargo xtask test` ran.
#[derive(Debug, Clone)]
pub struct Results {
    /// When (UTC, from `date`), for the report.
    pub date: String,
    /// Back-ends under test.
    pub backends: Vec<String>,
    /// Every test that reported.
    pub tests: Vec<Outcome>,
}

/// `target_directory` and `workspace_root` from `cargo metadata`.
pub fn workspace() -> Result<(PathBuf, PathBuf)> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()?;
    if !out.status.success() {
        bail!("cargo metadata failed");
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let get = |k: &str| {
        v[k].as_str()
            .map(PathBuf::from)
            .with_context(|| format!("cargo metadata: no {k}"))
    };
    Ok((get("target_directory")?, get("workspace_root")?))
}

/// Where the results of the last run are kept.
pub fn results_path() -> Result<PathBuf> {
    Ok(workspace()?.0.join("unidl-test-results.json"))
}

/// Test binary file stem → (package, target).
type Binaries = BTreeMap<String, (String, String)>;

/// The package name in a cargo package id (`path+file:///…/unidl-data#0.1.0`
/// or `…/crates/x#unidl-data@0.1.0`).
fn package_name(id: &str) -> String {
    let (path, tail) = id.rsplit_once('#').unwrap_or((id, ""));
    match tail.split_once('@') {
        Some((name, _)) => name.to_string(),
        None => path.rsplit('/').next().unwrap_or(path).to_string(),
    }
}

/// Builds the tests (`cargo test ARGS --no-run`) and maps each test binary's
/// file stem to (package, target), and each library name to its package.
fn binaries(cmd: &mut Command) -> Result<(Binaries, BTreeMap<String, String>)> {
    cmd.args(["--no-run", "--message-format=json-render-diagnostics"]);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut bins = BTreeMap::new();
    let mut libs = BTreeMap::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        let package = package_name(v["package_id"].as_str().unwrap_or(""));
        let target = v["target"]["name"].as_str().unwrap_or("").to_string();
        let kinds = v["target"]["kind"].as_array().cloned().unwrap_or_default();
        if kinds
            .iter()
            .any(|k| k == "lib" || k == "rlib" || k == "proc-macro")
        {
            libs.insert(target.replace('-', "_"), package.clone());
        }
        if let Some(exe) = v["executable"].as_str()
            && v["profile"]["test"] == true
        {
            let stem = Path::new(exe)
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            bins.insert(stem, (package, target));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("building the tests failed ({status})");
    }
    Ok((bins, libs))
}

/// Runs `cargo test ARGS` (built first with `--no-run`), echoing its output,
/// and returns whether it passed with every test's outcome.
pub fn run(make: impl Fn() -> Command, args: &[String]) -> Result<(bool, Vec<Outcome>)> {
    let mut build = make();
    build.args(args);
    let started = Instant::now();
    let (bins, libs) = binaries(&mut build)?;
    println!(
        "xtask test: building the tests took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // Wall time of each test binary (and of the doc-test runs, which compile
    // as they go), printed slowest first at the end: where CI's time goes.
    let mut times: Vec<(String, f64)> = Vec::new();
    let mut since = Instant::now();
    let mut cmd = make();
    cmd.args(args);
    let (reader, writer) = std::io::pipe()?;
    cmd.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd.spawn()?;
    drop(cmd); // the parent's copies of the pipe's write end
    let mut current = (String::from("?"), String::from("?"));
    let mut tests = Vec::new();
    for line in BufReader::new(reader).lines() {
        let line = line?;
        println!("{line}");
        let t = line.trim();
        let is_start = t.starts_with("Running ") || t.starts_with("Doc-tests ");
        if is_start {
            if let Some(last) = times.last_mut() {
                last.1 = since.elapsed().as_secs_f64();
            }
            since = Instant::now();
        }
        if let Some(rest) = t.strip_prefix("Running ") {
            // `Running tests/api.rs (target/debug/deps/api-1a2b3c)`
            let exe = rest
                .rsplit_once('(')
                .map(|(_, p)| p.trim_end_matches(')'))
                .unwrap_or(rest);
            let stem = Path::new(exe)
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            current = bins
                .get(stem)
                .cloned()
                .unwrap_or_else(|| ("?".into(), stem.to_string()));
        } else if let Some(lib) = t.strip_prefix("Doc-tests ") {
            let package = libs
                .get(lib)
                .cloned()
                .unwrap_or_else(|| lib.replace('_', "-"));
            current = (package, "doc".into());
        }
        if is_start {
            times.push((format!("{} {}", current.0, current.1), 0.0));
        } else if let Some(rest) = t.strip_prefix("test ")
            && let Some((name, outcome)) = rest.rsplit_once(" ... ")
            && matches!(outcome, "ok" | "FAILED" | "ignored")
        {
            tests.push(Outcome {
                package: current.0.clone(),
                target: current.1.clone(),
                name: name.to_string(),
                outcome: outcome.to_string(),
            });
        }
    }
    let status = child.wait()?;
    if let Some(last) = times.last_mut() {
        last.1 = since.elapsed().as_secs_f64();
    }
    times.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = times.iter().map(|t| t.1).sum();
    println!("xtask test: running the tests took {total:.0} s; slowest binaries:");
    for (name, secs) in times.iter().take(15) {
        println!("xtask test:   {secs:7.1} s  {name}");
    }
    Ok((status.success(), tests))
}

/// Writes the results of a run.
pub fn save(results: &Results) -> Result<()> {
    let path = results_path()?;
    let tests: Vec<Value> = results
        .tests
        .iter()
        .map(|t| json!({"package": t.package, "target": t.target, "name": t.name, "outcome": t.outcome}))
        .collect();
    let v = json!({"date": results.date, "backends": results.backends, "tests": tests});
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, serde_json::to_string(&v)?)?;
    std::fs::rename(&tmp, &path)?;
    println!(
        "xtask test: {} test outcomes recorded in {}",
        results.tests.len(),
        path.display()
    );
    Ok(())
}

/// Reads the results of the last `cargo xtask test`.
pub fn load() -> Result<Results> {
    let path = results_path()?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: no recorded test run (run `cargo xtask test` first)",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    Ok(Results {
        date: s(&v["date"]),
        backends: v["backends"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default(),
        tests: v["tests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| Outcome {
                        package: s(&t["package"]),
                        target: s(&t["target"]),
                        name: s(&t["name"]),
                        outcome: s(&t["outcome"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The current UTC time as `date` prints it.
pub fn now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
