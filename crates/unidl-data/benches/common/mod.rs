//! What the loader benchmarks share: the median and the Python with torch.

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
