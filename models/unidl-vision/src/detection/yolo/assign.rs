//! The task-aligned assigner of YOLOv8's loss (Feng et al., 2021, "TOOD:
//! Task-aligned One-stage Object Detection", arXiv:2108.07755, as
//! ultralytics 8.4.190 applies it) and the complete IoU (Zheng et al.,
//! 2020, arXiv:1911.08287).

use burn::tensor::Tensor;

const EPS: f32 = 1e-7;

/// CIoU of two xyxy boxes, in f32 with the operation order of the tensor
/// version ([`ciou`]): `IoU − ρ²/c² − v·α`, `v = 4/π² (atan(w₂/h₂) −
/// atan(w₁/h₁))²`, `α = v / (1 − IoU + v + ε)`, heights padded by ε = 1e-7.
pub fn ciou_host(b1: &[f32; 4], b2: &[f32; 4]) -> f32 {
    let (w1, h1) = (b1[2] - b1[0], b1[3] - b1[1] + EPS);
    let (w2, h2) = (b2[2] - b2[0], b2[3] - b2[1] + EPS);
    let inter = (b1[2].min(b2[2]) - b1[0].max(b2[0])).max(0.0)
        * (b1[3].min(b2[3]) - b1[1].max(b2[1])).max(0.0);
    let union = w1 * h1 + w2 * h2 - inter + EPS;
    let iou = inter / union;
    let cw = b1[2].max(b2[2]) - b1[0].min(b2[0]);
    let ch = b1[3].max(b2[3]) - b1[1].min(b2[1]);
    let c2 = cw * cw + ch * ch + EPS;
    let rho2 =
        ((b2[0] + b2[2] - b1[0] - b1[2]).powi(2) + (b2[1] + b2[3] - b1[1] - b1[3]).powi(2)) / 4.0;
    let k = 4.0 / std::f32::consts::PI.powi(2);
    let v = k * ((w2 / h2).atan() - (w1 / h1).atan()).powi(2);
    let alpha = v / (1.0 - iou + v + EPS);
    iou - (rho2 / c2 + v * alpha)
}

/// CIoU of box pairs on the device; `α` is a constant to the gradient (as
/// ultralytics computes it under `no_grad`).
///
/// # Shapes
/// `[F, 4]`, `[F, 4]` (xyxy) → `[F]`.
pub fn ciou(pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let [f, _] = pred.dims();
    let col = |t: &Tensor<2>, i: usize| t.clone().narrow(1, i, 1).reshape([f]);
    let (ax0, ay0, ax1, ay1) = (col(&pred, 0), col(&pred, 1), col(&pred, 2), col(&pred, 3));
    let (bx0, by0, bx1, by1) = (
        col(&target, 0),
        col(&target, 1),
        col(&target, 2),
        col(&target, 3),
    );
    let w1 = ax1.clone() - ax0.clone();
    let h1 = (ay1.clone() - ay0.clone()).add_scalar(EPS);
    let w2 = bx1.clone() - bx0.clone();
    let h2 = (by1.clone() - by0.clone()).add_scalar(EPS);
    let iw = (ax1.clone().min_pair(bx1.clone()) - ax0.clone().max_pair(bx0.clone())).clamp_min(0.0);
    let ih = (ay1.clone().min_pair(by1.clone()) - ay0.clone().max_pair(by0.clone())).clamp_min(0.0);
    let inter = iw * ih;
    let union = (w1.clone() * h1.clone() + w2.clone() * h2.clone() - inter.clone()).add_scalar(EPS);
    let iou = inter / union;
    let cw = ax1.clone().max_pair(bx1.clone()) - ax0.clone().min_pair(bx0.clone());
    let ch = ay1.clone().max_pair(by1.clone()) - ay0.clone().min_pair(by0.clone());
    let c2 = (cw.powi_scalar(2) + ch.powi_scalar(2)).add_scalar(EPS);
    let rho2 = ((bx0 + bx1 - ax0 - ax1).powi_scalar(2) + (by0 + by1 - ay0 - ay1).powi_scalar(2))
        .div_scalar(4.0);
    let k = 4.0 / std::f32::consts::PI.powi(2);
    let v = ((w2 / h2).atan() - (w1 / h1).atan())
        .powi_scalar(2)
        .mul_scalar(k);
    let alpha = (v.clone() / (iou.clone().neg().add_scalar(1.0 + EPS) + v.clone())).detach();
    iou - (rho2 / c2 + v * alpha)
}

