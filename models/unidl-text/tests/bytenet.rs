//! ByteNet against its PyTorch definition (`tests/reference/gen_bytenet.py`,
//! torch 2.9.0, float64 reference): the paper configuration's parameter
//! count; a reduced random model (5 + 5 blocks, d = 8, dilations 1..16,
//! a = 1.2) — encoder output, logits, loss and gradients with a padded
//! source and a target longer than the unfolded source; causality, source
//! padding, step-by-step decoding equal to teacher forcing; typed errors;
//! and `bytenet` through train, eval and infer.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::{StateDict, load_state_dict_file};
use unidl_testkit::{check_close, check_grad, check_loss, floats, values};
use unidl_text::bytenet::{
    ByteNet, ByteNetConfig, ByteNetDecoderCache, ByteNetModelConfig, load_bytenet_weights,
};

use super::common::{Route, int_input, mask_input};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/bytenet")
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(reference_dir().join("bytenet.json")).unwrap())
        .unwrap()
}

fn model(dev: &Device) -> (ByteNetConfig, ByteNet, StateDict) {
    let cfg: ByteNetConfig = serde_json::from_value(meta()["config"].clone()).unwrap();
    let (m, report) = load_bytenet_weights(
        cfg.init(dev).unwrap(),
        &reference_dir().join("bytenet.safetensors"),
        true,
    )
    .unwrap();
    assert!(
        report.load.missing.is_empty() && report.load.unexpected.is_empty(),
        "{report}"
    );
    let io = load_state_dict_file(&reference_dir().join("bytenet.io.safetensors"), dev).unwrap();
    (cfg, m, io)
}

fn ids(rows: &[&[i64]], dev: &Device) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    let t = rows.iter().map(|r| r.len()).max().unwrap();
    let mut v = Vec::new();
    let mut m = Vec::new();
    for r in rows {
        for j in 0..t {
            v.push(*r.get(j).unwrap_or(&0));
            m.push(j < r.len());
        }
    }
    (
        Tensor::from_data(TensorData::new(v, [rows.len(), t]), dev),
        Tensor::from_data(TensorData::new(m, [rows.len(), t]), dev),
    )
}

fn row(t: Tensor<3>, r: usize) -> Tensor<3> {
    t.narrow(0, r, 1)
}

/// The paper's translation model (d = 800, 30 + 30 blocks, k = 3) over 261
/// byte ids: (4 + k)·d² + 12·d = 4,489,600 per block × 60, embeddings
/// 2 · 261 · 1,600, decoder input 3,200 · 1,600 + 1,600, head
/// 1,600 · 1,600 + 1,600 and 1,600 · 261 + 261 — as PyTorch counts.
#[test]
fn paper_bytenet_has_278_312_261_parameters() {
    let cfg = ByteNetConfig::default();
    assert_eq!(
        (cfg.hidden_units, cfg.encoder_blocks, cfg.decoder_blocks),
        (800, 30, 30)
    );
    let (d, k, v) = (800usize, 3usize, 261usize);
    let block = (4 + k) * d * d + 12 * d;
    let want = 60 * block
        + 2 * v * 2 * d
        + (4 * d * 2 * d + 2 * d)
        + (4 * d * d + 2 * d)
        + (2 * d * v + v);
    assert_eq!(want, 278_312_261);
    assert_eq!(meta()["paper_params"], 278_312_261);
    let m = cfg.init(&Device::flex()).unwrap();
    assert_eq!(m.num_params(), 278_312_261);
}

#[test]
fn dynamic_unfolding_lengths() {
    let cfg = ByteNetConfig::default();
    // ⌈1.2·|s|⌉, 1.2 · 5 = 6 exactly
    let got: Vec<usize> = [0, 1, 4, 5, 9, 10, 31]
        .iter()
        .map(|&n| cfg.unfolded_length(n))
        .collect();
    assert_eq!(got, [0, 2, 5, 6, 11, 12, 38]);
    let plain = ByteNetConfig {
        unfold_scale: 1.0,
        unfold_offset: 2.0,
        ..cfg
    };
    assert_eq!(plain.unfolded_length(7), 9);
}

