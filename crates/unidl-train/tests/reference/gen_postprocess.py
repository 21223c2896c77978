#!/usr/bin/env python3
"""Reference values for unidl's post-processing (crates/unidl-train/src/postprocess).

Writes postprocess.json beside this file; tests/postprocess.rs reads it and
needs no Python. Run:
    /var/cache/unidl/torch-venv/bin/python crates/unidl-train/tests/reference/gen_postprocess.py
(needs torch 2.9.0, torchvision 0.24.0, numpy).

Sources of truth:
- NMS, batched NMS, anchor box decoding, mask pasting: torchvision itself
  (torchvision.ops.nms / batched_nms, models.detection._utils.BoxCoder,
  models.detection.roi_heads.paste_masks_in_image).
- Bilinear resize: torch.nn.functional.interpolate(align_corners=False).
- Keypoints: HRNet's get_max_preds/get_final_preds and DARK's taylor +
  gaussian_blur, transcribed below (cv2's blur replaced by the same separable
  zero-padded Gaussian with OpenCV's kernel).
- CTC: a plain Python prefix beam search, and for short inputs the exact best
  labelling by enumerating every path.
- Cosine similarity: torch.nn.functional.cosine_similarity.
"""
import itertools
import json
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import batched_nms, nms

torch.manual_seed(0)
rng = np.random.default_rng(2024)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def boxes_around(n, centres, spread, size):
    """n random xyxy boxes clustered around a few centres (so NMS has work)."""
    c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, spread, (n, 2))
    wh = rng.uniform(size * 0.5, size * 1.5, (n, 2))
    return f32(np.concatenate([c - wh / 2, c + wh / 2], 1))


# ---------------------------------------------------------------- NMS
nms_cases = []
for n, thr in [(40, 0.5), (80, 0.3), (120, 0.7)]:
    centres = rng.uniform(20, 180, (6, 2))
    boxes = boxes_around(n, centres, 6.0, 30.0)
    scores = f32(rng.permutation(n) / n + rng.uniform(0, 0.001, n))  # distinct
    idxs = rng.integers(0, 4, n)
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    nms_cases.append({
        "boxes": boxes.tolist(),
        "scores": scores.tolist(),
        "idxs": idxs.tolist(),
        "iou_threshold": thr,
        "keep": nms(tb, ts, thr).tolist(),
        "batched_keep": batched_nms(tb, ts, torch.from_numpy(idxs), thr).tolist(),
    })

# ---------------------------------------------------------------- anchor decoding + full detection
n_anchors, classes = 64, 3
anchors = boxes_around(n_anchors, rng.uniform(30, 90, (5, 2)), 10.0, 24.0)
deltas = f32(rng.normal(0, 0.3, (n_anchors, 4)))
deltas[0, 2] = 9.0  # exceeds the clamp ln(1000/16)
decoded = {}
for name, weights in [("unit", (1.0, 1.0, 1.0, 1.0)), ("faster_rcnn", (10.0, 10.0, 5.0, 5.0))]:
    coder = BoxCoder(weights)
    decoded[name] = {
        "weights": list(weights),
        "boxes": coder.decode_single(torch.from_numpy(deltas), torch.from_numpy(anchors)).tolist(),
    }
logits = f32(rng.normal(-1.0, 1.5, (n_anchors, classes)))
# RetinaNet-like pipeline on one image 100x120 (input) that came from a 200x240 original
score_thr, iou_thr, max_det = 0.3, 0.5, 10
boxes = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(torch.from_numpy(deltas), torch.from_numpy(anchors))
probs = torch.sigmoid(torch.from_numpy(logits))
cand = (probs > score_thr).nonzero()  # row-major (box, class)
cb = boxes[cand[:, 0]] / 0.5  # geometry: scale 0.5, no padding → original pixels
cb[:, 0::2] = cb[:, 0::2].clamp(0, 240)
cb[:, 1::2] = cb[:, 1::2].clamp(0, 200)
cs = probs[cand[:, 0], cand[:, 1]]
keep = batched_nms(cb, cs, cand[:, 1], iou_thr)[:max_det]
keep_agnostic = nms(cb, cs, iou_thr)[:max_det]
detection = {
    "anchors": anchors.tolist(),
    "outputs": np.concatenate([deltas, logits], 1).tolist(),
    "score_threshold": score_thr,
    "iou_threshold": iou_thr,
    "max_detections": max_det,
    "geometry": {"original_width": 240, "original_height": 200, "scale_x": 0.5, "scale_y": 0.5},
    "decoded": decoded,
    "expected": [cb[k].tolist() + [int(cand[k, 1]), float(cs[k])] for k in keep],
    "expected_agnostic": [cb[k].tolist() + [int(cand[k, 1]), float(cs[k])] for k in keep_agnostic],
}

