#!/usr/bin/env python3
"""Reference values for unidl-vision's DeepLabv3 from torchvision 0.24.0 (torch 2.9.0).

The model is torchvision's own `DeepLabV3` built as `deeplabv3_resnet50`
builds it (`resnet50(replace_stride_with_dilation=[False, True, True])`
with `nn.BatchNorm2d`, `IntermediateLayerGetter` returning layer4 as `out`
and layer3 as `aux`, `DeepLabHead`/`ASPP` and `FCNHead`), through
torchvision's public classes, at reduced width so the weights can be
committed: ResNet-50 at base width 4, ASPP and head of 16 channels, atrous
rates 2/3/4 (the feature map is small), 5 classes. Weights are seeded random
with randomised batch-norm affine and statistics.

Saved (float32; state dict under torchvision's key names, no
`num_batches_tracked`):

  <out>/<name>.safetensors
  <out>/<name>.io.safetensors
        eval/out, eval/aux         logits of the pattern batch in eval mode
        train/out, train/aux       logits in training mode (batch statistics;
                                   the dropouts' p set to 0, so deterministic)
        loss                       CE(out) + 0.5 CE(aux), ignore_index 255,
                                   against the target map `target`
        grad/<key>                 gradients of that loss
        after/<key>                running statistics after the step
        heads/c4, heads/c5         seeded normal features at output stride 8
        heads/out, heads/aux, heads/loss, heads/grad/<key>
                                   the two heads alone in training mode on
                                   them, upsampled to the image size, with
                                   the same loss and its head gradients

The whole network in training mode is chaotic at float32 (batch statistics
over few values, ReLU kinks): a 1e-6 relative change of the image moves
torchvision's own float64 head gradients by 2-6 % and its float32 run
differs from its float64 one by up to 10 % on an ASPP branch (measured). The
test checks that case's logits, loss and statistics closely and its
gradients loosely, and the heads-alone case, which is well conditioned,
tightly.
  <out>/deeplabv3.json             config, parameter counts

Images are the pattern of tests/common.rs scaled to [0, 1): value i of the
flattened batch is ((i * 7919) % 2003) / 2003. The target map is a formula
of the pixel position with a band of 255 (ignored).

With --full, the standard `deeplabv3_resnet50(num_classes=21,
aux_loss=True)` (rates 12/24/36), eval and train cases on 2x3x96x128, named
deeplabv3_r50_full (about 170 MB: generated into a cache, never committed).

Usage:
  gen_deeplabv3.py OUT           (the committed tests/reference/deeplabv3)
  gen_deeplabv3.py --full [OUT]  OUT defaults to $UNIDL_DEEPLABV3_REF or
                                 ~/.cache/unidl/zoo-ref/deeplabv3-<sha256 of this file>

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
from torch.nn import functional as F
from torchvision.models import resnet as tv_resnet
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation import deeplabv3_resnet50
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabV3
from torchvision.models.segmentation.fcn import FCNHead

NAME = "deeplabv3_r50_w4"
WIDTH = 4
ASPP_CH = 16
RATES = [2, 3, 4]
CLASSES = 5
SHAPE = [2, 3, 64, 80]
FULL_SHAPE = [2, 3, 96, 128]
GRADS = [
    "classifier.4.weight",
    "classifier.1.weight",
    "classifier.0.project.0.weight",
    "classifier.0.convs.1.0.weight",
    "classifier.0.convs.4.1.weight",
    "aux_classifier.4.weight",
    "aux_classifier.0.weight",
    "backbone.layer4.2.conv3.weight",
    "backbone.layer4.0.conv2.weight",
]
STATS = [
    "classifier.0.convs.4.2.running_mean",
    "classifier.0.convs.4.2.running_var",
    "classifier.2.running_var",
    "aux_classifier.1.running_mean",
]


def resnet50_dilated(width: int) -> nn.Module:
    """torchvision's ResNet-50 with replace_stride_with_dilation=[F, T, T] at base width `width`."""
    b = tv_resnet.Bottleneck
    m = tv_resnet.ResNet(b, [3, 4, 6, 3], replace_stride_with_dilation=[False, True, True])
    m.inplanes = width
    m.dilation = 1
    m.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    m.layer1 = m._make_layer(b, width, 3)
    m.layer2 = m._make_layer(b, 2 * width, 4, stride=2, dilate=False)
    m.layer3 = m._make_layer(b, 4 * width, 6, stride=2, dilate=True)
    m.layer4 = m._make_layer(b, 8 * width, 3, stride=2, dilate=True)
    return m


def build_reduced() -> nn.Module:
    body = IntermediateLayerGetter(resnet50_dilated(WIDTH), {"layer4": "out", "layer3": "aux"})
    c5, c4 = 8 * WIDTH * 4, 4 * WIDTH * 4
    head = nn.Sequential(
        ASPP(c5, RATES, ASPP_CH),
        nn.Conv2d(ASPP_CH, ASPP_CH, 3, padding=1, bias=False),
        nn.BatchNorm2d(ASPP_CH),
        nn.ReLU(),
        nn.Conv2d(ASPP_CH, CLASSES, 1),
    )
    return DeepLabV3(body, head, FCNHead(c4, CLASSES))


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


