//! Non-maximum suppression, bit-for-bit the algorithm of
//! `torchvision.ops.nms` (CPU kernel) and `torchvision.ops.batched_nms`.
//!
//! Boxes are `[x0, y0, x1, y1]` with `x0 <= x1`, `y0 <= y1`, computed in f32
//! like torchvision's float kernel: areas are `(x1 - x0) · (y1 - y0)`
//! (not clamped), a box is suppressed when its IoU with a kept, higher-scored
//! box is strictly greater than the threshold, and equal scores keep their
//! input order (torchvision sorts stably).

use std::cmp::Ordering;

/// Intersection over union of two `[x0, y0, x1, y1]` boxes, computed as
/// torchvision's NMS kernel does (NaN for two empty boxes).
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (area_a + area_b - inter)
}

/// Indices in `0..scores.len()` sorted by descending score, ties in input order.
fn order_by_score(scores: &[f32], indices: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut order: Vec<usize> = indices.collect();
    // stable: equal scores keep their order
    order.sort_by(|&a, &b| descending(scores[a], scores[b]));
    order
}

fn descending(a: f32, b: f32) -> Ordering {
    b.partial_cmp(&a).unwrap_or_else(|| b.total_cmp(&a))
}

/// `torchvision.ops.nms(boxes, scores, iou_threshold)`: the indices of the
/// kept boxes, by descending score. When `boxes` and `scores` differ in
/// length, only the common prefix is considered.
pub fn nms(boxes: &[[f32; 4]], scores: &[f32], iou_threshold: f64) -> Vec<usize> {
    let n = boxes.len().min(scores.len());
    nms_subset(boxes, order_by_score(scores, 0..n), iou_threshold)
}

fn nms_subset(boxes: &[[f32; 4]], order: Vec<usize>, iou: f64) -> Vec<usize> {
    let mut suppressed = vec![false; order.len()];
    let mut keep = Vec::new();
    for (oi, &i) in order.iter().enumerate() {
        if suppressed[oi] {
            continue;
        }
        keep.push(i);
        for (oj, &j) in order.iter().enumerate().skip(oi + 1) {
            if !suppressed[oj] && f64::from(box_iou(&boxes[i], &boxes[j])) > iou {
                suppressed[oj] = true;
            }
        }
    }
    keep
}

/// `torchvision.ops.batched_nms(boxes, scores, idxs, iou_threshold)`: NMS
/// within each category `idxs[i]` (boxes of different categories never
/// suppress each other); the kept indices sorted by descending score.
pub fn batched_nms(
    boxes: &[[f32; 4]],
    scores: &[f32],
    idxs: &[usize],
    iou_threshold: f64,
) -> Vec<usize> {
    let n = boxes.len().min(scores.len()).min(idxs.len());
    let mut classes: Vec<usize> = idxs[..n].to_vec();
    classes.sort_unstable();
    classes.dedup();
    let mut keep_mask = vec![false; n];
    for c in classes {
        let members = (0..n).filter(|&i| idxs[i] == c);
        let order = order_by_score(scores, members);
        for i in nms_subset(boxes, order, iou_threshold) {
            keep_mask[i] = true;
        }
    }
    order_by_score(scores, (0..n).filter(|&i| keep_mask[i]))
}
