//! # Faster R-CNN (Ren et al., 2015, "Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks", arXiv:1506.01497) with an FPN (Lin et al., 2017, arXiv:1612.03144)
//!
//! torchvision 0.24.0's `fasterrcnn_resnet50_fpn` (v1) with a
//! pretrained-style backbone: a ResNet-50 body with [`FrozenBatchNorm2d`](super::FrozenBatchNorm2d)
//! and the last three stages trainable ([`ResNetBody`]), a 256-channel FPN
//! on C2–C5 with a max-pooled extra level (`LastLevelMaxPool`: levels `0`,
//! `1`, `2`, `3`, `pool`), one anchor size per level (32…512) × ratios
//! (0.5, 1, 2), the region proposal network ([`RpnHead`], proposal
//! filtering, its matcher 0.7/0.3 and 256-anchor sampler), proposals pooled
//! from P2–P5 by [`MultiScaleRoiAlign`] (7×7, sampling ratio 2), the box
//! head ([`RoiHeads`]: two 1024-wide fully connected layers, class logits
//! and per-class deltas with weights 10, 10, 5, 5), the RoI heads'
//! matcher (0.5) and 512-proposal sampler, and torchvision's
//! `postprocess_detections`. Images go through torchvision's
//! `GeneralizedRCNNTransform` ([`DetectionTransform`]).
//!
//! Classes follow torchvision: class 0 is the background, so
//! `num_classes` counts it (91 for COCO). A training target's class `c`
//! (the task layer's `0..K`) is torchvision's label `c + 1`, and a
//! detection of label `l` is class `l − 1`.
//!
//! Parameter names are torchvision's state-dict keys
//! ([`TorchvisionNames`](crate::torchvision::TorchvisionNames)).
//!
//! The samplers draw from the device's generator when there are more
//! candidates than places (torchvision: `torch.randperm`); seed the device
//! for reproducible runs. Not reproduced: torchvision's `BatchNorm2d`
//! variant, images of different sizes in one batch, and the random choice
//! among several `min_size`s in training.

mod config;
mod mask;
mod roi_heads;
mod rpn;

use burn::module::Module;
use burn::tensor::Tensor;
use unidl_tensor::trace;
use unidl_train::ObjectTargets;
use unidl_train::outputs::Detection;

use config::LEVELS;
pub use config::{
    FasterRcnnConfig, FasterRcnnSettings, RoiHeadsConfig, RpnConfig, faster_rcnn_anchors,
};
pub use mask::{MASK_POOL_SIZE, MASK_SIZE, MaskHeadConfig, MaskRcnnHeads, MaskRcnnPredictor};
pub(crate) use mask::{mask_logits, select_class};
pub use roi_heads::{FastRcnnPredictor, RoiHeads, TwoMlpHead};
pub use rpn::{
    ProposalFilter, RegionProposalNetwork, RpnHead, bce_with_logits_mean, filter_proposals,
    smooth_l1_sum,
};

#[cfg(doc)]
use super::ResNetBody;
use super::backbone::BackboneWithFpn;
use super::layout::{check_images, grid_sizes, host_values};
use super::targets::check_targets;
use super::transform::TransformedSize;
use crate::error::Result;

/// A detection on the transformed image: box, score, label ≥ 1.
pub(crate) type KeptBox = ([f32; 4], f32, usize);

/// Faster R-CNN. Build it with [`FasterRcnnConfig::init`].
#[derive(Module, Debug)]
pub struct FasterRcnn {
    /// ResNet body + FPN (torchvision `backbone.body`, `backbone.fpn`).
    pub backbone: BackboneWithFpn,
    /// The region proposal network (torchvision `rpn`).
    pub rpn: RegionProposalNetwork,
    /// The box branch (torchvision `roi_heads`).
    pub roi_heads: RoiHeads,
    /// Anchors, transform, matchers, samplers, thresholds.
    #[module(skip)]
    pub settings: FasterRcnnSettings,
}

/// The first stage's outputs, from [`FasterRcnn::forward`].
#[derive(Debug, Clone)]
pub struct FasterRcnnOutput {
    /// The FPN levels by torchvision's names (`0`–`3`, `pool`), finest
    /// first, `[B, D, H_l, W_l]` each.
    pub features: Vec<(String, Tensor<4>)>,
    /// RPN objectness logits, `[B, N]`.
    pub objectness: Tensor<2>,
    /// RPN box deltas, `[B, N, 4]`.
    pub rpn_deltas: Tensor<3>,
    /// The `N` anchors on the transformed image (the same for every image).
    pub anchors: Vec<[f32; 4]>,
    /// Anchors per level, summing to `N`.
    pub level_anchors: Vec<usize>,
    /// The sizes before and after the transform.
    pub size: TransformedSize,
}

