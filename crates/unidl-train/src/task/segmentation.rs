//! Semantic segmentation as per-pixel classification: images `[B, C, H, W]`
//! → logits `[B, K, H, W]`; label maps painted from the samples' masks;
//! per-pixel cross-entropy that skips `ignore_index` (optionally weighted
//! per class, optionally plus a soft Dice term); post-processing to class
//! maps; mIoU and pixel accuracy.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor as BTensor, TensorData};
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_tensor::Tensor;

use super::{Task, TaskIo};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric};
use crate::eval_tasks::SemanticSegmentationTask;
use crate::outputs::ClassMap;
use crate::postprocess::{SegmentationConfig, SemanticSegmentation};

/// A model that labels every pixel (what [`PixelClassification`] trains).
/// Fallible: a model that cannot take an input (channels, size) says so
/// with [`TrainError::Model`] instead of panicking.
pub trait SemanticSegmenter {
    /// # Shapes
    /// images `[B, C, H, W]` → logits `[B, classes, H, W]` (at the input size).
    fn segment(&self, images: BTensor<4>) -> Result<BTensor<4>>;

    /// The logits for training and any auxiliary logits with the weight of
    /// their loss (DeepLabv3's FCN head: 0.5); the training loss is the
    /// main cross-entropy plus the weighted auxiliary ones. Default: no
    /// auxiliary output.
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `([B, classes, H, W], [(w, [B, classes, H, W])])`.
    #[allow(clippy::type_complexity)]
    fn segment_train(&self, images: BTensor<4>) -> Result<(BTensor<4>, Vec<(f64, BTensor<4>)>)> {
        Ok((self.segment(images)?, Vec::new()))
    }
}

/// Semantic segmentation. The target of a sample is its masks painted in
/// order (later masks win) over `background`, a mask of data class `c`
/// as label `c + class_offset`; pixels labelled `ignore_index` do not count
/// in the loss or the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelClassification {
    /// Number of classes (background included).
    pub num_classes: usize,
    /// Label of pixels no mask covers.
    pub background: u32,
    /// Label excluded from loss and metrics (255 in VOC).
    pub ignore_index: Option<u32>,
    /// Added to a mask's data-set class to give its label (1 when label 0
    /// is the background and the data set's classes start at 0, as the
    /// run layer builds it; 0 when the masks already carry the labels).
    pub class_offset: u32,
    /// Per-label weights of the cross-entropy (`num_classes` of them,
    /// background first): PyTorch's weighted mean `Σ w_y·(−log p_y) / Σ w_y`.
    /// `None`: every label weighs 1.
    pub class_weights: Option<Vec<f32>>,
    /// Weight of the soft Dice loss added to the cross-entropy (0: none);
    /// see [`soft_dice_loss`].
    pub dice_weight: f64,
}

impl PixelClassification {
    /// `num_classes` classes, background 0, ignore index 255, masks'
    /// classes used as labels, unweighted cross-entropy alone.
    pub fn new(num_classes: usize) -> Self {
        PixelClassification {
            num_classes,
            background: 0,
            ignore_index: Some(255),
            class_offset: 0,
            class_weights: None,
            dice_weight: 0.0,
        }
    }

    /// The training loss of one head's logits: the (weighted)
    /// cross-entropy, plus `dice_weight` times the soft Dice loss.
    fn pixel_loss(&self, logits: BTensor<4>, targets: BTensor<3, Int>) -> BTensor<1> {
        let ce = match &self.class_weights {
            Some(w) => {
                weighted_pixel_cross_entropy(logits.clone(), targets.clone(), self.ignore_index, w)
            }
            None => pixel_cross_entropy(logits.clone(), targets.clone(), self.ignore_index),
        };
        if self.dice_weight > 0.0 {
            ce + soft_dice_loss(logits, targets, self.ignore_index).mul_scalar(self.dice_weight)
        } else {
            ce
        }
    }
}

/// A collated segmentation batch.
#[derive(Debug, Clone)]
pub struct PixelBatch {
    /// `[B, C, H, W]`.
    pub images: BTensor<4>,
    /// `[B, H, W]` class per pixel, when the samples have masks.
    pub targets: Option<BTensor<3, Int>>,
    /// Where each sample came from.
    pub sources: Vec<String>,
}

