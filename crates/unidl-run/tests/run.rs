//! The registry from outside the CLI: a toy model registered here trains,
//! evaluates and infers from a TOML run config, and config mistakes are
//! errors naming file, line and key.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use serde::Deserialize;
use unidl_backend::Device;
use unidl_run::*;
use unidl_train::{ImageClassification, ImageClassifier};

/// Logistic regression on 28×28 gray images.
#[derive(Module, Debug)]
struct Toy {
    lin: Linear,
}

impl ImageClassifier for Toy {
    fn classify(&self, images: Tensor<4>) -> Tensor<2> {
        self.lin.forward(images.flatten(1, 3))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToyConfig {
    #[serde(default = "side")]
    side: usize,
}

fn side() -> usize {
    28
}

impl ZooModel for ToyConfig {
    type Model = Toy;
    type Task = ImageClassification;
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Toy, BoxError> {
        if facts.class_names.is_empty() {
            return Err("no classes".into());
        }
        Ok(Toy {
            lin: LinearConfig::new(self.side * self.side, facts.class_names.len()).init(device),
        })
    }
}

fn registry() -> ModelRegistry {
    let mut r = ModelRegistry::new();
    r.register::<ToyConfig>("toy", "logistic regression")
        .unwrap();
    r
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/mnist")
        .canonicalize()
        .unwrap()
}

fn write(dir: &Path, model: &str, extra_data: &str, extra: &str) -> PathBuf {
    let f = fixtures();
    let text = format!(
        r#"seed = 3
[model]
name = "toy"
{model}
[data]
format = "image_folder"
train = "{train}"
val = "{val}"
channels = 1
{extra_data}
[optimizer]
optimizer_method = "adam"
base_learningrate = 0.01
[trainer]
epochs = 2
batch_size = 32
output_dir = "run"
progress = false
{extra}"#,
        train = f.join("train").display(),
        val = f.join("test").display(),
    );
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("run.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unidl-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn last_accuracy(dir: &Path) -> f64 {
    let csv = std::fs::read_to_string(dir.join("run/epochs.csv")).unwrap();
    csv.lines()
        .last()
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_model_registered_outside_the_cli_trains_evaluates_and_infers() {
    let reg = registry();
    let names: Vec<_> = reg.entries().map(|e| (e.name.clone(), e.task)).collect();
    assert_eq!(names, [("toy".to_string(), TaskKind::ImageClassification)]);
    let dir = tmp("toy");
    let cfg = write(&dir, "", "", "");
    train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let acc = last_accuracy(&dir);
    assert!(
        acc > 0.75,
        "held-out accuracy of logistic regression: {acc}"
    );
    let classes: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run/classes.json")).unwrap())
            .unwrap();
    assert_eq!(classes.len(), 10);
    eval_config(&reg, &cfg, Some("flex")).unwrap();
    let digit = fixtures().join("test/7/00004.png");
    infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &InferArgs {
            texts: Vec::new(),
            files: vec![digit.clone()],
            top_k: Some(3),
            json: true,
            ..InferArgs::default()
        },
    )
    .unwrap();
    // --draw: the digit enlarged ×10 (28 → 280 pixels) with the top class as a caption.
    let png = dir.join("drawn.png");
    infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &InferArgs {
            texts: Vec::new(),
            files: vec![digit.clone()],
            draw: Some(png.clone()),
            ..InferArgs::default()
        },
    )
    .unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    assert_eq!(width, 280);
    // --weights: a checkpoint directory of the run itself.
    let ckpt = std::fs::read_dir(dir.join("run/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &InferArgs {
            texts: Vec::new(),
            files: vec![digit],
            weights: Some(ckpt),
            ..InferArgs::default()
        },
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mixup_from_a_config_trains() {
    let reg = registry();
    let dir = tmp("mixup");
    let cfg = write(
        &dir,
        "",
        "batch_transforms = [{ type = \"mixup\", alpha = 0.4, num_classes = 10 }]",
        "",
    );
    train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let acc = last_accuracy(&dir);
    assert!(acc > 0.7, "held-out accuracy with MixUp: {acc}");
    // The mixed batches reach the loss: the training loss differs from the
    // same run without MixUp (same seed, same order).
    let plain = tmp("plain");
    train_config(&reg, &write(&plain, "", "", ""), Some("flex"), false).unwrap();
    let loss = |d: &Path| -> f64 {
        let csv = std::fs::read_to_string(d.join("run/epochs.csv")).unwrap();
        csv.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    let (mixed, unmixed) = (loss(&dir), loss(&plain));
    assert!(
        mixed > unmixed + 0.01,
        "MixUp loss {mixed} vs plain {unmixed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&plain);
}

fn config_error(model: &str, extra_data: &str, extra: &str) -> String {
    let dir = tmp("bad");
    let cfg = write(&dir, model, extra_data, extra);
    let e = train_config(&registry(), &cfg, Some("flex"), false)
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    e
}

#[test]
fn config_mistakes_name_file_line_and_key() {
    let e = config_error("sied = 3", "", "");
    assert!(e.contains("run.toml:4") && e.contains("sied"), "{e}");
    let e = config_error("", "formatt = \"coco\"", "");
    assert!(e.contains("run.toml:10") && e.contains("formatt"), "{e}");
    let e = config_error("", "", "[task]\nname = \"text_classification\"");
    assert!(
        e.contains("run.toml:") && e.contains("serves `image_classification`"),
        "{e}"
    );
    let e = config_error(
        "",
        "batch_transforms = [{ type = \"mixup\", alpha = -1.0, num_classes = 10 }]",
        "",
    );
    assert!(e.contains("run.toml:10") && e.contains("alpha"), "{e}");
    let e = config_error("", "", "[task]\nlabel_smoothing = 1.5");
    assert!(e.contains("label_smoothing"), "{e}");
    // unknown model: the known names are listed
    let dir = tmp("unknown");
    let cfg = write(&dir, "", "", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("name = \"toy\"", "name = \"resnot\"");
    std::fs::write(&cfg, text).unwrap();
    let e = train_config(&registry(), &cfg, Some("flex"), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("resnot") && e.contains("registered: toy"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
    // a name registered twice
    let mut r = registry();
    assert!(matches!(
        r.register::<ToyConfig>("toy", "again"),
        Err(RunError::Duplicate(_))
    ));
}

#[test]
fn missing_data_names_the_command_that_prepares_it() {
    let dir = tmp("nodata");
    let cfg = write(&dir, "", "", "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("train = ") {
                "train = \"data:no-such-set/train\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg, text).unwrap();
    let e = train_config(&registry(), &cfg, Some("flex"), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-set") && e.contains("unidl data no-such-set"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_word_by_word_baseline_scores_a_dictionary_on_held_out_pairs() {
    let gimp = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gimp_de");
    let dir = tmp("baseline");
    std::fs::create_dir_all(&dir).unwrap();
    let dict = dir.join("dictionary.tsv");
    let score = |entries: &str| {
        std::fs::write(&dict, entries).unwrap();
        baseline::word_by_word(dict.to_str().unwrap(), "train.tsv", "test.tsv", &gimp, 3).unwrap()
    };
    // A one-word dictionary leaves the English as it is …
    let none = score("zebra\tZebra\n");
    // … a useful one moves it towards the German references.
    let some = score(
        "image\tAbbild\tBild\nlayer\tSchicht\tEbene\nlayers\tEbenen\nvisible\tsichtbar\tSichtbare\n\
         add\thinzufügen\nborder\tRand\nto\tzu\tzum\nan\tein\teinen\na\tein\teinen\nthe\tder\tdie\tdas\n\
         bottom\tUnten\nat\tan\tbei\ntext\tText\npath\tPfad\nselection\tAuswahl\ncolor\tFarbe\n",
    );
    assert_eq!(none.pairs, some.pairs);
    assert!(
        some.chrf > none.chrf + 1.0,
        "{} vs {}",
        some.chrf,
        none.chrf
    );
    assert!(some.bleu >= none.bleu, "{} vs {}", some.bleu, none.bleu);
    assert_eq!(some.examples.len(), 3);
    // the scores are the metrics' own on the translations shown
    let wbw = {
        let mut w = unidl_data::text::WordByWord::load(&dict).unwrap();
        let train = unidl_data::dataset::ParallelText::open(&gimp.join("train.tsv")).unwrap();
        w.fit_target(train.pairs().map(|(_, t)| t));
        w
    };
    for (source, translation, _) in &some.examples {
        assert_eq!(&wbw.translate(source), translation);
    }

    // a missing dictionary and a malformed line are typed errors naming the file
    let err = baseline::word_by_word("nowhere.tsv", "train.tsv", "test.tsv", &gimp, 0).unwrap_err();
    assert!(err.to_string().contains("nowhere.tsv"), "{err}");
    std::fs::write(&dict, "image\tBild\nlayer\n").unwrap();
    let err = baseline::word_by_word(dict.to_str().unwrap(), "train.tsv", "test.tsv", &gimp, 0)
        .unwrap_err();
    assert!(err.to_string().contains("dictionary.tsv:2"), "{err}");
}
