//! Integration tests of the unidl-nn module catalogue, on `Device::flex()`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Int, Tensor, TensorData};
use unidl_nn::*;

fn dev() -> Device {
    Device::flex()
}

/// Deterministic pseudo-random values in [-1, 1) (distinct with overwhelming probability).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor<const D: usize>(data: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
    tensor(values(shape.iter().product(), seed), shape, &dev())
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn assert_close(actual: &[f32], expected: &[f32], tol: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "{what}: element {i}: got {a}, expected {e} (tolerance {tol})"
        );
    }
}

// ---------------------------------------------------------------------------
// Forward shapes of every module.
// ---------------------------------------------------------------------------

#[test]
fn activations_keep_shape() {
    let x = random([2, 3, 4], 1);
    assert_eq!(Sigmoid::new().forward(x.clone()).dims(), [2, 3, 4]);
    assert_eq!(Relu::new().forward(x.clone()).dims(), [2, 3, 4]);
    assert_eq!(Tanh::new().forward(x.clone()).dims(), [2, 3, 4]);
    assert_eq!(Gelu::new().forward(x.clone()).dims(), [2, 3, 4]);
    assert_eq!(SiLU::new().forward(x.clone()).dims(), [2, 3, 4]);
    let leaky = LeakyReluConfig::new().with_negative_slope(0.2).init();
    assert_eq!(leaky.forward(x.clone()).dims(), [2, 3, 4]);
    assert_eq!(
        LogSoftmaxConfig::new(1).init().forward(x.clone()).dims(),
        [2, 3, 4]
    );

    let softmax = SoftmaxConfig::new(-1).init();
    let y = softmax.forward(x.clone());
    assert_eq!(y.dims(), [2, 3, 4]);
    let sums = to_vec(y.sum_dim(2));
    assert_close(&sums, &[1.0; 6], 1e-6, "softmax rows sum to one");
    let y1 = Softmax::new(1).forward(x);
    assert_close(
        &to_vec(y1.sum_dim(1)),
        &[1.0; 8],
        1e-6,
        "softmax over dim 1",
    );
}

#[test]
fn convolutions_shapes() {
    let d = dev();
    let c1 = Conv1dConfig::new(3, 5, 3).init(&d);
    assert_eq!(c1.forward(random([2, 3, 10], 2)).dims(), [2, 5, 8]);
    let c2 = Conv2dConfig::new([3, 4], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&d);
    assert_eq!(c2.forward(random([2, 3, 6, 7], 3)).dims(), [2, 4, 6, 7]);
    let c3 = Conv3dConfig::new([2, 4], [3, 3, 3]).init(&d);
    assert_eq!(
        c3.forward(random([1, 2, 5, 6, 7], 4)).dims(),
        [1, 4, 3, 4, 5]
    );

    let t1 = ConvTranspose1dConfig::new([3, 2], 3)
        .with_stride(2)
        .init(&d);
    assert_eq!(t1.forward(random([2, 3, 5], 5)).dims(), [2, 2, 11]);
    let t2 = ConvTranspose2dConfig::new([3, 2], [2, 2])
        .with_stride([2, 2])
        .init(&d);
    assert_eq!(t2.forward(random([2, 3, 4, 5], 6)).dims(), [2, 2, 8, 10]);
    let t3 = ConvTranspose3dConfig::new([2, 3], [2, 2, 2])
        .with_stride([2, 2, 2])
        .init(&d);
    assert_eq!(
        t3.forward(random([1, 2, 2, 3, 4], 7)).dims(),
        [1, 3, 4, 6, 8]
    );
}

#[test]
fn linear_dropout_embedding_shapes() {
    let d = dev();
    let linear = LinearConfig::new(6, 4).init(&d);
    assert_eq!(linear.forward(random([2, 3, 6], 8)).dims(), [2, 3, 4]);

    let dropout = DropoutConfig::new(0.5).init();
    let x = random([4, 5], 9);
    // Inactive outside autodiff: identity.
    assert_eq!(to_vec(dropout.forward(x.clone())), to_vec(x));

    let embedding = EmbeddingConfig::new(10, 4).init(&d);
    let ids = Tensor::<2, Int>::from_ints([[0, 3, 9], [1, 2, 2]], &d);
    assert_eq!(embedding.forward(ids).dims(), [2, 3, 4]);
}

#[test]
fn normalisation_shapes() {
    let d = dev();
    let bn1 = BatchNorm1dConfig::new(3).init(&d);
    assert_eq!(bn1.forward(random([4, 3], 10)).dims(), [4, 3]);
    assert_eq!(bn1.forward(random([4, 3, 7], 11)).dims(), [4, 3, 7]);
    let bn2 = BatchNorm2dConfig::new(3).init(&d);
    assert_eq!(bn2.forward(random([2, 3, 4, 5], 12)).dims(), [2, 3, 4, 5]);
    let bn3 = BatchNorm3dConfig::new(3).init(&d);
    assert_eq!(
        bn3.forward(random([2, 3, 2, 4, 5], 13)).dims(),
        [2, 3, 2, 4, 5]
    );
    let bn = BatchNormConfig::new(3).init(&d);
    assert_eq!(bn.forward(random([2, 3, 4, 5], 14)).dims(), [2, 3, 4, 5]);

    let ln = LayerNormConfig::new(5).init(&d);
    assert_eq!(ln.forward(random([2, 3, 5], 15)).dims(), [2, 3, 5]);
    let gn = GroupNormConfig::new(2, 4).init(&d);
    assert_eq!(gn.forward(random([2, 4, 3, 3], 16)).dims(), [2, 4, 3, 3]);
}

#[test]
#[should_panic(expected = "BatchNorm1d expects")]
fn batch_norm_1d_rejects_rank_4() {
    let bn1 = BatchNorm1dConfig::new(3).init(&dev());
    let _ = bn1.forward(random([2, 3, 4, 5], 17));
}

#[test]
fn batch_norm_wrapper_trains_like_batch_norm() {
    // On an autodiff device in training mode the wrapper uses batch statistics.
    let d = dev().autodiff();
    let bn2 = BatchNorm2dConfig::new(2).init(&d);
    let x = tensor(values(2 * 2 * 3 * 3, 18), [2, 2, 3, 3], &d);
    let y = bn2.forward(x);
    let mean = to_vec(y.clone().swap_dims(0, 1).reshape([2, 18]).mean_dim(1));
    assert_close(
        &mean,
        &[0.0, 0.0],
        1e-5,
        "per-channel mean after BatchNorm2d",
    );
    // The running mean moved away from 0; validation mode uses it.
    let valid = bn2.valid();
    let running = to_vec(valid.inner().running_mean.value());
    assert!(
        running.iter().any(|m| m.abs() > 1e-6),
        "running mean updated"
    );
    assert_eq!(format!("{valid}").split(' ').next(), Some("BatchNorm2d"));
}

