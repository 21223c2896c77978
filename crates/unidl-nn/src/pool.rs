//! Pooling layers.
//!
//! 1-D and 2-D max/average pooling and 1/2/3-D adaptive average pooling are
//! Burn's, re-exported. Burn has no 3-D max/average pooling, no adaptive max
//! pooling and no global pooling; those are defined here, built only from
//! differentiable Burn tensor operations so that autodiff produces their
//! gradients (max pooling routes the gradient to the arg-max element).
//!
//! 3-D pooling is computed separably: a 2-D pooling over `(H, W)` of the
//! input viewed as `[N, C*D, H, W]`, then a pooling over `D` of the result
//! viewed as `[N, C, D, H'*W']` with a `[k_d, 1]` window. The maximum and the
//! (padding-aware) mean over a box window factor exactly this way, including
//! `count_include_pad = false` and `ceil_mode` (window sizes are products of
//! per-axis sizes).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};

pub use burn::nn::pool::{
    AdaptiveAvgPool1d, AdaptiveAvgPool1dConfig, AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig,
    AdaptiveAvgPool3d, AdaptiveAvgPool3dConfig, AvgPool1d, AvgPool1dConfig, AvgPool2d,
    AvgPool2dConfig, MaxPool1d, MaxPool1dConfig, MaxPool2d, MaxPool2dConfig,
};

fn check_window(name: &str, kernel: [usize; 3], stride: [usize; 3], padding: [usize; 3]) {
    for i in 0..3 {
        assert!(kernel[i] > 0, "{name}: kernel_size must be non-zero");
        assert!(stride[i] > 0, "{name}: stride must be non-zero");
        assert!(
            padding[i] <= kernel[i] / 2,
            "{name}: padding ({:?}) must be at most half the kernel size ({:?})",
            padding,
            kernel
        );
    }
}

/// Configuration of [`MaxPool3d`] (PyTorch `nn.MaxPool3d`).
#[derive(Config, Debug)]
pub struct MaxPool3dConfig {
    /// Window size `[k_d, k_h, k_w]`.
    pub kernel_size: [usize; 3],
    /// Step between windows `[s_d, s_h, s_w]`; defaults to the kernel size.
    #[config(default = "kernel_size")]
    pub stride: [usize; 3],
    /// Implicit `-inf` padding added on both sides of each axis; at most half the kernel size.
    #[config(default = "[0, 0, 0]")]
    pub padding: [usize; 3],
    /// Spacing between window elements.
    #[config(default = "[1, 1, 1]")]
    pub dilation: [usize; 3],
    /// Use `ceil` instead of `floor` for the output size (windows must start inside the
    /// input or the left padding, as in PyTorch).
    #[config(default = false)]
    pub ceil_mode: bool,
}

