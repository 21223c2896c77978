//! Keypoint post-processing.
//!
//! - [`HeatmapKeypoints`]: heatmaps `[B, K, h, w]` → the first maximum of
//!   each heatmap, refined to sub-pixel precision, as SimpleBaseline/HRNet's
//!   `get_final_preds` (a quarter pixel toward the higher neighbour) or
//!   DARK's (Zhang et al., CVPR 2020) Taylor expansion of the blurred
//!   log-heatmap; then scaled from heatmap to input pixels
//!   (`x · input_w / w`) and to the original image through
//!   [`InferOptions::geometry`]. The score is the heatmap maximum; as in
//!   HRNet, a heatmap whose maximum is not positive gives the point `(0, 0)`
//!   before scaling.
//! - [`RegressionKeypoints`]: coordinates `[B, 2K]` (`x0, y0, x1, y1, …`,
//!   PFLD style), normalised to `[0, 1]` of the input or in input pixels.

use serde::{Deserialize, Serialize};
use unidl_tensor::Tensor;

use super::{ImageGeometry, config_error, geometry_for, shape_error};
use crate::error::Result;
use crate::infer::{InferOptions, PostProcess};
use crate::outputs::PredictedKeypoint;

/// Sub-pixel refinement of a heatmap peak.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HeatmapRefinement {
    /// The integer argmax.
    None,
    /// ±0.25 px toward the higher neighbour on each axis (SimpleBaseline, HRNet).
    #[default]
    Quarter,
    /// DARK: Gaussian blur, log, one Newton step `−H⁻¹∇` at the peak.
    Dark,
}

/// Configuration of [`HeatmapKeypoints`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeatmapConfig {
    /// Refinement of the peak (default quarter offset).
    #[serde(default)]
    pub refinement: HeatmapRefinement,
    /// Odd Gaussian kernel size of DARK's blur (default 11).
    #[serde(default = "default_kernel")]
    pub blur_kernel: usize,
    /// Network input `[height, width]` (default: the heatmap size times
    /// `stride`).
    #[serde(default)]
    pub input_size: Option<[usize; 2]>,
    /// Input pixels per heatmap pixel when `input_size` is not given
    /// (default 1: keypoints in heatmap pixels; the keypoint task sets its
    /// own stride).
    #[serde(default)]
    pub stride: Option<usize>,
}

fn default_kernel() -> usize {
    11
}

impl Default for HeatmapConfig {
    fn default() -> Self {
        HeatmapConfig {
            refinement: HeatmapRefinement::Quarter,
            blur_kernel: default_kernel(),
            input_size: None,
            stride: None,
        }
    }
}

/// Heatmap keypoints → `K` [`PredictedKeypoint`]s per sample.
#[derive(Debug, Clone)]
pub struct HeatmapKeypoints {
    config: HeatmapConfig,
}

impl HeatmapKeypoints {
    /// Validates `config`.
    pub fn new(config: HeatmapConfig) -> Result<Self> {
        if config.blur_kernel == 0 || config.blur_kernel.is_multiple_of(2) {
            return Err(config_error(
                "keypoints.blur_kernel",
                format!("{} is not an odd size", config.blur_kernel),
            ));
        }
        if config.stride == Some(0) {
            return Err(config_error(
                "keypoints.stride",
                "0: give a positive stride",
            ));
        }
        if let Some(s) = config.input_size
            && (s[0] == 0 || s[1] == 0)
        {
            return Err(config_error(
                "keypoints.input_size",
                format!("{s:?} has a zero side"),
            ));
        }
        Ok(HeatmapKeypoints { config })
    }

