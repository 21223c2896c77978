#!/usr/bin/env python3
"""Reference values for unidl's COCO keypoint AP (crates/unidl-train/src/metrics/keypoints.rs).

Builds small deterministic synthetic keypoint data sets (fixed seeds), runs
the real pycocotools `COCOeval(iouType="keypoints")` on them and writes
keypoint_ap.json beside this file: the inputs, the ten `stats` of
`summarize()` and the OKS matrix pycocotools computed for every image
(`COCOeval.ious`: detections sorted by score and cut to 20, ground truth in
annotation order). The Rust test (tests/metrics/keypoint_ap.rs) reads the
file and needs no Python.

Two cases:
- `coco17`: COCO's 17 keypoints and pycocotools' default sigmas;
- `custom5`: 5 keypoints with sigmas given through `params.kpt_oks_sigmas`.

Each covers: several images and instances; ground-truth areas in every range
(small, medium, large; small ones count only in "all"); annotation `area`
given, or left to unidl (which then uses the box area; the JSON handed to
pycocotools holds that box area); invisible keypoints (v = 0); a crowd
region; a non-crowd instance with no visible keypoint (ignored, matched by
pycocotools' box-distance fallback); duplicate and unmatched predictions; an
image with more than 20 predictions (maxDets 20); an image without ground
truth and one without predictions; tied scores.

Every coordinate, area and score is a multiple of 1/4 or a float32 value,
so that unidl's f32 inputs hold exactly the numbers pycocotools saw.

Run: python3 -m venv /tmp/cocovenv && /tmp/cocovenv/bin/pip install pycocotools numpy
     /tmp/cocovenv/bin/python crates/unidl-train/tests/reference/gen_keypoint_ap.py
"""
import contextlib
import io
import json
import pathlib
from importlib.metadata import version

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

WIDTH, HEIGHT = 640, 480


def q(x):
    """Round to a multiple of 1/4 (exact in float32 for these magnitudes)."""
    return float(np.round(np.float64(x) * 4.0) / 4.0)


def f32(x):
    return float(np.float32(x))


def make_gt(rng, k, side_range, crowd=False, no_visible=False, area_given=True):
    w = q(rng.uniform(*side_range))
    h = q(rng.uniform(*side_range))
    x = q(rng.uniform(0, WIDTH - w))
    y = q(rng.uniform(0, HEIGHT - h))
    kps = []
    for _ in range(k):
        if crowd or no_visible:
            # COCO stores unlabelled keypoints as (0, 0, 0); a few non-zero
            # coordinates with v = 0 check that they are not used
            v = 0
            kx, ky = (0.0, 0.0) if crowd or rng.random() < 0.5 else (q(x + rng.uniform(0, w)), q(y + rng.uniform(0, h)))
        else:
            v = int(rng.choice([0, 1, 2], p=[0.25, 0.25, 0.5]))
            if v == 0 and rng.random() < 0.7:
                kx, ky = 0.0, 0.0
            else:
                kx, ky = q(x + rng.uniform(0, w)), q(y + rng.uniform(0, h))
        kps.append([kx, ky, v])
    box_area = w * h
    area = q(box_area * rng.uniform(0.45, 0.8)) if area_given else box_area
    return {
        "box": [x, y, x + w, y + h],
        "xywh": [x, y, w, h],
        "keypoints": kps,
        "area": area,
        "area_given": area_given,
        "crowd": crowd,
    }


def predict(rng, gt, spread):
    x, y, w, h = gt["xywh"]
    scale = np.sqrt(gt["area"])
    kps = []
    for kx, ky, v in gt["keypoints"]:
        if v > 0:
            px = q(kx + rng.normal(0, spread * scale))
            py = q(ky + rng.normal(0, spread * scale))
        else:
            px, py = q(x + rng.uniform(0, w)), q(y + rng.uniform(0, h))
        kps.append([px, py, f32(rng.uniform(0.1, 1.0))])
    return kps


def random_pose(rng, k):
    w, h = q(rng.uniform(20, 150)), q(rng.uniform(20, 150))
    x, y = q(rng.uniform(0, WIDTH - w)), q(rng.uniform(0, HEIGHT - h))
    return [[q(x + rng.uniform(0, w)), q(y + rng.uniform(0, h)), f32(rng.uniform(0.1, 1.0))] for _ in range(k)]


SMALL, MEDIUM, LARGE = (12, 36), (40, 100), (110, 300)