/// What [`assign`] decides for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The ground-truth box each cell is assigned to, if any.
    pub gt: Vec<Option<usize>>,
    /// Each assigned cell's soft target (the class's score), 0 elsewhere.
    pub norm: Vec<f32>,
}

/// Assigns the cells of one image: `scores` `[A·K]` (sigmoid), `pred`
/// boxes and cell `centres` in pixels, ground-truth `gt` boxes (xyxy,
/// pixels) of `classes`, `topk` candidates per box, boxes narrower or lower
/// than `min_side` grown to it about their centre when selecting the
/// cells inside.
///
/// For each box: the cells whose centre lies strictly inside (by more than
/// 1e-9); their metric `score(class)^0.5 · max(CIoU, 0)^6`; the `topk`
/// largest metrics over all cells (cells outside never count). A cell
/// claimed by several boxes keeps the one it overlaps most (first on
/// ties). A positive cell's soft target is its metric times the box's best
/// overlap over the box's best metric (+1e-9), the largest over boxes.
#[allow(clippy::too_many_arguments)]
pub fn assign(
    scores: &[f32],
    pred: &[[f32; 4]],
    centres: &[[f32; 2]],
    gt: &[[f32; 4]],
    classes: &[usize],
    k: usize,
    topk: usize,
    min_side: f32,
) -> Assignment {
    let a = pred.len();
    let n = gt.len();
    let mut out = Assignment {
        gt: vec![None; a],
        norm: vec![0.0; a],
    };
    if n == 0 {
        return out;
    }
    // per (box, cell): metric and overlap, zero outside the box
    let mut metric = vec![0f32; n * a];
    let mut overlap = vec![0f32; n * a];
    let mut pos = vec![false; n * a];
    for (g, b) in gt.iter().enumerate() {
        // xyxy → xywh, sides below min_side raised, back to xyxy
        let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        let (mut w, mut h) = (b[2] - b[0], b[3] - b[1]);
        if w < min_side {
            w = min_side;
        }
        if h < min_side {
            h = min_side;
        }
        let (hw, hh) = (w / 2.0, h / 2.0);
        let grown = [cx - hw, cy - hh, cx + hw, cy + hh];
        let mut inside = Vec::new();
        for (j, c) in centres.iter().enumerate() {
            if c[0] - grown[0] > 1e-9
                && c[1] - grown[1] > 1e-9
                && grown[2] - c[0] > 1e-9
                && grown[3] - c[1] > 1e-9
            {
                let o = ciou_host(b, &pred[j]).max(0.0);
                let s = scores[j * k + classes[g]];
                overlap[g * a + j] = o;
                metric[g * a + j] = s.powf(0.5) * o.powi(6);
                inside.push(j);
            }
        }
        // top-k metrics over all cells; cells outside (metric 0) never count
        inside.sort_by(|&x, &y| metric[g * a + y].total_cmp(&metric[g * a + x]));
        // a zero metric ties with every cell outside the box: torch's top-k
        // may or may not pick it; it carries no weight in any loss term
        for &j in inside.iter().take(topk) {
            if metric[g * a + j] > 0.0 {
                pos[g * a + j] = true;
            }
        }
    }
    // a cell claimed by several boxes keeps the one it overlaps most
    for j in 0..a {
        let claims = (0..n).filter(|&g| pos[g * a + j]).count();
        if claims > 1 {
            let best = (0..n).fold(0, |bst, g| {
                if overlap[g * a + j] > overlap[bst * a + j] {
                    g
                } else {
                    bst
                }
            });
            for g in 0..n {
                pos[g * a + j] = g == best;
            }
        }
    }
    // soft targets, normalised per box
    let mut norm = vec![0f32; a];
    for g in 0..n {
        let (mut best_metric, mut best_overlap) = (0f32, 0f32);
        for j in 0..a {
            if pos[g * a + j] {
                best_metric = best_metric.max(metric[g * a + j]);
                best_overlap = best_overlap.max(overlap[g * a + j]);
            }
        }
        for j in 0..a {
            if pos[g * a + j] {
                let v = metric[g * a + j] * best_overlap / (best_metric + 1e-9);
                norm[j] = norm[j].max(v);
            }
        }
    }
    for j in 0..a {
        if let Some(g) = (0..n).find(|&g| pos[g * a + j]) {
            out.gt[j] = Some(g);
            out.norm[j] = norm[j];
        }
    }
    out
}
