"""What the loader benchmarks' torch baselines share (imported by loader.py
and video_loader.py, which run from this folder)."""
import statistics
import time

import torch
from torch.utils.data import DataLoader


def rate(ds, batch, epochs, workers):
    """Samples per second of a shuffled DataLoader over `ds`: one warm-up
    epoch (worker start-up included), then the median of `epochs` timed ones
    (persistent workers, so start-up is not timed)."""
    dl = DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    for _ in dl:  # warm-up
        pass
    rates = []
    for _ in range(epochs):
        t = time.perf_counter()
        n = 0
        for x, _ in dl:
            n += x.shape[0]
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)
