//! Box arithmetic of torchvision 0.24.0's detection models, on the host in
//! f32 with torchvision's order of operations: pairwise IoU
//! (`ops.box_iou`), the anchor–ground-truth [`Matcher`]
//! (`models.detection._utils.Matcher`), the delta [`BoxCoder`]
//! (`_utils.BoxCoder`) and clipping (`ops.clip_boxes_to_image`).
//!
//! Boxes are `[x0, y0, x1, y1]` in pixels.

/// `torchvision.ops.box_iou(a, b)`: the `[a.len(), b.len()]` IoU matrix,
/// row-major. Areas are `(x1 − x0)(y1 − y0)`, the intersection's sides are
/// clamped at 0, `IoU = inter / (area_a + area_b − inter)`.
pub fn box_iou(a: &[[f32; 4]], b: &[[f32; 4]]) -> Vec<f32> {
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let area_b: Vec<f32> = b.iter().map(area).collect();
    let mut out = Vec::with_capacity(a.len() * b.len());
    for p in a {
        let area_a = area(p);
        for (q, &aq) in b.iter().zip(&area_b) {
            let w = (p[2].min(q[2]) - p[0].max(q[0])).max(0.0);
            let h = (p[3].min(q[3]) - p[1].max(q[1])).max(0.0);
            let inter = w * h;
            out.push(inter / (area_a + aq - inter));
        }
    }
    out
}

/// What [`Matcher::assign`] says about an anchor that is not foreground.
pub const BELOW_LOW_THRESHOLD: i64 = -1;
/// An anchor between the two thresholds: ignored by the losses.
pub const BETWEEN_THRESHOLDS: i64 = -2;

/// torchvision's `Matcher(high, low, allow_low_quality_matches)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matcher {
    /// IoU at or above which an anchor is foreground (RetinaNet: 0.5).
    pub high_threshold: f32,
    /// IoU below which an anchor is background (RetinaNet: 0.4); between
    /// the two it is ignored.
    pub low_threshold: f32,
    /// Whether each ground-truth box also keeps the anchors that overlap it
    /// most, whatever their IoU (RetinaNet: yes).
    pub allow_low_quality_matches: bool,
}

impl Matcher {
    /// For each of `n` anchors, the index of its ground-truth box, or
    /// [`BELOW_LOW_THRESHOLD`] / [`BETWEEN_THRESHOLDS`], from the `[m, n]`
    /// IoU matrix `quality` (ground truth × anchors, row-major; `m ≥ 1`).
    ///
    /// As torchvision: each anchor takes the box of highest IoU (the first
    /// on ties), is demoted by the thresholds, and with low-quality matches
    /// every anchor that attains some box's highest IoU (ties included)
    /// gets back its own best box — torchvision restores the anchor's
    /// argmax, not necessarily the box whose maximum it attains.
    pub fn assign(&self, quality: &[f32], m: usize, n: usize) -> Vec<i64> {
        let mut matches = vec![BELOW_LOW_THRESHOLD; n];
        if m == 0 || n == 0 || quality.len() != m * n {
            return matches;
        }
        let mut best = vec![0usize; n];
        for (j, slot) in matches.iter_mut().enumerate() {
            // torch.max(dim=0): the first maximal value; NaN wins
            let mut bi = 0;
            let mut bv = quality[j];
            for i in 1..m {
                let v = quality[i * n + j];
                if !bv.is_nan() && (v > bv || v.is_nan()) {
                    bi = i;
                    bv = v;
                }
            }
            best[j] = bi;
            *slot = if bv < self.low_threshold {
                BELOW_LOW_THRESHOLD
            } else if bv < self.high_threshold {
                BETWEEN_THRESHOLDS
            } else {
                bi as i64
            };
        }
        if self.allow_low_quality_matches {
            for i in 0..m {
                let row = &quality[i * n..(i + 1) * n];
                let highest = row.iter().copied().fold(f32::NEG_INFINITY, |a, v| {
                    if a.is_nan() || v.is_nan() {
                        f32::NAN
                    } else {
                        a.max(v)
                    }
                });
                for (j, &v) in row.iter().enumerate() {
                    if v == highest {
                        matches[j] = best[j] as i64;
                    }
                }
            }
        }
        matches
    }
}

