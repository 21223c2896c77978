#!/usr/bin/env python3
"""Reference values for unidl-vision's RetinaNet from torchvision 0.24.0 (torch 2.9.0).

The model is torchvision's own `RetinaNet` built exactly as
`retinanet_resnet50_fpn` builds it with a pretrained backbone (a ResNet-50
body with `FrozenBatchNorm2d`, `_resnet_fpn_extractor(trainable_layers=3,
returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(D, D))`, the default
anchor generator, heads and losses), through torchvision's public classes,
at reduced width so the weights can be committed: ResNet-50 at base width 4,
an FPN and heads of 16 channels, 5 classes, transform min_size 128 /
max_size 160. Weights are seeded random with randomised frozen-BN
statistics; the heads' convolutions get a larger spread and the class bias
a random offset so that many anchors score above the 0.05 threshold and
the top-k, NMS and 300-detection cut all act.

Saved (all float32; the state dict under torchvision's key names):

  <out>/retinanet_r50_w4.safetensors       the state dict
  <out>/retinanet_r50_w4.io.safetensors    per case `fixed` (2x3x128x160,
        transform resize a no-op) and `resized` (2x3x100x120, resized to
        128x153 and padded to 128x160): the FPN levels p3..p7, cls_logits,
        bbox_regression, anchors, the two training losses for the targets
        below, detections per image (boxes, scores, labels), and gradients of
        a few parameters of the summed loss; focal-loss cases.
  <out>/retinanet.json                      configs, targets, parameter counts

Images are a fixed formula (no file needed): value i of the flattened batch
is ((i * 7919) % 2003) / 2003, the pattern of tests/common.rs scaled to [0, 1).

With --full, the same checks for the standard model (ResNet-50 at width
64, 256-channel FPN and heads, 91 classes; transform min_size 128 /
max_size 160 so the CPU test stays short), case `fixed` only, named
retinanet_r50_full (about 140 MB: generated into a cache, never committed).

Usage:
  gen_retinanet.py OUT           (the committed tests/reference/retinanet)
  gen_retinanet.py --full [OUT]  OUT defaults to $UNIDL_RETINANET_REF or
                                 ~/.cache/unidl/zoo-ref/retinanet-<sha256 of this file>

Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python.
"""
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import resnet as tv_resnet
from torchvision.models.detection import retinanet as tv_retina
from torchvision.models.detection import retinanet_resnet50_fpn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import sigmoid_focal_loss
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.24.0", torchvision.__version__

NAME = "retinanet_r50_w4"
WIDTH, FPN, CLASSES = 4, 16, 5


def resnet50_frozen(width: int) -> nn.Module:
    """torchvision's ResNet-50 with FrozenBatchNorm2d at base width `width`."""
    b = tv_resnet.Bottleneck
    m = tv_resnet.ResNet(b, [3, 4, 6, 3], norm_layer=FrozenBatchNorm2d)
    m.inplanes = width
    m.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = FrozenBatchNorm2d(width)
    m.layer1 = m._make_layer(b, width, 3)
    m.layer2 = m._make_layer(b, 2 * width, 4, stride=2)
    m.layer3 = m._make_layer(b, 4 * width, 6, stride=2)
    m.layer4 = m._make_layer(b, 8 * width, 3, stride=2)
    return m


def extractor(body: nn.Module, trainable_layers: int, out_channels: int) -> nn.Module:
    """torchvision's `_resnet_fpn_extractor`, whose FPN width is fixed at 256, with the width as a parameter."""
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers_to_train.append("bn1")
    for name, p in body.named_parameters():
        if all(not name.startswith(layer) for layer in layers_to_train):
            p.requires_grad_(False)
    returned = [2, 3, 4]
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned)}
    stage2 = body.inplanes // 8
    in_channels_list = [stage2 * 2 ** (i - 1) for i in returned]
    return BackboneWithFPN(body, return_layers, in_channels_list, out_channels,
                           extra_blocks=LastLevelP6P7(out_channels, out_channels))


