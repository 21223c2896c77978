#!/usr/bin/env python3
"""Reference values for unidl's task metrics (crates/unidl-train/src/metrics).

Writes task_metrics.json beside this file: the fixture inputs (generated here
with a fixed seed) and the values the reference tools compute on them. The
Rust tests (tests/metrics.rs) read the file and need no Python.

Tools and conventions:
- classification: scikit-learn `precision_recall_fscore_support` (zero_division=0).
- detection / instance segmentation: pycocotools `COCOeval` (bbox and segm,
  crowd regions, area ranges, maxDets 1/10/100); VOC AP@0.5: MMDetection's
  own `eval_map` (mmdet 3.3.0, `tpfp_default` + `average_precision(mode="area")`,
  continuous coordinates, crowd boxes as `bboxes_ignore`), loaded from the
  installed wheel without its package `__init__` (which needs a compiled
  mmcv; see `openmmlab` below). One change to it: `np.argsort` is made stable
  inside `mean_ap`. MMDetection sorts detections with numpy's default
  (unstable) sort, so the order of detections with equal scores, and with it
  the AP, depends on numpy's sort kernel (the fixture has such a tie: with
  AVX2 x86-simd-sort, class 2's AP drops by 5.7e-4); stable order is the one
  unidl uses. The values are mmdet's float32 results.
- semantic segmentation: mmsegmentation's `IoUMetric` convention in numpy
  (dataset-level intersection/union, ignore_index 255, classes with empty
  union excluded), cross-checked against torchmetrics
  `MulticlassJaccardIndex(average="macro")` / `MulticlassAccuracy(average="micro")`
  and scikit-learn `jaccard_score`.
- keypoints: MMPose's own `keypoint_pck_accuracy` / `keypoint_nme` (mmpose
  1.3.2, loaded like mmdet's; its float32 distances); the 68-landmark NME
  cross-checked against PFLD's formula.
- text: jiwer (corpus WER, CER), sacrebleu (corpus BLEU, 13a, every
  smoothing), torchmetrics `Perplexity`.

Run: ~/.cache/unidl/torch-venv/bin/python crates/unidl-train/tests/reference/gen_task_metrics.py
(needs numpy, scikit-learn, pycocotools, jiwer, sacrebleu, torch, torchmetrics,
and `pip install mmengine terminaltables` + `pip install --no-deps mmdet==3.3.0
mmpose==1.3.2`: pure-Python wheels, no mmcv).
"""
import contextlib
import importlib
import importlib.util
import io
import json
import pathlib
import sys
import types
from importlib.metadata import version

import jiwer
import numpy as np
import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
import torch
import torchmetrics
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import jaccard_score, precision_recall_fscore_support
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.text import Perplexity

rng = np.random.default_rng(2024)


def openmmlab(package, module):
    """Imports `package.module` from the installed OpenMMLab wheel without
    running the `__init__` of `package` and of the packages in between (they
    import mmcv, a compiled extension with no wheel for this torch): each is
    registered as an empty package on its folder, so only the module file and
    what it imports itself run."""
    root = pathlib.Path(importlib.util.find_spec(package).submodule_search_locations[0])
    parts = module.split(".")
    for i in range(len(parts)):
        name = ".".join([package] + parts[:i])
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(root.joinpath(*parts[:i]))]
            sys.modules[name] = pkg
    return importlib.import_module(f"{package}.{module}")


# keypoint_eval imports two heatmap decoders from mmpose.codecs.utils (whose
# package pulls in cv2 and torch code) for functions not used here
_codecs = types.ModuleType("mmpose.codecs.utils")
_codecs.get_heatmap_maximum = _codecs.get_simcc_maximum = None
sys.modules["mmpose.codecs"] = types.ModuleType("mmpose.codecs")
sys.modules["mmpose.codecs.utils"] = _codecs
mmpose_keypoint_eval = openmmlab("mmpose", "evaluation.functional.keypoint_eval")
mmdet_mean_ap = openmmlab("mmdet", "evaluation.functional.mean_ap")
# stable sort of tied scores inside mean_ap only (see the module docstring)
_stable_np = types.ModuleType("numpy_with_stable_argsort")
_stable_np.__dict__.update(np.__dict__)
_stable_np.argsort = lambda a, axis=-1, kind=None, order=None: np.argsort(a, axis=axis, kind="stable", order=order)
mmdet_mean_ap.np = _stable_np