/// Whether proposals are chosen with the training or evaluation top-n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `*_train` (torchvision's `model.train()`).
    Train,
    /// `*_test` (torchvision's `model.eval()`).
    Eval,
}

/// The four training losses (five in a Mask R-CNN), `[1]` each,
/// torchvision's names.
#[derive(Debug, Clone)]
pub struct FasterRcnnLosses {
    /// Cross entropy of the box branch (`loss_classifier`).
    pub classifier: Tensor<1>,
    /// Smooth L1 of the box branch (`loss_box_reg`).
    pub box_reg: Tensor<1>,
    /// Binary cross entropy of the RPN (`loss_objectness`).
    pub objectness: Tensor<1>,
    /// Smooth L1 of the RPN (`loss_rpn_box_reg`).
    pub rpn_box_reg: Tensor<1>,
    /// Mask R-CNN's per-pixel binary cross entropy (`loss_mask`); `None`
    /// without a mask branch.
    pub mask: Option<Tensor<1>>,
}

impl FasterRcnnLosses {
    /// `(name, value)` in torchvision's loss-dict order (the RoI heads'
    /// losses, `loss_mask` among them, before the RPN's).
    pub fn named(self) -> Vec<(String, Tensor<1>)> {
        let mut v = vec![
            ("loss_classifier".into(), self.classifier),
            ("loss_box_reg".into(), self.box_reg),
        ];
        if let Some(m) = self.mask {
            v.push(("loss_mask".into(), m));
        }
        v.push(("loss_objectness".into(), self.objectness));
        v.push(("loss_rpn_box_reg".into(), self.rpn_box_reg));
        v
    }

    /// The sum of the losses.
    pub fn total(self) -> Tensor<1> {
        let sum = self.classifier + self.box_reg + self.objectness + self.rpn_box_reg;
        match self.mask {
            Some(m) => sum + m,
            None => sum,
        }
    }
}

impl FasterRcnn {
    /// Classes `C`, background included.
    pub fn num_classes(&self) -> usize {
        self.settings.config.num_classes
    }

    /// Transform, backbone, RPN head and anchors. Records the shapes of the
    /// backbone stages, `fpn` (level `0`) and `rpn` for model summaries.
    ///
    /// Images are `[0, 1]`-valued; a channel count other than the
    /// backbone's is [`VisionError::Input`].
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → levels `[B, D, H_l, W_l]`, `objectness
    /// [B, N]`, `rpn_deltas [B, N, 4]`, `N = Σ_l H_l·W_l·A`.
    pub fn forward(&self, images: Tensor<4>) -> Result<FasterRcnnOutput> {
        check_images(
            "FasterRcnn",
            &images,
            self.settings.config.backbone.in_channels,
        )?;
        let (x, size) = self.settings.transform.apply(images)?; // [B, C, H_p, W_p]
        let levels = self.backbone.forward(x)?; // [B, D, H_l, W_l] × 5
        trace::record("fpn", &levels[0].dims());
        let grids = grid_sizes(&levels);
        let per_level = self.settings.anchors.grid_anchors(size.padded, &grids)?;
        let level_anchors = per_level.iter().map(Vec::len).collect();
        let (objectness, rpn_deltas) = self.rpn.head.forward(&levels); // [B, N], [B, N, 4]
        trace::record("rpn", &rpn_deltas.dims());
        Ok(FasterRcnnOutput {
            features: LEVELS.iter().map(|s| s.to_string()).zip(levels).collect(),
            objectness,
            rpn_deltas,
            anchors: per_level.into_iter().flatten().collect(),
            level_anchors,
            size,
        })
    }