def build(width: int, fpn: int, classes: int) -> nn.Module:
    backbone = extractor(resnet50_frozen(width), 3, fpn)
    return tv_retina.RetinaNet(backbone, classes, min_size=128, max_size=160)


def randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FrozenBatchNorm2d):
                n = m.weight.numel()
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        for m in model.modules():
            if isinstance(m, tv_resnet.Bottleneck):
                m.bn3.weight.mul_(0.2)
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d) and name.startswith("head."):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(1.0 / fan_in))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
        cls = model.head.classification_head.cls_logits
        cls.bias.copy_(-2.0 + 0.5 * torch.randn(cls.bias.shape, generator=g))
    return model


def pattern(shape) -> torch.Tensor:
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    return (((i * 7919) % 2003).to(torch.float32) / 2003.0).reshape(shape)


# Targets in input pixels of each case: image 0 has three boxes (one of them
# so small that only low-quality matching gives it anchors), image 1 none.
TARGETS = {
    "fixed": [
        {"boxes": [[10.0, 12.0, 60.0, 70.0], [70.5, 30.25, 150.0, 120.0], [100.0, 5.0, 108.0, 15.0]],
         "labels": [1, 4, 2]},
        {"boxes": [], "labels": []},
    ],
    "resized": [
        {"boxes": [[8.0, 10.0, 47.0, 55.0], [55.5, 23.25, 118.0, 95.0], [80.0, 4.0, 86.0, 12.0]],
         "labels": [0, 3, 2]},
        {"boxes": [[20.0, 20.0, 60.0, 90.0]], "labels": [1]},
    ],
}
SHAPES = {"fixed": [2, 3, 128, 160], "resized": [2, 3, 100, 120]}
GRADS = [
    "head.classification_head.cls_logits.weight",
    "head.regression_head.bbox_reg.weight",
    "head.classification_head.conv.0.0.weight",
    "backbone.fpn.inner_blocks.0.0.weight",
    "backbone.fpn.extra_blocks.p6.weight",
    "backbone.body.layer4.0.conv1.weight",
    "backbone.body.layer2.0.conv2.weight",
]


def run_case(model: nn.Module, case: str, out: dict) -> None:
    x = pattern(SHAPES[case])
    images = list(x)
    targets = [{"boxes": torch.tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(t["labels"], dtype=torch.int64)} for t in TARGETS[case]]
    # training: pieces, so the intermediate outputs can be saved
    model.train()
    model.zero_grad()
    il, tt = model.transform(images, [dict(t) for t in targets])
    feats = list(model.backbone(il.tensors).values())
    head = model.head(feats)
    anchors = model.anchor_generator(il, feats)
    losses = model.compute_loss(tt, head, anchors)
    (losses["classification"] + losses["bbox_regression"]).backward()
    # the model's own train-mode call gives the same losses
    again = model(images, [dict(t) for t in targets])
    for k in losses:
        assert torch.equal(again[k], losses[k]), k
    params = dict(model.named_parameters())
    for name in GRADS:
        out[f"{case}.grad.{name}"] = params[name].grad.detach().clone()
    assert params["backbone.body.layer1.0.conv1.weight"].grad is None
    for i, f in enumerate(feats):
        out[f"{case}.p{i + 3}"] = f.detach()
    out[f"{case}.cls_logits"] = head["cls_logits"].detach()
    out[f"{case}.bbox_regression"] = head["bbox_regression"].detach()
    out[f"{case}.anchors"] = anchors[0]
    out[f"{case}.loss.classification"] = losses["classification"].detach().reshape(1)
    out[f"{case}.loss.bbox_regression"] = losses["bbox_regression"].detach().reshape(1)
    out[f"{case}.image_size"] = torch.tensor(il.image_sizes[0], dtype=torch.float32)
    # evaluation: the model's own call
    model.eval()
    with torch.no_grad():
        dets = model(images)
    for i, d in enumerate(dets):
        out[f"{case}.det{i}.boxes"] = d["boxes"]
        out[f"{case}.det{i}.scores"] = d["scores"]
        out[f"{case}.det{i}.labels"] = d["labels"].to(torch.float32)
        print(f"{case}: image {i}: {len(d['scores'])} detections", flush=True)
    out[f"{case}.input_sum"] = x.sum(dtype=torch.float64).to(torch.float32).reshape(1)


