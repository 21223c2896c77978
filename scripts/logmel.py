#!/usr/bin/env python3
"""Log-mel pictures of WAV files (for docs/): one PNG per file, 40 mel bands
from 0 to half the sample rate, 32 ms windows every 8 ms (the vocoder's
frames), dB colour scale.

Usage: logmel.py OUT_DIR WAV [WAV ...]
Run it with the torch venv (numpy, torch, torchaudio, matplotlib):
/var/cache/unidl/torch-venv/bin/python scripts/logmel.py docs/media a.wav b.wav
"""
import sys
import wave
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402


def read(path):
    with wave.open(str(path)) as w:
        rate, n, ch = w.getframerate(), w.getnframes(), w.getnchannels()
        x = np.frombuffer(w.readframes(n), dtype=np.int16).reshape(-1, ch)[:, 0]
    return torch.from_numpy(x.astype(np.float32) / 32768.0), rate


def main(out, wavs):
    out.mkdir(parents=True, exist_ok=True)
    for p in wavs:
        x, rate = read(p)
        n_fft = int(0.032 * rate)
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=40
        )(x)
        db = torchaudio.transforms.AmplitudeToDB(top_db=80)(mel)
        fig, ax = plt.subplots(figsize=(max(4, len(x) / rate * 3), 2.2), dpi=100)
        ax.imshow(db.numpy(), origin="lower", aspect="auto", cmap="magma",
                  extent=[0, len(x) / rate, 0, 40])
        ax.set_xlabel("seconds")
        ax.set_ylabel("mel band")
        ax.set_title(Path(p).stem.replace("_", " "), fontsize=9)
        fig.tight_layout()
        fig.savefig(out / (Path(p).stem + ".png"))
        plt.close(fig)
        print(out / (Path(p).stem + ".png"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
