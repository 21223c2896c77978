//! TrOCR against `transformers` 5.23.0 (`tests/reference/gen_trocr.py`):
//! a reduced `VisionEncoderDecoderModel` (ViT on 16×32 images, TrOCR
//! decoder of another width, so `enc_to_dec_proj` exists) — encoder states,
//! logits, loss and gradients with -100 labels —, TrOCR-small's parameter
//! count, cached decoding equal to teacher forcing, and typed errors.

use std::path::{Path, PathBuf};

use super::common::padded_labels;
use burn::module::{Module, Param};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::{StateDict, load_state_dict_file};
use unidl_testkit::{check_close, check_grad, check_loss, floats, values};
use unidl_text::trocr::{ImageSize, TrOcr, TrOcrConfig, TrOcrDecoderCache, load_hf_trocr_weights};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/trocr")
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(reference_dir().join("trocr.json")).unwrap())
        .unwrap()
}

/// The reduced configuration: the generator's keys, plus what ViT lacks
/// (no distillation token).
fn config() -> TrOcrConfig {
    let mut c = meta()["config"].clone();
    c["encoder"]["distillation_token"] = false.into();
    serde_json::from_value(c).unwrap()
}

fn model(dev: &Device) -> (TrOcrConfig, TrOcr, StateDict) {
    let cfg = config();
    let (m, report) = load_hf_trocr_weights(
        cfg.init(dev).unwrap(),
        &reference_dir().join("trocr.safetensors"),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    let io = load_state_dict_file(&reference_dir().join("trocr.io.safetensors"), dev).unwrap();
    (cfg, m, io)
}

fn pixels(io: &StateDict, dev: &Device) -> Tensor<4> {
    let s = io["pixel_values"].shape();
    Tensor::from_data(
        TensorData::new(floats(io, "pixel_values"), [s[0], s[1], s[2], s[3]]),
        dev,
    )
}

#[test]
fn trocr_small_has_the_reference_parameter_count() {
    let m = TrOcrConfig::default().init(&Device::flex()).unwrap();
    let want = meta()["trocr_small_params"].as_u64().unwrap() as usize;
    eprintln!("TrOCR-small: {} parameters", m.num_params());
    assert_eq!(m.num_params(), want);
    assert_eq!(want, 61_154_176);
}

#[test]
fn reduced_trocr_matches_transformers() {
    let dev = Device::flex().autodiff();
    let (cfg, m, io) = model(&dev);
    assert!(m.enc_to_dec_proj.is_some() && m.output_projection.is_some());
    // -100 → padding id for the decoder's inputs (as shift_tokens_right), ignored by the loss
    let (labels, keep) = padded_labels(&io, cfg.decoder.pad_token_id as i64, &dev);
    let px = pixels(&io, &dev);
    check_close(
        "encoder states",
        &values(m.encoder_states(px.clone()).unwrap()),
        &floats(&io, "encoder_hidden"),
        1e-5,
    );
    let encoded = m.encode(px).unwrap();
    let logits = m.decode(&encoded, m.shift_right(labels.clone())).unwrap();
    check_close(
        "logits",
        &values(logits.clone()),
        &floats(&io, "logits"),
        1e-5,
    );
    let loss = unidl_train::token_cross_entropy(logits, labels, keep, 0.0);
    check_loss("loss", &loss, floats(&io, "loss")[0]);
    let grads = loss.backward();
    let linear = |w: &Param<Tensor<2>>| w.grad(&grads).map(|g| values(g.transpose()));
    let e = &m.encoder;
    let d = &m.decoder;
    let checks = vec![
        (
            "encoder.embeddings.patch_embeddings.projection.weight",
            e.embeddings
                .patch_embeddings
                .weight
                .grad(&grads)
                .map(values),
        ),
        (
            "encoder.embeddings.cls_token",
            e.embeddings.cls_token.grad(&grads).map(values),
        ),
        (
            "encoder.embeddings.position_embeddings",
            e.embeddings.position_embeddings.grad(&grads).map(values),
        ),
        (
            "encoder.layers.0.attention.q_proj.weight",
            linear(&e.layers[0].attention.query.weight),
        ),
        (
            "encoder.layers.1.layernorm_before.weight",
            e.layers[1].layernorm_before.gamma.grad(&grads).map(values),
        ),
        (
            "encoder.layernorm.weight",
            e.layernorm.gamma.grad(&grads).map(values),
        ),
        (
            "enc_to_dec_proj.weight",
            linear(&m.enc_to_dec_proj.as_ref().unwrap().weight),
        ),
        (
            "decoder.model.decoder.embed_tokens.weight",
            d.embed_tokens.weight.grad(&grads).map(values),
        ),
        (
            "decoder.model.decoder.embed_positions.weight",
            d.embed_positions
                .as_ref()
                .unwrap()
                .weight
                .grad(&grads)
                .map(values),
        ),
        (
            "decoder.model.decoder.layers.0.encoder_attn.k_proj.weight",
            linear(&d.layers[0].encoder_attn.key.weight),
        ),
        (
            "decoder.model.decoder.layers.1.fc1.weight",
            linear(&d.layers[1].fc1.weight),
        ),
        (
            "decoder.model.decoder.layers.1.final_layer_norm.weight",
            d.layers[1].final_layer_norm.gamma.grad(&grads).map(values),
        ),
        (
            "decoder.output_projection.weight",
            linear(&m.output_projection.as_ref().unwrap().weight),
        ),
    ];
    for (name, got) in checks {
        check_grad(name, got, &floats(&io, &format!("grad.{name}")), 1e-4);
    }
}

/// Decoding one step at a time through the key/value cache gives the
/// teacher-forced logits of every position; greedy and beam generation
/// run on the cache.
#[test]
fn cached_decoding_equals_teacher_forcing() {
    use unidl_train::decoding::{GenerationConfig, SpecialIds, generate};
    let dev = Device::flex();
    let (cfg, m, io) = model(&dev);
    let px = pixels(&io, &dev);
    let encoded = m.encode(px.clone()).unwrap();
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(vec![2i64, 12, 40, 3, 57, 2, 6, 6, 30, 14], [2, 5]),
        &dev,
    );
    let full = values(m.decode(&encoded, ids.clone()).unwrap());
    let mut cache = TrOcrDecoderCache::default();
    let steps: Vec<Tensor<3>> = (0..5)
        .map(|i| {
            m.decode_step(&encoded, ids.clone().narrow(1, i, 1), &mut cache)
                .unwrap()
        })
        .collect();
    assert_eq!(cache.len(), 5);
    check_close(
        "cached steps vs teacher forcing",
        &values(Tensor::cat(steps, 1)),
        &full,
        1e-5,
    );
    let source = unidl_train::Seq2SeqSource::Images(px);
    let special = SpecialIds {
        bos: cfg.decoder.decoder_start_token_id as u32,
        eos: cfg.decoder.eos_token_id as u32,
        pad: cfg.decoder.pad_token_id as u32,
    };
    for gen_cfg in [
        GenerationConfig {
            max_length: 6,
            ..Default::default()
        },
        GenerationConfig {
            max_length: 6,
            num_beams: 3,
            ..Default::default()
        },
    ] {
        let out = generate(&m, &source, special, &gen_cfg).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| !s.is_empty() && s.len() <= 6), "{out:?}");
    }
}

