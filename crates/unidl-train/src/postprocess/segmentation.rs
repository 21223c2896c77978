//! Segmentation post-processing.
//!
//! - [`SemanticSegmentation`]: logits `[B, C, h, w]` → per-pixel argmax
//!   [`ClassMap`], optionally resized first (bilinear on the logits, as
//!   `F.interpolate(mode="bilinear", align_corners=False)`) to a fixed size or
//!   to each original image through [`InferOptions::geometry`].
//! - [`InstanceSegmentation`]: Mask R-CNN style per-detection mask logits in
//!   box coordinates, pasted into the image at the box exactly as
//!   torchvision's `paste_masks_in_image` (one pixel of zero padding, box
//!   expanded to match, bilinear resize) and thresholded → [`InstanceMask`].

use serde::{Deserialize, Serialize};
use unidl_tensor::Tensor;

use super::{ImageGeometry, argmax, check_unit, config_error, geometry_for, shape_error, sigmoid};
use crate::error::{Result, TrainError};
use crate::infer::{InferOptions, PostProcess};
use crate::outputs::{ClassMap, Detection, InstanceMask};

/// Bilinear resize of one `height × width` plane to `out_h × out_w`, as
/// `F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False)`.
pub fn resize_bilinear(
    src: &[f32],
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f32> {
    let ys = source_indices(height, out_h);
    let xs = source_indices(width, out_w);
    sample_bilinear(src, height, width, &ys, &xs)
}

/// PyTorch's `area_pixel_compute_source_index` (align_corners=False) for every output index.
fn source_indices(input: usize, output: usize) -> Vec<f32> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|i| (scale * (i as f32 + 0.5) - 0.5).max(0.0))
        .collect()
}

/// Bilinear samples of `src` at real row indices `ys` × column indices `xs`
/// (non-negative), weights computed as PyTorch's CPU kernel does.
fn sample_bilinear(src: &[f32], height: usize, width: usize, ys: &[f32], xs: &[f32]) -> Vec<f32> {
    let taps = |real: f32, size: usize| {
        let i0 = (real as usize).min(size - 1);
        let i1 = if i0 < size - 1 { i0 + 1 } else { i0 };
        let l1 = (real - i0 as f32).clamp(0.0, 1.0);
        (i0, i1, 1.0 - l1, l1)
    };
    let xt: Vec<_> = xs.iter().map(|&x| taps(x, width)).collect();
    let mut out = Vec::with_capacity(ys.len() * xs.len());
    for &y in ys {
        let (y0, y1, wy0, wy1) = taps(y, height);
        let (r0, r1) = (
            &src[y0 * width..(y0 + 1) * width],
            &src[y1 * width..(y1 + 1) * width],
        );
        for &(x0, x1, wx0, wx1) in &xt {
            let top = r0[x0] * wx0 + r0[x1] * wx1;
            let bottom = r1[x0] * wx0 + r1[x1] * wx1;
            out.push(top * wy0 + bottom * wy1);
        }
    }
    out
}

/// Configuration of [`SemanticSegmentation`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentationConfig {
    /// Resize the logits to this `[height, width]` before the argmax (when no
    /// geometry is given or `resize_to_original` is off).
    #[serde(default)]
    pub output_size: Option<[usize; 2]>,
    /// With [`InferOptions::geometry`], produce maps the size of each original
    /// image (undoing resize and letterbox padding). Default on.
    #[serde(default = "yes")]
    pub resize_to_original: bool,
    /// Network input `[height, width]`, when the logits are smaller than the
    /// input (a stride); default: the logits' size.
    #[serde(default)]
    pub input_size: Option<[usize; 2]>,
}

fn yes() -> bool {
    true
}

impl Default for SegmentationConfig {
    fn default() -> Self {
        SegmentationConfig {
            output_size: None,
            resize_to_original: true,
            input_size: None,
        }
    }
}

/// Semantic segmentation → one [`ClassMap`] per sample.
#[derive(Debug, Clone)]
pub struct SemanticSegmentation {
    config: SegmentationConfig,
}

impl SemanticSegmentation {
    /// Validates `config`.
    pub fn new(config: SegmentationConfig) -> Result<Self> {
        for (key, size) in [
            ("segmentation.output_size", config.output_size),
            ("segmentation.input_size", config.input_size),
        ] {
            if let Some(s) = size
                && (s[0] == 0 || s[1] == 0)
            {
                return Err(config_error(key, format!("{s:?} has a zero side")));
            }
        }
        Ok(SemanticSegmentation { config })
    }
}

impl PostProcess for SemanticSegmentation {
    type Output = ClassMap;

