#!/usr/bin/env python3
"""Reference values for the audio, feature and hue transforms of unidl-data.

Writes `audio.json` beside this file. The Rust tests (`tests/audio.rs`) read
that file and need no Python.

Cases:
- `mel`: torchaudio.transforms.MelSpectrogram (+ AmplitudeToDB, or log(x+eps))
  on a fixed two-channel signal, for HTK and Slaney mel scales, power 1 and 2.
- `resample`: torchaudio.functional.resample of a fixed sine (windowed sinc,
  Hann, lowpass_filter_width 6, rolloff 0.99). unidl uses rubato's FFT
  resampler, a different algorithm, so the test compares with a loose tolerance
  away from the edges.
- `hue`: torchvision.transforms.functional.adjust_hue on a fixed RGB image.

Run (from the repository root):
    /var/cache/unidl/torch-venv/bin/python crates/unidl-data/tests/reference/gen_audio.py

Requires torch==2.9.0, torchaudio==2.9.0, torchvision==0.24.0 and numpy.
"""
import json
import math
import pathlib

import numpy as np
import torch
import torchaudio
import torchvision
import torchvision.transforms.functional as TF

OUT = pathlib.Path(__file__).with_name("audio.json")
SR = 8000
N = 4000


def signal():
    """Two channels: a chord with a chirp, and a decaying tone plus noise."""
    n = np.arange(N, dtype=np.float64)
    t = n / SR
    left = (
        0.5 * np.sin(2 * math.pi * 440.0 * t)
        + 0.3 * np.sin(2 * math.pi * 1250.0 * t + 0.3)
        + 0.1 * np.sin(2 * math.pi * (100.0 + 1000.0 * t) * t)
    )
    rng = np.random.default_rng(7)
    right = 0.7 * np.exp(-3.0 * t) * np.sin(2 * math.pi * 2000.0 * t) + 0.05 * rng.standard_normal(N)
    return np.stack([left, right]).astype(np.float32)


def mel_case(x, name, n_fft, hop, n_mels, f_min, f_max, mel_scale, norm, power, log, eps=1e-6, top_db=None):
    # float64 throughout (window and filter bank too), so the reference is not
    # limited by float32 rounding
    torch.set_default_dtype(torch.float64)
    spec = torchaudio.transforms.MelSpectrogram(
        sample_rate=SR,
        n_fft=n_fft,
        hop_length=hop,
        f_min=f_min,
        f_max=f_max,
        n_mels=n_mels,
        power=power,
        norm=norm,
        mel_scale=mel_scale,
        center=True,
        pad_mode="reflect",
    )
    m = spec(torch.from_numpy(x).double())
    if log == "db":
        stype = "power" if power == 2.0 else "magnitude"
        m = torchaudio.transforms.AmplitudeToDB(stype=stype, top_db=top_db)(m)
    elif log == "log":
        m = torch.log(m + eps)
    out = {
        "name": name,
        "n_fft": n_fft,
        "hop": hop,
        "n_mels": n_mels,
        "f_min": f_min,
        "f_max": f_max,
        "mel_scale": mel_scale,
        "norm": norm,
        "power": power,
        "log": log,
        "eps": eps,
        "top_db": top_db,
        "shape": list(m.shape),
        "data": [float(v) for v in m.reshape(-1)],
    }
    torch.set_default_dtype(torch.float32)
    return out


def main():
    x = signal()
    mel = [
        mel_case(x, "htk_power_db", 512, 128, 40, 0.0, None, "htk", None, 2.0, "db"),
        mel_case(x, "slaney_magnitude_db_topdb", 256, 64, 32, 50.0, 3500.0, "slaney", "slaney", 1.0, "db", top_db=60.0),
        mel_case(x, "htk_power_log", 400, 160, 24, 20.0, 3800.0, "htk", None, 2.0, "log", eps=1e-6),
        mel_case(x, "slaney_power_none", 512, 256, 16, 0.0, None, "slaney", None, 2.0, "none"),
    ]

    tone = np.sin(2 * math.pi * 440.0 * np.arange(N) / SR).astype(np.float32)
    up = torchaudio.functional.resample(torch.from_numpy(tone).double(), SR, 16000).numpy()
    down = torchaudio.functional.resample(torch.from_numpy(tone).double(), SR, 5000).numpy()

    rng = np.random.default_rng(11)
    img = rng.random((3, 6, 7)).astype(np.float32)  # C, H, W
    img[:, 0, 0] = [0.5, 0.5, 0.5]  # a gray pixel: hue undefined
    img[:, 0, 1] = [1.0, 0.0, 0.0]
    img[:, 0, 2] = [0.0, 1.0, 1.0]
    hue = []
    for f in [-0.5, -0.3, -0.05, 0.0, 0.1, 0.25, 0.5]:
        out = TF.adjust_hue(torch.from_numpy(img), f).numpy()
        hue.append({"factor": f, "data": [float(v) for v in out.transpose(1, 2, 0).reshape(-1)]})

    ref = {
        "versions": {
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "torchvision": torchvision.__version__,
        },
        "sample_rate": SR,
        "signal": [[float(v) for v in ch] for ch in x],
        "mel": mel,
        "resample": {
            "input": [float(v) for v in tone],
            "to_16000": [float(v) for v in up],
            "to_5000": [float(v) for v in down],
        },
        "hue": {
            "height": 6,
            "width": 7,
            "image": [float(v) for v in img.transpose(1, 2, 0).reshape(-1)],
            "cases": hue,
        },
    }
    OUT.write_text(json.dumps(ref))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