/// torchvision's `BoxCoder(weights, bbox_xform_clip)`: deltas
/// `(dx, dy, dw, dh)` of a box relative to a reference box (anchor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxCoder {
    /// `(wx, wy, ww, wh)` (RetinaNet: all 1).
    pub weights: [f32; 4],
    /// Upper clamp of the decoded `dw`, `dh` (torchvision: `ln(1000/16)`).
    pub clip: f32,
}

impl Default for BoxCoder {
    /// RetinaNet's: weights 1, clip `ln(1000/16)`.
    fn default() -> Self {
        BoxCoder {
            weights: [1.0; 4],
            clip: (1000.0f64 / 16.0).ln() as f32,
        }
    }
}

impl BoxCoder {
    /// `encode_single`: the deltas that turn `anchor` into `gt`:
    /// `dx = wx·(cx_g − cx_a)/w_a`, `dw = ww·ln(w_g/w_a)`, ….
    pub fn encode(&self, gt: &[f32; 4], anchor: &[f32; 4]) -> [f32; 4] {
        let [wx, wy, ww, wh] = self.weights;
        let ex_w = anchor[2] - anchor[0];
        let ex_h = anchor[3] - anchor[1];
        let ex_cx = anchor[0] + 0.5 * ex_w;
        let ex_cy = anchor[1] + 0.5 * ex_h;
        let gt_w = gt[2] - gt[0];
        let gt_h = gt[3] - gt[1];
        let gt_cx = gt[0] + 0.5 * gt_w;
        let gt_cy = gt[1] + 0.5 * gt_h;
        [
            wx * (gt_cx - ex_cx) / ex_w,
            wy * (gt_cy - ex_cy) / ex_h,
            ww * (gt_w / ex_w).ln(),
            wh * (gt_h / ex_h).ln(),
        ]
    }

    /// `decode_single`: the box that `deltas` make of `anchor` (`dw`, `dh`
    /// clamped above at [`clip`](Self::clip)).
    pub fn decode(&self, deltas: &[f32; 4], anchor: &[f32; 4]) -> [f32; 4] {
        let [wx, wy, ww, wh] = self.weights;
        let widths = anchor[2] - anchor[0];
        let heights = anchor[3] - anchor[1];
        let ctr_x = anchor[0] + 0.5 * widths;
        let ctr_y = anchor[1] + 0.5 * heights;
        let dx = deltas[0] / wx;
        let dy = deltas[1] / wy;
        let dw = (deltas[2] / ww).min(self.clip);
        let dh = (deltas[3] / wh).min(self.clip);
        let pred_ctr_x = dx * widths + ctr_x;
        let pred_ctr_y = dy * heights + ctr_y;
        let pred_w = dw.exp() * widths;
        let pred_h = dh.exp() * heights;
        let c_w = 0.5 * pred_w;
        let c_h = 0.5 * pred_h;
        [
            pred_ctr_x - c_w,
            pred_ctr_y - c_h,
            pred_ctr_x + c_w,
            pred_ctr_y + c_h,
        ]
    }
}

/// `torchvision.ops.clip_boxes_to_image(box, (height, width))`: x into
/// `[0, width]`, y into `[0, height]`.
pub fn clip_box(b: [f32; 4], size: [usize; 2]) -> [f32; 4] {
    let (h, w) = (size[0] as f32, size[1] as f32);
    [
        b[0].clamp(0.0, w),
        b[1].clamp(0.0, h),
        b[2].clamp(0.0, w),
        b[3].clamp(0.0, h),
    ]
}
