//! unidl-audio's WaveNet against r9y9's `wavenet_vocoder` 0.1.1 on torch
//! 2.9.0 (`tests/reference/gen_wavenet.py`): the parameter counts of the
//! package's defaults and of its mel-vocoder setting; eval-mode logits of
//! weight-normalised models (folded by the loader) with local (upsampled)
//! and global conditioning, and with kernel 2 and conditioning at the
//! sample rate; one train-mode step (logits, cross-entropy, every
//! gradient); torchaudio's μ-law; fast incremental generation against the
//! teacher-forced forward and against naive generation; a small model
//! that learns conditioned periodic signals; typed errors. The
//! discretised mixture-of-logistics output (`scalar_input=True`): one
//! train-mode step (outputs, per-step and mean loss, every gradient), the
//! package's `discretized_mix_logistic_loss` alone (value and gradient),
//! incremental and naive generation, learning, typed errors.

mod common;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Int, Tensor as BT, TensorData};
use common::{GradTolerance, Reference, ints, params};
use unidl_audio::weights::{load_wavenet_vocoder, wavenet_vocoder_rules};
use unidl_audio::{
    GenerationConfig, WaveNet, WaveNetConfig, WaveNetOutput, linear_dequantize,
    mixture_of_logistics_nll, mu_law_decode, mu_law_encode,
};
use unidl_backend::Device;
use unidl_interop::Framework;
use unidl_tensor::Tensor;
use unidl_tensor::module::{Forward, StateDict, backward};
use unidl_testkit::{check_close, floats, max_diff, values};

const REF: Reference = Reference::committed("wavenet");

fn config(name: &str) -> WaveNetConfig {
    REF.config(name)
}

fn load(name: &str, dev: &Device) -> WaveNet {
    REF.load(name, config(name).init(dev).unwrap(), load_wavenet_vocoder)
}

#[test]
fn parameter_counts_match_wavenet_vocoder() {
    let dev = Device::flex();
    let meta = REF.meta();
    let default = WaveNetConfig::default().init(&dev).unwrap();
    assert_eq!(params(&default), 21_527_808);
    assert_eq!(meta["params"]["default"]["plain"], 21_527_808);
    let vocoder = WaveNetConfig::mel_vocoder();
    let from_json: WaveNetConfig =
        serde_json::from_value(meta["params"]["mel_vocoder"]["config"].clone()).unwrap();
    assert_eq!(vocoder, from_json);
    assert_eq!(params(&vocoder.init(&dev).unwrap()), 24_882_228);
    assert_eq!(meta["params"]["mel_vocoder"]["plain"], 24_882_228);
    assert_eq!(vocoder.hop_length(), 256);
    assert_eq!(vocoder.receptive_field(), 505);
}

#[test]
fn eval_logits_match_wavenet_vocoder() {
    let dev = Device::flex();
    for name in ["lcgc", "k2"] {
        let m = load(name, &dev);
        let io = REF.io(name, &dev);
        let (classes, c, g) = common::wavenet_inputs(&io, &dev);
        let y = m.try_forward(classes, Some(c), g).unwrap();
        check_close(name, &values(y), &floats(&io, "output"), 1e-4);
    }
}

#[test]
fn mu_law_matches_torchaudio() {
    let dev = Device::flex();
    let io = REF.io("mu_law", &dev);
    let x = BT::<1>::from_data(TensorData::new(floats(&io, "x"), [601]), &dev);
    let enc = mu_law_encode(x, 256);
    let got: Vec<i64> = enc
        .clone()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(got, ints(&io, "encoded"));
    check_close(
        "mu_law_decode",
        &values(mu_law_decode(enc, 256)),
        &floats(&io, "decoded"),
        1e-6,
    );
}

/// Per-step logits of the fast incremental path, teacher-forced with the
/// reference's classes, equal the reference's (and unidl's) forward.
#[test]
fn incremental_steps_equal_the_forward() {
    let dev = Device::flex();
    for name in ["lcgc", "k2"] {
        let m = load(name, &dev);
        let io = REF.io(name, &dev);
        let (classes, c, g) = common::wavenet_inputs(&io, &dev);
        let [b, t] = classes.dims();
        let q = m.out_channels();
        let want = floats(&io, "output"); // [B, Q, T]
        let ids = ints(&io, "classes");
        let mut state = m.incremental(Some(c), g, b).unwrap();
        assert_eq!(state.steps(), Some(t));
        let mut got = vec![0.0; b * q * t];
        for step in 0..t {
            let now: Vec<usize> = (0..b).map(|i| ids[i * t + step] as usize).collect();
            let logits = state.step(&now).unwrap();
            for i in 0..b {
                for k in 0..q {
                    got[(i * q + k) * t + step] = logits[i * q + k];
                }
            }
        }
        check_close(&format!("{name} incremental"), &got, &want, 1e-4);
        let e = state.step(&vec![0; b]).unwrap_err().to_string();
        assert!(
            e.contains("past the") && e.contains("local conditioning"),
            "{e}"
        );
    }
}