/// Step `k`'s input of `n` values: `sin(0.37·i + k)·(1 + i mod 3)`.
fn bn_input(n: usize, k: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((0.37 * i as f64 + k as f64).sin() * (1 + i % 3) as f64) as f32)
        .collect()
}

/// Running statistics after three training steps equal PyTorch's
/// `nn.BatchNorm{1,2,3}d` (unbiased running variance), values from
/// `tests/reference/batch_norm.py`; Burn's own `BatchNorm` (biased update)
/// does not match them.
#[test]
fn batch_norm_running_stats_match_pytorch() {
    let d = dev().autodiff();
    let check = |what: &str, bn: &BatchNorm, mean: &[f32], var: &[f32]| {
        assert_close(&to_vec(bn.running_mean.value()), mean, 1e-6, what);
        assert_close(&to_vec(bn.running_var.value()), var, 1e-6, what);
    };
    // three training steps on inputs of `shape`, flat; `f` reshapes and runs
    let steps = |shape: &[usize], f: &dyn Fn(Tensor<1>)| {
        let n = shape.iter().product();
        for k in 0..3 {
            f(Tensor::<1>::from_data(
                TensorData::new(bn_input(n, k), [n]),
                &d,
            ));
        }
    };
    // [4, 3]
    let bn = BatchNorm1dConfig::new(3).init(&d);
    steps(&[4, 3], &|x| drop(bn.forward(x.reshape([4, 3]))));
    let v = bn.valid();
    let (m, var) = (
        [0.0271894, 0.0030857, -0.0729378],
        [0.8900613, 1.3682133, 2.1326532],
    );
    check("BatchNorm1d [4, 3]", v.inner(), &m, &var);
    // Burn's update differs
    let burn_bn = BatchNormConfig::new(3).init(&d);
    steps(&[4, 3], &|x| drop(burn_bn.forward(x.reshape([4, 3]))));
    let burn_var = to_vec(burn_bn.valid().running_var.value());
    assert!(
        (burn_var[0] - var[0]).abs() > 1e-3,
        "Burn's BatchNorm now matches PyTorch: {burn_var:?} (drop the local update, D20)"
    );
    // [2, 3, 2]
    let bn = BatchNorm1dConfig::new(3).init(&d);
    steps(&[2, 3, 2], &|x| drop(bn.forward(x.reshape([2, 3, 2]))));
    check(
        "BatchNorm1d [2, 3, 2]",
        bn.valid().inner(),
        &[0.0796976, 0.0189811, -0.1413413],
        &[1.1257594, 1.5453271, 1.6400496],
    );
    // [2, 3, 2, 2]
    let bn = BatchNorm2dConfig::new(3).init(&d);
    steps(&[2, 3, 2, 2], &|x| {
        drop(bn.forward(x.reshape([2, 3, 2, 2])))
    });
    check(
        "BatchNorm2d [2, 3, 2, 2]",
        bn.valid().inner(),
        &[0.1279491, 0.1752019, -0.1217322],
        &[1.1399431, 1.2415005, 1.3824155],
    );
    // [1, 2, 1, 1, 3] through the plain-BatchNorm function
    let plain = BatchNormConfig::new(2).init(&d);
    steps(&[1, 2, 1, 1, 3], &|x| {
        drop(batch_norm(&plain, x.reshape([1, 2, 1, 1, 3])))
    });
    check(
        "batch_norm [1, 2, 1, 1, 3]",
        &plain.valid(),
        &[0.3627815, 0.1581618],
        &[0.9208291, 0.9146726],
    );
    // evaluation mode leaves the statistics alone
    let frozen = bn.valid();
    let before = to_vec(frozen.inner().running_var.value());
    steps(&[2, 3, 2, 2], &|x| {
        drop(frozen.forward(x.reshape([2, 3, 2, 2])))
    });
    assert_eq!(to_vec(frozen.inner().running_var.value()), before);
}

#[test]
fn burn_pools_shapes() {
    let x3 = random([2, 3, 9], 19);
    let x4 = random([2, 3, 8, 9], 20);
    assert_eq!(
        MaxPool1dConfig::new(3).init().forward(x3.clone()).dims(),
        [2, 3, 3]
    );
    assert_eq!(
        AvgPool1dConfig::new(2).init().forward(x3.clone()).dims(),
        [2, 3, 4]
    );
    assert_eq!(
        MaxPool2dConfig::new([2, 2])
            .init()
            .forward(x4.clone())
            .dims(),
        [2, 3, 4, 4]
    );
    assert_eq!(
        AvgPool2dConfig::new([2, 3])
            .init()
            .forward(x4.clone())
            .dims(),
        [2, 3, 4, 3]
    );
    assert_eq!(
        AdaptiveAvgPool1dConfig::new(4).init().forward(x3).dims(),
        [2, 3, 4]
    );
    assert_eq!(
        AdaptiveAvgPool2dConfig::new([3, 2])
            .init()
            .forward(x4)
            .dims(),
        [2, 3, 3, 2]
    );
    let x5 = random([2, 3, 4, 5, 6], 21);
    assert_eq!(
        AdaptiveAvgPool3dConfig::new([2, 2, 3])
            .init()
            .forward(x5)
            .dims(),
        [2, 3, 2, 2, 3]
    );
}

