#!/usr/bin/env python3
"""RoI Align reference values for unidl-vision from torchvision 0.24.0
(torch 2.9.0, CPU kernel): `torchvision.ops.roi_align` and
`torchvision.ops.MultiScaleRoIAlign`, forward and the gradient with respect to
the features (torch autograd through the op) for a fixed random grad_output.

Writes one JSON file (committed as tests/reference/roi_align.json):

  features      {shape [N, C, H, W], data}   shared by every roi_align case
  rois          {shape [K, 5], data}         (batch index, x1, y1, x2, y2) in
                image coordinates: boxes inside, partly outside, wholly
                outside, tiny, empty, inverted, and boxes whose sampling
                points fall exactly on -1 and on pixel centres
  cases         per combination of aligned (false/true), sampling_ratio
                (2, 0, -1: 0 and -1 are both adaptive), spatial_scale (0.5,
                0.25) and output size (2x2, 3x4): grad_output, output,
                grad_input (all flat, row-major)
  multiscale    MultiScaleRoIAlign(featmap_names=["2", "0", "1"]) over an
                ordered dict of 3 FPN levels (strides 4, 8, 16) plus a level
                not named ("pool"), two images of different sizes, boxes per
                image spanning FPN levels 2-4 (including the level boundaries
                sqrt(area) = 112 and 224); its scales and levels, output,
                grad_output and the gradient of every named level

Usage: gen_roi_align.py OUT.json
Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python.
"""
import json
import sys
from collections import OrderedDict

import numpy as np
import torch
import torchvision
from torchvision.ops import MultiScaleRoIAlign, roi_align

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.24.0", torchvision.__version__


def flat(t):
    """Row-major values to 7 significant digits (results: 5e-8 relative, far
    below the 1e-5 the Rust test allows)."""
    return [float(f"{v:.7g}") for v in t.detach().reshape(-1).tolist()]


def exact(t):
    """Row-major values of a tensor made by `short`: its decimals read back as
    the very same float32 values."""
    return [float(f"{v:.3f}") for v in t.detach().reshape(-1).tolist()]


def short(shape, g):
    """Standard normal draws rounded to 3 decimals, as float32: inputs that
    the JSON stores exactly in a few characters."""
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    return torch.round(x * 1000).div(1000).to(torch.float32)


def tensor(t):
    """An input tensor (made by `short` or with short literals), exactly."""
    return {"shape": list(t.shape), "data": exact(t)}


def roi_cases():
    g = torch.Generator().manual_seed(20240614)
    n, c, h, w = 2, 2, 9, 7
    features = short((n, c, h, w), g)
    # image coordinates; at spatial_scale 0.5 the feature map covers an
    # 18 x 14 image, at 0.25 a 36 x 28 one
    boxes = [
        [0, 1.0, 2.0, 10.0, 12.0],  # inside
        [0, -4.0, -3.0, 6.0, 5.0],  # over the top-left border (clamping to 0)
        [1, 8.0, 10.0, 22.0, 26.0],  # over the bottom-right border
        [1, 3.3, 4.7, 3.5, 4.9],  # tiny (0.2 px)
        [0, 5.0, 5.0, 5.0, 5.0],  # empty
        [1, -3.0, -3.0, 5.0, 5.0],  # at scale 0.5: samples exactly on -1, 0, 1, 2
        [0, 0.0, 0.0, 14.0, 18.0],  # the whole image at scale 0.5
        [1, 12.0, 16.0, 30.0, 34.0],  # mostly outside at scale 0.5
        [0, 9.0, 7.0, 4.0, 3.0],  # inverted
        [1, -20.0, -20.0, -10.0, -10.0],  # wholly outside
        [0, 2.25, 1.75, 11.5, 6.125],  # fractional
        [1, 13.0, 17.0, 15.0, 19.0],  # last row/column (y, x >= H-1, W-1)
    ]
    # a few random boxes as well
    for i in range(4):
        x1, y1 = (torch.rand(2, generator=g) * 30 - 6).tolist()
        bw, bh = (torch.rand(2, generator=g) * 14 + 0.5).tolist()
        boxes.append([i % 2] + [round(v, 3) for v in (x1, y1, x1 + bw, y1 + bh)])
    rois = torch.tensor(boxes, dtype=torch.float32)

    cases = []
    for aligned in (False, True):
        for sampling_ratio in (2, 0, -1):
            for spatial_scale in (0.5, 0.25):
                for output_size in ((2, 2), (3, 4)):
                    x = features.clone().requires_grad_(True)
                    out = roi_align(
                        x, rois, output_size=output_size, spatial_scale=spatial_scale,
                        sampling_ratio=sampling_ratio, aligned=aligned,
                    )
                    grad_output = short(out.shape, g)
                    (grad_input,) = torch.autograd.grad(out, x, grad_output)
                    cases.append({
                        "name": f"aligned={aligned} sampling_ratio={sampling_ratio} "
                                f"spatial_scale={spatial_scale} output_size={output_size}",
                        "aligned": aligned,
                        "sampling_ratio": sampling_ratio,
                        "spatial_scale": spatial_scale,
                        "output_size": list(output_size),
                        "grad_output": exact(grad_output),
                        "output": flat(out),
                        "grad_input": flat(grad_input),
                    })
    return tensor(features), tensor(rois), cases


