//! Cross-back-end conformance suite (T/AII 008 §6.1.2).
//!
//! Every Tensor operation and catalogue module runs on every compiled-in
//! back-end. Flex is compared with PyTorch reference values written by
//! `gen_reference.py` (committed beside this file as `reference.json`); every
//! other back-end is compared with flex. Back-ends that are not compiled in are
//! named in the output, never skipped silently.
//!
//! Run on more back-ends with features: `cargo test -p unidl-conformance --features ndarray,wgpu,tch`.
//!
//! Depends on: none.
//! Dev-depends on: `unidl-backend`, `unidl-tensor`, `unidl-nn`.

mod modules;
mod ops;
mod reference;

use unidl_backend::{BackendKind, Device};

/// Seeding is global per back-end (Burn seeds the back-end, not a stream), so
/// tests that draw random numbers must not interleave: each holds this lock.
pub static RNG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`RNG_LOCK`] (a panic in another test does not poison the suite).
pub fn rng_guard() -> std::sync::MutexGuard<'static, ()> {
    RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Compiled-in back-ends with their devices; prints which are not run.
pub fn backends() -> Vec<(BackendKind, Device)> {
    let mut out = Vec::new();
    for kind in BackendKind::ALL {
        if kind == BackendKind::Cuda {
            continue;
        }
        if !kind.is_compiled() {
            println!(
                "conformance: back-end `{kind}` NOT RUN: not compiled in (enable feature `{kind}`)"
            );
            continue;
        }
        let spec = unidl_backend::BackendSpec { kind, index: None };
        match spec.device() {
            Ok(d) => out.push((kind, d)),
            Err(e) => println!("conformance: back-end `{kind}` NOT RUN: {e}"),
        }
    }
    let names: Vec<&str> = out.iter().map(|(k, _)| k.name()).collect();
    println!("conformance: running on {}", names.join(", "));
    out
}

/// Absolute + relative tolerance of a back-end against flex / the reference.
pub fn tolerance(kind: BackendKind) -> f64 {
    match kind {
        // lavapipe's WGSL transcendentals are less exact than libm.
        BackendKind::Wgpu => 2e-3,
        _ => 1e-4,
    }
}

/// Max |a - b| / (1 + |b|) over two equally long slices, or the reason they differ.
pub fn max_err(a: &[f64], b: &[f64]) -> Result<f64, String> {
    if a.len() != b.len() {
        return Err(format!("{} values vs {} expected", a.len(), b.len()));
    }
    let mut worst = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        if x.is_nan() != y.is_nan() {
            return Err(format!("NaN mismatch: {x} vs {y}"));
        }
        if !x.is_nan() {
            worst = worst.max((x - y).abs() / (1.0 + y.abs()));
        }
    }
    Ok(worst)
}
