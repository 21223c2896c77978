//! T5 against `transformers` 5.23.0 (`tests/reference/gen_t5.py`): the
//! parameter count of t5-small, `transformers`' relative-position buckets,
//! and two reduced models (ReLU with a tied head, gated GELU with its own)
//! — encoder states, logits, loss and gradients with a padded source and
//! -100 labels — and cached step-by-step decoding equal to teacher forcing.

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::{StateDict, load_state_dict_file};
use unidl_testkit::{check_close, check_grad, check_loss, floats, values};
use unidl_text::t5::{
    T5Config, T5DecoderCache, T5ForConditionalGeneration, load_hf_t5_weights,
    relative_position_bucket,
};

use super::common::{Route, int_input, mask_input, padded_labels};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/t5")
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(reference_dir().join("t5.json")).unwrap())
        .unwrap()
}

fn model(case: &str, dev: &Device) -> (T5Config, T5ForConditionalGeneration, StateDict) {
    let cfg: T5Config = serde_json::from_value(meta()["configs"][case].clone()).unwrap();
    let (m, report) = load_hf_t5_weights(
        cfg.init(dev).unwrap(),
        &reference_dir().join(format!("t5_{case}.safetensors")),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    let io = load_state_dict_file(
        &reference_dir().join(format!("t5_{case}.io.safetensors")),
        dev,
    )
    .unwrap();
    (cfg, m, io)
}

#[test]
fn t5_small_has_60_506_624_parameters() {
    use burn::module::Module;
    let m = T5Config::default().init(&Device::flex()).unwrap();
    assert_eq!(m.num_params(), 60_506_624);
    assert_eq!(meta()["t5_small_params"], 60_506_624);
}

/// `transformers`' `_relative_position_bucket` at t5-small's settings,
/// values computed by hand from its formula.
#[test]
fn relative_buckets_follow_transformers() {
    let b = |r, bi| relative_position_bucket(r, bi, 32, 128);
    // bidirectional: 16 buckets per side, exact below 8, log-spaced to 128
    assert_eq!(
        [b(0, true), b(-1, true), b(1, true), b(-7, true), b(7, true)],
        [0, 1, 17, 7, 23]
    );
    // 8 + floor(ln(d/8)/ln(16) · 8): d = 8 → 8, 20 → 10, 127 → 15, 1000 → 15
    assert_eq!(
        [
            b(-8, true),
            b(-20, true),
            b(-127, true),
            b(-1000, true),
            b(20, true)
        ],
        [8, 10, 15, 15, 26]
    );
    // causal: only the past, 32 buckets
    assert_eq!(
        [
            b(1, false),
            b(0, false),
            b(-5, false),
            b(-16, false),
            b(-200, false)
        ],
        [0, 0, 5, 16, 31]
    );
}

fn check_case(case: &str) {
    let dev = Device::flex().autodiff();
    let (cfg, m, io) = model(case, &dev);
    let ids = int_input(&io, "input_ids", &dev);
    let attention = mask_input(&io, "attention_mask", &dev);
    // -100 → padding id for the decoder's inputs, ignored by the loss
    let (labels, keep) = padded_labels(&io, cfg.pad_token_id as i64, &dev);
    let encoded = m.encode(ids, attention);
    check_close(
        &format!("{case}: encoder states"),
        &values(encoded.hidden.clone()),
        &floats(&io, "encoder_hidden"),
        1e-5,
    );
    let logits = m.decode(&encoded, m.shift_right(labels.clone()));
    check_close(
        &format!("{case}: logits"),
        &values(logits.clone()),
        &floats(&io, "logits"),
        1e-5,
    );
    let loss = unidl_train::token_cross_entropy(logits, labels, keep, 0.0);
    check_loss(&format!("{case}: loss"), &loss, floats(&io, "loss")[0]);
    let grads = loss.backward();
    let linear = |w: &Param<Tensor<2>>| w.grad(&grads).map(|g| values(g.transpose()));
    let e0 = &m.encoder.block[0];
    let d0 = &m.decoder.block[0];
    let mut checks = vec![
        ("shared.weight", m.shared.weight.grad(&grads).map(values)),
        (
            "encoder.block.0.layer.0.SelfAttention.q.weight",
            linear(&e0.self_attention.attention.query.weight),
        ),
        (
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            e0.self_attention
                .relative_attention_bias
                .as_ref()
                .unwrap()
                .weight
                .grad(&grads)
                .map(values),
        ),
        (
            "encoder.block.1.layer.0.layer_norm.weight",
            m.encoder.block[1].self_norm.gamma.grad(&grads).map(values),
        ),
        (
            "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            d0.self_attention
                .relative_attention_bias
                .as_ref()
                .unwrap()
                .weight
                .grad(&grads)
                .map(values),
        ),
        (
            "decoder.block.2.layer.1.EncDecAttention.v.weight",
            linear(
                &m.decoder.block[2]
                    .cross_attention
                    .as_ref()
                    .unwrap()
                    .attention
                    .value
                    .weight,
            ),
        ),
        (
            "decoder.final_layer_norm.weight",
            m.decoder.final_layer_norm.gamma.grad(&grads).map(values),
        ),
    ];
    if let Some(head) = &m.lm_head {
        checks.push(("lm_head.weight", linear(&head.weight)));
    }
    for (name, got) in checks {
        check_grad(
            &format!("{case}: {name}"),
            got,
            &floats(&io, &format!("grad.{name}")),
            1e-4,
        );
    }
}

#[test]
fn relu_t5_with_a_tied_head_matches_transformers() {
    check_case("relu");
}

#[test]
fn gated_gelu_t5_with_its_own_head_matches_transformers() {
    check_case("gated");
}

/// Decoding one step at a time through the key/value cache gives the
/// teacher-forced logits of every position.
#[test]
fn cached_decoding_equals_teacher_forcing() {
    let dev = Device::flex();
    for case in ["relu", "gated"] {
        let (_, m, io) = model(case, &dev);
        let encoded = m.encode(
            int_input(&io, "input_ids", &dev),
            mask_input(&io, "attention_mask", &dev),
        );
        let decoder_ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![0i64, 12, 40, 3, 77, 0, 6, 6, 90, 14], [2, 5]),
            &dev,
        );
        let full = values(m.decode(&encoded, decoder_ids.clone()));
        let mut cache = T5DecoderCache::default();
        let steps: Vec<Tensor<3>> = (0..5)
            .map(|i| m.decode_step(&encoded, decoder_ids.clone().narrow(1, i, 1), &mut cache))
            .collect();
        assert_eq!(cache.len(), 5);
        let stepped = values(Tensor::cat(steps, 1));
        check_close(
            &format!("{case}: cached steps vs teacher forcing"),
            &stepped,
            &full,
            1e-5,
        );
    }
}