    /// The RPN's proposals per image on the transformed image, best first
    /// (torchvision's `filter_proposals`, with the top-n of `mode`).
    pub fn proposals(&self, out: &FasterRcnnOutput, mode: Mode) -> Result<Vec<Vec<[f32; 4]>>> {
        let [b, n] = out.objectness.dims();
        let objectness = host_values(&out.objectness, "FasterRcnn", "objectness")?;
        let deltas = host_values(&out.rpn_deltas, "FasterRcnn", "RPN deltas")?;
        let r = &self.settings.config.rpn;
        let (pre, post) = match mode {
            Mode::Train => (r.pre_nms_top_n_train, r.post_nms_top_n_train),
            Mode::Eval => (r.pre_nms_top_n_test, r.post_nms_top_n_test),
        };
        let filter = ProposalFilter {
            pre_nms_top_n: pre,
            post_nms_top_n: post,
            nms_thresh: r.nms_thresh,
            score_thresh: r.score_thresh,
            min_size: 1e-3,
        };
        Ok((0..b)
            .map(|i| {
                filter_proposals(
                    &objectness[i * n..(i + 1) * n],
                    &deltas[i * n * 4..(i + 1) * n * 4],
                    &out.anchors,
                    &out.level_anchors,
                    out.size.resized,
                    &filter,
                )
                .0
            })
            .collect())
    }

    /// The box branch on `proposals` (one list per image, on the
    /// transformed image): pooled, then class logits and deltas.
    ///
    /// # Shapes
    /// `ΣR_i` proposals → `([ΣR_i, C], [ΣR_i, 4·C])`.
    pub fn box_outputs(
        &self,
        out: &FasterRcnnOutput,
        proposals: &[Vec<[f32; 4]>],
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        let shapes = vec![out.size.resized; proposals.len()];
        let pooled = self
            .settings
            .box_roi_pool
            .forward_host(&out.features, proposals, &shapes)?; // [R, D, 7, 7]
        Ok(self.roi_heads.forward(pooled))
    }

    /// The four training losses against one [`ObjectTargets`] per image
    /// (boxes in input pixels, classes `0..C−1` — torchvision's labels
    /// `1..C`), with training-mode proposals; with a mask branch also
    /// `loss_mask` against the targets' masks (one per box, the image's size).
    ///
    /// A target count other than the batch size, a class outside
    /// `0..num_classes − 1`, a box that is not finite or has no area,
    /// boxes and classes of different counts, or (Mask R-CNN) a missing or
    /// mis-sized mask is [`VisionError::Input`].
    pub fn losses(
        &self,
        out: &FasterRcnnOutput,
        targets: &[ObjectTargets],
    ) -> Result<FasterRcnnLosses> {
        let [b, n] = out.objectness.dims();
        let c = self.num_classes();
        check_targets("FasterRcnn", &[b, n], targets, b, c - 1)?;
        let device = out.objectness.device();
        let st = &self.settings;
        let gt: Vec<Vec<[f32; 4]>> = targets
            .iter()
            .map(|t| t.boxes.iter().map(|&bx| out.size.to_resized(bx)).collect())
            .collect();
        // RPN
        let rt = rpn::rpn_targets(&out.anchors, &gt, &st.rpn_matcher, &st.rpn_sampler, &device)?;
        let (objectness, rpn_box_reg) =
            rpn::rpn_losses(out.objectness.clone(), out.rpn_deltas.clone(), &rt);
        // box branch
        let proposals = self.proposals(out, Mode::Train)?;
        let mut sampled = Vec::with_capacity(b);
        let mut labels = Vec::new();
        let mut deltas = Vec::new();
        let branch = self.mask_branch();
        // Mask R-CNN: each image's positive samples (box, label, matched box)
        let mut positives = Vec::new();
        for (i, p) in proposals.into_iter().enumerate() {
            let l: Vec<i64> = targets[i].classes.iter().map(|&c| c as i64 + 1).collect();
            let s = roi_heads::sample_proposals(
                p,
                &gt[i],
                &l,
                &st.box_matcher,
                &st.box_sampler,
                &st.box_coder,
                &device,
            )?;
            if branch.is_some() {
                positives.push(
                    (0..s.labels.len())
                        .filter(|&j| s.labels[j] > 0)
                        .map(|j| (s.proposals[j], s.labels[j] as usize, s.matched[j]))
                        .collect::<Vec<_>>(),
                );
            }
            labels.extend(s.labels);
            deltas.extend(s.deltas);
            sampled.push(s.proposals);
        }
        let (logits, regression) = self.box_outputs(out, &sampled)?;
        let (classifier, box_reg) = roi_heads::fastrcnn_loss(logits, regression, &labels, &deltas);
        let mask = match branch {
            Some(branch) => Some(mask::mask_branch_loss(branch, out, targets, &positives)?),
            None => None,
        };
        Ok(FasterRcnnLosses {
            classifier,
            box_reg,
            objectness,
            rpn_box_reg,
            mask,
        })
    }

