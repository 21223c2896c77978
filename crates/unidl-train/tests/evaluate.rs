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