def f32(x):
    """Round to float32 so that Rust's f32 holds exactly the value Python used."""
    return float(np.float32(x))


def prf_dict(p, r, f):
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


# ---------------------------------------------------------------- classification
def classification():
    multiclass = []
    for n, classes, noise in [(60, 4, 0.5), (150, 7, 0.7), (25, 6, 0.9)]:
        target = rng.integers(0, classes - 1, size=n)  # the last class never true
        pred = np.where(rng.random(n) < noise, rng.integers(0, classes, size=n), target)
        labels = sorted(set(target.tolist()) | set(pred.tolist()))
        case = {"classes": classes, "pred": pred.tolist(), "target": target.tolist()}
        for avg in ["micro", "macro", "weighted"]:
            p, r, f, _ = precision_recall_fscore_support(target, pred, average=avg, zero_division=0)
            case[avg] = prf_dict(p, r, f)
        p, r, f, s = precision_recall_fscore_support(target, pred, labels=labels, average=None, zero_division=0)
        case["report"] = [{"class": c, **prf_dict(p[i], r[i], f[i]), "support": int(s[i])} for i, c in enumerate(labels)]
        multiclass.append(case)
    multilabel = []
    for n, classes in [(40, 5), (70, 3)]:
        target = (rng.random((n, classes)) < 0.4).astype(int)
        target[:, -1] = 0  # a class with no true instance
        flip = rng.random((n, classes)) < 0.25
        pred = np.where(flip, 1 - target, target)
        case = {"pred": pred.tolist(), "target": target.tolist()}
        for avg in ["micro", "macro", "weighted"]:
            p, r, f, _ = precision_recall_fscore_support(target, pred, average=avg, zero_division=0)
            case[avg] = prf_dict(p, r, f)
        p, r, f, s = precision_recall_fscore_support(target, pred, average=None, zero_division=0)
        case["report"] = [{"class": c, **prf_dict(p[c], r[c], f[c]), "support": int(s[c])} for c in range(classes)]
        multilabel.append(case)
    return {"multiclass": multiclass, "multilabel": multilabel}


# ---------------------------------------------------------------- detection
W, H = 160, 120


