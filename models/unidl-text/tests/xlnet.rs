//! XLNet against `transformers` 5.23.0 (`tests/reference/gen_xlnet.py`): the
//! parameter count of xlnet-base, the reduced model's hidden states (with
//! segment ids and a left-padded row, without them, with ReLU and clamped
//! distances), the two-stream attention's query stream, the classifier's
//! logits, loss and gradients; padding on either side; typed errors; and
//! training from the reference checkpoint through the registry
//! (`[pretrained]`).

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_run::ZooModel;
use unidl_tensor::module::{StateDict, load_state_dict_file};
use unidl_testkit::{check_close, check_grad, check_loss, floats, values};
use unidl_text::TextError;
use unidl_text::xlnet::{
    FfActivation, XLNetClassifierConfig, XLNetConfig, XLNetForSequenceClassification,
    load_hf_xlnet_weights,
};

use super::common::{Route, int_input, mask_input};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/xlnet")
}

fn checkpoint() -> PathBuf {
    reference_dir().join("xlnet_cls.safetensors")
}

fn meta() -> serde_json::Value {
    let text = std::fs::read_to_string(reference_dir().join("xlnet.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn io(dev: &Device) -> StateDict {
    load_state_dict_file(&reference_dir().join("xlnet.io.safetensors"), dev).unwrap()
}

fn config() -> XLNetConfig {
    serde_json::from_value(meta()["config"].clone()).unwrap()
}

fn classifier(dev: &Device) -> XLNetForSequenceClassification {
    let (model, report) = load_hf_xlnet_weights(
        config().init_classifier(3, dev).unwrap(),
        &checkpoint(),
        true,
    )
    .unwrap();
    assert!(
        report.load.missing.is_empty() && report.load.unexpected.is_empty(),
        "{report}"
    );
    model
}

/// A `[rows, cols, cols']` saved float tensor.
fn floats3(io: &StateDict, key: &str, dev: &Device) -> Tensor<3> {
    let s = io[key].shape();
    Tensor::from_data(TensorData::new(floats(io, key), [s[0], s[1], s[2]]), dev)
}

#[test]
fn xlnet_base_has_116_718_336_parameters() {
    let m = XLNetConfig::default().init_model(&Device::flex()).unwrap();
    assert_eq!(m.num_params(), 116_718_336);
    assert_eq!(meta()["xlnet_base_params"], 116_718_336);
}

/// The `config.json` `transformers` writes (every key) reads into the
/// reduced architecture.
#[test]
fn a_transformers_config_json_reads() {
    let cfg = XLNetConfig::from_hf_json(&reference_dir().join("xlnet_config.json")).unwrap();
    // transformers writes the derived head width
    assert_eq!(cfg.d_head, Some(8));
    assert_eq!(
        XLNetConfig {
            d_head: None,
            ..cfg
        },
        config()
    );
}

#[test]
fn xlnet_matches_transformers_in_eval_mode() {
    let dev = Device::flex();
    let io = io(&dev);
    let model = classifier(&dev);
    let ids = int_input(&io, "input_ids", &dev);
    let types = int_input(&io, "token_type_ids", &dev);
    let attention = mask_input(&io, "attention_mask", &dev);
    // every row, padding included: the masks are transformers' own
    let hidden = model
        .transformer
        .forward(ids.clone(), Some(types.clone()), Some(attention.clone()))
        .unwrap();
    check_close(
        "hidden states (segments, left padding)",
        &values(hidden),
        &floats(&io, "hidden"),
        1e-5,
    );
    let plain = model
        .transformer
        .forward(ids.clone().narrow(0, 0, 1), None, None)
        .unwrap();
    check_close(
        "hidden states (no segments, no mask)",
        &values(plain),
        &floats(&io, "hidden_plain"),
        1e-5,
    );
    let logits = model.forward(ids, Some(types), Some(attention)).unwrap();
    check_close(
        "classifier logits",
        &values(logits),
        &floats(&io, "cls_logits"),
        1e-5,
    );
    // the task model's checkpoint loads into the bare encoder too
    let (_, r) =
        load_hf_xlnet_weights(config().init_model(&dev).unwrap(), &checkpoint(), false).unwrap();
    assert!(r.load.missing.is_empty(), "{r}");
    assert_eq!(
        r.load.unexpected,
        vec![
            "logits_proj.bias",
            "logits_proj.weight",
            "summary.bias",
            "summary.weight"
        ],
        "{r}"
    );
}

#[test]
fn relu_and_clamped_distances_match_transformers() {
    let dev = Device::flex();
    let io = io(&dev);
    let cfg = XLNetConfig {
        ff_activation: FfActivation::Relu,
        clamp_len: 3,
        ..config()
    };
    let (model, _) =
        load_hf_xlnet_weights(cfg.init_model(&dev).unwrap(), &checkpoint(), false).unwrap();
    let hidden = model
        .forward(
            int_input(&io, "input_ids", &dev),
            Some(int_input(&io, "token_type_ids", &dev)),
            Some(mask_input(&io, "attention_mask", &dev)),
        )
        .unwrap();
    check_close(
        "hidden states (ReLU, clamp_len 3)",
        &values(hidden),
        &floats(&io, "hidden_relu_clamp"),
        1e-5,
    );
}

/// The query stream of `perm_mask` + `target_mapping` (a random
/// factorisation order per row, two predictions each).
#[test]
fn two_stream_attention_matches_transformers() {
    let dev = Device::flex();
    let io = io(&dev);
    let model = classifier(&dev);
    let perm = floats3(&io, "perm_mask", &dev).greater_elem(0.5);
    let out = model
        .transformer
        .forward_two_stream(
            int_input(&io, "input_ids", &dev),
            Some(int_input(&io, "token_type_ids", &dev)),
            Some(mask_input(&io, "attention_mask", &dev)),
            Some(perm),
            floats3(&io, "target_mapping", &dev),
        )
        .unwrap();
    assert_eq!(out.content.dims(), [2, 9, 32]);
    check_close(
        "query stream",
        &values(out.query),
        &floats(&io, "query_stream"),
        1e-5,
    );
}

#[test]
fn xlnet_classifier_loss_and_gradients_match_transformers() {
    let dev = Device::flex().autodiff();
    let io = io(&dev);
    let model = classifier(&dev);
    let labels: Vec<i64> = floats(&io, "labels").iter().map(|&x| x as i64).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [2]), &dev);
    let logits = model
        .forward(
            int_input(&io, "input_ids", &dev),
            Some(int_input(&io, "token_type_ids", &dev)),
            Some(mask_input(&io, "attention_mask", &dev)),
        )
        .unwrap();
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&dev)
        .forward(logits, labels);
    check_loss("classifier loss", &loss, floats(&io, "cls_loss")[0]);
    let grads = loss.backward();
    let t = &model.transformer;
    let (l0, l1) = (&t.layers[0], &t.layers[1]);
    let g3 = |p: &Param<Tensor<3>>| p.grad(&grads).map(values);
    let g2 = |p: &Param<Tensor<2>>| p.grad(&grads).map(values);
    let g1 = |p: &Param<Tensor<1>>| p.grad(&grads).map(values);
    // Burn's dense weights are [in, out]: transposed to PyTorch's [out, in]
    let linear = |w: &Param<Tensor<2>>| w.grad(&grads).map(|g| values(g.transpose()));
    for (name, got) in [
        (
            "transformer.word_embedding.weight",
            g2(&t.word_embedding.weight),
        ),
        ("transformer.layer.0.rel_attn.q", g3(&l0.attention.query)),
        ("transformer.layer.0.rel_attn.r", g3(&l0.attention.position)),
        (
            "transformer.layer.0.rel_attn.r_r_bias",
            g2(&l0.attention.position_bias),
        ),
        (
            "transformer.layer.0.rel_attn.r_s_bias",
            g2(&l0.attention.segment_bias),
        ),
        (
            "transformer.layer.0.rel_attn.seg_embed",
            g3(&l0.attention.segment_embed),
        ),
        (
            "transformer.layer.0.rel_attn.layer_norm.weight",
            g1(&l0.attention_norm.gamma),
        ),
        ("transformer.layer.1.rel_attn.k", g3(&l1.attention.key)),
        ("transformer.layer.1.rel_attn.o", g3(&l1.attention.output)),
        (
            "transformer.layer.1.rel_attn.r_w_bias",
            g2(&l1.attention.content_bias),
        ),
        (
            "transformer.layer.1.ff.layer_1.weight",
            linear(&l1.ff.layer_1.weight),
        ),
        (
            "transformer.layer.1.ff.layer_norm.bias",
            l1.ff.layer_norm.beta.as_ref().and_then(g1),
        ),
        (
            "sequence_summary.summary.weight",
            linear(&model.summary.weight),
        ),
        (
            "logits_proj.bias",
            model.logits_proj.bias.as_ref().and_then(g1),
        ),
    ] {
        check_grad(name, got, &floats(&io, &format!("grad.{name}")), 1e-4);
    }
}