/// Encoder output, logits, loss and gradients of the reduced model equal
/// PyTorch's: the source rows ("Open image", "Undo") are padded by two and
/// six columns and unfolded to 12 and 5 positions; the 14-position target
/// reads two zero columns past the encoder's 12.
#[test]
fn reduced_bytenet_matches_pytorch() {
    let dev = Device::flex().autodiff();
    let (_, m, io) = model(&dev);
    let source = int_input(&io, "input_ids", &dev);
    let mask = mask_input(&io, "attention_mask", &dev);
    let decoder_ids = int_input(&io, "decoder_ids", &dev);
    let labels = int_input(&io, "labels", &dev);
    let label_mask = mask_input(&io, "label_mask", &dev);
    let encoded = m.encode(source, mask).unwrap();
    assert_eq!(encoded.lengths, [12, 5]);
    assert!(encoded.hidden.dims()[1] < decoder_ids.dims()[1]);
    check_close(
        "encoder output",
        &values(encoded.hidden.clone()),
        &floats(&io, "encoder_output"),
        1e-5,
    );
    let logits = m.decode(&encoded, decoder_ids).unwrap();
    check_close(
        "logits",
        &values(logits.clone()),
        &floats(&io, "logits"),
        1e-5,
    );
    let loss = unidl_train::token_cross_entropy(logits, labels, label_mask, 0.0);
    check_loss("loss", &loss, floats(&io, "loss")[0]);
    let grads = loss.backward();
    let g3 = |p: &burn::module::Param<Tensor<3>>| p.grad(&grads).map(values);
    let g2 = |p: &burn::module::Param<Tensor<2>>| p.grad(&grads).map(values);
    let g1 = |p: &burn::module::Param<Tensor<1>>| p.grad(&grads).map(values);
    let checks = [
        ("source_embedding.weight", g2(&m.source_embedding.weight)),
        ("encoder.0.conv.weight", g3(&m.encoder[0].conv.weight)),
        ("encoder.4.norm2.weight", g1(&m.encoder[4].norm2.gamma)),
        (
            "encoder.3.expand.bias",
            g1(m.encoder[3].expand.bias.as_ref().unwrap()),
        ),
        ("target_embedding.weight", g2(&m.target_embedding.weight)),
        ("decoder_input.weight", g3(&m.decoder_input.weight)),
        ("decoder.1.reduce.weight", g3(&m.decoder[1].reduce.weight)),
        ("decoder.2.conv.weight", g3(&m.decoder[2].conv.weight)),
        (
            "decoder.4.norm3.bias",
            g1(m.decoder[4].norm3.beta.as_ref().unwrap()),
        ),
        ("output_hidden.weight", g3(&m.output_hidden.weight)),
        ("output.weight", g3(&m.output.weight)),
        ("output.bias", g1(m.output.bias.as_ref().unwrap())),
    ];
    let names: Vec<String> = checks.iter().map(|c| c.0.to_string()).collect();
    assert_eq!(meta()["grads"], serde_json::json!(names));
    for (name, got) in checks {
        check_grad(name, got, &floats(&io, &format!("grad.{name}")), 1e-4);
    }
}

/// Changing a target byte never changes the logits of earlier positions
/// (the decoder's convolutions are causal), and does change later ones.
#[test]
fn the_decoder_is_causal() {
    let dev = Device::flex();
    let (_, m, io) = model(&dev);
    let encoded = m
        .encode(
            int_input(&io, "input_ids", &dev),
            mask_input(&io, "attention_mask", &dev),
        )
        .unwrap();
    let base: Vec<i64> = floats(&io, "decoder_ids")
        .iter()
        .map(|&x| x as i64)
        .collect();
    let t = base.len() / 2;
    let logits = |v: Vec<i64>| {
        let ids = Tensor::<2, Int>::from_data(TensorData::new(v, [2, t]), &dev);
        m.decode(&encoded, ids).unwrap()
    };
    let reference = logits(base.clone());
    for at in [1, 6, t - 1] {
        let mut changed = base.clone();
        changed[at] = 5 + i64::from(b'#');
        changed[t + at] = 5 + i64::from(b'#');
        let other = logits(changed);
        let before = |x: Tensor<3>| values(x.narrow(1, 0, at));
        assert_eq!(before(reference.clone()), before(other.clone()), "t < {at}");
        let at_and_after = |x: Tensor<3>| values(x.narrow(1, at, t - at));
        assert_ne!(at_and_after(reference.clone()), at_and_after(other));
    }
}