def focal_cases(out: dict) -> None:
    g = torch.Generator().manual_seed(7)
    x = 3.0 * torch.randn(7, 11, generator=g)
    t = (torch.rand(7, 11, generator=g) < 0.3).to(torch.float32)
    t[0, :5] = torch.tensor([0.2, 0.5, 0.9, 0.0, 1.0])  # soft labels too
    out["focal.inputs"] = x
    out["focal.targets"] = t
    for red in ("none", "sum", "mean"):
        out[f"focal.a025_g2.{red}"] = sigmoid_focal_loss(x, t, 0.25, 2, red).reshape(-1)
    out["focal.a-1_g1.5.none"] = sigmoid_focal_loss(x, t, -1, 1.5, "none").reshape(-1)
    out["focal.a0.6_g0.sum"] = sigmoid_focal_loss(x, t, 0.6, 0, "sum").reshape(-1)


def n_params(m: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable_only)


def param_counts() -> dict:
    # retinanet_resnet50_fpn as built with a pretrained backbone (FrozenBatchNorm2d,
    # trainable_layers 3): what the published 34,014,999 counts (weights not loaded)
    body = tv_resnet.resnet50(norm_layer=FrozenBatchNorm2d)
    backbone = extractor(body, 3, 256)
    frozen = tv_retina.RetinaNet(backbone, 91)
    plain = retinanet_resnet50_fpn(weights=None, weights_backbone=None)
    return {
        "retinanet_resnet50_fpn_frozen_bn": n_params(frozen),
        "retinanet_resnet50_fpn_frozen_bn_trainable": n_params(frozen, True),
        "retinanet_resnet50_fpn_batch_norm": n_params(plain),
        "published_num_params": tv_retina.RetinaNet_ResNet50_FPN_Weights.COCO_V1.meta["num_params"],
    }


def script_hash() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def generate(out_dir: Path, name: str, width: int, fpn: int, classes: int, cases, seed: int) -> None:
    model = randomize(build(width, fpn, classes), seed)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out_dir / f"{name}.safetensors"))
    io = {}
    for case in cases:
        run_case(model, case, io)
    focal_cases(io)
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{name}.io.safetensors"))
    meta = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "script_sha256": script_hash(),
        "name": name,
        "cases": list(cases),
        "config": {
            "num_classes": classes,
            "fpn_channels": fpn,
            "backbone": {"depth": 50, "width": width, "trainable_layers": 3},
            "transform": {"min_size": 128, "max_size": 160},
        },
        "params": n_params(model),
        "trainable_params": n_params(model, True),
        "shapes": SHAPES,
        "targets": TARGETS,
        "grads": GRADS,
        "counts": param_counts(),
    }
    (out_dir / "retinanet.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"retinanet reference: wrote {out_dir}")


def main():
    args = sys.argv[1:]
    full = "--full" in args
    args = [a for a in args if a != "--full"]
    if len(args) > 1 or (not full and len(args) != 1):
        print(__doc__)
        return 2
    if args:
        out_dir = Path(args[0])
    elif os.environ.get("UNIDL_RETINANET_REF"):
        out_dir = Path(os.environ["UNIDL_RETINANET_REF"])
    else:
        out_dir = Path.home() / ".cache/unidl/zoo-ref" / f"retinanet-{script_hash()}"
    if full and (out_dir / "retinanet.json").exists():
        print(f"retinanet reference: {out_dir} is complete")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if full:
        generate(out_dir, "retinanet_r50_full", 64, 256, 91, ["fixed"], 2718)
    else:
        generate(out_dir, NAME, WIDTH, FPN, CLASSES, ["fixed", "resized"], 314)
    return 0


if __name__ == "__main__":
    sys.exit(main())
