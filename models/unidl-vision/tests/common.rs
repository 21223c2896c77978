//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use unidl_backend::Device;

/// Serialises the tests of this binary that seed the device generator:
/// tests run in parallel threads and share it, so a test that seeds and
/// then draws (initialisation, dropout, random inputs) must hold this guard
/// until its draws are done, or another test's draws change its numbers.
pub fn seeded(device: &Device, seed: u64) -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    unidl_backend::seed(device, seed);
    guard
}

/// `tests/reference/small`.
pub fn small_ref() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/small")
}

/// A deterministic input batch with values in [-1, 1).
pub fn input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 2003) as f32 / 2003.0) * 2.0 - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Trainable parameter count through the standard's Module API.
pub fn count_params<M: unidl_tensor::module::ModuleApi>(m: &M) -> usize {
    m.get_parameters().iter().map(|(_, t)| t.numel()).sum()
}

/// torchvision's parameter count of a standard variant (`resnet18`, …).
pub fn torchvision_params(name: &str) -> usize {
    let text = std::fs::read_to_string(small_ref().join("params.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} not in params.json")) as usize
}
