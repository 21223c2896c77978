//! RetinaNet's detections, as torchvision 0.24.0's
//! `RetinaNet.postprocess_detections` followed by the transform's
//! `postprocess`: per image and level, the sigmoid scores of every
//! (anchor, class) pair above `score_thresh`, the best `topk_candidates` of
//! them, their boxes decoded against their anchors and clipped to the
//! resized image; over the levels, NMS within each class (`nms_thresh`,
//! unidl-train's torchvision-exact [`batched_nms`]), the best
//! `detections_per_img`; boxes mapped back to input pixels.

use burn::tensor::Tensor;
use unidl_train::outputs::Detection;
use unidl_train::postprocess::batched_nms;

use super::{RetinaNet, RetinaNetOutput};
use crate::detection::boxes::clip_box;
use crate::detection::layout::host_values;
use crate::error::Result;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl RetinaNet {
    /// Detections per image, best first, boxes in input pixels.
    pub fn postprocess(&self, out: &RetinaNetOutput) -> Result<Vec<Vec<Detection>>> {
        let [b, n, k] = out.cls_logits.dims();
        let logits = host_values(&out.cls_logits, "RetinaNet", "class logits")?;
        let deltas = host_values(&out.bbox_regression, "RetinaNet", "box deltas")?;
        let cfg = &self.settings.config;
        let coder = &self.settings.coder;
        let mut all = Vec::with_capacity(b);
        for i in 0..b {
            let mut boxes: Vec<[f32; 4]> = Vec::new();
            let mut scores: Vec<f32> = Vec::new();
            let mut labels: Vec<usize> = Vec::new();
            let mut start = 0;
            for &count in &out.level_anchors {
                let rows = &logits[(i * n + start) * k..(i * n + start + count) * k];
                // (flat index, score) above the threshold, in index order
                let mut cand: Vec<(usize, f32)> = rows
                    .iter()
                    .enumerate()
                    .map(|(j, &x)| (j, sigmoid(x)))
                    .filter(|&(_, s)| s > cfg.score_thresh)
                    .collect();
                // topk: by descending score (stable: ties keep index order)
                cand.sort_by(|a, b| b.1.total_cmp(&a.1));
                cand.truncate(cfg.topk_candidates);
                for (j, s) in cand {
                    let a = start + j / k;
                    let d = &deltas[(i * n + a) * 4..(i * n + a) * 4 + 4];
                    let bx = coder.decode(&[d[0], d[1], d[2], d[3]], &out.anchors[a]);
                    boxes.push(clip_box(bx, out.size.resized));
                    scores.push(s);
                    labels.push(j % k);
                }
                start += count;
            }
            let keep = batched_nms(&boxes, &scores, &labels, f64::from(cfg.nms_thresh));
            all.push(
                keep.into_iter()
                    .take(cfg.detections_per_img)
                    .map(|j| {
                        let [x0, y0, x1, y1] = out.size.to_original(boxes[j]);
                        Detection {
                            x0,
                            y0,
                            x1,
                            y1,
                            class: labels[j],
                            score: scores[j],
                        }
                    })
                    .collect(),
            );
        }
        Ok(all)
    }

    /// Transform, network and post-processing: torchvision's eval-mode call.
    ///
    /// # Shapes
    /// images `[B, C, H, W]` → `B` lists of detections.
    pub fn predict(&self, images: Tensor<4>) -> Result<Vec<Vec<Detection>>> {
        let out = self.forward(images)?;
        self.postprocess(&out)
    }
}