/// A source alone and the same source padded in a batch beside a longer one
/// give the same encoder output on its unfolded positions and the same logits.
#[test]
fn source_padding_never_changes_an_output() {
    let dev = Device::flex();
    let (_, m, _) = model(&dev);
    let short: &[i64] = &[42, 17, 99, 5, 250];
    let long: Vec<i64> = (0..23).map(|i| 6 + (i * 37) % 250).collect();
    let target: &[i64] = &[2, 60, 61, 62, 63, 64, 65, 66, 67, 68];
    let (a, am) = ids(&[short], &dev);
    let (b, bm) = ids(&[&long, short], &dev);
    let (y1, _) = ids(&[target], &dev);
    let (y2, _) = ids(&[target, target], &dev);
    let alone = m.encode(a, am).unwrap();
    let batched = m.encode(b, bm).unwrap();
    assert_eq!(alone.lengths, [6]);
    assert_eq!(batched.lengths, [28, 6]);
    let hidden = |e: &unidl_text::bytenet::ByteNetEncoded, r: usize| {
        values(row(e.hidden.clone(), r).narrow(1, 0, 6))
    };
    check_close(
        "encoder output, alone vs padded",
        &hidden(&batched, 1),
        &hidden(&alone, 0),
        1e-5,
    );
    // beyond t̂ the padded row is exactly zero, as the lone row's missing columns
    assert!(
        values(row(batched.hidden.clone(), 1).narrow(1, 6, 22))
            .iter()
            .all(|&x| x == 0.0)
    );
    let l_alone = values(m.decode(&alone, y1).unwrap());
    let l_batched = values(row(m.decode(&batched, y2).unwrap(), 1));
    check_close("logits, alone vs padded", &l_batched, &l_alone, 1e-5);
}

/// Decoding position by position (or in chunks) through the convolution
/// history gives the teacher-forced logits of every position, also past
/// the unfolded source; so does the task layer's `decode_next`.
#[test]
fn incremental_decoding_equals_teacher_forcing() {
    use unidl_train::Seq2SeqModel;
    let dev = Device::flex();
    let (_, m, io) = model(&dev);
    let source = int_input(&io, "input_ids", &dev);
    let mask = mask_input(&io, "attention_mask", &dev);
    let decoder_ids = int_input(&io, "decoder_ids", &dev);
    let t = decoder_ids.dims()[1];
    let encoded = m.encode(source.clone(), mask.clone()).unwrap();
    let full = values(m.decode(&encoded, decoder_ids.clone()).unwrap());
    for chunks in [vec![1; t], vec![3, 1, 5, t - 9]] {
        let mut cache = ByteNetDecoderCache::default();
        let mut at = 0;
        let mut parts = Vec::new();
        for n in &chunks {
            parts.push(
                m.decode_step(&encoded, decoder_ids.clone().narrow(1, at, *n), &mut cache)
                    .unwrap(),
            );
            at += n;
        }
        assert_eq!(cache.len(), t);
        check_close(
            &format!("steps {chunks:?} vs teacher forcing"),
            &values(Tensor::cat(parts, 1)),
            &full,
            1e-5,
        );
    }
    let tokens: Vec<Vec<u32>> = {
        let v: Vec<i64> = floats(&io, "decoder_ids")
            .iter()
            .map(|&x| x as i64)
            .collect();
        (0..t).map(|j| vec![v[j] as u32, v[t + j] as u32]).collect()
    };
    let source = unidl_train::Seq2SeqSource::Tokens { ids: source, mask };
    let mut state = m.begin_decoding(&source).unwrap();
    assert!(matches!(state, unidl_train::DecodingState::Model(_)));
    let steps: Vec<Tensor<3>> = tokens
        .iter()
        .map(|tok| {
            m.decode_next(&mut state, tok)
                .unwrap()
                .unsqueeze_dim::<3>(1)
        })
        .collect();
    check_close(
        "decode_next vs teacher forcing",
        &values(Tensor::cat(steps, 1)),
        &full,
        1e-5,
    );
}

/// ByteNet without its history: the task layer's default decoding, which
/// re-runs the whole prefix through teacher forcing at every step.
struct Uncached<'a>(&'a ByteNet);

