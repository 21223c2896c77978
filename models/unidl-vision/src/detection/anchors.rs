//! Anchor boxes as torchvision 0.24.0's
//! `torchvision.models.detection.anchor_utils.AnchorGenerator`.
//!
//! Per feature level, the cell anchors are centred on the origin: for every
//! aspect ratio `r` (height / width) and size `s`, `w = s / √r`,
//! `h = s · √r` and the box `[-w, -h, w, h] / 2` **rounded** to whole
//! pixels (half to even, as `torch.round`), all in f32 as torchvision
//! computes them. They are ordered ratio-major (`ratios × sizes`). On a
//! grid of `gh × gw` cells over an image of `H × W` pixels the stride is
//! `(H div gh, W div gw)` (integer division) and the anchors of cell `(y, x)`
//! are the cell anchors shifted by `(x · stride_w, y · stride_h)`; rows are
//! ordered cell by cell (`y`, then `x`), then anchor — the order of the
//! heads' outputs.
//!
//! Anchors depend only on sizes, so they are computed on the host.

use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};

/// RetinaNet's anchor sizes: for each of 32, 64, 128, 256, 512 the sizes
/// `(x, int(x·2^(1/3)), int(x·2^(2/3)))` (torchvision's `_default_anchorgen`,
/// truncated to integers as there).
pub fn retinanet_sizes() -> Vec<Vec<f32>> {
    [32.0f64, 64.0, 128.0, 256.0, 512.0]
        .iter()
        .map(|&x| {
            vec![
                x as f32,
                (x * 2f64.powf(1.0 / 3.0)).trunc() as f32,
                (x * 2f64.powf(2.0 / 3.0)).trunc() as f32,
            ]
        })
        .collect()
}

/// RetinaNet's aspect ratios, `(0.5, 1, 2)` on each of 5 levels.
pub fn retinanet_aspect_ratios() -> Vec<Vec<f32>> {
    vec![vec![0.5, 1.0, 2.0]; 5]
}

/// Sizes and aspect ratios per feature level (torchvision's
/// `AnchorGenerator(sizes, aspect_ratios)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// Anchor sizes (pixels) per level.
    pub sizes: Vec<Vec<f32>>,
    /// Aspect ratios (height / width) per level.
    pub aspect_ratios: Vec<Vec<f32>>,
}

impl Default for AnchorConfig {
    /// RetinaNet's: [`retinanet_sizes`] × [`retinanet_aspect_ratios`].
    fn default() -> Self {
        AnchorConfig {
            sizes: retinanet_sizes(),
            aspect_ratios: retinanet_aspect_ratios(),
        }
    }
}

impl AnchorConfig {
    /// Builds the generator. Levels that differ in number, an empty level,
    /// or a size or ratio that is not finite and positive is
    /// [`VisionError::Config`].
    pub fn init(&self) -> Result<AnchorGenerator> {
        let err = |key: &str, reason: String| VisionError::Config {
            key: format!("anchors.{key}"),
            reason,
        };
        if self.sizes.is_empty() || self.sizes.len() != self.aspect_ratios.len() {
            return Err(err(
                "sizes",
                format!(
                    "{} levels of sizes and {} of aspect ratios: need the same number, at least 1",
                    self.sizes.len(),
                    self.aspect_ratios.len()
                ),
            ));
        }
        for (key, levels) in [
            ("sizes", &self.sizes),
            ("aspect_ratios", &self.aspect_ratios),
        ] {
            for (i, l) in levels.iter().enumerate() {
                if l.is_empty() || l.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                    return Err(err(
                        key,
                        format!("level {i}: {l:?} must be non-empty, finite and positive"),
                    ));
                }
            }
        }
        let cell_anchors = self
            .sizes
            .iter()
            .zip(&self.aspect_ratios)
            .map(|(s, r)| generate_anchors(s, r))
            .collect();
        Ok(AnchorGenerator {
            config: self.clone(),
            cell_anchors,
        })
    }
}