/// Real tokens' states and the classifier's logits are the same alone,
/// left-padded (XLNet's tokenizer) and right-padded (the task layer's).
#[test]
fn padding_on_either_side_never_changes_the_real_tokens() {
    let dev = Device::flex();
    let model = classifier(&dev);
    let ids = |v: Vec<i64>| {
        let n = v.len();
        Tensor::<2, Int>::from_data(TensorData::new(v, [1, n]), &dev)
    };
    let mask = |v: Vec<bool>| {
        let n = v.len();
        Tensor::<2, Bool>::from_data(TensorData::new(v, [1, n]), &dev)
    };
    let real = vec![17i64, 45, 98, 3];
    let alone = model
        .transformer
        .forward(ids(real.clone()), None, None)
        .unwrap();
    let alone_logits = model.forward(ids(real.clone()), None, None).unwrap();
    let left_mask = mask(vec![false, false, true, true, true, true]);
    let right_mask = mask(vec![true, true, true, true, false, false]);
    let left_ids = ids([vec![5, 5], real.clone()].concat());
    let right_ids = ids([real, vec![5, 5]].concat());
    let left = model
        .transformer
        .forward(left_ids.clone(), None, Some(left_mask.clone()))
        .unwrap();
    let right = model
        .transformer
        .forward(right_ids.clone(), None, Some(right_mask.clone()))
        .unwrap();
    check_close(
        "left padding",
        &values(left.narrow(1, 2, 4)),
        &values(alone.clone()),
        1e-5,
    );
    check_close(
        "right padding",
        &values(right.narrow(1, 0, 4)),
        &values(alone),
        1e-5,
    );
    let want = values(alone_logits);
    for (what, ids, mask) in [
        ("left", left_ids, left_mask),
        ("right", right_ids, right_mask),
    ] {
        let got = values(model.forward(ids, None, Some(mask)).unwrap());
        check_close(&format!("logits, {what} padding"), &got, &want, 1e-5);
    }
}