    /// The refined peak `(x, y)` in heatmap pixels and the maximum of one heatmap.
    pub fn decode_heatmap(&self, hm: &[f32], height: usize, width: usize) -> (f64, f64, f32) {
        let mut best = 0;
        for (i, v) in hm.iter().enumerate() {
            if *v > hm[best] {
                best = i;
            }
        }
        let maxval = hm[best];
        let (mut x, mut y) = ((best % width) as f64, (best / width) as f64);
        if maxval <= 0.0 {
            (x, y) = (0.0, 0.0);
        }
        let at = |v: &[f64], px: usize, py: usize| v[py * width + px];
        match self.config.refinement {
            HeatmapRefinement::None => {}
            HeatmapRefinement::Quarter => {
                let px = (x + 0.5).floor() as usize;
                let py = (y + 0.5).floor() as usize;
                if 1 < px && px + 1 < width && 1 < py && py + 1 < height {
                    let h: Vec<f64> = hm.iter().map(|&v| f64::from(v)).collect();
                    x += 0.25 * sign(at(&h, px + 1, py) - at(&h, px - 1, py));
                    y += 0.25 * sign(at(&h, px, py + 1) - at(&h, px, py - 1));
                }
            }
            HeatmapRefinement::Dark => {
                let (px, py) = (x as usize, y as usize);
                if 1 < px && px + 2 < width && 1 < py && py + 2 < height {
                    let h: Vec<f64> = gaussian_blur(hm, height, width, self.config.blur_kernel)
                        .into_iter()
                        .map(|v| v.max(1e-10).ln())
                        .collect();
                    let dx = 0.5 * (at(&h, px + 1, py) - at(&h, px - 1, py));
                    let dy = 0.5 * (at(&h, px, py + 1) - at(&h, px, py - 1));
                    let dxx =
                        0.25 * (at(&h, px + 2, py) - 2.0 * at(&h, px, py) + at(&h, px - 2, py));
                    let dxy = 0.25
                        * (at(&h, px + 1, py + 1)
                            - at(&h, px + 1, py - 1)
                            - at(&h, px - 1, py + 1)
                            + at(&h, px - 1, py - 1));
                    let dyy =
                        0.25 * (at(&h, px, py + 2) - 2.0 * at(&h, px, py) + at(&h, px, py - 2));
                    let det = dxx * dyy - dxy * dxy;
                    if det != 0.0 {
                        // offset = −H⁻¹ ∇
                        x -= (dyy * dx - dxy * dy) / det;
                        y -= (-dxy * dx + dxx * dy) / det;
                    }
                }
            }
        }
        (x, y, maxval)
    }
}

/// NumPy's sign.
fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// OpenCV's `getGaussianKernel(k, 0)`: fixed tables up to 7, else the
/// Gaussian with `σ = 0.3·((k − 1)/2 − 1) + 0.8`.
fn gaussian_kernel(k: usize) -> Vec<f64> {
    match k {
        1 => vec![1.0],
        3 => vec![0.25, 0.5, 0.25],
        5 => vec![0.0625, 0.25, 0.375, 0.25, 0.0625],
        7 => vec![
            0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125,
        ],
        _ => {
            let sigma = 0.3 * ((k as f64 - 1.0) * 0.5 - 1.0) + 0.8;
            let c = (k as f64 - 1.0) / 2.0;
            let g: Vec<f64> = (0..k)
                .map(|i| (-(i as f64 - c).powi(2) / (2.0 * sigma * sigma)).exp())
                .collect();
            let s: f64 = g.iter().sum();
            g.into_iter().map(|v| v / s).collect()
        }
    }
}

/// DARK's `gaussian_blur`: a separable Gaussian with zero padding, rescaled
/// so that the maximum is the original maximum.
fn gaussian_blur(hm: &[f32], height: usize, width: usize, k: usize) -> Vec<f64> {
    let g = gaussian_kernel(k);
    let r = (k / 2) as isize;
    let conv = |src: &[f64], horizontal: bool| -> Vec<f64> {
        let mut out = vec![0.0; src.len()];
        for y in 0..height as isize {
            for x in 0..width as isize {
                let mut acc = 0.0;
                for (t, w) in g.iter().enumerate() {
                    let o = t as isize - r;
                    let (sx, sy) = if horizontal { (x + o, y) } else { (x, y + o) };
                    if (0..width as isize).contains(&sx) && (0..height as isize).contains(&sy) {
                        acc += w * src[(sy * width as isize + sx) as usize];
                    }
                }
                out[(y * width as isize + x) as usize] = acc;
            }
        }
        out
    };
    let src: Vec<f64> = hm.iter().map(|&v| f64::from(v)).collect();
    let origin_max = src.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let blurred = conv(&conv(&src, true), false);
    let new_max = blurred.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    blurred
        .into_iter()
        .map(|v| v * origin_max / new_max)
        .collect()
}