# ---------------------------------------------------------------- YOLOv5 grid decoding
# YOLOv5's Detect.forward (inference branch, models/yolo.py), one class, two
# levels of two anchors on a 32x32 input.
yolo_anchors = [[[10.0, 13.0], [16.0, 30.0]], [[33.0, 23.0], [30.0, 61.0]]]
yolo_strides = [8, 16]
no, na = 6, 2
raw_levels, decoded_levels = [], []
for anchors_l, stride in zip(yolo_anchors, yolo_strides):
    ny = nx = 32 // stride
    x = torch.from_numpy(f32(rng.normal(0, 1.5, (1, na * no, ny, nx))))
    x = x.view(1, na, no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
    yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
    grid = torch.stack((xv, yv), 2).expand(1, na, ny, nx, 2).float() - 0.5
    anchor_grid = torch.tensor(anchors_l).view(1, na, 1, 1, 2).expand(1, na, ny, nx, 2)
    y = x.sigmoid()
    xy = (y[..., 0:2] * 2 + grid) * stride
    wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
    raw_levels.append(x.view(1, -1, no))
    decoded_levels.append(torch.cat((xy, wh, y[..., 4:]), -1).view(1, -1, no))
raw = torch.cat(raw_levels, 1)[0]
dec = torch.cat(decoded_levels, 1)[0]
xyxy = torch.cat([dec[:, :2] - dec[:, 2:4] / 2, dec[:, :2] + dec[:, 2:4] / 2], 1)
conf = dec[:, 4] * dec[:, 5]
order = conf.argsort(descending=True)
yolo = {
    "anchors": yolo_anchors,
    "strides": yolo_strides,
    "raw": raw.tolist(),
    "expected": [xyxy[i].tolist() + [float(conf[i])] for i in order],
}

# ---------------------------------------------------------------- bilinear resize / semantic segmentation
seg_logits = f32(rng.normal(0, 1, (2, 4, 5, 7)))
resize = []
for size in [(11, 13), (3, 4), (5, 7), (16, 9)]:
    up = F.interpolate(torch.from_numpy(seg_logits), size=size, mode="bilinear", align_corners=False)
    resize.append({"size": list(size), "values": up.flatten().tolist(), "argmax": up.argmax(1).flatten().tolist()})
segmentation = {"logits": seg_logits.tolist(), "resize": resize}

# ---------------------------------------------------------------- mask pasting (Mask R-CNN)
m = 14
yy, xx = np.mgrid[0:m, 0:m] / (m - 1)
mask_probs = []
for k in range(3):
    cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.4)
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    mask_probs.append(1 / (1 + np.exp((d - r) * 12)) + rng.uniform(-0.05, 0.05, (m, m)))
mask_probs = f32(np.clip(mask_probs, 0, 1))
mask_boxes = f32([[10.3, 5.7, 40.2, 30.9], [-6.0, 20.0, 25.5, 61.0], [55.0, 2.0, 83.0, 22.5]])
im_h, im_w = 48, 64
pasted = paste_masks_in_image(torch.from_numpy(mask_probs)[:, None], torch.from_numpy(mask_boxes), (im_h, im_w), padding=1)
instance = {
    "masks": mask_probs.tolist(),
    "boxes": mask_boxes.tolist(),
    "image_size": [im_h, im_w],
    "pasted": pasted[:, 0].flatten(1).tolist(),
}

