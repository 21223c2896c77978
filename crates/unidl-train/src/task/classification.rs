//! Image classification: images `[B, C, H, W]` → logits `[B, classes]`;
//! cross-entropy against hard labels, or against soft labels (MixUp/CutMix,
//! label smoothing); post-processing = softmax top-k; metrics = accuracy,
//! top-5, precision/recall/F1.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor as BTensor, TensorData};
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_tensor::Tensor;

use super::{Task, TaskIo, class_labels};
use crate::error::{Result, TrainError};
use crate::eval::Metric;
use crate::infer::Classification;

/// A model that classifies images (what [`ImageClassification`] trains).
pub trait ImageClassifier {
    /// # Shapes
    /// images `[B, C, H, W]` → logits `[B, classes]`.
    fn classify(&self, images: BTensor<4>) -> BTensor<2>;
}

/// Image classification. `label_smoothing` ε mixes every target with the
/// uniform distribution: `(1 - ε)·y + ε/K` (as `torch.nn.CrossEntropyLoss`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageClassification {
    /// Class names by index (post-processing prints them).
    pub class_names: Vec<String>,
    /// Label smoothing ε in [0, 1).
    pub label_smoothing: f64,
}

/// The targets of a classification batch (image, text or video).
#[derive(Debug, Clone)]
pub struct ClassTargets {
    /// Hard labels `[B]`; `None` for unlabelled samples (inference).
    pub labels: Option<BTensor<1, Int>>,
    /// The same labels on the host (checked against the class count).
    pub label_values: Option<Vec<usize>>,
    /// Soft targets `[B, K]` when some sample of the batch has a soft label
    /// (samples without one contribute their one-hot label).
    pub soft: Option<BTensor<2>>,
    /// Where each sample came from, for error messages.
    pub sources: Vec<String>,
}

impl ClassTargets {
    /// Labels (and soft labels) of `samples` on `device`.
    pub fn collate(samples: &[Sample], device: &Device) -> Result<Self> {
        let label_values = class_labels(samples)?;
        Ok(ClassTargets {
            labels: label_values.as_ref().map(|v| label_tensor(v, device)),
            label_values,
            soft: soft_targets(samples, device)?,
            sources: samples.iter().map(|s| s.source.clone()).collect(),
        })
    }

    /// Loss and raw outputs from the model's `logits` `[B, classes]`.
    pub fn loss_and_outputs(&self, logits: BTensor<2>, smoothing: f64) -> Result<(Tensor, Tensor)> {
        unidl_tensor::trace::record("(model)", &logits.dims());
        let loss = classification_loss(
            logits.clone(),
            self.labels.as_ref(),
            self.label_values.as_deref(),
            self.soft.as_ref(),
            &self.sources,
            smoothing,
        )?;
        Ok((Tensor::from_burn(loss)?, Tensor::from_burn(logits)?))
    }
}

/// `post`, `evaluation` and `default_metrics` of a classification task
/// (inside an `impl TaskIo`; the task has `class_names`).
macro_rules! classification_outputs {
    () => {
        fn post(&self) -> crate::infer::Classification {
            crate::infer::Classification {
                class_names: self.class_names.clone(),
            }
        }

        fn evaluation(
            &self,
        ) -> Box<dyn crate::eval::EvaluationTask<Vec<crate::infer::ClassScore>>> {
            Box::new(crate::eval::ClassificationTask)
        }

        fn default_metrics(&self) -> Vec<crate::eval::Metric> {
            super::classification::classification_metrics()
        }
    };
}
pub(crate) use classification_outputs;

/// A collated image-classification batch.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[B, C, H, W]`.
    pub images: BTensor<4>,
    /// Labels.
    pub targets: ClassTargets,
}

/// Cross-entropy against a target distribution per row:
/// `mean_b( -Σ_k t[b,k] · log_softmax(logits)[b,k] )`.
///
/// # Shapes
/// logits `[B, K]`, targets `[B, K]` → `[1]`.
pub fn soft_cross_entropy(logits: BTensor<2>, targets: BTensor<2>) -> BTensor<1> {
    let [b, _] = logits.dims();
    (log_softmax(logits, 1) * targets)
        .sum()
        .neg()
        .div_scalar(b as f64)
}

/// Checks every label against the model's class count; names the sample.
pub(crate) fn check_labels(labels: &[usize], sources: &[String], classes: usize) -> Result<()> {
    match labels.iter().zip(sources).find(|(l, _)| **l >= classes) {
        Some((l, s)) => Err(TrainError::Model(format!(
            "{s}: label {l} but the model has {classes} classes (raise `num_classes`)"
        ))),
        None => Ok(()),
    }
}