/// The label map of one sample, `height × width`, row-major: `background`
/// where no mask covers, else the last covering mask's class plus
/// `offset`. A mask of another size is an error naming the sample.
pub(crate) fn paint(
    sample: &Sample,
    width: usize,
    height: usize,
    background: u32,
    offset: u32,
) -> Result<Vec<u32>> {
    let mut map = vec![background; width * height];
    for m in &sample.targets.masks {
        if (m.width, m.height) != (width, height) {
            return Err(TrainError::Model(format!(
                "{}: mask {}x{} on an image {width}x{height} (masks follow the image's \
                 transforms; resize predictions to the input size)",
                sample.source, m.width, m.height
            )));
        }
        let label = u32::try_from(m.class)
            .ok()
            .and_then(|c| c.checked_add(offset))
            .ok_or_else(|| {
                TrainError::Model(format!(
                    "{}: mask class {} too large",
                    sample.source, m.class
                ))
            })?;
        for (dst, &v) in map.iter_mut().zip(&m.data) {
            if v != 0 {
                *dst = label;
            }
        }
    }
    Ok(map)
}

impl TaskIo for PixelClassification {
    type Batch = PixelBatch;
    type Post = SemanticSegmentation;

    fn name(&self) -> &'static str {
        "semantic_segmentation"
    }

    fn loss_name(&self) -> &'static str {
        "pixel_cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<PixelBatch> {
        let images: BTensor<4> = unidl_data::stack_images(samples, device)?.into_burn()?;
        let [n, _, h, w] = images.dims();
        let labelled = samples.iter().any(|s| !s.targets.masks.is_empty());
        let targets = if labelled {
            let mut data = Vec::with_capacity(n * h * w);
            for s in samples {
                data.extend(
                    paint(s, w, h, self.background, self.class_offset)?
                        .into_iter()
                        .map(i64::from),
                );
            }
            if let Some(bad) = data
                .iter()
                .find(|&&c| c as usize >= self.num_classes && Some(c as u32) != self.ignore_index)
            {
                return Err(TrainError::Model(format!(
                    "segmentation target class {bad} but `num_classes` is {}",
                    self.num_classes
                )));
            }
            Some(BTensor::from_data(TensorData::new(data, [n, h, w]), device))
        } else {
            None
        };
        Ok(PixelBatch {
            images,
            targets,
            sources: samples.iter().map(|s| s.source.clone()).collect(),
        })
    }

    fn post(&self) -> SemanticSegmentation {
        SemanticSegmentation::new(SegmentationConfig::default())
            .expect("the default segmentation config is valid")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<ClassMap>> {
        Box::new(SemanticSegmentationTask {
            classes: self.num_classes,
            background: self.background,
            ignore_index: self.ignore_index,
            class_offset: self.class_offset,
        })
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::Miou, Metric::PixelAccuracy]
    }
}

/// Mean cross-entropy over the pixels whose target is not `ignore`.
///
/// # Shapes
/// logits `[B, K, H, W]`, targets `[B, H, W]` → `[1]`.
pub fn pixel_cross_entropy(
    logits: BTensor<4>,
    targets: BTensor<3, Int>,
    ignore: Option<u32>,
) -> BTensor<1> {
    let (w, safe) = valid_targets(targets, ignore); // [B, H, W]
    let logp = log_softmax(logits, 1); // [B, K, H, W]
    let picked = logp
        .gather(1, safe.unsqueeze_dim::<4>(1))
        .squeeze_dim::<3>(1); // [B, H, W]
    let count = w.clone().sum().clamp_min(1.0);
    (picked * w).sum().neg() / count
}

/// The pixels that count (target not `ignore`) and the targets with the
/// ignored ones replaced by 0, so they can be gathered.
fn valid_targets(targets: BTensor<3, Int>, ignore: Option<u32>) -> (BTensor<3>, BTensor<3, Int>) {
    let valid = match ignore {
        Some(i) => targets.clone().not_equal_elem(i as i64),
        None => targets.clone().greater_equal_elem(0),
    }; // [B, H, W]
    let safe = targets.mask_fill(valid.clone().bool_not(), 0);
    (valid.float(), safe)
}

