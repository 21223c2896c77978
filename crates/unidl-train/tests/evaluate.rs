//! The task evaluators (B.6): `construct_evalvater_for` + `evalvate` on the
//! committed COCO composite (real photos, exact boxes), with predictors that
//! reproduce or distort the ground truth.

use std::path::{Path, PathBuf};

use burn::nn::{Linear, LinearConfig};
use unidl_backend::Device;
use unidl_data::transform::Compose;
use unidl_data::{DatasetParams, PreparedDataset, Sample, construct_dataset};
use unidl_tensor::Tensor;
use unidl_train::postprocess::{BoxCoding, BoxFormat, DetectionConfig, DetectionPost};
use unidl_train::*;

fn shapes() -> PreparedDataset {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/shapes_coco");
    construct_dataset(
        &root.join("annotations/test.json"),
        &DatasetParams {
            images_dir: Some(PathBuf::from("../images/test")),
            ..DatasetParams::default()
        },
    )
    .unwrap()
}

/// Emits every ground-truth box of each sample as an already-decoded row
/// `[x0, y0, x1, y1, scores…]`, shifted right by `shift` × its width.
struct Oracle {
    shift: f32,
    classes: usize,
}

impl Predictor<Linear> for Oracle {
    fn outputs(&self, _m: &Linear, samples: &[Sample], device: &Device) -> Result<Tensor> {
        let c = self.classes;
        let n = samples
            .iter()
            .map(|s| s.targets.boxes.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut v = vec![0f32; samples.len() * n * (4 + c)];
        for (i, s) in samples.iter().enumerate() {
            for (j, b) in s.targets.boxes.iter().enumerate() {
                let row = &mut v[(i * n + j) * (4 + c)..][..4 + c];
                let dx = self.shift * (b.x1 - b.x0);
                row[..4].copy_from_slice(&[b.x0 + dx, b.y0, b.x1 + dx, b.y1]);
                row[4 + b.class] = 0.9 - 0.01 * j as f32;
            }
        }
        Ok(Tensor::from_f32(v, &[samples.len(), n, 4 + c], device)?)
    }
}

fn evaluate(shift: f32, metrics: Vec<Metric>) -> Result<Scores> {
    evaluate_into(shift, metrics, None)
}

fn evaluate_into(shift: f32, metrics: Vec<Metric>, output_dir: Option<PathBuf>) -> Result<Scores> {
    let dev = Device::flex();
    let post = DetectionPost::new(DetectionConfig {
        clip: false,
        ..DetectionConfig::new(BoxCoding::Decoded {
            format: BoxFormat::Xyxy,
            objectness: false,
        })
    })?;
    let infer = construct_inference(
        LinearConfig::new(1, 1).init(&dev),
        Oracle {
            shift,
            classes: shapes().classes().len(),
        },
        Compose(vec![]),
        post,
        InferOptions {
            batch_size: 3,
            score_threshold: 0.05,
            ..InferOptions::default()
        },
        &dev,
    )?;
    let ev = construct_evalvater_for(
        &infer,
        EvalConfig {
            default_dataset: Some(shapes()),
            eval_metric: metrics,
            output_dir,
        },
        DetectionTask,
    )?;
    ev.evalvate(None, None)
}

#[test]
fn detection_evaluator_scores_a_perfect_and_a_shifted_detector() {
    let all = vec![Metric::Map, Metric::Map50, Metric::Map75, Metric::VocMap];
    let perfect = evaluate(0.0, all.clone()).unwrap();
    for (k, v) in &perfect {
        assert!((v - 1.0).abs() < 1e-9, "{k} = {v}");
    }
    // Shifted by 30 % of the width: IoU = 0.7/1.3 ≈ 0.54 — a hit at 0.5, a miss at 0.75.
    let shifted = evaluate(0.3, all).unwrap();
    assert!((shifted["map_50"] - 1.0).abs() < 1e-9, "{shifted:?}");
    assert!(shifted["map_75"] < 1e-9, "{shifted:?}");
    assert!(shifted["map"] > 0.0 && shifted["map"] < 0.2, "{shifted:?}");
}

#[test]
fn evaluators_refuse_metrics_of_other_tasks() {
    let e = evaluate(0.0, vec![Metric::Accuracy]).unwrap_err();
    assert!(
        matches!(&e, TrainError::Config { key, .. } if key == "eval_metric"),
        "{e}"
    );
    let e = evaluate(0.0, vec![]).unwrap_err();
    assert!(matches!(&e, TrainError::Config { key, .. } if key == "eval_metric"));
}

#[test]
fn evalvate_records_every_prediction_and_the_scores() {
    let dir = std::env::temp_dir().join(format!("unidl-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scores = evaluate_into(0.25, vec![Metric::Map, Metric::Map50], Some(dir.clone())).unwrap();
    let ds = shapes();
    let text = std::fs::read_to_string(dir.join("predictions.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), ds.len(), "one line per sample");
    for (i, line) in lines.iter().enumerate() {
        let sample = unidl_data::get_sample(&ds, i).unwrap();
        assert_eq!(line["index"], i);
        assert_eq!(line["source"], sample.source.as_str());
        // the oracle's boxes, shifted right by a quarter of their width
        let dets = line["output"].as_array().unwrap();
        assert_eq!(dets.len(), sample.targets.boxes.len(), "{line}");
        let b = &sample.targets.boxes[0];
        let x0 = dets[0]["x0"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (x0 - (b.x0 + 0.25 * (b.x1 - b.x0)) as f64).abs() < 1e-3,
            "{} vs {:?}",
            dets[0],
            b
        );
    }
    let recorded: Scores =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scores.json")).unwrap()).unwrap();
    assert_eq!(recorded, scores);
    assert!(!dir.join("predictions.jsonl.partial").exists());
    // An output folder that cannot be created is a typed error naming it.
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let e = evaluate_into(0.0, vec![Metric::Map], Some(blocker.join("eval"))).unwrap_err();
    assert!(e.to_string().contains("file/eval"), "{e}");
}
