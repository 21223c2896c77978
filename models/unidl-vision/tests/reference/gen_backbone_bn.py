#!/usr/bin/env python3
"""Reference values for unidl-vision's detection backbone with trainable
batch norm (`ResNetBodyConfig { norm = "batch" }`), from torchvision 0.24.0
(torch 2.9.0).

torchvision's detection builders pick `nn.BatchNorm2d` for the ResNet body
when no backbone weights are given (`retinanet_resnet50_fpn(weights=None,
weights_backbone=None)`, `fasterrcnn_resnet50_fpn(...)`) and freeze the
stages outside `trainable_layers` with `requires_grad_(False)`; their batch
norms still update running statistics in training mode. This script builds
that body at reduced width (ResNet-50, base width 4, `nn.BatchNorm2d`,
`fc` removed), freezes `conv1` and `layer1` as `trainable_layers = 3` does,
randomises every norm's affine and statistics, and records on the pattern
image batch (2x3x64x80, value i = ((i * 7919) % 2003) / 2003):

  train/c2..c5          stage outputs in training mode (batch statistics)
  grad/<key>            gradients of loss = sum_k mean(c_k ** 2)
  after/<key>           running statistics after that one training forward
  eval/c5               the last stage in evaluation mode afterwards
  block/x, block/G      a seeded normal input to layer3.4 -> layer3.5 (in
                        training mode, fresh weights) and output weights
  block/y, block/grad/<key>   their output and the gradients of sum(y * G)

The whole body in training mode is chaotic at float32 (batch statistics over
few values, ReLU and max-pool kinks): a 1e-6 relative change of the image
moves torchvision's own float64 layer-3 gradients by percents. Its
gradients are therefore compared loosely by the test; the two-block case,
well conditioned, is compared tightly.

Saved (float32; state dict under torchvision's key names, before the step):

  <out>/body_r50_w4_bn.safetensors
  <out>/body_r50_w4_bn.io.safetensors
  <out>/backbone_bn.json

Usage: gen_backbone_bn.py OUT   (the committed tests/reference/backbone_bn)
Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python.
"""
import copy
import json
import math
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import resnet as tv_resnet

NAME = "body_r50_w4_bn"
WIDTH = 4
SHAPE = [2, 3, 64, 80]
GRADS = [
    "layer2.0.conv1.weight",
    "layer2.0.bn1.weight",
    "layer3.1.bn2.bias",
    "layer4.0.downsample.1.weight",
    "layer4.2.bn3.bias",
]
STATS = [
    "bn1.running_mean",
    "bn1.running_var",
    "layer1.0.bn1.running_mean",
    "layer1.0.bn1.running_var",
    "layer4.2.bn3.running_mean",
    "layer4.2.bn3.running_var",
]


def resnet50_bn(width: int) -> nn.Module:
    """torchvision's ResNet-50 with nn.BatchNorm2d at base width `width`, no classifier."""
    b = tv_resnet.Bottleneck
    m = tv_resnet.ResNet(b, [3, 4, 6, 3], norm_layer=nn.BatchNorm2d)
    m.inplanes = width
    m.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    m.layer1 = m._make_layer(b, width, 3)
    m.layer2 = m._make_layer(b, 2 * width, 4, stride=2)
    m.layer3 = m._make_layer(b, 4 * width, 6, stride=2)
    m.layer4 = m._make_layer(b, 8 * width, 3, stride=2)
    del m.fc
    del m.avgpool
    return m


def randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.weight.numel()
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return model


def freeze(model: nn.Module, trainable_layers: int) -> None:
    """What torchvision's `_resnet_fpn_extractor` freezes."""
    layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers.append("bn1")
    for name, p in model.named_parameters():
        if all(not name.startswith(layer) for layer in layers):
            p.requires_grad_(False)


def stages(m: nn.Module, x: torch.Tensor):
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    c2 = m.layer1(x)
    c3 = m.layer2(c2)
    c4 = m.layer3(c3)
    c5 = m.layer4(c4)
    return [c2, c3, c4, c5]


def pattern(shape) -> torch.Tensor:
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    return (((i * 7919) % 2003).to(torch.float32) / 2003.0).reshape(shape)


BLOCK_GRADS = ["layer3.4.conv1.weight", "layer3.4.bn2.weight", "layer3.5.conv3.weight"]


def block_case(model: nn.Module, io: dict) -> None:
    """layer3.4 then layer3.5 of an untouched copy in training mode on a seeded input."""
    model.train()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16 * WIDTH, 4, 5, generator=g).requires_grad_()
    weights = torch.randn(2, 16 * WIDTH, 4, 5, generator=g)
    y = model.layer3[5](model.layer3[4](x))
    (y * weights).sum().backward()
    io["block/x"] = x.detach()
    io["block/G"] = weights
    io["block/y"] = y.detach()
    io["block/grad/x"] = x.grad.detach()
    params = dict(model.named_parameters())
    for key in BLOCK_GRADS:
        io[f"block/grad/{key}"] = params[key].grad.detach()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = randomize(resnet50_bn(WIDTH), 27)
    freeze(model, 3)
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
              str(out / f"{NAME}.safetensors"))
    io = {}
    untouched = copy.deepcopy(model)
    model.train()
    cs = stages(model, pattern(SHAPE))
    for k, c in enumerate(cs):
        io[f"train/c{k + 2}"] = c.detach()
    loss = sum(c.pow(2).mean() for c in cs)
    loss.backward()
    params = dict(model.named_parameters())
    for key in GRADS:
        io[f"grad/{key}"] = params[key].grad.detach()
    assert params["layer1.0.conv1.weight"].grad is None
    state = model.state_dict()
    for key in STATS:
        io[f"after/{key}"] = state[key].detach().clone()
    model.eval()
    with torch.no_grad():
        io["eval/c5"] = stages(model, pattern(SHAPE))[3]
    io["loss"] = loss.detach().reshape(1)
    block_case(untouched, io)
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / f"{NAME}.io.safetensors"))
    meta = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "name": NAME,
        "config": {"depth": 50, "width": WIDTH, "trainable_layers": 3, "norm": "batch"},
        "shape": SHAPE,
        "grads": GRADS,
        "stats": STATS,
        "block_grads": BLOCK_GRADS,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    (out / "backbone_bn.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"backbone_bn reference: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
