//! SSD's default boxes (torchvision 0.24.0
//! `models.detection.anchor_utils.DefaultBoxGenerator`): on level `k`,
//! per cell, a box of scale `s_k`, one of `√(s_k·s_{k+1})`, and for each
//! aspect ratio `r` a pair `(s_k√r, s_k/√r)` and its transpose; centres at
//! `(i + 0.5) / (size / step_k)`; sizes clipped to `[0, 1]`; then scaled to
//! pixels of the transformed image. Computed in f32 with torchvision's
//! order of operations (the pair sizes in f64, as its Python does).

use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};

/// The generator's settings; defaults are `ssd300_vgg16`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultBoxConfig {
    /// Aspect ratios per level (besides the two square boxes).
    pub aspect_ratios: Vec<Vec<f64>>,
    /// Scales, one per level and one more (`s_{k+1}` of the last level).
    pub scales: Vec<f64>,
    /// Tiling step per level in pixels (torchvision: 8, 16, 32, 64, 100,
    /// 300); empty: the feature map's own size sets the tiling.
    pub steps: Vec<usize>,
    /// Clip the box sizes to `[0, 1]` of the image.
    pub clip: bool,
}

impl Default for DefaultBoxConfig {
    fn default() -> Self {
        DefaultBoxConfig {
            aspect_ratios: vec![
                vec![2.0],
                vec![2.0, 3.0],
                vec![2.0, 3.0],
                vec![2.0, 3.0],
                vec![2.0],
                vec![2.0],
            ],
            scales: vec![0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
            steps: vec![8, 16, 32, 64, 100, 300],
            clip: true,
        }
    }
}

/// The generator. Build it with [`DefaultBoxConfig::init`].
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultBoxes {
    config: DefaultBoxConfig,
    /// Per level, the `(w, h)` pairs of a cell as fractions of the image.
    wh: Vec<Vec<[f32; 2]>>,
}

impl DefaultBoxConfig {
    /// Checks the settings; errors are [`VisionError::Config`] naming the
    /// key under `default_boxes.`.
    pub fn init(&self) -> Result<DefaultBoxes> {
        let err = |key: &str, reason: String| VisionError::Config {
            key: format!("default_boxes.{key}"),
            reason,
        };
        let n = self.aspect_ratios.len();
        if n == 0 || self.scales.len() != n + 1 {
            return Err(err(
                "scales",
                format!(
                    "{} scales for {n} levels: need one per level and one more",
                    self.scales.len()
                ),
            ));
        }
        if !self.steps.is_empty() && self.steps.len() != n {
            return Err(err(
                "steps",
                format!("{} steps for {n} levels", self.steps.len()),
            ));
        }
        if self.steps.contains(&0) {
            return Err(err("steps", "must be at least 1".into()));
        }
        if self.scales.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self
                .aspect_ratios
                .iter()
                .flatten()
                .any(|r| !(r.is_finite() && *r > 0.0))
        {
            return Err(err(
                "scales",
                "scales and aspect ratios must be finite and positive".into(),
            ));
        }
        let wh = (0..n)
            .map(|k| {
                let s = self.scales[k];
                let s2 = (s * self.scales[k + 1]).sqrt();
                let mut pairs = vec![[s, s], [s2, s2]];
                for &r in &self.aspect_ratios[k] {
                    let q = r.sqrt();
                    let (w, h) = (s * q, s / q);
                    pairs.push([w, h]);
                    pairs.push([h, w]);
                }
                pairs
                    .into_iter()
                    .map(|[w, h]| {
                        let (w, h) = (w as f32, h as f32);
                        if self.clip {
                            [w.clamp(0.0, 1.0), h.clamp(0.0, 1.0)]
                        } else {
                            [w, h]
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(DefaultBoxes {
            config: self.clone(),
            wh,
        })
    }
}

impl DefaultBoxes {
    /// Levels.
    pub fn levels(&self) -> usize {
        self.wh.len()
    }

    /// Boxes per cell on each level (`2 + 2·ratios`).
    pub fn num_anchors_per_location(&self) -> Vec<usize> {
        self.wh.iter().map(Vec::len).collect()
    }

    /// The boxes `[x0, y0, x1, y1]` in pixels of an `image_size` `[H, W]`
    /// image whose maps have `grid_sizes` `[h, w]`, level by level, cells
    /// row-major, then the cell's boxes in order. A level count other than
    /// the generator's is [`VisionError::Input`].
    pub fn boxes(
        &self,
        image_size: [usize; 2],
        grid_sizes: &[[usize; 2]],
    ) -> Result<Vec<[f32; 4]>> {
        if grid_sizes.len() != self.wh.len() {
            return Err(VisionError::Input {
                model: "DefaultBoxGenerator".into(),
                shape: grid_sizes.iter().flatten().copied().collect(),
                reason: format!(
                    "{} feature maps, {} default-box levels",
                    grid_sizes.len(),
                    self.wh.len()
                ),
            });
        }
        let (ih, iw) = (image_size[0] as f32, image_size[1] as f32);
        let mut out = Vec::new();
        for (k, (&[gh, gw], pairs)) in grid_sizes.iter().zip(&self.wh).enumerate() {
            let (fy, fx) = match self.config.steps.get(k) {
                Some(&s) => (
                    (image_size[0] as f64 / s as f64) as f32,
                    (image_size[1] as f64 / s as f64) as f32,
                ),
                None => (gh as f32, gw as f32),
            };
            for y in 0..gh {
                let cy = (y as f32 + 0.5) / fy;
                for x in 0..gw {
                    let cx = (x as f32 + 0.5) / fx;
                    for &[w, h] in pairs {
                        out.push([
                            (cx - 0.5 * w) * iw,
                            (cy - 0.5 * h) * ih,
                            (cx + 0.5 * w) * iw,
                            (cy + 0.5 * h) * ih,
                        ]);
                    }
                }
            }
        }
        Ok(out)
    }
}
