//! Integration tests of the PyTorch, PaddlePaddle and MindSpore readers, the
//! mapping layer and the safetensors writer, on `Device::flex()`.

mod reference_model;

use reference_model::RefModel;
use unidl_backend::Device;

fn device() -> Device {
    Device::flex()
}

#[test]
fn reference_model_output_shape() {
    let dev = device();
    let m = RefModel::new(&dev, 1e-5);
    let x = burn::tensor::Tensor::<4>::zeros([2, 3, 16, 16], &dev);
    let t = burn::tensor::Tensor::<2, burn::tensor::Int>::zeros([2, 6], &dev);
    assert_eq!(m.forward(x, t).dims(), [2, 5]);
}
