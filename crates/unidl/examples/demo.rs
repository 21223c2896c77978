//! The quick-start demo: builds a small convolutional network on the back-end
//! chosen at start-up (`UNIDL_BACKEND`, default `flex`), trains it for a few
//! steps to separate two kinds of 1-D signals (noisy sines vs noisy square
//! waves), and prints the loss and accuracy as it goes.
//!
//! Run with `cargo xtask demo` (or `UNIDL_BACKEND=tch cargo xtask demo`).

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Int, Tensor as BT, TensorData};
use unidl::nn;
use unidl::prelude::*;

#[derive(Module, Debug)]
struct SignalNet {
    conv1: nn::Conv1d,
    conv2: nn::Conv1d,
    pool: nn::GlobalAvgPool1d,
    head: nn::Linear,
}

impl SignalNet {
    fn new(device: &Device) -> Self {
        SignalNet {
            conv1: nn::Conv1dConfig::new(1, 8, 5)
                .with_padding(nn::PaddingConfig1d::Same)
                .init(device),
            conv2: nn::Conv1dConfig::new(8, 16, 5)
                .with_padding(nn::PaddingConfig1d::Same)
                .init(device),
            pool: nn::GlobalAvgPool1d::new(),
            head: nn::LinearConfig::new(16, 2).init(device),
        }
    }

    /// # Shapes
    /// input `[batch, 1, length]` → logits `[batch, 2]`
    fn forward(&self, x: BT<3>) -> BT<2> {
        let x = burn::tensor::activation::relu(self.conv1.forward(x)); // [B, 8, L]
        let x = burn::tensor::activation::relu(self.conv2.forward(x)); // [B, 16, L]
        let x = self.pool.forward(x); // [B, 16]
        self.head.forward(x) // [B, 2]
    }
}

/// A batch of `n` signals of `len` samples: label 0 = sine, 1 = square wave,
/// random frequency and phase, Gaussian noise. Built with unidl tensors.
fn batch(n: usize, len: usize, device: &Device) -> Result<(BT<3>, BT<1, Int>)> {
    let freq = Tensor::uniform(1.0, 4.0, &[n, 1], device)?;
    let phase = Tensor::uniform(0.0, std::f64::consts::TAU, &[n, 1], device)?;
    let t: Vec<f32> = (0..len)
        .map(|i| i as f32 / len as f32 * std::f32::consts::TAU)
        .collect();
    let t = Tensor::from_f32(t, &[1, len], device)?;
    let wave = freq.mul(&t)?.add(&phase)?.sin()?; // [n, len]
    let labels = Tensor::randint(0, 2, &[n, 1], device)?;
    let square = wave
        .gt(&Tensor::zeros(&[], DType::Float32, device)?)?
        .to_dtype(DType::Float32)?
        .mul_scalar(2.0)?
        .add_scalar(-1.0)?;
    let is_sq = labels.to_dtype(DType::Float32)?;
    let mixed = square
        .mul(&is_sq)?
        .add(&wave.mul(&is_sq.mul_scalar(-1.0)?.add_scalar(1.0)?)?)?;
    let noisy = mixed.add(&Tensor::normal(0.0, 0.3, &[n, len], device)?)?;
    let x: BT<3> = noisy.unsqueeze(1)?.into_burn()?;
    let y = labels.reshape(&[-1])?.to_vec_i64()?;
    let y = BT::<1, Int>::from_data(TensorData::new(y, [n]), device);
    Ok((x, y))
}

fn main() -> Result<()> {
    let rt = unidl::backend::select(None, None)?;
    println!(
        "unidl demo on back-end `{}` (chosen by {})",
        rt.spec, rt.origin
    );
    rt.seed(42);
    let device = rt.autodiff_device();
    let mut model = SignalNet::new(&device);
    println!(
        "model: {} trainable tensors, {} parameters",
        model.get_parameters().len(),
        model.num_params()
    );
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let steps = 80;
    for step in 1..=steps {
        let (x, y) = batch(32, 64, &device)?;
        let logits = model.forward(x);
        let loss = loss_fn.forward(logits.clone(), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
        if step % 10 == 0 || step == 1 {
            let acc = logits
                .argmax(1)
                .squeeze_dim::<1>(1)
                .equal(y)
                .int()
                .sum()
                .into_scalar::<i64>() as f64
                / 32.0;
            println!(
                "step {step:>3}  loss {:.4}  batch accuracy {:.2}",
                loss.into_scalar::<f32>(),
                acc
            );
        }
    }
    let (x, y) = batch(256, 64, &rt.device)?;
    let pred = model.valid().forward(x).argmax(1).squeeze_dim::<1>(1);
    let acc = pred.equal(y).int().sum().into_scalar::<i64>() as f64 / 256.0;
    println!("held-out accuracy on 256 fresh signals: {acc:.3}");
    Ok(())
}
