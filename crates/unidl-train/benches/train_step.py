"""PyTorch eager baseline for `cargo xtask bench train`: the same CNN, loss,
optimizer, batch size and data as benches/train_step.rs. Prints one JSON line
{"ms_per_step": ..., "torch": version, "threads": n}.

Usage: python train_step.py <batch.f32> <labels.i64> <batch> <steps> <warmup>
(the batch is written by the Rust bench, so both sides train on the same bytes)
"""
import json
import os
import sys
import time

import numpy as np
import torch


def main():
    xf, yf = sys.argv[1], sys.argv[2]
    batch, steps, warmup = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("UNIDL_BENCH_THREADS", os.cpu_count() or 1)))
    x = torch.from_numpy(np.fromfile(xf, dtype="<f4").reshape(batch, 1, 28, 28).copy())
    y = torch.from_numpy(np.fromfile(yf, dtype="<i8").copy())
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - t0) * 1000 / steps
    print(json.dumps({"ms_per_step": ms, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
