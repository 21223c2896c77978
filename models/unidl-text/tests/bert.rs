//! BERT against `transformers` 5.23.0 (`tests/reference/gen_bert.py`): the
//! parameter count of bert-base, the reduced model's hidden states, pooled
//! output, classifier and masked-LM logits, losses and gradients with a
//! padded batch, and all-MiniLM-L6-v2's real weights on real sentences.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::{StateDict, load_state_dict_file};
use unidl_testkit::{check_close, check_grad, check_loss, floats, values};

use super::common::{Route, int_input, jsonl_texts, mask_input};
use unidl_text::bert::{BertConfig, load_hf_weights, mean_pool};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/bert")
}

fn meta() -> serde_json::Value {
    let text = std::fs::read_to_string(reference_dir().join("bert.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn io(dev: &Device) -> StateDict {
    load_state_dict_file(&reference_dir().join("bert.io.safetensors"), dev).unwrap()
}

/// The rows of `hidden` (`[batch, tokens, width]`) at real tokens only
/// (`transformers` leaves padded rows at values no one reads).
fn real_rows(hidden: &[f32], mask: &[f32], width: usize) -> Vec<f32> {
    hidden
        .chunks(width)
        .zip(mask)
        .filter(|(_, m)| **m > 0.5)
        .flat_map(|(row, _)| row.to_vec())
        .collect()
}

fn config() -> BertConfig {
    serde_json::from_value(meta()["config"].clone()).unwrap()
}

#[test]
fn bert_base_has_109_482_240_parameters() {
    let dev = Device::flex();
    let m = BertConfig::default().init_model(&dev).unwrap();
    assert_eq!(m.num_params(), 109_482_240);
    assert_eq!(meta()["bert_base_params"], 109_482_240);
}

#[test]
fn bert_matches_transformers_in_eval_mode() {
    let dev = Device::flex();
    let io = io(&dev);
    let cfg = config();
    let (model, report) = load_hf_weights(
        cfg.init_classifier(3, &dev).unwrap(),
        &reference_dir().join("bert_cls.safetensors"),
        true,
    )
    .unwrap();
    assert!(
        report.load.missing.is_empty() && report.load.unexpected.is_empty(),
        "{report}"
    );
    // a task model's checkpoint (`bert.…`) loads into the bare encoder too
    let (_, r) = load_hf_weights(
        cfg.init_model(&dev).unwrap(),
        &reference_dir().join("bert_cls.safetensors"),
        false,
    )
    .unwrap();
    assert!(r.load.missing.is_empty(), "{r}");
    assert_eq!(
        r.load.unexpected,
        vec!["classifier.bias", "classifier.weight"],
        "{r}"
    );
    let ids = int_input(&io, "input_ids", &dev);
    let types = int_input(&io, "token_type_ids", &dev);
    let attention = mask_input(&io, "attention_mask", &dev);
    let out = model
        .bert
        .forward(ids.clone(), Some(types), Some(attention.clone()));
    let mask = floats(&io, "attention_mask");
    check_close(
        "hidden states (real tokens)",
        &real_rows(&values(out.hidden), &mask, cfg.hidden_size),
        &real_rows(&floats(&io, "hidden"), &mask, cfg.hidden_size),
        1e-5,
    );
    check_close(
        "pooled output",
        &values(out.pooled.unwrap()),
        &floats(&io, "pooled"),
        1e-5,
    );
    let logits = model.forward(ids, Some(attention));
    check_close(
        "classifier logits",
        &values(logits),
        &floats(&io, "cls_logits"),
        1e-5,
    );
}

#[test]
fn bert_classifier_loss_and_gradients_match_transformers() {
    let dev = Device::flex().autodiff();
    let io = io(&dev);
    let cfg = config();
    let (model, _) = load_hf_weights(
        cfg.init_classifier(3, &dev).unwrap(),
        &reference_dir().join("bert_cls.safetensors"),
        true,
    )
    .unwrap();
    let ids = int_input(&io, "input_ids", &dev);
    let attention = mask_input(&io, "attention_mask", &dev);
    let labels: Vec<i64> = floats(&io, "labels").iter().map(|&x| x as i64).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [2]), &dev);
    let logits = model.forward(ids, Some(attention));
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&dev)
        .forward(logits, labels);
    check_loss("classifier loss", &loss, floats(&io, "cls_loss")[0]);
    let grads = loss.backward();
    let b = &model.bert;
    // Burn's dense weights are [in, out]: transposed to PyTorch's [out, in]
    let linear = |w: &burn::module::Param<Tensor<2>>| w.grad(&grads).map(|g| values(g.transpose()));
    for (name, got) in [
        (
            "bert.embeddings.word_embeddings.weight",
            b.embeddings.word_embeddings.weight.grad(&grads).map(values),
        ),
        (
            "bert.embeddings.LayerNorm.weight",
            b.embeddings.layer_norm.gamma.grad(&grads).map(values),
        ),
        (
            "bert.encoder.layer.0.attention.self.query.weight",
            linear(&b.layers[0].attention.query.weight),
        ),
        (
            "bert.encoder.layer.0.attention.output.dense.weight",
            linear(&b.layers[0].attention.output.weight),
        ),
        (
            "bert.encoder.layer.1.intermediate.dense.bias",
            b.layers[1]
                .intermediate
                .bias
                .as_ref()
                .unwrap()
                .grad(&grads)
                .map(values),
        ),
        (
            "bert.encoder.layer.1.output.LayerNorm.bias",
            b.layers[1]
                .output_norm
                .beta
                .as_ref()
                .unwrap()
                .grad(&grads)
                .map(values),
        ),
        (
            "bert.pooler.dense.weight",
            linear(&b.pooler.as_ref().unwrap().weight),
        ),
    ] {
        check_grad(name, got, &floats(&io, &format!("grad.{name}")), 1e-4);
    }
}

