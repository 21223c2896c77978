//! The region proposal network of torchvision 0.24.0
//! (`models.detection.rpn`): [`RpnHead`] (a 3×3 convolution with ReLU shared
//! by the levels, then 1×1 convolutions for the objectness of each of the
//! `A` anchors of a cell and their box deltas), proposal filtering
//! (`RegionProposalNetwork.filter_proposals`) and the RPN's training losses
//! (`assign_targets_to_anchors`, `compute_loss`).

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::activation::relu;
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_nn::{Conv2d, Conv2dConfig, PaddingConfig2d};
use unidl_train::postprocess::batched_nms;

use crate::blocks::MapBias;
use crate::detection::boxes::{BETWEEN_THRESHOLDS, BoxCoder, Matcher, box_iou, clip_box};
use crate::detection::layout::permute_and_flatten;
use crate::detection::sampler::BalancedSampler;
use crate::error::Result;

/// A convolution with N(0, 0.01²) weights and zero bias (the RPN head's
/// initialisation), `kernel` × `kernel` with same padding.
fn rpn_conv(channels: [usize; 2], kernel: usize, device: &Device) -> Conv2d {
    let p = kernel / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        })
        .init(device)
        .map_bias(|b| b.zeros_like())
}

/// The RPN head (torchvision `rpn.head`: `conv.0.0`, `cls_logits`,
/// `bbox_pred`).
#[derive(Module, Debug)]
pub struct RpnHead {
    /// The shared 3×3 convolution, followed by ReLU.
    pub conv: Conv2d,
    /// Objectness, `A` channels.
    pub cls_logits: Conv2d,
    /// Box deltas, `4 · A` channels.
    pub bbox_pred: Conv2d,
}

impl RpnHead {
    /// A head over `in_channels` for `num_anchors` anchors per cell.
    pub fn new(in_channels: usize, num_anchors: usize, device: &Device) -> Self {
        RpnHead {
            conv: rpn_conv([in_channels, in_channels], 3, device),
            cls_logits: rpn_conv([in_channels, num_anchors], 1, device),
            bbox_pred: rpn_conv([in_channels, 4 * num_anchors], 1, device),
        }
    }

    /// Objectness logits and box deltas of every anchor of every level, in
    /// torchvision's concatenated order (level, cell row, cell column,
    /// anchor).
    ///
    /// # Shapes
    /// levels `[B, D, H_l, W_l]` → `([B, N], [B, N, 4])`, `N = Σ_l H_l·W_l·A`.
    pub fn forward(&self, features: &[Tensor<4>]) -> (Tensor<2>, Tensor<3>) {
        let mut objectness = Vec::with_capacity(features.len());
        let mut deltas = Vec::with_capacity(features.len());
        for f in features {
            let t = relu(self.conv.forward(f.clone())); // [B, D, H, W]
            objectness.push(permute_and_flatten(self.cls_logits.forward(t.clone()), 1)); // [B, H·W·A, 1]
            deltas.push(permute_and_flatten(self.bbox_pred.forward(t), 4)); // [B, H·W·A, 4]
        }
        let objectness = Tensor::cat(objectness, 1); // [B, N, 1]
        let [b, n, _] = objectness.dims();
        (objectness.reshape([b, n]), Tensor::cat(deltas, 1))
    }
}

/// The region proposal network: its head (torchvision `rpn.head`).
#[derive(Module, Debug)]
pub struct RegionProposalNetwork {
    /// The head.
    pub head: RpnHead,
}

/// What proposal filtering keeps: per level the best `pre_nms_top_n`, then
/// over the levels the best `post_nms_top_n` after NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProposalFilter {
    /// Candidates per level before NMS.
    pub pre_nms_top_n: usize,
    /// Proposals per image after NMS.
    pub post_nms_top_n: usize,
    /// IoU above which NMS suppresses a proposal of the same level.
    pub nms_thresh: f32,
    /// Proposals whose objectness probability is below this are dropped.
    pub score_thresh: f32,
    /// Proposals narrower or lower than this (pixels) are dropped
    /// (torchvision: 1e-3).
    pub min_size: f32,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// torchvision's `filter_proposals` for one image: per level the top
/// `pre_nms_top_n` objectness logits (descending), their boxes decoded
/// against their anchors (weights 1) and clipped to `image_size`, small and
/// low-scoring ones dropped, NMS within each level, the best
/// `post_nms_top_n` — best first, with their objectness probabilities.
///
/// # Shapes
/// `objectness [N]`, `deltas [N · 4]`, `anchors [N]`, `level_anchors` sums
/// to `N`.
pub fn filter_proposals(
    objectness: &[f32],
    deltas: &[f32],
    anchors: &[[f32; 4]],
    level_anchors: &[usize],
    image_size: [usize; 2],
    filter: &ProposalFilter,
) -> (Vec<[f32; 4]>, Vec<f32>) {
    let coder = BoxCoder::default();
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut levels = Vec::new();
    let mut start = 0;
    for (level, &count) in level_anchors.iter().enumerate() {
        let mut idx: Vec<usize> = (start..start + count).collect();
        // topk: descending (stable: ties keep anchor order)
        idx.sort_by(|&a, &b| objectness[b].total_cmp(&objectness[a]));
        idx.truncate(filter.pre_nms_top_n);
        for a in idx {
            let d = &deltas[4 * a..4 * a + 4];
            let b = clip_box(
                coder.decode(&[d[0], d[1], d[2], d[3]], &anchors[a]),
                image_size,
            );
            let s = sigmoid(objectness[a]);
            if b[2] - b[0] >= filter.min_size
                && b[3] - b[1] >= filter.min_size
                && s >= filter.score_thresh
            {
                boxes.push(b);
                scores.push(s);
                levels.push(level);
            }
        }
        start += count;
    }
    let keep = batched_nms(&boxes, &scores, &levels, f64::from(filter.nms_thresh));
    keep.into_iter()
        .take(filter.post_nms_top_n)
        .map(|i| (boxes[i], scores[i]))
        .unzip()
}

