//! `cargo bench -p unidl-nn --bench conv [-- --quick]`: the 3×3
//! convolutions of a ResNet-18 training step (small-image stem, batch
//! 32×3×32×32) one layer shape at a time on flex — forward and backward
//! (input and weight gradients) through Burn's `conv2d`, against a lowering
//! written with Burn tensor operations (strided slices stacked into columns,
//! one matrix product over the whole batch; autodiff derives its backward).
//! Prints milliseconds per forward + backward and the ratio. Not a test.

use std::time::Instant;

use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, PadMode};
use burn::tensor::{Distribution, Slice, Tensor};
use unidl_backend::Device;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(rounds: usize, mut step: impl FnMut()) -> f64 {
    step();
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                step();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

/// `conv2d` (no bias, groups 1, dilation 1) as columns and one product.
fn lowered(x: Tensor<4>, w: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    let [b, c, h, wd] = x.dims();
    let [co, _, kh, kw] = w.dims();
    let ho = (h + 2 * pad - kh) / stride + 1;
    let wo = (wd + 2 * pad - kw) / stride + 1;
    let xp = x.pad(
        [(0, 0), (0, 0), (pad, pad), (pad, pad)],
        PadMode::Constant(0.0),
    );
    let mut taps = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            taps.push(xp.clone().slice([
                Slice::new(0, Some(b as isize), 1),
                Slice::new(0, Some(c as isize), 1),
                Slice::new(
                    i as isize,
                    Some((i + stride * (ho - 1) + 1) as isize),
                    stride as isize,
                ),
                Slice::new(
                    j as isize,
                    Some((j + stride * (wo - 1) + 1) as isize),
                    stride as isize,
                ),
            ]));
        }
    }
    let cols = Tensor::stack::<5>(taps, 2); // [B, C, k², Ho, Wo]
    let cols = cols
        .permute([1, 2, 0, 3, 4])
        .reshape([c * kh * kw, b * ho * wo]);
    let y = w.reshape([co, c * kh * kw]).matmul(cols); // [Co, B·L]
    y.reshape([co, b, ho, wo]).swap_dims(0, 1)
}

/// Columns `[B·Ho·Wo, C·kh·kw]` of `x` (zero-padded by `pad`): two
/// zero-copy `unfold` views, then one copy into matrix order.
fn columns(x: Tensor<4>, k: usize, stride: usize, pad: usize) -> (Tensor<2>, [usize; 3]) {
    let [b, c, _, _] = x.dims();
    let xp = x.pad(
        [(0, 0), (0, 0), (pad, pad), (pad, pad)],
        PadMode::Constant(0.0),
    );
    let v = xp.unfold::<5, _>(2, k, stride).unfold::<6, _>(3, k, stride); // [B, C, Ho, Wo, k, k]
    let [_, _, ho, wo, _, _] = v.dims();
    let cols = v
        .permute([0, 2, 3, 1, 4, 5])
        .reshape([b * ho * wo, c * k * k]);
    (cols, [b, ho, wo])
}

/// `conv2d` as columns (unfold views) times the weights.
fn lowered_unfold(x: Tensor<4>, w: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    let [co, ci, kh, _] = w.dims();
    let (cols, [b, ho, wo]) = columns(x, kh, stride, pad);
    let y = cols.matmul(w.reshape([co, ci * kh * kh]).transpose()); // [B·L, Co]
    y.reshape([b, ho, wo, co]).permute([0, 3, 1, 2])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 7 };
    let dev = Device::flex().autodiff();
    let batch = 32;
    println!(
        "| Cin→Cout, map, stride | burn fwd | burn x-grad | burn w-grad | cols w-grad | burn conv2d fwd+bwd ms | lowered fwd+bwd ms | unfold-lowered fwd+bwd | lowered/burn | max |Δ| y |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let inner = Device::flex();
    for (ci, co, hw, s) in [
        (3, 64, 32, 1),
        (64, 64, 32, 1),
        (64, 128, 32, 2),
        (128, 128, 16, 1),
        (128, 256, 16, 2),
        (256, 256, 8, 1),
        (256, 512, 8, 2),
        (512, 512, 4, 1),
    ] {
        let x =
            Tensor::<4>::random([batch, ci, hw, hw], Distribution::Default, &dev).require_grad();
        let w = Tensor::<4>::random([co, ci, 3, 3], Distribution::Default, &dev).require_grad();
        let opts = ConvOptions::new([s, s], [1, 1], [1, 1], 1);
        // the three products Burn's autodiff runs, on the inner device
        let xi = x.clone().detach().to_device(&inner);
        let wi = w.clone().detach().to_device(&inner);
        let fwd = time(rounds, || {
            let _ = conv2d(xi.clone(), wi.clone(), None, opts.clone());
        });
        let dy = conv2d(xi.clone(), wi.clone(), None, opts.clone());
        let pad_out = (hw + 2 - 3) % s;
        let xg = time(rounds, || {
            let _ = conv_transpose2d(
                dy.clone(),
                wi.clone(),
                None,
                ConvTransposeOptions::new([s, s], [1, 1], [pad_out, pad_out], [1, 1], 1),
            );
        });
        let wg = time(rounds, || {
            let _ = conv2d(
                xi.clone().swap_dims(0, 1),
                dy.clone().swap_dims(0, 1),
                None,
                ConvOptions::new([1, 1], [1, 1], [s, s], 1),
            );
        });
        let wg_cols = time(rounds, || {
            let (cols, [b, ho, wo]) = columns(xi.clone(), 3, s, 1);
            let dym = dy.clone().permute([1, 0, 2, 3]).reshape([co, b * ho * wo]);
            let _ = dym.matmul(cols).reshape([co, ci, 3, 3]);
        });
        let unf_ms = time(rounds, || {
            let y = lowered_unfold(x.clone(), w.clone(), s, 1);
            let g = y.sum().backward();
            let _ = (x.grad(&g).unwrap(), w.grad(&g).unwrap());
        });
        let burn_ms = time(rounds, || {
            let y = conv2d(x.clone(), w.clone(), None, opts.clone());
            let g = y.sum().backward();
            let _ = (x.grad(&g).unwrap(), w.grad(&g).unwrap());
        });
        let low_ms = time(rounds, || {
            let y = lowered(x.clone(), w.clone(), s, 1);
            let g = y.sum().backward();
            let _ = (x.grad(&g).unwrap(), w.grad(&g).unwrap());
        });
        let a = conv2d(x.clone().detach(), w.clone().detach(), None, opts.clone());
        let l = lowered(x.clone().detach(), w.clone().detach(), s, 1);
        let u = lowered_unfold(x.clone().detach(), w.clone().detach(), s, 1);
        let diff: f32 = (a.clone() - l).abs().max().into_scalar();
        let diff_u: f32 = (a - u).abs().max().into_scalar();
        assert!(diff_u <= diff.max(1e-3), "{diff_u}");
        println!(
            "| {ci}→{co}, {hw}², {s} | {fwd:.1} | {xg:.1} | {wg:.1} | {wg_cols:.1} | {burn_ms:.1} | {low_ms:.1} | {unf_ms:.1} | {:.2} | {diff:.1e} |",
            low_ms / burn_ms
        );
    }
}