#[test]
fn bad_t5_configs_are_named() {
    let dev = Device::flex();
    for (cfg, key) in [
        (
            T5Config {
                d_kv: 0,
                ..T5Config::default()
            },
            "d_kv",
        ),
        (
            T5Config {
                eos_token_id: 40000,
                ..T5Config::default()
            },
            "eos_token_id",
        ),
        (
            T5Config {
                relative_attention_num_buckets: 2,
                ..T5Config::default()
            },
            "relative_attention_num_buckets",
        ),
        (
            T5Config {
                dropout_rate: 1.0,
                ..T5Config::default()
            },
            "dropout_rate",
        ),
    ] {
        let e = cfg.init(&dev).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
    let e = toml::from_str::<T5Config>("d_model = 64\nhidden_size = 3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("hidden_size"), "{e}");
}

/// T5 without its cache: the task layer's default step-by-step decoding,
/// which re-runs the whole prefix through teacher forcing at every step.
struct Uncached<'a>(&'a T5ForConditionalGeneration);

impl unidl_train::Seq2SeqModel for Uncached<'_> {
    fn seq2seq_logits(
        &self,
        source: &unidl_train::Seq2SeqSource,
        decoder_ids: Tensor<2, Int>,
        decoder_mask: Tensor<2, burn::tensor::Bool>,
    ) -> unidl_train::Result<Tensor<3>> {
        self.0.seq2seq_logits(source, decoder_ids, decoder_mask)
    }
}

/// Greedy decoding and beam search (which reorders the caches) give the
/// same sequences with the key/value cache as without it.
#[test]
fn cached_generation_equals_uncached_generation() {
    use unidl_train::Seq2SeqModel;
    use unidl_train::decoding::{GenerationConfig, SpecialIds, generate};
    let dev = Device::flex();
    let (cfg, m, io) = model("gated", &dev);
    let source = unidl_train::Seq2SeqSource::Tokens {
        ids: int_input(&io, "input_ids", &dev),
        mask: mask_input(&io, "attention_mask", &dev),
    };
    let special = SpecialIds {
        bos: cfg.decoder_start_token_id as u32,
        eos: cfg.eos_token_id as u32,
        pad: cfg.pad_token_id as u32,
    };
    for gen_cfg in [
        GenerationConfig {
            max_length: 8,
            ..Default::default()
        },
        GenerationConfig {
            max_length: 8,
            num_beams: 3,
            length_penalty: 0.8,
            ..Default::default()
        },
    ] {
        let cached = generate(&m, &source, special, &gen_cfg).unwrap();
        let plain = generate(&Uncached(&m), &source, special, &gen_cfg).unwrap();
        assert_eq!(cached, plain, "{gen_cfg:?}");
        assert!(
            cached.iter().all(|s| !s.is_empty() && s.len() <= 8),
            "{cached:?}"
        );
    }
    // the cache is the model's own state
    assert!(matches!(
        m.begin_decoding(&source).unwrap(),
        unidl_train::DecodingState::Model(_)
    ));
}

