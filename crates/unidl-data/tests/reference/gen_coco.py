"""Builds the COCO fixture under tests/fixtures/coco and the pycocotools
reference masks the Rust tests compare against exactly.

Run from anywhere with the torch venv (pycocotools 2.0.x, numpy, Pillow):
    /var/cache/unidl/torch-venv/bin/python crates/unidl-data/tests/reference/gen_coco.py

Writes (all committed):
    tests/fixtures/coco/annotations.json   the COCO file (polygons, plain and
                                           compressed RLE, crowd, keypoints)
    tests/fixtures/coco/images/*.png       its images
    tests/reference/coco_masks.json        per annotation: pycocotools'
                                           annToMask rows, pixel sum and area
    tests/reference/coco_polygons.json     random polygons with pycocotools'
                                           compressed RLE and area
"""

import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures", "coco")
os.makedirs(os.path.join(FIX, "images"), exist_ok=True)

rng = np.random.default_rng(8)

# Images: a gradient so that flips are visible (red = x, green = y).
SIZES = {"a.png": (24, 16), "b.png": (20, 12), "empty.png": (8, 6)}
for name, (w, h) in SIZES.items():
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None].repeat(w, 1)
    rgb = np.stack([x, y, np.full_like(x, 77)], -1).round().astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(os.path.join(FIX, "images", name))

# A crowd region on b.png given as uncompressed (column-major) RLE.
crowd = np.zeros((12, 20), dtype=np.uint8)
crowd[2:7, 3:9] = 1
crowd[8:11, 12:19] = 1
flat = crowd.flatten(order="F")
counts, cur, run = [], 0, 0
for v in flat:
    if v != cur:
        counts.append(run)
        run, cur = 0, v
    run += 1
counts.append(run)

# A blob on b.png given as compressed RLE (what pycocotools' encode writes).
blob = np.zeros((12, 20), dtype=np.uint8)
yy, xx = np.mgrid[0:12, 0:20]
blob[((xx - 13.5) ** 2 / 16 + (yy - 5) ** 2 / 9) <= 1] = 1
blob[0, 0] = 1
blob[11, 19] = 1
enc = mask_utils.encode(np.asfortranarray(blob))
compressed = enc["counts"].decode("ascii")

categories = [
    {"id": 7, "name": "dog", "supercategory": "animal"},
    {"id": 1, "name": "person", "supercategory": "person",
     "keypoints": ["nose", "left_eye", "right_eye"], "skeleton": [[1, 2], [1, 3]]},
    {"id": 3, "name": "cat", "supercategory": "animal"},
]
images = [
    {"id": 10, "file_name": "a.png", "width": 24, "height": 16},
    {"id": 4, "file_name": "b.png", "width": 20, "height": 12},
    {"id": 99, "file_name": "empty.png", "width": 8, "height": 6},
]
annotations = [
    {   # a person: concave polygon with fractional vertices, and keypoints
        "id": 1, "image_id": 10, "category_id": 1, "iscrowd": 0,
        "bbox": [2.3, 1.5, 9.4, 12.0],
        "segmentation": [[2.3, 1.5, 11.7, 2.2, 6.1, 6.0, 10.9, 13.5, 3.0, 12.8]],
        "keypoints": [5.0, 3.0, 2, 4.0, 2.0, 2, 7.5, 2.5, 1],
        "num_keypoints": 3, "area": 0,
    },
    {   # a cat in two parts, one part partly outside the image
        "id": 2, "image_id": 10, "category_id": 3, "iscrowd": 0,
        "bbox": [14.0, 0.0, 10.0, 16.0],
        "segmentation": [[14.0, 1.0, 20.5, 0.2, 19.0, 6.6],
                         [16.2, 9.0, 26.0, 8.0, 25.0, 17.5, 15.5, 15.0]],
        "area": 0,
    },
    {   # a second person: keypoints only (one not labelled)
        "id": 3, "image_id": 10, "category_id": 1, "iscrowd": 0,
        "bbox": [12.0, 4.0, 6.0, 8.0],
        "keypoints": [15.0, 5.0, 2, 0.0, 0.0, 0, 16.0, 4.5, 2],
        "num_keypoints": 2, "area": 0,
    },
    {   # a crowd of dogs as uncompressed RLE
        "id": 4, "image_id": 4, "category_id": 7, "iscrowd": 1,
        "bbox": [3.0, 2.0, 16.0, 9.0],
        "segmentation": {"size": [12, 20], "counts": [int(c) for c in counts]},
        "area": int(crowd.sum()),
    },
    {   # a cat as compressed RLE
        "id": 5, "image_id": 4, "category_id": 3, "iscrowd": 0,
        "bbox": [9.0, 2.0, 9.0, 7.0],
        "segmentation": {"size": [12, 20], "counts": compressed},
        "area": int(blob.sum()),
    },
]
coco_json = {"images": images, "annotations": annotations, "categories": categories}
ann_path = os.path.join(FIX, "annotations.json")
with open(ann_path, "w") as f:
    json.dump(coco_json, f, indent=1)

coco = COCO(ann_path)
masks = []
for a in annotations:
    if "segmentation" not in a:
        continue
    m = coco.annToMask(coco.anns[a["id"]])
    rle = coco.annToRLE(coco.anns[a["id"]])
    masks.append({
        "id": a["id"],
        "sum": int(m.sum()),
        "area": int(mask_utils.area(rle)),
        "rows": ["".join(str(int(v)) for v in row) for row in m],
    })
with open(os.path.join(HERE, "coco_masks.json"), "w") as f:
    json.dump({"pycocotools": "2.0", "masks": masks}, f, indent=1)

# Random polygons, including vertices outside the image and sliver shapes.
polys = []
for i in range(60):
    h, w = int(rng.integers(5, 30)), int(rng.integers(5, 30))
    k = int(rng.integers(3, 9))
    pts = np.stack([rng.uniform(-3, w + 3, k), rng.uniform(-3, h + 3, k)], 1)
    if i % 3 == 0:
        pts = pts.round(1)
    if i % 5 == 0:
        pts = pts.round()
    xy = [float(v) for v in pts.flatten()]
    rle = mask_utils.frPyObjects([xy], h, w)[0]
    m = mask_utils.decode(rle)
    polys.append({
        "height": h, "width": w, "xy": xy,
        "counts": rle["counts"].decode("ascii"),
        "area": int(mask_utils.area(rle)),
        "sum": int(m.sum()),
        "pixels": [[int(y), int(x), int(m[y, x])]
                   for y, x in zip(rng.integers(0, h, 5), rng.integers(0, w, 5))],
    })
with open(os.path.join(HERE, "coco_polygons.json"), "w") as f:
    json.dump({"polygons": polys}, f)
print("wrote", ann_path, "and", len(masks), "masks,", len(polys), "polygons")
