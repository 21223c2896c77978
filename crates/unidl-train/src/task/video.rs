//! Video classification: clips `[B, C, T, H, W]` → logits `[B, classes]`;
//! the classification loss, post-processing and metrics.

use burn::tensor::Tensor as BTensor;
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_tensor::Tensor;

use super::classification::{ClassTargets, check_smoothing, classification_outputs};
use super::{Task, TaskIo};
use crate::error::Result;
use crate::infer::Classification;

/// A model that classifies clips (what [`VideoClassification`] trains).
pub trait VideoClassifier {
    /// # Shapes
    /// clips `[B, C, T, H, W]` → logits `[B, classes]`.
    fn classify_clips(&self, clips: BTensor<5>) -> BTensor<2>;
}

/// Video classification over the [`Input::Video`](unidl_data::Input::Video) named `input` (default `"video"`).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoClassification {
    /// Class names by index.
    pub class_names: Vec<String>,
    /// Name of the video input.
    pub input: String,
    /// Label smoothing ε in [0, 1).
    pub label_smoothing: f64,
}

impl Default for VideoClassification {
    fn default() -> Self {
        VideoClassification {
            class_names: Vec::new(),
            input: "video".into(),
            label_smoothing: 0.0,
        }
    }
}

/// A collated batch of clips.
#[derive(Debug, Clone)]
pub struct ClipBatch {
    /// `[B, C, T, H, W]`.
    pub clips: BTensor<5>,
    /// Labels.
    pub targets: ClassTargets,
}

impl TaskIo for VideoClassification {
    type Batch = ClipBatch;
    type Post = Classification;

    fn name(&self) -> &'static str {
        "video_classification"
    }

    fn loss_name(&self) -> &'static str {
        "cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<ClipBatch> {
        check_smoothing(self.label_smoothing)?;
        Ok(ClipBatch {
            clips: unidl_data::stack_clips(samples, &self.input, device)?.into_burn()?,
            targets: ClassTargets::collate(samples, device)?,
        })
    }

    classification_outputs!();
}

impl<M: VideoClassifier + Send + Sync + 'static> Task<M> for VideoClassification {
    fn forward(&self, model: &M, batch: &ClipBatch) -> Result<Tensor> {
        Ok(Tensor::from_burn(
            model.classify_clips(batch.clips.clone()),
        )?)
    }

    fn loss(&self, model: &M, batch: &ClipBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &ClipBatch) -> Result<(Tensor, Tensor)> {
        batch.targets.loss_and_outputs(
            model.classify_clips(batch.clips.clone()),
            self.label_smoothing,
        )
    }
}