#[test]
fn bad_xlnet_configs_inputs_and_weights_are_named() {
    let dev = Device::flex();
    for (cfg, key) in [
        (
            XLNetConfig {
                n_head: 5,
                ..config()
            },
            "n_head",
        ),
        (
            XLNetConfig {
                d_head: Some(16),
                ..config()
            },
            "d_head",
        ),
        (
            XLNetConfig {
                d_model: 33,
                n_head: 3,
                ..config()
            },
            "d_model",
        ),
        (
            XLNetConfig {
                attn_type: "uni".into(),
                ..config()
            },
            "attn_type",
        ),
        (
            XLNetConfig {
                bi_data: true,
                ..config()
            },
            "bi_data",
        ),
        (
            XLNetConfig {
                untie_r: false,
                ..config()
            },
            "untie_r",
        ),
        (
            XLNetConfig {
                same_length: true,
                ..config()
            },
            "same_length",
        ),
        (
            XLNetConfig {
                summary_type: "first".into(),
                ..config()
            },
            "summary_type",
        ),
        (
            XLNetConfig {
                summary_activation: None,
                ..config()
            },
            "summary_activation",
        ),
        (
            XLNetConfig {
                dropout: 1.0,
                ..config()
            },
            "dropout",
        ),
    ] {
        let e = cfg.init_model(&dev).unwrap_err();
        assert!(
            matches!(&e, TextError::Config { key: k, .. } if k == key),
            "{key}: {e}"
        );
    }
    let e = config().init_classifier(0, &dev).unwrap_err().to_string();
    assert!(e.contains("num_labels"), "{e}");
    // unknown keys of a unidl config are refused naming them
    let e = toml::from_str::<XLNetConfig>("d_model = 64\nhidden_size = 3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("hidden_size"), "{e}");

    // config.json files: unsupported settings are named, bookkeeping ignored
    let dir = std::env::temp_dir().join(format!("unidl-xlnet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    for (json, key) in [
        (
            r#"{"d_model": 32, "n_head": 4, "attn_type": "uni"}"#,
            "attn_type",
        ),
        (
            r#"{"d_model": 32, "n_head": 4, "ff_activation": "tanh"}"#,
            "ff_activation",
        ),
        (r#"{"d_model": 32, "n_head": 4, "d_head": 4}"#, "d_head"),
    ] {
        std::fs::write(&path, json).unwrap();
        let e = XLNetConfig::from_hf_json(&path).unwrap_err();
        assert!(
            matches!(&e, TextError::Config { key: k, .. } if k.ends_with(key) && k.contains("config.json")),
            "{key}: {e}"
        );
    }
    std::fs::write(
        &path,
        r#"{"d_model": 32, "n_head": 4, "architectures": ["XLNetLMHeadModel"], "mem_len": 512, "reuse_len": null, "use_mems_eval": true, "pad_token_id": 5}"#,
    )
    .unwrap();
    let cfg = XLNetConfig::from_hf_json(&path).unwrap();
    assert_eq!((cfg.d_model, cfg.n_head, cfg.vocab_size), (32, 4, 32000));
    std::fs::remove_dir_all(&dir).ok();

    // inputs of the wrong shape are named
    let model = classifier(&dev);
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![3i64; 6], [2, 3]), &dev);
    let types = Tensor::<2, Int>::zeros([2, 4], &dev);
    let e = model.forward(ids.clone(), Some(types), None).unwrap_err();
    assert!(
        matches!(&e, TextError::Input { name, .. } if name == "token_types"),
        "{e}"
    );
    let e = model
        .forward(Tensor::<2, Int>::zeros([2, 0], &dev), None, None)
        .unwrap_err();
    assert!(
        matches!(&e, TextError::Input { name, .. } if name == "ids"),
        "{e}"
    );
    let e = model
        .transformer
        .forward_two_stream(
            ids.clone(),
            None,
            None,
            None,
            Tensor::zeros([2, 1, 5], &dev),
        )
        .unwrap_err();
    assert!(
        matches!(&e, TextError::Input { name, .. } if name == "target_mapping"),
        "{e}"
    );
    let e = model
        .transformer
        .forward_two_stream(
            ids,
            None,
            None,
            Some(Tensor::<3, Bool>::from_data(
                TensorData::new(vec![false; 12], [2, 3, 2]),
                &dev,
            )),
            Tensor::zeros([2, 1, 3], &dev),
        )
        .unwrap_err();
    assert!(
        matches!(&e, TextError::Input { name, .. } if name == "perm_mask"),
        "{e}"
    );

    // a wrong width: every mis-shaped key is listed, nothing loads
    let e = load_hf_xlnet_weights(
        XLNetConfig {
            d_inner: 40,
            ..config()
        }
        .init_classifier(3, &dev)
        .unwrap(),
        &checkpoint(),
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("xlnet_cls.safetensors") && e.contains("ff.layer_1"),
        "{e}"
    );
}

/// `[model] name = "xlnet"` through train, eval and infer, starting from
/// the reduced reference checkpoint (`[pretrained]`, strict: a 3-class
/// `XLNetForSequenceClassification` with a 120-token vocabulary, so the
/// run's WordPiece tokenizer has 120 tokens): on a synthetic 3-class task
/// the training loss falls and held-out accuracy is high.
#[test]
fn an_xlnet_config_trains_from_transformers_weights_through_the_registry() {
    let route = Route::new("xlnet-run");
    let texts = route.synthetic_classes();
    let tok = route.wordpiece(texts, 120);
    assert_eq!(
        tok.vocab_size(),
        120,
        "the synthetic corpus must fill the vocabulary"
    );
    let cfg = route.config(&format!(
        r#"seed = 1
[model]
name = "xlnet"
[model.architecture]
vocab_size = 120
d_model = 32
n_layer = 2
n_head = 4
d_inner = 64
dropout = 0.0
summary_last_dropout = 0.0
[pretrained]
path = "{checkpoint}"
[data]
format = "text_classification"
train = "{train}"
val = "{val}"
[data.tokenizer]
file = "tokenizer.json"
max_length = 24
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.003
[trainer]
epochs = 4
batch_size = 16
progress = false
output_dir = "run"
[infer]
top_k = 2
"#,
        checkpoint = checkpoint().display(),
        train = route.dir.join("train.jsonl").display(),
        val = route.dir.join("val.jsonl").display(),
    ));
    route.train(&cfg);
    let csv = std::fs::read_to_string(route.dir.join("run/epochs.csv")).unwrap();
    let col = |line: &str, i: usize| -> f64 { line.split(',').nth(i).unwrap().parse().unwrap() };
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let (first, last) = (col(rows[0], 1), col(rows[rows.len() - 1], 1));
    assert!(last < 0.5 * first, "training loss {first} → {last}\n{csv}");
    let acc = col(rows[rows.len() - 1], 3);
    assert!(acc >= 0.9, "held-out accuracy {acc}\n{csv}");
    assert!(route.eval(&cfg)["accuracy"].as_f64().is_some());
    let out = route.infer(&cfg, &["the dog was near the river"]);
    assert_eq!(out[0]["output"].as_array().unwrap().len(), 2, "{out:?}");
    assert_eq!(out[0]["output"][0]["label"], "animal", "{out:?}");

    // the zoo model's loader, as `[pretrained]` calls it, gives transformers' logits
    let dev = Device::flex();
    let zoo = XLNetClassifierConfig {
        architecture: config(),
        num_classes: Some(3),
    };
    let model = zoo.init(&Default::default(), &dev).unwrap();
    let (model, report) = zoo.load_weights(model, &checkpoint(), true, &dev).unwrap();
    assert!(report.starts_with("40 loaded;"), "{report}");
    let io = io(&dev);
    let logits = model
        .forward(
            int_input(&io, "input_ids", &dev),
            Some(int_input(&io, "token_type_ids", &dev)),
            Some(mask_input(&io, "attention_mask", &dev)),
        )
        .unwrap();
    check_close(
        "zoo-loaded logits",
        &values(logits),
        &floats(&io, "cls_logits"),
        1e-5,
    );
}
