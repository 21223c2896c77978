//! # unidl-testkit — helpers for the zoo crates' parity tests
//!
//! Every zoo family compares its models with a reference implementation
//! through values a checked-in generator script saved (`*.io.safetensors`):
//! these helpers read them, compare with printed differences, and guard the
//! device's global random generator. A dev-dependency only.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`.

use std::path::PathBuf;

use burn::tensor::Tensor;
use unidl_backend::Device;
use unidl_tensor::module::StateDict;

/// Serialises the tests of one binary that seed the device generator:
/// tests run in parallel threads and share it, so a test that seeds and
/// then draws (initialisation, dropout, random inputs) must hold this guard
/// until its draws are done, or another test's draws change its numbers.
pub fn seeded(device: &Device, seed: u64) -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    unidl_backend::seed(device, seed);
    guard
}

/// A saved tensor's values.
pub fn floats(io: &StateDict, key: &str) -> Vec<f32> {
    io.get(key)
        .unwrap_or_else(|| panic!("{key} not in the reference"))
        .to_vec_f32()
        .unwrap()
}

/// A tensor's values as f32.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// The largest absolute difference of two equally long slices.
pub fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// The largest absolute value.
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// Asserts `got` is within `tol` of `want`'s largest magnitude, printing the
/// difference.
pub fn check_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let d = max_diff(got, want);
    let scale = max_abs(want).max(1e-6);
    eprintln!("{what}: max |Δ| {d:.2e} (max |want| {scale:.2e})");
    assert!(d <= tol * scale, "{what}: differs by {d} (scale {scale})");
}

/// `‖got − want‖ / ‖want‖`.
pub fn rel_l2(got: &[f32], want: &[f32]) -> f32 {
    let d: f32 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let w: f32 = want.iter().map(|b| b * b).sum();
    (d / w.max(f32::MIN_POSITIVE)).sqrt()
}

/// A loss against its reference value: within 1e-4 of it (relative above
/// 1, absolute below), printing both.
pub fn check_loss(what: &str, got: &Tensor<1>, want: f32) {
    let got = values(got.clone())[0];
    eprintln!("{what}: {got:.6} vs reference {want:.6}");
    assert!(
        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
        "{what}: {got} vs {want}"
    );
}

/// A gradient against the reference's: within `rel` of the reference's
/// largest value (of 1e-3 when every value is smaller), printing the
/// difference; a missing gradient fails naming `what`.
pub fn check_grad(what: &str, got: Option<Vec<f32>>, want: &[f32], rel: f32) {
    let got = got.unwrap_or_else(|| panic!("no gradient for {what}"));
    let d = max_diff(&got, want);
    let scale = max_abs(want);
    eprintln!("grad {what}: max |Δ| {d:.2e} (max |g| {scale:.2e})");
    assert!(
        d <= rel * scale.max(1e-3),
        "gradient of {what} differs by {d}"
    );
}

/// The folder of a full-size reference a generator wrote into the cache
/// named by the environment variable `env` (`.ci/run` fills it), when it
/// holds `json`; `None`, after saying so, when it is absent — a failure
/// instead when `UNIDL_REQUIRE_ZOO_REF=1` (CI).
pub fn cached_reference(env: &str, json: &str, how: &str) -> Option<PathBuf> {
    let require = std::env::var("UNIDL_REQUIRE_ZOO_REF").is_ok_and(|v| v == "1");
    let dir = std::env::var_os(env).map(PathBuf::from);
    match dir.filter(|d| d.join(json).is_file()) {
        Some(d) => Some(d),
        None => {
            let msg = format!("full-size reference not found ({env}); generate it with {how}");
            assert!(!require, "{msg}");
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

/// Gradients against a reference, tensor by tensor: `‖got − want‖` over
/// `‖want‖`, or over `floor` times the largest reference norm when that is
/// larger (a gradient that is zero in exact arithmetic, such as a bias
/// before a train-mode batch norm, is rounding noise on both sides); each
/// must be within `tol`. Returns the worst ratio with its name and the
/// ratio of all gradients together, printing both.
pub fn check_grads_l2(
    what: &str,
    pairs: &[(String, Vec<f32>, Vec<f32>)],
    floor: f32,
    tol: f32,
) -> ((f32, String), f32) {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let floor = floor * pairs.iter().map(|(_, _, w)| norm(w)).fold(0.0, f32::max);
    let mut worst = (0.0f32, String::new());
    let (mut all_got, mut all_want) = (Vec::new(), Vec::new());
    for (k, got, want) in pairs {
        assert_eq!(got.len(), want.len(), "{what}: gradient of {k}: length");
        let d: Vec<f32> = got.iter().zip(want).map(|(a, b)| a - b).collect();
        let r = norm(&d) / norm(want).max(floor).max(f32::MIN_POSITIVE);
        assert!(
            r <= tol,
            "{what}: gradient of {k} differs by {r} (relative L2)"
        );
        if r > worst.0 {
            worst = (r, k.clone());
        }
        all_got.extend_from_slice(got);
        all_want.extend_from_slice(want);
    }
    let all = rel_l2(&all_got, &all_want);
    eprintln!(
        "{what}: {} gradients, all together within {all:.1e} (relative L2), worst {} at {:.1e}",
        pairs.len(),
        worst.1,
        worst.0
    );
    (worst, all)
}
