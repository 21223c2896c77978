//! RoI Align — bilinear pooling of regions of interest, from He et al.,
//! "Mask R-CNN" (ICCV 2017, arXiv:1703.06870, §3) — as
//! `torchvision.ops.roi_align` of torchvision 0.24.0: the legacy form
//! (`aligned = false`, RoIs at least one feature pixel wide) and the
//! half-pixel-corrected one of Detectron2 (`aligned = true`), with a fixed or
//! an adaptive sampling grid.
//!
//! ## How it is computed
//!
//! Where the sampling points fall, which four feature pixels each one reads
//! and with what bilinear weights depends on the boxes only. Those are
//! computed on the host in `f32` with the very arithmetic of torchvision's
//! CPU kernel (`pre_calc_for_bilinear_interpolate`: points outside
//! `[-1, H] × [-1, W]` contribute nothing, points in `[-1, 0]` read row or
//! column 0, points at or past the last row or column read it alone). The
//! weights are separable — a bin's average over its `gh × gw` points is a sum
//! over the rows its points touch times a sum over the columns — so the host
//! does `O(K · (h · gh + w · gw))` work and the per-bin list of taps
//! (feature pixel, weight) has each pixel once. No host loop touches a
//! channel.
//!
//! The device then does three differentiable tensor operations per chunk of
//! RoIs: the features as rows `[N·H·W, C]`, `select` of every tap's row,
//! multiplication by the tap weights, and `select_assign` (add) into the
//! output rows `[K·h·w, C]`. Burn's autodiff differentiates those exactly, so
//! the gradient with respect to the features is torchvision's backward
//! kernel (the adjoint of the same sums). Chunks keep the gathered rows under
//! 2²⁴ elements, however many RoIs there are. The boxes get no gradient, as
//! in torchvision.

use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::error::{Result, RoiAlignError};
use super::sampling::roi_taps;

/// Gathered tap rows × channels processed at once; more RoIs than that are
/// processed in chunks.
const CHUNK_ELEMENTS: usize = 1 << 24;

/// The RoI Align operator's settings: `torchvision.ops.RoIAlign`. The
/// defaults of [`RoiAlign::new`] are torchvision's: spatial scale 1,
/// adaptive sampling, `aligned = false`.
///
/// # Shapes
/// - features `[N, C, H, W]`, RoIs `[K, 5]` (or per-image boxes `[L_i, 4]`)
///   → `[K, C, h, w]` with `[h, w] = output_size`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoiAlign {
    /// Output bins per RoI, `[h, w]`.
    pub output_size: [usize; 2],
    /// Factor from box coordinates to feature-map coordinates (1/stride).
    #[serde(default = "one")]
    pub spatial_scale: f32,
    /// Sampling points per bin along each axis; `<= 0` is adaptive:
    /// `ceil(roi_height / h)` × `ceil(roi_width / w)` per RoI.
    #[serde(default = "adaptive")]
    pub sampling_ratio: i32,
    /// Shift the boxes by -0.5 feature pixel (Detectron2's correction);
    /// `false` is the legacy form, whose RoIs are at least 1 × 1.
    #[serde(default)]
    pub aligned: bool,
}

fn one() -> f32 {
    1.0
}

fn adaptive() -> i32 {
    -1
}

impl RoiAlign {
    /// `output_size` bins per RoI with torchvision's defaults.
    pub fn new(output_size: [usize; 2]) -> Self {
        Self {
            output_size,
            spatial_scale: 1.0,
            sampling_ratio: -1,
            aligned: false,
        }
    }

    /// With this spatial scale.
    pub fn with_spatial_scale(self, spatial_scale: f32) -> Self {
        Self {
            spatial_scale,
            ..self
        }
    }

    /// With this sampling ratio (`<= 0`: adaptive).
    pub fn with_sampling_ratio(self, sampling_ratio: i32) -> Self {
        Self {
            sampling_ratio,
            ..self
        }
    }

    /// Aligned (`true`) or legacy (`false`) coordinates.
    pub fn with_aligned(self, aligned: bool) -> Self {
        Self { aligned, ..self }
    }

    /// Checks the settings: output sides at least 1, a finite positive scale.
    pub fn check(&self) -> Result<()> {
        if self.output_size.contains(&0) {
            return Err(RoiAlignError::OutputSize {
                size: self.output_size,
            });
        }
        if !(self.spatial_scale.is_finite() && self.spatial_scale > 0.0) {
            return Err(RoiAlignError::SpatialScale {
                value: self.spatial_scale,
            });
        }
        Ok(())
    }

    /// Pools every RoI of `rois` from `input`.
    ///
    /// # Shapes
    /// - `input`: `[N, C, H, W]` float features
    /// - `rois`: `[K, 5]`, each row `(batch index, x1, y1, x2, y2)` in box
    ///   coordinates (multiplied by `spatial_scale` to reach the features)
    /// - output: `[K, C, h, w]` with `[h, w] = output_size`, rows in the
    ///   order of `rois`
    ///
    /// # Errors
    /// Settings refused by [`RoiAlign::check`], features without channels,
    /// rows or columns, `rois` not `[K, 5]`, a batch index that is not a
    /// whole number in `[0, N)`, a non-finite coordinate, a sampling grid
    /// over [`MAX_SAMPLING_GRID`](super::MAX_SAMPLING_GRID).
    pub fn forward(&self, input: Tensor<4>, rois: Tensor<2>) -> Result<Tensor<4>> {
        let batch = input.dims()[0];
        let rois = read_rois(rois, batch)?;
        align(input, &rois, self)
    }