#[test]
fn bert_masked_lm_matches_transformers() {
    let dev = Device::flex().autodiff();
    let io = io(&dev);
    let cfg = config();
    let (model, report) = load_hf_weights(
        cfg.init_masked_lm(&dev).unwrap(),
        &reference_dir().join("bert_mlm.safetensors"),
        true,
    )
    .unwrap();
    // the tied decoder is read from the word embeddings, so its copy is ignored
    assert!(
        report.mapping.ignored.iter().any(|k| k.contains("decoder")),
        "{report}"
    );
    let ids = int_input(&io, "input_ids", &dev);
    let attention = mask_input(&io, "attention_mask", &dev);
    let logits = model.forward(ids, Some(attention));
    let vocab = cfg.vocab_size;
    let mask = floats(&io, "attention_mask");
    check_close(
        "MLM logits (real tokens)",
        &real_rows(&values(logits.clone()), &mask, vocab),
        &real_rows(&floats(&io, "mlm_logits"), &mask, vocab),
        1e-5,
    );
    // the loss over the labelled positions only (-100 elsewhere)
    let labels = floats(&io, "mlm_labels");
    let [b, t, _] = logits.dims();
    let flat = logits.reshape([b * t, vocab]);
    let picked: Vec<i64> = (0..b * t)
        .filter(|&i| labels[i] >= 0.0)
        .map(|i| i as i64)
        .collect();
    let targets: Vec<i64> = labels
        .iter()
        .filter(|&&l| l >= 0.0)
        .map(|&l| l as i64)
        .collect();
    let n = picked.len();
    let rows = flat.select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(picked, [n]), &dev),
    );
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&dev)
        .forward(
            rows,
            Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), &dev),
        );
    check_loss("MLM loss", &loss, floats(&io, "mlm_loss")[0]);
    let grads = loss.backward();
    check_grad(
        "word embeddings (input and tied decoder)",
        model
            .bert
            .embeddings
            .word_embeddings
            .weight
            .grad(&grads)
            .map(values),
        &floats(&io, "mlm_grad.bert.embeddings.word_embeddings.weight"),
        1e-4,
    );
    check_grad(
        "cls.predictions.bias",
        model.bias.grad(&grads).map(values),
        &floats(&io, "mlm_grad.cls.predictions.bias"),
        1e-4,
    );
}

