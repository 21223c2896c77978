//! Video classification: clips `[B, C, T, H, W]` → logits `[B, classes]`;
//! the classification loss, post-processing and metrics.

use burn::tensor::{Tensor as BTensor, TensorData};
use unidl_backend::Device;
use unidl_data::{Input, Sample};
use unidl_tensor::Tensor;

use super::classification::{ClassTargets, check_smoothing, classification_outputs};
use super::{Task, TaskIo};
use crate::error::{Result, TrainError};
use crate::infer::Classification;

/// A model that classifies clips (what [`VideoClassification`] trains).
pub trait VideoClassifier {
    /// # Shapes
    /// clips `[B, C, T, H, W]` → logits `[B, classes]`.
    fn classify_clips(&self, clips: BTensor<5>) -> BTensor<2>;
}

/// Video classification over the [`Input::Video`] named `input` (default `"video"`).
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

/// Stacks clips (frames `T × H × W × C`, all alike) into `[B, C, T, H, W]`.
pub(crate) fn stack_clips(samples: &[Sample], input: &str, device: &Device) -> Result<BTensor<5>> {
    let mut dims: Option<[usize; 4]> = None;
    let mut data = Vec::new();
    for s in samples {
        let frames = match s.inputs.get(input) {
            Some(Input::Video(frames, _)) if !frames.is_empty() => frames,
            _ => {
                return Err(TrainError::Model(format!(
                    "{}: no `{input}` clip with frames",
                    s.source
                )));
            }
        };
        let f0 = &frames[0];
        let d = [f0.channels, frames.len(), f0.height, f0.width];
        if frames
            .iter()
            .any(|f| (f.channels, f.height, f.width) != (d[0], d[2], d[3]))
        {
            return Err(TrainError::Model(format!(
                "{}: frames of different sizes in one clip",
                s.source
            )));
        }
        match dims {
            None => dims = Some(d),
            Some(b) if b != d => {
                return Err(TrainError::Model(format!(
                    "{}: clip is C×T×H×W {d:?}, the batch's is {b:?} (set `frames` and `frame_size`)",
                    s.source
                )));
            }
            _ => {}
        }
        let [c, _, h, w] = d;
        for ch in 0..c {
            for f in frames {
                for y in 0..h {
                    for x in 0..w {
                        data.push(f.data[(y * w + x) * c + ch]);
                    }
                }
            }
        }
    }
    let [c, t, h, w] = dims.ok_or_else(|| TrainError::Model("video batch: no samples".into()))?;
    Ok(BTensor::from_data(
        TensorData::new(data, [samples.len(), c, t, h, w]),
        device,
    ))
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
            clips: stack_clips(samples, &self.input, device)?,
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