    /// Pools the boxes of each image of the batch (torchvision's list form):
    /// `boxes[i]` are image `i`'s boxes.
    ///
    /// # Shapes
    /// - `input`: `[N, C, H, W]` float features
    /// - `boxes`: at most `N` tensors `[L_i, 4]`, `(x1, y1, x2, y2)` each
    /// - output: `[ΣL_i, C, h, w]`, image 0's boxes first
    ///
    /// # Errors
    /// As [`RoiAlign::forward`]; a box tensor that is not `[L, 4]`, more box
    /// tensors than images.
    pub fn forward_boxes(&self, input: Tensor<4>, boxes: &[Tensor<2>]) -> Result<Tensor<4>> {
        let batch = input.dims()[0];
        let rois = read_boxes(boxes, batch)?;
        align(input, &rois, self)
    }
}

/// `torchvision.ops.roi_align(input, rois, output_size, spatial_scale,
/// sampling_ratio, aligned)`: [`RoiAlign::forward`] with these settings.
///
/// # Shapes
/// - `input`: `[N, C, H, W]`
/// - `rois`: `[K, 5]` rows `(batch index, x1, y1, x2, y2)`
/// - output: `[K, C, output_size[0], output_size[1]]`
///
/// # Errors
/// See [`RoiAlign::forward`].
pub fn roi_align(
    input: Tensor<4>,
    rois: Tensor<2>,
    output_size: [usize; 2],
    spatial_scale: f32,
    sampling_ratio: i32,
    aligned: bool,
) -> Result<Tensor<4>> {
    RoiAlign {
        output_size,
        spatial_scale,
        sampling_ratio,
        aligned,
    }
    .forward(input, rois)
}

/// torchvision's `convert_boxes_to_roi_format`: per-image boxes to one RoI
/// tensor whose first column is the image index.
///
/// # Shapes
/// - `boxes`: tensors `[L_i, 4]`, one per image, on one device
/// - output: `[ΣL_i, 5]`
///
/// # Errors
/// [`RoiAlignError::BoxesShape`] for a tensor that is not `[L, 4]`, or for an
/// empty list (no device to make the tensor on).
pub fn rois_from_boxes(boxes: &[Tensor<2>]) -> Result<Tensor<2>> {
    let mut parts = Vec::with_capacity(boxes.len());
    for (i, b) in boxes.iter().enumerate() {
        let [l, four] = b.dims();
        if four != 4 {
            return Err(RoiAlignError::BoxesShape {
                image: i,
                shape: vec![l, four],
            });
        }
        let ids = Tensor::<2>::full([l, 1], i as f32, (&b.device(), b.dtype()));
        parts.push(Tensor::cat(vec![ids, b.clone()], 1));
    }
    if parts.is_empty() {
        return Err(RoiAlignError::BoxesShape {
            image: 0,
            shape: vec![],
        });
    }
    Ok(Tensor::cat(parts, 0))
}

/// A RoI read to the host and checked: its image and `x1, y1, x2, y2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Roi {
    pub batch: usize,
    pub coords: [f32; 4],
}

/// Reads a `[K, 5]` RoI tensor and checks it against a batch of `batch`.
pub(crate) fn read_rois(rois: Tensor<2>, batch: usize) -> Result<Vec<Roi>> {
    let [k, five] = rois.dims();
    if five != 5 {
        return Err(RoiAlignError::RoisShape {
            shape: vec![k, five],
        });
    }
    let v: Vec<f32> = rois.into_data().iter::<f32>().collect();
    v.chunks_exact(5)
        .enumerate()
        .map(|(i, r)| {
            // torchvision truncates the index to int; a fraction is a caller bug
            let idx = r[0];
            if !(idx >= 0.0 && idx.fract() == 0.0 && (idx as usize) < batch) {
                return Err(RoiAlignError::BatchIndex {
                    roi: i,
                    index: idx,
                    batch,
                });
            }
            checked(i, idx as usize, [r[1], r[2], r[3], r[4]])
        })
        .collect()
}

/// Reads per-image `[L_i, 4]` boxes (image `i` = position `i`) and checks
/// them against a batch of `batch`.
pub(crate) fn read_boxes(boxes: &[Tensor<2>], batch: usize) -> Result<Vec<Roi>> {
    let mut out = Vec::new();
    for (image, b) in boxes.iter().enumerate() {
        let [l, four] = b.dims();
        if four != 4 {
            return Err(RoiAlignError::BoxesShape {
                image,
                shape: vec![l, four],
            });
        }
        if l > 0 && image >= batch {
            return Err(RoiAlignError::BatchIndex {
                roi: out.len(),
                index: image as f32,
                batch,
            });
        }
        let v: Vec<f32> = b.clone().into_data().iter::<f32>().collect();
        for c in v.chunks_exact(4) {
            out.push(checked(out.len(), image, [c[0], c[1], c[2], c[3]])?);
        }
    }
    Ok(out)
}

