//! YOLOv8's building blocks (Jocher et al., Ultralytics YOLOv8, 2023),
//! written from the architecture's description and checked against
//! ultralytics 8.4.190 by numbers only (`tests/reference/gen_yolov8.py`):
//! `Conv` (convolution without bias, batch norm with ε 1e-3 and momentum
//! 0.03, SiLU), `Bottleneck`, `C2f`, `SPPF` and the decoupled `Detect`
//! head with its distribution-focal-loss projection.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use burn::tensor::activation::silu;
use unidl_backend::Device;
use unidl_nn::{
    BatchNorm2d, BatchNorm2dConfig, Conv2d, Conv2dConfig, MaxPool2d, MaxPool2dConfig,
    PaddingConfig2d,
};

/// Convolution (no bias, padding `k/2`) + batch norm + SiLU (ultralytics
/// `Conv`: `conv`, `bn`).
#[derive(Module, Debug)]
pub struct ConvBnSilu {
    /// The convolution.
    pub conv: Conv2d,
    /// Batch norm, ε 1e-3, momentum 0.03.
    pub bn: BatchNorm2d,
}

impl ConvBnSilu {
    /// `c[0] → c[1]` channels, `k × k`, stride `s`.
    pub fn new(c: [usize; 2], k: usize, s: usize, device: &Device) -> Self {
        let p = k / 2;
        ConvBnSilu {
            conv: Conv2dConfig::new(c, [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(false)
                .init(device),
            bn: BatchNorm2dConfig::new(c[1])
                .with_epsilon(1e-3)
                .with_momentum(0.03)
                .init(device),
        }
    }

    /// # Shapes
    /// `[B, c0, H, W]` → `[B, c1, H/s, W/s]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        silu(self.bn.forward(self.conv.forward(x)))
    }
}

/// Two 3×3 `Conv`s with a residual connection when `add` (ultralytics
/// `Bottleneck(c, c, shortcut, e=1.0)`).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// First convolution.
    pub cv1: ConvBnSilu,
    /// Second convolution.
    pub cv2: ConvBnSilu,
    /// Residual connection.
    pub add: bool,
}

/// C2f: a 1×1 `Conv` to `2c` channels split in two halves, `n` bottlenecks
/// chained on the second half, every intermediate concatenated and fused
/// by a 1×1 `Conv` (`cv1`, `m.{k}`, `cv2`).
#[derive(Module, Debug)]
pub struct C2f {
    /// `c1 → 2c`.
    pub cv1: ConvBnSilu,
    /// `(2 + n)c → c2`.
    pub cv2: ConvBnSilu,
    /// The bottlenecks.
    pub m: Vec<Bottleneck>,
    /// Hidden channels `c = ⌊c2 / 2⌋`.
    pub c: usize,
}

impl C2f {
    /// `c1 → c2` with `n` bottlenecks, residual when `shortcut`.
    pub fn new(c1: usize, c2: usize, n: usize, shortcut: bool, device: &Device) -> Self {
        let c = c2 / 2;
        C2f {
            cv1: ConvBnSilu::new([c1, 2 * c], 1, 1, device),
            cv2: ConvBnSilu::new([(2 + n) * c, c2], 1, 1, device),
            m: (0..n)
                .map(|_| Bottleneck {
                    cv1: ConvBnSilu::new([c, c], 3, 1, device),
                    cv2: ConvBnSilu::new([c, c], 3, 1, device),
                    add: shortcut,
                })
                .collect(),
            c,
        }
    }

    /// # Shapes
    /// `[B, c1, H, W]` → `[B, c2, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.cv1.forward(x).chunk(2, 1);
        for b in &self.m {
            let last = y.last().expect("two halves").clone();
            let z = b.cv2.forward(b.cv1.forward(last.clone()));
            y.push(if b.add { last + z } else { z });
        }
        self.cv2.forward(Tensor::cat(y, 1))
    }
}

