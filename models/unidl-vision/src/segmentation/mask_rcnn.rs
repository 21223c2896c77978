//! # Mask R-CNN (He et al., 2017, "Mask R-CNN", arXiv:1703.06870)
//!
//! torchvision 0.24.0's `maskrcnn_resnet50_fpn` (v1): the
//! [`FasterRcnn`] of the detection zoo (ResNet-50-FPN body, RPN, box
//! branch) with the mask branch in its RoI heads — boxes pooled 14×14 from
//! P2–P5, `MaskRCNNHeads` (four 3×3 convolutions of 256 with ReLU),
//! `MaskRCNNPredictor` (2×2 stride-2 transposed convolution, ReLU, 1×1 to
//! one 28×28 logit map per class), trained with `loss_mask` (binary cross
//! entropy of the positive proposals' own-class maps against the
//! ground-truth masks cropped by RoI Align). As in torchvision, a Mask
//! R-CNN *is* a Faster R-CNN whose RoI heads carry the mask branch:
//! [`MaskRcnn`] names the same type, built by [`MaskRcnnConfig`] (the keys
//! of [`FasterRcnnConfig`] with `[mask_head]` always present).
//!
//! In evaluation each detection gets the 28×28 map of its class
//! ([`MaskRcnn::predict_instances`]); the task layer's
//! [`InstanceSegmentation`](unidl_train::InstanceSegmentation) post-process
//! pastes it into the image as torchvision's `paste_masks_in_image` does.
//!
//! Parameter names are torchvision's state-dict keys (the mask head's
//! convolutions `roi_heads.mask_head.{i}.0`; the published COCO checkpoint's
//! older `mask_fcn{i+1}` spelling is read too).

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_train::ObjectTargets;
use unidl_train::outputs::Detection;

use crate::detection::faster_rcnn::{MASK_SIZE, MaskHeadConfig, Mode};
use crate::detection::{FasterRcnn, FasterRcnnConfig};
use crate::error::{Result, VisionError};

/// Mask R-CNN: a [`FasterRcnn`] with the mask branch (torchvision's
/// `MaskRCNN` subclasses `FasterRCNN` the same way).
pub type MaskRcnn = FasterRcnn;

/// Mask R-CNN configuration: every key of [`FasterRcnnConfig`] (torchvision's
/// defaults: 91 classes, ResNet-50-FPN, …) and `[mask_head]`
/// ([`MaskHeadConfig`]), built with torchvision's defaults when absent.
///
/// ```toml
/// name = "mask_rcnn"
/// num_classes = 91
/// [backbone]
/// depth = 50
/// [mask_head]
/// layers = [256, 256, 256, 256]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "FasterRcnnConfig", into = "FasterRcnnConfig")]
pub struct MaskRcnnConfig(pub FasterRcnnConfig);

impl From<FasterRcnnConfig> for MaskRcnnConfig {
    fn from(mut config: FasterRcnnConfig) -> Self {
        config.mask_head.get_or_insert_with(MaskHeadConfig::default);
        MaskRcnnConfig(config)
    }
}

impl From<MaskRcnnConfig> for FasterRcnnConfig {
    fn from(config: MaskRcnnConfig) -> Self {
        config.0
    }
}

impl Default for MaskRcnnConfig {
    /// `maskrcnn_resnet50_fpn` (44,401,393 parameters).
    fn default() -> Self {
        FasterRcnnConfig::default().into()
    }
}

impl MaskRcnnConfig {
    /// `maskrcnn_resnet50_fpn` with `num_classes` classes (background
    /// included), torchvision's other defaults.
    pub fn new(num_classes: usize) -> Self {
        FasterRcnnConfig::new(num_classes).into()
    }

    /// Builds the model with torchvision's initialisation (mask head and
    /// predictor: Kaiming normal, fan-out, biases 0). Invalid values are
    /// [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<MaskRcnn> {
        let mut config = self.0.clone();
        config.mask_head.get_or_insert_with(MaskHeadConfig::default);
        config.init(device)
    }
}

/// One detected instance: the detection (box in input pixels, class,
/// score) and the 28×28 mask logits of its class over the box.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePrediction {
    /// Box, class (`label − 1`) and score.
    pub detection: Detection,
    /// Logits, row-major `28 × 28`, over the box (sigmoid: torchvision's
    /// `masks` before pasting).
    pub mask_logits: Vec<f32>,
}

