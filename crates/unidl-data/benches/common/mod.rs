//! What the loader benchmarks share: the median, the Python with torch and
//! running a torch baseline script.

use std::path::PathBuf;

/// The median (upper middle for an even count); `v` must not be empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `UNIDL_BENCH_PYTHON`, else the torch venv's Python (`UNIDL_TORCH_VENV`,
/// then `/var/cache/unidl/torch-venv`) when it exists.
pub fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("UNIDL_BENCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(v) = std::env::var("UNIDL_TORCH_VENV") {
        candidates.push(PathBuf::from(v).join("bin/python"));
    }
    candidates.push("/var/cache/unidl/torch-venv/bin/python".into());
    candidates.into_iter().find(|p| p.exists())
}

/// Runs the baseline `script` (beside the benchmarks) with `args` under
/// [`python`]; its one JSON line's `key` object (`{"<workers>": rate}`) as
/// `(workers, rate)` pairs, and the whole JSON for the versions. `None`
/// (saying why on stderr when the script failed) without a Python or a
/// usable answer.
pub fn torch_baseline(
    script: &str,
    args: &[String],
    key: &str,
) -> Option<(Vec<(usize, f64)>, serde_json::Value)> {
    let py = python()?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join(script);
    let out = std::process::Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "torchvision baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let rates = v[key]
        .as_object()?
        .iter()
        .filter_map(|(k, r)| Some((k.parse().ok()?, r.as_f64()?)))
        .collect();
    Some((rates, v))
}
