//! [`OnnxLayer`], the layers the writer exports, and their constructors from
//! unidl (Burn) modules.

use crate::error::{InteropError, Result};
use crate::host::{HostData, HostTensor};

/// An element-wise activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OnnxActivation {
    /// `Relu`.
    Relu,
    /// `Sigmoid`.
    Sigmoid,
    /// `Tanh`.
    Tanh,
    /// `LeakyRelu` with this negative slope.
    LeakyRelu(f32),
    /// `Softmax` over this axis.
    Softmax(i64),
}

/// Weights of one direction of one recurrent layer, PyTorch layout:
/// `weight_ih` `[G·h, in]`, `weight_hh` `[G·h, h]`, biases `[G·h]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentHost {
    /// Input weights.
    pub weight_ih: HostTensor,
    /// Recurrent weights.
    pub weight_hh: HostTensor,
    /// Input bias.
    pub bias_ih: Option<HostTensor>,
    /// Recurrent bias.
    pub bias_hh: Option<HostTensor>,
}

/// One layer of a sequential model the ONNX writer can express.
#[derive(Debug, Clone, PartialEq)]
pub enum OnnxLayer {
    /// 2-D convolution, weight OIHW.
    Conv2d {
        /// `[out, in/groups, kh, kw]`.
        weight: HostTensor,
        /// `[out]`.
        bias: Option<HostTensor>,
        /// Strides (h, w).
        stride: [usize; 2],
        /// Padding top, left, bottom, right.
        padding: [usize; 4],
        /// Dilation (h, w).
        dilation: [usize; 2],
        /// Groups.
        groups: usize,
    },
    /// Fully connected layer on the last axis, weight `[in, out]`.
    Linear {
        /// `[in, out]`.
        weight: HostTensor,
        /// `[out]`.
        bias: Option<HostTensor>,
    },
    /// Batch normalisation in inference mode over axis 1.
    BatchNorm {
        /// Scale.
        gamma: HostTensor,
        /// Shift.
        beta: HostTensor,
        /// Running mean.
        mean: HostTensor,
        /// Running variance.
        var: HostTensor,
        /// Epsilon.
        epsilon: f64,
    },
    /// 2-D max pooling.
    MaxPool2d {
        /// Window (h, w).
        kernel: [usize; 2],
        /// Strides.
        stride: [usize; 2],
        /// Padding top, left, bottom, right.
        padding: [usize; 4],
        /// Dilation.
        dilation: [usize; 2],
        /// Round output sizes up.
        ceil_mode: bool,
    },
    /// 2-D average pooling.
    AvgPool2d {
        /// Window (h, w).
        kernel: [usize; 2],
        /// Strides.
        stride: [usize; 2],
        /// Padding top, left, bottom, right.
        padding: [usize; 4],
        /// Count padded zeros in the average.
        count_include_pad: bool,
        /// Round output sizes up.
        ceil_mode: bool,
    },
    /// Global average pooling `[N, C, H, W]` → `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// Flatten to `[N, rest]`.
    Flatten,
    /// Activation.
    Activation(OnnxActivation),
    /// Multi-layer LSTM (PyTorch semantics and gate order i, f, g, o); input
    /// and output batch-first `[N, T, F]` when `batch_first`, else `[T, N, F]`.
    Lstm {
        /// Per layer: forward and optional reverse direction.
        layers: Vec<(RecurrentHost, Option<RecurrentHost>)>,
        /// Batch-first input/output.
        batch_first: bool,
    },
    /// Multi-layer GRU (PyTorch semantics, gate order r, z, n).
    Gru {
        /// Per layer: forward and optional reverse direction.
        layers: Vec<(RecurrentHost, Option<RecurrentHost>)>,
        /// Batch-first input/output.
        batch_first: bool,
    },
}

fn host_of<const D: usize>(t: burn::tensor::Tensor<D>, what: &str) -> Result<HostTensor> {
    let shape = t.dims().to_vec();
    let v = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| InteropError::Mapping {
            key: what.to_string(),
            reason: format!("{e:?}"),
        })?;
    Ok(HostTensor {
        shape,
        data: HostData::F32(v),
    })
}

