//! unidl-audio's Conformer with the paper's relative positional encoding
//! (`pos_encoding = "relative"`) against a PyTorch reference
//! (`tests/reference/gen_conformer_rel.py`: torchaudio 2.9.0's layers with
//! ESPnet's `RelPositionalEncoding` and `RelPositionMultiHeadedAttention`):
//! the encodings; the blocks in eval mode (batch norm; group norm with
//! convolution first) on a padded batch with per-sample lengths; the full
//! CTC model (front end, relative blocks, head) for one train-mode step —
//! log-probs, loss and every gradient —; the parameters it adds; typed
//! config errors.

mod common;

use burn::module::Module;
use burn::tensor::Tensor as BT;
use common::{Reference, params};
use unidl_audio::{AudioError, ConformerConfig, PosEncoding};
use unidl_backend::Device;
use unidl_tensor::module::ModuleApi;
use unidl_testkit::{check_close, values};

const REF: Reference = Reference::committed("conformer_rel");

fn config(name: &str) -> ConformerConfig {
    REF.config(name)
}

#[test]
fn relative_encodings_are_espnets() {
    let want: Vec<f32> = REF.meta()["encodings_t5_d6"]
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
    for name in ["rel_blocks", "rel_blocks_gn"] {
        assert_eq!(config(name).pos_encoding, PosEncoding::Relative);
        common::conformer::blocks_match(REF, name);
    }
}

#[test]
fn relative_ctc_model_train_step_matches_the_reference() {
    let mapped = common::conformer::ctc_train_step_matches(REF, "rel_ctc", "relative ctc");
    // every unidl parameter has a reference gradient, the relative terms too
    for k in ["linear_pos.weight", "pos_bias_u", "pos_bias_v"] {
        assert!(
            mapped.contains(&format!("layers.1.self_attn_pos.{k}")),
            "{k}"
        );
    }
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
    assert_eq!(REF.meta()["conformer_s_rel_params"], 8_107_776);
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