/// `[model] name = "t5"` through train, eval and infer on GIMP's en→de
/// pairs (`unidl data gimp-de`): a 2+2-block T5 from scratch on the
/// held-out pairs (the training split would take longer), one WordPiece
/// vocabulary for both sides; the loss falls, evaluation reports BLEU, CER
/// and WER, and `--text` prints a translation with the config's beams.
#[test]
fn a_t5_config_trains_evaluates_and_translates() {
    let data = unidl_run::data_dir().join("gimp-de");
    assert!(
        data.join("test.tsv").is_file(),
        "{}: missing; run `cargo xtask data gimp-de` (cargo xtask test does it first)",
        data.display()
    );
    let route = Route::new("t5-run");
    let split = data.join("test.tsv");
    let texts: Vec<String> = std::fs::read_to_string(&split)
        .unwrap()
        .lines()
        .flat_map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let tok = route.wordpiece(texts, 1200);
    let cfg = route.config(&format!(
        r#"seed = 1
[model]
name = "t5"
[model.architecture]
vocab_size = {vocab}
d_model = 48
d_kv = 12
d_ff = 96
num_layers = 2
num_heads = 4
dropout_rate = 0.0
[task.generation]
max_length = 24
[data]
format = "parallel_text"
train = "{split}"
val = "{split}"
[data.tokenizer]
file = "tokenizer.json"
add_special_tokens = false
max_length = 48
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.003
[trainer]
epochs = 4
batch_size = 32
progress = false
output_dir = "run"
[infer.generation]
max_length = 16
num_beams = 3
"#,
        vocab = tok.vocab_size(),
        split = split.display()
    ));
    route.train(&cfg);
    route.assert_loss_fell(0.8);
    let scores = route.eval(&cfg);
    for m in ["bleu", "chrf", "cer", "wer"] {
        assert!(scores[m].as_f64().is_some(), "{m}: {scores}");
    }
    let out = route.infer(&cfg, &["Open the image"]);
    let ids = out[0]["output"]["ids"].as_array().unwrap();
    assert!(!ids.is_empty() && ids.len() <= 16, "{out:?}");
}

/// Text-to-text classification through the registry (`[task]
/// label_targets`): a tiny T5 learns to write the class names of a
/// synthetic 3-class task, batched by length; `unidl eval` reads its
/// outputs as classes (accuracy, macro F1) from the best checkpoint, and
/// `unidl infer` prints a class name.
#[test]
fn t5_classifies_text_to_text_through_the_registry() {
    let route = Route::new("t5-classify");
    let mut texts = route.synthetic_classes();
    texts.extend(["animal", "food", "weather"].map(String::from));
    let tok = route.wordpiece(texts, 120);
    let cfg = route.config(&format!(
        r#"seed = 1
[model]
name = "t5"
[model.architecture]
vocab_size = {vocab}
d_model = 32
d_kv = 8
d_ff = 64
num_layers = 2
num_heads = 4
dropout_rate = 0.0
[task]
label_targets = true
[task.generation]
max_length = 6
[data]
format = "text_classification"
train = "{train}"
val = "{val}"
[data.tokenizer]
file = "tokenizer.json"
add_special_tokens = false
max_length = 24
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.005
[trainer]
epochs = 6
batch_size = 16
progress = false
output_dir = "run"
keep_best = true
group_by_length = true
"#,
        vocab = tok.vocab_size(),
        train = route.dir.join("train.jsonl").display(),
        val = route.dir.join("val.jsonl").display(),
    ));
    route.train(&cfg);
    route.assert_loss_fell(0.5);
    let scores = route.eval(&cfg);
    let acc = scores["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "held-out exact-match accuracy {acc}: {scores}");
    assert!(scores["f1_macro"].as_f64().unwrap() >= 0.85, "{scores}");
    let out = route.infer(&cfg, &["the dog was near the river"]);
    assert_eq!(out[0]["output"]["text"], "animal", "{out:?}");
}
