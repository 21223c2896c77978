#!/usr/bin/env python3
"""Reference values for RetinaNet's heads with GroupNorm (`head_norm =
"group"`), from torchvision 0.24.0's own `RetinaNetHead(...,
norm_layer=partial(nn.GroupNorm, 32))`, the head of
`retinanet_resnet50_fpn_v2`: 32 channels, 9 anchors, 5 classes, seeded
weights with randomised GroupNorm affine parameters, on seeded normal
features of three levels (2x32x8x10, 2x32x4x5, 2x32x2x3).

Saved (float32, keys under `head.` as in a RetinaNet state dict):
  <out>/head_v2.safetensors      the head's state dict
  <out>/head_v2.io.safetensors   p0..p2 (features), cls_logits,
        bbox_regression, and gradients of sum(cls * wc) + sum(box * wb)
        (wc, wb saved) for a few parameters
  <out>/head_v2.json

Usage: gen_retinanet_head_v2.py OUT   (the committed tests/reference/retinanet_head_v2)
Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python.
"""
import json
import sys
from functools import partial
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models.detection.retinanet import RetinaNetHead

GRADS = [
    "classification_head.conv.0.1.weight",
    "classification_head.conv.3.0.weight",
    "regression_head.conv.1.1.bias",
    "regression_head.bbox_reg.weight",
]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    head = RetinaNetHead(32, 9, 5, norm_layer=partial(nn.GroupNorm, 32))
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, nn.Conv2d):
                # a larger spread than N(0, 0.01) so the outputs vary
                m.weight.copy_(0.1 * torch.randn(m.weight.shape, generator=g))
    feats = [torch.randn(2, 32, h, w, generator=g) for h, w in [(8, 10), (4, 5), (2, 3)]]
    o = head(feats)
    cls, box = o["cls_logits"], o["bbox_regression"]
    wc = torch.randn(cls.shape, generator=g)
    wb = torch.randn(box.shape, generator=g)
    ((cls * wc).sum() + (box * wb).sum()).backward()
    params = dict(head.named_parameters())
    io = {f"p{i}": f for i, f in enumerate(feats)}
    io.update({"cls_logits": cls.detach(), "bbox_regression": box.detach(), "wc": wc, "wb": wb})
    for k in GRADS:
        io[f"grad.{k}"] = params[k].grad.detach()
    save_file({f"head.{k}": v.detach().contiguous() for k, v in head.state_dict().items()},
              str(out / "head_v2.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / "head_v2.io.safetensors"))
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "name": "head_v2",
            "grads": GRADS}
    (out / "head_v2.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"retinanet head v2 reference: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
