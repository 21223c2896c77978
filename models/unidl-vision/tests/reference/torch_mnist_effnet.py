#!/usr/bin/env python3
"""How torchvision's own EfficientNet-B0 trains on the prepared MNIST set
(docs/ZOO.md, "EfficientNet-B0 at 28 px"): the numbers there that explain the
unidl config `configs/efficientnet_b0_mnist.toml` come from this script.

Usage (torch venv, data from `cargo xtask data mnist`):
  [SMALLINIT=1] [STEM1=1] python torch_mnist_effnet.py OPT LR EPOCHS SIDE BATCH
    OPT     adam | adamw | sgd (Nesterov momentum 0.9)
    SIDE    input side in px (bilinear resize from 28)
    SMALLINIT=1  classifier weights N(0, 0.01) instead of U(+-1/sqrt(10))
    STEM1=1      stride-1 stem (unidl's `small_input = true`)
Environment: UNIDL_DATA_DIR (default ~/.cache/unidl/data). One thread.
Prints the held-out accuracy (eval mode) after each epoch.
"""
import glob
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models import efficientnet as tv_eff

torch.manual_seed(0)
torch.set_num_threads(1)
root = Path(os.environ.get("UNIDL_DATA_DIR", Path.home() / ".cache/unidl/data")) / "mnist"


def load(split):
    xs, ys = [], []
    for d in range(10):
        for f in sorted(glob.glob(f"{root}/{split}/{d}/*.png")):
            xs.append(np.asarray(Image.open(f), dtype=np.float32) / 255.0)
            ys.append(d)
    x = torch.tensor(np.stack(xs))[:, None]
    return (x - 0.1307) / 0.3081, torch.tensor(ys)


xtr, ytr = load("train")
xte, yte = load("test")
opt_name, lr, epochs, side, bs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
setting, last = tv_eff._efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=1.0)
m = tv_eff.EfficientNet(setting, 0.2, stochastic_depth_prob=0.2, last_channel=last, num_classes=10)
m.features[0][0] = torch.nn.Conv2d(1, 32, 3, 2, 1, bias=False)
torch.nn.init.kaiming_normal_(m.features[0][0].weight, mode="fan_out")
if os.environ.get("SMALLINIT"):
    torch.nn.init.normal_(m.classifier[1].weight, 0, 0.01)
if os.environ.get("STEM1"):
    m.features[0][0].stride = (1, 1)
if opt_name == "adam":
    opt = torch.optim.Adam(m.parameters(), lr, weight_decay=1e-4)
elif opt_name == "adamw":
    opt = torch.optim.AdamW(m.parameters(), lr, weight_decay=0.05)
else:
    opt = torch.optim.SGD(m.parameters(), lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
steps = epochs * (len(ytr) // bs)
warm = 50
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: min(1, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
)
aff = torchvision.transforms.RandomAffine(10, (0.1, 0.1), (0.9, 1.1))


def resize(x):
    if side == 28:
        return x
    return torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


g = torch.Generator().manual_seed(1)
t = time.time()
for ep in range(epochs):
    m.train()
    perm = torch.randperm(len(ytr), generator=g)
    for i in range(len(ytr) // bs):
        idx = perm[i * bs:(i + 1) * bs]
        xb = resize(torch.stack([aff(v) for v in xtr[idx]]))
        loss = torch.nn.functional.cross_entropy(m(xb), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    m.eval()
    with torch.no_grad():
        acc = (m(resize(xte)).argmax(1) == yte).float().mean().item()
    print(sys.argv[1:], "epoch", ep, "loss", round(loss.item(), 3), "held-out accuracy", round(acc, 4),
          f"{time.time() - t:.0f} s", flush=True)
