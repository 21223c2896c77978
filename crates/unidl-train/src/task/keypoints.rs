//! Keypoints of one instance per image, as heatmaps (HRNet) or as
//! regressed coordinates (PFLD): Gaussian heatmap targets with visibility
//! weights and HRNet's weighted MSE, or coordinates normalised by the input
//! size with a visibility-weighted L2 loss; post-processing to keypoints;
//! PCK, NME and COCO keypoint AP.

use burn::tensor::{Tensor as BTensor, TensorData};
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_tensor::Tensor;

use super::{Task, TaskIo};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric};
use crate::eval_tasks::KeypointTask;
use crate::outputs::PredictedKeypoint;
use crate::postprocess::{HeatmapConfig, HeatmapKeypoints, RegressionConfig, RegressionKeypoints};

/// A model that predicts one heatmap per joint (what [`KeypointHeatmaps`]
/// trains). Fallible as the other task traits: an input the model cannot
/// take is an error naming its shape, never a panic.
pub trait HeatmapModel {
    /// # Shapes
    /// images `[B, C, H, W]` → heatmaps `[B, joints, H / stride, W / stride]`.
    fn heatmaps(&self, images: BTensor<4>) -> Result<BTensor<4>>;
}

/// A model that regresses joint coordinates (what [`KeypointRegression`] trains).
pub trait LandmarkModel {
    /// # Shapes
    /// images `[B, C, H, W]` → `[B, 2·joints]`: `x0, y0, x1, y1, …` as
    /// fractions of the input width and height.
    fn landmarks(&self, images: BTensor<4>) -> Result<BTensor<2>>;
}

/// How the keypoint metrics normalise distances.
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointMetrics {
    /// PCK threshold as a fraction of the reference length (default 0.2).
    pub pck_alpha: f64,
    /// Reference length in pixels (default: the instance's first box).
    pub length: Option<f64>,
    /// Joint indices of the two eyes for NME (face landmarks).
    pub eyes: Option<(usize, usize)>,
    /// OKS sigmas of keypoint AP, one per joint (default: COCO's 17; any
    /// other joint count must give its own).
    pub sigmas: Option<Vec<f64>>,
}

impl Default for KeypointMetrics {
    fn default() -> Self {
        KeypointMetrics {
            pck_alpha: 0.2,
            length: None,
            eyes: None,
            sigmas: None,
        }
    }
}

impl KeypointMetrics {
    fn task(&self) -> KeypointTask {
        KeypointTask {
            alpha: self.pck_alpha,
            length: self.length,
            eyes: self.eyes,
            sigmas: self.sigmas.clone(),
        }
    }
}

/// Heatmap keypoints (top-down pose): each visible joint becomes a Gaussian
/// of standard deviation `sigma` (heatmap pixels) centred on its position
/// divided by `stride`, rounded to the nearest heatmap pixel (HRNet's
/// targets, which its quarter-offset decoding assumes).
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointHeatmaps {
    /// Joints per instance.
    pub joints: usize,
    /// Input pixels per heatmap pixel (HRNet: 4).
    pub stride: usize,
    /// Gaussian standard deviation in heatmap pixels (HRNet: 2).
    pub sigma: f64,
    /// Peak refinement of the post-processing.
    pub post: HeatmapConfig,
    /// Metric normalisation.
    pub metrics: KeypointMetrics,
}

impl KeypointHeatmaps {
    /// `joints` joints with HRNet's stride 4 and σ = 2.
    pub fn new(joints: usize) -> Self {
        KeypointHeatmaps {
            joints,
            stride: 4,
            sigma: 2.0,
            post: HeatmapConfig::default(),
            metrics: KeypointMetrics::default(),
        }
    }
}

/// A collated keypoint batch.
#[derive(Debug, Clone)]
pub struct KeypointBatch {
    /// `[B, C, H, W]`.
    pub images: BTensor<4>,
    /// Heatmaps `[B, J, h, w]` or coordinates `[B, 2J]`, when labelled.
    pub targets: Option<TargetTensor>,
    /// `[B, J]`: 1 for a labelled joint, 0 for one to ignore.
    pub weights: Option<BTensor<2>>,
    /// Where each sample came from.
    pub sources: Vec<String>,
}

/// The two kinds of keypoint targets.
#[derive(Debug, Clone)]
pub enum TargetTensor {
    /// `[B, J, h, w]`.
    Heatmaps(BTensor<4>),
    /// `[B, 2J]`, fractions of the input size.
    Coordinates(BTensor<2>),
}

fn joints_of(s: &Sample, joints: usize) -> Result<&[unidl_data::Keypoint]> {
    let k = &s.targets.keypoints;
    if k.len() != joints {
        return Err(TrainError::Model(format!(
            "{}: {} keypoints, the task has {joints} joints",
            s.source,
            k.len()
        )));
    }
    Ok(k)
}