#[test]
fn pools_3d_and_global_shapes() {
    let x = random([2, 3, 6, 7, 8], 22);
    let max = MaxPool3dConfig::new([2, 2, 2]).init();
    assert_eq!(max.forward(x.clone()).dims(), [2, 3, 3, 3, 4]);
    let max = MaxPool3dConfig::new([3, 3, 3])
        .with_stride([1, 2, 2])
        .with_padding([1, 1, 1])
        .init();
    assert_eq!(max.forward(x.clone()).dims(), [2, 3, 6, 4, 4]);
    let avg = AvgPool3dConfig::new([2, 3, 2]).init();
    assert_eq!(avg.forward(x.clone()).dims(), [2, 3, 3, 2, 4]);
    let amax = AdaptiveMaxPool3dConfig::new([4, 3, 5]).init();
    assert_eq!(amax.forward(x.clone()).dims(), [2, 3, 4, 3, 5]);

    assert_eq!(GlobalAvgPool3d::new().forward(x.clone()).dims(), [2, 3]);
    assert_eq!(GlobalMaxPool3d::new().forward(x.clone()).dims(), [2, 3]);
    assert_eq!(
        GlobalAvgPool3d::new().forward_keep_dims(x.clone()).dims(),
        [2, 3, 1, 1, 1]
    );
    assert_eq!(
        GlobalMaxPool3d::new().forward_keep_dims(x).dims(),
        [2, 3, 1, 1, 1]
    );

    let x4 = random([2, 3, 5, 7], 23);
    assert_eq!(
        AdaptiveMaxPool2dConfig::new([2, 3])
            .init()
            .forward(x4.clone())
            .dims(),
        [2, 3, 2, 3]
    );
    assert_eq!(GlobalAvgPool2d::new().forward(x4.clone()).dims(), [2, 3]);
    assert_eq!(
        GlobalMaxPool2d::new().forward_keep_dims(x4).dims(),
        [2, 3, 1, 1]
    );

    let x3 = random([2, 3, 7], 24);
    assert_eq!(
        AdaptiveMaxPool1dConfig::new(3)
            .init()
            .forward(x3.clone())
            .dims(),
        [2, 3, 3]
    );
    assert_eq!(
        GlobalAvgPool1d::new().forward_keep_dims(x3.clone()).dims(),
        [2, 3, 1]
    );
    assert_eq!(GlobalMaxPool1d::new().forward(x3).dims(), [2, 3]);
}

#[test]
fn global_pools_values() {
    let data = values(2 * 3 * 2 * 3 * 4, 25);
    let x = tensor(data.clone(), [2, 3, 2, 3, 4], &dev());
    let avg = to_vec(GlobalAvgPool3d::new().forward(x.clone()));
    let max = to_vec(GlobalMaxPool3d::new().forward(x));
    for (i, chunk) in data.chunks(24).enumerate() {
        let mean = chunk.iter().sum::<f32>() / 24.0;
        let m = chunk.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert!((avg[i] - mean).abs() < 1e-6);
        assert_eq!(max[i], m);
    }
}

// ---------------------------------------------------------------------------
// 3-D pooling: values and gradients against naive loops.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Window {
    kernel: [usize; 3],
    stride: [usize; 3],
    padding: [usize; 3],
    dilation: [usize; 3],
    ceil: bool,
}

fn out_len(input: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
    let span = input + 2 * p - d * (k - 1) - 1;
    let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
    if ceil && (out - 1) * s >= input + p {
        out -= 1;
    }
    out
}

/// Iterates over output cells of a [N, C, D, H, W] pooling; calls `f(out_index, window)` with the
/// window's list of (flat input index or None for padding) for max pooling, or for average
/// pooling the valid indices plus PyTorch's divisor.
struct Naive {
    shape: [usize; 5],
    out: [usize; 3],
    w: Window,
}

impl Naive {
    fn new(shape: [usize; 5], w: Window) -> Self {
        let out = [0, 1, 2].map(|a| {
            out_len(
                shape[2 + a],
                w.kernel[a],
                w.stride[a],
                w.padding[a],
                w.dilation[a],
                w.ceil,
            )
        });
        Self { shape, out, w }
    }

    fn out_shape(&self) -> [usize; 5] {
        [
            self.shape[0],
            self.shape[1],
            self.out[0],
            self.out[1],
            self.out[2],
        ]
    }

    /// For every output cell (in row-major order): the in-bounds input flat indices of its
    /// window and the PyTorch average divisor (with and without padding counted).
    fn windows(&self) -> Vec<(Vec<usize>, usize, usize)> {
        let [n, c, d, h, w] = self.shape;
        let dims = [d, h, w];
        let mut result = Vec::new();
        for ni in 0..n {
            for ci in 0..c {
                for od in 0..self.out[0] {
                    for oh in 0..self.out[1] {
                        for ow in 0..self.out[2] {
                            let o = [od, oh, ow];
                            // Per axis: in-bounds positions and the clipped window size.
                            let axes: Vec<(Vec<usize>, usize)> = (0..3)
                                .map(|a| {
                                    let start = (o[a] * self.w.stride[a]) as isize
                                        - self.w.padding[a] as isize;
                                    let mut pos = Vec::new();
                                    let mut padded = 0;
                                    for k in 0..self.w.kernel[a] {
                                        let i = start + (k * self.w.dilation[a]) as isize;
                                        if i < (dims[a] + self.w.padding[a]) as isize {
                                            padded += 1;
                                        }
                                        if i >= 0 && (i as usize) < dims[a] {
                                            pos.push(i as usize);
                                        }
                                    }
                                    (pos, padded)
                                })
                                .collect();
                            let mut idx = Vec::new();
                            for &id in &axes[0].0 {
                                for &ih in &axes[1].0 {
                                    for &iw in &axes[2].0 {
                                        idx.push((((ni * c + ci) * d + id) * h + ih) * w + iw);
                                    }
                                }
                            }
                            let with_pad = axes[0].1 * axes[1].1 * axes[2].1;
                            let valid = idx.len();
                            result.push((idx, with_pad, valid));
                        }
                    }
                }
            }
        }
        result
    }

    fn max(&self, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut out = Vec::new();
        let mut grad = vec![0.0; x.len()];
        for (idx, _, _) in self.windows() {
            let arg = *idx
                .iter()
                .max_by(|a, b| x[**a].partial_cmp(&x[**b]).unwrap())
                .unwrap();
            out.push(x[arg]);
            grad[arg] += 1.0;
        }
        (out, grad)
    }

    fn avg(&self, x: &[f32], count_include_pad: bool) -> (Vec<f32>, Vec<f32>) {
        let mut out = Vec::new();
        let mut grad = vec![0.0; x.len()];
        for (idx, with_pad, valid) in self.windows() {
            let divisor = if count_include_pad { with_pad } else { valid } as f32;
            out.push(idx.iter().map(|&i| x[i]).sum::<f32>() / divisor);
            for &i in &idx {
                grad[i] += 1.0 / divisor;
            }
        }
        (out, grad)
    }
}

fn max_pool_cases() -> Vec<Window> {
    vec![
        Window {
            kernel: [2, 2, 2],
            stride: [2, 2, 2],
            padding: [0; 3],
            dilation: [1; 3],
            ceil: false,
        },
        Window {
            kernel: [3, 2, 3],
            stride: [1, 2, 2],
            padding: [1, 1, 1],
            dilation: [1; 3],
            ceil: false,
        },
        Window {
            kernel: [2, 3, 2],
            stride: [2, 1, 3],
            padding: [1, 0, 1],
            dilation: [2, 1, 2],
            ceil: false,
        },
        // ceil_mode adds a partial last window along D and W.
        Window {
            kernel: [2, 2, 2],
            stride: [2, 2, 2],
            padding: [0, 1, 0],
            dilation: [1; 3],
            ceil: true,
        },
        Window {
            kernel: [3, 2, 2],
            stride: [2, 3, 2],
            padding: [1, 1, 0],
            dilation: [1, 1, 2],
            ceil: true,
        },
    ]
}