def multiscale():
    g = torch.Generator().manual_seed(7)
    n, c = 2, 2
    image_shapes = [(125, 96), (120, 90)]  # (h, w); max (125, 96): scales 1/4, 1/8, 1/16
    feats = OrderedDict()
    for name, (h, w) in (("0", (32, 24)), ("1", (16, 12)), ("2", (8, 6)), ("pool", (4, 3))):
        feats[name] = short((n, c, h, w), g)
    boxes = [
        torch.tensor([
            [10.0, 12.0, 40.0, 50.0],  # small: level 2
            [0.0, 0.0, 112.0, 112.0],  # sqrt(area) = 112: level 3 (eps)
            [5.0, 3.0, 125.0, 123.0],  # sqrt(area) = 120: level 3
            [-60.0, -50.0, 164.0, 174.0],  # sqrt(area) = 224: level 4
            [30.5, 20.25, 31.0, 21.0],  # tiny: level 2 (clamped from below)
        ], dtype=torch.float32),
        torch.tensor([
            [-100.0, -80.0, 150.0, 130.0],  # level 4, partly outside
            [60.0, 40.0, 95.0, 119.0],  # level 2
            [0.0, 0.0, 111.9, 112.0],  # just under 112: level 2
            [20.0, 10.0, 90.0, 118.0],  # sqrt ~ 86.9: level 2
            [-30.0, -20.0, 200.0, 220.0],  # level 4 (sqrt 234.9)
            [2.0, 4.0, 150.0, 120.0],  # level 3
        ], dtype=torch.float32),
    ]
    featmap_names = ["2", "0", "1"]
    out_cases = []
    for output_size, sampling_ratio in (((7, 7), 2), ((3, 2), -1)):
        pooler = MultiScaleRoIAlign(featmap_names, output_size, sampling_ratio)
        x = OrderedDict((k, v.clone().requires_grad_(True)) for k, v in feats.items())
        out = pooler(x, boxes, image_shapes)
        levels = pooler.map_levels(boxes)
        grad_output = short(out.shape, g)
        named = [k for k in x if k in featmap_names]
        grads = torch.autograd.grad(out, [x[k] for k in named], grad_output)
        out_cases.append({
            "output_size": list(output_size),
            "sampling_ratio": sampling_ratio,
            "scales": pooler.scales,
            "levels": levels.tolist(),
            "grad_output": exact(grad_output),
            "output": flat(out),
            "grad_features": {k: flat(gk) for k, gk in zip(named, grads)},
        })
    return {
        "featmap_names": featmap_names,
        "image_shapes": [list(s) for s in image_shapes],
        "features": [[k, tensor(v)] for k, v in feats.items()],
        "boxes": [tensor(b) for b in boxes],
        "cases": out_cases,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.use_deterministic_algorithms(False)
    features, rois, cases = roi_cases()
    ref = {
        "generator": "tests/reference/gen_roi_align.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "features": features,
        "rois": rois,
        "cases": cases,
        "multiscale": multiscale(),
    }
    with open(sys.argv[1], "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