/// torchvision's `generate_anchors(scales, aspect_ratios)`: zero-centred,
/// rounded boxes, ratio-major.
fn generate_anchors(scales: &[f32], ratios: &[f32]) -> Vec<[f32; 4]> {
    let mut out = Vec::with_capacity(scales.len() * ratios.len());
    for &r in ratios {
        let h_ratio = r.sqrt();
        let w_ratio = 1.0 / h_ratio;
        for &s in scales {
            let ws = w_ratio * s;
            let hs = h_ratio * s;
            out.push([-ws, -hs, ws, hs].map(|v| (v / 2.0).round_ties_even()));
        }
    }
    out
}

/// The anchor generator. Build it with [`AnchorConfig::init`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorGenerator {
    config: AnchorConfig,
    cell_anchors: Vec<Vec<[f32; 4]>>,
}

impl AnchorGenerator {
    /// The configuration.
    pub fn config(&self) -> &AnchorConfig {
        &self.config
    }

    /// Number of feature levels.
    pub fn levels(&self) -> usize {
        self.cell_anchors.len()
    }

    /// Anchors per grid cell on each level (`sizes · ratios`; 9 for RetinaNet).
    pub fn num_anchors_per_location(&self) -> Vec<usize> {
        self.cell_anchors.iter().map(Vec::len).collect()
    }

    /// The zero-centred cell anchors `[x0, y0, x1, y1]` of each level.
    pub fn cell_anchors(&self) -> &[Vec<[f32; 4]>] {
        &self.cell_anchors
    }

    /// The anchors of each level for an image (batch) of `image_size`
    /// `[H, W]` pixels whose feature maps have `grid_sizes` `[h, w]`, finest
    /// first. A level count that differs from the generator's or a grid
    /// larger than the image is [`VisionError::Input`].
    pub fn grid_anchors(
        &self,
        image_size: [usize; 2],
        grid_sizes: &[[usize; 2]],
    ) -> Result<Vec<Vec<[f32; 4]>>> {
        if grid_sizes.len() != self.cell_anchors.len() {
            return Err(VisionError::Input {
                model: "AnchorGenerator".into(),
                shape: grid_sizes.iter().flatten().copied().collect(),
                reason: format!(
                    "{} feature maps, {} anchor levels",
                    grid_sizes.len(),
                    self.cell_anchors.len()
                ),
            });
        }
        let mut out = Vec::with_capacity(grid_sizes.len());
        for (&[gh, gw], base) in grid_sizes.iter().zip(&self.cell_anchors) {
            if gh == 0 || gw == 0 || gh > image_size[0] || gw > image_size[1] {
                return Err(VisionError::Input {
                    model: "AnchorGenerator".into(),
                    shape: vec![gh, gw],
                    reason: format!(
                        "a feature grid must be non-empty and within the image {image_size:?}"
                    ),
                });
            }
            let (sh, sw) = (image_size[0] / gh, image_size[1] / gw);
            let mut level = Vec::with_capacity(gh * gw * base.len());
            for y in 0..gh {
                let dy = (y * sh) as f32;
                for x in 0..gw {
                    let dx = (x * sw) as f32;
                    for a in base {
                        level.push([a[0] + dx, a[1] + dy, a[2] + dx, a[3] + dy]);
                    }
                }
            }
            out.push(level);
        }
        Ok(out)
    }

    /// [`grid_anchors`](Self::grid_anchors) concatenated over the levels
    /// (torchvision's per-image anchors; the same for every image of a batch).
    pub fn anchors(
        &self,
        image_size: [usize; 2],
        grid_sizes: &[[usize; 2]],
    ) -> Result<Vec<[f32; 4]>> {
        Ok(self
            .grid_anchors(image_size, grid_sizes)?
            .into_iter()
            .flatten()
            .collect())
    }
}