def build(seed, k):
    rng = np.random.default_rng(seed)
    images = []
    sizes = [SMALL, MEDIUM, LARGE]
    for i in range(8):
        gts, dts = [], []
        if i == 6:  # predictions only
            pass
        else:
            for j in range(int(rng.integers(2, 6))):
                gts.append(make_gt(rng, k, sizes[(i + j) % 3], area_given=rng.random() < 0.75))
        if i == 0:
            gts.append(make_gt(rng, k, LARGE, crowd=True))
        if i == 1:
            gts.append(make_gt(rng, k, MEDIUM, no_visible=True))
            gts.append(make_gt(rng, k, LARGE, no_visible=True, area_given=False))
        if i == 7:  # ground truth only
            images.append({"gt": gts, "dt": []})
            continue
        for g in gts:
            if g["crowd"]:
                # predictions inside the crowd box: absorbed, neither hit nor miss
                for _ in range(3):
                    x0, y0, x1, y1 = g["box"]
                    pose = [[q(rng.uniform(x0, x1)), q(rng.uniform(y0, y1)), f32(rng.uniform(0.1, 1))] for _ in range(k)]
                    dts.append({"keypoints": pose, "score": f32(rng.uniform(0.05, 1.0))})
                continue
            if all(v == 0 for _, _, v in g["keypoints"]):
                x0, y0, x1, y1 = g["box"]
                # one inside the box, one well outside its doubled box
                inside = [[q(rng.uniform(x0, x1)), q(rng.uniform(y0, y1)), 0.5] for _ in range(k)]
                dts.append({"keypoints": inside, "score": f32(rng.uniform(0.05, 1.0))})
                far = [[q(min(WIDTH, x1 + (x1 - x0) * 1.5 + rng.uniform(0, 20))), q(rng.uniform(y0, y1)), 0.5] for _ in range(k)]
                dts.append({"keypoints": far, "score": f32(rng.uniform(0.05, 1.0))})
                continue
            if rng.random() < 0.85:
                dts.append({"keypoints": predict(rng, g, rng.choice([0.01, 0.05, 0.1, 0.2, 0.4])), "score": f32(rng.uniform(0.05, 1.0))})
            if rng.random() < 0.3:  # duplicate
                dts.append({"keypoints": predict(rng, g, 0.08), "score": f32(rng.uniform(0.05, 1.0))})
        for _ in range(int(rng.integers(0, 4)) + (2 if i == 6 else 0)):
            dts.append({"keypoints": random_pose(rng, k), "score": f32(rng.uniform(0.05, 1.0))})
        if i == 3:  # more than maxDets = 20
            while len(dts) < 26:
                if gts and rng.random() < 0.5:
                    g = gts[int(rng.integers(0, len(gts)))]
                    if any(v > 0 for _, _, v in g["keypoints"]):
                        dts.append({"keypoints": predict(rng, g, 0.15), "score": f32(rng.uniform(0.05, 1.0))})
                        continue
                dts.append({"keypoints": random_pose(rng, k), "score": f32(rng.uniform(0.05, 1.0))})
        if i == 2 and len(dts) >= 2:  # a tie
            dts[1]["score"] = dts[0]["score"]
        images.append({"gt": gts, "dt": dts})
    return images


def evaluate(images, sigmas):
    coco_gt = {
        "images": [{"id": i + 1, "width": WIDTH, "height": HEIGHT, "file_name": f"{i}.png"} for i in range(len(images))],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [],
    }
    results = []
    ann_id = 1
    for i, im in enumerate(images):
        for g in im["gt"]:
            coco_gt["annotations"].append({
                "id": ann_id,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": g["xywh"],
                "area": g["area"],
                "iscrowd": int(g["crowd"]),
                "keypoints": [c for kp in g["keypoints"] for c in kp],
                "num_keypoints": sum(1 for kp in g["keypoints"] if kp[2] > 0),
            })
            ann_id += 1
        for d in im["dt"]:
            results.append({
                "image_id": i + 1,
                "category_id": 1,
                "keypoints": [c for kp in d["keypoints"] for c in kp],
                "score": d["score"],
            })
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco_gt
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.array(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    oks = []
    for i in range(len(images)):
        m = ev.ious[(i + 1, 1)]
        oks.append(np.asarray(m).tolist() if len(m) else [])
    return [float(s) for s in ev.stats], oks


def case(name, seed, k, sigmas):
    images = build(seed, k)
    stats, oks = evaluate(images, sigmas)
    for im, m in zip(images, oks):
        im["oks"] = m
        for g in im["gt"]:
            g.pop("xywh")
            if not g["area_given"]:
                g["area"] = None
            g.pop("area_given")
    return {"name": name, "keypoints": k, "sigmas": sigmas, "images": images, "stats": stats}


def main():
    out = {
        "generator": "gen_keypoint_ap.py",
        "versions": {p: version(p) for p in ["numpy", "pycocotools"]},
        "stats_order": ["AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L"],
        "cases": [
            case("coco17", 13, 17, None),
            case("custom5", 7, 5, [0.025, 0.05, 0.079, 0.107, 0.089]),
        ],
    }
    path = pathlib.Path(__file__).with_name("keypoint_ap.json")
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    for c in out["cases"]:
        print(c["name"], [round(s, 4) for s in c["stats"]])


if __name__ == "__main__":
    main()
