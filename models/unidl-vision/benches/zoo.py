#!/usr/bin/env python3
"""PyTorch eager baseline for `cargo xtask bench zoo` (benches/zoo.rs).

  zoo.py train X.f32 Y.i64 STEPS WARMUP   ResNet-18 (small-image stem, 10
                                           classes) Adam step, batch 32x3x32x32
  zoo.py infer X.f32 STEPS WARMUP         torchvision resnet50 eval forward,
                                           batch 8x3x224x224

Reads the inputs the Rust bench wrote, prints JSON {ms_per_step, torch, threads}.
"""
import json
import sys
import time

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet

torch.set_num_threads(max(1, torch.get_num_threads()))


def timed(step, steps, warmup):
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) * 1000.0 / steps


def main():
    mode = sys.argv[1]
    torch.manual_seed(0)
    if mode == "train":
        x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(32, 3, 32, 32))
        y = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.int64))
        steps, warmup = int(sys.argv[4]), int(sys.argv[5])
        m = resnet.resnet18(num_classes=10)
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(m(x), y)
            loss.backward()
            opt.step()
            loss.item()
    else:
        x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(8, 3, 224, 224))
        steps, warmup = int(sys.argv[3]), int(sys.argv[4])
        m = resnet.resnet50().eval()

        def step():
            with torch.no_grad():
                m(x).sum().item()

    ms = timed(step, steps, warmup)
    print(json.dumps({"ms_per_step": ms, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