/// Spatial pyramid pooling, fast: a 1×1 `Conv` to `c1/2` channels, three chained 5×5 stride-1 max-pools, the four maps
/// concatenated and fused by a 1×1 `Conv` (`cv1`, `cv2`).
#[derive(Module, Debug)]
pub struct Sppf {
    /// `c1 → c1/2`.
    pub cv1: ConvBnSilu,
    /// `2·c1 → c2`.
    pub cv2: ConvBnSilu,
    /// 5×5, stride 1, padding 2.
    pub pool: MaxPool2d,
}

impl Sppf {
    /// `c1 → c2`.
    pub fn new(c1: usize, c2: usize, device: &Device) -> Self {
        let c = c1 / 2;
        Sppf {
            cv1: ConvBnSilu::new([c1, c], 1, 1, device),
            cv2: ConvBnSilu::new([4 * c, c2], 1, 1, device),
            pool: MaxPool2dConfig::new([5, 5])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(),
        }
    }

    /// # Shapes
    /// `[B, c1, H, W]` → `[B, c2, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y0 = self.cv1.forward(x);
        let y1 = self.pool.forward(y0.clone());
        let y2 = self.pool.forward(y1.clone());
        let y3 = self.pool.forward(y2.clone());
        self.cv2.forward(Tensor::cat(vec![y0, y1, y2, y3], 1))
    }
}

/// One branch of the head for one level: two 3×3 `Conv`s and a 1×1
/// convolution with bias (ultralytics `cv2.{l}` / `cv3.{l}`: `.0`, `.1`, `.2`).
#[derive(Module, Debug)]
pub struct HeadBranch {
    /// First 3×3 `Conv`.
    pub c0: ConvBnSilu,
    /// Second 3×3 `Conv`.
    pub c1: ConvBnSilu,
    /// 1×1 output convolution.
    pub c2: Conv2d,
}

impl HeadBranch {
    /// `input → hidden → hidden → out`, the output bias set to `bias`.
    pub fn new(input: usize, hidden: usize, out: usize, bias: f32, device: &Device) -> Self {
        let c2 = Conv2dConfig::new([hidden, out], [1, 1]).init(device);
        let c2 = Conv2d {
            bias: c2.bias.map(|b| b.map(|t| t.zeros_like().add_scalar(bias))),
            ..c2
        };
        HeadBranch {
            c0: ConvBnSilu::new([input, hidden], 3, 1, device),
            c1: ConvBnSilu::new([hidden, hidden], 3, 1, device),
            c2,
        }
    }

    /// # Shapes
    /// `[B, input, H, W]` → `[B, out, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.c2.forward(self.c1.forward(self.c0.forward(x)))
    }
}

/// The distribution-focal projection: the expected bin of a softmax over
/// `reg_max` bins, as a fixed 1×1 convolution with weights `0…reg_max−1`
/// (ultralytics `dfl.conv.weight`, a buffer here: it never trains).
#[derive(Module, Debug)]
pub struct Dfl {
    /// `[1, reg_max, 1, 1]`, `0, 1, …, reg_max − 1`.
    pub weight: Param<Tensor<4>>,
}

impl Dfl {
    /// Over `reg_max` bins.
    pub fn new(reg_max: usize, device: &Device) -> Self {
        let w = Tensor::<1, burn::tensor::Int>::arange(0..reg_max as i64, device)
            .float()
            .reshape([1, reg_max, 1, 1]);
        Dfl {
            weight: Param::from_tensor(w).set_require_grad(false),
        }
    }

    /// Expected distances from bin logits.
    ///
    /// # Shapes
    /// `[B, 4·reg_max, A]` → `[B, 4, A]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, c, a] = x.dims();
        let r = c / 4;
        let p = burn::tensor::activation::softmax(x.reshape([b, 4, r, a]), 2); // [B, 4, r, A]
        let w = self.weight.val().reshape([1, 1, r, 1]);
        (p * w).sum_dim(2).reshape([b, 4, a])
    }
}
