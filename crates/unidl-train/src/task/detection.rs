//! Object detection and instance segmentation. Detectors compute their own
//! training losses (anchor matching, assigners and loss terms differ per
//! architecture, as in torchvision's detection models), so the task
//! collates images and per-image targets of any count, sums the loss terms
//! the model returns, and post-processes its detections; metrics are COCO
//! box or mask AP.

use burn::tensor::{Int, Tensor as BTensor, TensorData};
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_tensor::Tensor;

use super::{Task, TaskIo};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric};
use crate::eval_tasks::{DetectionTask, InstanceSegmentationTask};
use crate::outputs::{Detection, InstanceMask};
use crate::postprocess::{
    BoxCoding, BoxFormat, DetectionConfig, DetectionPost, InstanceConfig, InstanceSegmentation,
};

/// The ground truth of one image: boxes `x0, y0, x1, y1` in input pixels,
/// their classes, and (instance segmentation) one `height × width` 0/1 mask
/// per box. Crowd boxes are left out (they are ignored in training, as in
/// torchvision's references; the metrics still see them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectTargets {
    /// Boxes.
    pub boxes: Vec<[f32; 4]>,
    /// Class of each box.
    pub classes: Vec<usize>,
    /// One mask per box (empty for detection).
    pub masks: Vec<Vec<u8>>,
    /// `[height, width]` of the image (and of every mask).
    pub size: [usize; 2],
}

impl ObjectTargets {
    /// Boxes `[n, 4]` and classes `[n]` on `device`; `None` for an image without boxes.
    pub fn tensors(&self, device: &Device) -> Option<(BTensor<2>, BTensor<1, Int>)> {
        if self.boxes.is_empty() {
            return None;
        }
        let n = self.boxes.len();
        let b: Vec<f32> = self.boxes.iter().flatten().copied().collect();
        let c: Vec<i64> = self.classes.iter().map(|&c| c as i64).collect();
        Some((
            BTensor::from_data(TensorData::new(b, [n, 4]), device),
            BTensor::from_data(TensorData::new(c, [n]), device),
        ))
    }
}

/// A collated detection batch.
#[derive(Debug, Clone)]
pub struct ObjectBatch {
    /// `[B, C, H, W]`.
    pub images: BTensor<4>,
    /// Per image, its targets (empty vectors for unlabelled images).
    pub targets: Vec<ObjectTargets>,
    /// Where each sample came from.
    pub sources: Vec<String>,
}

/// A detector (what [`ObjectDetection`] trains). Both methods are
/// fallible: a detector checks its inputs and targets (class indices, box
/// shapes, image sizes) and reports what it refuses as an error
/// (typically [`TrainError::Model`] naming the image), never a panic.
pub trait Detector {
    /// Named scalar loss terms (`[1]` each) for a batch with its targets
    /// (torchvision's train-mode `dict` of losses).
    fn detection_losses(
        &self,
        images: BTensor<4>,
        targets: &[ObjectTargets],
    ) -> Result<Vec<(String, BTensor<1>)>>;

    /// Detections for post-processing.
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `[B, N, 4 + C]` decoded boxes (`x0, y0, x1, y1`
    /// in input pixels) and per-class scores (probabilities).
    fn detect(&self, images: BTensor<4>) -> Result<BTensor<3>>;
}

/// An instance segmenter (what [`InstanceSegmentationTraining`] trains).
/// Fallible as [`Detector`] is: what the model refuses (a class index, a
/// mask of the wrong size, a model built without a mask branch) is an
/// error naming it, never a panic.
pub trait InstanceSegmenter {
    /// Named scalar loss terms for a batch with its targets (masks included).
    fn instance_losses(
        &self,
        images: BTensor<4>,
        targets: &[ObjectTargets],
    ) -> Result<Vec<(String, BTensor<1>)>>;

