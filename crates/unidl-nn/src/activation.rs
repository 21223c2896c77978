//! Activation functions as modules.
//!
//! Burn's activation modules are re-exported unchanged. Burn only has softmax
//! as a function, so [`Softmax`] and [`LogSoftmax`] are small stateless
//! wrappers that remember the dimension to normalise over.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation;

pub use burn::nn::activation::{Gelu, LeakyRelu, LeakyReluConfig, Relu, SiLU, Sigmoid, Tanh};

/// Configuration of [`Softmax`].
#[derive(Config, Debug)]
pub struct SoftmaxConfig {
    /// Dimension along which the outputs sum to one. Negative values count
    /// from the last dimension (`-1` is the last), as in `torch.nn.Softmax(dim)`.
    pub dim: isize,
}

impl SoftmaxConfig {
    /// Builds the (parameter-free) module.
    pub fn init(&self) -> Softmax {
        Softmax { dim: self.dim }
    }
}

/// Softmax over one dimension: `exp(x_i) / sum_j exp(x_j)`.
#[derive(Module, Debug)]
pub struct Softmax {
    /// Dimension along which the outputs sum to one (negative counts from the end).
    pub dim: isize,
}

impl Softmax {
    /// Creates a softmax over `dim` (negative counts from the end).
    pub fn new(dim: isize) -> Self {
        Self { dim }
    }

    /// Applies softmax along `self.dim`.
    ///
    /// # Shapes
    ///
    /// - input: `[..]`, any rank `D`
    /// - output: same shape as the input
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        activation::softmax(input, self.dim)
    }
}

/// Configuration of [`LogSoftmax`].
#[derive(Config, Debug)]
pub struct LogSoftmaxConfig {
    /// Dimension to normalise over (negative counts from the end).
    pub dim: isize,
}

impl LogSoftmaxConfig {
    /// Builds the (parameter-free) module.
    pub fn init(&self) -> LogSoftmax {
        LogSoftmax { dim: self.dim }
    }
}

/// Log-softmax over one dimension: `x_i - log(sum_j exp(x_j))`, computed stably.
#[derive(Module, Debug)]
pub struct LogSoftmax {
    /// Dimension to normalise over (negative counts from the end).
    pub dim: isize,
}

impl LogSoftmax {
    /// Creates a log-softmax over `dim` (negative counts from the end).
    pub fn new(dim: isize) -> Self {
        Self { dim }
    }

    /// Applies log-softmax along `self.dim`.
    ///
    /// # Shapes
    ///
    /// - input: `[..]`, any rank `D`
    /// - output: same shape as the input
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        activation::log_softmax(input, self.dim)
    }
}