    fn process(&self, outputs: &Tensor, options: &InferOptions) -> Result<Vec<ClassMap>> {
        let shape = outputs.shape();
        if shape.len() != 4 {
            return Err(shape_error(
                "segmentation logits",
                "[batch, classes, height, width]",
                shape,
            ));
        }
        let (batch, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        let values = outputs.to_vec_f32()?;
        let [in_h, in_w] = self.config.input_size.unwrap_or([h, w]);
        let mut maps = Vec::with_capacity(batch);
        for b in 0..batch {
            let geometry = if self.config.resize_to_original {
                geometry_for(options, b, batch)?
            } else {
                None
            };
            let (ys, xs) = match (geometry, self.config.output_size) {
                (Some(g), _) => (
                    original_indices(g.original_height, h, in_h, g.scale_y, g.pad_y),
                    original_indices(g.original_width, w, in_w, g.scale_x, g.pad_x),
                ),
                (None, Some([oh, ow])) => (source_indices(h, oh), source_indices(w, ow)),
                (None, None) => (source_indices(h, h), source_indices(w, w)),
            };
            let planes: Vec<Vec<f32>> = (0..c)
                .map(|k| {
                    let off = (b * c + k) * h * w;
                    sample_bilinear(&values[off..off + h * w], h, w, &ys, &xs)
                })
                .collect();
            let n = ys.len() * xs.len();
            let mut scores = vec![0.0f32; c];
            let classes = (0..n)
                .map(|p| {
                    for (k, plane) in planes.iter().enumerate() {
                        scores[k] = plane[p];
                    }
                    argmax(&scores) as u32
                })
                .collect();
            maps.push(ClassMap {
                width: xs.len(),
                height: ys.len(),
                classes,
            });
        }
        Ok(maps)
    }
}

/// Logit-grid indices of the pixel centres of an original axis of `original`
/// pixels: `input = original · scale + pad`, `logit = input · size / input_size`.
fn original_indices(
    original: usize,
    size: usize,
    input_size: usize,
    scale: f64,
    pad: f64,
) -> Vec<f32> {
    let ratio = size as f64 / input_size as f64;
    (0..original)
        .map(|i| ((((i as f64 + 0.5) * scale + pad) * ratio - 0.5).max(0.0)) as f32)
        .collect()
}

/// Pastes one mask of probabilities `mask_h × mask_w`, predicted in the
/// coordinates of `bbox` (`[x0, y0, x1, y1]`, image pixels), into an
/// `image_width × image_height` image, as torchvision's `paste_masks_in_image`
/// with `padding = 1`: the mask gets a zero border, the box grows by the same
/// factor and is truncated to integers, the mask is resized bilinearly to the
/// box and copied where the box lies inside the image. Returns the soft mask,
/// row-major.
pub fn paste_mask(
    mask: &[f32],
    mask_h: usize,
    mask_w: usize,
    bbox: [f32; 4],
    image_width: usize,
    image_height: usize,
) -> Vec<f32> {
    let (ph, pw) = (mask_h + 2, mask_w + 2);
    let mut padded = vec![0.0f32; ph * pw];
    for y in 0..mask_h {
        padded[(y + 1) * pw + 1..(y + 1) * pw + 1 + mask_w]
            .copy_from_slice(&mask[y * mask_w..(y + 1) * mask_w]);
    }
    // torchvision scales by (M + 2) / M with M the mask width, for both axes
    let scale = ((mask_w + 2) as f64 / mask_w as f64) as f32;
    let (w_half, h_half) = (
        (bbox[2] - bbox[0]) * 0.5 * scale,
        (bbox[3] - bbox[1]) * 0.5 * scale,
    );
    let (xc, yc) = ((bbox[2] + bbox[0]) * 0.5, (bbox[3] + bbox[1]) * 0.5);
    let b = [
        (xc - w_half) as i64,
        (yc - h_half) as i64,
        (xc + w_half) as i64,
        (yc + h_half) as i64,
    ];
    let w = (b[2] - b[0] + 1).max(1) as usize;
    let h = (b[3] - b[1] + 1).max(1) as usize;
    let resized = resize_bilinear(&padded, ph, pw, h, w);
    let (iw, ih) = (image_width as i64, image_height as i64);
    let mut out = vec![0.0f32; image_width * image_height];
    let (x0, x1) = (b[0].max(0), (b[2] + 1).min(iw));
    let (y0, y1) = (b[1].max(0), (b[3] + 1).min(ih));
    for y in y0..y1 {
        let src_row = (y - b[1]) as usize * w;
        for x in x0..x1 {
            out[y as usize * image_width + x as usize] = resized[src_row + (x - b[0]) as usize];
        }
    }
    out
}

/// Configuration of [`InstanceSegmentation`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Mask grid `[height, width]` of each detection (28×28 in Mask R-CNN).
    pub mask_size: [usize; 2],
    /// Probability above which a pixel belongs to the instance (default 0.5).
    #[serde(default = "half")]
    pub mask_threshold: f64,
    /// The masks are logits (sigmoid applied first); default true.
    #[serde(default = "yes")]
    pub logits: bool,
    /// Image `[height, width]` to paste into when no geometry is given.
    #[serde(default)]
    pub image_size: Option<[usize; 2]>,
}