fn avg_pool_cases() -> Vec<Window> {
    vec![
        Window {
            kernel: [2, 2, 2],
            stride: [2, 2, 2],
            padding: [0; 3],
            dilation: [1; 3],
            ceil: false,
        },
        Window {
            kernel: [3, 2, 3],
            stride: [1, 2, 2],
            padding: [1, 1, 1],
            dilation: [1; 3],
            ceil: false,
        },
        Window {
            kernel: [2, 3, 2],
            stride: [3, 1, 2],
            padding: [1, 1, 0],
            dilation: [1; 3],
            ceil: false,
        },
        // ceil_mode adds partial windows along D and H (clipped divisors); along W the extra
        // window would start in the right padding and is dropped, as PyTorch does.
        Window {
            kernel: [2, 3, 2],
            stride: [2, 2, 2],
            padding: [0, 1, 1],
            dilation: [1; 3],
            ceil: true,
        },
    ]
}

const POOL_SHAPE: [usize; 5] = [2, 2, 5, 6, 7];

#[test]
fn naive_ceil_mode_cases_differ_from_floor() {
    // Guard that the ceil-mode cases really exercise partial windows.
    for w in [max_pool_cases()[3], avg_pool_cases()[3]] {
        let floor = Naive::new(POOL_SHAPE, Window { ceil: false, ..w }).out_shape();
        assert_ne!(Naive::new(POOL_SHAPE, w).out_shape(), floor);
    }
    assert_eq!(
        Naive::new(POOL_SHAPE, avg_pool_cases()[3]).out_shape(),
        [2, 2, 3, 4, 4]
    );
}

fn max_pool(w: Window) -> MaxPool3d {
    MaxPool3dConfig::new(w.kernel)
        .with_stride(w.stride)
        .with_padding(w.padding)
        .with_dilation(w.dilation)
        .with_ceil_mode(w.ceil)
        .init()
}

fn avg_pool(w: Window, count_include_pad: bool) -> AvgPool3d {
    AvgPool3dConfig::new(w.kernel)
        .with_stride(w.stride)
        .with_padding(w.padding)
        .with_count_include_pad(count_include_pad)
        .with_ceil_mode(w.ceil)
        .init()
}

#[test]
fn max_pool_3d_values_match_naive_loop() {
    for (case, w) in max_pool_cases().into_iter().enumerate() {
        let data = values(POOL_SHAPE.iter().product(), 100 + case as u64);
        let naive = Naive::new(POOL_SHAPE, w);
        let (expected, _) = naive.max(&data);
        let y = max_pool(w).forward(tensor(data, POOL_SHAPE, &dev()));
        assert_eq!(y.dims(), naive.out_shape(), "case {case}: shape");
        assert_close(
            &to_vec(y),
            &expected,
            1e-6,
            &format!("max pool case {case}"),
        );
    }
}

#[test]
fn avg_pool_3d_values_match_naive_loop() {
    for (case, w) in avg_pool_cases().into_iter().enumerate() {
        for count_include_pad in [true, false] {
            let data = values(POOL_SHAPE.iter().product(), 200 + case as u64);
            let naive = Naive::new(POOL_SHAPE, w);
            let (expected, _) = naive.avg(&data, count_include_pad);
            let y = avg_pool(w, count_include_pad).forward(tensor(data, POOL_SHAPE, &dev()));
            assert_eq!(y.dims(), naive.out_shape(), "case {case}: shape");
            assert_close(
                &to_vec(y),
                &expected,
                1e-5,
                &format!("avg pool case {case}, count_include_pad {count_include_pad}"),
            );
        }
    }
}

#[test]
fn max_pool_3d_gradient_lands_on_argmax() {
    let device = dev().autodiff();
    for (case, w) in max_pool_cases().into_iter().enumerate() {
        let data = values(POOL_SHAPE.iter().product(), 300 + case as u64);
        let (_, expected) = Naive::new(POOL_SHAPE, w).max(&data);
        let x = tensor(data, POOL_SHAPE, &device).require_grad();
        let grads = max_pool(w).forward(x.clone()).sum().backward();
        let gx = x.grad(&grads).expect("gradient of the input");
        assert_close(
            &to_vec(gx),
            &expected,
            0.0,
            &format!("max pool grad case {case}"),
        );
    }
}

#[test]
fn avg_pool_3d_gradient_is_reciprocal_window_size() {
    let device = dev().autodiff();
    // Non-overlapping 2x2x2 windows covering the whole input: every gradient is 1/8.
    let x = tensor(values(2 * 2 * 4 * 4 * 6, 400), [2, 2, 4, 4, 6], &device).require_grad();
    let pool = AvgPool3dConfig::new([2, 2, 2]).init();
    let grads = pool.forward(x.clone()).sum().backward();
    let gx = to_vec(x.grad(&grads).unwrap());
    assert_close(&gx, &vec![0.125; gx.len()], 1e-7, "avg pool grad 1/k^3");

    for (case, w) in avg_pool_cases().into_iter().enumerate() {
        for count_include_pad in [true, false] {
            let data = values(POOL_SHAPE.iter().product(), 500 + case as u64);
            let (_, expected) = Naive::new(POOL_SHAPE, w).avg(&data, count_include_pad);
            let x = tensor(data, POOL_SHAPE, &device).require_grad();
            let grads = avg_pool(w, count_include_pad)
                .forward(x.clone())
                .sum()
                .backward();
            let gx = to_vec(x.grad(&grads).unwrap());
            assert_close(
                &gx,
                &expected,
                1e-6,
                &format!("avg pool grad case {case}, count_include_pad {count_include_pad}"),
            );
        }
    }
}