#[test]
fn fast_and_naive_generation_draw_the_same_samples() {
    let dev = Device::flex();
    let m = load("lcgc", &dev);
    let io = REF.io("lcgc", &dev);
    let (_, c, g) = common::wavenet_inputs(&io, &dev);
    for temperature in [0.0, 1.0] {
        let cfg = GenerationConfig {
            temperature,
            seed: 11,
            ..GenerationConfig::default()
        };
        let fast = m.generate(Some(c.clone()), g.clone(), &cfg).unwrap();
        let naive = m.generate_naive(Some(c.clone()), g.clone(), &cfg).unwrap();
        assert_eq!(fast.dims(), [2, 30]);
        let (fast, naive) = (fast.into_data(), naive.into_data());
        assert_eq!(fast, naive, "temperature {temperature}");
    }
    // without conditioning: `samples` and `batch` from the config
    let _guard = unidl_testkit::seeded(&dev, 5);
    let m = WaveNetConfig {
        layers: 4,
        stacks: 2,
        residual_channels: 8,
        gate_channels: 8,
        skip_out_channels: 8,
        kernel_size: 2,
        out_channels: 16,
        ..WaveNetConfig::default()
    }
    .init(&dev)
    .unwrap();
    let cfg = GenerationConfig {
        samples: 40,
        batch: 3,
        seed: 2,
        ..GenerationConfig::default()
    };
    let fast = m.generate(None, None, &cfg).unwrap();
    assert_eq!(fast.dims(), [3, 40]);
    assert_eq!(
        fast.into_data(),
        m.generate_naive(None, None, &cfg).unwrap().into_data()
    );
}

/// The model and the teacher-forced loss over fixed conditioning, for `backward`.
#[derive(Module, Debug)]
struct LossOf {
    m: WaveNet,
    #[module(skip)]
    c: Vec<f32>,
    #[module(skip)]
    c_shape: Vec<usize>,
    #[module(skip)]
    g: Vec<i64>,
}

impl Forward for LossOf {
    fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
        let dev = input.device();
        let classes = input.clone().into_burn::<2, Int>()?;
        let c = BT::<3>::from_data(TensorData::new(self.c.clone(), self.c_shape.clone()), &dev);
        // no ids: no global conditioning
        let g = (!self.g.is_empty()).then(|| {
            BT::<1, Int>::from_data(TensorData::new(self.g.clone(), [self.g.len()]), &dev)
        });
        Tensor::from_burn(self.m.loss(classes, Some(c), g).unwrap())
    }
}

#[test]
fn train_step_matches_torch() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let ckpt = unidl_interop::read_safetensors(&REF.path("train.safetensors"), Framework::PyTorch)
        .unwrap();
    let m = config("train").init(&dev).unwrap();
    let rules = wavenet_vocoder_rules(m.upsample.len()).unwrap();
    let (m, report) = unidl_interop::load_into(m, &ckpt, &rules, true).unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    let io = REF.io("train", &dev);
    let (classes, c, g) = common::wavenet_inputs(&io, &dev);

    // train mode (dropout 0): logits and loss on the autodiff device
    let mt = m.clone().fork(&ad).train();
    let logits = mt.forward(
        classes.clone().to_device(&ad),
        Some(c.clone().to_device(&ad)),
        g.clone().map(|g| g.to_device(&ad)),
    );
    check_close(
        "train logits",
        &values(logits),
        &floats(&io, "output"),
        1e-4,
    );
    let loss = mt
        .loss(
            classes.to_device(&ad),
            Some(c.clone().to_device(&ad)),
            g.clone().map(|g| g.to_device(&ad)),
        )
        .unwrap();
    unidl_testkit::check_loss("cross-entropy", &loss, floats(&io, "loss")[0]);

    // the last layer's residual output feeds nothing: no gradient
    grads_match(m, &c, ints(&io, "g"), &io, "train", "wavenet");
}