/// The RPN's training targets for a batch, as torchvision's
/// `assign_targets_to_anchors` and `fg_bg_sampler`: anchors matched to the
/// ground truth (IoU ≥ 0.7 foreground, < 0.3 background, in between
/// ignored, low-quality matches kept; an image without boxes has only
/// background anchors), then sampled.
pub(crate) struct RpnTargets {
    /// Flat rows `i·N + a` of the sampled anchors, positives first.
    pub rows: Vec<i64>,
    /// 1 for a positive, 0 for a negative, per row.
    pub objectness: Vec<f32>,
    /// Encoded deltas of the positives, `[positives, 4]`.
    pub deltas: Vec<f32>,
    /// Sampled positives.
    pub positives: usize,
}

/// Matches and samples the anchors of each image against `gt` (boxes on the
/// transformed image).
pub(crate) fn rpn_targets(
    anchors: &[[f32; 4]],
    gt: &[Vec<[f32; 4]>],
    matcher: &Matcher,
    sampler: &BalancedSampler,
    device: &Device,
) -> Result<RpnTargets> {
    let n = anchors.len();
    let coder = BoxCoder::default();
    let mut pos_rows = Vec::new();
    let mut neg_rows = Vec::new();
    let mut deltas = Vec::new();
    for (i, boxes) in gt.iter().enumerate() {
        let matched = if boxes.is_empty() {
            vec![-1i64; n]
        } else {
            matcher.assign(&box_iou(boxes, anchors), boxes.len(), n)
        };
        let labels: Vec<i64> = matched
            .iter()
            .map(|&m| match m {
                m if m >= 0 => 1,
                BETWEEN_THRESHOLDS => -1,
                _ => 0,
            })
            .collect();
        let (pos, neg) = sampler.sample(&labels, device)?;
        for a in pos {
            pos_rows.push((i * n + a) as i64);
            deltas.extend(coder.encode(&boxes[matched[a] as usize], &anchors[a]));
        }
        neg_rows.extend(neg.into_iter().map(|a| (i * n + a) as i64));
    }
    let positives = pos_rows.len();
    let mut objectness = vec![1f32; positives];
    objectness.resize(positives + neg_rows.len(), 0.0);
    pos_rows.extend(neg_rows);
    Ok(RpnTargets {
        rows: pos_rows,
        objectness,
        deltas,
        positives,
    })
}

/// `F.smooth_l1_loss(pred, target, beta, reduction="sum")`: per element
/// `0.5 d²/β` where `|d| < β`, else `|d| − 0.5 β`; written as
/// `0.5 m²/β + (|d| − m)` with `m = min(|d|, β)`, which has the same value
/// and gradient.
///
/// # Shapes
/// `[R, 4]`, `[R, 4]` → `[1]`.
pub fn smooth_l1_sum(pred: Tensor<2>, target: Tensor<2>, beta: f32) -> Tensor<1> {
    let a = (pred - target).abs();
    let m = a.clone().clamp_max(beta);
    (m.clone().powi_scalar(2).mul_scalar(0.5 / beta) + (a - m)).sum()
}

/// `F.binary_cross_entropy_with_logits(x, y)` (mean), as
/// `max(x, 0) − x·y + ln(1 + e^{−|x|})`.
///
/// # Shapes
/// `[S]`, `[S]` → `[1]`.
pub fn bce_with_logits_mean(x: Tensor<1>, y: Tensor<1>) -> Tensor<1> {
    let loss = relu(x.clone()) - x.clone() * y + x.abs().neg().exp().log1p();
    loss.mean()
}

/// The RPN's two losses on the sampled anchors: objectness (binary cross
/// entropy, mean) and box deltas (smooth L1 with β = 1/9 over the
/// positives, divided by the number sampled).
///
/// # Shapes
/// `objectness [B, N]`, `deltas [B, N, 4]` → `([1], [1])`.
pub(crate) fn rpn_losses(
    objectness: Tensor<2>,
    deltas: Tensor<3>,
    t: &RpnTargets,
) -> (Tensor<1>, Tensor<1>) {
    let device = objectness.device();
    let [b, n] = objectness.dims();
    let s = t.rows.len();
    if s == 0 {
        let zero = objectness.sum().mul_scalar(0.0);
        return (zero.clone(), zero);
    }
    let rows = Tensor::<1, Int>::from_data(TensorData::new(t.rows.clone(), [s]), &device);
    let logits = objectness.reshape([b * n]).select(0, rows.clone()); // [S]
    let labels = Tensor::<1>::from_data(TensorData::new(t.objectness.clone(), [s]), &device);
    let obj_loss = bce_with_logits_mean(logits, labels);
    let p = t.positives;
    let box_loss = if p == 0 {
        deltas.sum().mul_scalar(0.0)
    } else {
        let pred = deltas.reshape([b * n, 4]).select(0, rows.narrow(0, 0, p)); // [P, 4]
        let target = Tensor::<2>::from_data(TensorData::new(t.deltas.clone(), [p, 4]), &device);
        smooth_l1_sum(pred, target, 1.0 / 9.0).div_scalar(s as f32)
    };
    (obj_loss, box_loss)
}