#[test]
fn adaptive_max_pool_3d_values_and_gradient() {
    let shape = [1, 2, 5, 7, 4];
    let out = [3, 4, 4];
    let data = values(shape.iter().product(), 600);
    let [_, c, d, h, w] = shape;
    let window = |i: usize, len: usize, o: usize| (i * len / o)..((i + 1) * len).div_ceil(o);
    let mut expected = Vec::new();
    let mut expected_grad = vec![0.0f32; data.len()];
    for ci in 0..c {
        for od in 0..out[0] {
            for oh in 0..out[1] {
                for ow in 0..out[2] {
                    let mut best = (f32::NEG_INFINITY, 0);
                    for id in window(od, d, out[0]) {
                        for ih in window(oh, h, out[1]) {
                            for iw in window(ow, w, out[2]) {
                                let flat = ((ci * d + id) * h + ih) * w + iw;
                                if data[flat] > best.0 {
                                    best = (data[flat], flat);
                                }
                            }
                        }
                    }
                    expected.push(best.0);
                    expected_grad[best.1] += 1.0;
                }
            }
        }
    }
    let device = dev().autodiff();
    let x = tensor(data, shape, &device).require_grad();
    let y = AdaptiveMaxPool3dConfig::new(out).init().forward(x.clone());
    assert_eq!(y.dims(), [1, 2, 3, 4, 4]);
    assert_close(&to_vec(y.clone()), &expected, 0.0, "adaptive max values");
    let grads = y.sum().backward();
    assert_close(
        &to_vec(x.grad(&grads).unwrap()),
        &expected_grad,
        0.0,
        "adaptive max grad",
    );
}

// ---------------------------------------------------------------------------
// Recurrent layers against a straightforward per-timestep reference.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    RnnTanh,
    RnnRelu,
    Lstm,
    Gru,
}

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::RnnTanh | Kind::RnnRelu => 1,
            Kind::Lstm => 4,
            Kind::Gru => 3,
        }
    }
}

/// One direction's weights as plain row-major vectors.
struct DirWeights {
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
    input: usize,
}

fn read_param<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    to_vec(p.val())
}

fn read_direction(w: &RecurrentWeights, rows: usize) -> DirWeights {
    let [r, input] = w.weight_ih.val().dims();
    assert_eq!(r, rows);
    DirWeights {
        w_ih: read_param(&w.weight_ih),
        w_hh: read_param(&w.weight_hh),
        b_ih: w.bias_ih.as_ref().map_or(vec![0.0; rows], read_param),
        b_hh: w.bias_hh.as_ref().map_or(vec![0.0; rows], read_param),
        input,
    }
}

fn read_layers(layers: &[RecurrentLayer], rows: usize) -> Vec<Vec<DirWeights>> {
    layers
        .iter()
        .map(|l| {
            let mut dirs = vec![read_direction(&l.forward, rows)];
            if let Some(r) = &l.reverse {
                dirs.push(read_direction(r, rows));
            }
            dirs
        })
        .collect()
}

