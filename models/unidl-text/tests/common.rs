//! Helpers shared by the test modules.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::StateDict;
use unidl_testkit::floats;

/// A saved `[rows, cols]` float tensor of ids as an int tensor.
pub fn int_input(io: &StateDict, key: &str, dev: &Device) -> Tensor<2, Int> {
    let t = &io[key];
    let shape = [t.shape()[0], t.shape()[1]];
    let v: Vec<i64> = floats(io, key).iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, shape), dev)
}

/// A saved `[rows, cols]` float tensor of 0/1 as a mask (true where 1).
pub fn mask_input(io: &StateDict, key: &str, dev: &Device) -> Tensor<2, Bool> {
    let t = &io[key];
    let shape = [t.shape()[0], t.shape()[1]];
    let v: Vec<bool> = floats(io, key).iter().map(|&x| x > 0.5).collect();
    Tensor::from_data(TensorData::new(v, shape), dev)
}
