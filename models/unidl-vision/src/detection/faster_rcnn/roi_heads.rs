//! The box branch of torchvision 0.24.0's `RoIHeads`
//! (`models.detection.roi_heads`, `faster_rcnn.TwoMLPHead`,
//! `FastRCNNPredictor`): proposals pooled with
//! [`MultiScaleRoiAlign`](crate::detection::MultiScaleRoiAlign) (7×7,
//! sampling ratio 2, levels P2–P5), two fully connected layers with ReLU,
//! class logits and per-class box deltas; the training samples
//! (`select_training_samples`), `fastrcnn_loss` and
//! `postprocess_detections`.

use burn::module::Module;
use burn::tensor::activation::{log_softmax, relu, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_nn::{Linear, LinearConfig};
use unidl_train::postprocess::batched_nms;

use super::mask::{MaskRcnnHeads, MaskRcnnPredictor};
use super::rpn::smooth_l1_sum;
use crate::detection::boxes::{
    BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, BoxCoder, Matcher, box_iou, clip_box,
};
use crate::detection::sampler::BalancedSampler;
use crate::error::Result;

/// torchvision's `TwoMLPHead`: flatten, `fc6` + ReLU, `fc7` + ReLU.
#[derive(Module, Debug)]
pub struct TwoMlpHead {
    /// `D·7·7 → representation`.
    pub fc6: Linear,
    /// `representation → representation`.
    pub fc7: Linear,
}

/// torchvision's `FastRCNNPredictor`: class logits and per-class deltas.
#[derive(Module, Debug)]
pub struct FastRcnnPredictor {
    /// `representation → C` (C includes the background class 0).
    pub cls_score: Linear,
    /// `representation → 4·C`.
    pub bbox_pred: Linear,
}

/// The learnt part of the box branch (torchvision `roi_heads`), and of the
/// mask branch in a Mask R-CNN.
#[derive(Module, Debug)]
pub struct RoiHeads {
    /// The two fully connected layers.
    pub box_head: TwoMlpHead,
    /// Logits and deltas.
    pub box_predictor: FastRcnnPredictor,
    /// Mask R-CNN's mask head (`MaskRCNNHeads`), absent in Faster R-CNN.
    pub mask_head: Option<MaskRcnnHeads>,
    /// Mask R-CNN's mask predictor (`MaskRCNNPredictor`).
    pub mask_predictor: Option<MaskRcnnPredictor>,
}

impl RoiHeads {
    /// Layers over pooled features of `in_features` (`D·7·7`) values, a
    /// representation of `representation` and `num_classes` classes
    /// (background included), initialised as PyTorch's `nn.Linear`.
    pub fn new(
        in_features: usize,
        representation: usize,
        num_classes: usize,
        device: &Device,
    ) -> Self {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        RoiHeads {
            box_head: TwoMlpHead {
                fc6: linear(in_features, representation),
                fc7: linear(representation, representation),
            },
            box_predictor: FastRcnnPredictor {
                cls_score: linear(representation, num_classes),
                bbox_pred: linear(representation, 4 * num_classes),
            },
            mask_head: None,
            mask_predictor: None,
        }
    }

    /// Class logits and box deltas of pooled proposals.
    ///
    /// # Shapes
    /// `[R, D, h, w]` → `([R, C], [R, 4·C])`.
    pub fn forward(&self, pooled: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let [r, d, h, w] = pooled.dims();
        let x = pooled.reshape([r, d * h * w]); // [R, D·h·w]
        let x = relu(self.box_head.fc6.forward(x)); // [R, rep]
        let x = relu(self.box_head.fc7.forward(x)); // [R, rep]
        (
            self.box_predictor.cls_score.forward(x.clone()), // [R, C]
            self.box_predictor.bbox_pred.forward(x),         // [R, 4C]
        )
    }
}

/// The proposals one image trains on and their targets
/// (`select_training_samples`).
#[derive(Debug, Clone, Default)]
pub(crate) struct BoxSamples {
    /// The sampled proposals (ground-truth boxes appended before
    /// sampling), ascending by index.
    pub proposals: Vec<[f32; 4]>,
    /// Their labels: the matched box's class + 1, or 0 for background.
    pub labels: Vec<i64>,
    /// Their encoded deltas against the matched box (weights 10, 10, 5, 5),
    /// `[R, 4]` row-major; meaningful for positives only.
    pub deltas: Vec<f32>,
    /// The index of the ground-truth box each proposal matched
    /// (meaningful for positives only).
    pub matched: Vec<usize>,
}

/// torchvision's `select_training_samples` for one image: `gt` (boxes on the
/// transformed image, `labels` with background 0 already excluded, i.e.
/// class + 1) appended to the proposals, proposals matched (IoU ≥ `fg`
/// foreground with the box's label, below `bg` background, between
/// ignored), then sampled.
pub(crate) fn sample_proposals(
    mut proposals: Vec<[f32; 4]>,
    gt: &[[f32; 4]],
    labels: &[i64],
    matcher: &Matcher,
    sampler: &BalancedSampler,
    coder: &BoxCoder,
    device: &Device,
) -> Result<BoxSamples> {
    proposals.extend_from_slice(gt);
    let n = proposals.len();
    let (matched, all_labels): (Vec<i64>, Vec<i64>) = if gt.is_empty() {
        (vec![0; n], vec![0; n])
    } else {
        let m = matcher.assign(&box_iou(gt, &proposals), gt.len(), n);
        let l = m
            .iter()
            .map(|&j| match j {
                BELOW_LOW_THRESHOLD => 0,
                BETWEEN_THRESHOLDS => -1,
                j => labels[j as usize],
            })
            .collect();
        (m.into_iter().map(|j| j.max(0)).collect(), l)
    };
    let (pos, neg) = sampler.sample(&all_labels, device)?;
    let mut keep: Vec<usize> = pos.into_iter().chain(neg).collect();
    keep.sort_unstable();
    let mut out = BoxSamples::default();
    for i in keep {
        out.proposals.push(proposals[i]);
        out.labels.push(all_labels[i]);
        // an image without boxes matches a zero box, as torchvision does
        let target = gt.get(matched[i] as usize).copied().unwrap_or([0.0; 4]);
        out.deltas.extend(coder.encode(&target, &proposals[i]));
        out.matched.push(matched[i] as usize);
    }
    Ok(out)
}

/// torchvision's `fastrcnn_loss`: cross entropy of the class logits (mean
/// over the sampled proposals) and smooth L1 (β = 1/9, summed) between the
/// deltas predicted for each positive's own class and its target, divided
/// by the number of sampled proposals.
///
/// # Shapes
/// `logits [R, C]`, `regression [R, 4·C]`, `labels [R]`, `deltas [R·4]` →
/// `([1], [1])`.
pub(crate) fn fastrcnn_loss(
    logits: Tensor<2>,
    regression: Tensor<2>,
    labels: &[i64],
    deltas: &[f32],
) -> (Tensor<1>, Tensor<1>) {
    let device = logits.device();
    let [r, c] = logits.dims();
    let lab = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [r]), &device);
    let one_hot = lab
        .reshape([r, 1])
        .equal(Tensor::<1, Int>::arange(0..c as i64, &device).reshape([1, c]))
        .float(); // [R, C]
    let classification = (log_softmax(logits, 1) * one_hot)
        .sum()
        .neg()
        .div_scalar(r as f32);
    let pos: Vec<usize> = (0..r).filter(|&i| labels[i] > 0).collect();
    let box_loss = if pos.is_empty() {
        regression.sum().mul_scalar(0.0)
    } else {
        let p = pos.len();
        let rows: Vec<i64> = pos.iter().map(|&i| (i * c) as i64 + labels[i]).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [p]), &device);
        let pred = regression.reshape([r * c, 4]).select(0, rows); // [P, 4]
        let target: Vec<f32> = pos
            .iter()
            .flat_map(|&i| deltas[4 * i..4 * i + 4].to_vec())
            .collect();
        let target = Tensor::<2>::from_data(TensorData::new(target, [p, 4]), &device);
        smooth_l1_sum(pred, target, 1.0 / 9.0).div_scalar(r as f32)
    };
    (classification, box_loss)
}

