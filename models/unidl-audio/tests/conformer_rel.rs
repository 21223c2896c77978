//! unidl-audio's Conformer with the paper's relative positional encoding
//! (`pos_encoding = "relative"`) against a PyTorch reference
//! (`tests/reference/gen_conformer_rel.py`: torchaudio 2.9.0's layers with
//! ESPnet's `RelPositionalEncoding` and `RelPositionMultiHeadedAttention`):
//! the encodings; the blocks in eval mode (batch norm; group norm with
//! convolution first) on a padded batch with per-sample lengths; the full
//! CTC model (front end, relative blocks, head) for one train-mode step —
//! log-probs, loss and every gradient —; the parameters it adds; typed
//! config errors.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Float, Int, Tensor as BT};
use unidl_audio::weights::{load_torchaudio_conformer, torchaudio_conformer_rules};
use unidl_audio::{AudioError, Conformer, ConformerConfig, PosEncoding};
use unidl_backend::Device;
use unidl_interop::{Checkpoint, Framework, MappingRules};
use unidl_tensor::Tensor;
use unidl_tensor::module::{Forward, ModuleApi, StateDict, backward, load_state_dict_file};
use unidl_testkit::{check_close, floats, values};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/conformer_rel")
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("conformer_rel.json")).unwrap())
        .unwrap()
}

fn config(name: &str) -> ConformerConfig {
    serde_json::from_value(meta()["models"][name]["config"].clone()).unwrap()
}

fn io(name: &str, dev: &Device) -> StateDict {
    load_state_dict_file(&dir().join(format!("{name}.io.safetensors")), dev).unwrap()
}

fn ints(io: &StateDict, key: &str) -> Vec<i64> {
    io[key]
        .clone()
        .into_burn::<1, Int>()
        .unwrap()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap()
}

fn lengths(io: &StateDict, key: &str) -> Vec<usize> {
    ints(io, key).into_iter().map(|v| v as usize).collect()
}

fn input(io: &StateDict, dev: &Device) -> BT<3> {
    BT::from_data(
        io["input"]
            .clone()
            .into_burn::<3, Float>()
            .unwrap()
            .into_data(),
        dev,
    )
}

fn params<M: ModuleApi>(m: &M) -> usize {
    m.get_parameters().iter().map(|(_, t)| t.numel()).sum()
}

#[test]
fn relative_encodings_are_espnets() {
    let want: Vec<f32> = meta()["encodings_t5_d6"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let got = unidl_audio::conformer::relative_sinusoids(5, 6, &Device::flex());
    assert_eq!(got.dims(), [9, 6]);
    check_close("encodings T 5 d 6", &values(got), &want, 1e-6);
}

#[test]
fn relative_blocks_match_the_reference_in_eval_mode() {
    let dev = Device::flex();
    for name in ["rel_blocks", "rel_blocks_gn"] {
        let c = config(name);
        assert_eq!(c.pos_encoding, PosEncoding::Relative);
        let (m, report) = load_torchaudio_conformer(
            c.init(&dev).unwrap(),
            &dir().join(format!("{name}.safetensors")),
            true,
        )
        .unwrap();
        assert!(report.load.missing.is_empty(), "{report}");
        let io = io(name, &dev);
        let (y, n) = m
            .try_forward(input(&io, &dev), &lengths(&io, "lengths"))
            .unwrap();
        assert_eq!(n, lengths(&io, "output_lengths"));
        check_close(name, &values(y), &floats(&io, "output"), 1e-4);
    }
}

/// The CTC model's rules: unidl's parts under the generator's names.
fn ctc_rules() -> MappingRules {
    MappingRules::new()
        .rename(r"^frontend\.", "subsampling.")
        .and_then(|r| r.rename(r"^blocks\.", ""))
        .and_then(|r| r.rename(r"^head\.", "ctc_head."))
        .unwrap()
        .then(torchaudio_conformer_rules(false).unwrap())
}

/// The model and a CTC loss over fixed targets, for `backward`.
#[derive(Module, Debug)]
struct CtcLoss {
    m: Conformer,
    #[module(skip)]
    lengths: Vec<usize>,
    #[module(skip)]
    targets: Vec<Vec<u32>>,
}

impl Forward for CtcLoss {
    fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
        let (lp, n) = self
            .m
            .ctc(input.clone().into_burn::<3, Float>()?, &self.lengths)
            .expect("a CTC head");
        Tensor::from_burn(unidl_train::ctc_loss(lp, &self.targets, &n, 0).unwrap())
    }
}