/// Soft targets `[B, K]` for a batch where some sample has a soft label.
fn soft_targets(samples: &[Sample], device: &Device) -> Result<Option<BTensor<2>>> {
    let Some(k) = samples
        .iter()
        .find_map(|s| s.targets.soft_label.as_ref().map(Vec::len))
    else {
        return Ok(None);
    };
    let mut data = Vec::with_capacity(samples.len() * k);
    for s in samples {
        match (&s.targets.soft_label, s.targets.label) {
            (Some(v), _) if v.len() == k => data.extend_from_slice(v),
            (Some(v), _) => {
                return Err(TrainError::Model(format!(
                    "{}: soft label over {} classes, the batch has {k}",
                    s.source,
                    v.len()
                )));
            }
            (None, Some(l)) if l < k => {
                data.extend((0..k).map(|c| if c == l { 1.0 } else { 0.0 }));
            }
            (None, l) => {
                return Err(TrainError::Model(format!(
                    "{}: label {l:?} has no place in the batch's {k}-class soft labels",
                    s.source
                )));
            }
        }
    }
    Ok(Some(BTensor::from_data(
        TensorData::new(data, [samples.len(), k]),
        device,
    )))
}

/// Hard labels as `[B]` int64 on `device`.
pub(crate) fn label_tensor(labels: &[usize], device: &Device) -> BTensor<1, Int> {
    let v: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    BTensor::from_data(TensorData::new(v, [labels.len()]), device)
}

/// The classification loss shared by the classification tasks: Burn's
/// cross-entropy for hard labels without smoothing (bit-identical to earlier
/// runs), else [`soft_cross_entropy`] against soft or smoothed targets.
pub(crate) fn classification_loss(
    logits: BTensor<2>,
    labels: Option<&BTensor<1, Int>>,
    label_values: Option<&[usize]>,
    soft: Option<&BTensor<2>>,
    sources: &[String],
    smoothing: f64,
) -> Result<BTensor<1>> {
    let [_, classes] = logits.dims();
    if let Some(v) = label_values {
        check_labels(v, sources, classes)?;
    }
    if let Some(t) = soft {
        let [_, k] = t.dims();
        if k != classes {
            return Err(TrainError::Model(format!(
                "soft labels have {k} classes but the model has {classes} (`num_classes` of the batch transform)"
            )));
        }
        let t = if smoothing > 0.0 {
            t.clone()
                .mul_scalar(1.0 - smoothing)
                .add_scalar(smoothing / classes as f64)
        } else {
            t.clone()
        };
        return Ok(soft_cross_entropy(logits, t));
    }
    let labels = labels.ok_or_else(|| TrainError::Model("training samples need labels".into()))?;
    if smoothing > 0.0 {
        let t = labels
            .clone()
            .one_hot::<2>(classes)
            .float()
            .mul_scalar(1.0 - smoothing)
            .add_scalar(smoothing / classes as f64);
        return Ok(soft_cross_entropy(logits, t));
    }
    let device = logits.device();
    Ok(burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits, labels.clone()))
}

/// Checks a label-smoothing value; names the key.
pub(crate) fn check_smoothing(eps: f64) -> Result<()> {
    if (0.0..1.0).contains(&eps) {
        Ok(())
    } else {
        Err(TrainError::Config {
            key: "task.label_smoothing".into(),
            reason: format!("{eps} is outside [0, 1)"),
        })
    }
}

/// The classification metrics every classification task reports.
pub(crate) fn classification_metrics() -> Vec<Metric> {
    vec![
        Metric::Accuracy,
        Metric::Top5,
        Metric::PrecisionMacro,
        Metric::RecallMacro,
        Metric::F1Macro,
    ]
}

impl TaskIo for ImageClassification {
    type Batch = ImageBatch;
    type Post = Classification;

    fn name(&self) -> &'static str {
        "image_classification"
    }

    fn loss_name(&self) -> &'static str {
        "cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<ImageBatch> {
        check_smoothing(self.label_smoothing)?;
        Ok(ImageBatch {
            images: unidl_data::stack_images(samples, device)?.into_burn()?,
            targets: ClassTargets::collate(samples, device)?,
        })
    }

    classification_outputs!();
}

impl<M: ImageClassifier + Send + Sync + 'static> Task<M> for ImageClassification {
    fn forward(&self, model: &M, batch: &ImageBatch) -> Result<Tensor> {
        let logits = model.classify(batch.images.clone());
        unidl_tensor::trace::record("(model)", &logits.dims());
        Ok(Tensor::from_burn(logits)?)
    }

    fn loss(&self, model: &M, batch: &ImageBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &ImageBatch) -> Result<(Tensor, Tensor)> {
        batch
            .targets
            .loss_and_outputs(model.classify(batch.images.clone()), self.label_smoothing)
    }
}
