//! The four packaged architectures at their published sizes against
//! `transformers` 5.23.0 (`tests/reference/gen_full.py --full`, seeded random
//! weights, about 1.4 GB generated into a cache by `.ci/run`; skipped with
//! a note when absent, a failure under `UNIDL_REQUIRE_ZOO_REF=1`):
//! bert-base, t5-small, xlnet-base and TrOCR-small in eval mode, outputs
//! within 1e-4 of the reference's largest magnitude.

use std::path::PathBuf;

use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::{StateDict, load_state_dict_file};
use unidl_testkit::{check_close, check_loss, floats, values};

use super::common::{int_input, mask_input, padded_labels};

const TOL: f32 = 1e-4;

fn reference() -> Option<(PathBuf, serde_json::Value)> {
    let dir = unidl_testkit::cached_reference(
        "UNIDL_TEXT_FULL_REF",
        "full.json",
        "`tests/reference/gen_full.py --full` (.ci/run does)",
    )?;
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join("full.json")).unwrap()).unwrap();
    Some((dir, meta))
}

fn io(dir: &std::path::Path, name: &str, dev: &Device) -> StateDict {
    load_state_dict_file(&dir.join(format!("{name}.io.safetensors")), dev).unwrap()
}

/// `got` within [`TOL`] of the reference's `key`.
fn same<const D: usize>(what: &str, got: Tensor<D>, io: &StateDict, key: &str) {
    check_close(what, &values(got), &floats(io, key), TOL);
}

/// Teacher-forced logits and their loss against the reference's.
fn same_logits_and_loss(
    what: &str,
    logits: Tensor<3>,
    (labels, keep): (Tensor<2, Int>, Tensor<2, burn::tensor::Bool>),
    io: &StateDict,
) {
    same(&format!("{what} logits"), logits.clone(), io, "logits");
    let loss = unidl_train::token_cross_entropy(logits, labels, keep, 0.0);
    check_loss(&format!("{what} loss"), &loss, floats(io, "loss")[0]);
}

#[test]
fn bert_base_matches_transformers() {
    use unidl_text::bert::{BertConfig, load_hf_weights};
    let Some((dir, meta)) = reference() else {
        return;
    };
    let dev = Device::flex();
    let io = io(&dir, "bert_base", &dev);
    let (m, report) = load_hf_weights(
        BertConfig::default().init_classifier(3, &dev).unwrap(),
        &dir.join("bert_base.safetensors"),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    assert_eq!(
        meta["bert_base"]["params"], 109_484_547u64,
        "bert-base + a 3-way classifier"
    );
    let ids = int_input(&io, "input_ids", &dev);
    let types = int_input(&io, "token_type_ids", &dev);
    let attention = mask_input(&io, "attention_mask", &dev);
    let out = m
        .bert
        .forward(ids.clone(), Some(types.clone()), Some(attention.clone()));
    // padded rows are left at values no one reads: compare real tokens
    let mask = floats(&io, "attention_mask");
    let real = |v: Vec<f32>| -> Vec<f32> {
        v.chunks(768)
            .zip(&mask)
            .filter(|(_, m)| **m > 0.5)
            .flat_map(|(r, _)| r.to_vec())
            .collect()
    };
    check_close(
        "bert-base hidden states",
        &real(values(out.hidden)),
        &real(floats(&io, "hidden")),
        TOL,
    );
    same("bert-base pooled", out.pooled.unwrap(), &io, "pooled");
    let logits = m.forward_with_types(ids, Some(types), Some(attention));
    same("bert-base logits", logits, &io, "logits");
}

#[test]
fn t5_small_matches_transformers() {
    use unidl_text::t5::{T5Config, load_hf_t5_weights};
    let Some((dir, meta)) = reference() else {
        return;
    };
    let dev = Device::flex();
    let io = io(&dir, "t5_small", &dev);
    let cfg = T5Config::default();
    let (m, report) = load_hf_t5_weights(
        cfg.init(&dev).unwrap(),
        &dir.join("t5_small.safetensors"),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    assert_eq!(meta["t5_small"]["params"], 60_506_624u64);
    let (labels, keep) = padded_labels(&io, cfg.pad_token_id as i64, &dev);
    let encoded = m.encode(
        int_input(&io, "input_ids", &dev),
        mask_input(&io, "attention_mask", &dev),
    );
    same(
        "t5-small encoder states",
        encoded.hidden.clone(),
        &io,
        "encoder_hidden",
    );
    let logits = m.decode(&encoded, m.shift_right(labels.clone()));
    same_logits_and_loss("t5-small", logits, (labels, keep), &io);
}

#[test]
fn xlnet_base_matches_transformers() {
    use unidl_text::xlnet::{XLNetConfig, load_hf_xlnet_weights};
    let Some((dir, meta)) = reference() else {
        return;
    };
    let dev = Device::flex();
    let io = io(&dir, "xlnet_base", &dev);
    let (m, report) = load_hf_xlnet_weights(
        XLNetConfig::default().init_classifier(3, &dev).unwrap(),
        &dir.join("xlnet_base.safetensors"),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    assert_eq!(
        meta["xlnet_base"]["params"],
        116_718_336u64 + 768 * 768 + 768 + 768 * 3 + 3
    );
    let ids = int_input(&io, "input_ids", &dev);
    let types = int_input(&io, "token_type_ids", &dev);
    let attention = mask_input(&io, "attention_mask", &dev);
    let hidden = m
        .transformer
        .forward(ids.clone(), Some(types.clone()), Some(attention.clone()))
        .unwrap();
    same("xlnet-base hidden states", hidden, &io, "hidden");
    let logits = m.forward(ids, Some(types), Some(attention)).unwrap();
    same("xlnet-base logits", logits, &io, "logits");
}

#[test]
fn trocr_small_matches_transformers() {
    use unidl_text::trocr::{TrOcrConfig, load_hf_trocr_weights};
    let Some((dir, meta)) = reference() else {
        return;
    };
    let dev = Device::flex();
    let io = io(&dir, "trocr_small", &dev);
    let cfg = TrOcrConfig::default();
    let (m, report) = load_hf_trocr_weights(
        cfg.init(&dev).unwrap(),
        &dir.join("trocr_small.safetensors"),
        true,
    )
    .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    assert_eq!(meta["trocr_small"]["params"], 61_154_176u64);
    let s = io["pixel_values"].shape();
    let px = Tensor::<4>::from_data(
        TensorData::new(floats(&io, "pixel_values"), [s[0], s[1], s[2], s[3]]),
        &dev,
    );
    same(
        "trocr-small encoder states",
        m.encoder_states(px.clone()).unwrap(),
        &io,
        "encoder_hidden",
    );
    let (labels, keep) = padded_labels(&io, cfg.decoder.pad_token_id as i64, &dev);
    let encoded = m.encode(px).unwrap();
    let logits = m.decode(&encoded, m.shift_right(labels.clone())).unwrap();
    same_logits_and_loss("trocr-small", logits, (labels, keep), &io);
}