# ---------------------------------------------------------------- keypoints (HRNet / DARK)
def get_max_preds(batch_heatmaps):
    batch_size, num_joints, _, width = batch_heatmaps.shape
    reshaped = batch_heatmaps.reshape((batch_size, num_joints, -1))
    idx = np.argmax(reshaped, 2).reshape((batch_size, num_joints, 1))
    maxvals = np.amax(reshaped, 2).reshape((batch_size, num_joints, 1))
    preds = np.tile(idx, (1, 1, 2)).astype(np.float32)
    preds[:, :, 0] = preds[:, :, 0] % width
    preds[:, :, 1] = np.floor(preds[:, :, 1] / width)
    pred_mask = np.tile(np.greater(maxvals, 0.0), (1, 1, 2)).astype(np.float32)
    return preds * pred_mask, maxvals


def hrnet_final(hm):
    coords, maxvals = get_max_preds(hm)
    h, w = hm.shape[2], hm.shape[3]
    for n in range(coords.shape[0]):
        for p in range(coords.shape[1]):
            m_ = hm[n][p]
            px = int(math.floor(coords[n][p][0] + 0.5))
            py = int(math.floor(coords[n][p][1] + 0.5))
            if 1 < px < w - 1 and 1 < py < h - 1:
                diff = np.array([m_[py][px + 1] - m_[py][px - 1], m_[py + 1][px] - m_[py - 1][px]])
                coords[n][p] += np.sign(diff) * 0.25
    return coords, maxvals


def cv2_kernel(k):
    tables = {1: [1.0], 3: [0.25, 0.5, 0.25], 5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
              7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]}
    if k in tables:
        return np.array(tables[k])
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    g = np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * sigma * sigma))
    return g / g.sum()


def dark_blur(m_, k):
    g, r = cv2_kernel(k), k // 2
    pad = np.pad(m_.astype(np.float64), r)
    rows = np.array([[np.dot(g, pad[y, x:x + k]) for x in range(m_.shape[1])] for y in range(pad.shape[0])])
    out = np.array([[np.dot(g, rows[y:y + k, x]) for x in range(m_.shape[1])] for y in range(m_.shape[0])])
    return out * (m_.max() / out.max())


def taylor(hm, coord):
    h, w = hm.shape
    px, py = int(coord[0]), int(coord[1])
    if 1 < px < w - 2 and 1 < py < h - 2:
        dx = 0.5 * (hm[py][px + 1] - hm[py][px - 1])
        dy = 0.5 * (hm[py + 1][px] - hm[py - 1][px])
        dxx = 0.25 * (hm[py][px + 2] - 2 * hm[py][px] + hm[py][px - 2])
        dxy = 0.25 * (hm[py + 1][px + 1] - hm[py - 1][px + 1] - hm[py + 1][px - 1] + hm[py - 1][px - 1])
        dyy = 0.25 * (hm[py + 2][px] - 2 * hm[py][px] + hm[py - 2][px])
        if dxx * dyy - dxy ** 2 != 0:
            hess = np.array([[dxx, dxy], [dxy, dyy]])
            coord = coord - np.linalg.inv(hess) @ np.array([dx, dy])
    return coord


def dark_final(hm, k):
    coords, maxvals = get_max_preds(hm)
    coords = coords.astype(np.float64)
    for n in range(coords.shape[0]):
        for p in range(coords.shape[1]):
            lg = np.log(np.maximum(dark_blur(hm[n][p], k), 1e-10))
            coords[n, p] = taylor(lg, coords[n, p])
    return coords, maxvals


B, K, H, W = 2, 4, 16, 12
ys, xs = np.mgrid[0:H, 0:W]
heat = np.zeros((B, K, H, W), dtype=np.float32)
true_pts = rng.uniform([2.5, 2.5], [W - 3.5, H - 3.5], (B, K, 2))
for b in range(B):
    for k in range(K):
        x0, y0 = true_pts[b, k]
        heat[b, k] = np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * 2.0 ** 2)) + rng.uniform(0, 0.01, (H, W))
heat[1, 3] = -np.abs(heat[1, 3])  # non-positive maximum → (0, 0)
quarter, qmax = hrnet_final(heat.copy())
dark = {}
for k in [5, 11]:
    c, _ = dark_final(heat.copy(), k)
    dark[str(k)] = c.tolist()