impl unidl_train::Seq2SeqModel for Uncached<'_> {
    fn seq2seq_logits(
        &self,
        source: &unidl_train::Seq2SeqSource,
        decoder_ids: Tensor<2, Int>,
        decoder_mask: Tensor<2, Bool>,
    ) -> unidl_train::Result<Tensor<3>> {
        self.0.seq2seq_logits(source, decoder_ids, decoder_mask)
    }
}

/// Greedy decoding and beam search (which reorders the histories) give
/// the same sequences as re-running the prefix.
#[test]
fn cached_generation_equals_uncached_generation() {
    use unidl_train::decoding::{GenerationConfig, SpecialIds, generate};
    let dev = Device::flex();
    let (_, m, io) = model(&dev);
    let source = unidl_train::Seq2SeqSource::Tokens {
        ids: int_input(&io, "input_ids", &dev),
        mask: mask_input(&io, "attention_mask", &dev),
    };
    let special = SpecialIds {
        bos: 2,
        eos: 3,
        pad: 0,
    };
    for gen_cfg in [
        GenerationConfig {
            max_length: 16,
            ..Default::default()
        },
        GenerationConfig {
            max_length: 16,
            num_beams: 3,
            length_penalty: 0.8,
            ..Default::default()
        },
    ] {
        let cached = generate(&m, &source, special, &gen_cfg).unwrap();
        let plain = generate(&Uncached(&m), &source, special, &gen_cfg).unwrap();
        assert_eq!(cached, plain, "{gen_cfg:?}");
        assert!(
            cached.iter().all(|s| !s.is_empty() && s.len() <= 16),
            "{cached:?}"
        );
    }
}

#[test]
fn bad_bytenet_configs_are_named() {
    let dev = Device::flex();
    let small = ByteNetConfig {
        hidden_units: 4,
        encoder_blocks: 1,
        decoder_blocks: 1,
        ..ByteNetConfig::default()
    };
    for (cfg, key) in [
        (
            ByteNetConfig {
                hidden_units: 0,
                ..small.clone()
            },
            "hidden_units",
        ),
        (
            ByteNetConfig {
                encoder_kernel_size: 4,
                ..small.clone()
            },
            "encoder_kernel_size",
        ),
        (
            ByteNetConfig {
                decoder_kernel_size: 0,
                ..small.clone()
            },
            "decoder_kernel_size",
        ),
        (
            ByteNetConfig {
                dilations: vec![1, 0],
                ..small.clone()
            },
            "dilations",
        ),
        (
            ByteNetConfig {
                dilations: vec![],
                ..small.clone()
            },
            "dilations",
        ),
        (
            ByteNetConfig {
                unfold_scale: 0.8,
                ..small.clone()
            },
            "unfold_scale",
        ),
        (
            ByteNetConfig {
                unfold_offset: -1.0,
                ..small.clone()
            },
            "unfold_offset",
        ),
        (
            ByteNetConfig {
                dropout: 1.0,
                ..small.clone()
            },
            "dropout",
        ),
    ] {
        let e = cfg.init(&dev).unwrap_err();
        assert!(
            matches!(&e, unidl_text::TextError::Config { key: k, .. } if k == key),
            "{key}: {e}"
        );
    }
    let e = toml::from_str::<ByteNetConfig>("hidden_units = 8\nd_model = 16")
        .unwrap_err()
        .to_string();
    assert!(e.contains("d_model"), "{e}");
    // the run's tokenizer must have the model's vocabulary
    use unidl_run::ZooModel;
    let mut facts = unidl_run::DataFacts::new(Vec::new(), None);
    facts.vocab_size = Some(300);
    let e = ByteNetModelConfig {
        architecture: small,
    }
    .init(&facts, &dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("model.architecture.vocab_size"), "{e}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let dev = Device::flex();
    let (_, m, io) = model(&dev);
    let input = |e: unidl_text::TextError| match e {
        unidl_text::TextError::Input { name, .. } => name,
        other => panic!("not an input error: {other}"),
    };
    // an id outside the 261-token vocabulary
    let (x, xm) = ids(&[&[5, 300, 7]], &dev);
    assert_eq!(input(m.encode(x, xm).unwrap_err()), "ids");
    // a real token after padding
    let x = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 6, 7], [1, 3]), &dev);
    let holes =
        Tensor::<2, Bool>::from_data(TensorData::new(vec![true, false, true], [1, 3]), &dev);
    assert_eq!(input(m.encode(x.clone(), holes).unwrap_err()), "mask");
    // a mask of another shape
    let (_, wrong) = ids(&[&[5, 6]], &dev);
    assert_eq!(input(m.encode(x, wrong).unwrap_err()), "mask");
    // decoder ids: another batch, an id outside the vocabulary
    let encoded = m
        .encode(
            int_input(&io, "input_ids", &dev),
            mask_input(&io, "attention_mask", &dev),
        )
        .unwrap();
    let (y, _) = ids(&[&[2, 60]], &dev);
    assert_eq!(input(m.decode(&encoded, y).unwrap_err()), "decoder_ids");
    let (y, _) = ids(&[&[2, 60], &[2, 261]], &dev);
    assert_eq!(input(m.decode(&encoded, y).unwrap_err()), "decoder_ids");
    // a checkpoint of another width does not load (every key at fault listed)
    let narrow = ByteNetConfig {
        hidden_units: 4,
        encoder_blocks: 5,
        decoder_blocks: 5,
        ..ByteNetConfig::default()
    };
    let e = load_bytenet_weights(
        narrow.init(&dev).unwrap(),
        &reference_dir().join("bytenet.safetensors"),
        true,
    )
    .unwrap_err();
    assert!(matches!(e, unidl_text::TextError::Weights(_)), "{e}");
    // an image source is refused by the decoding entry point
    use unidl_train::Seq2SeqModel;
    let images = unidl_train::Seq2SeqSource::Images(Tensor::zeros([1, 1, 4, 4], &dev));
    assert!(m.begin_decoding(&images).is_err());
}