fn affine(w: &[f32], b: &[f32], x: &[f32]) -> Vec<f32> {
    let cols = x.len();
    b.iter()
        .enumerate()
        .map(|(r, bias)| bias + (0..cols).map(|j| w[r * cols + j] * x[j]).sum::<f32>())
        .collect()
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// One step of PyTorch's equations for one sample; returns (h', c').
fn cell_step(kind: Kind, w: &DirWeights, x: &[f32], h: &[f32], c: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let hs = h.len();
    let gi = affine(&w.w_ih, &w.b_ih, x);
    let gh = affine(&w.w_hh, &w.b_hh, h);
    match kind {
        Kind::RnnTanh => ((0..hs).map(|j| (gi[j] + gh[j]).tanh()).collect(), vec![]),
        Kind::RnnRelu => ((0..hs).map(|j| (gi[j] + gh[j]).max(0.0)).collect(), vec![]),
        Kind::Lstm => {
            let g = |k: usize, j: usize| gi[k * hs + j] + gh[k * hs + j];
            let mut h2 = vec![0.0; hs];
            let mut c2 = vec![0.0; hs];
            for j in 0..hs {
                let i = sigmoid(g(0, j));
                let f = sigmoid(g(1, j));
                let gg = g(2, j).tanh();
                let o = sigmoid(g(3, j));
                c2[j] = f * c[j] + i * gg;
                h2[j] = o * c2[j].tanh();
            }
            (h2, c2)
        }
        Kind::Gru => {
            let mut h2 = vec![0.0; hs];
            for j in 0..hs {
                let r = sigmoid(gi[j] + gh[j]);
                let z = sigmoid(gi[hs + j] + gh[hs + j]);
                let n = (gi[2 * hs + j] + r * gh[2 * hs + j]).tanh();
                h2[j] = (1.0 - z) * n + z * h[j];
            }
            (h2, vec![])
        }
    }
}

/// Reference stack. `x[b][t]` is one input step; `h0[l*D+d][b]` and `c0` likewise.
/// Returns (output[b][t] of size D*H, h_n[l*D+d][b], c_n[l*D+d][b]).
#[allow(clippy::type_complexity)]
fn reference(
    kind: Kind,
    layers: &[Vec<DirWeights>],
    x: &[Vec<Vec<f32>>],
    h0: &[Vec<Vec<f32>>],
    c0: &[Vec<Vec<f32>>],
) -> (Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>) {
    let batch = x.len();
    let steps = x[0].len();
    let dirs = layers[0].len();
    let mut h_n = vec![vec![]; layers.len() * dirs];
    let mut c_n = vec![vec![]; layers.len() * dirs];
    let mut seq: Vec<Vec<Vec<f32>>> = x.to_vec();
    for (l, layer) in layers.iter().enumerate() {
        let mut next: Vec<Vec<Vec<f32>>> = vec![vec![vec![]; steps]; batch];
        for (d, w) in layer.iter().enumerate() {
            let s = l * dirs + d;
            for b in 0..batch {
                assert_eq!(seq[b][0].len(), w.input);
                let mut h = h0[s][b].clone();
                let mut c = c0[s][b].clone();
                let order: Vec<usize> = if d == 0 {
                    (0..steps).collect()
                } else {
                    (0..steps).rev().collect()
                };
                for t in order {
                    let (h2, c2) = cell_step(kind, w, &seq[b][t], &h, &c);
                    h = h2;
                    c = c2;
                    next[b][t].extend_from_slice(&h);
                }
                h_n[s].push(h);
                c_n[s].push(c);
            }
        }
        seq = next;
    }
    (seq, h_n, c_n)
}

/// Nested [a][b][c] vector from a flat row-major buffer.
fn nest(flat: &[f32], a: usize, b: usize, c: usize) -> Vec<Vec<Vec<f32>>> {
    (0..a)
        .map(|i| {
            (0..b)
                .map(|j| flat[(i * b + j) * c..(i * b + j + 1) * c].to_vec())
                .collect()
        })
        .collect()
}

fn flatten(v: &[Vec<Vec<f32>>]) -> Vec<f32> {
    v.iter().flatten().flatten().copied().collect()
}

/// Swaps the first two levels of a nested vector.
fn transpose01(v: &[Vec<Vec<f32>>]) -> Vec<Vec<Vec<f32>>> {
    (0..v[0].len())
        .map(|j| v.iter().map(|row| row[j].clone()).collect())
        .collect()
}

struct Case {
    kind: Kind,
    num_layers: usize,
    bidirectional: bool,
    bias: bool,
    batch_first: bool,
    with_state: bool,
}

const B: usize = 2;
const T: usize = 5;
const I: usize = 3;
const H: usize = 4;

fn check_recurrent(case: Case, seed: u64) {
    let device = dev();
    let d = if case.bidirectional { 2 } else { 1 };
    let states = case.num_layers * d;

    // Inputs and states, in batch-major reference form.
    let x = nest(&values(B * T * I, seed), B, T, I);
    let h0 = nest(&values(states * B * H, seed + 1), states, B, H);
    let c0 = nest(&values(states * B * H, seed + 2), states, B, H);
    let zeros = vec![vec![vec![0.0; H]; B]; states];

    let x_module = if case.batch_first {
        tensor(flatten(&x), [B, T, I], &device)
    } else {
        tensor(flatten(&transpose01(&x)), [T, B, I], &device)
    };
    let h0_t = case
        .with_state
        .then(|| tensor(flatten(&h0), [states, B, H], &device));
    let c0_t = case
        .with_state
        .then(|| tensor(flatten(&c0), [states, B, H], &device));

    macro_rules! config {
        ($cfg:ident) => {
            $cfg::new(I, H)
                .with_num_layers(case.num_layers)
                .with_bidirectional(case.bidirectional)
                .with_bias(case.bias)
                .with_batch_first(case.batch_first)
        };
    }
    let rows = case.kind.gates() * H;
    let (output, h_n, c_n, layers) = match case.kind {
        Kind::RnnTanh | Kind::RnnRelu => {
            let nl = if case.kind == Kind::RnnRelu {
                RnnNonlinearity::Relu
            } else {
                RnnNonlinearity::Tanh
            };
            let m = config!(RnnConfig).with_nonlinearity(nl).init(&device);
            let (o, h) = m.forward(x_module, h0_t);
            (o, h, None, read_layers(&m.layers, rows))
        }
        Kind::Lstm => {
            let m = config!(LstmConfig).init(&device);
            let state = case
                .with_state
                .then(|| LstmState::new(h0_t.unwrap(), c0_t.unwrap()));
            let (o, s) = m.forward(x_module, state);
            (o, s.hidden, Some(s.cell), read_layers(&m.layers, rows))
        }
        Kind::Gru => {
            let m = config!(GruConfig).init(&device);
            let (o, h) = m.forward(x_module, h0_t);
            (o, h, None, read_layers(&m.layers, rows))
        }
    };

    // Parameter shapes as in PyTorch.
    for (l, layer) in layers.iter().enumerate() {
        for w in layer {
            assert_eq!(w.input, if l == 0 { I } else { d * H });
            assert_eq!(w.w_hh.len(), rows * H);
        }
    }

    let (init_h, init_c) = if case.with_state {
        (&h0, &c0)
    } else {
        (&zeros, &zeros)
    };
    let (ref_out, ref_h, ref_c) = reference(case.kind, &layers, &x, init_h, init_c);

    let expected_out_shape = if case.batch_first {
        [B, T, d * H]
    } else {
        [T, B, d * H]
    };
    assert_eq!(
        output.dims(),
        expected_out_shape,
        "{:?}: output shape",
        case.kind
    );
    assert_eq!(h_n.dims(), [states, B, H], "{:?}: h_n shape", case.kind);

    let ref_out = if case.batch_first {
        flatten(&ref_out)
    } else {
        flatten(&transpose01(&ref_out))
    };
    let what = format!(
        "{:?} layers={} bidirectional={} bias={} batch_first={} state={}",
        case.kind,
        case.num_layers,
        case.bidirectional,
        case.bias,
        case.batch_first,
        case.with_state
    );
    assert_close(&to_vec(output), &ref_out, 1e-5, &format!("{what}: output"));
    assert_close(
        &to_vec(h_n),
        &flatten(&ref_h),
        1e-5,
        &format!("{what}: h_n"),
    );
    if let Some(c_n) = c_n {
        assert_eq!(c_n.dims(), [states, B, H]);
        assert_close(
            &to_vec(c_n),
            &flatten(&ref_c),
            1e-5,
            &format!("{what}: c_n"),
        );
    }
}

fn all_cases(kind: Kind, seed: u64) {
    let cases = [
        (2, true, true, true, false),
        (2, true, true, false, true),
        (1, false, true, true, true),
        (3, false, false, false, false),
        (2, true, false, true, true),
    ];
    for (i, (num_layers, bidirectional, bias, batch_first, with_state)) in
        cases.into_iter().enumerate()
    {
        check_recurrent(
            Case {
                kind,
                num_layers,
                bidirectional,
                bias,
                batch_first,
                with_state,
            },
            seed + 10 * i as u64,
        );
    }
}

#[test]
fn rnn_tanh_matches_reference() {
    all_cases(Kind::RnnTanh, 700);
}

#[test]
fn rnn_relu_matches_reference() {
    all_cases(Kind::RnnRelu, 800);
}

#[test]
fn lstm_matches_reference() {
    all_cases(Kind::Lstm, 900);
}

#[test]
fn gru_matches_reference() {
    all_cases(Kind::Gru, 1000);
}

#[test]
fn recurrent_shapes_two_layers_bidirectional() {
    let d = dev();
    let x = random([3, 6, 5], 1100); // [B, T, I], batch_first
    let lstm = LstmConfig::new(5, 7)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_batch_first(true)
        .init(&d);
    let (out, state) = lstm.forward(x.clone(), None);
    assert_eq!(out.dims(), [3, 6, 14]);
    assert_eq!(state.hidden.dims(), [4, 3, 7]);
    assert_eq!(state.cell.dims(), [4, 3, 7]);

    let gru = GruConfig::new(5, 7)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_batch_first(true)
        .init(&d);
    let (out, h) = gru.forward(x.clone(), None);
    assert_eq!(out.dims(), [3, 6, 14]);
    assert_eq!(h.dims(), [4, 3, 7]);

    let rnn = RnnConfig::new(5, 7)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&d);
    let (out, h) = rnn.forward(x.swap_dims(0, 1), None); // [T, B, I]
    assert_eq!(out.dims(), [6, 3, 14]);
    assert_eq!(h.dims(), [4, 3, 7]);
    assert_eq!(rnn.num_layers(), 2);
    assert_eq!(rnn.num_directions(), 2);
}