/// HRNet's Gaussian heatmaps and joint weights of one sample.
pub fn gaussian_heatmaps(
    keypoints: &[unidl_data::Keypoint],
    size: [usize; 2],
    stride: usize,
    sigma: f64,
) -> (Vec<f32>, Vec<f32>) {
    let [h, w] = size;
    let mut maps = vec![0.0f32; keypoints.len() * h * w];
    let mut weights = vec![0.0f32; keypoints.len()];
    for (j, k) in keypoints.iter().enumerate() {
        if k.visibility == 0 {
            continue;
        }
        let cx = (k.x as f64 / stride as f64 + 0.5).floor();
        let cy = (k.y as f64 / stride as f64 + 0.5).floor();
        if cx < 0.0 || cy < 0.0 || cx >= w as f64 || cy >= h as f64 {
            continue;
        }
        weights[j] = 1.0;
        let radius = (3.0 * sigma).ceil();
        for y in ((cy - radius).max(0.0) as usize)..=((cy + radius).min(h as f64 - 1.0) as usize) {
            for x in
                ((cx - radius).max(0.0) as usize)..=((cx + radius).min(w as f64 - 1.0) as usize)
            {
                let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                maps[(j * h + y) * w + x] = (-d2 / (2.0 * sigma * sigma)).exp() as f32;
            }
        }
    }
    (maps, weights)
}

impl TaskIo for KeypointHeatmaps {
    type Batch = KeypointBatch;
    type Post = HeatmapKeypoints;

    fn name(&self) -> &'static str {
        "keypoint_heatmaps"
    }

    fn loss_name(&self) -> &'static str {
        "joints_mse"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<KeypointBatch> {
        if self.joints == 0 || self.stride == 0 || self.sigma.is_nan() || self.sigma <= 0.0 {
            return Err(TrainError::Config {
                key: "task.joints/stride/sigma".into(),
                reason: "must be positive".into(),
            });
        }
        let images: BTensor<4> = unidl_data::stack_images(samples, device)?.into_burn()?;
        let [n, _, h, w] = images.dims();
        let size = [h.div_ceil(self.stride), w.div_ceil(self.stride)];
        let labelled = samples.iter().any(|s| !s.targets.keypoints.is_empty());
        let (targets, weights) = if labelled {
            let (mut maps, mut weights) = (Vec::new(), Vec::new());
            for s in samples {
                let (m, wt) =
                    gaussian_heatmaps(joints_of(s, self.joints)?, size, self.stride, self.sigma);
                maps.extend(m);
                weights.extend(wt);
            }
            (
                Some(TargetTensor::Heatmaps(BTensor::from_data(
                    TensorData::new(maps, [n, self.joints, size[0], size[1]]),
                    device,
                ))),
                Some(BTensor::from_data(
                    TensorData::new(weights, [n, self.joints]),
                    device,
                )),
            )
        } else {
            (None, None)
        };
        Ok(KeypointBatch {
            images,
            targets,
            weights,
            sources: samples.iter().map(|s| s.source.clone()).collect(),
        })
    }

    /// The heatmap decoding with this task's stride, so that keypoints
    /// come out in input pixels (unless `post.input_size` says otherwise).
    fn post(&self) -> HeatmapKeypoints {
        let mut config = self.post.clone();
        config.stride.get_or_insert(self.stride);
        HeatmapKeypoints::new(config).expect("a valid heatmap config")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<Vec<PredictedKeypoint>>> {
        Box::new(self.metrics.task())
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::Pck, Metric::Nme]
    }
}

/// HRNet's `JointsMSELoss` with target weights:
/// `0.5 · mean over joints of mean_pixels((w·pred − w·gt)²)`.
///
/// # Shapes
/// heatmaps `[B, J, h, w]`, targets alike, weights `[B, J]` → `[1]`.
pub fn joints_mse(pred: BTensor<4>, target: BTensor<4>, weights: BTensor<2>) -> BTensor<1> {
    let w = weights.unsqueeze_dim::<3>(2).unsqueeze_dim::<4>(3); // [B, J, 1, 1]
    ((pred - target) * w).square().mean().mul_scalar(0.5)
}

/// Loss and raw outputs of a keypoint prediction against its targets; a
/// missing target or a shape mismatch is a typed error.
fn keypoint_step<const D: usize>(
    pred: BTensor<D>,
    target: Option<&BTensor<D>>,
    weights: Option<&BTensor<2>>,
    what: &str,
    layout: &str,
    loss: fn(BTensor<D>, BTensor<D>, BTensor<2>) -> BTensor<1>,
) -> Result<(Tensor, Tensor)> {
    let (Some(t), Some(w)) = (target, weights) else {
        return Err(TrainError::Model(
            "keypoint training needs keypoints".into(),
        ));
    };
    if pred.dims() != t.dims() {
        return Err(TrainError::Shape {
            what: what.into(),
            expected: format!("{:?} {layout}", t.dims()),
            got: pred.dims().to_vec(),
        });
    }
    let l = loss(pred.clone(), t.clone(), w.clone());
    Ok((Tensor::from_burn(l)?, Tensor::from_burn(pred)?))
}