def no_dropout(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0


def pattern(shape) -> torch.Tensor:
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    return (((i * 7919) % 2003).to(torch.float32) / 2003.0).reshape(shape)


def target(shape, classes: int) -> torch.Tensor:
    b, _, h, w = shape
    y = torch.arange(h).view(1, h, 1)
    x = torch.arange(w).view(1, 1, w)
    k = torch.arange(b).view(b, 1, 1)
    t = ((x // 9 + 2 * (y // 7) + k) % classes).to(torch.int64)
    band = (x - y).abs() < 2
    return torch.where(band, torch.tensor(255), t)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def script_hash() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def run(model: nn.Module, shape, classes: int, io: dict) -> None:
    x = pattern(shape)
    model.eval()
    with torch.no_grad():
        o = model(x)
    io["eval/out"], io["eval/aux"] = o["out"], o["aux"]
    no_dropout(model)
    model.train()
    model.zero_grad()
    o = model(x)
    t = target(shape, classes)
    loss = F.cross_entropy(o["out"], t, ignore_index=255) + 0.5 * F.cross_entropy(o["aux"], t, ignore_index=255)
    loss.backward()
    io["train/out"], io["train/aux"] = o["out"].detach(), o["aux"].detach()
    io["target"] = t.to(torch.float32)
    io["loss"] = loss.detach().reshape(1)
    params = dict(model.named_parameters())
    for key in GRADS:
        io[f"grad/{key}"] = params[key].grad.detach().clone()
    state = model.state_dict()
    for key in STATS:
        io[f"after/{key}"] = state[key].detach().clone()
    heads_case(model, shape, classes, io)


def heads_case(model: nn.Module, shape, classes: int, io: dict) -> None:
    b, _, h, w = shape
    c5 = model.classifier[0].convs[0][0].in_channels
    c4 = model.aux_classifier[0].in_channels
    g = torch.Generator().manual_seed(8)
    f5 = torch.randn(b, c5, h // 8, w // 8, generator=g)
    f4 = torch.randn(b, c4, h // 8, w // 8, generator=g)
    model.train()
    model.zero_grad()
    out = F.interpolate(model.classifier(f5), size=(h, w), mode="bilinear", align_corners=False)
    aux = F.interpolate(model.aux_classifier(f4), size=(h, w), mode="bilinear", align_corners=False)
    t = target(shape, classes)
    loss = F.cross_entropy(out, t, ignore_index=255) + 0.5 * F.cross_entropy(aux, t, ignore_index=255)
    loss.backward()
    io["heads/c5"], io["heads/c4"] = f5, f4
    io["heads/out"], io["heads/aux"] = out.detach(), aux.detach()
    io["heads/loss"] = loss.detach().reshape(1)
    params = dict(model.named_parameters())
    for key in GRADS:
        if not key.startswith("backbone."):
            io[f"heads/grad/{key}"] = params[key].grad.detach().clone()


def generate(out_dir: Path, full: bool) -> None:
    torch.manual_seed(0)
    if full:
        name, shape, classes = "deeplabv3_r50_full", FULL_SHAPE, 21
        model = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
        config = {"num_classes": 21}
    else:
        name, shape, classes = NAME, SHAPE, CLASSES
        model = build_reduced()
        config = {
            "num_classes": CLASSES,
            "aspp_channels": ASPP_CH,
            "atrous_rates": RATES,
            "backbone": {"depth": 50, "width": WIDTH, "trainable_layers": 5, "norm": "batch",
                         "replace_stride_with_dilation": [False, True, True]},
        }
    model = randomize(model, 4242)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    save_file(sd, str(out_dir / f"{name}.safetensors"))
    io = {}
    run(model, shape, classes, io)
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{name}.io.safetensors"))
    standard = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    meta = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "script_sha256": script_hash(),
        "name": name,
        "config": config,
        "shape": shape,
        "grads": GRADS,
        "stats": STATS,
        "params": n_params(model),
        "standard_params": n_params(standard),
        "standard_params_no_aux": n_params(standard) - n_params(standard.aux_classifier),
    }
    (out_dir / "deeplabv3.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"deeplabv3 reference: wrote {out_dir}")


def main():
    args = sys.argv[1:]
    full = "--full" in args
    args = [a for a in args if a != "--full"]
    if len(args) > 1 or (not full and len(args) != 1):
        print(__doc__)
        return 2
    if args:
        out_dir = Path(args[0])
    elif os.environ.get("UNIDL_DEEPLABV3_REF"):
        out_dir = Path(os.environ["UNIDL_DEEPLABV3_REF"])
    else:
        out_dir = Path.home() / ".cache/unidl/zoo-ref" / f"deeplabv3-{script_hash()}"
    if full and (out_dir / "deeplabv3.json").exists():
        print(f"deeplabv3 reference: {out_dir} is complete")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    generate(out_dir, full)
    return 0


if __name__ == "__main__":
    sys.exit(main())
