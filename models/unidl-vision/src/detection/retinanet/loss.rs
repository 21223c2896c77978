//! RetinaNet's training losses, as torchvision 0.24.0's
//! `RetinaNet.compute_loss` and `RetinaNetHead.compute_loss`:
//!
//! - each image's anchors are matched to its ground-truth boxes
//!   ([`Matcher`](crate::detection::boxes::Matcher): IoU ≥ 0.5 foreground,
//!   < 0.4 background, in between ignored, low-quality matches kept); an
//!   image without boxes has only background anchors;
//! - **classification**: sigmoid focal loss (α 0.25, γ 2) summed over the
//!   image's anchors that are not ignored, against one-hot targets of the
//!   foreground anchors' classes, divided by `max(1, foreground)`; the mean
//!   over images;
//! - **bbox_regression**: L1 between the predicted deltas of the foreground
//!   anchors and their boxes encoded against them (`BoxCoder` weights 1),
//!   summed, divided by `max(1, foreground)`; the mean over images.
//!
//! Matching and encoding run on the host (they depend on boxes only); the
//! sums run on the device as one masked, weighted sum per term, so the
//! gradient is torchvision's.

use burn::tensor::{Int, Tensor, TensorData};
use unidl_train::ObjectTargets;

use super::{RetinaNet, RetinaNetOutput};
use crate::detection::boxes::{BETWEEN_THRESHOLDS, box_iou};
use crate::detection::focal_loss::{FocalReduction, sigmoid_focal_loss};
use crate::detection::targets::check_targets;
use crate::error::Result;

/// The two loss terms, `[1]` each.
#[derive(Debug, Clone)]
pub struct RetinaNetLosses {
    /// Focal loss (torchvision's `"classification"`).
    pub classification: Tensor<1>,
    /// L1 box loss (torchvision's `"bbox_regression"`).
    pub bbox_regression: Tensor<1>,
}

impl RetinaNet {
    /// The losses of `out` (from [`forward`](Self::forward)) against one
    /// [`ObjectTargets`] per image, boxes in input pixels (scaled here as the
    /// transform scaled the image).
    ///
    /// A target count other than the batch size, a class outside
    /// `0..num_classes`, a box that is not finite or has no area, or boxes
    /// and classes of different counts is [`VisionError::Input`](crate::VisionError::Input) naming the
    /// image.
    pub fn losses(
        &self,
        out: &RetinaNetOutput,
        targets: &[ObjectTargets],
    ) -> Result<RetinaNetLosses> {
        let [b, n, k] = out.cls_logits.dims();
        let device = out.cls_logits.device();
        check_targets("RetinaNet", &[b, n, k], targets, b, k)?;
        let st = &self.settings;
        // per anchor: its class (-1 none), its weight in the focal sum
        let mut labels = vec![-1i64; b * n];
        let mut cls_weight = vec![0f32; b * n];
        // per foreground anchor: flat row, encoded target, weight
        let mut fg_rows: Vec<i64> = Vec::new();
        let mut fg_targets: Vec<f32> = Vec::new();
        let mut fg_weight: Vec<f32> = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let boxes: Vec<[f32; 4]> = t.boxes.iter().map(|&bx| out.size.to_resized(bx)).collect();
            let matched = if boxes.is_empty() {
                vec![-1i64; n]
            } else {
                let iou = box_iou(&boxes, &out.anchors);
                st.matcher.assign(&iou, boxes.len(), n)
            };
            let fg: Vec<usize> = (0..n).filter(|&j| matched[j] >= 0).collect();
            let norm = 1.0 / fg.len().max(1) as f32 / b as f32;
            for (j, &m) in matched.iter().enumerate() {
                if m != BETWEEN_THRESHOLDS {
                    cls_weight[i * n + j] = norm;
                }
                if m >= 0 {
                    labels[i * n + j] = t.classes[m as usize] as i64;
                }
            }
            for &j in &fg {
                let gt = &boxes[matched[j] as usize];
                fg_rows.push((i * n + j) as i64);
                fg_targets.extend(st.coder.encode(gt, &out.anchors[j]));
                fg_weight.push(norm);
            }
        }
        // classification: one-hot targets by comparing labels with 0..K
        let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, [b, n]), &device)
            .reshape([b, n, 1]); // [B, N, 1]
        let classes = Tensor::<1, Int>::arange(0..k as i64, &device).reshape([1, 1, k]); // [1, 1, K]
        let one_hot = labels.equal(classes).float(); // [B, N, K]
        let focal = sigmoid_focal_loss(
            out.cls_logits.clone(),
            one_hot,
            0.25,
            2.0,
            FocalReduction::None,
        )?; // [B, N, K]
        let w = Tensor::<3>::from_data(TensorData::new(cls_weight, [b, n, 1]), &device); // [B, N, 1]
        let classification = (focal * w).sum(); // [1]
        // box regression: L1 on the foreground rows
        let f = fg_rows.len();
        let bbox_regression = if f == 0 {
            Tensor::<1>::zeros([1], &device)
        } else {
            let rows = Tensor::<1, Int>::from_data(TensorData::new(fg_rows, [f]), &device);
            let pred = out
                .bbox_regression
                .clone()
                .reshape([b * n, 4])
                .select(0, rows); // [F, 4]
            let target = Tensor::<2>::from_data(TensorData::new(fg_targets, [f, 4]), &device);
            let w = Tensor::<2>::from_data(TensorData::new(fg_weight, [f, 1]), &device);
            ((pred - target).abs() * w).sum() // [1]
        };
        Ok(RetinaNetLosses {
            classification,
            bbox_regression,
        })
    }

    /// [`forward`](Self::forward) and [`losses`](Self::losses) in one call
    /// (torchvision's train-mode call).
    pub fn forward_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> Result<RetinaNetLosses> {
        let out = self.forward(images)?;
        self.losses(&out, targets)
    }
}