fn to_original(x: f64, y: f64, geometry: Option<ImageGeometry>) -> (f32, f32) {
    match geometry {
        None => (x as f32, y as f32),
        Some(g) => (g.x_to_original(x) as f32, g.y_to_original(y) as f32),
    }
}

impl PostProcess for HeatmapKeypoints {
    type Output = Vec<PredictedKeypoint>;

    fn process(
        &self,
        outputs: &Tensor,
        options: &InferOptions,
    ) -> Result<Vec<Vec<PredictedKeypoint>>> {
        let shape = outputs.shape();
        if shape.len() != 4 {
            return Err(shape_error(
                "keypoint heatmaps",
                "[batch, keypoints, height, width]",
                shape,
            ));
        }
        let (batch, k, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        let s = self.config.stride.unwrap_or(1);
        let [in_h, in_w] = self.config.input_size.unwrap_or([h * s, w * s]);
        let (sx, sy) = (in_w as f64 / w as f64, in_h as f64 / h as f64);
        let values = outputs.to_vec_f32()?;
        (0..batch)
            .map(|b| {
                let geometry = geometry_for(options, b, batch)?;
                Ok((0..k)
                    .map(|j| {
                        let off = (b * k + j) * h * w;
                        let (x, y, score) = self.decode_heatmap(&values[off..off + h * w], h, w);
                        let (x, y) = to_original(x * sx, y * sy, geometry);
                        PredictedKeypoint { x, y, score }
                    })
                    .collect())
            })
            .collect()
    }
}

/// Configuration of [`RegressionKeypoints`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegressionConfig {
    /// Coordinates are fractions of the input size (default true).
    #[serde(default = "yes")]
    pub normalized: bool,
    /// Network input `[height, width]` (needed when `normalized`).
    #[serde(default)]
    pub input_size: Option<[usize; 2]>,
}

fn yes() -> bool {
    true
}

/// Regressed keypoints `[B, 2K]` → `K` [`PredictedKeypoint`]s (score 1) per sample.
#[derive(Debug, Clone)]
pub struct RegressionKeypoints {
    config: RegressionConfig,
}

impl RegressionKeypoints {
    /// Validates `config`.
    pub fn new(config: RegressionConfig) -> Result<Self> {
        match config.input_size {
            None if config.normalized => Err(config_error(
                "keypoints.input_size",
                "needed to scale normalised coordinates to pixels",
            )),
            Some(s) if s[0] == 0 || s[1] == 0 => Err(config_error(
                "keypoints.input_size",
                format!("{s:?} has a zero side"),
            )),
            _ => Ok(RegressionKeypoints { config }),
        }
    }
}

impl PostProcess for RegressionKeypoints {
    type Output = Vec<PredictedKeypoint>;

    fn process(
        &self,
        outputs: &Tensor,
        options: &InferOptions,
    ) -> Result<Vec<Vec<PredictedKeypoint>>> {
        let shape = outputs.shape();
        if shape.len() != 2 || !shape[1].is_multiple_of(2) {
            return Err(shape_error(
                "keypoint coordinates",
                "[batch, 2 · keypoints]",
                shape,
            ));
        }
        let (batch, n) = (shape[0], shape[1]);
        let (sx, sy) = match (self.config.normalized, self.config.input_size) {
            (true, Some([h, w])) => (w as f64, h as f64),
            _ => (1.0, 1.0),
        };
        let values = outputs.to_vec_f64()?;
        (0..batch)
            .map(|b| {
                let geometry = geometry_for(options, b, batch)?;
                Ok(values[b * n..(b + 1) * n]
                    .chunks(2)
                    .map(|p| {
                        let (x, y) = to_original(p[0] * sx, p[1] * sy, geometry);
                        PredictedKeypoint { x, y, score: 1.0 }
                    })
                    .collect())
            })
            .collect()
    }
}
