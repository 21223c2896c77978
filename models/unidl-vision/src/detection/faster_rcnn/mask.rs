//! The mask branch of torchvision 0.24.0's Mask R-CNN
//! (`models.detection.mask_rcnn`, `roi_heads.maskrcnn_loss`,
//! `maskrcnn_inference`): boxes pooled 14×14 from P2–P5 by
//! [`MultiScaleRoiAlign`](crate::detection::MultiScaleRoiAlign) (sampling
//! ratio 2), `MaskRCNNHeads` (four 3×3 convolutions with ReLU), the
//! `MaskRCNNPredictor` (a 2×2 stride-2 transposed convolution with ReLU and
//! a 1×1 convolution to one 28×28 mask logit map per class); in training,
//! the ground-truth masks resized with the image (nearest) and cropped to
//! each positive proposal by RoI Align (28×28, adaptive sampling), and the
//! binary cross entropy of the logits of the proposal's own class.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, PaddingConfig2d};
use unidl_train::ObjectTargets;

use super::FasterRcnnOutput;
use super::rpn::bce_with_logits_mean;
use crate::blocks::{MapBias, conv_init};
use crate::detection::poolers::MultiScaleRoiAlign;
use crate::detection::roi_align::RoiAlign;
use crate::detection::sampling::roi_taps;
use crate::error::{Result, VisionError, positive};

/// Side of the pooled features the mask head sees (torchvision's
/// `mask_roi_pool` output size, fixed by `maskrcnn_resnet50_fpn`).
pub const MASK_POOL_SIZE: usize = 14;

/// Side of the predicted masks: the pooled size doubled by the predictor's
/// transposed convolution (28).
pub const MASK_SIZE: usize = 2 * MASK_POOL_SIZE;

/// The mask branch's settings; every default is torchvision's
/// `maskrcnn_resnet50_fpn`.
///
/// ```toml
/// [mask_head]
/// layers = [256, 256, 256, 256]   # MaskRCNNHeads' convolutions
/// dilation = 1
/// predictor_channels = 256        # MaskRCNNPredictor's dim_reduced
/// sampling_ratio = 2              # of the 14x14 mask RoI pooler
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskHeadConfig {
    /// Output channels of each 3×3 convolution of the head (four of 256).
    pub layers: Vec<usize>,
    /// Dilation (and padding) of those convolutions (1).
    pub dilation: usize,
    /// Channels of the predictor's transposed convolution (256).
    pub predictor_channels: usize,
    /// RoI Align's sampling ratio in the mask pooler (2).
    pub sampling_ratio: i32,
}

impl Default for MaskHeadConfig {
    fn default() -> Self {
        MaskHeadConfig {
            layers: vec![256; 4],
            dilation: 1,
            predictor_channels: 256,
            sampling_ratio: 2,
        }
    }
}

impl MaskHeadConfig {
    /// Checks the values; errors name the key under `mask_head.`.
    pub(crate) fn check(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(VisionError::Config {
                key: "mask_head.layers".into(),
                reason: "empty: give one or more convolution widths".into(),
            });
        }
        for &c in &self.layers {
            positive("mask_head.layers", c)?;
        }
        positive("mask_head.dilation", self.dilation)?;
        positive("mask_head.predictor_channels", self.predictor_channels)?;
        Ok(())
    }

    /// The head and predictor over `in_channels` pooled channels and
    /// `num_classes` classes, initialised as torchvision does
    /// (`kaiming_normal_(mode="fan_out", nonlinearity="relu")`, biases 0).
    pub(crate) fn init(
        &self,
        in_channels: usize,
        num_classes: usize,
        device: &Device,
    ) -> (MaskRcnnHeads, MaskRcnnPredictor) {
        let d = self.dilation;
        let mut layers = Vec::with_capacity(self.layers.len());
        let mut c_in = in_channels;
        for &c in &self.layers {
            layers.push(
                Conv2dConfig::new([c_in, c], [3, 3])
                    .with_dilation([d, d])
                    .with_padding(PaddingConfig2d::Explicit(d, d, d, d))
                    .with_initializer(conv_init(c, 3))
                    .init(device)
                    .map_bias(|b| b.zeros_like()),
            );
            c_in = c;
        }
        let p = self.predictor_channels;
        // PyTorch's fan-out of a transposed convolution's weight
        // [in, out, 2, 2] is its first dimension times the kernel area
        let mut conv5_mask = ConvTranspose2dConfig::new([c_in, p], [2, 2])
            .with_stride([2, 2])
            .with_initializer(conv_init(c_in, 2))
            .init(device);
        conv5_mask.bias = conv5_mask.bias.map(|b| b.map(|t| t.zeros_like()));
        let mask_fcn_logits = Conv2dConfig::new([p, num_classes], [1, 1])
            .with_initializer(conv_init(num_classes, 1))
            .init(device)
            .map_bias(|b| b.zeros_like());
        (
            MaskRcnnHeads { layers },
            MaskRcnnPredictor {
                conv5_mask,
                mask_fcn_logits,
            },
        )
    }
}

