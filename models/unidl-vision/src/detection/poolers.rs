//! Multi-scale RoI Align over the levels of a feature pyramid — Lin et al.,
//! "Feature Pyramid Networks for Object Detection" (CVPR 2017,
//! arXiv:1612.03144), eq. (1) — as `torchvision.ops.MultiScaleRoIAlign` of
//! torchvision 0.24.0: each box is pooled from the level
//! `floor(4 + log2(sqrt(area) / 224) + 1e-6)`, clamped to the levels
//! present, with [`RoiAlign`] (`aligned = false`), and the results come back
//! in the boxes' order.
//!
//! The scale of each level is inferred from its height and the largest image
//! height, rounded to a power of two, exactly as torchvision does. Two
//! differences, both refusals of inputs torchvision would pool into
//! garbage: the named levels must be one octave apart each (torchvision
//! assumes it and pools from the wrong map otherwise), and the scales are
//! inferred on every call (torchvision keeps those of its first call; they
//! are the same whenever the feature maps keep their stride).

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::error::{Result, RoiAlignError};
use super::roi_align::{Roi, RoiAlign, align, checked, read_boxes};

/// The FPN level of a box: `torchvision.ops.poolers.LevelMapper`.
///
/// # Shapes
/// - boxes `[L_i, 4]` per image → one level per box
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelMapper {
    /// The finest level present (`-log2` of its scale: 2 for stride 4).
    pub k_min: i32,
    /// The coarsest level present.
    pub k_max: i32,
    /// Box size (sqrt of the area, in image pixels) that maps to
    /// `canonical_level`; 224 in the FPN paper.
    pub canonical_scale: u32,
    /// Level of a box of `canonical_scale`; 4 in the FPN paper.
    pub canonical_level: i32,
    /// Added before rounding down, so that boxes exactly at a level boundary
    /// go up; 1e-6.
    pub eps: f32,
}

impl LevelMapper {
    /// Levels `k_min..=k_max` with torchvision's eps (1e-6).
    pub fn new(k_min: i32, k_max: i32, canonical_scale: u32, canonical_level: i32) -> Self {
        Self {
            k_min,
            k_max,
            canonical_scale,
            canonical_level,
            eps: 1e-6,
        }
    }

    /// The level of one box `(x1, y1, x2, y2)` counted from `k_min` (0 = the
    /// finest map), in `f32` as torchvision computes it. `None` when the
    /// area is negative (an inverted box): torchvision's level is then NaN
    /// cast to an integer, which matches no level, and the box pools to 0.
    pub fn level(&self, b: [f32; 4]) -> Option<usize> {
        let s = ((b[2] - b[0]) * (b[3] - b[1])).sqrt();
        let level =
            (self.canonical_level as f32 + (s / self.canonical_scale as f32).log2() + self.eps)
                .floor();
        if level.is_nan() {
            return None;
        }
        let level = level.clamp(self.k_min as f32, self.k_max as f32);
        usize::try_from(level as i64 - i64::from(self.k_min)).ok()
    }

    /// The level of every box of every image, images in order.
    ///
    /// # Shapes
    /// - `boxes`: tensors `[L_i, 4]` `(x1, y1, x2, y2)`, one per image
    /// - output: `ΣL_i` levels
    ///
    /// # Errors
    /// A box tensor that is not `[L, 4]`, a non-finite coordinate.
    pub fn levels(&self, boxes: &[Tensor<2>]) -> Result<Vec<Option<usize>>> {
        Ok(read_boxes(boxes, boxes.len())?
            .iter()
            .map(|r| self.level(r.coords))
            .collect())
    }
}

/// RoI Align from the feature-pyramid level that suits each box's size:
/// `torchvision.ops.MultiScaleRoIAlign`.
///
/// # Shapes
/// - named maps `[N, C, H_l, W_l]`, boxes `[L_i, 4]` per image →
///   `[ΣL_i, C, h, w]` with `[h, w] = output_size`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiScaleRoiAlign {
    /// The feature maps to pool from; the maps are taken in the order they
    /// are given to [`forward`](Self::forward), not in this order.
    pub featmap_names: Vec<String>,
    /// Output bins per box, `[h, w]`.
    pub output_size: [usize; 2],
    /// Sampling points per bin along each axis; `<= 0` is adaptive.
    pub sampling_ratio: i32,
    /// See [`LevelMapper::canonical_scale`]; 224.
    #[serde(default = "canonical_scale")]
    pub canonical_scale: u32,
    /// See [`LevelMapper::canonical_level`]; 4.
    #[serde(default = "canonical_level")]
    pub canonical_level: i32,
}

fn canonical_scale() -> u32 {
    224
}

fn canonical_level() -> i32 {
    4
}

