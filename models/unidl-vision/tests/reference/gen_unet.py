#!/usr/bin/env python3
"""Reference values for unidl-vision's U-Net from a PyTorch definition of
the paper's network written here (Ronneberger et al. 2015; no package ships
one): double 3x3 convolutions with ReLU, 2x2 max-pooling, 2x2 stride-2
up-convolutions halving the channels, concatenation with the centre-cropped
skip (skip first), a final 1x1 convolution; unpadded ("valid", the paper's)
or padded ("same") 3x3 convolutions. Module names match unidl's
(`encoder.{i}.conv{1,2}`, `decoder.{i}.up`, `decoder.{i}.conv.conv{1,2}`,
`head`).

Two committed cases (torch 2.9.0, seeded weights, float32):
  valid: base 4, depth 4, 1 input channel, 2 classes, batch 2x1x188x204
         (the paper's tile rule: output 4x20)
  same:  base 4, depth 4, 3 input channels, 3 classes, batch 2x3x64x80
Each: logits, the cross-entropy against a formula target, and gradients of
a few parameters. Also the paper configuration's parameter count.

  <out>/unet_<case>.safetensors, <out>/unet_<case>.io.safetensors, <out>/unet.json

Usage: gen_unet.py OUT   (the committed tests/reference/unet)
Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python.
"""
import json
import math
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, pad):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=pad)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=pad)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class Up(nn.Module):
    def __init__(self, c, pad):
        super().__init__()
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.conv = DoubleConv(2 * c, c, pad)


class UNet(nn.Module):
    def __init__(self, cin=1, classes=2, base=64, depth=4, padding="valid"):
        super().__init__()
        pad = 0 if padding == "valid" else 1
        self.encoder = nn.ModuleList(
            [DoubleConv(cin if i == 0 else base << (i - 1), base << i, pad) for i in range(depth + 1)])
        self.decoder = nn.ModuleList([Up(base << i, pad) for i in reversed(range(depth))])
        self.head = nn.Conv2d(base, classes, 1)

    def forward(self, x):
        skips = []
        for i, level in enumerate(self.encoder):
            x = level(x)
            if i < len(self.encoder) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up in self.decoder:
            s = skips.pop()
            y = up.up(x)
            h, w = y.shape[2:]
            top, left = (s.shape[2] - h) // 2, (s.shape[3] - w) // 2
            x = up.conv(torch.cat([s[:, :, top:top + h, left:left + w], y], 1))
        return self.head(x)


GRADS = ["encoder.0.conv1.weight", "encoder.4.conv2.weight", "decoder.0.up.weight",
         "decoder.3.conv.conv1.bias", "head.weight"]
CASES = {
    "valid": dict(cin=1, classes=2, base=4, depth=4, padding="valid", shape=[2, 1, 188, 204]),
    "same": dict(cin=3, classes=3, base=4, depth=4, padding="same", shape=[2, 3, 64, 80]),
}


def pattern(shape):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    return (((i * 7919) % 2003).to(torch.float32) / 2003.0).reshape(shape)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    meta = {"torch": torch.__version__, "grads": GRADS, "cases": {},
            "paper_params": sum(p.numel() for p in UNet().parameters())}
    for name, c in CASES.items():
        torch.manual_seed(7)
        m = UNet(c["cin"], c["classes"], c["base"], c["depth"], c["padding"])
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randn(p.shape) * (0.1 if p.dim() == 1 else math.sqrt(2.0 / p[0].numel())))
        x = pattern(c["shape"])
        y = m(x)
        b, k, h, w = y.shape
        yy = torch.arange(h).view(1, h, 1)
        xx = torch.arange(w).view(1, 1, w)
        t = ((xx // 3 + yy // 2 + torch.arange(b).view(b, 1, 1)) % k).to(torch.int64)
        loss = F.cross_entropy(y, t)
        loss.backward()
        params = dict(m.named_parameters())
        io = {"logits": y.detach(), "target": t.to(torch.float32), "loss": loss.detach().reshape(1)}
        for g in GRADS:
            io[f"grad.{g}"] = params[g].grad
        save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()},
                  str(out / f"unet_{name}.safetensors"))
        save_file({k: v.contiguous() for k, v in io.items()}, str(out / f"unet_{name}.io.safetensors"))
        cfg = {k: v for k, v in c.items() if k != "shape"}
        meta["cases"][name] = {"config": {"in_channels": cfg["cin"], "num_classes": cfg["classes"],
                                          "base_channels": cfg["base"], "depth": cfg["depth"],
                                          "padding": cfg["padding"]},
                               "shape": c["shape"], "out": list(y.shape)}
    (out / "unet.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"unet reference: wrote {out} (paper configuration: {meta['paper_params']} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
