#!/usr/bin/env python3
"""Reference values for unidl-vision's SSD300-VGG16 from torchvision 0.24.0 (torch 2.9.0).

The model is torchvision's own `SSD` class (its transform with
`fixed_size=(300, 300)`, `DefaultBoxGenerator`, `SSDHead`, `SSDMatcher`,
hard-negative mining in `compute_loss`, `postprocess_detections`) with
`ssd300_vgg16`'s settings. The committed reduced model needs a narrower
backbone than torchvision's `SSDFeatureExtractorVGG`, whose widths are fixed:
`ReducedExtractor` below has the same modules under the same names
(`features`, `scale_weight`, `extra.{0..4}`) and the same forward, with
every width divided by 8 (VGG-16 stages 8/16/32/64/64, fc6/fc7 128, extras
32→64, 16→32, 16→32, 16→32), 5 classes. With --full, torchvision's own
`ssd300_vgg16(weights=None, weights_backbone=None, num_classes=91)` (35.6 M
parameters, 143 MB: generated into a cache, never committed).

Weights are seeded random (the heads scaled down to the 0-255 input scale,
the class biases σ 2) so that scores vary and the 0.01 threshold, the
per-class top 400, NMS 0.45 and the 200-detection cut all act.

Saved (all float32; the state dict under torchvision's key names):

  <out>/<name>.safetensors      the state dict
  <out>/<name>.io.safetensors   per case `fixed` (2x3x300x300) and
        `resized` (2x3x240x320, resized to 300x300): the six feature maps
        f0..f5 (case `fixed` only), cls_logits [B, N, C], bbox_regression [B, N, 4], anchors
        [N, 4], the two losses for the targets below and gradients of their
        sum for a few parameters, detections per image.
  <out>/ssd.json                configs, targets, parameter counts

Images: value i of the flattened batch is ((i * 7919) % 2003) / 2003.

Usage:
  gen_ssd.py OUT           (the committed tests/reference/ssd)
  gen_ssd.py --full [OUT]  OUT defaults to $UNIDL_SSD_REF or
                           ~/.cache/unidl/zoo-ref/ssd-<key>
"""
import hashlib
import json
import math
import os
import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models.detection import ssd as tv_ssd
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

sys.path.insert(0, str(Path(__file__).parent))
from gen_retinanet import n_params, pattern  # noqa: E402

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.24.0", torchvision.__version__

NAME = "ssd300_vgg16_w8"
CLASSES = 5