/// One training step's gradients of `m` (the loss over the reference's
/// `classes` with conditioning `c` and speakers `g`) against `grad.*` of
/// reference `name`; a parameter the reference has no gradient for must
/// have none here either.
fn grads_match(m: WaveNet, c: &BT<3>, g: Vec<i64>, io: &StateDict, name: &str, what: &str) {
    let dev = Device::flex();
    let rules = wavenet_vocoder_rules(m.upsample.len()).unwrap();
    let wrap = LossOf {
        m,
        c: values(c.clone()),
        c_shape: c.dims().to_vec(),
        g,
    };
    let one = Tensor::from_f32(vec![1.0], &[1], &dev).unwrap();
    let grads = backward(&wrap, &io["classes"], &one).unwrap();
    common::check_reference_grads(
        what,
        &REF.io_file(name),
        &rules,
        &wrap.m,
        &grads,
        "m.",
        GradTolerance::l2(1e-3, 1e-4).absent_is_zero(),
    );
}

/// μ-law classes of `0.6·sin(2π(t + shift)/P)`.
fn sine(period: usize, shift: usize, t: usize) -> Vec<f32> {
    (0..t)
        .map(|i| 0.6 * (std::f32::consts::TAU * (i + shift) as f32 / period as f32).sin())
        .collect()
}

/// A WaveNet learns two periodic μ-law signals picked by the global
/// condition: the loss falls far below its start, and argmax generation
/// from the same first sample continues each with its own period.
#[test]
fn learns_conditioned_periodic_signals() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let _guard = unidl_testkit::seeded(&ad, 3);
    let q = 64;
    let periods = [8usize, 13];
    let mut m = WaveNetConfig {
        out_channels: q,
        layers: 5,
        stacks: 1,
        residual_channels: 16,
        gate_channels: 32,
        skip_out_channels: 32,
        kernel_size: 2,
        dropout: 0.0,
        gin_channels: Some(4),
        n_speakers: Some(2),
        ..WaveNetConfig::default()
    }
    .init(&ad)
    .unwrap();
    assert_eq!(m.receptive_field(), 32);
    // four shifts of each signal, the unshifted one included
    let (b, t) = (8, 96);
    let x: Vec<f32> = (0..b)
        .flat_map(|i| sine(periods[i % 2], 3 * (i / 2), t))
        .collect();
    let classes = mu_law_encode(BT::<2>::from_data(TensorData::new(x, [b, t]), &ad), q);
    let ids: Vec<i64> = (0..b as i64).map(|i| i % 2).collect();
    let g = BT::<1, Int>::from_data(TensorData::new(ids, [b]), &ad);
    let mut opt = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..150 {
        let loss = m.loss(classes.clone(), None, Some(g.clone())).unwrap();
        losses.push(values(loss.clone())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(1e-2, m, grads);
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    eprintln!("loss {first:.3} → {last:.3}");
    assert!(last < 0.1 * first, "loss did not fall: {losses:?}");

    // both start from the class of sin(0); the condition picks the period
    let n = 160;
    let m = m.valid();
    let start = mu_law_encode(BT::<1>::zeros([1], &dev), q).into_scalar::<i64>() as usize;
    let cfg = GenerationConfig {
        samples: n,
        temperature: 0.0,
        initial_class: Some(start),
        ..GenerationConfig::default()
    };
    let g = BT::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &dev);
    let out = m.generate(None, Some(g), &cfg).unwrap();
    let got = values(mu_law_decode(out, q)); // [2, n]: samples 1..=n
    for (i, period) in periods.into_iter().enumerate() {
        let want = sine(period, 1, n);
        let err = max_diff(&got[i * n..(i + 1) * n], &want);
        eprintln!("generated signal {i} (period {period}): max error {err:.3}");
        assert!(err < 0.05, "signal {i}: {:?}", &got[i * n..(i + 1) * n]);
    }
}