#[test]
fn relative_ctc_model_train_step_matches_the_reference() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let ckpt =
        unidl_interop::read_safetensors(&dir().join("rel_ctc.safetensors"), Framework::PyTorch)
            .unwrap();
    let (m, report) = unidl_interop::load_into(
        config("rel_ctc").init(&dev).unwrap(),
        &ckpt,
        &ctc_rules(),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    let io = io("rel_ctc", &dev);
    let lens = lengths(&io, "lengths");
    let tl = lengths(&io, "target_lengths");
    let flat = ints(&io, "targets_flat");
    let width = flat.len() / tl.len();
    let targets: Vec<Vec<u32>> = tl
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            flat[i * width..i * width + n]
                .iter()
                .map(|&v| v as u32)
                .collect()
        })
        .collect();

    // train mode: batch statistics in the convolution modules
    let (lp, n) = m.clone().fork(&ad).ctc(input(&io, &ad), &lens).unwrap();
    assert_eq!(n, lengths(&io, "output_lengths"));
    check_close(
        "relative ctc log-probs",
        &values(lp.clone()),
        &floats(&io, "log_probs"),
        1e-4,
    );
    let loss = unidl_train::ctc_loss(lp, &targets, &n, 0).unwrap();
    unidl_testkit::check_loss("relative ctc loss", &loss, floats(&io, "loss")[0]);

    let wrap = CtcLoss {
        m,
        lengths: lens,
        targets,
    };
    let x = io["input"].clone();
    let one = Tensor::from_f32(vec![1.0], &[1], &dev).unwrap();
    let grads = backward(&wrap, &x, &one).unwrap();
    let src =
        unidl_interop::read_safetensors(&dir().join("rel_ctc.io.safetensors"), Framework::PyTorch)
            .unwrap();
    let ckpt = Checkpoint {
        source: src.source.clone(),
        framework: Framework::PyTorch,
        tensors: src
            .tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix("grad.").map(|k| (k.to_string(), t.clone())))
            .collect(),
    };
    let types = unidl_interop::mapping::module_types(&wrap.m);
    let (mapped, _) = unidl_interop::mapping::map_checkpoint(&ckpt, &ctc_rules(), &types).unwrap();
    // every unidl parameter has a reference gradient, the relative terms too
    assert_eq!(mapped.len(), wrap.m.get_parameters().len());
    for k in ["linear_pos.weight", "pos_bias_u", "pos_bias_v"] {
        assert!(
            mapped.contains_key(&format!("layers.1.self_attn_pos.{k}")),
            "{k}"
        );
    }
    let pairs: Vec<(String, Vec<f32>, Vec<f32>)> = mapped
        .iter()
        .map(|(k, t)| {
            let want = t.to_tensor(&dev).unwrap().to_vec_f32().unwrap();
            let got = grads.parameters[&format!("m.{k}")].to_vec_f32().unwrap();
            (k.clone(), got, want)
        })
        .collect();
    // a gradient that is zero in exact arithmetic (the depthwise bias before
    // train-mode batch norm) is compared at 1 % of the largest one's norm
    unidl_testkit::check_grads_l2("relative ctc model", &pairs, 1e-2, 1e-4);
}