#[test]
fn recurrent_dropout_is_inactive_in_inference() {
    let d = dev();
    let lstm = LstmConfig::new(3, 4)
        .with_num_layers(2)
        .with_dropout(0.5)
        .init(&d);
    let x = random([5, 2, 3], 1200);
    let (a, _) = lstm.forward(x.clone(), None);
    let (b, _) = lstm.forward(x, None);
    assert_eq!(to_vec(a), to_vec(b));
}

#[test]
fn recurrent_gradients_flow_to_parameters() {
    let d = dev().autodiff();
    let gru = GruConfig::new(3, 4)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&d);
    let x = tensor(values(5 * 2 * 3, 1300), [5, 2, 3], &d).require_grad();
    let (out, h) = gru.forward(x.clone(), None);
    let grads = (out.sum() + h.sum()).backward();
    assert!(x.grad(&grads).is_some());
    let g = gru.layers[0]
        .reverse
        .as_ref()
        .unwrap()
        .weight_hh
        .grad(&grads);
    assert!(g.is_some_and(|g| to_vec(g).iter().any(|v| *v != 0.0)));
}

// ---------------------------------------------------------------------------
// Parameter names.
// ---------------------------------------------------------------------------

/// Records `path -> shape` of every float parameter.
#[derive(Default)]
struct Paths {
    stack: Vec<String>,
    found: Vec<(String, Vec<usize>)>,
}

impl ModuleVisitor for Paths {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.found
            .push((self.stack.join("."), param.val().dims().to_vec()));
    }
}

fn param_paths<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    let mut paths = Paths::default();
    module.visit(&mut paths);
    paths.found.sort();
    paths.found
}

#[test]
fn lstm_parameter_names_map_to_pytorch_keys() {
    let lstm = LstmConfig::new(3, 5)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&dev());
    let mut torch: Vec<(String, Vec<usize>)> = param_paths(&lstm)
        .into_iter()
        .map(|(path, shape)| {
            let key = torch_param_name(&path).unwrap_or_else(|| panic!("no torch name for {path}"));
            assert_eq!(unidl_param_path(&key).as_deref(), Some(path.as_str()));
            (key, shape)
        })
        .collect();
    torch.sort();

    // The state dict of torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True).
    let mut expected = Vec::new();
    for l in 0..2 {
        let input = if l == 0 { 3 } else { 10 };
        for suffix in ["", "_reverse"] {
            expected.push((format!("weight_ih_l{l}{suffix}"), vec![20, input]));
            expected.push((format!("weight_hh_l{l}{suffix}"), vec![20, 5]));
            expected.push((format!("bias_ih_l{l}{suffix}"), vec![20]));
            expected.push((format!("bias_hh_l{l}{suffix}"), vec![20]));
        }
    }
    expected.sort();
    assert_eq!(torch, expected);
}

#[test]
fn torch_name_rule_examples() {
    assert_eq!(
        torch_param_name("layers.0.forward.weight_ih").as_deref(),
        Some("weight_ih_l0")
    );
    assert_eq!(
        torch_param_name("enc.rnn.layers.12.reverse.bias_hh").as_deref(),
        Some("enc.rnn.bias_hh_l12_reverse")
    );
    assert_eq!(
        torch_param_name("blocks.layers.3.rnn.layers.1.forward.weight_hh").as_deref(),
        Some("blocks.layers.3.rnn.weight_hh_l1")
    );
    assert_eq!(torch_param_name("layers.0.forward.gamma"), None);
    assert_eq!(torch_param_name("layers.x.forward.weight_ih"), None);
    assert_eq!(torch_param_name("mylayers.0.forward.weight_ih"), None);
    assert_eq!(
        unidl_param_path("gru.weight_hh_l1_reverse").as_deref(),
        Some("gru.layers.1.reverse.weight_hh")
    );
    assert_eq!(
        unidl_param_path("bias_ih_l0").as_deref(),
        Some("layers.0.forward.bias_ih")
    );
    assert_eq!(unidl_param_path("weight_ih_lx"), None);
    assert_eq!(unidl_param_path("weight_l0"), None);
}

#[test]
fn batch_norm_wrappers_share_batch_norm_parameter_names() {
    let d = dev();
    let plain = param_paths(&BatchNormConfig::new(4).init(&d));
    assert!(!plain.is_empty());
    assert_eq!(param_paths(&BatchNorm1dConfig::new(4).init(&d)), plain);
    assert_eq!(param_paths(&BatchNorm2dConfig::new(4).init(&d)), plain);
    assert_eq!(param_paths(&BatchNorm3dConfig::new(4).init(&d)), plain);
}

// ---------------------------------------------------------------------------
// Relative attention (Transformer-XL / XLNet) against its definition.
// ---------------------------------------------------------------------------

#[test]
fn rel_shift_moves_each_distance_into_place() {
    // x[i][p] = p → out[i][j] = queries − i + j
    let (q, k) = (3, 3);
    let data: Vec<f32> = (0..q).flat_map(|_| (0..q + k).map(|p| p as f32)).collect();
    let out = to_vec(rel_shift(tensor(data, [1, 1, q, q + k], &dev()), k));
    let want: Vec<f32> = (0..q)
        .flat_map(|i| (0..k).map(move |j| (q - i + j) as f32))
        .collect();
    assert_eq!(out, want);
}

/// A relative-attention layer with random parameters (`[d_model, heads, d_head]`).
fn random_relative_attention(d: usize, n: usize, h: usize) -> RelativeAttention {
    let mut a = RelativeAttentionConfig::new(d, n, h).init(&dev());
    let p3 = |seed| Param::from_tensor(random([d, n, h], seed).mul_scalar(0.5));
    let p2 = |seed| Param::from_tensor(random([n, h], seed));
    a.query = p3(1201);
    a.key = p3(1202);
    a.value = p3(1203);
    a.output = p3(1204);
    a.position = p3(1205);
    a.content_bias = p2(1206);
    a.position_bias = p2(1207);
    a.segment_bias = p2(1208);
    a.segment_embed = Param::from_tensor(random([2, n, h], 1209));
    a
}