#[test]
fn bad_configs_and_inputs_are_named() {
    let dev = Device::flex();
    let small = WaveNetConfig {
        layers: 4,
        stacks: 2,
        residual_channels: 8,
        gate_channels: 8,
        skip_out_channels: 8,
        out_channels: 16,
        ..WaveNetConfig::default()
    };
    let err = |c: WaveNetConfig| c.init(&dev).unwrap_err().to_string();
    let e = err(WaveNetConfig {
        layers: 5,
        ..small.clone()
    });
    assert!(e.contains("stacks") && e.contains("5 layers"), "{e}");
    let e = err(WaveNetConfig {
        gate_channels: 7,
        ..small.clone()
    });
    assert!(e.contains("gate_channels") && e.contains("even"), "{e}");
    let e = err(WaveNetConfig {
        gin_channels: Some(4),
        ..small.clone()
    });
    assert!(e.contains("n_speakers"), "{e}");
    let e = err(WaveNetConfig {
        upsample_scales: vec![4, 4],
        ..small.clone()
    });
    assert!(
        e.contains("upsample_scales") && e.contains("cin_channels"),
        "{e}"
    );
    let e = err(WaveNetConfig {
        cin_channels: Some(4),
        upsample_scales: vec![4, 0],
        ..small.clone()
    });
    assert!(e.contains("upsample_scales"), "{e}");
    let e = err(WaveNetConfig {
        cin_channels: Some(4),
        upsample_scales: vec![2],
        freq_axis_kernel_size: 2,
        ..small.clone()
    });
    assert!(
        e.contains("freq_axis_kernel_size") && e.contains("odd"),
        "{e}"
    );
    let e = err(WaveNetConfig {
        dropout: 1.0,
        ..small.clone()
    });
    assert!(e.contains("dropout"), "{e}");
    let e = toml::from_str::<WaveNetConfig>("layers = 4\nresidual_channel = 8")
        .unwrap_err()
        .to_string();
    assert!(e.contains("residual_channel"), "{e}");

    let m = WaveNetConfig {
        cin_channels: Some(4),
        upsample_scales: vec![2, 2],
        gin_channels: Some(3),
        n_speakers: Some(2),
        ..small.clone()
    }
    .init(&dev)
    .unwrap();
    let classes = || BT::<2, Int>::zeros([2, 12], &dev);
    let c = |f: usize, cin: usize| Some(BT::<3>::zeros([2, cin, f], &dev));
    let g = |ids: Vec<i64>| {
        Some(BT::<1, Int>::from_data(
            TensorData::new(ids.clone(), [ids.len()]),
            &dev,
        ))
    };
    let e = |r: unidl_audio::Result<BT<3>>| r.unwrap_err().to_string();
    let msg = e(m.try_forward(classes(), c(4, 4), g(vec![0, 1])));
    assert!(
        msg.contains("[2, 4, 4]") && msg.contains("≠ 12 samples"),
        "{msg}"
    );
    let msg = e(m.try_forward(classes(), c(3, 5), g(vec![0, 1])));
    assert!(msg.contains("4 conditioning features"), "{msg}");
    let msg = e(m.try_forward(classes(), None, g(vec![0, 1])));
    assert!(msg.contains("c is required"), "{msg}");
    let msg = e(m.try_forward(classes(), c(3, 4), g(vec![0, 2])));
    assert!(
        msg.contains("speaker ids 0..=2") && msg.contains("n_speakers"),
        "{msg}"
    );
    let msg = e(m.try_forward(classes(), c(3, 4), None));
    assert!(msg.contains("g (one id per sequence)"), "{msg}");
    let msg = e(m.try_forward(classes().add_scalar(16), c(3, 4), g(vec![0, 1])));
    assert!(
        msg.contains("[2, 12]") && msg.contains("outside 0..16"),
        "{msg}"
    );
    let msg = m
        .loss(BT::<2, Int>::zeros([2, 1], &dev), c(1, 4), g(vec![0, 1]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("at least 2 steps"), "{msg}");
    let y = m.try_forward(classes(), c(3, 4), g(vec![0, 1])).unwrap();
    assert_eq!(y.dims(), [2, 16, 12]);

    let mut state = m.incremental(c(3, 4), g(vec![1, 0]), 2).unwrap();
    let msg = state.step(&[1]).unwrap_err().to_string();
    assert!(msg.contains("1 classes for 2 sequences"), "{msg}");
    let msg = state.step(&[1, 16]).unwrap_err().to_string();
    assert!(msg.contains("class 16 outside 0..16"), "{msg}");
    let msg = m
        .generate(
            c(3, 4),
            g(vec![0, 1]),
            &GenerationConfig {
                temperature: -1.0,
                ..GenerationConfig::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(msg.contains("temperature"), "{msg}");
}

/// The mixture-of-logistics model of the reference with `num_classes` levels
/// (the weights do not depend on them).
fn mol_with_levels(num_classes: usize, dev: &Device) -> WaveNet {
    let mut cfg = config("mol");
    cfg.output = WaveNetOutput::MixtureOfLogistics {
        num_classes,
        log_scale_min: -7.0,
    };
    REF.load("mol", cfg.init(dev).unwrap(), load_wavenet_vocoder)
}

#[test]
fn mol_config_matches_the_reference() {
    let dev = Device::flex();
    let cfg = config("mol");
    assert_eq!(cfg.output, WaveNetOutput::mixture_of_logistics());
    let m = load("mol", &dev);
    assert_eq!(m.out_channels(), 30);
    assert_eq!(m.quantization_channels(), 65_536);
    assert_eq!(m.output(), WaveNetOutput::mixture_of_logistics());
    assert_eq!(m.first_conv.weight.dims(), [16, 1, 1]);
    let toml_cfg: WaveNetConfig = toml::from_str(
        "out_channels = 30\n[output]\ntype = \"mixture_of_logistics\"\nnum_classes = 256",
    )
    .unwrap();
    assert_eq!(
        toml_cfg.output,
        WaveNetOutput::MixtureOfLogistics {
            num_classes: 256,
            log_scale_min: -7.0
        }
    );
    let mu: WaveNetConfig = toml::from_str("[output]\ntype = \"mu_law\"").unwrap();
    assert_eq!(mu, WaveNetConfig::default());
}

/// One train-mode step of the mixture-of-logistics model over scalar
/// inputs: the outputs, the package's per-step losses and their mean, and
/// every gradient.
#[test]
fn mol_train_step_matches_torch() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let m = load("mol", &dev);
    let io = REF.io("mol", &dev);
    let (levels, c, g) = common::wavenet_inputs(&io, &dev);
    assert!(g.is_none());
    let [b, t] = levels.dims();
    // the levels' samples are the package's scalar inputs (±1 included)
    let x = linear_dequantize(levels.clone(), 65_536);
    check_close(
        "levels → samples",
        &values(x.clone()),
        &floats(&io, "x"),
        0.0,
    );
    let want = floats(&io, "output");
    let y = m
        .try_forward(levels.clone(), Some(c.clone()), None)
        .unwrap();
    assert_eq!(y.dims(), [b, 30, t]);
    check_close("mol outputs", &values(y.clone()), &want, 1e-4);
    let y1 = m.forward_one_hot(x.clone().unsqueeze_dim(1), Some(c.clone()), None);
    check_close("mol outputs over samples", &values(y1), &want, 1e-4);
    let steps =
        mixture_of_logistics_nll(y.narrow(2, 0, t - 1), x.narrow(1, 1, t - 1), 65_536, -7.0);
    check_close(
        "mol per-step loss",
        &values(steps),
        &floats(&io, "step_loss"),
        1e-4,
    );

    let mt = m.clone().fork(&ad).train();
    let loss = mt
        .loss(
            levels.clone().to_device(&ad),
            Some(c.clone().to_device(&ad)),
            None,
        )
        .unwrap();
    unidl_testkit::check_loss("mixture NLL", &loss, floats(&io, "loss")[0]);

    grads_match(m, &c, Vec::new(), &io, "mol", "wavenet mol");
}

/// `discretized_mix_logistic_loss` alone on random parameters (log scales
/// below `log_scale_min` included) and targets at the edges (±1,
/// ±0.9995): per-step values and the gradient of their mean, for 65536 and
/// 256 levels (the latter mostly in the `log(cdf_delta)` branch, the former
/// in the density's).
#[test]
fn mixture_loss_matches_wavenet_vocoder() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let io = REF.io("mixture", &dev);
    let y_hat = common::float_tensor::<3>(&io, "y_hat", &ad);
    let y = common::float_tensor::<2>(&io, "y", &ad);
    assert_eq!(y_hat.dims(), [2, 12, 9]);
    for n in [65_536usize, 256] {
        let x = y_hat.clone().require_grad();
        let steps = mixture_of_logistics_nll(x.clone(), y.clone(), n, -7.0);
        assert_eq!(steps.dims(), [2, 9]);
        let grads = steps.clone().mean().backward();
        check_close(
            &format!("mixture loss ({n} levels)"),
            &values(steps),
            &floats(&io, &format!("step_loss.{n}")),
            1e-5,
        );
        check_close(
            &format!("mixture loss gradient ({n} levels)"),
            &values(x.grad(&grads).unwrap()),
            &floats(&io, &format!("grad.{n}")),
            1e-4,
        );
    }
}

/// Per-step outputs of the fast incremental path of the mixture model,
/// teacher-forced with the reference's levels, equal the forward's.
#[test]
fn mol_incremental_steps_equal_the_forward() {
    let dev = Device::flex();
    let m = load("mol", &dev);
    let io = REF.io("mol", &dev);
    let (levels, c, _) = common::wavenet_inputs(&io, &dev);
    let [b, t] = levels.dims();
    let q = m.out_channels();
    let want = floats(&io, "output"); // [B, 3K, T]
    let ids = ints(&io, "classes");
    let mut state = m.incremental(Some(c), None, b).unwrap();
    let mut got = vec![0.0; b * q * t];
    for step in 0..t {
        let now: Vec<usize> = (0..b).map(|i| ids[i * t + step] as usize).collect();
        let out = state.step(&now).unwrap();
        assert_eq!(out.len(), b * q);
        for i in 0..b {
            for k in 0..q {
                got[(i * q + k) * t + step] = out[i * q + k];
            }
        }
    }
    check_close("mol incremental", &got, &want, 1e-4);
    state.reset();
    let msg = state.step(&[0, 65_536]).unwrap_err().to_string();
    assert!(msg.contains("class 65536 outside 0..65536"), "{msg}");
}

/// Fast and naive generation from the mixture draw the same levels for a
/// seed, at temperature 0 and 1 (256 levels: with 65536 levels 3·10⁻⁵
/// apart, the two paths' float rounding could move a draw to a
/// neighbouring level).
#[test]
fn mol_fast_and_naive_generation_draw_the_same_levels() {
    let dev = Device::flex();
    let m = mol_with_levels(256, &dev);
    let io = REF.io("mol", &dev);
    let (_, c, _) = common::wavenet_inputs(&io, &dev);
    for temperature in [0.0, 1.0] {
        let cfg = GenerationConfig {
            temperature,
            seed: 7,
            ..GenerationConfig::default()
        };
        let fast = m.generate(Some(c.clone()), None, &cfg).unwrap();
        let naive = m.generate_naive(Some(c.clone()), None, &cfg).unwrap();
        assert_eq!(fast.dims(), [2, 36]);
        let levels: Vec<i64> = fast
            .clone()
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        assert!(levels.iter().all(|&l| (0..256).contains(&l)));
        let distinct: std::collections::BTreeSet<i64> = levels.iter().copied().collect();
        eprintln!(
            "temperature {temperature}: {} distinct levels",
            distinct.len()
        );
        assert!(distinct.len() > 3, "{levels:?}");
        assert_eq!(
            fast.into_data(),
            naive.into_data(),
            "temperature {temperature}"
        );
    }
    let e = m
        .generate(
            Some(c),
            None,
            &GenerationConfig {
                initial_class: Some(256),
                ..GenerationConfig::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("initial_class") && e.contains("0..256"), "{e}");
}

/// A mixture-of-logistics WaveNet (256 levels) learns two periodic signals
/// picked by the global condition: the NLL falls by several nats, and
/// generation at temperature 0 (each step the most probable logistic's
/// mean) from silence oscillates with each signal's own period and about
/// its amplitude.
#[test]
fn mol_learns_conditioned_periodic_signals() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let _guard = unidl_testkit::seeded(&ad, 3);
    const STEPS: usize = 300;
    const LR: f64 = 3e-3;
    let n_levels = 256;
    let periods = [8usize, 13];
    let mut m = WaveNetConfig {
        out_channels: 3 * 2,
        layers: 5,
        stacks: 1,
        residual_channels: 16,
        gate_channels: 32,
        skip_out_channels: 32,
        kernel_size: 2,
        dropout: 0.0,
        gin_channels: Some(4),
        n_speakers: Some(2),
        output: WaveNetOutput::MixtureOfLogistics {
            num_classes: n_levels,
            log_scale_min: -7.0,
        },
        ..WaveNetConfig::default()
    }
    .init(&ad)
    .unwrap();
    let level = |x: f32| ((x + 1.0) / 2.0 * (n_levels - 1) as f32).round() as i64;
    let (b, t) = (8, 96);
    let x: Vec<i64> = (0..b)
        .flat_map(|i| sine(periods[i % 2], 3 * (i / 2), t))
        .map(level)
        .collect();
    let levels = BT::<2, Int>::from_data(TensorData::new(x, [b, t]), &ad);
    let ids: Vec<i64> = (0..b as i64).map(|i| i % 2).collect();
    let g = BT::<1, Int>::from_data(TensorData::new(ids, [b]), &ad);
    let mut opt = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..STEPS {
        let loss = m.loss(levels.clone(), None, Some(g.clone())).unwrap();
        losses.push(values(loss.clone())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(LR, m, grads);
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    eprintln!("mixture NLL {first:.3} → {last:.3}");
    assert!(last < first - 3.0, "loss did not fall: {losses:?}");

    let n = 160;
    let m = m.valid();
    let cfg = GenerationConfig {
        samples: n,
        temperature: 0.0,
        initial_class: Some(level(0.0) as usize),
        ..GenerationConfig::default()
    };
    let g = BT::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &dev);
    let out = m.generate(None, Some(g), &cfg).unwrap();
    let got = values(linear_dequantize(out, n_levels)); // [2, n]: samples 1..=n
    for (i, period) in periods.into_iter().enumerate() {
        let x = &got[i * n + n / 2..(i + 1) * n]; // the second half
        let mismatch = |lag: usize| {
            x.iter()
                .zip(&x[lag..])
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>()
                / (x.len() - lag) as f32
        };
        let lag = (2..=15)
            .min_by(|&a, &b| mismatch(a).total_cmp(&mismatch(b)))
            .unwrap();
        let amplitude = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        eprintln!(
            "generated signal {i} (period {period}): period {lag} (mismatch {:.3}), amplitude {amplitude:.2}",
            mismatch(lag)
        );
        assert!(
            lag == period && mismatch(lag) < 0.1 && (0.4..0.8).contains(&amplitude),
            "signal {i}: {x:?}"
        );
    }
}

#[test]
fn bad_mixture_configs_and_inputs_are_named() {
    let dev = Device::flex();
    let small = WaveNetConfig {
        layers: 4,
        stacks: 2,
        residual_channels: 8,
        gate_channels: 8,
        skip_out_channels: 8,
        out_channels: 30,
        output: WaveNetOutput::mixture_of_logistics(),
        ..WaveNetConfig::default()
    };
    let err = |c: WaveNetConfig| c.init(&dev).unwrap_err().to_string();
    let e = err(WaveNetConfig {
        out_channels: 31,
        ..small.clone()
    });
    assert!(
        e.contains("out_channels") && e.contains("multiple of 3"),
        "{e}"
    );
    let e = err(WaveNetConfig {
        output: WaveNetOutput::MixtureOfLogistics {
            num_classes: 1,
            log_scale_min: -7.0,
        },
        ..small.clone()
    });
    assert!(e.contains("output.num_classes"), "{e}");
    let e = err(WaveNetConfig {
        output: WaveNetOutput::MixtureOfLogistics {
            num_classes: 256,
            log_scale_min: f32::NAN,
        },
        ..small.clone()
    });
    assert!(e.contains("output.log_scale_min"), "{e}");
    let e = toml::from_str::<WaveNetConfig>("[output]\ntype = \"gaussian\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gaussian") && e.contains("mu_law") && e.contains("mixture_of_logistics"),
        "{e}"
    );
    let e = toml::from_str::<WaveNetConfig>(
        "[output]\ntype = \"mixture_of_logistics\"\nnum_class = 256",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("num_class"), "{e}");

    let m = small.init(&dev).unwrap();
    assert_eq!(m.first_conv.weight.dims(), [8, 1, 1]);
    let msg = m
        .try_forward(
            BT::<2, Int>::zeros([2, 5], &dev).add_scalar(65_536),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("outside 0..65536") && msg.contains("num_classes"),
        "{msg}"
    );
    let y = m
        .try_forward(
            BT::<2, Int>::zeros([2, 5], &dev).add_scalar(65_535),
            None,
            None,
        )
        .unwrap();
    assert_eq!(y.dims(), [2, 30, 5]);
    let loss = m
        .loss(BT::<2, Int>::zeros([2, 5], &dev), None, None)
        .unwrap();
    assert!(values(loss)[0].is_finite());
}