    /// The mask head, predictor and pooler of a Mask R-CNN.
    pub(crate) fn mask_branch(&self) -> Option<mask::MaskBranch<'_>> {
        match (
            &self.roi_heads.mask_head,
            &self.roi_heads.mask_predictor,
            &self.settings.mask_roi_pool,
        ) {
            (Some(h), Some(p), Some(pool)) => Some((h, p, pool)),
            _ => None,
        }
    }

    /// [`forward`](Self::forward) and [`losses`](Self::losses) in one call
    /// (torchvision's train-mode call).
    pub fn forward_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> Result<FasterRcnnLosses> {
        let out = self.forward(images)?;
        self.losses(&out, targets)
    }

    /// Detections per image from the box branch's outputs on `proposals`,
    /// best first, boxes in input pixels, classes `label − 1`.
    pub fn postprocess(
        &self,
        out: &FasterRcnnOutput,
        proposals: &[Vec<[f32; 4]>],
        logits: Tensor<2>,
        regression: Tensor<2>,
    ) -> Result<Vec<Vec<Detection>>> {
        Ok(self
            .kept_detections(out, proposals, logits, regression)?
            .into_iter()
            .map(|kept| {
                kept.into_iter()
                    .map(|(bx, score, label)| {
                        let [x0, y0, x1, y1] = out.size.to_original(bx);
                        Detection {
                            x0,
                            y0,
                            x1,
                            y1,
                            class: label - 1,
                            score,
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// torchvision's `postprocess_detections`: per image, (box on the
    /// transformed image, score, label ≥ 1), best first.
    pub(crate) fn kept_detections(
        &self,
        out: &FasterRcnnOutput,
        proposals: &[Vec<[f32; 4]>],
        logits: Tensor<2>,
        regression: Tensor<2>,
    ) -> Result<Vec<Vec<KeptBox>>> {
        let c = self.num_classes();
        let probs = host_values(
            &roi_heads::class_probabilities(logits),
            "FasterRcnn",
            "class probabilities",
        )?;
        let regression = host_values(&regression, "FasterRcnn", "box deltas")?;
        let h = &self.settings.config.roi_heads;
        let filter = roi_heads::BoxFilter {
            score_thresh: h.score_thresh,
            nms_thresh: h.nms_thresh,
            detections_per_img: h.detections_per_img,
        };
        let mut start = 0;
        let mut all = Vec::with_capacity(proposals.len());
        for p in proposals {
            let r = p.len();
            let kept = roi_heads::postprocess_boxes(
                &probs[start * c..(start + r) * c],
                &regression[start * 4 * c..(start + r) * 4 * c],
                p,
                c,
                out.size.resized,
                &self.settings.box_coder,
                &filter,
            );
            start += r;
            all.push(kept);
        }
        Ok(all)
    }

    /// Transform, network and post-processing: torchvision's eval-mode call.
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `B` lists of detections.
    pub fn predict(&self, images: Tensor<4>) -> Result<Vec<Vec<Detection>>> {
        let out = self.forward(images)?;
        let proposals = self.proposals(&out, Mode::Eval)?;
        if proposals.iter().all(Vec::is_empty) {
            return Ok(vec![Vec::new(); proposals.len()]);
        }
        let (logits, regression) = self.box_outputs(&out, &proposals)?;
        self.postprocess(&out, &proposals, logits, regression)
    }
}

impl unidl_train::Detector for FasterRcnn {
    /// torchvision's train-mode loss dict: `loss_classifier`,
    /// `loss_box_reg`, `loss_objectness`, `loss_rpn_box_reg`.
    fn detection_losses(
        &self,
        images: Tensor<4>,
        targets: &[ObjectTargets],
    ) -> unidl_train::Result<Vec<(String, Tensor<1>)>> {
        let l = self
            .forward_losses(images, targets)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))?;
        Ok(l.named())
    }

    /// The detections of [`predict`](FasterRcnn::predict), one row each: the
    /// box in input pixels, then a score vector over the `C − 1`
    /// foreground classes, zero except at the detection's class; padded
    /// with all-zero rows.
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `[B, max(1, D_max), 4 + C − 1]`.
    fn detect(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<3>> {
        crate::detection::layout::detect_with(images, self.num_classes() - 1, |x| self.predict(x))
    }
}
