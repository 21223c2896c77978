"""torchvision baseline for `cargo xtask bench data`: the same pipeline as
benches/loader.rs on the same files (written by the Rust bench):
ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor +
Normalize, DataLoader batch size as given, shuffled, for each num_workers
(0 = in-process). Prints one JSON line
{"images_per_s": {"0": ..., "1": ..., "2": ...}, "torch": ..., "torchvision": ...,
 "pillow": ..., "threads": n}.

Usage: python loader.py <image folder root> <batch> <timed epochs> <workers,comma,separated>
In-process work uses one intra-op thread (UNIDL_BENCH_THREADS to change).
Each setting runs one warm-up epoch (worker start-up included), then the
median of the timed epochs (persistent workers, so start-up is not timed).
"""
import json
import os
import sys

import PIL
import torch
from bench_common import rate
import torchvision
from torchvision import datasets, transforms

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def main():
    root, batch, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    workers = [int(w) for w in sys.argv[4].split(",")]
    torch.manual_seed(0)
    # DataLoader workers run with one intra-op thread; the in-process case
    # (num_workers=0) does too unless UNIDL_BENCH_THREADS says otherwise: with
    # two threads on two busy cores, ToTensor/Normalize of one 224x224 image
    # stall on the thread pool (13 ms instead of 0.4 ms measured here).
    torch.set_num_threads(int(os.environ.get("UNIDL_BENCH_THREADS", "1")))
    tf = transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    ds = datasets.ImageFolder(root, tf)
    out = {str(w): rate(ds, batch, epochs, w) for w in workers}
    print(
        json.dumps(
            {
                "images_per_s": out,
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "pillow": PIL.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