/// torchvision's `MaskRCNNHeads`: 3×3 convolutions with bias, each followed
/// by ReLU (`roi_heads.mask_head.{i}.0`).
#[derive(Module, Debug)]
pub struct MaskRcnnHeads {
    /// The convolutions.
    pub layers: Vec<Conv2d>,
}

/// torchvision's `MaskRCNNPredictor`: `conv5_mask` (2×2, stride 2,
/// transposed) + ReLU, then `mask_fcn_logits` (1×1) to one map per class.
#[derive(Module, Debug)]
pub struct MaskRcnnPredictor {
    /// Doubles the resolution.
    pub conv5_mask: ConvTranspose2d,
    /// One logit map per class (background included).
    pub mask_fcn_logits: Conv2d,
}

/// The mask logits of pooled boxes.
///
/// # Shapes
/// `[R, D, 14, 14]` → `[R, C, 28, 28]`.
pub(crate) fn mask_logits(
    head: &MaskRcnnHeads,
    predictor: &MaskRcnnPredictor,
    pooled: Tensor<4>,
) -> Tensor<4> {
    let x = head.layers.iter().fold(pooled, |x, c| relu(c.forward(x))); // [R, D', 14, 14]
    let x = relu(predictor.conv5_mask.forward(x)); // [R, P, 28, 28]
    predictor.mask_fcn_logits.forward(x) // [R, C, 28, 28]
}

/// Each row's map of its own class (`mask_logits[arange(R), labels]`).
///
/// # Shapes
/// `[R, C, M, M]`, `labels [R]` → `[R, M·M]`.
pub(crate) fn select_class(logits: Tensor<4>, labels: &[usize]) -> Tensor<2> {
    let [r, c, h, w] = logits.dims();
    let device = logits.device();
    let rows: Vec<i64> = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| (i * c + l) as i64)
        .collect();
    let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [r]), &device);
    logits.reshape([r * c, h * w]).select(0, rows)
}

/// PyTorch's `interpolate(mode="nearest")` of a 0/1 mask from `from` to
/// `to` (`[H, W]` each), as torchvision's transform resizes target masks:
/// source index `⌊dst · in/out⌋` (the ratio in `f32`), clamped.
pub(crate) fn resize_nearest(mask: &[u8], from: [usize; 2], to: [usize; 2]) -> Vec<f32> {
    let index = |n_in: usize, n_out: usize| -> Vec<usize> {
        let scale = n_in as f32 / n_out as f32;
        (0..n_out)
            .map(|d| ((d as f32 * scale).floor() as usize).min(n_in - 1))
            .collect()
    };
    let (ys, xs) = (index(from[0], to[0]), index(from[1], to[1]));
    let mut out = Vec::with_capacity(to[0] * to[1]);
    for &y in &ys {
        let row = &mask[y * from[1]..(y + 1) * from[1]];
        out.extend(xs.iter().map(|&x| f32::from(row[x])));
    }
    out
}

