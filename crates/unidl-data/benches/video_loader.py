"""torchvision baseline for `cargo xtask bench video`: the pipeline of
benches/video_loader.rs on the same clips (written by the Rust bench) —
torchvision.io.read_video (PyAV decoding, frames as uint8 TCHW), FRAMES
uniformly spaced indices (torch.linspace, as unidl's FrameSelection::Uniform),
resize to 64x64, float and normalize, clip as CTHW, DataLoader batch size as
given, shuffled, per num_workers. Prints one JSON line
{"clips_per_s": {"1": ..., "2": ...}, "torch": ..., "torchvision": ..., "av": ..., "threads": n}.

Usage: python video_loader.py <class-folder root> <batch> <frames> <timed epochs> <workers,comma,separated>
Each setting runs one warm-up epoch, then the median of the timed epochs
(persistent workers).
"""
import json
import os
import sys

import av
import torch
from bench_common import rate
import torchvision
from torch.utils.data import Dataset
from torchvision.io import read_video
from torchvision.transforms import v2

MEAN = [0.43216, 0.394666, 0.37645]
STD = [0.22803, 0.22145, 0.216989]


class Clips(Dataset):
    def __init__(self, root, frames):
        classes = sorted(os.listdir(root))
        self.items = [
            (os.path.join(root, c, f), i)
            for i, c in enumerate(classes)
            for f in sorted(os.listdir(os.path.join(root, c)))
        ]
        self.frames = frames
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(STD).view(1, 3, 1, 1)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        video, _, _ = read_video(path, pts_unit="sec", output_format="TCHW")
        idx = torch.linspace(0, video.shape[0] - 1, self.frames).round().long()
        x = v2.functional.resize(video[idx], [64, 64], antialias=True)
        x = (x.float() / 255.0 - self.mean) / self.std
        return x.permute(1, 0, 2, 3), label


def main():
    root, batch, frames, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    workers = [int(w) for w in sys.argv[5].split(",")]
    torch.set_num_threads(1)
    ds = Clips(root, frames)
    out = {str(w): rate(ds, batch, epochs, w) for w in workers}
    print(
        json.dumps(
            {
                "clips_per_s": out,
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "av": av.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