/// What [`postprocess_boxes`] keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BoxFilter {
    pub score_thresh: f32,
    pub nms_thresh: f32,
    pub detections_per_img: usize,
}

/// torchvision's `postprocess_detections` for one image: per proposal and
/// foreground class, the box decoded from that class's deltas and clipped,
/// the softmax score; those above `score_thresh` and at least 0.01 px wide
/// and high, NMS within each class, the best `detections_per_img`. Returns
/// (box, score, label ≥ 1) on the transformed image, best first.
///
/// # Shapes
/// `probs [R·C]` (softmax rows), `regression [R·4C]`, `proposals [R]`.
pub(crate) fn postprocess_boxes(
    probs: &[f32],
    regression: &[f32],
    proposals: &[[f32; 4]],
    classes: usize,
    image_size: [usize; 2],
    coder: &BoxCoder,
    filter: &BoxFilter,
) -> Vec<([f32; 4], f32, usize)> {
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for (i, p) in proposals.iter().enumerate() {
        for c in 1..classes {
            let s = probs[i * classes + c];
            if s <= filter.score_thresh {
                continue;
            }
            let d = &regression[(i * classes + c) * 4..(i * classes + c) * 4 + 4];
            let b = clip_box(coder.decode(&[d[0], d[1], d[2], d[3]], p), image_size);
            if b[2] - b[0] >= 1e-2 && b[3] - b[1] >= 1e-2 {
                boxes.push(b);
                scores.push(s);
                labels.push(c);
            }
        }
    }
    batched_nms(&boxes, &scores, &labels, f64::from(filter.nms_thresh))
        .into_iter()
        .take(filter.detections_per_img)
        .map(|j| (boxes[j], scores[j], labels[j]))
        .collect()
}

/// Softmax over the classes of each row, on the device.
pub(crate) fn class_probabilities(logits: Tensor<2>) -> Tensor<2> {
    softmax(logits, 1)
}