pub(crate) fn checked(roi: usize, batch: usize, coords: [f32; 4]) -> Result<Roi> {
    if coords.iter().all(|c| c.is_finite()) {
        Ok(Roi { batch, coords })
    } else {
        Err(RoiAlignError::NonFiniteBox { roi, coords })
    }
}

/// Taps of a chunk of RoIs, ready for the device.
#[derive(Default)]
struct Chunk {
    /// Feature row `n·H·W + y·W + x` of each tap.
    src: Vec<i64>,
    /// Output row within the chunk, `k·h·w + ph·w + pw`.
    dst: Vec<i64>,
    /// Weight of each tap.
    weight: Vec<f32>,
}

/// RoI Align of checked RoIs (see the module documentation).
pub(crate) fn align(input: Tensor<4>, rois: &[Roi], cfg: &RoiAlign) -> Result<Tensor<4>> {
    align_in_chunks(input, rois, cfg, CHUNK_ELEMENTS)
}

/// [`RoiAlign::forward`] gathering at most about `chunk_elements` tap rows ×
/// channels at once (at least one RoI per chunk): lets the test suite check
/// the chunked path on small inputs. Not part of the API.
///
/// # Shapes
/// As [`RoiAlign::forward`].
#[doc(hidden)]
pub fn roi_align_in_chunks(
    input: Tensor<4>,
    rois: Tensor<2>,
    cfg: &RoiAlign,
    chunk_elements: usize,
) -> Result<Tensor<4>> {
    let batch = input.dims()[0];
    let rois = read_rois(rois, batch)?;
    align_in_chunks(input, &rois, cfg, chunk_elements)
}

fn align_in_chunks(
    input: Tensor<4>,
    rois: &[Roi],
    cfg: &RoiAlign,
    chunk_elements: usize,
) -> Result<Tensor<4>> {
    cfg.check()?;
    let [n, c, h, w] = input.dims();
    if c == 0 || h == 0 || w == 0 {
        return Err(RoiAlignError::EmptyFeatures {
            shape: [n, c, h, w],
        });
    }
    let [oh, ow] = cfg.output_size;
    let device = input.device();
    let dtype = input.dtype();
    if rois.is_empty() {
        return Ok(Tensor::zeros([0, c, oh, ow], (&device, dtype)));
    }
    let bins = oh * ow;
    // [N, C, H, W] -> [N, H, W, C] -> [N·H·W, C]: one row per feature pixel
    let rows = input.permute([0, 2, 3, 1]).reshape([n * h * w, c]);
    let max_taps = (chunk_elements / c).max(1);

    let gather = |chunk: Chunk, rois_in_chunk: usize| -> Tensor<2> {
        let out_rows = rois_in_chunk * bins;
        let zeros = Tensor::<2>::zeros([out_rows, c], (&device, dtype));
        let m = chunk.src.len();
        if m == 0 {
            return zeros;
        }
        let src = Tensor::<1, Int>::from_data(TensorData::new(chunk.src, [m]), &device);
        let dst = Tensor::<1, Int>::from_data(TensorData::new(chunk.dst, [m]), &device);
        let weight =
            Tensor::<2>::from_data(TensorData::new(chunk.weight, [m, 1]), (&device, dtype));
        // [M, C]: every tap's feature row times its weight
        let taps = rows.clone().select(0, src) * weight;
        // [K_chunk·h·w, C]: taps summed into their bins
        zeros.select_assign(0, dst, taps, IndexingUpdateOp::Add)
    };

    let mut parts = Vec::new();
    let mut chunk = Chunk::default();
    let mut first = 0;
    for (k, roi) in rois.iter().enumerate() {
        let t = roi_taps(k, roi.coords, cfg, [h, w])?;
        let base = (roi.batch * h * w) as i64;
        let out_base = (k - first) * bins;
        for (ph, ys) in t.ys.iter().enumerate() {
            for (pw, xs) in t.xs.iter().enumerate() {
                let dst = (out_base + ph * ow + pw) as i64;
                for &(y, wy) in ys {
                    for &(x, wx) in xs {
                        chunk.src.push(base + (y * w + x) as i64);
                        chunk.dst.push(dst);
                        chunk.weight.push(wy * wx / t.count);
                    }
                }
            }
        }
        if chunk.src.len() >= max_taps {
            parts.push(gather(std::mem::take(&mut chunk), k + 1 - first));
            first = k + 1;
        }
    }
    if first < rois.len() {
        parts.push(gather(chunk, rois.len() - first));
    }
    let out = if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        Tensor::cat(parts, 0)
    };
    // [K·h·w, C] -> [K, h, w, C] -> [K, C, h, w]
    Ok(out.reshape([rois.len(), oh, ow, c]).permute([0, 3, 1, 2]))
}