impl MultiScaleRoiAlign {
    /// A pooler over the maps named `featmap_names`, with the FPN paper's
    /// canonical box size 224 at level 4.
    pub fn new(featmap_names: &[&str], output_size: [usize; 2], sampling_ratio: i32) -> Self {
        Self {
            featmap_names: featmap_names.iter().map(|s| s.to_string()).collect(),
            output_size,
            sampling_ratio,
            canonical_scale: 224,
            canonical_level: 4,
        }
    }

    /// With another canonical box size and level.
    pub fn with_canonical(self, canonical_scale: u32, canonical_level: i32) -> Self {
        Self {
            canonical_scale,
            canonical_level,
            ..self
        }
    }

    /// The scale of each feature map and the level mapper: torchvision's
    /// `_setup_scales`. A map's scale is its height over the largest image
    /// height, rounded to a power of two (in `log2`, half to even).
    ///
    /// # Shapes
    /// - `feature_sizes`: `[H, W]` of each pooled map, finest first
    /// - `image_shapes`: `[h, w]` of each image before batching
    /// - output: one scale per map
    ///
    /// # Errors
    /// No image, an empty image or map, maps that are not one octave apart
    /// each from the finest to the coarsest.
    pub fn setup_scales(
        &self,
        feature_sizes: &[[usize; 2]],
        image_shapes: &[[usize; 2]],
    ) -> Result<(Vec<f32>, LevelMapper)> {
        let shapes_error = |reason: &str| RoiAlignError::ImageShapes {
            shapes: image_shapes.to_vec(),
            reason: reason.into(),
        };
        if image_shapes.is_empty() {
            return Err(shapes_error("no image"));
        }
        if image_shapes.iter().any(|s| s.contains(&0)) {
            return Err(shapes_error("an image is empty"));
        }
        let max_h = image_shapes.iter().map(|s| s[0]).max().unwrap_or(1);
        let scales: Vec<f32> = feature_sizes
            .iter()
            .map(|&[fh, _]| {
                // torch.tensor(float(H) / float(h)).log2().round(), in float32
                let approx = (fh as f64 / max_h as f64) as f32;
                2f32.powi(approx.log2().round_ties_even() as i32)
            })
            .collect();
        let level = |s: f32| (-s.log2()) as i32;
        let (k_min, k_max) = match (scales.first(), scales.last()) {
            (Some(&a), Some(&b)) => (level(a), level(b)),
            _ => {
                return Err(RoiAlignError::Scales {
                    scales,
                    reason: "no feature map".into(),
                });
            }
        };
        let consecutive = scales
            .iter()
            .enumerate()
            .all(|(i, &s)| level(s) == k_min + i as i32);
        if !consecutive || scales.iter().any(|s| !s.is_normal()) {
            return Err(RoiAlignError::Scales {
                scales,
                reason: "expected one octave between consecutive maps, finest first".into(),
            });
        }
        let mapper = LevelMapper::new(k_min, k_max, self.canonical_scale, self.canonical_level);
        Ok((scales, mapper))
    }

    /// Pools every box from its level.
    ///
    /// # Shapes
    /// - `features`: named maps `[N, C, H_l, W_l]` in pyramid order, finest
    ///   first (an FPN's ordered dict); those not in `featmap_names` are
    ///   ignored
    /// - `boxes`: at most `N` tensors `[L_i, 4]`, `(x1, y1, x2, y2)` in image
    ///   pixels, one per image
    /// - `image_shapes`: `[h, w]` of each image (before padding to a batch)
    /// - output: `[ΣL_i, C, h, w]` with `[h, w] = output_size`, image 0's
    ///   boxes first
    ///
    /// # Errors
    /// No map named, maps of different batch size or channels or without
    /// rows, scales that are not consecutive levels, image shapes refused by
    /// [`setup_scales`](Self::setup_scales), and everything
    /// [`RoiAlign::forward_boxes`] refuses.
    pub fn forward(
        &self,
        features: &[(String, Tensor<4>)],
        boxes: &[Tensor<2>],
        image_shapes: &[[usize; 2]],
    ) -> Result<Tensor<4>> {
        let (named, sizes, align_cfg) = self.named_maps(features)?;
        let n = named[0].1.dims()[0];
        let rois = read_boxes(boxes, n)?;
        self.pool(&named, &sizes, &rois, image_shapes, align_cfg)
    }