impl FasterRcnn {
    /// Mask R-CNN's eval-mode call: the detections of
    /// [`predict`](FasterRcnn::predict), each with the mask logits of its
    /// class on the boxes the box branch kept (torchvision's
    /// `maskrcnn_inference` before `paste_masks_in_image`).
    ///
    /// A model without a mask branch is [`VisionError::Config`].
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `B` lists of instances.
    pub fn predict_instances(&self, images: Tensor<4>) -> Result<Vec<Vec<InstancePrediction>>> {
        let (head, predictor, pool) = self.mask_branch().ok_or_else(|| VisionError::Config {
            key: "mask_head".into(),
            reason: "this model has no mask branch (build it with MaskRcnnConfig)".into(),
        })?;
        let out = self.forward(images)?;
        let proposals = self.proposals(&out, Mode::Eval)?;
        let b = proposals.len();
        if proposals.iter().all(Vec::is_empty) {
            return Ok(vec![Vec::new(); b]);
        }
        let (logits, regression) = self.box_outputs(&out, &proposals)?;
        let kept = self.kept_detections(&out, &proposals, logits, regression)?;
        if kept.iter().all(Vec::is_empty) {
            return Ok(vec![Vec::new(); b]);
        }
        let boxes: Vec<Vec<[f32; 4]>> = kept
            .iter()
            .map(|k| k.iter().map(|d| d.0).collect())
            .collect();
        let pooled = pool.forward_host(&out.features, &boxes, &vec![out.size.resized; b])?;
        let labels: Vec<usize> = kept.iter().flatten().map(|d| d.2).collect();
        let maps = crate::detection::faster_rcnn::select_class(
            crate::detection::faster_rcnn::mask_logits(head, predictor, pooled),
            &labels,
        );
        let maps = crate::detection::layout::host_values(&maps, "MaskRcnn", "mask logits")?;
        let area = MASK_SIZE * MASK_SIZE;
        let mut chunks = maps.chunks(area);
        Ok(kept
            .into_iter()
            .map(|k| {
                k.into_iter()
                    .map(|(bx, score, label)| {
                        let [x0, y0, x1, y1] = out.size.to_original(bx);
                        InstancePrediction {
                            detection: Detection {
                                x0,
                                y0,
                                x1,
                                y1,
                                class: label - 1,
                                score,
                            },
                            mask_logits: chunks.next().map(<[f32]>::to_vec).unwrap_or_default(),
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

fn model_error(e: VisionError) -> unidl_train::TrainError {
    unidl_train::TrainError::Model(e.to_string())
}

impl unidl_train::InstanceSegmenter for FasterRcnn {
    /// torchvision's train-mode loss dict: `loss_classifier`,
    /// `loss_box_reg`, `loss_mask`, `loss_objectness`, `loss_rpn_box_reg`.
    /// A model without a mask branch is an error.
    fn instance_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> unidl_train::Result<Vec<(String, Tensor<1>)>> {
        if self.mask_branch().is_none() {
            return Err(unidl_train::TrainError::Model(
                "FasterRcnn: no mask branch, so no instance segmentation (build a MaskRcnnConfig)"
                    .into(),
            ));
        }
        Ok(self
            .forward_losses(images, targets)
            .map_err(model_error)?
            .named())
    }

    /// One row per instance: box (input pixels), score, class, then the
    /// 28×28 mask logits; padded with all-zero rows.
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `[B, max(1, N_max), 6 + 784]`.
    fn segment_instances(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<3>> {
        let device = images.device();
        let all = self.predict_instances(images).map_err(model_error)?;
        let b = all.len();
        let n = all.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let width = 6 + MASK_SIZE * MASK_SIZE;
        let mut values = vec![0.0f32; b * n * width];
        for (i, instances) in all.iter().enumerate() {
            for (j, inst) in instances.iter().enumerate() {
                let row = &mut values[(i * n + j) * width..(i * n + j + 1) * width];
                let d = &inst.detection;
                row[..6].copy_from_slice(&[d.x0, d.y0, d.x1, d.y1, d.score, d.class as f32]);
                row[6..].copy_from_slice(&inst.mask_logits);
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(values, [b, n, width]),
            &device,
        ))
    }
}
