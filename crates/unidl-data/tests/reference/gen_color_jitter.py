#!/usr/bin/env python3
"""Reference values for unidl-data's photometric functions (ColorJitter, Grayscale).

Writes `color_jitter.json` beside this file: two small fixed float images
(RGB 5×4 and one-channel 4×3, values in [0, 1] including 0, 1 and a gray
pixel) and what torchvision.transforms.functional computes on them:
- `adjust_brightness`, `adjust_contrast`, `adjust_saturation` at factors
  0, 0.25, 0.5, 0.8, 1, 1.5, 2;
- `adjust_hue` at -0.5, -0.25, 0, 0.1, 0.5 (RGB only);
- `rgb_to_grayscale` (RGB only).
The Rust test (`tests/data.rs`, `color_functions_match_torchvision`) reads the
file and needs no Python. Every input and factor is a float32 value, so unidl's
f32 inputs hold exactly the numbers torchvision saw.

Run (from the repository root):
    ~/.cache/unidl/torch-venv/bin/python crates/unidl-data/tests/reference/gen_color_jitter.py

Requires torch==2.9.0, torchvision==0.24.0 and numpy.
"""
import json
import pathlib

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF

OUT = pathlib.Path(__file__).with_name("color_jitter.json")
FACTORS = [0.0, 0.25, 0.5, 0.8, 1.0, 1.5, 2.0]
HUES = [-0.5, -0.25, 0.0, 0.1, 0.5]


def hwc(t):
    """A [C, H, W] tensor as a flat row-major H × W × C list (unidl's layout)."""
    return [float(v) for v in t.numpy().transpose(1, 2, 0).reshape(-1)]


def image_case(img):
    t = torch.from_numpy(img)
    c, h, w = img.shape
    case = {
        "channels": c,
        "height": h,
        "width": w,
        "image": hwc(t),
        "brightness": [],
        "contrast": [],
        "saturation": [],
    }
    for f in FACTORS:
        f = float(np.float32(f))
        case["brightness"].append({"factor": f, "data": hwc(TF.adjust_brightness(t, f))})
        case["contrast"].append({"factor": f, "data": hwc(TF.adjust_contrast(t, f))})
        case["saturation"].append({"factor": f, "data": hwc(TF.adjust_saturation(t, f))})
    if c == 3:
        case["hue"] = [{"factor": f, "data": hwc(TF.adjust_hue(t, f))} for f in HUES]
        case["grayscale"] = hwc(TF.rgb_to_grayscale(t, num_output_channels=1))
    return case


def main():
    rng = np.random.default_rng(2026)
    rgb = rng.random((3, 4, 5)).astype(np.float32)  # C, H, W
    rgb[:, 0, 0] = [0.5, 0.5, 0.5]  # gray
    rgb[:, 0, 1] = [1.0, 0.0, 0.0]
    rgb[:, 0, 2] = [0.0, 1.0, 1.0]
    rgb[:, 0, 3] = [1.0, 1.0, 1.0]
    rgb[:, 0, 4] = [0.0, 0.0, 0.0]
    gray = rng.random((1, 3, 4)).astype(np.float32)
    gray[0, 0, 0] = 0.0
    gray[0, 0, 1] = 1.0
    ref = {
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__},
        "cases": [image_case(rgb), image_case(gray)],
    }
    OUT.write_text(json.dumps(ref) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
