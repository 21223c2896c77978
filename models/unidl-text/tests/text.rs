//! TextCNN: shapes and parameter count of the paper's configuration,
//! padding invariance, the max-norm constraint, typed errors, and training
//! on the real SpamAssassin corpus through the registry.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_text::{TextCnn, TextCnnConfig};

mod bert;
mod bytenet;
mod common;
mod full_size;
mod t5;
mod trocr;
mod xlnet;

fn ids(rows: &[&[i64]], t: usize, device: &Device) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    let mut v = Vec::new();
    let mut m = Vec::new();
    for r in rows {
        for j in 0..t {
            v.push(*r.get(j).unwrap_or(&0));
            m.push(j < r.len());
        }
    }
    (
        Tensor::from_data(TensorData::new(v, [rows.len(), t]), device),
        Tensor::from_data(TensorData::new(m, [rows.len(), t]), device),
    )
}

#[test]
fn paper_configuration_shapes_and_parameter_count() {
    let dev = Device::flex();
    let (v, k) = (5000, 2);
    let m: TextCnn = TextCnnConfig::new(v, k).init(&dev).unwrap();
    // embedding + Σ_w (300·100·w + 100) + classifier (300·k + k)
    let want = v * 300 + [3, 4, 5].iter().map(|w| 300 * 100 * w + 100).sum::<usize>() + 300 * k + k;
    assert_eq!(m.num_params(), want);
    let (x, mask) = ids(&[&[5, 6, 7, 8, 9, 10, 11], &[12, 13, 14]], 9, &dev);
    assert_eq!(m.forward(x, mask).dims(), [2, 2]);
}

#[test]
fn padding_never_changes_a_prediction() {
    let dev = Device::flex();
    unidl_backend::seed(&dev, 4);
    let m = TextCnnConfig {
        embed_dim: 16,
        feature_maps: 8,
        ..TextCnnConfig::new(50, 3)
    }
    .init(&dev)
    .unwrap();
    for row in [&[3i64, 4, 5, 6, 7, 8][..], &[9, 10][..]] {
        let (a, am) = ids(&[row], 5.max(row.len()), &dev);
        let (b, bm) = ids(&[row, &[1; 12]], 12, &dev);
        let alone: Vec<f32> = m.forward(a, am).to_data().try_to_vec().unwrap();
        let batched: Vec<f32> = m.forward(b, bm).to_data().try_to_vec().unwrap();
        for (x, y) in alone.iter().zip(&batched[..3]) {
            assert!((x - y).abs() < 1e-5, "{row:?}: {alone:?} vs {batched:?}");
        }
    }
}

#[test]
fn max_norm_rescales_only_the_long_weight_vectors() {
    let dev = Device::flex();
    let mut m = TextCnnConfig::new(10, 3).init(&dev).unwrap();
    // class 0's vector has norm 10·√300 > 3, class 1's is tiny, class 2's is 0.
    let mut w = vec![0.0f32; 300 * 3];
    for f in 0..300 {
        w[f * 3] = 10.0;
        w[f * 3 + 1] = 0.001;
    }
    m.classifier.weight = burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(w.clone(), [300, 3]),
        &dev,
    ));
    let m = m.apply_max_norm();
    let got: Vec<f32> = m.classifier.weight.val().to_data().try_to_vec().unwrap();
    let norm = |c: usize| {
        (0..300)
            .map(|f| (got[f * 3 + c] as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    assert!((norm(0) - 3.0).abs() < 1e-4, "{}", norm(0));
    assert!((norm(1) - 0.001 * 300f64.sqrt()).abs() < 1e-6);
    assert_eq!(norm(2), 0.0);
}

#[test]
fn bad_configs_name_the_key() {
    let dev = Device::flex();
    let e = TextCnnConfig {
        vocab_size: None,
        ..TextCnnConfig::new(10, 2)
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("textcnn.vocab_size"), "{e}");
    let e = TextCnnConfig {
        windows: vec![3, 0],
        ..TextCnnConfig::new(10, 2)
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("textcnn.windows"), "{e}");
    let e = TextCnnConfig {
        dropout: 1.0,
        ..TextCnnConfig::new(10, 2)
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("textcnn.dropout"), "{e}");
}

/// One epoch of `configs/textcnn_spam.toml` (its tokenizer and model; the
/// real SpamAssassin split that `cargo xtask data spam` prepares, which
/// `cargo xtask test` runs first) reaches at least 95 % held-out accuracy.
#[test]
fn one_epoch_on_real_spam_reaches_95_percent() {
    let data = unidl_run::data_dir();
    assert!(
        data.join("spam/test.jsonl").is_file(),
        "{}: missing; run `cargo xtask data spam` (cargo xtask test does it first)",
        data.join("spam").display()
    );
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("unidl-textcnn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo.join("configs/textcnn_spam.toml"))
        .unwrap()
        .replace("epochs = 4", "epochs = 1\nprogress = false")
        .replace("output_dir = \"runs/textcnn_spam\"", "output_dir = \"run\"");
    assert!(text.contains("epochs = 1") && text.contains("output_dir = \"run\""));
    let cfg = dir.join("textcnn.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_text::register(&mut reg).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let csv = std::fs::read_to_string(dir.join("run/epochs.csv")).unwrap();
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
        acc >= 0.95,
        "held-out accuracy after one epoch: {acc}\n{csv}"
    );
    assert!(dir.join("run/tokenizer.json").is_file());
    // An obvious spam mail (committed), classified through the saved tokenizer.
    let mail = repo.join("tests/fixtures/text/spam.txt");
    let out = unidl_run::infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &unidl_run::InferArgs {
            texts: Vec::new(),
            files: vec![mail],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(out[0]["output"][0]["label"], "spam", "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
