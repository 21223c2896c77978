//! Predictions drawn on the input image, for a person to look at
//! (`unidl infer --draw`): captions, boxes with labels and scores, class
//! maps and instance masks as translucent colours, keypoints as dots.
//!
//! Small inputs (a 28-pixel digit) are enlarged by a whole factor first, so
//! that the drawing is legible; coordinates follow. Text needs a TrueType
//! font (`UNIDL_FONT`, else DejaVu/Liberation Sans from the usual Debian
//! paths); without one, shapes are drawn and text is left out.

use std::path::Path;

use plotters::prelude::*;
use unidl_data::Image;

use crate::error::{Result, TrainError};
use crate::outputs::{ClassMap, Detection, InstanceMask, PredictedKeypoint};

/// A distinct colour per class index.
pub fn palette(class: usize) -> (u8, u8, u8) {
    const P: [(u8, u8, u8); 10] = [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 190),
        (0, 128, 128),
    ];
    P[class % P.len()]
}

/// An RGB picture to draw on.
#[derive(Debug, Clone)]
pub struct Canvas {
    width: usize,
    height: usize,
    scale: f32,
    rgb: Vec<u8>,
}

fn label_of(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| class.to_string())
}

impl Canvas {
    /// The image (gray or RGB(A), values in [0, 1]), enlarged by a whole
    /// factor until its longer side is at least 256 pixels.
    pub fn from_image(image: &Image) -> Self {
        let long = image.width.max(image.height).max(1);
        let k = 256usize.div_ceil(long).max(1);
        let (w, h) = (image.width * k, image.height * k);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (x / k, y / k);
                for c in 0..3 {
                    let ch = if image.channels >= 3 { c } else { 0 };
                    let v = image.get(sx, sy, ch.min(image.channels - 1));
                    rgb[(y * w + x) * 3 + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
        Canvas {
            width: w,
            height: h,
            scale: k as f32,
            rgb,
        }
    }

    /// Width and height in pixels (after enlarging).
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The RGB bytes, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.rgb
    }

    fn blend(&mut self, x: usize, y: usize, colour: (u8, u8, u8), alpha: f32) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            for (c, v) in [colour.0, colour.1, colour.2].into_iter().enumerate() {
                let old = f32::from(self.rgb[i + c]);
                self.rgb[i + c] = (old * (1.0 - alpha) + f32::from(v) * alpha).round() as u8;
            }
        }
    }

    /// Runs `f` on a plotters drawing area over the canvas.
    fn with_area(
        &mut self,
        f: impl FnOnce(
            &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
        ) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let (w, h) = (self.width as u32, self.height as u32);
        let area = BitMapBackend::with_buffer(&mut self.rgb, (w, h)).into_drawing_area();
        f(&area).map_err(|e| TrainError::Model(format!("drawing: {e}")))?;
        area.present()
            .map_err(|e| TrainError::Model(format!("drawing: {e}")))
    }

    /// A caption in the top-left corner on a dark band.
    pub fn caption(&mut self, text: &str) -> Result<()> {
        let has_font = crate::records::chart_font().is_some();
        let size = (self.height as f64 / 14.0).clamp(12.0, 28.0);
        let band = (size * 1.4) as i32;
        let width = self.width as i32;
        self.with_area(|a| {
            a.draw(&Rectangle::new(
                [(0, 0), (width, band)],
                RGBAColor(0, 0, 0, 0.6).filled(),
            ))
            .map_err(|e| e.to_string())?;
            if has_font {
                a.draw(&Text::new(
                    text.to_string(),
                    (4, (size * 0.2) as i32),
                    ("sans-serif", size).into_font().color(&WHITE),
                ))
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    /// Boxes (input pixels) with `label score` above each.
    pub fn detections(&mut self, detections: &[Detection], names: &[String]) -> Result<()> {
        let s = self.scale;
        let has_font = crate::records::chart_font().is_some();
        self.with_area(|a| {
            for d in detections {
                let (r, g, b) = palette(d.class);
                let c = RGBColor(r, g, b);
                let p0 = ((d.x0 * s) as i32, (d.y0 * s) as i32);
                let p1 = ((d.x1 * s) as i32, (d.y1 * s) as i32);
                a.draw(&Rectangle::new([p0, p1], c.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                if has_font {
                    let text = format!("{} {:.2}", label_of(names, d.class), d.score);
                    a.draw(&Rectangle::new(
                        [(p0.0, p0.1 - 16), (p0.0 + 8 * text.len() as i32, p0.1)],
                        c.filled(),
                    ))
                    .map_err(|e| e.to_string())?;
                    a.draw(&Text::new(
                        text,
                        (p0.0 + 2, p0.1 - 15),
                        ("sans-serif", 13).into_font().color(&WHITE),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })
    }

    /// A class map (input pixels) as translucent class colours; `background` is left clear.
    pub fn class_map(&mut self, map: &ClassMap, background: Option<u32>) -> Result<()> {
        self.overlay([map.width, map.height], 0.45, |i| {
            let c = map.classes[i];
            (Some(c) != background).then(|| palette(c as usize))
        });
        Ok(())
    }

    /// Instance masks as translucent colours with their boxes.
    pub fn instance_masks(&mut self, masks: &[InstanceMask], names: &[String]) -> Result<()> {
        for m in masks {
            let colour = palette(m.detection.class);
            self.overlay([m.width, m.height], 0.5, |i| {
                (m.mask[i] != 0).then_some(colour)
            });
        }
        let boxes: Vec<Detection> = masks.iter().map(|m| m.detection).collect();
        self.detections(&boxes, names)
    }

    /// Blends a `[width, height]` grid, scaled to the canvas (nearest
    /// neighbour), onto the canvas: `colour_at(row-major index)` gives the
    /// colour of a cell, or `None` to leave it clear.
    fn overlay(
        &mut self,
        [gw, gh]: [usize; 2],
        alpha: f32,
        colour_at: impl Fn(usize) -> Option<(u8, u8, u8)>,
    ) {
        if gw == 0 || gh == 0 {
            return;
        }
        let (sx, sy) = (
            gw as f32 / self.width as f32,
            gh as f32 / self.height as f32,
        );
        for y in 0..self.height {
            for x in 0..self.width {
                let (gx, gy) = ((x as f32 * sx) as usize, (y as f32 * sy) as usize);
                if let Some(c) = colour_at(gy.min(gh - 1) * gw + gx.min(gw - 1)) {
                    self.blend(x, y, c, alpha);
                }
            }
        }
    }

    /// Keypoints (input pixels) as dots coloured by joint, with a score above 0.
    pub fn keypoints(&mut self, keypoints: &[PredictedKeypoint]) -> Result<()> {
        let s = self.scale;
        let r = (self.width.max(self.height) as f32 / 120.0).max(2.0) as i32;
        self.with_area(|a| {
            for (j, k) in keypoints.iter().enumerate().filter(|(_, k)| k.score > 0.0) {
                let (cr, cg, cb) = palette(j);
                a.draw(&Circle::new(
                    ((k.x * s) as i32, (k.y * s) as i32),
                    r,
                    RGBColor(cr, cg, cb).filled(),
                ))
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    /// Writes a PNG atomically (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        let err = |e: String| TrainError::Checkpoint(format!("{}: {e}", path.display()));
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(
                &self.rgb,
                self.width as u32,
                self.height as u32,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| err(e.to_string()))?;
        unidl_tensor::module::write_atomic(path, &png).map_err(|e| err(e.to_string()))
    }
}

use image::ImageEncoder as _;
