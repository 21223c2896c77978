//! The `unidl` binary end to end on the committed real-MNIST slice: train,
//! eval, infer, summary, and config errors that name file, line and key.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/mnist")
        .canonicalize()
        .unwrap()
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let f = fixtures();
    let text = format!(
        r#"seed = 7
[model]
name = "simple_cnn"
num_classes = 10
[data]
train = "{train}"
val = "{val}"
channels = 1
transforms = [{{ type = "normalize", mean = [0.1307], std = [0.3081] }}]
[optimizer]
optimizer_method = "adam"
base_learningrate = 0.002
[trainer]
epochs = 3
batch_size = 32
output_dir = "run"
{extra}"#,
        train = f.join("train").display(),
        val = f.join("test").display(),
    );
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("run.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn unidl(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unidl"))
        .args(args)
        .env_remove("UNIDL_BACKEND")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn train_eval_infer_on_real_digits() {
    let dir = std::env::temp_dir().join(format!("unidl-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = config(&dir, "");
    let c = cfg.to_str().unwrap();
    let (ok, out) = unidl(&["train", "--config", c]);
    assert!(ok, "{out}");
    assert!(
        out.contains("on back-end `flex`") && out.contains("560 training samples, 140 held-out"),
        "{out}"
    );
    let csv = std::fs::read_to_string(dir.join("run/epochs.csv")).unwrap();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    let acc: f64 = last[3].parse().unwrap();
    assert!(
        acc > 0.8,
        "held-out accuracy after 3 epochs on 560 digits: {acc}\n{csv}"
    );
    for f in [
        "config.toml",
        "epochs.jsonl",
        "steps.csv",
        "steps.jsonl",
        "curves.png",
        "summary.txt",
    ] {
        assert!(dir.join("run").join(f).exists(), "{f} missing");
    }
    let summary = std::fs::read_to_string(dir.join("run/summary.txt")).unwrap();
    assert!(
        summary.contains("[1, 32, 28, 28]") && summary.contains("[1, 10]"),
        "{summary}"
    );
    // a finished run resumed does no more epochs and keeps its records
    let (ok, out) = unidl(&["train", "--config", c, "--resume"]);
    assert!(
        ok && out.contains("resumed at step 54") && !out.contains("epoch   1"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("run/epochs.csv")).unwrap(),
        csv
    );
    let (ok, out) = unidl(&["eval", "--config", c]);
    assert!(ok, "{out}");
    let eval_acc: f64 = out
        .lines()
        .find(|l| l.starts_with("accuracy"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (eval_acc - acc).abs() < 1e-3,
        "eval {eval_acc} vs training record {acc}"
    );
    let digit = fixtures().join("test/7/00004.png");
    let (ok, out) = unidl(&[
        "infer",
        "--config",
        c,
        "--top-k",
        "2",
        digit.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.contains("00004.png")).unwrap();
    assert_eq!(line.matches('(').count(), 2, "{line}");
    assert!(line.contains("00004.png: 7 ("), "the digit is a 7: {line}");
    let (ok, out) = unidl(&["summary", "--config", c]);
    assert!(
        ok && out.contains("conv1") && out.contains("Conv2d") && out.contains("[1, 64, 14, 14]"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("unidl-cli-bad-{}", std::process::id()));
    let cfg = config(&dir, "batch_sise = 3\n");
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("run.toml:17") && out.contains("batch_sise"),
        "{out}"
    );
    let cfg = config(&dir, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("base_learningrate = 0.002", "base_learningrate = -1.0");
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(!ok && out.contains("base_learningrate"), "{out}");
    let cfg = config(&dir, "micro_batches = 0\n");
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(!ok && out.contains("trainer.micro_batches"), "{out}");
    let cfg = config(&dir, "");
    let (ok, out) = unidl(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--backend",
        "cuda",
    ]);
    assert!(!ok && out.contains("feature"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's quick start, as CI runs it: `configs/quickstart.toml` on the
/// real MNIST set prepared by `cargo xtask data mnist` (which `cargo xtask
/// test` runs first) reaches at least 97 % on at least 1,000 held-out digits.
#[test]
fn quickstart_reaches_97_percent_on_held_out_digits() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = std::env::var("UNIDL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/unidl/data")
        });
    assert!(
        data.join("mnist/test").is_dir(),
        "{}: missing; run `cargo xtask data mnist` (cargo xtask test does it first)",
        data.join("mnist").display()
    );
    let dir = std::env::temp_dir().join(format!("unidl-quickstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    let text = std::fs::read_to_string(repo.join("configs/quickstart.toml"))
        .unwrap()
        .replace("output_dir = \"runs/quickstart\"", "output_dir = \"run\"");
    assert!(text.contains("output_dir = \"run\""));
    let cfg = dir.join("configs/quickstart.toml");
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(ok, "{out}");
    let held_out: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(held_out >= 1000, "{out}");
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
    assert!(acc >= 0.97, "held-out accuracy {acc}\n{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[pretrained]`: a torchvision `torch.save` state dict (the reduced
/// ResNet-50 of unidl-vision's parity test) starts a zoo model's training;
/// strict loading refuses a checkpoint with a different classifier and names
/// the keys, lenient loading keeps the fresh classifier and says so.
#[test]
fn training_starts_from_a_torchvision_checkpoint() {
    let dir = std::env::temp_dir().join(format!("unidl-cli-pre-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pth = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/unidl-vision/tests/reference/small/resnet50_w4.pth")
        .canonicalize()
        .unwrap();
    let make = |classes: usize, strict: bool| {
        let cfg = config(&dir, "");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(
                "name = \"simple_cnn\"\nnum_classes = 10",
                &format!(
                    "name = \"resnet\"\ndepth = 50\nwidth = 4\nin_channels = 3\nnum_classes = {classes}\n\
                     [pretrained]\npath = \"{}\"\nstrict = {strict}",
                    pth.display()
                ),
            )
            .replace("channels = 1", "channels = 3")
            .replace(
                "mean = [0.1307], std = [0.3081]",
                "mean = [0.1307, 0.1307, 0.1307], std = [0.3081, 0.3081, 0.3081]",
            )
            .replace("epochs = 3", "epochs = 1");
        std::fs::write(&cfg, text).unwrap();
        cfg
    };
    let cfg = make(10, true);
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.starts_with("pretrained:")).unwrap();
    assert!(
        line.contains("resnet50_w4.pth: 267 loaded") && !line.contains(';'),
        "{line}"
    );

    let cfg = make(4, true);
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(
        !ok && out.contains("[pretrained] path") && out.contains("shape mismatch for fc.weight"),
        "{out}"
    );

    let cfg = make(12, false);
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.starts_with("pretrained:")).unwrap();
    assert!(
        line.contains("265 loaded") && line.contains("shape mismatch for fc.bias"),
        "{line}"
    );

    // fewer classes than the data has: a typed error naming a sample, no panic
    let cfg = make(4, false);
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(
        !ok && out.contains("but the model has 4 classes") && !out.contains("panicked"),
        "{out}"
    );

    // a missing file is named with its key
    let cfg = config(&dir, "");
    let text = std::fs::read_to_string(&cfg).unwrap() + "[pretrained]\npath = \"x.pth\"\n";
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(
        !ok && out.contains("[pretrained] path = x.pth") && out.contains("not found"),
        "{out}"
    );
    // the small CNN has no foreign counterpart to map
    std::fs::write(cfg.parent().unwrap().join("x.pth"), b"not a checkpoint").unwrap();
    let (ok, out) = unidl(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(
        !ok && out.contains("[pretrained] path") && out.contains("no mapping for foreign weights"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