/// Cross-entropy weighted per target label, PyTorch's
/// `cross_entropy(weight=w, ignore_index=…)`: `Σ w_y·(−log p_y) / Σ w_y`
/// over the pixels whose target is not `ignore`. Rare classes (thin digit
/// strokes against a background that covers most pixels) get the weight
/// their area does not give them.
///
/// # Shapes
/// logits `[B, K, H, W]`, targets `[B, H, W]`, `weights` `K` values → `[1]`.
///
/// # Panics
/// When `weights` does not have `K` values (the run layer checks it).
pub fn weighted_pixel_cross_entropy(
    logits: BTensor<4>,
    targets: BTensor<3, Int>,
    ignore: Option<u32>,
    weights: &[f32],
) -> BTensor<1> {
    let k = logits.dims()[1];
    assert_eq!(weights.len(), k, "one class weight per logit channel");
    let device = logits.device();
    let (valid, safe) = valid_targets(targets, ignore);
    let table = BTensor::<1>::from_data(TensorData::new(weights.to_vec(), [k]), &device);
    let [b, h, w] = safe.dims();
    let pixel_w = table
        .select(0, safe.clone().reshape([b * h * w]))
        .reshape([b, h, w])
        * valid;
    let logp = log_softmax(logits, 1); // [B, K, H, W]
    let picked = logp
        .gather(1, safe.unsqueeze_dim::<4>(1))
        .squeeze_dim::<3>(1); // [B, H, W]
    let total = pixel_w.clone().sum().clamp_min(f32::MIN_POSITIVE);
    (picked * pixel_w).sum().neg() / total
}

/// Soft Dice loss (Milletari et al. 2016, multi-class as in Sudre et al.
/// 2017 without their weights): per label `k`, over the batch's pixels whose
/// target is not `ignore`, `D_k = (2·Σ p_k·y_k + 1) / (Σ p_k + Σ y_k + 1)`
/// with `p` the softmax and `y` the one-hot target; the loss is
/// `1 − mean_k D_k`. Every label counts equally whatever its area, which
/// is what a per-pixel loss lacks when the background dominates.
///
/// # Shapes
/// logits `[B, K, H, W]`, targets `[B, H, W]` → `[1]`.
pub fn soft_dice_loss(
    logits: BTensor<4>,
    targets: BTensor<3, Int>,
    ignore: Option<u32>,
) -> BTensor<1> {
    let [_, k, _, _] = logits.dims();
    let device = logits.device();
    let (valid, safe) = valid_targets(targets, ignore);
    let valid = valid.unsqueeze_dim::<4>(1); // [B, 1, H, W]
    let labels = BTensor::<1, Int>::arange(0..k as i64, &device).reshape([1, k, 1, 1]);
    let onehot = safe.unsqueeze_dim::<4>(1).equal(labels).float() * valid.clone(); // [B, K, H, W]
    let p = softmax(logits, 1) * valid; // [B, K, H, W]
    let per_class = |t: BTensor<4>| t.swap_dims(0, 1).flatten::<2>(1, 3).sum_dim(1); // [K, 1]
    let inter = per_class(p.clone() * onehot.clone());
    let card = per_class(p) + per_class(onehot);
    let dice = (inter.mul_scalar(2.0) + 1.0) / (card + 1.0); // [K, 1]
    dice.mean().neg() + 1.0
}

impl<M: SemanticSegmenter + Send + Sync + 'static> Task<M> for PixelClassification {
    fn forward(&self, model: &M, batch: &PixelBatch) -> Result<Tensor> {
        Ok(Tensor::from_burn(model.segment(batch.images.clone())?)?)
    }

    fn loss(&self, model: &M, batch: &PixelBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &PixelBatch) -> Result<(Tensor, Tensor)> {
        let (logits, aux) = model.segment_train(batch.images.clone())?;
        unidl_tensor::trace::record("(model)", &logits.dims());
        let targets = batch
            .targets
            .clone()
            .ok_or_else(|| TrainError::Model("segmentation training needs masks".into()))?;
        let [b, k, h, w] = logits.dims();
        if [b, h, w] != targets.dims() || k != self.num_classes {
            return Err(TrainError::Shape {
                what: "segmentation logits".into(),
                expected: format!(
                    "[{}, {}, {}, {}] (classes, then the input size)",
                    targets.dims()[0],
                    self.num_classes,
                    targets.dims()[1],
                    targets.dims()[2]
                ),
                got: vec![b, k, h, w],
            });
        }
        let mut loss = self.pixel_loss(logits.clone(), targets.clone());
        for (weight, extra) in aux {
            if extra.dims() != logits.dims() {
                return Err(TrainError::Shape {
                    what: "auxiliary segmentation logits".into(),
                    expected: format!("{:?} (as the main logits)", logits.dims()),
                    got: extra.dims().to_vec(),
                });
            }
            loss = loss + self.pixel_loss(extra, targets.clone()).mul_scalar(weight);
        }
        Ok((Tensor::from_burn(loss)?, Tensor::from_burn(logits)?))
    }
}
