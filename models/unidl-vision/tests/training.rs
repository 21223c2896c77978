//! A few dozen training steps of each family on the committed real-MNIST
//! slice (`tests/fixtures/mnist`) through unidl-train's trainer: the loss on
//! a fixed set of 64 training digits falls and stays finite — a check that
//! every layer trains, **not** that the model generalises. After so few
//! steps the batch-norm running statistics still lag the weights, so
//! eval-mode accuracy on unseen digits is at chance (measured: 0.10 after 24
//! steps, 0.35 after 60 for ResNet-18). Generalisation is shown by the
//! measured full runs in docs/ZOO.md (held-out accuracy of each config) and,
//! for the trainer itself, by unidl-train's
//! `trains_on_real_digits_loss_falls_and_held_out_accuracy_rises`.

use std::path::{Path, PathBuf};

use unidl_backend::Device;
use unidl_data::{DatasetParams, TransformConfig, construct_dataset, get_sample};
use unidl_train::*;
use unidl_vision::ClassifierConfig;

fn mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist")
}

/// Trains `steps` steps of batch 16 cycling over the first 64 digits of the
/// class-sorted folder (classes 0 and 1); returns the losses.
fn losses(model_toml: &str, side: usize, lr: f64, steps: usize) -> Vec<f64> {
    let dev = Device::flex();
    let cfg: ClassifierConfig = toml::from_str(model_toml).unwrap();
    let model = {
        let _rng = crate::common::seeded(&dev, 11);
        cfg.init(&dev).unwrap()
    };
    let mut transforms = vec![];
    if side != 28 {
        transforms.push(TransformConfig::Resize {
            size: [side, side],
            keep_ratio: false,
            fill: 0.0,
        });
    }
    let params = DatasetParams {
        seed: 3,
        channels: Some(1),
        transforms,
        range: Some([0, 64]),
        ..DatasetParams::default()
    };
    let train = construct_dataset(&mnist().join("train"), &params).unwrap();
    let out = std::env::temp_dir().join(format!(
        "unidl-vision-train-{}-{}",
        std::process::id(),
        model_toml.len()
    ));
    let mut trainer = construct_trainer(
        model,
        &OptimizerConfig::new(OptimizerMethod::Adam, lr),
        Schedule::Constant,
        ImageClassification::default(),
        TrainerConfig {
            seed: 5,
            progress: Some(false),
            records: false,
            ..TrainerConfig::new(1, 16, out.clone())
        },
        train.clone(),
        None,
        &dev,
    )
    .unwrap();
    let samples: Vec<_> = (0..64).map(|i| get_sample(&train, i).unwrap()).collect();
    let v = (0..steps)
        .map(|s| {
            trainer
                .train_one_batch(&samples[(s % 4) * 16..(s % 4 + 1) * 16])
                .unwrap()
        })
        .collect();
    let _ = std::fs::remove_dir_all(out);
    v
}

fn assert_learns(name: &str, l: &[f64]) {
    assert!(
        l.iter().all(|v| v.is_finite()),
        "{name}: non-finite loss {l:?}"
    );
    let n = 4;
    let first: f64 = l[..n].iter().sum::<f64>() / n as f64;
    let last: f64 = l[l.len() - n..].iter().sum::<f64>() / n as f64;
    eprintln!("{name}: loss {first:.3} -> {last:.3}");
    assert!(last < 0.5 * first, "{name}: loss did not fall: {l:?}");
}

#[test]
fn resnet18_small_stem_fits_64_training_digits() {
    let l = losses(
        "name = \"resnet\"\ndepth = 18\nsmall_input = true\nin_channels = 1\nnum_classes = 10",
        28,
        1e-3,
        24,
    );
    assert_learns("resnet18", &l);
}

#[test]
fn vgg11_bn_reduced_fits_64_training_digits() {
    // quarter width and a 256-unit classifier: the full 129 M-parameter
    // classifier makes each Adam step take seconds on two cores
    let l = losses(
        "name = \"vgg\"\ndepth = 11\nbatch_norm = true\nwidth = 16\nhidden = 256\nin_channels = 1\nnum_classes = 10",
        32,
        1e-3,
        24,
    );
    assert_learns("vgg11_bn", &l);
}

#[test]
fn efficientnet_b0_fits_64_training_digits() {
    let l = losses(
        "name = \"efficientnet\"\nvariant = \"b0\"\nin_channels = 1\nnum_classes = 10",
        28,
        2e-3,
        24,
    );
    assert_learns("efficientnet_b0", &l);
}

/// The repository's three zoo configs, as written, through the registry
/// (the way `unidl train` reads them), shortened to one epoch over the 140
/// held-out digits of the committed MNIST slice (three batches; the
/// measured runs are in docs/ZOO.md): they parse, build, train, validate and
/// checkpoint, and the loss stays finite and near chance level (ln 10 ≈ 2.30)
/// after three steps of a warm-up schedule.
#[test]
fn the_mnist_configs_train_through_the_registry() {
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_vision::register(&mut reg).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let slice = mnist().canonicalize().unwrap();
    for name in ["resnet18_mnist", "efficientnet_b0_mnist", "vgg11_bn_mnist"] {
        let dir = std::env::temp_dir().join(format!("unidl-cfg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = std::fs::read_to_string(repo.join(format!("configs/{name}.toml")))
            .unwrap()
            .replace(
                "\"data:mnist/train\"",
                &format!("\"{}\"", slice.join("test").display()),
            )
            .replace(
                "\"data:mnist/test\"",
                &format!("\"{}\"", slice.join("test").display()),
            )
            .lines()
            .map(|l| {
                if l.starts_with("epochs = ") {
                    "epochs = 1\nprogress = false".to_string()
                } else if l.starts_with("output_dir = ") {
                    "output_dir = \"run\"".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = dir.join("run.toml");
        std::fs::write(&cfg, text).unwrap();
        unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
        let csv = std::fs::read_to_string(dir.join("run/epochs.csv")).unwrap();
        let row: Vec<String> = csv
            .lines()
            .last()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        let (loss, acc): (f64, f64) = (row[1].parse().unwrap(), row[3].parse().unwrap());
        eprintln!("{name}: one epoch on 140 digits: loss {loss:.4}, held-out accuracy {acc:.4}");
        assert!(
            loss.is_finite() && loss < 3.0 && acc.is_finite(),
            "{name}: {csv}"
        );
        assert!(dir.join("run/checkpoints").read_dir().unwrap().count() > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
