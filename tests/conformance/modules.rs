//! Catalogue modules: forward and backward against PyTorch (flex) and against
//! flex (other back-ends); state-dict round trips on every back-end.

use burn::module::Module;
use burn::tensor::{Int, Tensor as BT};
use serde_json::Value;
use unidl_backend::{BackendKind, Device};
use unidl_nn as nn;
use unidl_tensor::Tensor;
use unidl_tensor::module::{Forward, ModuleApi, StateDict, backward};

use crate::reference::{self, Enc, ModuleCase, values_of};
use crate::{backends, max_err, tolerance};

/// Wraps a catalogue module so that it takes and returns dynamic tensors.
macro_rules! dyn_module {
    ($name:ident, $inner:ty, $rank:literal, $kind:ty, |$m:ident, $x:ident| $body:expr) => {
        #[derive(Module, Debug)]
        struct $name {
            m: $inner,
        }
        impl Forward for $name {
            fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
                let $x: BT<$rank, $kind> = input.clone().into_burn()?;
                let $m = &self.m;
                Tensor::from_burn($body)
            }
        }
    };
}

dyn_module!(DLinear, nn::Linear, 2, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DConv1d, nn::Conv1d, 3, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DConv2d, nn::Conv2d, 4, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DConv3d, nn::Conv3d, 5, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(
    DConvT2d,
    nn::ConvTranspose2d,
    4,
    burn::tensor::Float,
    |m, x| m.forward(x)
);
dyn_module!(
    DBatchNorm2d,
    nn::BatchNorm2d,
    4,
    burn::tensor::Float,
    |m, x| m.forward(x)
);
dyn_module!(DLayerNorm, nn::LayerNorm, 2, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DGroupNorm, nn::GroupNorm, 4, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DMaxPool2d, nn::MaxPool2d, 4, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DAvgPool2d, nn::AvgPool2d, 4, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DMaxPool3d, nn::MaxPool3d, 5, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(DAvgPool3d, nn::AvgPool3d, 5, burn::tensor::Float, |m, x| m
    .forward(x));
dyn_module!(
    DAdaptive2d,
    nn::AdaptiveAvgPool2d,
    4,
    burn::tensor::Float,
    |m, x| m.forward(x)
);
dyn_module!(DEmbedding, nn::Embedding, 2, Int, |m, x| m.forward(x));
dyn_module!(DLstm, nn::Lstm, 3, burn::tensor::Float, |m, x| m
    .forward(x, None)
    .0);
dyn_module!(DGru, nn::Gru, 3, burn::tensor::Float, |m, x| m
    .forward(x, None)
    .0);
dyn_module!(DRnn, nn::Rnn, 3, burn::tensor::Float, |m, x| m
    .forward(x, None)
    .0);

fn us(c: &Value, k: &str) -> usize {
    c[k].as_u64().unwrap_or_else(|| panic!("config key {k}")) as usize
}

/// PyTorch state-dict key → unidl (Burn) path, and whether the tensor is transposed.
fn torch_to_unidl(kind: &str, key: &str) -> (String, bool) {
    let rename = |k: &str| match k {
        "weight" if matches!(kind, "batchnorm2d" | "layernorm" | "groupnorm") => {
            "gamma".to_string()
        }
        "bias" if matches!(kind, "batchnorm2d" | "layernorm" | "groupnorm") => "beta".to_string(),
        other => other.to_string(),
    };
    let path = match kind {
        "lstm" | "gru" | "rnn" => {
            nn::unidl_param_path(key).unwrap_or_else(|| panic!("rnn key {key}"))
        }
        _ => rename(key),
    };
    (format!("m.{path}"), kind == "linear" && key == "weight")
}

/// Runs forward and backward of one case on `device`; returns (output, input grad, param grads by torch key).
type Run = (Tensor, Option<Tensor>, Vec<(String, Tensor)>);

fn run_case(case: &ModuleCase, device: &Device) -> Result<Run, String> {
    let c = &case.config;
    let ad = device.clone().autodiff();
    let mut state = StateDict::new();
    let mut transposed = Vec::new();
    for (k, enc) in &case.state {
        let (path, t) = torch_to_unidl(&case.kind, k);
        let mut v = enc.tensor(device).map_err(|e| e.to_string())?;
        if t {
            v = v.transpose(0, 1).map_err(|e| e.to_string())?;
            transposed.push(path.clone());
        }
        state.insert(path, v);
    }
    let x = case.input.tensor(device).map_err(|e| e.to_string())?;
    let g = case.grad_output.tensor(device).map_err(|e| e.to_string())?;
    macro_rules! go {
        ($m:expr) => {{
            let m = if case.train { $m } else { $m.valid() };
            let m = m.load_state_dict(&state).map_err(|e| e.to_string())?;
            let xd = if case.train {
                x.to_device(&ad).map_err(|e| e.to_string())?
            } else {
                x.clone()
            };
            let out = m.forward_dyn(&xd).map_err(|e| e.to_string())?;
            let grads = backward(&m, &x, &g).map_err(|e| e.to_string())?;
            let mut params = Vec::new();
            for (path, gt) in grads.parameters {
                let key = case
                    .state
                    .keys()
                    .find(|k| torch_to_unidl(&case.kind, k).0 == path)
                    .cloned()
                    .ok_or_else(|| format!("gradient for unknown parameter {path}"))?;
                let gt = if transposed.contains(&path) {
                    gt.transpose(0, 1).map_err(|e| e.to_string())?
                } else {
                    gt
                };
                params.push((key, gt));
            }
            Ok((out, grads.input, params))
        }};
    }
    let pad1 = |p: usize| nn::PaddingConfig1d::Explicit(p, p);
    let pad2 = |p: usize| nn::PaddingConfig2d::Explicit(p, p, p, p);
    match case.kind.as_str() {
        "linear" => go!(DLinear {
            m: nn::LinearConfig::new(us(c, "d_in"), us(c, "d_out")).init(&ad)
        }),
        "conv1d" => go!(DConv1d {
            m: nn::Conv1dConfig::new(us(c, "c_in"), us(c, "c_out"), us(c, "k"))
                .with_stride(us(c, "stride"))
                .with_padding(pad1(us(c, "padding")))
                .init(&ad)
        }),
        "conv2d" => go!(DConv2d {
            m: nn::Conv2dConfig::new([us(c, "c_in"), us(c, "c_out")], [us(c, "k"); 2])
                .with_stride([us(c, "stride"); 2])
                .with_padding(pad2(us(c, "padding")))
                .init(&ad)
        }),
        "conv3d" => go!(DConv3d {
            m: nn::Conv3dConfig::new([us(c, "c_in"), us(c, "c_out")], [us(c, "k"); 3])
                .with_stride([us(c, "stride"); 3])
                .init(&ad)
        }),
        "conv_transpose2d" => go!(DConvT2d {
            m: nn::ConvTranspose2dConfig::new([us(c, "c_in"), us(c, "c_out")], [us(c, "k"); 2])
                .with_stride([us(c, "stride"); 2])
                .with_padding([us(c, "padding"); 2])
                .init(&ad)
        }),
        "batchnorm2d" => go!(DBatchNorm2d {
            m: nn::BatchNorm2dConfig::new(us(c, "c")).init(&ad)
        }),
        "layernorm" => go!(DLayerNorm {
            m: nn::LayerNormConfig::new(us(c, "d")).init(&ad)
        }),
        "groupnorm" => go!(DGroupNorm {
            m: nn::GroupNormConfig::new(us(c, "groups"), us(c, "c")).init(&ad)
        }),
        "maxpool2d" => go!(DMaxPool2d {
            m: nn::MaxPool2dConfig::new([us(c, "k"); 2])
                .with_strides([us(c, "stride"); 2])
                .init()
        }),
        "avgpool2d" => go!(DAvgPool2d {
            m: nn::AvgPool2dConfig::new([us(c, "k"); 2])
                .with_strides([us(c, "stride"); 2])
                .init()
        }),
        "maxpool3d" => go!(DMaxPool3d {
            m: nn::MaxPool3dConfig::new([us(c, "k"); 3])
                .with_stride([us(c, "stride"); 3])
                .init()
        }),
        "avgpool3d" => go!(DAvgPool3d {
            m: nn::AvgPool3dConfig::new([us(c, "k"); 3])
                .with_stride([us(c, "stride"); 3])
                .init()
        }),
        "adaptive_avgpool2d" => {
            let o: Vec<usize> = c["out"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            go!(DAdaptive2d {
                m: nn::AdaptiveAvgPool2dConfig::new([o[0], o[1]]).init()
            })
        }
        "embedding" => go!(DEmbedding {
            m: nn::EmbeddingConfig::new(us(c, "n"), us(c, "d")).init(&ad)
        }),
        "lstm" => go!(DLstm {
            m: rnn_cfg!(nn::LstmConfig, c).init(&ad)
        }),
        "gru" => go!(DGru {
            m: rnn_cfg!(nn::GruConfig, c).init(&ad)
        }),
        "rnn" => go!(DRnn {
            m: rnn_cfg!(nn::RnnConfig, c).init(&ad)
        }),
        other => Err(format!("no conformance runner for module kind `{other}`")),
    }
}

macro_rules! rnn_cfg {
    ($cfg:ty, $c:expr) => {
        <$cfg>::new(us($c, "input_size"), us($c, "hidden_size"))
            .with_num_layers(us($c, "num_layers"))
            .with_bidirectional($c["bidirectional"].as_bool().unwrap())
            .with_batch_first(true)
    };
}
use rnn_cfg;

fn compare(
    what: &str,
    got: &Tensor,
    want: &[f64],
    shape: &[usize],
    tol: f64,
) -> Result<(), String> {
    if got.shape() != shape {
        return Err(format!(
            "{what}: shape {:?}, expected {shape:?}",
            got.shape()
        ));
    }
    let e = max_err(&values_of(got), want).map_err(|e| format!("{what}: {e}"))?;
    if e > tol {
        return Err(format!("{what}: max error {e:.2e} > {tol:.0e}"));
    }
    Ok(())
}

fn check_run(run: &Run, want: &Run, tol: f64) -> Result<(), String> {
    compare("output", &run.0, &values_of(&want.0), want.0.shape(), tol)?;
    match (&run.1, &want.1) {
        (Some(a), Some(b)) => compare("input grad", a, &values_of(b), b.shape(), tol)?,
        (None, None) => {}
        _ => return Err("input gradient presence differs".into()),
    }
    for (k, g) in &want.2 {
        let got = run
            .2
            .iter()
            .find(|(n, _)| n == k)
            .ok_or_else(|| format!("no gradient for {k}"))?;
        compare(&format!("grad {k}"), &got.1, &values_of(g), g.shape(), tol)?;
    }
    Ok(())
}

fn torch_run(case: &ModuleCase, device: &Device) -> Run {
    let t = |e: &Enc| e.tensor(device).unwrap();
    (
        t(&case.output),
        case.input_grad.as_ref().map(t),
        case.param_grads
            .iter()
            .map(|(k, e)| (k.clone(), t(e)))
            .collect(),
    )
}

#[test]
fn every_module_forward_and_backward_matches_pytorch_and_flex() {
    let _rng = crate::rng_guard();
    let reference = reference::load();
    let backends = backends();
    let flex = Device::flex();
    let mut failures = Vec::new();
    for case in &reference.modules {
        let want = torch_run(case, &flex);
        let flex_run = match run_case(case, &flex) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{} on flex: {e}", case.name));
                continue;
            }
        };
        if let Err(e) = check_run(&flex_run, &want, 1e-4) {
            failures.push(format!("{} on flex vs torch: {e}", case.name));
        }
        for (kind, device) in &backends {
            if *kind == BackendKind::Flex {
                continue;
            }
            match run_case(case, device) {
                Ok(r) => {
                    if let Err(e) = check_run(&r, &flex_run, tolerance(*kind)) {
                        failures.push(format!("{} on {kind} vs flex: {e}", case.name));
                    }
                }
                Err(e) => failures.push(format!("{} on {kind}: {e}", case.name)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Module, Debug)]
struct Small {
    conv: nn::Conv2d,
    bn: nn::BatchNorm2d,
    lstm: nn::Lstm,
    head: nn::Linear,
}

fn small(device: &Device) -> Small {
    Small {
        conv: nn::Conv2dConfig::new([1, 2], [3, 3]).init(device),
        bn: nn::BatchNorm2dConfig::new(2).init(device),
        lstm: nn::LstmConfig::new(2, 3).with_num_layers(2).init(device),
        head: nn::LinearConfig::new(3, 2).init(device),
    }
}

#[test]
fn state_dict_round_trips_on_every_backend() {
    let _rng = crate::rng_guard();
    let dir = std::env::temp_dir().join(format!("unidl-conformance-{}", std::process::id()));
    for (kind, device) in backends() {
        unidl_backend::seed(&device, 7);
        let a = small(&device);
        let path = dir.join(format!("{kind}.safetensors"));
        a.save_training_state(&path).unwrap();
        unidl_backend::seed(&device, 8);
        let b = small(&device);
        assert_ne!(
            values_of(&b.state_dict()["head.weight"]),
            values_of(&a.state_dict()["head.weight"]),
            "{kind}: seeds 7 and 8 gave equal weights"
        );
        let b = b.load_training_state(&path).unwrap();
        let (sa, sb) = (a.state_dict(), b.state_dict());
        assert_eq!(
            sa.keys().collect::<Vec<_>>(),
            sb.keys().collect::<Vec<_>>(),
            "{kind}"
        );
        for (k, t) in &sa {
            assert_eq!(
                values_of(t),
                values_of(&sb[k]),
                "{kind}: {k} differs after round trip"
            );
        }
        // Parameters are trainable, running statistics are buffers.
        let params: Vec<String> = b.get_parameters().into_iter().map(|(k, _)| k).collect();
        assert!(
            params.contains(&"bn.gamma".to_string())
                && !params.contains(&"bn.running_mean".to_string()),
            "{kind}: {params:?}"
        );
        let buffers: Vec<String> = b.get_buffers().into_iter().map(|(k, _)| k).collect();
        assert_eq!(buffers, vec!["bn.running_mean", "bn.running_var"], "{kind}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