fn pad4(p: &burn::nn::PaddingConfig2d, what: &str) -> Result<[usize; 4]> {
    match p {
        burn::nn::PaddingConfig2d::Valid => Ok([0; 4]),
        burn::nn::PaddingConfig2d::Explicit(t, l, b, r) => Ok([*t, *l, *b, *r]),
        other => Err(InteropError::Mapping {
            key: what.to_string(),
            reason: format!("padding {other:?} depends on the input size; use explicit padding"),
        }),
    }
}

fn recurrent_host(
    layers: &[unidl_nn::RecurrentLayer],
) -> Result<Vec<(RecurrentHost, Option<RecurrentHost>)>> {
    let one = |w: &unidl_nn::RecurrentWeights| -> Result<RecurrentHost> {
        Ok(RecurrentHost {
            weight_ih: host_of(w.weight_ih.val(), "weight_ih")?,
            weight_hh: host_of(w.weight_hh.val(), "weight_hh")?,
            bias_ih: w
                .bias_ih
                .as_ref()
                .map(|b| host_of(b.val(), "bias_ih"))
                .transpose()?,
            bias_hh: w
                .bias_hh
                .as_ref()
                .map(|b| host_of(b.val(), "bias_hh"))
                .transpose()?,
        })
    };
    layers
        .iter()
        .map(|l| Ok((one(&l.forward)?, l.reverse.as_ref().map(one).transpose()?)))
        .collect()
}

impl OnnxLayer {
    /// From a Burn/unidl `Conv2d`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] for `Same` padding (size-dependent).
    pub fn from_conv2d(m: &unidl_nn::Conv2d) -> Result<Self> {
        Ok(OnnxLayer::Conv2d {
            weight: host_of(m.weight.val(), "conv.weight")?,
            bias: m
                .bias
                .as_ref()
                .map(|b| host_of(b.val(), "conv.bias"))
                .transpose()?,
            stride: m.stride,
            padding: pad4(&m.padding, "conv")?,
            dilation: m.dilation,
            groups: m.groups,
        })
    }

    /// From a Burn/unidl `Linear` (weight `[in, out]`).
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_linear(m: &unidl_nn::Linear) -> Result<Self> {
        Ok(OnnxLayer::Linear {
            weight: host_of(m.weight.val(), "linear.weight")?,
            bias: m
                .bias
                .as_ref()
                .map(|b| host_of(b.val(), "linear.bias"))
                .transpose()?,
        })
    }

    /// From a Burn `BatchNorm` (unidl `BatchNorm2d::inner()`), inference mode.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_batch_norm(m: &burn::nn::BatchNorm) -> Result<Self> {
        Ok(OnnxLayer::BatchNorm {
            gamma: host_of(m.gamma.val(), "bn.gamma")?,
            beta: host_of(m.beta.val(), "bn.beta")?,
            mean: host_of(m.running_mean.value(), "bn.running_mean")?,
            var: host_of(m.running_var.value(), "bn.running_var")?,
            epsilon: m.epsilon,
        })
    }

    /// From a Burn/unidl `MaxPool2d`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] for `Same` padding.
    pub fn from_max_pool2d(m: &unidl_nn::MaxPool2d) -> Result<Self> {
        Ok(OnnxLayer::MaxPool2d {
            kernel: m.kernel_size,
            stride: m.stride,
            padding: pad4(&m.padding, "max_pool2d")?,
            dilation: m.dilation,
            ceil_mode: m.ceil_mode,
        })
    }

    /// From a Burn/unidl `AvgPool2d`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] for `Same` padding.
    pub fn from_avg_pool2d(m: &unidl_nn::AvgPool2d) -> Result<Self> {
        Ok(OnnxLayer::AvgPool2d {
            kernel: m.kernel_size,
            stride: m.stride,
            padding: pad4(&m.padding, "avg_pool2d")?,
            count_include_pad: m.count_include_pad,
            ceil_mode: m.ceil_mode,
        })
    }

    /// From a unidl multi-layer `Lstm`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_lstm(m: &unidl_nn::Lstm) -> Result<Self> {
        Ok(OnnxLayer::Lstm {
            layers: recurrent_host(&m.layers)?,
            batch_first: m.batch_first,
        })
    }

    /// From a unidl multi-layer `Gru`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_gru(m: &unidl_nn::Gru) -> Result<Self> {
        Ok(OnnxLayer::Gru {
            layers: recurrent_host(&m.layers)?,
            batch_first: m.batch_first,
        })
    }
}