/// torchvision's `project_masks_on_boxes` for one proposal: the (resized)
/// ground-truth mask of `[H, W]` cropped to `bbox` and sampled `M × M` by
/// RoI Align (`aligned = False`, adaptive sampling, scale 1).
pub(crate) fn project_mask(
    mask: &[f32],
    hw: [usize; 2],
    bbox: [f32; 4],
    roi: usize,
) -> Result<Vec<f32>> {
    let cfg = RoiAlign::new([MASK_SIZE, MASK_SIZE]);
    let taps = roi_taps(roi, bbox, &cfg, hw)?;
    let mut out = Vec::with_capacity(MASK_SIZE * MASK_SIZE);
    for ys in &taps.ys {
        for xs in &taps.xs {
            let mut v = 0.0f32;
            for &(y, wy) in ys {
                let row = &mask[y * hw[1]..(y + 1) * hw[1]];
                let mut r = 0.0f32;
                for &(x, wx) in xs {
                    r += wx * row[x];
                }
                v += wy * r;
            }
            out.push(v / taps.count);
        }
    }
    Ok(out)
}

/// torchvision's `maskrcnn_loss`: binary cross entropy with logits (mean
/// over every pixel of every positive) between each positive proposal's
/// map of its own class and its projected target; zero (times the logits,
/// as torchvision) without positives.
///
/// # Shapes
/// `logits [P, C, M, M]`, `labels [P]`, `targets [P·M·M]` → `[1]`.
pub(crate) fn mask_loss(logits: Tensor<4>, labels: &[usize], targets: Vec<f32>) -> Tensor<1> {
    let [p, _, h, w] = logits.dims();
    if p == 0 {
        return logits.sum().mul_scalar(0.0);
    }
    let device = logits.device();
    let x = select_class(logits, labels).reshape([p * h * w]);
    let y = Tensor::<1>::from_data(TensorData::new(targets, [p * h * w]), &device);
    bce_with_logits_mean(x, y)
}

/// A Mask R-CNN's mask head, predictor and mask pooler.
pub(crate) type MaskBranch<'a> = (
    &'a MaskRcnnHeads,
    &'a MaskRcnnPredictor,
    &'a MultiScaleRoiAlign,
);

/// `loss_mask` over each image's positive sampled proposals (box on
/// the transformed image, label ≥ 1, matched ground-truth index): the
/// ground-truth masks checked, resized and projected, the proposals
/// pooled and run through the branch.
pub(crate) fn mask_branch_loss(
    (head, predictor, pool): MaskBranch<'_>,
    out: &FasterRcnnOutput,
    targets: &[ObjectTargets],
    positives: &[Vec<([f32; 4], usize, usize)>],
) -> Result<Tensor<1>> {
    let [h, w] = out.size.original;
    let mut boxes = Vec::with_capacity(positives.len());
    let mut labels = Vec::new();
    let mut mask_targets = Vec::new();
    for (i, (t, pos)) in targets.iter().zip(positives).enumerate() {
        let err = |reason: String| VisionError::Input {
            model: "MaskRcnn".into(),
            shape: vec![h, w],
            reason: format!("targets of image {i}: {reason}"),
        };
        if t.masks.len() != t.boxes.len() {
            return Err(err(format!(
                "{} masks for {} boxes (Mask R-CNN trains on one mask per box)",
                t.masks.len(),
                t.boxes.len()
            )));
        }
        if let Some((j, m)) = t.masks.iter().enumerate().find(|(_, m)| m.len() != h * w) {
            return Err(err(format!(
                "mask {j} has {} values for an image of {h}x{w}",
                m.len()
            )));
        }
        let mut resized: Vec<Option<Vec<f32>>> = vec![None; t.masks.len()];
        let mut image_boxes = Vec::with_capacity(pos.len());
        for &(bx, label, gt) in pos {
            let m = resized[gt].get_or_insert_with(|| {
                resize_nearest(&t.masks[gt], out.size.original, out.size.resized)
            });
            mask_targets.extend(project_mask(m, out.size.resized, bx, labels.len())?);
            labels.push(label);
            image_boxes.push(bx);
        }
        boxes.push(image_boxes);
    }
    if labels.is_empty() {
        return Ok(Tensor::zeros([1], &out.objectness.device()));
    }
    let shapes = vec![out.size.resized; boxes.len()];
    let pooled = pool.forward_host(&out.features, &boxes, &shapes)?; // [P, D, 14, 14]
    let logits = mask_logits(head, predictor, pooled); // [P, C, 28, 28]
    Ok(mask_loss(logits, &labels, mask_targets))
}