fn half() -> f64 {
    0.5
}

impl InstanceConfig {
    /// A config for masks of `mask_size` with the defaults.
    pub fn new(mask_size: [usize; 2]) -> Self {
        InstanceConfig {
            mask_size,
            mask_threshold: 0.5,
            logits: true,
            image_size: None,
        }
    }
}

/// Instance segmentation → [`InstanceMask`]s per sample.
///
/// Input `[B, N, 6 + mask_h · mask_w]`: per detection `x0, y0, x1, y1`
/// (input pixels), score, class, then the mask row-major. Rows whose score is
/// not above [`InferOptions::score_threshold`] are dropped (so zero-score
/// padding rows vanish); at most [`InferOptions::max_detections`] are kept in
/// row order.
#[derive(Debug, Clone)]
pub struct InstanceSegmentation {
    config: InstanceConfig,
}

impl InstanceSegmentation {
    /// Validates `config`.
    pub fn new(config: InstanceConfig) -> Result<Self> {
        if config.mask_size[0] == 0 || config.mask_size[1] == 0 {
            return Err(config_error(
                "instance.mask_size",
                format!("{:?} has a zero side", config.mask_size),
            ));
        }
        check_unit("instance.mask_threshold", config.mask_threshold)?;
        if let Some(s) = config.image_size
            && (s[0] == 0 || s[1] == 0)
        {
            return Err(config_error(
                "instance.image_size",
                format!("{s:?} has a zero side"),
            ));
        }
        Ok(InstanceSegmentation { config })
    }
}

impl PostProcess for InstanceSegmentation {
    type Output = Vec<InstanceMask>;

    /// Without `image_size` the masks are pasted into each sample's image.
    fn needs_geometry(&self) -> bool {
        self.config.image_size.is_none()
    }

    fn process(&self, outputs: &Tensor, options: &InferOptions) -> Result<Vec<Vec<InstanceMask>>> {
        let shape = outputs.shape();
        let [mh, mw] = self.config.mask_size;
        if shape.len() != 3 || shape[2] != 6 + mh * mw {
            return Err(shape_error(
                "instance segmentation outputs",
                &format!("[batch, detections, 6 + {mh}·{mw}]"),
                shape,
            ));
        }
        let (batch, n, width) = (shape[0], shape[1], shape[2]);
        let values = outputs.to_vec_f32()?;
        let mut out = Vec::with_capacity(batch);
        for b in 0..batch {
            let geometry = geometry_for(options, b, batch)?;
            let (iw, ih) = match (geometry, self.config.image_size) {
                (Some(g), _) => (g.original_width, g.original_height),
                (None, Some([h, w])) => (w, h),
                (None, None) => {
                    return Err(config_error(
                        "instance.image_size",
                        "needed when InferOptions::geometry is empty",
                    ));
                }
            };
            let mut masks = Vec::new();
            for r in values[b * n * width..(b + 1) * n * width].chunks(width) {
                if masks.len() == options.max_detections {
                    break;
                }
                if f64::from(r[4]) <= options.score_threshold {
                    continue;
                }
                if !(r[5] >= 0.0 && r[5].fract() == 0.0) {
                    return Err(TrainError::Model(format!(
                        "instance segmentation outputs: column 5 (class) of sample {b} is {}, not a class index",
                        r[5]
                    )));
                }
                let bbox = box_to_original([r[0], r[1], r[2], r[3]], geometry);
                let probs: Vec<f32> = if self.config.logits {
                    r[6..].iter().map(|v| sigmoid(*v)).collect()
                } else {
                    r[6..].to_vec()
                };
                let soft = paste_mask(&probs, mh, mw, bbox, iw, ih);
                let t = self.config.mask_threshold;
                masks.push(InstanceMask {
                    detection: Detection {
                        x0: bbox[0],
                        y0: bbox[1],
                        x1: bbox[2],
                        y1: bbox[3],
                        class: r[5] as usize,
                        score: r[4],
                    },
                    width: iw,
                    height: ih,
                    mask: soft.iter().map(|&p| u8::from(f64::from(p) > t)).collect(),
                });
            }
            out.push(masks);
        }
        Ok(out)
    }
}

fn box_to_original(b: [f32; 4], geometry: Option<ImageGeometry>) -> [f32; 4] {
    match geometry {
        None => b,
        Some(g) => [
            g.x_to_original(f64::from(b[0])) as f32,
            g.y_to_original(f64::from(b[1])) as f32,
            g.x_to_original(f64::from(b[2])) as f32,
            g.y_to_original(f64::from(b[3])) as f32,
        ],
    }
}
