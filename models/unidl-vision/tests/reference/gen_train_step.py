#!/usr/bin/env python3
"""Training-mode reference values for unidl-vision from torchvision 0.24.0
(torch 2.9.0): one forward/backward in **train mode** of reduced ResNet-18,
VGG-11-BN and EfficientNet-B0 with dropout and stochastic depth disabled
(both are random; their scaling is tested in Rust without a reference).

For each model, with seeded random weights and batch-norm statistics:

  <out>/<name>.safetensors   the state dict before the step (torchvision keys)
  <out>/<name>.step.safetensors
      input          [4, 3, 32, 32] float32 ([8, 3, 64, 64] for EfficientNet:
                     with 32 px its late stages are 1x1 and train-mode BN
                     over 4 values per channel is ill-conditioned)
      labels         [batch] int64
      logits         train-mode logits (batch statistics)
      loss           [1] mean cross-entropy
      dlogits        d loss / d logits
      grad.<key>     d loss / d parameter, for every trainable parameter
      after.<key>    running_mean / running_var of every batch norm after
                     the forward pass (PyTorch: momentum 0.1, running_var
                     updated with the *unbiased* batch variance)
  <out>/manifest.json   per model: the unidl config

Usage: gen_train_step.py OUT   (committed as tests/reference/train_step)
Run it with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import json
import sys
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


def resnet18_small(width, num_classes):
    """torchvision's ResNet-18 at `width` base channels with the small-image
    stem (3x3 stride-1 conv, no max-pool)."""
    block = tv_resnet.BasicBlock
    m = tv_resnet.ResNet(block, [2, 2, 2, 2], num_classes=num_classes)
    m.inplanes = width
    m.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    m.maxpool = nn.Identity()
    m.layer1 = m._make_layer(block, width, 2)
    m.layer2 = m._make_layer(block, 2 * width, 2, stride=2)
    m.layer3 = m._make_layer(block, 4 * width, 2, stride=2)
    m.layer4 = m._make_layer(block, 8 * width, 2, stride=2)
    m.fc = nn.Linear(8 * width, num_classes)
    return m


def vgg11_bn(width, hidden, num_classes):
    """torchvision's VGG-11-BN at `width`/64 of the widths, `hidden` classifier
    units, dropout 0."""
    cfg = [v if v == "M" else v * width // 64 for v in tv_vgg.cfgs["A"]]
    m = tv_vgg.VGG(tv_vgg.make_layers(cfg, batch_norm=True), num_classes=num_classes, dropout=0.0)
    m.classifier = nn.Sequential(
        nn.Linear(8 * width * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(0.0),
        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.0),
        nn.Linear(hidden, num_classes),
    )
    return m


def efficientnet_b0(width, depth, num_classes):
    """torchvision's EfficientNet-B0 scaled by width/depth, dropout 0 and
    stochastic depth 0."""
    setting, last = tv_eff._efficientnet_conf("efficientnet_b0", width_mult=width, depth_mult=depth)
    return tv_eff.EfficientNet(setting, 0.0, stochastic_depth_prob=0.0, last_channel=last, num_classes=num_classes)


def models():
    return [
        ("resnet18_w8_small_stem", resnet18_small(8, 10),
         {"name": "resnet", "depth": 18, "width": 8, "small_input": True, "num_classes": 10}),
        ("vgg11_bn_w8", vgg11_bn(8, 32, 10),
         {"name": "vgg", "depth": 11, "batch_norm": True, "width": 8, "hidden": 32, "dropout": 0.0,
          "num_classes": 10}),
        ("efficientnet_b0_w025", efficientnet_b0(0.25, 0.34, 10),
         {"name": "efficientnet", "variant": "b0", "width_mult": 0.25, "depth_mult": 0.34, "dropout": 0.0,
          "stochastic_depth_prob": 0.0, "num_classes": 10}),
    ]


def randomize(model, seed):
    """torchvision's init for convs/linears; random BN affine parameters and
    running statistics so that a wrong statistic or momentum shows."""
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
    return model


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    manifest = {"torch": torch.__version__, "torchvision": torchvision.__version__, "models": {}}
    for i, (name, model, cfg) in enumerate(models()):
        randomize(model, 200 + i)
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(sd, str(out / f"{name}.safetensors"))
        g = torch.Generator().manual_seed(300 + i)
        shape = [8, 3, 64, 64] if name.startswith("efficientnet") else [4, 3, 32, 32]
        x = torch.randn(shape, generator=g)
        labels = (torch.arange(shape[0]) * 3 + 1) % 10
        model.train()
        logits = model(x)
        logits.retain_grad()
        loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        step = {"input": x, "labels": labels, "logits": logits.detach(), "loss": loss.detach().reshape(1),
                "dlogits": logits.grad.detach()}
        for k, p in model.named_parameters():
            step["grad." + k] = p.grad.detach()
        for k, v in model.state_dict().items():
            if k.endswith("running_mean") or k.endswith("running_var"):
                step["after." + k] = v.detach()
        save_file({k: v.contiguous() for k, v in step.items()}, str(out / f"{name}.step.safetensors"))
        manifest["models"][name] = {"config": cfg, "loss": loss.item()}
        print(f"{name}: loss {loss.item():.4f}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