#[test]
fn padding_never_changes_the_real_tokens() {
    let dev = Device::flex();
    let model = config().init_model(&dev).unwrap();
    let ids = |v: Vec<i64>, t| Tensor::<2, Int>::from_data(TensorData::new(v, [1, t]), &dev);
    let short = model.encode(ids(vec![2, 17, 45, 3], 4), None, None);
    let mask = Tensor::<2, Bool>::from_data(
        TensorData::new(vec![true, true, true, true, false, false], [1, 6]),
        &dev,
    );
    let padded = model.encode(ids(vec![2, 17, 45, 3, 0, 0], 6), None, Some(mask.clone()));
    check_close(
        "real tokens with and without padding",
        &values(padded.clone().narrow(1, 0, 4)),
        &values(short.clone()),
        1e-5,
    );
    let pooled = mean_pool(padded, mask);
    let want = short.mean_dim(1).reshape([1, 32]);
    check_close(
        "mean pooling skips padding",
        &values(pooled),
        &values(want),
        1e-5,
    );
}

#[test]
fn bad_bert_configs_and_weights_are_named() {
    let dev = Device::flex();
    let e = BertConfig {
        num_attention_heads: 5,
        ..config()
    }
    .init_model(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("num_attention_heads") && e.contains("32"), "{e}");
    // a wrong width: every mis-shaped key is listed, nothing loads
    let e = load_hf_weights(
        BertConfig {
            intermediate_size: 40,
            ..config()
        }
        .init_classifier(3, &dev)
        .unwrap(),
        &reference_dir().join("bert_cls.safetensors"),
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("bert_cls.safetensors") && e.contains("intermediate"),
        "{e}"
    );
    // a config.json with relative positions is refused naming the key
    let dir = std::env::temp_dir().join(format!("unidl-bert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(&path, r#"{"hidden_size": 32, "num_attention_heads": 4, "position_embedding_type": "relative_key", "architectures": ["BertModel"]}"#).unwrap();
    let e = BertConfig::from_hf_json(&path).unwrap_err().to_string();
    assert!(
        e.contains("position_embedding_type") && e.contains("relative_key"),
        "{e}"
    );
    std::fs::write(&path, r#"{"hidden_size": 32, "num_attention_heads": 4, "architectures": ["BertModel"], "torch_dtype": "float32"}"#).unwrap();
    let cfg = BertConfig::from_hf_json(&path).unwrap();
    assert_eq!(
        (cfg.hidden_size, cfg.num_attention_heads, cfg.vocab_size),
        (32, 4, 30522)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// all-MiniLM-L6-v2 (`unidl data minilm`) and `gen_bert.py --minilm`'s
/// outputs for it (`UNIDL_MINILM_REF`, written by `.ci/run`).
fn minilm() -> Option<(PathBuf, PathBuf)> {
    let how = "`unidl data minilm`, then `tests/reference/gen_bert.py --minilm <data>/minilm DIR` \
               with UNIDL_MINILM_REF=DIR (.ci/run does both)";
    let model = unidl_env::data_dir().join("minilm");
    let reference = unidl_testkit::cached_reference("UNIDL_MINILM_REF", "minilm.json", how)?;
    if !model.join("model.safetensors").is_file() {
        let require = std::env::var("UNIDL_REQUIRE_ZOO_REF").is_ok_and(|v| v == "1");
        assert!(!require, "{} is missing: {how}", model.display());
        eprintln!("SKIPPED: {} is missing: {how}", model.display());
        return None;
    }
    Some((model, reference))
}

#[test]
fn minilm_weights_match_transformers_on_real_sentences() {
    let Some((dir, reference)) = minilm() else {
        return;
    };
    let dev = Device::flex();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference.join("minilm.json")).unwrap())
            .unwrap();
    let io = load_state_dict_file(&reference.join("minilm.io.safetensors"), &dev).unwrap();
    let cfg = BertConfig::from_hf_json(&dir.join("config.json")).unwrap();
    let (model, report) = load_hf_weights(
        cfg.init_model(&dev).unwrap(),
        &dir.join("model.safetensors"),
        true,
    )
    .unwrap();
    eprintln!("{report}");
    assert_eq!(model.num_params() as u64, meta["params"].as_u64().unwrap());
    // the encoder's checkpoint also starts a classifier: only the new head is missing
    let (_, r) = load_hf_weights(
        cfg.init_classifier(2, &dev).unwrap(),
        &dir.join("model.safetensors"),
        false,
    )
    .unwrap();
    assert_eq!(
        r.load.missing,
        vec!["classifier.bias", "classifier.weight"],
        "{r}"
    );
    assert_eq!(r.load.loaded.len(), 103, "{r}");
    // the tokenizer.json through the tokenizers crate gives transformers' ids
    let tok = unidl_data::text::TextTokenizer::load(dir.join("tokenizer.json")).unwrap();
    let sentences: Vec<String> = serde_json::from_value(meta["sentences"].clone()).unwrap();
    let encoded: Vec<Vec<u32>> = sentences
        .iter()
        .map(|s| tok.encode_with_special_tokens(s).unwrap())
        .collect();
    let t = encoded.iter().map(Vec::len).max().unwrap();
    let (ids, mask): (Vec<i64>, Vec<bool>) = encoded
        .iter()
        .flat_map(|e| (0..t).map(|j| e.get(j).map_or((0, false), |&id| (id as i64, true))))
        .unzip();
    let want_ids: Vec<i64> = floats(&io, "input_ids").iter().map(|&x| x as i64).collect();
    assert_eq!(ids, want_ids, "token ids");
    let n = sentences.len();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, t]), &dev);
    let attention = Tensor::<2, Bool>::from_data(TensorData::new(mask, [n, t]), &dev);
    let hidden = model.encode(ids, None, Some(attention.clone()));
    let m = floats(&io, "attention_mask");
    check_close(
        "MiniLM hidden states (real tokens)",
        &real_rows(&values(hidden.clone()), &m, cfg.hidden_size),
        &real_rows(&floats(&io, "hidden"), &m, cfg.hidden_size),
        1e-4,
    );
    let pooled = mean_pool(hidden, attention);
    check_close(
        "sentence embeddings (mean pooled)",
        &values(pooled.clone()),
        &floats(&io, "mean_pooled"),
        1e-4,
    );
    let unit = pooled.clone() / pooled.powf_scalar(2.0).sum_dim(1).sqrt();
    let cosine = unit.clone().matmul(unit.transpose());
    check_close(
        "cosine similarities",
        &values(cosine),
        &floats(&io, "cosine"),
        1e-4,
    );
}