/// `configs/bytenet_gimp_de.toml`'s model: its `[model]` table reads as
/// `bytenet`'s config and builds the 1,560,069-parameter model its comment
/// states, over the 261 ids of its tokenizer.
#[test]
fn the_gimp_config_builds_its_model() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/bytenet_gimp_de.toml");
    let run: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut table = run["model"].as_table().unwrap().clone();
    assert_eq!(table.remove("name").unwrap().as_str(), Some("bytenet"));
    let cfg: ByteNetModelConfig = toml::Value::Table(table).try_into().unwrap();
    assert_eq!(
        run["data"]["tokenizer"]["vocab_size"].as_integer(),
        Some(cfg.architecture.vocab_size as i64)
    );
    let m = cfg.architecture.init(&Device::flex()).unwrap();
    assert_eq!(m.num_params(), 1_560_069);
}

/// `[model] name = "bytenet"` through train, eval and infer on the GIMP
/// en→de fixture (450 training, 50 held-out pairs) with a byte-level
/// tokenizer without merges (261 ids): a 3 + 3-block ByteNet of width 32
/// trains two epochs (the loss falls), evaluation reports BLEU, chrF, CER
/// and WER, and `--text` prints a translation (beam search).
#[test]
fn a_bytenet_config_trains_evaluates_and_translates() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gimp_de");
    let route = Route::new("bytenet-run");
    let cfg = route.config(&format!(
        r#"seed = 1
[model]
name = "bytenet"
[model.architecture]
vocab_size = 261
hidden_units = 16
encoder_blocks = 3
decoder_blocks = 3
dilations = [1, 2, 4]
[task.generation]
max_length = 40
[data]
format = "parallel_text"
train = "{train}"
val = "{val}"
[data.tokenizer]
kind = "bpe_bytes"
vocab_size = 261
max_length = 64
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.005
[trainer]
epochs = 2
batch_size = 16
progress = false
output_dir = "run"
[infer.generation]
max_length = 24
num_beams = 2
"#,
        train = fixtures.join("train.tsv").display(),
        val = fixtures.join("test.tsv").display(),
    ));
    route.train(&cfg);
    route.assert_loss_fell(1.0);
    let scores = route.eval(&cfg);
    for m in ["bleu", "chrf", "cer", "wer"] {
        assert!(scores[m].as_f64().is_some(), "{m}: {scores}");
    }
    let out = route.infer(&cfg, &["Open the image"]);
    let ids = out[0]["output"]["ids"].as_array().unwrap();
    assert!(!ids.is_empty() && ids.len() <= 24, "{out:?}");
    assert!(out[0]["output"]["text"].is_string(), "{out:?}");
}