/// `Σ_d x[d] · w[d, head, ·]`.
fn head_projection(x: &[f32], w: &[f32], n: usize, h: usize, head: usize) -> Vec<f32> {
    (0..h)
        .map(|c| {
            x.iter()
                .enumerate()
                .map(|(d, xd)| xd * w[(d * n + head) * h + c])
                .sum()
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn plus(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The attention output of query rows `qx` (`[rows][d]`) at positions
/// `at` over keys `kx` (`[keys][d]`) written out from the definition:
/// content, position (the encoding of `i − j`) and segment terms, scaled,
/// masked, softmax, values, output projection.
#[allow(clippy::too_many_arguments)]
fn naive_relative_attention(
    a: &RelativeAttention,
    qx: &[Vec<f32>],
    at: &[usize],
    kx: &[Vec<f32>],
    segments: &[usize],
    masked: &dyn Fn(usize, usize) -> bool,
    d: usize,
    n: usize,
    h: usize,
) -> Vec<f32> {
    let w = |p: &Param<Tensor<3>>| to_vec(p.val());
    let b = |p: &Param<Tensor<2>>| to_vec(p.val());
    let (wq, wk, wv, wo, wr) = (
        w(&a.query),
        w(&a.key),
        w(&a.value),
        w(&a.output),
        w(&a.position),
    );
    let (u, v, sb) = (b(&a.content_bias), b(&a.position_bias), b(&a.segment_bias));
    let seg = to_vec(a.segment_embed.val());
    let encoding = |dist: f32| -> Vec<f32> {
        let f: Vec<f32> = (0..d / 2)
            .map(|k| 1.0 / 10000f32.powf((2 * k) as f32 / d as f32))
            .collect();
        f.iter()
            .map(|f| (dist * f).sin())
            .chain(f.iter().map(|f| (dist * f).cos()))
            .collect()
    };
    let mut out = Vec::new();
    for (row, &i) in qx.iter().zip(at) {
        let mut y = vec![0.0f32; d];
        for head in 0..n {
            let bias = |p: &[f32]| p[head * h..(head + 1) * h].to_vec();
            let q = head_projection(row, &wq, n, h, head);
            let scores: Vec<f32> = (0..kx.len())
                .map(|j| {
                    let k = head_projection(&kx[j], &wk, n, h, head);
                    let r = head_projection(&encoding(i as f32 - j as f32), &wr, n, h, head);
                    let s = usize::from(segments[i] != segments[j]);
                    let s = &seg[(s * n + head) * h..(s * n + head + 1) * h];
                    let score = dot(&plus(&q, &bias(&u)), &k)
                        + dot(&plus(&q, &bias(&v)), &r)
                        + dot(&plus(&q, &bias(&sb)), s);
                    if masked(i, j) {
                        f32::NEG_INFINITY
                    } else {
                        score / (h as f32).sqrt()
                    }
                })
                .collect();
            let top = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
            let z: f32 = e.iter().sum();
            let mut vec = vec![0.0f32; h];
            for (j, ej) in e.iter().enumerate() {
                let vj = head_projection(&kx[j], &wv, n, h, head);
                for c in 0..h {
                    vec[c] += ej / z * vj[c];
                }
            }
            for (dd, yd) in y.iter_mut().enumerate() {
                *yd += (0..h)
                    .map(|c| vec[c] * wo[(dd * n + head) * h + c])
                    .sum::<f32>();
            }
        }
        out.extend(y);
    }
    out
}

#[test]
fn relative_attention_matches_its_definition() {
    let (d, n, h, t) = (6, 2, 3, 5);
    let a = random_relative_attention(d, n, h);
    let rows_of = |x: &Tensor<3>| -> Vec<Vec<f32>> {
        to_vec(x.clone()).chunks(d).map(<[f32]>::to_vec).collect()
    };
    let x = random([1, t, d], 1210);
    let x_rows = rows_of(&x);
    let segments = [0usize, 0, 1, 1, 2];
    let seg_ids = Tensor::<2, Int>::from_data(
        TensorData::new(
            segments.iter().map(|&s| s as i64).collect::<Vec<_>>(),
            [1, t],
        ),
        &dev(),
    );
    // key 1 is hidden from every other token in the content stream; the
    // query stream never sees key 1 nor its own token
    let content_hidden = |i: usize, j: usize| j == 1 && i != 1;
    let query_hidden = |i: usize, j: usize| j == 1 || i == j;
    let mask = |f: &dyn Fn(usize, usize) -> bool| {
        let m: Vec<bool> = (0..t).flat_map(|i| (0..t).map(move |j| f(i, j))).collect();
        Tensor::<3, burn::tensor::Bool>::from_data(TensorData::new(m, [1, t, t]), &dev())
    };
    let ctx = RelativeContext {
        positions: sinusoid_relative_positions(t, t, d, None, &dev()),
        segments: Some(segment_matrix(seg_ids.clone(), seg_ids)),
        content_mask: Some(mask(&content_hidden)),
        query_mask: Some(mask(&query_hidden)),
    };
    let every: Vec<usize> = (0..t).collect();
    let naive = |rows: &[Vec<f32>], at: &[usize], hidden: &dyn Fn(usize, usize) -> bool| {
        naive_relative_attention(&a, rows, at, &x_rows, &segments, hidden, d, n, h)
    };
    let content = to_vec(a.forward(x.clone(), &ctx));
    assert_close(
        &content,
        &naive(&x_rows, &every, &content_hidden),
        1e-5,
        "content stream",
    );

    // the query stream with one row per token …
    let g = random([1, t, d], 1211);
    let g_rows = rows_of(&g);
    let (h_out, g_out) = a.forward_two_stream(x.clone(), g.clone(), None, &ctx);
    assert_close(&to_vec(h_out), &content, 1e-6, "content stream of two");
    assert_close(
        &to_vec(g_out),
        &naive(&g_rows, &every, &query_hidden),
        1e-5,
        "query stream",
    );
    // … and for tokens 4 and 1 only, through a target mapping
    let picked = [4usize, 1];
    let mut map = vec![0.0f32; 2 * t];
    map[picked[0]] = 1.0;
    map[t + picked[1]] = 1.0;
    let g_picked = Tensor::cat(
        picked.iter().map(|&p| g.clone().narrow(1, p, 1)).collect(),
        1,
    );
    let (_, mapped) = a.forward_two_stream(x, g_picked, Some(tensor(map, [1, 2, t], &dev())), &ctx);
    let picked_rows: Vec<Vec<f32>> = picked.iter().map(|&p| g_rows[p].clone()).collect();
    assert_close(
        &to_vec(mapped),
        &naive(&picked_rows, &picked, &query_hidden),
        1e-5,
        "query stream through a target mapping",
    );
}

#[test]
fn clamped_position_encodings_repeat_the_clamped_distance() {
    // distances 4, 3, …, −3 clamped to ±2: rows 0–2 are distance 2, rows 6–7 −2
    let p = to_vec(sinusoid_relative_positions(4, 4, 6, Some(2), &dev()));
    let row = |r: usize| p[r * 6..(r + 1) * 6].to_vec();
    assert_eq!(row(0), row(2));
    assert_eq!(row(6), row(7));
    assert_ne!(row(2), row(3));
    // distance 0 (row 4): sin 0 = 0, cos 0 = 1
    assert_eq!(row(4), vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
}