/// `[model] name = "bert"` through train, eval and infer (`--text`): a
/// 2-layer BERT from scratch on the real SpamAssassin split, with a
/// WordPiece `tokenizer.json` given as a pretrained `[data.tokenizer] file`
/// (its `[CLS] … [SEP]` added); held-out accuracy clearly above the
/// majority class (0.687); texts longer than the positions are refused.
#[test]
fn a_bert_config_trains_evaluates_and_infers_through_the_registry() {
    let data = unidl_run::data_dir().join("spam");
    assert!(
        data.join("train.jsonl").is_file(),
        "{}: missing; run `cargo xtask data spam` (cargo xtask test does it first)",
        data.display()
    );
    let route = Route::new("bert-run");
    let tok = route.wordpiece(jsonl_texts(&data.join("train.jsonl")), 2000);
    let config = |max_length: usize| {
        format!(
            r#"seed = 1
[model]
name = "bert"
[model.architecture]
vocab_size = {vocab}
hidden_size = 32
num_hidden_layers = 2
num_attention_heads = 4
intermediate_size = 64
max_position_embeddings = 64
hidden_dropout_prob = 0.0
attention_probs_dropout_prob = 0.0
[data]
format = "text_classification"
train = "{train}"
val = "{val}"
[data.tokenizer]
file = "tokenizer.json"
max_length = {max_length}
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.001
[trainer]
epochs = 1
batch_size = 32
progress = false
output_dir = "run"
[infer]
top_k = 2
"#,
            vocab = tok.vocab_size(),
            train = data.join("train.jsonl").display(),
            val = data.join("test.jsonl").display(),
        )
    };
    let cfg = route.config(&config(64));
    route.train(&cfg);
    let csv = std::fs::read_to_string(route.dir.join("run/epochs.csv")).unwrap();
    let acc: f64 = csv
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        acc >= 0.9,
        "held-out accuracy after one epoch: {acc}\n{csv}"
    );
    assert!(route.eval(&cfg)["accuracy"].as_f64().is_some());
    let out = route.infer(
        &cfg,
        &["Dear friend, you WON $1,000,000! Click here to claim your FREE prize now"],
    );
    assert_eq!(out[0]["output"].as_array().unwrap().len(), 2, "{out:?}");
    // a max_length beyond the learnt positions: the first long mail is named
    let cfg = route.config(&config(100));
    let e = unidl_run::eval_config(&route.reg, &cfg, Some("flex"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 64") && e.contains("max_length"), "{e}");
}

/// `unidl infer --config configs/minilm_similarity.toml --weights
/// data:minilm/model.safetensors --text … --text …` prints each sentence's
/// most similar other with transformers' cosine similarity (the published
/// weights, no training; the pretrained tokenizer serves the untrained run).
#[test]
fn minilm_similarity_through_the_registry_gives_transformers_cosines() {
    let Some((_, reference)) = minilm() else {
        return;
    };
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference.join("minilm.json")).unwrap())
            .unwrap();
    let io =
        load_state_dict_file(&reference.join("minilm.io.safetensors"), &Device::flex()).unwrap();
    let sentences: Vec<String> = serde_json::from_value(meta["sentences"].clone()).unwrap();
    let cosine = floats(&io, "cosine");
    let n = sentences.len();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("unidl-minilm-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // the shipped config, with its output folder in a fresh place
    let text = std::fs::read_to_string(repo.join("configs/minilm_similarity.toml"))
        .unwrap()
        .replace(
            "output_dir = \"runs/minilm_similarity\"",
            "output_dir = \"run\"",
        );
    let cfg = dir.join("minilm_similarity.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_text::register(&mut reg).unwrap();
    let out = unidl_run::infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &unidl_run::InferArgs {
            texts: sentences.clone(),
            weights: Some(PathBuf::from("data:minilm/model.safetensors")),
            top_k: Some(n - 1),
            ..Default::default()
        },
    )
    .unwrap();
    for (i, o) in out.iter().enumerate() {
        let neighbours = o["output"]["neighbours"].as_array().unwrap();
        assert_eq!(neighbours.len(), n - 1);
        for nb in neighbours {
            let j = nb["index"].as_u64().unwrap() as usize;
            let got = nb["similarity"].as_f64().unwrap();
            let want = f64::from(cosine[i * n + j]);
            assert!((got - want).abs() < 1e-4, "cos({i}, {j}): {got} vs {want}");
        }
    }
    // "The new movie is awesome." is nearest to "The new movie is so great."
    assert_eq!(out[2]["output"]["neighbours"][0]["index"], 5, "{}", out[2]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[model] name = "sentence_bert"` trains with the supervised contrastive
/// loss and evaluates neighbour accuracy: a 2-layer BERT from scratch on
/// SpamAssassin's held-out mails (the training split would take longer),
/// evaluated on the same mails: above the majority class (0.687).
#[test]
fn a_sentence_bert_config_trains_and_evaluates_neighbour_accuracy() {
    let data = unidl_run::data_dir().join("spam");
    assert!(
        data.join("test.jsonl").is_file(),
        "run `cargo xtask data spam`"
    );
    let route = Route::new("sbert-run");
    let tok = route.wordpiece(jsonl_texts(&data.join("test.jsonl")), 1000);
    let split = data.join("test.jsonl").display().to_string();
    let cfg = route.config(&format!(
        r#"seed = 1
[model]
name = "sentence_bert"
[model.architecture]
vocab_size = {vocab}
hidden_size = 32
num_hidden_layers = 2
num_attention_heads = 4
intermediate_size = 64
max_position_embeddings = 48
hidden_dropout_prob = 0.0
attention_probs_dropout_prob = 0.0
[task]
temperature = 0.1
[data]
format = "text_classification"
train = "{split}"
val = "{split}"
[data.tokenizer]
file = "tokenizer.json"
max_length = 48
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.001
[trainer]
epochs = 1
batch_size = 32
progress = false
output_dir = "run"
"#,
        vocab = tok.vocab_size()
    ));
    route.train(&cfg);
    // the contrastive loss falls over the epoch (logged every 10 steps)
    route.assert_loss_fell(0.2);
    let scores = route.eval(&cfg);
    let acc = scores["neighbour_accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("{scores}"));
    assert!(acc > 0.8, "neighbour accuracy {acc}");
}

/// `[model] name = "bert_mlm"` through train, eval and infer: a 2-layer
/// BERT from scratch on Brown's held-out paragraphs (`unidl data brown`)
/// learns masked tokens (the loss falls; one epoch of 92 steps is far from
/// converged: the real record fine-tunes MiniLM, docs/ZOO.md), evaluation
/// reports masked accuracy, and `--text` with a `[MASK]` prints the filled
/// text.
#[test]
fn a_bert_mlm_config_trains_evaluates_and_fills_masks() {
    let data = unidl_run::data_dir().join("brown");
    assert!(
        data.join("test.jsonl").is_file(),
        "{}: missing; run `cargo xtask data brown` (cargo xtask test does it first)",
        data.display()
    );
    let route = Route::new("bert-mlm");
    let tok = route.wordpiece(jsonl_texts(&data.join("test.jsonl")), 1500);
    let split = data.join("test.jsonl").display().to_string();
    let cfg = route.config(&format!(
        r#"seed = 1
[model]
name = "bert_mlm"
[model.architecture]
vocab_size = {vocab}
hidden_size = 48
num_hidden_layers = 2
num_attention_heads = 4
intermediate_size = 96
max_position_embeddings = 64
hidden_dropout_prob = 0.0
attention_probs_dropout_prob = 0.0
[data]
format = "text_classification"
train = "{split}"
val = "{split}"
[data.tokenizer]
file = "tokenizer.json"
max_length = 64
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.002
[trainer]
epochs = 1
batch_size = 32
progress = false
output_dir = "run"
"#,
        vocab = tok.vocab_size()
    ));
    route.train(&cfg);
    route.assert_loss_fell(0.25);
    let scores = route.eval(&cfg);
    let acc = scores["masked_accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("{scores}"));
    assert!((0.0..=1.0).contains(&acc), "masked accuracy {acc}");
    let out = route.infer(&cfg, &["he said that [MASK] was not"]);
    let filled = out[0]["output"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        filled.starts_with("he said that ") && !filled.contains("[MASK]"),
        "{filled}"
    );
    assert_eq!(out[0]["output"]["predictions"].as_array().unwrap().len(), 1);
}