def vgg16_features(w):
    """torchvision's `vgg16().features` (config D, no batch norm) at base width `w`."""
    cfg = [w, w, "M", 2 * w, 2 * w, "M", 4 * w, 4 * w, 4 * w, "M", 8 * w, 8 * w, 8 * w, "M", 8 * w, 8 * w, 8 * w, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


class ReducedExtractor(nn.Module):
    """`SSDFeatureExtractorVGG(highres=False)` with its widths divided by `d`."""

    def __init__(self, d: int):
        super().__init__()
        backbone = vgg16_features(64 // d)
        _, _, maxpool3_pos, maxpool4_pos, _ = (i for i, layer in enumerate(backbone) if isinstance(layer, nn.MaxPool2d))
        backbone[maxpool3_pos].ceil_mode = True
        c4 = 512 // d
        self.scale_weight = nn.Parameter(torch.ones(c4) * 20)
        self.features = nn.Sequential(*backbone[:maxpool4_pos])
        fc_w = 1024 // d
        e = [(fc_w, 256 // d, 512 // d, 2, 1), (512 // d, 128 // d, 256 // d, 2, 1),
             (256 // d, 128 // d, 256 // d, 1, 0), (256 // d, 128 // d, 256 // d, 1, 0)]
        extra = nn.ModuleList([
            nn.Sequential(nn.Conv2d(i, m, kernel_size=1), nn.ReLU(inplace=True),
                          nn.Conv2d(m, o, kernel_size=3, padding=p, stride=s), nn.ReLU(inplace=True))
            for (i, m, o, s, p) in e
        ])
        tv_ssd._xavier_init(extra)
        fc = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=False),
            nn.Conv2d(c4, fc_w, kernel_size=3, padding=6, dilation=6),
            nn.ReLU(inplace=True),
            nn.Conv2d(fc_w, fc_w, kernel_size=1),
            nn.ReLU(inplace=True),
        )
        tv_ssd._xavier_init(fc)
        extra.insert(0, nn.Sequential(*backbone[maxpool4_pos:-1], fc))
        self.extra = extra

    def forward(self, x):
        x = self.features(x)
        rescaled = self.scale_weight.view(1, -1, 1, 1) * F.normalize(x)
        output = [rescaled]
        for block in self.extra:
            x = block(x)
            output.append(x)
        return OrderedDict([(str(i), v) for i, v in enumerate(output)])


def build(full: bool) -> nn.Module:
    if full:
        return tv_ssd.ssd300_vgg16(weights=None, weights_backbone=None, num_classes=91)
    anchors = DefaultBoxGenerator(
        [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
        scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
        steps=[8, 16, 32, 64, 100, 300],
    )
    return tv_ssd.SSD(ReducedExtractor(8), anchors, (300, 300), CLASSES,
                      image_mean=[0.48235, 0.45882, 0.40784], image_std=[1.0 / 255.0] * 3)


def randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                gain = 2.0 if name.startswith("head.") else 1.4
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * gain * math.sqrt(1.0 / fan_in))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
        # the maps carry 0-255-scale values (std 1/255): heads scaled so that
        # logits are a few units and deltas below one
        for m in model.head.regression_head.module_list:
            m.weight.mul_(0.001)
        for m in model.head.classification_head.module_list:
            m.weight.mul_(0.005)
            m.bias.copy_(2.0 * torch.randn(m.bias.shape, generator=g))
        model.backbone.scale_weight.copy_(20.0 + torch.randn(model.backbone.scale_weight.shape, generator=g))
    return model


# torchvision labels (0 is background); image 0 has a box so small that only
# the SSD matcher's forced best anchor matches it.
TARGETS = {
    "fixed": [
        {"boxes": [[10.0, 12.0, 60.0, 70.0], [70.5, 30.25, 250.0, 220.0], [100.0, 5.0, 108.0, 15.0]],
         "labels": [1, 4, 2]},
        {"boxes": [], "labels": []},
    ],
    "resized": [
        {"boxes": [[8.0, 10.0, 47.0, 55.0], [55.5, 23.25, 218.0, 195.0], [80.0, 4.0, 86.0, 12.0]],
         "labels": [3, 3, 2]},
        {"boxes": [[20.0, 20.0, 160.0, 190.0]], "labels": [1]},
    ],
}
SHAPES = {"fixed": [2, 3, 300, 300], "resized": [2, 3, 240, 320]}
GRADS = [
    "head.classification_head.module_list.0.weight",
    "head.regression_head.module_list.1.weight",
    "head.classification_head.module_list.5.weight",
    "backbone.scale_weight",
    "backbone.extra.0.7.1.weight",
    "backbone.extra.2.2.weight",
    "backbone.features.10.weight",
    "backbone.features.14.weight",
    "backbone.features.17.weight",
    "backbone.features.21.weight",
    "backbone.extra.0.1.weight",
]
LOSSES = ["bbox_regression", "classification"]


def run_case(model: nn.Module, case: str, out: dict) -> None:
    x = pattern(SHAPES[case])
    images = list(x)
    targets = [{"boxes": torch.tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(t["labels"], dtype=torch.int64)} for t in TARGETS[case]]
    model.train()
    model.zero_grad()
    losses = model(images, [dict(t) for t in targets])
    sum(losses[k] for k in LOSSES).backward()
    params = dict(model.named_parameters())
    for name in GRADS:
        out[f"{case}.grad.{name}"] = params[name].grad.detach().clone()
    for k in LOSSES:
        out[f"{case}.loss.{k}"] = losses[k].detach().reshape(1)
    model.eval()
    with torch.no_grad():
        il, _ = model.transform(images)
        feats = list(model.backbone(il.tensors).values())
        head = model.head(feats)
        anchors = model.anchor_generator(il, feats)
        if case == "fixed":  # the maps once: they are most of the file
            for i, f in enumerate(feats):
                out[f"{case}.f{i}"] = f
        out[f"{case}.cls_logits"] = head["cls_logits"]
        out[f"{case}.bbox_regression"] = head["bbox_regression"]
        out[f"{case}.anchors"] = anchors[0]
        dets = model(images)
    for i, d in enumerate(dets):
        out[f"{case}.det{i}.boxes"] = d["boxes"]
        out[f"{case}.det{i}.scores"] = d["scores"]
        out[f"{case}.det{i}.labels"] = d["labels"].to(torch.float32)
        print(f"{case}: image {i}: {len(d['scores'])} detections", flush=True)
    out[f"{case}.input_sum"] = x.sum(dtype=torch.float64).to(torch.float32).reshape(1)


def cache_key() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in ("gen_ssd.py", "gen_retinanet.py"):
        h.update((here / f).read_bytes())
    return h.hexdigest()


def generate(out_dir: Path, name: str, full: bool, cases, seed: int) -> None:
    model = randomize(build(full), seed)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out_dir / f"{name}.safetensors"))
    io = {}
    for case in cases:
        run_case(model, case, io)
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{name}.io.safetensors"))
    standard = tv_ssd.ssd300_vgg16(weights=None, weights_backbone=None)
    meta = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cache_key": cache_key(),
        "name": name,
        "cases": list(cases),
        "config": {"num_classes": 91} if full else {"num_classes": CLASSES, "width_divisor": 8},
        "params": n_params(model),
        "shapes": SHAPES,
        "targets": TARGETS,
        "grads": GRADS,
        "counts": {
            "ssd300_vgg16": n_params(standard),
            "ssd300_vgg16_trainable": n_params(standard, True),
            "published_num_params": tv_ssd.SSD300_VGG16_Weights.COCO_V1.meta["num_params"],
        },
    }
    (out_dir / "ssd.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"ssd reference: wrote {out_dir}")


def main():
    args = sys.argv[1:]
    full = "--full" in args
    args = [a for a in args if a != "--full"]
    if len(args) > 1 or (not full and len(args) != 1):
        print(__doc__)
        return 2
    if args:
        out_dir = Path(args[0])
    elif os.environ.get("UNIDL_SSD_REF"):
        out_dir = Path(os.environ["UNIDL_SSD_REF"])
    else:
        out_dir = Path.home() / ".cache/unidl/zoo-ref" / f"ssd-{cache_key()}"
    if full and (out_dir / "ssd.json").exists():
        print(f"ssd reference: {out_dir} is complete")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if full:
        generate(out_dir, "ssd300_vgg16_full", True, ["fixed"], 2718)
    else:
        generate(out_dir, NAME, False, ["fixed", "resized"], 314)
    return 0


if __name__ == "__main__":
    sys.exit(main())
