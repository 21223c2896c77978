#!/usr/bin/env python3
"""Reference running statistics for `catalogue.rs::batch_norm_running_stats_match_pytorch`.

PyTorch 2.9.0 `nn.BatchNorm{1,2,3}d(C)` (momentum 0.1, eps 1e-5) in training
mode, three steps; step k's input element i is sin(0.37 * i + k) * (1 + i % 3).
Prints running_mean and running_var after the last step, which the test
hard-codes. Run with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import math

import torch

torch.set_printoptions(precision=8)
for name, shape in [("1d", (4, 3)), ("1d_seq", (2, 3, 2)), ("2d", (2, 3, 2, 2)), ("3d", (1, 2, 1, 1, 3))]:
    layer = {"1d": torch.nn.BatchNorm1d, "1d_seq": torch.nn.BatchNorm1d, "2d": torch.nn.BatchNorm2d,
             "3d": torch.nn.BatchNorm3d}[name](shape[1])
    layer.train()
    n = math.prod(shape)
    for k in range(3):
        x = torch.tensor([math.sin(0.37 * i + k) * (1 + i % 3) for i in range(n)], dtype=torch.float32)
        layer(x.reshape(shape))
    print(name, "mean", [round(v, 7) for v in layer.running_mean.tolist()])
    print(name, "var", [round(v, 7) for v in layer.running_var.tolist()])