def ellipse_mask(box):
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
    return (((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0).astype(np.uint8)


def rle_rows(mask):
    """Row-major run lengths, starting with a (possibly empty) run of zeros."""
    flat = mask.reshape(-1)
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    return counts


def rand_box(min_side, max_side):
    w = float(rng.integers(min_side, max_side + 1)) + 0.5 * float(rng.integers(0, 2))
    h = float(rng.integers(min_side, max_side + 1))
    x0 = float(rng.integers(0, max(1, int(W - w)))) + 0.25 * float(rng.integers(0, 4))
    y0 = float(rng.integers(0, max(1, int(H - h)))) + 0.5 * float(rng.integers(0, 2))
    return [x0, y0, min(x0 + w, W), min(y0 + h, H)]


def jitter(box, amount):
    d = rng.integers(-amount, amount + 1, size=4) * 0.5
    x0, y0, x1, y1 = box[0] + d[0], box[1] + d[1], box[2] + d[2], box[3] + d[3]
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(W), max(x1, x0 + 1)), min(float(H), max(y1, y0 + 1))
    return [float(x0), float(y0), float(x1), float(y1)]


def detection_fixture():
    images = []
    used_scores = set()

    def score():
        while True:
            s = f32(rng.uniform(0.01, 0.99))
            if s not in used_scores:
                used_scores.add(s)
                return s

    sizes = [(3, 12), (20, 40), (100, 115)]  # small, medium, large objects
    for img in range(8):
        gts, dts = [], []
        n_gt = 0 if img == 6 else int(rng.integers(2, 7))
        for _ in range(n_gt):
            lo, hi = sizes[int(rng.choice(3, p=[0.4, 0.45, 0.15]))]
            box = rand_box(lo, hi)
            cls = int(rng.integers(0, 4))
            crowd = bool(rng.random() < 0.12)
            gts.append({"box": box, "class": cls, "crowd": crowd})
        # class 3's only ground truth in image 0 is a crowd region
        if img == 0:
            gts.append({"box": [10.0, 10.0, 70.0, 60.0], "class": 3, "crowd": True})
        for g in gts:
            if g["class"] == 3 and not g["crowd"]:
                g["class"] = 2
        for g in gts:
            r = rng.random()
            if g["crowd"]:
                for _ in range(int(rng.integers(1, 4))):  # several hits inside a crowd region
                    dts.append({"box": jitter(g["box"], 6), "class": g["class"], "score": score()})
                continue
            if r < 0.15:
                continue  # missed
            dts.append({"box": jitter(g["box"], 3), "class": g["class"], "score": score()})
            if r > 0.75:  # duplicate
                dts.append({"box": jitter(g["box"], 4), "class": g["class"], "score": score()})
            if r > 0.9:  # wrong class
                dts.append({"box": jitter(g["box"], 2), "class": (g["class"] + 1) % 3, "score": score()})
        for _ in range(int(rng.integers(0, 3))):  # false positives, class 4 has no ground truth at all
            dts.append({"box": rand_box(5, 50), "class": int(rng.integers(0, 5)), "score": score()})
        if img == 2:  # more than 100 detections: the cut to maxDets drops the last, a hit
            for _ in range(104):
                dts.append({"box": rand_box(4, 30), "class": 1, "score": f32(rng.uniform(0.001, 0.3))})
            gts.append({"box": [40.0, 30.0, 90.0, 70.0], "class": 1, "crowd": False})
            dts.append({"box": [40.0, 30.0, 90.0, 70.0], "class": 1, "score": f32(0.0005)})
        if img == 4 and dts:  # an exact score tie, resolved by input order (stable sort)
            d = dict(dts[0])
            d["box"] = jitter(d["box"], 2)
            dts.append(d)
        images.append({"width": W, "height": H, "gt": gts, "dt": dts})
    for im in images:
        for o in im["gt"] + im["dt"]:
            o["box"] = [f32(v) for v in o["box"]]
            o["mask"] = ellipse_mask(o["box"])
    return images


def coco_eval(images, iou_type):
    gt = {"images": [], "annotations": [], "categories": [{"id": c + 1, "name": str(c)} for c in range(5)]}
    results = []
    for i, im in enumerate(images):
        gt["images"].append({"id": i + 1, "width": im["width"], "height": im["height"]})
        for g in im["gt"]:
            x0, y0, x1, y1 = g["box"]
            rle = mask_utils.encode(np.asfortranarray(g["mask"]))
            area = (x1 - x0) * (y1 - y0) if iou_type == "bbox" else float(mask_utils.area(rle))
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": g["class"] + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": area, "iscrowd": int(g["crowd"]),
                "segmentation": rle,
            })
        for d in im["dt"]:
            x0, y0, x1, y1 = d["box"]
            r = {"image_id": i + 1, "category_id": d["class"] + 1, "score": d["score"]}
            if iou_type == "bbox":
                r["bbox"] = [x0, y0, x1 - x0, y1 - y0]
            else:
                r["segmentation"] = mask_utils.encode(np.asfortranarray(d["mask"]))
            results.append(r)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        dt = coco.loadRes(results)
        ev = COCOeval(coco, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = {}
    for k, cat in enumerate(ev.params.catIds):
        p = ev.eval["precision"][:, :, k, 0, 2]
        if (p > -1).any():
            per_class[str(cat - 1)] = float(p[p > -1].mean())
    return {"stats": [float(s) for s in ev.stats], "per_class_ap": per_class}


def voc_eval(images, classes=5, iou_thr=0.5):
    """MMDetection's eval_map: per image, per class, detections `[x0, y0, x1,
    y1, score]`; crowd ground truth as `bboxes_ignore`."""
    dets, anns = [], []
    for im in images:
        dets.append([np.array([d["box"] + [d["score"]] for d in im["dt"] if d["class"] == c],
                              dtype=np.float64).reshape(-1, 5) for c in range(classes)])
        kept = [g for g in im["gt"] if not g["crowd"]]
        crowd = [g for g in im["gt"] if g["crowd"]]
        anns.append({
            "bboxes": np.array([g["box"] for g in kept], dtype=np.float64).reshape(-1, 4),
            "labels": np.array([g["class"] for g in kept], dtype=np.int64),
            "bboxes_ignore": np.array([g["box"] for g in crowd], dtype=np.float64).reshape(-1, 4),
            "labels_ignore": np.array([g["class"] for g in crowd], dtype=np.int64),
        })
    with contextlib.redirect_stdout(io.StringIO()):
        mean_ap, results = mmdet_mean_ap.eval_map(dets, anns, iou_thr=iou_thr, nproc=1, logger="silent")
    per_class = {str(c): float(r["ap"]) for c, r in enumerate(results) if r["num_gts"] > 0}
    return {"map": float(mean_ap), "per_class_ap": per_class}


def detection():
    images = detection_fixture()
    out = {
        "bbox": coco_eval(images, "bbox"),
        "segm": coco_eval(images, "segm"),
        "voc": voc_eval(images),
    }
    for im in images:
        for o in im["gt"] + im["dt"]:
            o["mask"] = rle_rows(o.pop("mask"))
    out["images"] = images
    return out


# ---------------------------------------------------------------- semantic segmentation
def semantic():
    classes, ignore = 6, 255
    images, preds, targets = [], [], []
    for _ in range(3):
        h, w = 20, 24
        t = rng.integers(0, 3, size=(h, w))
        t[rng.random((h, w)) < 0.15] = 3
        t[rng.random((h, w)) < 0.1] = ignore  # ignored pixels
        p = np.where(rng.random((h, w)) < 0.3, rng.integers(0, 3, size=(h, w)), np.where(t == ignore, 0, t))
        p[rng.random((h, w)) < 0.03] = 4  # class 4: predicted, never true; class 5: absent from both
        images.append({"width": w, "height": h, "pred": p.reshape(-1).tolist(), "target": t.reshape(-1).tolist()})
        preds.append(p.reshape(-1))
        targets.append(t.reshape(-1))
    p, t = np.concatenate(preds), np.concatenate(targets)
    keep = t != ignore
    p, t = p[keep], t[keep]
    inter = np.bincount(t[p == t], minlength=classes).astype(float)
    area_p = np.bincount(p, minlength=classes).astype(float)
    area_t = np.bincount(t, minlength=classes).astype(float)
    union = area_p + area_t - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
        acc = inter / area_t
    miou = float(np.nanmean(iou))
    # cross-checks
    jac = MulticlassJaccardIndex(num_classes=classes, average="macro", ignore_index=ignore).double()
    pacc = MulticlassAccuracy(num_classes=classes, average="micro", ignore_index=ignore)
    for im in images:
        pp, tt = torch.tensor(im["pred"]), torch.tensor(im["target"])
        jac.update(pp, tt)
        pacc.update(pp, tt)
    assert abs(float(jac.compute()) - miou) < 1e-6, (float(jac.compute()), miou)
    assert abs(float(pacc.compute()) - inter.sum() / area_t.sum()) < 1e-6
    present = [c for c in range(classes) if union[c] > 0]
    sk = jaccard_score(t, p, labels=present, average=None)
    assert np.allclose(sk, iou[present], atol=1e-12)
    nan_to_none = lambda v: [None if np.isnan(x) else float(x) for x in v]
    return {
        "classes": classes, "ignore_index": ignore, "images": images,
        "miou": miou, "per_class_iou": nan_to_none(iou),
        "pixel_accuracy": float(inter.sum() / area_t.sum()),
        "mean_accuracy": float(np.nanmean(acc)), "per_class_accuracy": nan_to_none(acc),
    }


# ---------------------------------------------------------------- keypoints
def mmpose_pck(pred, gt, mask, thr, norm):
    """MMPose's keypoint_pck_accuracy: the mean over keypoints counted at least
    once, and the per-keypoint accuracy (None where never counted)."""
    acc, avg, _ = mmpose_keypoint_eval.keypoint_pck_accuracy(pred, gt, mask, thr, norm.copy())
    return float(avg), [None if a < 0 else float(a) for a in acc]


def mmpose_nme(pred, gt, mask, norm):
    return float(mmpose_keypoint_eval.keypoint_nme(pred, gt, mask, norm.copy()))


def keypoints():
    n, k = 14, 17
    boxes, gts, preds = [], [], []
    for i in range(n):
        box = rand_box(20, 80)
        bw, bh = box[2] - box[0], box[3] - box[1]
        if i == 3:
            box = [box[0], box[1], box[0], box[1]]  # zero-size box: the instance is skipped
            bw = bh = 0.0
        g = np.stack([box[0] + rng.random(k) * max(bw, 1), box[1] + rng.random(k) * max(bh, 1)], 1)
        v = rng.choice([0, 1, 2], size=k, p=[0.2, 0.2, 0.6])
        p = g + rng.normal(scale=0.08 * max(bw, bh, 1), size=g.shape)
        boxes.append([f32(x) for x in box])
        gts.append(np.vectorize(f32)(g))
        preds.append(np.vectorize(f32)(p))
        gts[-1] = np.concatenate([gts[-1], v[:, None]], 1)
    gt = np.stack(gts)
    pred = np.stack(preds)
    mask = gt[:, :, 2] > 0
    bb = np.array(boxes)
    box_norm = np.max(np.stack([bb[:, 2] - bb[:, 0], bb[:, 3] - bb[:, 1]], 1), axis=1)
    lengths = np.array([f32(x) for x in rng.uniform(30, 60, size=n)])
    eyes = np.linalg.norm(gt[:, 1, :2] - gt[:, 2, :2], axis=1)  # COCO left/right eye
    out = {"instances": [
        {"box": boxes[i], "length": float(lengths[i]),
         "gt": gt[i].tolist(), "pred": pred[i].tolist()} for i in range(n)]}
    tile = lambda x: np.tile(x[:, None], (1, 2))
    out["pck_box_0.2"], out["pck_box_0.2_per_keypoint"] = mmpose_pck(pred, gt[:, :, :2], mask, 0.2, tile(box_norm))
    out["pck_length_0.1"], out["pck_length_0.1_per_keypoint"] = mmpose_pck(pred, gt[:, :, :2], mask, 0.1, tile(lengths))
    out["nme_eyes"] = mmpose_nme(pred, gt[:, :, :2], mask, tile(eyes))
    out["nme_box"] = mmpose_nme(pred, gt[:, :, :2], mask, tile(box_norm))
    # 300W-style faces: 68 landmarks, all visible, inter-ocular = outer eye corners 36 and 45.
    faces = []
    fg, fp = [], []
    for _ in range(5):
        g = np.vectorize(f32)(rng.uniform(20, 100, size=(68, 2)))
        p = np.vectorize(f32)(g + rng.normal(scale=1.5, size=g.shape))
        faces.append({"gt": g.tolist(), "pred": p.tolist()})
        fg.append(g)
        fp.append(p)
    fg, fp = np.stack(fg), np.stack(fp)
    io_ = np.linalg.norm(fg[:, 36] - fg[:, 45], axis=1)
    nme = mmpose_nme(fp, fg, np.ones(fg.shape[:2], bool), tile(io_))
    pfld = float(np.mean(np.sum(np.linalg.norm(fp - fg, axis=2), axis=1) / (io_ * 68)))
    assert abs(nme - pfld) < 1e-7  # MMPose's distances are float32
    out["faces"] = faces
    out["nme_300w"] = nme
    return out


# ---------------------------------------------------------------- text
def text():
    refs = [
        "the cat sat on the mat",
        "a quick brown fox jumps over the lazy dog",
        "speech recognition is hard",
        "   hello   world  ",
        "numbers like 1,000.5 and 3-4 stay together",
        "don't stop believing",
        "Ünïcödé wörds ärë fïnë",
    ]
    hyps = [
        "the cat sat on mat",
        "a quick brown fox jumped over a lazy dog",
        "",
        "hello world",
        "numbers like 1,000.5 and 3 - 4 stay together",
        "dont stop believing now",
        "Ünïcode wörds are fine",
    ]
    wer = jiwer.wer(refs, hyps)
    cer = jiwer.cer(refs, hyps)
    bleu_hyps = [
        "The cat is on the mat.",
        "It is a guide to action which ensures that the military always obeys the commands of the party.",
        "He said &quot;state-of-the-art&quot; results cost $1,000.50 (approx.) in 2023-24!",
        "I'd like 3-4 apples, please: red/green.",
        "no match here",
        "Short.",
    ]
    refs_a = [
        "There is a cat on the mat.",
        "It is a guide to action that ensures that the military will forever heed Party commands.",
        "He said \"state-of-the-art\" results cost $1,000.50 (approximately) in 2023-24!",
        "I would like 3-4 apples, please: red/green.",
        "something completely different",
        "A much longer reference sentence than the hypothesis.",
    ]
    refs_b = [
        "The cat sat on the mat.",
        "It is the guiding principle which guarantees the military forces always being under the command of the Party.",
        "He said &quot;state of the art&quot; results cost $1,000.50 in 2023-24.",
        "I'd like three or four apples please, red or green.",
        "nothing matches",
        "Short it is.",
    ]
    tok = Tokenizer13a()
    tokenized = {s: tok(s.rstrip()) for s in bleu_hyps + refs_a + refs_b}
    bleu = {}
    for name, method, value in [("exp", "exp", None), ("none", "none", None), ("floor", "floor", 0.1), ("add-k", "add-k", 1)]:
        for nrefs, streams in [("two_refs", [refs_a, refs_b]), ("one_ref", [refs_a])]:
            m = sacrebleu.metrics.BLEU(smooth_method=method, smooth_value=value)
            s = m.corpus_score(bleu_hyps, streams)
            bleu[f"{name}/{nrefs}"] = {
                "score": s.score, "counts": list(s.counts), "totals": list(s.totals),
                "bp": s.bp, "sys_len": s.sys_len, "ref_len": s.ref_len,
            }
    assert abs(sacrebleu.corpus_bleu(bleu_hyps, [refs_a, refs_b]).score - bleu["exp/two_refs"]["score"]) < 1e-12
    torch.manual_seed(3)
    logits = torch.randn(3, 9, 40, dtype=torch.float64) * 2
    target = torch.randint(0, 40, (3, 9))
    ppl = Perplexity()
    ppl.update(logits, target)
    log_probs = torch.log_softmax(logits, -1).gather(-1, target[..., None]).squeeze(-1)
    # torchmetrics accumulates in float32; the expected value is the same formula in float64
    perplexity = float(torch.exp(-log_probs.mean()))
    assert abs(float(ppl.compute()) - perplexity) / perplexity < 1e-5
    return {
        "references": refs, "hypotheses": hyps, "wer": wer, "cer": cer,
        "bleu_hypotheses": bleu_hyps, "bleu_refs_a": refs_a, "bleu_refs_b": refs_b,
        "tokenized_13a": tokenized, "bleu": bleu,
        "log_probs": log_probs.reshape(-1).tolist(), "perplexity": perplexity,
        "mean_nll": float(-log_probs.mean()),
    }


out = {
    "versions": {p: version(p) for p in ["numpy", "scikit-learn", "pycocotools", "jiwer", "sacrebleu", "torch", "torchmetrics", "mmdet", "mmpose", "mmengine"]},
    "classification": classification(),
    "detection": detection(),
    "semantic": semantic(),
    "keypoints": keypoints(),
    "text": text(),
}
path = pathlib.Path(__file__).with_name("task_metrics.json")
path.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")))
d = out["detection"]
print("bbox", [round(s, 4) for s in d["bbox"]["stats"]])
print("segm", [round(s, 4) for s in d["segm"]["stats"]])
print("voc", d["voc"]["map"], "text", out["text"]["wer"], out["text"]["cer"], out["text"]["bleu"]["exp/two_refs"]["score"])
print(f"wrote {path} ({path.stat().st_size} bytes)")
