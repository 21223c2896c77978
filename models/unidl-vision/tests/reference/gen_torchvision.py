#!/usr/bin/env python3
"""Reference values for unidl-vision from torchvision 0.24.0 (torch 2.9.0).

For each model: build it with torchvision, seeded random weights, random
batch-norm affine parameters and running statistics, eval mode; save

  <out>/<name>.safetensors      the state dict (torchvision's key names)
  <out>/<name>.io.safetensors   `input` and `logits` (float32)
  <out>/manifest.json           per model: the unidl config, input shape,
                                 trainable parameter count
  <out>/params.json             torchvision's parameter count of every
                                 standard variant (no weights needed)

Usage:
  gen_torchvision.py --small OUT   reduced models (a few hundred kB; the
                                    committed tests/reference/small)
  gen_torchvision.py --full  [OUT] every standard variant at full size
                                    (1000 classes, 1x3x64x64 input); OUT
                                    defaults to $UNIDL_ZOO_REF or
                                    ~/.cache/unidl/zoo-ref/<sha256 of this file>

Run it with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import argparse
import hashlib
import json
import os
import sys
from functools import partial
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import efficientnet as tv_eff
from torchvision.models import resnet as tv_resnet
from torchvision.models import vgg as tv_vgg

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.24.0", torchvision.__version__

RESNETS = {18: "resnet18", 34: "resnet34", 50: "resnet50", 101: "resnet101", 152: "resnet152"}
VGGS = {11: "A", 13: "B", 16: "D", 19: "E"}
EFF_SCALING = {  # torchvision's efficientnet_b* builders
    "b0": (1.0, 1.0, 0.2), "b1": (1.0, 1.1, 0.2), "b2": (1.1, 1.2, 0.3), "b3": (1.2, 1.4, 0.3),
    "b4": (1.4, 1.8, 0.4), "b5": (1.6, 2.2, 0.4), "b6": (1.8, 2.6, 0.5), "b7": (2.0, 3.1, 0.5),
}


def script_hash() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random weights that keep activations O(1): torchvision's init already
    does for convs/linears; batch norms get random γ, β and running stats."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
        # Damp the last BN of each residual branch (as zero_init_residual does,
        # but not to zero) so that 50 stacked blocks keep logits of order one
        # and parity can be held to an absolute 1e-4.
        for m in model.modules():
            if isinstance(m, tv_resnet.BasicBlock):
                m.bn2.weight.mul_(0.2)
            elif isinstance(m, tv_resnet.Bottleneck):
                m.bn3.weight.mul_(0.2)
    return model.eval()


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


# ----- reduced models, built from torchvision's own classes and helpers -----

def resnet_reduced(block, layers, width, num_classes, small_stem, in_ch=3):
    m = tv_resnet.ResNet(block, layers, num_classes=num_classes)
    m.inplanes = width
    k, s, p = (3, 1, 1) if small_stem else (7, 2, 3)
    m.conv1 = nn.Conv2d(in_ch, width, kernel_size=k, stride=s, padding=p, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    if small_stem:
        m.maxpool = nn.Identity()
    m.layer1 = m._make_layer(block, width, layers[0])
    m.layer2 = m._make_layer(block, 2 * width, layers[1], stride=2)
    m.layer3 = m._make_layer(block, 4 * width, layers[2], stride=2)
    m.layer4 = m._make_layer(block, 8 * width, layers[3], stride=2)
    m.fc = nn.Linear(8 * width * block.expansion, num_classes)
    return m


def vgg_reduced(letter, bn, width, hidden, num_classes, in_ch=3):
    cfg = [v if v == "M" else v * width // 64 for v in tv_vgg.cfgs[letter]]
    features = tv_vgg.make_layers(cfg, batch_norm=bn)
    if in_ch != 3:
        features[0] = nn.Conv2d(in_ch, cfg[0], kernel_size=3, padding=1)
    m = tv_vgg.VGG(features, num_classes=num_classes)
    c = 8 * width
    m.classifier = nn.Sequential(
        nn.Linear(c * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(hidden, num_classes),
    )
    return m


def efficientnet(variant, num_classes, width=None, depth=None):
    w, d, dropout = EFF_SCALING[variant]
    w = w if width is None else width
    d = d if depth is None else depth
    setting, last = tv_eff._efficientnet_conf("efficientnet_" + variant, width_mult=w, depth_mult=d)
    kwargs = {}
    if variant in ("b5", "b6", "b7"):
        kwargs["norm_layer"] = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
    return tv_eff.EfficientNet(setting, dropout, last_channel=last, num_classes=num_classes, **kwargs)


def small_models():
    """(name, torch model, unidl config, input shape)."""
    return [
        ("resnet18_w8_small_stem", resnet_reduced(tv_resnet.BasicBlock, [2, 2, 2, 2], 8, 10, True),
         {"name": "resnet", "depth": 18, "width": 8, "small_input": True, "num_classes": 10}, [2, 3, 32, 32]),
        ("resnet50_w4", resnet_reduced(tv_resnet.Bottleneck, [3, 4, 6, 3], 4, 10, False),
         {"name": "resnet", "depth": 50, "width": 4, "num_classes": 10}, [2, 3, 64, 64]),
        ("vgg11_bn_w8", vgg_reduced("A", True, 8, 32, 10),
         {"name": "vgg", "depth": 11, "batch_norm": True, "width": 8, "hidden": 32, "num_classes": 10}, [2, 3, 32, 32]),
        ("vgg13_w8", vgg_reduced("B", False, 8, 32, 7),
         {"name": "vgg", "depth": 13, "width": 8, "hidden": 32, "num_classes": 7}, [2, 3, 40, 40]),
        ("efficientnet_b0_w025", efficientnet("b0", 10, width=0.25, depth=0.34),
         {"name": "efficientnet", "variant": "b0", "width_mult": 0.25, "depth_mult": 0.34, "num_classes": 10}, [2, 3, 32, 32]),
        ("efficientnet_b5_w025", efficientnet("b5", 5, width=0.25, depth=0.5),
         {"name": "efficientnet", "variant": "b5", "width_mult": 0.25, "depth_mult": 0.5, "num_classes": 5}, [2, 3, 48, 48]),
    ]


def full_models():
    for depth, name in RESNETS.items():
        yield name, lambda name=name: getattr(tv_resnet, name)(), {"name": "resnet", "depth": depth}
    for depth, letter in VGGS.items():
        for bn in (False, True):
            name = f"vgg{depth}" + ("_bn" if bn else "")
            yield name, lambda name=name: getattr(tv_vgg, name)(), {"name": "vgg", "depth": depth, "batch_norm": bn}
    for v in EFF_SCALING:
        name = "efficientnet_" + v
        yield name, lambda name=name: getattr(tv_eff, name)(), {"name": "efficientnet", "variant": v}


def save_model(out: Path, name: str, model: nn.Module, config: dict, shape, seed: int) -> dict:
    randomize(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(shape, generator=g)
    with torch.no_grad():
        y = model(x)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out / f"{name}.safetensors"))
    save_file({"input": x.contiguous(), "logits": y.contiguous()}, str(out / f"{name}.io.safetensors"))
    return {"config": config, "input_shape": list(shape), "params": n_params(model)}


def param_counts() -> dict:
    return {name: n_params(make()) for name, make, _ in full_models()}


def main():
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--small", action="store_true")
    mode.add_argument("--full", action="store_true")
    ap.add_argument("out", nargs="?")
    a = ap.parse_args()
    if a.out:
        out = Path(a.out)
    elif os.environ.get("UNIDL_ZOO_REF"):
        out = Path(os.environ["UNIDL_ZOO_REF"])
    else:
        out = Path.home() / ".cache/unidl/zoo-ref" / script_hash()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    manifest = {"torch": torch.__version__, "torchvision": torchvision.__version__, "models": {}}
    if a.small:
        for i, (name, model, cfg, shape) in enumerate(small_models()):
            manifest["models"][name] = save_model(out, name, model, cfg, shape, 100 + i)
        (out / "params.json").write_text(json.dumps(param_counts(), indent=1) + "\n")
    else:
        if (out / "manifest.json").exists():
            print(f"zoo reference: {out} is complete")
            return
        for i, (name, make, cfg) in enumerate(full_models()):
            torch.manual_seed(i)
            manifest["models"][name] = save_model(out, name, make(), cfg, [1, 3, 64, 64], 1000 + i)
            print(f"zoo reference: {name}", flush=True)
    manifest["script_sha256"] = script_hash()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"zoo reference: wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