    /// Instances for post-processing.
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `[B, N, 6 + mh·mw]`: box (input pixels),
    /// score, class, then the mask logits on an `mh × mw` grid over the box;
    /// padded with all-zero rows.
    fn segment_instances(&self, images: BTensor<4>) -> Result<BTensor<3>>;
}

/// Collates images and object targets; `with_masks` requires one mask per
/// box (linked through `mask_boxes`, or in box order when they are parallel).
fn collate_objects(samples: &[Sample], with_masks: bool, device: &Device) -> Result<ObjectBatch> {
    let images: BTensor<4> = unidl_data::stack_images(samples, device)?.into_burn()?;
    let [_, _, h, w] = images.dims();
    let mut targets = Vec::with_capacity(samples.len());
    for s in samples {
        let t = &s.targets;
        let mut o = ObjectTargets {
            size: [h, w],
            ..ObjectTargets::default()
        };
        for (i, bx) in t.boxes.iter().enumerate() {
            if t.crowd.get(i).copied().unwrap_or(false) {
                continue;
            }
            if !(bx.x1 > bx.x0 && bx.y1 > bx.y0) {
                return Err(TrainError::Model(format!(
                    "{}: box {i} [{}, {}, {}, {}] has no area",
                    s.source, bx.x0, bx.y0, bx.x1, bx.y1
                )));
            }
            o.boxes.push([bx.x0, bx.y0, bx.x1, bx.y1]);
            o.classes.push(bx.class);
            if with_masks {
                let j = if t.mask_boxes.is_empty() {
                    (t.masks.len() == t.boxes.len()).then_some(i)
                } else {
                    t.mask_boxes.iter().position(|&k| k == i)
                };
                let m = j.and_then(|j| t.masks.get(j)).ok_or_else(|| {
                    TrainError::Model(format!("{}: box {i} has no mask", s.source))
                })?;
                if (m.width, m.height) != (w, h) {
                    return Err(TrainError::Model(format!(
                        "{}: mask {}x{} on an image {w}x{h}",
                        s.source, m.width, m.height
                    )));
                }
                o.masks.push(m.data.clone());
            }
        }
        targets.push(o);
    }
    Ok(ObjectBatch {
        images,
        targets,
        sources: samples.iter().map(|s| s.source.clone()).collect(),
    })
}

/// Sums named loss terms into one scalar; a model that returns none is an error.
pub fn sum_losses(terms: Vec<(String, BTensor<1>)>) -> Result<BTensor<1>> {
    let mut it = terms.into_iter();
    let (_, first) = it
        .next()
        .ok_or_else(|| TrainError::Model("the model returned no loss terms".into()))?;
    Ok(it.fold(first, |acc, (_, t)| acc + t))
}

/// Object detection: boxes and classes, any number per image.
#[derive(Debug, Clone)]
pub struct ObjectDetection {
    /// Class names by index.
    pub class_names: Vec<String>,
    /// How [`Detector::detect`]'s outputs are decoded (default: decoded
    /// boxes with per-class probabilities).
    pub post: DetectionConfig,
}

impl Default for ObjectDetection {
    fn default() -> Self {
        ObjectDetection {
            class_names: Vec::new(),
            post: DetectionConfig::new(BoxCoding::Decoded {
                format: BoxFormat::default(),
                objectness: false,
            }),
        }
    }
}

impl TaskIo for ObjectDetection {
    type Batch = ObjectBatch;
    type Post = DetectionPost;

    fn name(&self) -> &'static str {
        "object_detection"
    }

    fn loss_name(&self) -> &'static str {
        "sum_of_model_losses"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<ObjectBatch> {
        self.post.validate()?;
        collate_objects(samples, false, device)
    }

    fn post(&self) -> DetectionPost {
        DetectionPost::new(self.post.clone()).expect("validated in collate")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<Vec<Detection>>> {
        Box::new(DetectionTask)
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::Map, Metric::Map50, Metric::Map75]
    }
}

impl<M: Detector + Send + Sync + 'static> Task<M> for ObjectDetection {
    fn forward(&self, model: &M, batch: &ObjectBatch) -> Result<Tensor> {
        Ok(Tensor::from_burn(model.detect(batch.images.clone())?)?)
    }

    fn loss(&self, model: &M, batch: &ObjectBatch) -> Result<Tensor> {
        let terms = model.detection_losses(batch.images.clone(), &batch.targets)?;
        Ok(Tensor::from_burn(sum_losses(terms)?)?)
    }
}

/// Instance segmentation: boxes, classes and a mask per instance.
#[derive(Debug, Clone)]
pub struct InstanceSegmentationTraining {
    /// Class names by index.
    pub class_names: Vec<String>,
    /// Mask grid and threshold of [`InstanceSegmenter::segment_instances`]' outputs.
    pub post: InstanceConfig,
}

impl TaskIo for InstanceSegmentationTraining {
    type Batch = ObjectBatch;
    type Post = InstanceSegmentation;

    fn name(&self) -> &'static str {
        "instance_segmentation"
    }

    fn loss_name(&self) -> &'static str {
        "sum_of_model_losses"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<ObjectBatch> {
        InstanceSegmentation::new(self.post.clone())?;
        collate_objects(samples, true, device)
    }

    fn post(&self) -> InstanceSegmentation {
        InstanceSegmentation::new(self.post.clone()).expect("validated in collate")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<Vec<InstanceMask>>> {
        Box::new(InstanceSegmentationTask)
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![
            Metric::MaskMap,
            Metric::MaskMap50,
            Metric::MaskMap75,
            Metric::Map50,
        ]
    }
}

impl<M: InstanceSegmenter + Send + Sync + 'static> Task<M> for InstanceSegmentationTraining {
    fn forward(&self, model: &M, batch: &ObjectBatch) -> Result<Tensor> {
        Ok(Tensor::from_burn(
            model.segment_instances(batch.images.clone())?,
        )?)
    }

    fn loss(&self, model: &M, batch: &ObjectBatch) -> Result<Tensor> {
        let terms = model.instance_losses(batch.images.clone(), &batch.targets)?;
        Ok(Tensor::from_burn(sum_losses(terms)?)?)
    }
}
