//! Training-mode parity with torchvision: one forward/backward in train mode
//! (batch statistics, running-statistic update, gradients) of reduced
//! ResNet-18, VGG-11-BN and EfficientNet-B0 with dropout and stochastic depth
//! off, against `tests/reference/train_step` from `gen_train_step.py`; and
//! stochastic depth's "row" scaling, which has no reference (random masks).

use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Distribution, Float, Int, Tensor as BT};
use unidl_backend::Device;
use unidl_tensor::Tensor;
use unidl_tensor::module::{Forward, ModuleApi, StateDict, backward, load_state_dict_file};
use unidl_vision::blocks::StochasticDepth;
use unidl_vision::torchvision::{TorchvisionNames, load_torchvision};
use unidl_vision::{Classifier, ClassifierConfig};

/// `tests/reference/train_step`.
fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/train_step")
}

/// The classifier as a module of the dynamic-tensor API, so that
/// `unidl_tensor::module::backward` can differentiate it.
#[derive(Module, Debug)]
struct Wrap {
    m: Classifier,
}

impl Forward for Wrap {
    fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
        Tensor::from_burn(self.m.forward(input.clone().into_burn::<4, Float>()?))
    }
}

fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().map(|v| v.abs()).fold(0.0, f32::max)
}

/// (unidl key under `prefix`, torchvision key) of every key of `model`.
fn keys<M: TorchvisionNames>(model: &M, prefix: &str) -> Vec<(String, String)> {
    model
        .state_dict()
        .keys()
        .map(|k| (format!("{prefix}.{k}"), model.torchvision_key(k).unwrap()))
        .collect()
}

/// The classifier's keys carry its variant's name (`ResNet.conv1.weight`).
fn torchvision_keys(model: &Classifier) -> Vec<(String, String)> {
    match model {
        Classifier::ResNet(m) => keys(m, "ResNet"),
        Classifier::Vgg(m) => keys(m, "Vgg"),
        Classifier::EfficientNet(m) => keys(m, "EfficientNet"),
    }
}

fn load(name: &str, cfg: &ClassifierConfig, dev: &Device) -> Classifier {
    let model = cfg.init(dev).unwrap();
    load_torchvision(model, &dir().join(format!("{name}.safetensors")), dev)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .0
}