    /// The maps named in `featmap_names` (checked: same batch and
    /// channels, non-empty), their sizes and the RoI Align settings.
    #[allow(clippy::type_complexity)]
    fn named_maps<'a>(
        &self,
        features: &'a [(String, Tensor<4>)],
    ) -> Result<(Vec<(&'a String, &'a Tensor<4>)>, Vec<[usize; 2]>, RoiAlign)> {
        let align_cfg = RoiAlign::new(self.output_size).with_sampling_ratio(self.sampling_ratio);
        align_cfg.check()?;
        let named: Vec<(&String, &Tensor<4>)> = features
            .iter()
            .filter(|(k, _)| self.featmap_names.contains(k))
            .map(|(k, t)| (k, t))
            .collect();
        let Some(&(_, first)) = named.first() else {
            return Err(RoiAlignError::NoFeatureMaps {
                names: self.featmap_names.clone(),
                given: features.iter().map(|(k, _)| k.clone()).collect(),
            });
        };
        let [n, c, _, _] = first.dims();
        for (name, t) in &named {
            let shape = t.dims();
            let reason = if shape[0] != n || shape[1] != c {
                format!("the first named map has batch {n} and {c} channels")
            } else if shape[2] == 0 || shape[3] == 0 {
                "no rows or columns".to_string()
            } else {
                continue;
            };
            return Err(RoiAlignError::FeatureMap {
                name: name.to_string(),
                shape,
                reason,
            });
        }
        let sizes: Vec<[usize; 2]> = named
            .iter()
            .map(|(_, t)| {
                let [_, _, h, w] = t.dims();
                [h, w]
            })
            .collect();
        Ok((named, sizes, align_cfg))
    }

    /// [`forward`](Self::forward) with the boxes on the host: one list of
    /// `(x1, y1, x2, y2)` per image (what a detector's proposal step
    /// produces), without a round trip through the device.
    ///
    /// # Shapes
    /// as [`forward`](Self::forward), `boxes[i].len()` = `L_i`.
    ///
    /// # Errors
    /// as [`forward`](Self::forward); a coordinate that is not finite is
    /// [`RoiAlignError::NonFiniteBox`].
    pub fn forward_host(
        &self,
        features: &[(String, Tensor<4>)],
        boxes: &[Vec<[f32; 4]>],
        image_shapes: &[[usize; 2]],
    ) -> Result<Tensor<4>> {
        let (named, sizes, align_cfg) = self.named_maps(features)?;
        let n = named[0].1.dims()[0];
        let mut rois = Vec::new();
        for (image, list) in boxes.iter().enumerate() {
            if !list.is_empty() && image >= n {
                return Err(RoiAlignError::BatchIndex {
                    roi: rois.len(),
                    index: image as f32,
                    batch: n,
                });
            }
            for &coords in list {
                rois.push(checked(rois.len(), image, coords)?);
            }
        }
        self.pool(&named, &sizes, &rois, image_shapes, align_cfg)
    }

    fn pool(
        &self,
        named: &[(&String, &Tensor<4>)],
        sizes: &[[usize; 2]],
        rois: &[Roi],
        image_shapes: &[[usize; 2]],
        align_cfg: RoiAlign,
    ) -> Result<Tensor<4>> {
        let (_, first) = named[0];
        let [_, c, _, _] = first.dims();
        let (scales, mapper) = self.setup_scales(sizes, image_shapes)?;
        if named.len() == 1 {
            let cfg = align_cfg.with_spatial_scale(scales[0]);
            return align(first.clone(), rois, &cfg);
        }

        let levels: Vec<Option<usize>> = rois.iter().map(|r| mapper.level(r.coords)).collect();
        let [oh, ow] = self.output_size;
        let device = first.device();
        let mut parts = Vec::new();
        // order[j]: the box whose result is row j of the concatenated parts
        let mut order: Vec<usize> = Vec::with_capacity(rois.len());
        for (l, ((_, feature), &scale)) in named.iter().zip(&scales).enumerate() {
            let idx: Vec<usize> = (0..rois.len()).filter(|&i| levels[i] == Some(l)).collect();
            if idx.is_empty() {
                continue;
            }
            let sub: Vec<_> = idx.iter().map(|&i| rois[i]).collect();
            let cfg = align_cfg.with_spatial_scale(scale);
            parts.push(align((*feature).clone(), &sub, &cfg)?);
            order.extend(idx);
        }
        // boxes with no level (negative area) stay 0, as in torchvision
        let unmapped: Vec<usize> = (0..rois.len()).filter(|&i| levels[i].is_none()).collect();
        if !unmapped.is_empty() {
            parts.push(Tensor::zeros(
                [unmapped.len(), c, oh, ow],
                (&device, first.dtype()),
            ));
            order.extend(unmapped);
        }
        if parts.is_empty() {
            return Ok(Tensor::zeros([0, c, oh, ow], (&device, first.dtype())));
        }
        let pooled = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Tensor::cat(parts, 0)
        };
        if order.iter().enumerate().all(|(j, &i)| i == j) {
            return Ok(pooled);
        }
        // back to the boxes' order: result[order[j]] = pooled[j]
        let mut inverse = vec![0i64; order.len()];
        for (j, &i) in order.iter().enumerate() {
            inverse[i] = j as i64;
        }
        let len = inverse.len();
        let inverse = Tensor::<1, Int>::from_data(TensorData::new(inverse, [len]), &device);
        Ok(pooled.select(0, inverse))
    }
}