/// Sinusoidal positions (no learned table) and a tied output projection
/// build, run and decode through the cache as under teacher forcing.
#[test]
fn sinusoidal_tied_variant_caches_consistently() {
    let dev = Device::flex();
    let mut cfg = config();
    cfg.decoder.use_learned_position_embeddings = false;
    cfg.decoder.tie_word_embeddings = true;
    let m = cfg.init(&dev).unwrap();
    assert!(m.output_projection.is_none() && m.decoder.embed_positions.is_none());
    let px = Tensor::<4>::ones([1, 3, 16, 32], &dev);
    let encoded = m.encode(px).unwrap();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 7, 8, 9], [1, 4]), &dev);
    let full = values(m.decode(&encoded, ids.clone()).unwrap());
    let mut cache = TrOcrDecoderCache::default();
    let steps: Vec<Tensor<3>> = (0..4)
        .map(|i| {
            m.decode_step(&encoded, ids.clone().narrow(1, i, 1), &mut cache)
                .unwrap()
        })
        .collect();
    check_close(
        "sinusoidal: cached vs teacher forcing",
        &values(Tensor::cat(steps, 1)),
        &full,
        1e-5,
    );
}

#[test]
fn bad_configs_and_inputs_are_named() {
    let dev = Device::flex();
    let base = config();
    type Edit = Box<dyn Fn(&mut TrOcrConfig)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c.encoder.patch_size = ImageSize::Square(5)),
            "encoder.image_size",
        ),
        (
            Box::new(|c| c.encoder.num_attention_heads = 5),
            "encoder.num_attention_heads",
        ),
        (
            Box::new(|c| c.decoder.decoder_attention_heads = 5),
            "decoder.decoder_attention_heads",
        ),
        (
            Box::new(|c| c.decoder.eos_token_id = 60),
            "decoder.eos_token_id",
        ),
        (Box::new(|c| c.decoder.dropout = 1.0), "decoder.dropout"),
        (
            Box::new(|c| c.decoder.cross_attention_hidden_size = Some(7)),
            "decoder.cross_attention_hidden_size",
        ),
    ];
    for (edit, key) in cases {
        let mut c = base.clone();
        edit(&mut c);
        let e = c.init(&dev).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
    let e = serde_json::from_str::<TrOcrConfig>(r#"{"decoder": {"d_modle": 3}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("d_modle"), "{e}");
    // a pair or one number for the image size
    let c: TrOcrConfig = serde_json::from_str(r#"{"encoder": {"image_size": [32, 384]}}"#).unwrap();
    assert_eq!(c.encoder.image_size.hw(), [32, 384]);

    let m = base.init(&dev).unwrap();
    let e = m
        .encode(Tensor::<4>::zeros([1, 3, 32, 32], &dev))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pixel_values"), "{e}");
    let enc = m.encode(Tensor::<4>::zeros([1, 3, 16, 32], &dev)).unwrap();
    let long = Tensor::<2, Int>::zeros([1, 41], &dev);
    let e = m.decode(&enc, long).unwrap_err().to_string();
    assert!(
        e.contains("decoder_input_ids") && e.contains("max_position_embeddings"),
        "{e}"
    );
}

/// `trocr` is registered for sequence to sequence and switches the task's
/// source to images.
#[test]
fn the_zoo_model_reads_images() {
    use unidl_run::ZooModel;
    let task = unidl_train::SequenceToSequence {
        source: unidl_train::SourceInput::Tokens("tokens".into()),
        pad_id: 0,
        bos_id: 1,
        eos_id: 2,
        label_smoothing: 0.0,
        generation: Default::default(),
        target_tokenizer: None,
        label_targets: Vec::new(),
        ctc_weight: 0.0,
    };
    let zoo = unidl_text::trocr::TrOcrModelConfig {
        architecture: config(),
    };
    assert_eq!(zoo.adapt_task(task).source, unidl_train::SourceInput::Image);
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_text::register(&mut reg).unwrap();
    let entry = reg.get("trocr", "test").unwrap();
    assert_eq!(entry.task, unidl_run::TaskKind::SequenceToSequence);
}

/// A DeiT encoder (distillation token), sinusoidal positions over padded
/// decoder inputs, GELU, a tied output projection and cross-attention that
/// reads the encoder's width (no `enc_to_dec_proj`) against `transformers`.
#[test]
fn deit_sinusoidal_tied_trocr_matches_transformers() {
    let dev = Device::flex().autodiff();
    let cfg: TrOcrConfig = serde_json::from_value(meta()["deit_config"].clone()).unwrap();
    let (m, report) = load_hf_trocr_weights(
        cfg.init(&dev).unwrap(),
        &reference_dir().join("trocr_deit.safetensors"),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    assert!(m.enc_to_dec_proj.is_none() && m.output_projection.is_none());
    let io =
        load_state_dict_file(&reference_dir().join("trocr_deit.io.safetensors"), &dev).unwrap();
    // -100 → padding id for the decoder's inputs (as shift_tokens_right), ignored by the loss
    let (labels, keep) = padded_labels(&io, cfg.decoder.pad_token_id as i64, &dev);
    let px = pixels(&io, &dev);
    check_close(
        "deit: encoder states",
        &values(m.encoder_states(px.clone()).unwrap()),
        &floats(&io, "encoder_hidden"),
        1e-5,
    );
    let logits = m.forward(px, m.shift_right(labels.clone())).unwrap();
    check_close(
        "deit: logits",
        &values(logits.clone()),
        &floats(&io, "logits"),
        1e-5,
    );
    let loss = unidl_train::token_cross_entropy(logits, labels, keep, 0.0);
    check_loss("deit: loss", &loss, floats(&io, "loss")[0]);
    let grads = loss.backward();
    let checks = vec![
        (
            "encoder.embeddings.distillation_token",
            m.encoder
                .embeddings
                .distillation_token
                .as_ref()
                .unwrap()
                .grad(&grads)
                .map(values),
        ),
        (
            "decoder.model.decoder.embed_tokens.weight",
            m.decoder.embed_tokens.weight.grad(&grads).map(values),
        ),
        (
            "decoder.model.decoder.layers.0.encoder_attn.k_proj.weight",
            m.decoder.layers[0]
                .encoder_attn
                .key
                .weight
                .grad(&grads)
                .map(|g| values(g.transpose())),
        ),
    ];
    for (name, got) in checks {
        check_grad(
            &format!("deit: {name}"),
            got,
            &floats(&io, &format!("grad.{name}")),
            1e-4,
        );
    }
}

/// `position_init = "sincos_2d"`: `[CLS]` and the distillation token start
/// at zero, each patch at the sines and cosines of its row (first half of
/// the width) and column (second half); the default stays `transformers`'
/// normal draw; an unknown value is an error naming the choices.
#[test]
fn sincos_position_init_encodes_rows_and_columns() {
    use unidl_text::trocr::PositionInit;
    let enc: unidl_text::trocr::TrOcrEncoderConfig = toml::from_str(
        "image_size = [32, 64]\npatch_size = 16\nnum_channels = 1\nhidden_size = 16\n\
         num_hidden_layers = 1\nnum_attention_heads = 2\nintermediate_size = 32\n\
         position_init = \"sincos_2d\"",
    )
    .unwrap();
    assert_eq!(enc.position_init, PositionInit::Sincos2d);
    let cfg = TrOcrConfig {
        encoder: enc,
        ..TrOcrConfig::default()
    };
    let m = cfg.init(&Device::flex()).unwrap();
    let p = values(m.encoder.embeddings.position_embeddings.val());
    let d = 16;
    // [CLS], distillation, then a 2 x 4 grid
    assert_eq!(p.len(), (2 + 8) * d);
    assert!(p[..2 * d].iter().all(|&x| x == 0.0));
    for (r, c) in [(0usize, 0usize), (1, 2), (1, 3)] {
        let row = &p[(2 + r * 4 + c) * d..][..d];
        // frequency k: 1 / 10000^(k / 4); k = 0 is 1
        assert!((row[0] - (r as f32).sin()).abs() < 1e-6, "{row:?}");
        assert!((row[4] - (r as f32).cos()).abs() < 1e-6, "{row:?}");
        assert!((row[8] - (c as f32).sin()).abs() < 1e-6, "{row:?}");
        assert!((row[12] - (c as f32).cos()).abs() < 1e-6, "{row:?}");
        let f1 = 1.0 / 10000f32.powf(0.25);
        assert!((row[9] - (c as f32 * f1).sin()).abs() < 1e-6, "{row:?}");
    }
    assert_eq!(
        TrOcrConfig::default().encoder.position_init,
        PositionInit::Normal
    );
    let e = toml::from_str::<unidl_text::trocr::TrOcrEncoderConfig>("position_init = \"fixed\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sincos_2d") && e.contains("normal"), "{e}");
}

/// `patch_size = [height, width]` (as `transformers`' `ViTConfig` takes
/// it): full-height strips of a text line; the embedding convolution's
/// kernel is `[height, width]` in that order, the grid and the positions
/// follow, and a width the patch does not divide is a typed error.
#[test]
fn rectangular_patches_cut_full_height_strips() {
    let enc: unidl_text::trocr::TrOcrEncoderConfig = toml::from_str(
        "image_size = [8, 24]\npatch_size = [8, 4]\nnum_channels = 1\nhidden_size = 16\n\
         num_hidden_layers = 1\nnum_attention_heads = 2\nintermediate_size = 32",
    )
    .unwrap();
    assert_eq!(enc.patch_size, ImageSize::Pair([8, 4]));
    assert_eq!(enc.grid(), [1, 6]);
    assert_eq!(enc.positions(), 6 + 2);
    let cfg = TrOcrConfig {
        encoder: enc.clone(),
        ..TrOcrConfig::default()
    };
    let m = cfg.init(&Device::flex()).unwrap();
    assert_eq!(
        m.encoder.embeddings.patch_embeddings.weight.dims(),
        [16, 1, 8, 4]
    );
    let pixels = Tensor::<4>::ones([2, 1, 8, 24], &Device::flex());
    assert_eq!(m.encoder.forward(pixels).unwrap().dims(), [2, 8, 16]);
    let bad = TrOcrConfig {
        encoder: unidl_text::trocr::TrOcrEncoderConfig {
            patch_size: ImageSize::Pair([8, 5]),
            ..enc
        },
        ..TrOcrConfig::default()
    };
    let e = bad.init(&Device::flex()).unwrap_err().to_string();
    assert!(e.contains("encoder.image_size") && e.contains("8×5"), "{e}");
}

/// `conv_stem = [c1, c2, …]` (a unidl key): 3×3 stride-2 convolutions
/// with batch norm and ReLU before the patch projection, which then covers
/// `patch_size / 2^n` of the stem's output — the same grid and positions as
/// without a stem; a patch the stem's stride does not divide, or a
/// zero-channel entry, is a typed error naming `encoder.conv_stem`.
#[test]
fn a_convolutional_stem_feeds_the_patch_projection() {
    let base = "image_size = [8, 24]\npatch_size = [8, 4]\nnum_channels = 1\nhidden_size = 16\n\
                num_hidden_layers = 1\nnum_attention_heads = 2\nintermediate_size = 32\n";
    let plain: unidl_text::trocr::TrOcrEncoderConfig = toml::from_str(base).unwrap();
    let enc: unidl_text::trocr::TrOcrEncoderConfig =
        toml::from_str(&format!("{base}conv_stem = [4, 8]")).unwrap();
    assert!(plain.conv_stem.is_empty());
    assert_eq!(
        (enc.stem_scale(), enc.grid(), enc.positions()),
        (4, [1, 6], 8)
    );
    let dev = Device::flex();
    let init = |encoder| {
        TrOcrConfig {
            encoder,
            ..TrOcrConfig::default()
        }
        .init(&dev)
    };
    let m = init(enc.clone()).unwrap();
    let stem = &m.encoder.embeddings.stem;
    assert_eq!(stem.len(), 2);
    assert_eq!(stem[0].conv.weight.dims(), [4, 1, 3, 3]);
    assert_eq!(stem[1].conv.weight.dims(), [8, 4, 3, 3]);
    assert!(stem.iter().all(|l| l.conv.bias.is_none()));
    assert_eq!(
        m.encoder.embeddings.patch_embeddings.weight.dims(),
        [16, 8, 2, 1]
    );
    // parameters: the stem (convolutions + batch norm's scale, shift and the
    // running mean and variance, which Burn's `num_params` counts too) and
    // a projection over 8 channels × 2 × 1 instead of 1 × 8 × 4
    let p = init(plain).unwrap();
    let count = |m: &unidl_text::trocr::TrOcr| m.num_params();
    assert_eq!(
        count(&m) as i64 - count(&p) as i64,
        (4 * 9 + 4 * 4 + 8 * 4 * 9 + 4 * 8) + (16 * 8 * 2) - (16 * 8 * 4)
    );
    let pixels = Tensor::<4>::random([2, 1, 8, 24], Distribution::Default, &dev);
    let y = m.encoder.forward(pixels.clone()).unwrap();
    assert_eq!(y.dims(), [2, 8, 16]);
    // train mode (autodiff): batch statistics, still the same shapes
    let ad = dev.clone().autodiff();
    let y = m.fork(&ad).encoder.forward(pixels.to_device(&ad)).unwrap();
    assert_eq!(y.dims(), [2, 8, 16]);

    for (stem, want) in [("[4, 0]", "entry 1 is 0"), ("[4, 4, 4]", "does not divide")] {
        let enc: unidl_text::trocr::TrOcrEncoderConfig =
            toml::from_str(&format!("{base}conv_stem = {stem}")).unwrap();
        let e = init(enc).unwrap_err().to_string();
        assert!(e.contains("encoder.conv_stem") && e.contains(want), "{e}");
    }
}

/// `ctc_head = true` (D54): a linear head on the patch tokens, left as
/// initialised by the `transformers` loader; the task's hybrid loss is
/// `(1 − w)·cross-entropy + w·CTC` with padding as blank, a target longer
/// than the patches allow is left out of the CTC term, and a weight without
/// a head is a typed error naming the key.
#[test]
fn hybrid_ctc_objective_on_the_encoder_patches() {
    use unidl_run::ZooModel;
    use unidl_train::{Seq2SeqBatch, Seq2SeqSource, SequenceToSequence, Task, token_cross_entropy};
    let dev = Device::flex();
    let mut cfg = config();
    let plain = cfg.init(&dev).unwrap().num_params();
    cfg.ctc_head = true;
    let fresh = cfg.init(&dev).unwrap();
    let (hidden, vocab) = (cfg.encoder.hidden_size, cfg.decoder.vocab_size);
    assert_eq!(fresh.num_params(), plain + hidden * vocab + vocab);
    let head_before = values(fresh.ctc_head.as_ref().unwrap().weight.val());
    let zoo = unidl_text::trocr::TrOcrModelConfig {
        architecture: cfg.clone(),
    };
    let (m, _) = zoo
        .load_weights(
            fresh,
            &reference_dir().join("trocr.safetensors"),
            true,
            &dev,
        )
        .unwrap();
    assert_eq!(
        values(m.ctc_head.as_ref().unwrap().weight.val()),
        head_before
    );

    let io = load_state_dict_file(&reference_dir().join("trocr.io.safetensors"), &dev).unwrap();
    let px = pixels(&io, &dev);
    let b = px.dims()[0];
    let patches = cfg.encoder.grid()[0] * cfg.encoder.grid()[1];
    let (pad, bos, eos) = (cfg.decoder.pad_token_id as u32, 0u32, 2u32);
    // Row 0 fits; the others need more frames than there are patches.
    let mut targets = vec![vec![5u32, 7, 7, 9]];
    for _ in 1..b {
        targets.push(vec![11u32; patches]);
    }
    let longest = targets.iter().map(Vec::len).max().unwrap();
    let ids = |f: &dyn Fn(&Vec<u32>) -> Vec<u32>| {
        let rows: Vec<i64> = targets
            .iter()
            .flat_map(|y| {
                let mut r = f(y);
                r.resize(longest + 1, pad);
                r.into_iter().map(i64::from)
            })
            .collect();
        Tensor::<2, Int>::from_data(TensorData::new(rows, [b, longest + 1]), &dev)
    };
    let dec = ids(&|y| std::iter::once(bos).chain(y.iter().copied()).collect());
    let lab = ids(&|y| y.iter().copied().chain(std::iter::once(eos)).collect());
    let mask = lab.clone().not_equal_elem(pad as i64);
    let batch = Seq2SeqBatch {
        source: Seq2SeqSource::Images(px.clone()),
        decoder_ids: Some(dec.clone()),
        labels: Some(lab.clone()),
        label_mask: Some(mask.clone()),
        targets: Some(targets.clone()),
        len: b,
        sources: vec![String::new(); b],
    };
    let task = SequenceToSequence {
        source: unidl_train::SourceInput::Image,
        pad_id: pad,
        bos_id: bos,
        eos_id: eos,
        label_smoothing: 0.1,
        generation: Default::default(),
        target_tokenizer: None,
        label_targets: Vec::new(),
        ctc_weight: 0.3,
    };
    let got = values(
        task.loss(&m, &batch)
            .unwrap()
            .into_burn::<1, burn::tensor::Float>()
            .unwrap(),
    )[0];
    let logits = m.forward(px.clone(), dec).unwrap();
    let ce = values(token_cross_entropy(logits, lab, mask, 0.1))[0];
    let lp = m
        .ctc_log_probs(m.encoder_states(px.clone()).unwrap())
        .unwrap();
    assert_eq!(lp.dims(), [b, patches, vocab]);
    let lp0 = lp.clone().narrow(0, 0, 1);
    let ctc =
        values(unidl_train::ctc_loss(lp0, &targets[..1], &[patches], pad as usize).unwrap())[0];
    let want = 0.7 * ce + 0.3 * ctc;
    assert!(
        (got - want).abs() < 1e-4 * want.abs().max(1.0),
        "{got} vs {want}"
    );

    // joint decoding reads the same log-probabilities from the decoding
    // state (one encoder pass), and runs to sequences
    use unidl_train::Seq2SeqModel;
    let source = Seq2SeqSource::Images(px.clone());
    let mut state = m.begin_decoding(&source).unwrap();
    let kept = m.decoding_ctc_log_probs(&mut state).unwrap().unwrap();
    assert_eq!(values(kept), values(lp.clone()));
    let joint = unidl_train::decoding::GenerationConfig {
        max_length: 5,
        num_beams: 2,
        ctc_weight: 0.5,
        ..Default::default()
    };
    let special = unidl_train::decoding::SpecialIds { bos, eos, pad };
    let out = unidl_train::decoding::generate(&m, &source, special, &joint).unwrap();
    assert_eq!(out.len(), b);
    assert!(
        out.iter().all(|seq| !seq.is_empty() && seq.len() <= 5),
        "{out:?}"
    );

    let without = cfg_without_head(&cfg).init(&dev).unwrap();
    let mut state = without.begin_decoding(&source).unwrap();
    assert!(
        without
            .decoding_ctc_log_probs(&mut state)
            .unwrap()
            .is_none()
    );
    let e = task.loss(&without, &batch).unwrap_err().to_string();
    assert!(
        e.contains("task.ctc_weight") && e.contains("ctc_head"),
        "{e}"
    );
}

fn cfg_without_head(cfg: &TrOcrConfig) -> TrOcrConfig {
    TrOcrConfig {
        ctc_head: false,
        ..cfg.clone()
    }
}