keypoints = {
    "heatmaps": heat.tolist(),
    "quarter": quarter.tolist(),
    "maxvals": qmax[..., 0].tolist(),
    "dark": dark,
}

# ---------------------------------------------------------------- CTC
def log_add(a, b):
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(lp, blank, width):
    beams = [((), 0.0, -math.inf)]
    for row in lp:
        nxt = {}
        for prefix, pb, pnb in beams:
            for c, p in enumerate(row):
                p = float(p)
                if c == blank:
                    b_, nb_ = nxt.get(prefix, (-math.inf, -math.inf))
                    nxt[prefix] = (log_add(b_, log_add(pb + p, pnb + p)), nb_)
                    continue
                ext = prefix + (c,)
                if prefix and prefix[-1] == c:
                    b_, nb_ = nxt.get(ext, (-math.inf, -math.inf))
                    nxt[ext] = (b_, log_add(nb_, pb + p))
                    b_, nb_ = nxt.get(prefix, (-math.inf, -math.inf))
                    nxt[prefix] = (b_, log_add(nb_, pnb + p))
                else:
                    b_, nb_ = nxt.get(ext, (-math.inf, -math.inf))
                    nxt[ext] = (b_, log_add(nb_, log_add(pb + p, pnb + p)))
        beams = sorted(((k, b_, nb_) for k, (b_, nb_) in nxt.items()),
                       key=lambda e: (-log_add(e[1], e[2]), e[0]))[:width]
    k, b_, nb_ = beams[0]
    return list(k), log_add(b_, nb_)


def greedy(lp, blank):
    best = lp.argmax(1)
    out, prev = [], None
    for c in best:
        if c != blank and c != prev:
            out.append(int(c))
        prev = c
    return out, float(lp.max(1).sum())


def exact_best(lp, blank):
    """Sum every path's probability per collapsed labelling; the best one."""
    T, V = lp.shape
    totals = {}
    for path in itertools.product(range(V), repeat=T):
        lab, prev = [], None
        for c in path:
            if c != blank and c != prev:
                lab.append(c)
            prev = c
        s = float(sum(lp[t, c] for t, c in enumerate(path)))
        totals[tuple(lab)] = log_add(totals.get(tuple(lab), -math.inf), s)
    best = max(totals.items(), key=lambda e: e[1])
    return list(best[0]), best[1]


ctc_cases = []
for T, V, blank, scale in [(12, 5, 0, 2.0), (20, 6, 5, 1.0), (6, 3, 0, 0.7), (7, 3, 1, 0.5)]:
    logits_ = rng.normal(0, scale, (2, T, V))
    lp = torch.log_softmax(torch.from_numpy(logits_), -1).numpy()
    case = {"logits": logits_.tolist(), "blank": blank, "samples": []}
    for b in range(2):
        s = {"greedy": greedy(lp[b], blank), "beam": {}}
        for width in [1, 3, 8, 64]:
            s["beam"][str(width)] = prefix_beam_search(lp[b], blank, width)
        if V ** T <= 5000:
            s["exact"] = exact_best(lp[b], blank)
        case["samples"].append(s)
    ctc_cases.append(case)

# ---------------------------------------------------------------- cosine similarity
emb = f32(rng.normal(0, 1, (5, 8)))
emb[3] = emb[1] * 2.5 + 0.01  # a near-duplicate
sim = F.cosine_similarity(torch.from_numpy(emb)[:, None], torch.from_numpy(emb)[None], dim=-1)
similarity = {"embeddings": emb.tolist(), "matrix": sim.flatten().tolist()}

out = pathlib.Path(__file__).with_name("postprocess.json")
out.write_text(json.dumps({
    "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__},
    "nms": nms_cases,
    "detection": detection,
    "yolo": yolo,
    "segmentation": segmentation,
    "instance": instance,
    "keypoints": keypoints,
    "ctc": ctc_cases,
    "similarity": similarity,
}))
print(f"wrote {out} ({out.stat().st_size} bytes)")