impl<M: HeatmapModel + Send + Sync + 'static> Task<M> for KeypointHeatmaps {
    fn forward(&self, model: &M, batch: &KeypointBatch) -> Result<Tensor> {
        Ok(Tensor::from_burn(model.heatmaps(batch.images.clone())?)?)
    }

    fn loss(&self, model: &M, batch: &KeypointBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &KeypointBatch) -> Result<(Tensor, Tensor)> {
        let target = match &batch.targets {
            Some(TargetTensor::Heatmaps(t)) => Some(t),
            _ => None,
        };
        keypoint_step(
            model.heatmaps(batch.images.clone())?,
            target,
            batch.weights.as_ref(),
            "heatmaps",
            "(joints, input / stride)",
            joints_mse,
        )
    }
}

/// Regressed keypoints (face landmarks): coordinates as fractions of the
/// input size; the loss is the mean squared error over labelled joints.
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointRegression {
    /// Joints per instance.
    pub joints: usize,
    /// Network input `[height, width]` (to turn fractions back into pixels).
    pub input_size: [usize; 2],
    /// Metric normalisation.
    pub metrics: KeypointMetrics,
}

impl TaskIo for KeypointRegression {
    type Batch = KeypointBatch;
    type Post = RegressionKeypoints;

    fn name(&self) -> &'static str {
        "keypoint_regression"
    }

    fn loss_name(&self) -> &'static str {
        "landmark_mse"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<KeypointBatch> {
        if self.joints == 0 || self.input_size.contains(&0) {
            return Err(TrainError::Config {
                key: "task.joints/input_size".into(),
                reason: "must be at least 1".into(),
            });
        }
        let images: BTensor<4> = unidl_data::stack_images(samples, device)?.into_burn()?;
        let [n, _, h, w] = images.dims();
        let labelled = samples.iter().any(|s| !s.targets.keypoints.is_empty());
        let (targets, weights) = if labelled {
            let (mut xy, mut wt) = (Vec::new(), Vec::new());
            for s in samples {
                for k in joints_of(s, self.joints)? {
                    xy.push(k.x / w as f32);
                    xy.push(k.y / h as f32);
                    wt.push(if k.visibility > 0 { 1.0f32 } else { 0.0 });
                }
            }
            (
                Some(TargetTensor::Coordinates(BTensor::from_data(
                    TensorData::new(xy, [n, 2 * self.joints]),
                    device,
                ))),
                Some(BTensor::from_data(
                    TensorData::new(wt, [n, self.joints]),
                    device,
                )),
            )
        } else {
            (None, None)
        };
        Ok(KeypointBatch {
            images,
            targets,
            weights,
            sources: samples.iter().map(|s| s.source.clone()).collect(),
        })
    }

    fn post(&self) -> RegressionKeypoints {
        RegressionKeypoints::new(RegressionConfig {
            normalized: true,
            input_size: Some(self.input_size),
        })
        .expect("input_size checked in collate")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<Vec<PredictedKeypoint>>> {
        Box::new(self.metrics.task())
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::Nme, Metric::Pck]
    }
}

/// Mean squared error of labelled joints: `Σ w·((x−x̂)² + (y−ŷ)²) / Σ w`.
///
/// # Shapes
/// pred `[B, 2J]`, target `[B, 2J]`, weights `[B, J]` → `[1]`.
pub fn landmark_mse(pred: BTensor<2>, target: BTensor<2>, weights: BTensor<2>) -> BTensor<1> {
    let [b, two_j] = pred.dims();
    let d = (pred - target)
        .square()
        .reshape([b, two_j / 2, 2])
        .sum_dim(2); // [B, J, 1]
    let w = weights.unsqueeze_dim::<3>(2);
    let count = w.clone().sum().clamp_min(1.0);
    (d * w).sum() / count
}

impl<M: LandmarkModel + Send + Sync + 'static> Task<M> for KeypointRegression {
    fn forward(&self, model: &M, batch: &KeypointBatch) -> Result<Tensor> {
        Ok(Tensor::from_burn(model.landmarks(batch.images.clone())?)?)
    }

    fn loss(&self, model: &M, batch: &KeypointBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &KeypointBatch) -> Result<(Tensor, Tensor)> {
        let target = match &batch.targets {
            Some(TargetTensor::Coordinates(t)) => Some(t),
            _ => None,
        };
        keypoint_step(
            model.landmarks(batch.images.clone())?,
            target,
            batch.weights.as_ref(),
            "landmarks",
            "(2 × joints)",
            landmark_mse,
        )
    }
}