fn check_model(name: &str, cfg: &ClassifierConfig, step: &StateDict) {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let x = step["input"].clone();
    let labels: Vec<i64> = step["labels"]
        .clone()
        .into_burn::<1, Int>()
        .unwrap()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();

    // 1. train-mode forward: logits from batch statistics, loss, running stats
    let model = load(name, cfg, &dev).fork(&ad);
    // built on the autodiff device: `to_device` between flex and autodiff
    // flex keeps the tensor's kind, and BN takes its training path only for
    // autodiff tensors
    let x_ad = BT::<4>::from_data(x.clone().into_burn::<4, Float>().unwrap().into_data(), &ad);
    assert!(x_ad.device().is_autodiff());
    let logits = model.forward(x_ad);
    let [b, c] = logits.dims();
    let logp: Vec<f32> = log_softmax(logits.clone(), 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let loss = -labels
        .iter()
        .enumerate()
        .map(|(i, &l)| logp[i * c + l as usize])
        .sum::<f32>()
        / b as f32;
    let want_loss = step["loss"].to_vec_f32().unwrap()[0];
    let got: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap();
    let want = step["logits"].to_vec_f32().unwrap();
    let dl = max_diff(&got, &want);
    eprintln!("{name}: train-mode max |Δlogit| {dl:.2e}, loss {loss:.5} vs torch {want_loss:.5}");
    assert!(
        dl <= 1e-4 * max_abs(&want).max(1.0),
        "{name}: logits differ by {dl}"
    );
    assert!(
        (loss - want_loss).abs() <= 1e-4 * want_loss.max(1.0),
        "{name}: loss {loss} vs {want_loss}"
    );

    let names = torchvision_keys(&model);
    // Burn's RunningState keeps the newest update per thread until `valid()`
    // or `train()` syncs it; a visitor (state_dict) reads the synced value
    let state = model.valid().state_dict();
    let mut stats = 0;
    for (k, tk) in &names {
        if !(k.ends_with("running_mean") || k.ends_with("running_var")) {
            continue;
        }
        let want = step[&format!("after.{tk}")].to_vec_f32().unwrap();
        let got = state[k].to_vec_f32().unwrap();
        let d = max_diff(&got, &want);
        assert!(
            d <= 1e-4 * max_abs(&want).max(1.0),
            "{name}: {k} after one train-mode forward differs from torch's {tk} by {d}"
        );
        stats += 1;
    }
    assert!(stats >= 10, "{name}: only {stats} running statistics");

    // 2. gradients of every parameter for torch's d loss / d logits
    let wrap = Wrap {
        m: load(name, cfg, &dev),
    };
    let grads = backward(&wrap, &x, &step["dlogits"]).unwrap();
    let mut n = 0;
    let mut worst = 0.0f32;
    for (k, tk) in &names {
        let Some(g) = grads.parameters.get(&format!("m.{k}")) else {
            continue;
        };
        let want_t = &step[&format!("grad.{tk}")];
        // Burn stores linear weights [in, out], PyTorch [out, in]
        let want_t = if want_t.shape().len() == 2 {
            want_t.transpose(0, 1).unwrap()
        } else {
            want_t.clone()
        };
        let want = want_t.to_vec_f32().unwrap();
        let got = g.to_vec_f32().unwrap();
        let d = max_diff(&got, &want);
        // 1e-4 of the tensor's largest gradient (at least 0.1)
        let tol = 1e-4 * max_abs(&want).max(0.1);
        worst = worst.max(d / max_abs(&want).max(0.1));
        assert!(
            d <= tol,
            "{name}: gradient of {k} ({tk}) differs by {d} (> {tol})"
        );
        n += 1;
    }
    eprintln!("{name}: {n} gradients, worst relative difference {worst:.2e}");
    assert_eq!(
        n,
        step.keys().filter(|k| k.starts_with("grad.")).count(),
        "{name}: every torch parameter has a gradient"
    );
}

#[test]
fn one_train_mode_step_matches_torchvision() {
    let text = std::fs::read_to_string(dir().join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let models = manifest["models"].as_object().unwrap();
    assert_eq!(models.len(), 3);
    for (name, entry) in models {
        let cfg: ClassifierConfig = serde_json::from_value(entry["config"].clone()).unwrap();
        let step = load_state_dict_file(
            &dir().join(format!("{name}.step.safetensors")),
            &Device::flex(),
        )
        .unwrap();
        check_model(name, &cfg, &step);
    }
}

/// torchvision's `StochasticDepth(p, "row")`: each sample's branch is kept
/// with probability `1 - p` and then scaled by `1 / (1 - p)`; identity in
/// evaluation and off autodiff devices.
#[test]
fn stochastic_depth_drops_rows_and_rescales_survivors() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let _rng = crate::common::seeded(&ad, 7);
    let p = 0.3;
    let sd = StochasticDepth::new(p);
    let rows = 4000;
    let x = BT::<4>::random([rows, 2, 3, 3], Distribution::Uniform(1.0, 2.0), &ad);
    let y: Vec<f32> = sd
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let xv: Vec<f32> = x.clone().into_data().try_to_vec::<f32>().unwrap();
    let mut dropped = 0;
    for r in 0..rows {
        let (xs, ys) = (&xv[r * 18..(r + 1) * 18], &y[r * 18..(r + 1) * 18]);
        if ys.iter().all(|&v| v == 0.0) {
            dropped += 1;
        } else {
            for (a, b) in xs.iter().zip(ys) {
                let want = a / (1.0 - p as f32);
                assert!((b - want).abs() <= 1e-5 * want, "row {r}: {b} vs {want}");
            }
        }
    }
    let frac = dropped as f64 / rows as f64;
    // binomial standard deviation sqrt(p(1-p)/n) ≈ 0.0072: allow 5 of them
    assert!(
        (frac - p).abs() < 0.036,
        "dropped fraction {frac} (p = {p})"
    );
    // evaluation mode and plain (non-autodiff) tensors: identity
    let eval: Vec<f32> = sd
        .clone()
        .valid()
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(eval == xv, "evaluation mode changed the input");
    let plain = BT::<4>::from_data(x.into_data(), &dev);
    let plain: Vec<f32> = sd.forward(plain).into_data().try_to_vec::<f32>().unwrap();
    assert!(plain == xv, "a non-autodiff tensor was changed");
}
