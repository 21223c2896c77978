//! Where RoI Align samples: the sampling points of a RoI's bins, the feature
//! lines they read and their bilinear weights, computed on the host in `f32`
//! with the arithmetic of torchvision 0.24.0's CPU kernel
//! (`pre_calc_for_bilinear_interpolate`, `bilinear_interpolate`). Depends on
//! the boxes only, never on the features.

use super::error::{MAX_SAMPLING_GRID, Result, RoiAlignError};
use super::roi_align::RoiAlign;

/// One sample coordinate along an axis of `size` lines, as torchvision's
/// `bilinear_interpolate`: `None` outside `[-1, size]`, else the low and high
/// lines and their weights.
fn bilinear(v: f32, size: usize) -> Option<[(usize, f32); 2]> {
    if v < -1.0 || v > size as f32 {
        return None;
    }
    let v = if v <= 0.0 { 0.0 } else { v };
    let low = v as usize; // v >= 0: truncation is C's (int)
    let (low, high, v) = if low >= size - 1 {
        (size - 1, size - 1, (size - 1) as f32)
    } else {
        (low, low + 1, v)
    };
    let l = v - low as f32;
    Some([(low, 1.0 - l), (high, l)])
}

/// One axis of one RoI: for each of `bins` output bins, the lines its `grid`
/// samples read with their summed weights (each line once, zero weights
/// dropped).
fn axis_taps(
    start: f32,
    bin: f32,
    grid: usize,
    bins: usize,
    size: usize,
) -> Vec<Vec<(usize, f32)>> {
    (0..bins)
        .map(|p| {
            let mut taps: Vec<(usize, f32)> = Vec::with_capacity(2 * grid);
            for i in 0..grid {
                // torchvision: roi_start + p * bin + (i + .5f) * bin / grid
                let v = start + p as f32 * bin + (i as f32 + 0.5) * bin / grid as f32;
                if let Some(pair) = bilinear(v, size) {
                    taps.extend(pair);
                }
            }
            taps.sort_by_key(|t| t.0);
            let mut merged: Vec<(usize, f32)> = Vec::with_capacity(taps.len());
            for (line, w) in taps {
                match merged.last_mut() {
                    Some(last) if last.0 == line => last.1 += w,
                    _ => merged.push((line, w)),
                }
            }
            merged.retain(|t| t.1 != 0.0);
            merged
        })
        .collect()
}

/// The rows each RoI's sampling grid reads, per bin: returns the taps of
/// every bin (row-major over `[h, w]`) as (feature pixel within the image,
/// weight already divided by the sample count).
pub(crate) fn roi_taps(
    roi: usize,
    coords: [f32; 4],
    cfg: &RoiAlign,
    hw: [usize; 2],
) -> Result<RoiTaps> {
    let [oh, ow] = cfg.output_size;
    let [h, w] = hw;
    let offset = if cfg.aligned { 0.5f32 } else { 0.0 };
    let scale = cfg.spatial_scale;
    let start_w = coords[0] * scale - offset;
    let start_h = coords[1] * scale - offset;
    let end_w = coords[2] * scale - offset;
    let end_h = coords[3] * scale - offset;
    let mut roi_w = end_w - start_w;
    let mut roi_h = end_h - start_h;
    if !cfg.aligned {
        // the legacy form forces malformed RoIs to 1 x 1
        roi_w = roi_w.max(1.0);
        roi_h = roi_h.max(1.0);
    }
    let bin_h = roi_h / oh as f32;
    let bin_w = roi_w / ow as f32;
    let grid = |roi_side: f32, bins: usize| -> i64 {
        if cfg.sampling_ratio > 0 {
            i64::from(cfg.sampling_ratio)
        } else {
            (roi_side / bins as f32).ceil() as i64
        }
    };
    let (gh, gw) = (grid(roi_h, oh), grid(roi_w, ow));
    if gh.max(gw) > MAX_SAMPLING_GRID {
        return Err(RoiAlignError::SamplingGrid {
            roi,
            grid: gh.max(gw),
        });
    }
    // an empty grid (adaptive sampling of an empty aligned RoI) averages
    // nothing: the bin is 0, as torchvision's count = max(gh * gw, 1)
    let (gh, gw) = (gh.max(0) as usize, gw.max(0) as usize);
    let count = (gh * gw).max(1) as f32;
    Ok(RoiTaps {
        ys: axis_taps(start_h, bin_h, gh, oh, h),
        xs: axis_taps(start_w, bin_w, gw, ow, w),
        count,
    })
}

/// A RoI's separable taps: rows per output row, columns per output column.
pub(crate) struct RoiTaps {
    pub ys: Vec<Vec<(usize, f32)>>,
    pub xs: Vec<Vec<(usize, f32)>>,
    pub count: f32,
}