#[test]
fn relative_attention_adds_linear_pos_and_two_biases_per_layer() {
    let dev = Device::flex();
    let rel = |c: ConformerConfig| ConformerConfig {
        pos_encoding: PosEncoding::Relative,
        ..c
    };
    // Conformer-S: 16 × (144² + 2·144) more than torchaudio's 7,771,392
    let m = rel(ConformerConfig::small(144)).init(&dev).unwrap();
    assert_eq!(params(&m), 7_771_392 + 16 * (144 * 144 + 2 * 144));
    assert_eq!(params(&m), 8_107_776);
    assert_eq!(meta()["conformer_s_rel_params"], 8_107_776);
    // the reduced CTC model, against its absolute twin
    let c = config("rel_ctc");
    let abs = ConformerConfig {
        pos_encoding: PosEncoding::None,
        ..c.clone()
    };
    let (d, l) = (c.d_model, c.num_layers);
    let m = c.init(&dev).unwrap();
    assert_eq!(
        params(&m) - params(&abs.init(&dev).unwrap()),
        l * (d * d + 2 * d)
    );
    let names: Vec<String> = m.get_parameters().into_iter().map(|(k, _)| k).collect();
    for k in [
        "layers.0.self_attn_pos.linear_pos.weight",
        "layers.0.self_attn_pos.pos_bias_u",
        "layers.0.self_attn_pos.pos_bias_v",
        "layers.0.self_attn.query.weight",
    ] {
        assert!(names.iter().any(|n| n == k), "{k} not in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("linear_pos.bias")));
    let shapes: Vec<(String, Vec<usize>)> = m
        .get_parameters()
        .into_iter()
        .filter(|(k, _)| k.starts_with("layers.0.self_attn_pos."))
        .map(|(k, t)| (k, t.shape().to_vec()))
        .collect();
    assert_eq!(shapes.len(), 3, "{shapes:?}");
    for (k, s) in &shapes {
        let want = if k.contains("pos_bias") {
            vec![c.num_heads, d / c.num_heads]
        } else {
            vec![d, d]
        };
        assert_eq!(s, &want, "{k}");
    }
}

#[test]
fn relative_forward_is_deterministic_in_eval_and_drops_out_in_training() {
    let dev = Device::flex();
    let c = ConformerConfig {
        d_model: 16,
        num_heads: 2,
        ffn_dim: 24,
        num_layers: 1,
        depthwise_conv_kernel_size: 3,
        dropout: 0.3,
        pos_encoding: PosEncoding::Relative,
        ..ConformerConfig::small(16)
    };
    let m = c.init(&dev).unwrap();
    let x = BT::<3>::random(
        [2, 7, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &dev,
    );
    let a = values(m.forward(x.clone(), &[7, 4]).0);
    let b = values(m.forward(x.clone(), &[7, 4]).0);
    assert_eq!(a, b);
    assert!(a.iter().all(|v| v.is_finite()));
    let ad = dev.clone().autodiff();
    let mt = m.fork(&ad);
    let xt = BT::<3>::from_data(x.into_data(), &ad);
    let t1 = values(mt.forward(xt.clone(), &[7, 4]).0);
    assert_ne!(t1, a, "dropout is active on an autodiff device");
}

#[test]
fn pos_encoding_config_is_typed() {
    let c: ConformerConfig = toml::from_str("input_dim = 80").unwrap();
    assert_eq!(c.pos_encoding, PosEncoding::None);
    let c: ConformerConfig = toml::from_str("input_dim = 80\npos_encoding = \"relative\"").unwrap();
    assert_eq!(c.pos_encoding, PosEncoding::Relative);
    let e = toml::from_str::<ConformerConfig>("input_dim = 80\npos_encoding = \"rotary\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rotary") && e.contains("relative") && e.contains("none"),
        "{e}"
    );
    let even = ConformerConfig {
        d_model: 150,
        num_heads: 5,
        num_layers: 1,
        pos_encoding: PosEncoding::Relative,
        ..ConformerConfig::small(80)
    };
    assert!(even.init(&Device::flex()).is_ok());
    let e = ConformerConfig {
        d_model: 147,
        num_heads: 3,
        num_layers: 1,
        pos_encoding: PosEncoding::Relative,
        ..ConformerConfig::small(80)
    }
    .init(&Device::flex())
    .unwrap_err();
    match &e {
        AudioError::Config { key, reason } => {
            assert_eq!(key, "d_model");
            assert!(reason.contains("147") && reason.contains("relative"), "{e}");
        }
        other => panic!("expected a config error, got {other}"),
    }
    // the same odd width is fine without positions (torchaudio's)
    assert!(
        ConformerConfig {
            d_model: 147,
            num_heads: 3,
            num_layers: 1,
            ..ConformerConfig::small(80)
        }
        .init(&Device::flex())
        .is_ok()
    );
}