impl MaxPool3dConfig {
    /// Builds the (parameter-free) module.
    ///
    /// # Panics
    ///
    /// If a kernel size, stride or dilation is zero, or a padding exceeds half the kernel size.
    pub fn init(&self) -> MaxPool3d {
        check_window("MaxPool3d", self.kernel_size, self.stride, self.padding);
        assert!(
            self.dilation.iter().all(|&d| d > 0),
            "MaxPool3d: dilation must be non-zero"
        );
        MaxPool3d {
            kernel_size: self.kernel_size,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }
}

/// 3-D max pooling over `[N, C, D, H, W]` inputs.
#[derive(Module, Debug)]
pub struct MaxPool3d {
    /// Window size `[k_d, k_h, k_w]`.
    pub kernel_size: [usize; 3],
    /// Step between windows.
    pub stride: [usize; 3],
    /// Symmetric padding per axis.
    pub padding: [usize; 3],
    /// Spacing between window elements.
    pub dilation: [usize; 3],
    /// Ceil instead of floor for the output size.
    pub ceil_mode: bool,
}

impl MaxPool3d {
    /// Takes the maximum of each window.
    ///
    /// The gradient of an output element flows to the input element that was the maximum.
    ///
    /// # Shapes
    ///
    /// - input: `[N, C, D, H, W]`
    /// - output: `[N, C, D_out, H_out, W_out]`, where per axis
    ///   `out = floor_or_ceil((in + 2*padding - dilation*(kernel-1) - 1) / stride) + 1`
    pub fn forward(&self, input: Tensor<5>) -> Tensor<5> {
        let [n, c, d, h, w] = input.dims();
        let [kd, kh, kw] = self.kernel_size;
        let [sd, sh, sw] = self.stride;
        let [pd, ph, pw] = self.padding;
        let [dd, dh, dw] = self.dilation;

        let plane = max_pool2d(
            input.reshape([n, c * d, h, w]),
            MaxPoolOptions::new([kh, kw])
                .with_stride([sh, sw])
                .with_padding([ph, pw])
                .with_dilation([dh, dw])
                .with_ceil_mode(self.ceil_mode),
        );
        let [_, _, ho, wo] = plane.dims();
        let depth = max_pool2d(
            plane.reshape([n, c, d, ho * wo]),
            MaxPoolOptions::new([kd, 1])
                .with_stride([sd, 1])
                .with_padding([pd, 0])
                .with_dilation([dd, 1])
                .with_ceil_mode(self.ceil_mode),
        );
        let [_, _, dout, _] = depth.dims();
        depth.reshape([n, c, dout, ho, wo])
    }
}

/// Configuration of [`AvgPool3d`] (PyTorch `nn.AvgPool3d`, without `divisor_override`).
#[derive(Config, Debug)]
pub struct AvgPool3dConfig {
    /// Window size `[k_d, k_h, k_w]`.
    pub kernel_size: [usize; 3],
    /// Step between windows `[s_d, s_h, s_w]`; defaults to the kernel size.
    #[config(default = "kernel_size")]
    pub stride: [usize; 3],
    /// Implicit zero padding added on both sides of each axis; at most half the kernel size.
    #[config(default = "[0, 0, 0]")]
    pub padding: [usize; 3],
    /// Whether padded zeros count in the divisor (PyTorch's default, `true`).
    #[config(default = true)]
    pub count_include_pad: bool,
    /// Use `ceil` instead of `floor` for the output size.
    #[config(default = false)]
    pub ceil_mode: bool,
}

impl AvgPool3dConfig {
    /// Builds the (parameter-free) module.
    ///
    /// # Panics
    ///
    /// If a kernel size or stride is zero, or a padding exceeds half the kernel size.
    pub fn init(&self) -> AvgPool3d {
        check_window("AvgPool3d", self.kernel_size, self.stride, self.padding);
        AvgPool3d {
            kernel_size: self.kernel_size,
            stride: self.stride,
            padding: self.padding,
            count_include_pad: self.count_include_pad,
            ceil_mode: self.ceil_mode,
        }
    }
}

/// 3-D average pooling over `[N, C, D, H, W]` inputs.
#[derive(Module, Debug)]
pub struct AvgPool3d {
    /// Window size `[k_d, k_h, k_w]`.
    pub kernel_size: [usize; 3],
    /// Step between windows.
    pub stride: [usize; 3],
    /// Symmetric padding per axis.
    pub padding: [usize; 3],
    /// Whether padded zeros count in the divisor.
    pub count_include_pad: bool,
    /// Ceil instead of floor for the output size.
    pub ceil_mode: bool,
}

impl AvgPool3d {
    /// Averages each window.
    ///
    /// # Shapes
    ///
    /// - input: `[N, C, D, H, W]`
    /// - output: `[N, C, D_out, H_out, W_out]`, where per axis
    ///   `out = floor_or_ceil((in + 2*padding - kernel) / stride) + 1`
    pub fn forward(&self, input: Tensor<5>) -> Tensor<5> {
        let [n, c, d, h, w] = input.dims();
        let [kd, kh, kw] = self.kernel_size;
        let [sd, sh, sw] = self.stride;
        let [pd, ph, pw] = self.padding;

        let plane = avg_pool2d(
            input.reshape([n, c * d, h, w]),
            AvgPoolOptions::new([kh, kw])
                .with_stride([sh, sw])
                .with_padding([ph, pw])
                .with_count_include_pad(self.count_include_pad)
                .with_ceil_mode(self.ceil_mode),
        );
        let [_, _, ho, wo] = plane.dims();
        let depth = avg_pool2d(
            plane.reshape([n, c, d, ho * wo]),
            AvgPoolOptions::new([kd, 1])
                .with_stride([sd, 1])
                .with_padding([pd, 0])
                .with_count_include_pad(self.count_include_pad)
                .with_ceil_mode(self.ceil_mode),
        );
        let [_, _, dout, _] = depth.dims();
        depth.reshape([n, c, dout, ho, wo])
    }
}

/// Adaptive max pooling along one axis, with PyTorch's window rule:
/// output `i` covers `[floor(i*L/O), ceil((i+1)*L/O))`.
fn adaptive_max_axis<const D: usize>(input: Tensor<D>, axis: usize, output: usize) -> Tensor<D> {
    let len = input.dims()[axis];
    assert!(
        output > 0,
        "adaptive max pooling: output size must be non-zero"
    );
    if len == output {
        return input;
    }
    let windows = (0..output)
        .map(|i| {
            let start = i * len / output;
            let end = ((i + 1) * len).div_ceil(output);
            input.clone().slice_dim(axis, start..end).max_dim(axis)
        })
        .collect();
    Tensor::cat(windows, axis)
}

macro_rules! adaptive_max_pool {
    (
        $config:ident, $name:ident, $size:ty, $rank:literal, $torch:literal,
        input $in_shape:literal, output $out_shape:literal, |$s:ident| $axes:expr
    ) => {
        #[doc = concat!("Configuration of [`", stringify!($name), "`] (PyTorch `nn.", $torch, "`).")]
        #[derive(Config, Debug)]
        pub struct $config {
            /// Size of the pooled spatial dimensions.
            pub output_size: $size,
        }

        impl $config {
            /// Builds the (parameter-free) module.
            pub fn init(&self) -> $name {
                $name {
                    output_size: self.output_size,
                }
            }
        }

        #[doc = concat!("Adaptive max pooling over ", $in_shape, " inputs: output cell `i` of an axis of length `L` ")]
        /// pooled to `O` takes the maximum over input positions `floor(i*L/O)` to
        /// `ceil((i+1)*L/O) - 1`, as PyTorch does. The gradient flows to the arg-max element.
        #[derive(Module, Debug)]
        pub struct $name {
            /// Size of the pooled spatial dimensions.
            pub output_size: $size,
        }

        impl $name {
            /// Takes the maximum of each adaptive window.
            ///
            /// # Shapes
            ///
            #[doc = concat!("- input: ", $in_shape)]
            #[doc = concat!("- output: ", $out_shape)]
            pub fn forward(&self, input: Tensor<$rank>) -> Tensor<$rank> {
                let $s = self.output_size;
                let axes: &[(usize, usize)] = &$axes;
                axes.iter()
                    .fold(input, |x, &(axis, size)| adaptive_max_axis(x, axis, size))
            }
        }
    };
}

adaptive_max_pool!(
    AdaptiveMaxPool1dConfig, AdaptiveMaxPool1d, usize, 3, "AdaptiveMaxPool1d",
    input "`[N, C, L]`", output "`[N, C, output_size]`",
    |s| [(2, s)]
);
adaptive_max_pool!(
    AdaptiveMaxPool2dConfig, AdaptiveMaxPool2d, [usize; 2], 4, "AdaptiveMaxPool2d",
    input "`[N, C, H, W]`", output "`[N, C, output_size[0], output_size[1]]`",
    |s| [(2, s[0]), (3, s[1])]
);
adaptive_max_pool!(
    AdaptiveMaxPool3dConfig, AdaptiveMaxPool3d, [usize; 3], 5, "AdaptiveMaxPool3d",
    input "`[N, C, D, H, W]`", output "`[N, C, output_size[0], output_size[1], output_size[2]]`",
    |s| [(2, s[0]), (3, s[1]), (4, s[2])]
);

macro_rules! global_pool {
    (
        $name:ident, $rank:literal, $what:literal, $in_shape:literal,
        $ones:literal, |$x:ident| $reduce:expr
    ) => {
        #[doc = concat!("Global ", $what, " pooling: reduces every spatial dimension of a ", $in_shape, " input.")]
        ///
        /// Parameter-free; build it with `new()` (or `Default`).
        #[derive(Module, Debug, Default)]
        pub struct $name;

        impl $name {
            /// Creates the module.
            pub fn new() -> Self {
                Self
            }

            #[doc = concat!("Reduces the spatial dimensions with the ", $what, " and flattens them away")]
            /// (like Keras' global pooling layers).
            ///
            /// # Shapes
            ///
            #[doc = concat!("- input: ", $in_shape)]
            /// - output: `[N, C]`
            pub fn forward(&self, input: Tensor<$rank>) -> Tensor<2> {
                let dims = input.dims();
                let (n, c) = (dims[0], dims[1]);
                let $x = input.reshape([n, c, dims[2..].iter().product::<usize>()]);
                let reduced: Tensor<3> = $reduce;
                reduced.reshape([n, c])
            }

            /// Same as [`forward`](Self::forward), but keeps the spatial dimensions with size 1
            /// (like PyTorch's adaptive pooling to size 1).
            ///
            /// # Shapes
            ///
            #[doc = concat!("- input: ", $in_shape)]
            #[doc = concat!("- output: ", $ones)]
            pub fn forward_keep_dims(&self, input: Tensor<$rank>) -> Tensor<$rank> {
                let mut shape = input.dims();
                shape[2..].fill(1);
                self.forward(input).reshape(shape)
            }
        }
    };
}

global_pool!(
    GlobalAvgPool1d,
    3,
    "average",
    "`[N, C, L]`",
    "`[N, C, 1]`",
    |x| x.mean_dim(2)
);
global_pool!(
    GlobalAvgPool2d,
    4,
    "average",
    "`[N, C, H, W]`",
    "`[N, C, 1, 1]`",
    |x| x.mean_dim(2)
);
global_pool!(
    GlobalAvgPool3d,
    5,
    "average",
    "`[N, C, D, H, W]`",
    "`[N, C, 1, 1, 1]`",
    |x| x.mean_dim(2)
);
global_pool!(
    GlobalMaxPool1d,
    3,
    "maximum",
    "`[N, C, L]`",
    "`[N, C, 1]`",
    |x| x.max_dim(2)
);
global_pool!(
    GlobalMaxPool2d,
    4,
    "maximum",
    "`[N, C, H, W]`",
    "`[N, C, 1, 1]`",
    |x| x.max_dim(2)
);
global_pool!(
    GlobalMaxPool3d,
    5,
    "maximum",
    "`[N, C, D, H, W]`",
    "`[N, C, 1, 1, 1]`",
    |x| x.max_dim(2)
);
