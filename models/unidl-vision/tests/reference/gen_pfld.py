#!/usr/bin/env python3
"""Reference values for unidl-vision's PFLD: a PyTorch definition written from
the paper (Guo et al. 2019, arXiv:1902.10859, Tables 1 and 2; no package
exists), torch 2.9.0.

Backbone on 112x112: conv 3x3/2 (64), depthwise 3x3 (64), inverted residual
blocks (t, c, n, s) = (2, 64, 5, 2), (2, 128, 1, 2), (4, 128, 6, 1),
(2, 16, 1, 1) -> S1; conv 3x3/2 (32) -> S2; conv 7x7 valid (128) -> S3; every
convolution bias-free with batch norm and ReLU (block projections linear);
head: global average of S1 and S2 with S3, concatenated (176), one linear
layer to 2L. Auxiliary net on the first stage's output (28x28x64): conv
3x3/2 (128), 3x3 (128), 3x3/2 (32), 7x7 pad 1 (128), global max pool,
linear 128 -> 32 -> 3. `width` scales every channel count (rounded).
Parameter names are the Rust model's.

Saved: <out>/pfld_025.safetensors (width 0.25, 68 landmarks, seeded random
weights with random BN statistics), <out>/pfld_025.io.safetensors (input x
2x3x112x112 in the detection generators' pattern; eval landmarks and angles;
train-mode landmarks, angles, the loss mean((lm - t)^2) + mean(angles^2)
with t = sin(index)/2 + 0.5, gradients of a few parameters, a running
mean after the step), <out>/pfld.json (config, parameter counts of 1X and
0.25X with and without the auxiliary net).

Usage: gen_pfld.py OUT   (the committed tests/reference/pfld)
"""
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from gen_retinanet import n_params, pattern  # noqa: E402

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__

NAME = "pfld_025"
WIDTH, LANDMARKS = 0.25, 68


class ConvBn(nn.Module):
    def __init__(self, cin, cout, k, s, groups=1, pad=None):
        super().__init__()
        pad = (k - 1) // 2 if pad is None else pad
        self.conv = nn.Conv2d(cin, cout, k, s, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        h = cin * t
        self.expand = ConvBn(cin, h, 1, 1)
        self.depthwise = ConvBn(h, h, 3, s, groups=h)
        self.project = ConvBn(h, cout, 1, 1)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.project(torch.relu(self.depthwise(torch.relu(self.expand(x)))))
        return y + x if self.residual else y


class Auxiliary(nn.Module):
    def __init__(self, c64, c128, c32):
        super().__init__()
        self.conv1 = ConvBn(c64, c128, 3, 2)
        self.conv2 = ConvBn(c128, c128, 3, 1)
        self.conv3 = ConvBn(c128, c32, 3, 2)
        self.conv4 = ConvBn(c32, c128, 7, 1, pad=1)
        self.fc1 = nn.Linear(c128, c32)
        self.fc2 = nn.Linear(c32, 3)

    def forward(self, x):
        for c in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = torch.relu(c(x))
        x = torch.amax(x, dim=(2, 3))
        return self.fc2(self.fc1(x))


class Pfld(nn.Module):
    def __init__(self, landmarks=68, width=1.0, auxiliary=True):
        super().__init__()
        ch = lambda c: max(1, round(c * width))  # noqa: E731
        c64, c128, c16, c32 = ch(64), ch(128), ch(16), ch(32)

        def stack(cin, c, n, s, t):
            return [InvertedResidual(cin if i == 0 else c, c, s if i == 0 else 1, t) for i in range(n)]

        self.conv1 = ConvBn(3, c64, 3, 2)
        self.conv2 = ConvBn(c64, c64, 3, 1, groups=c64)
        self.stage1 = nn.ModuleList(stack(c64, c64, 5, 2, 2))
        self.stage2 = nn.ModuleList(stack(c64, c128, 1, 2, 2) + stack(c128, c128, 6, 1, 4)
                                    + stack(c128, c16, 1, 1, 2))
        self.conv7 = ConvBn(c16, c32, 3, 2)
        self.conv8 = ConvBn(c32, c128, 7, 1, pad=0)
        self.fc = nn.Linear(c16 + c32 + c128, 2 * landmarks)
        self.auxiliary = Auxiliary(c64, c128, c32) if auxiliary else None

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        for b in self.stage1:
            x = b(x)
        f1 = x
        for b in self.stage2:
            x = b(x)
        s1 = x
        s2 = torch.relu(self.conv7(s1))
        s3 = torch.relu(self.conv8(s2))
        feats = torch.cat([s1.mean(dim=(2, 3)), s2.mean(dim=(2, 3)), s3.mean(dim=(2, 3))], 1)
        lm = self.fc(feats)
        angles = self.auxiliary(f1) if self.auxiliary is not None else None
        return lm, angles


GRADS = ["fc.weight", "conv8.conv.weight", "stage2.7.project.conv.weight", "stage1.0.depthwise.bn.weight",
         "conv1.conv.weight", "auxiliary.fc2.weight", "auxiliary.conv4.conv.weight"]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = Pfld(LANDMARKS, WIDTH, True)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(sd, str(out_dir / f"{NAME}.safetensors"))
    x = pattern([2, 3, 112, 112])
    io = {"x": x}
    model.eval()
    with torch.no_grad():
        lm, angles = model(x)
    io["eval.landmarks"], io["eval.angles"] = lm, angles
    model.train()
    lm, angles = model(x)
    t = torch.sin(torch.arange(lm.numel(), dtype=torch.float32)).reshape(lm.shape) / 2 + 0.5
    loss = ((lm - t) ** 2).mean() + (angles ** 2).mean()
    loss.backward()
    io["train.landmarks"], io["train.angles"] = lm.detach(), angles.detach()
    io["train.target"], io["train.loss"] = t, loss.detach().reshape(1)
    params = dict(model.named_parameters())
    for name in GRADS:
        io[f"train.grad.{name}"] = params[name].grad.detach().clone()
    io["train.stage1.0.depthwise.bn.running_mean"] = model.stage1[0].depthwise.bn.running_mean.detach().clone()
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{NAME}.io.safetensors"))
    counts = {f"{name}": n_params(Pfld(68, w, aux)) for name, w, aux in
              [("1x", 1.0, False), ("1x_aux", 1.0, True), ("025x", 0.25, False), ("025x_aux", 0.25, True)]}
    doc = {"torch": torch.__version__, "name": NAME,
           "config": {"landmarks": LANDMARKS, "width": WIDTH, "auxiliary": True},
           "grads": GRADS, "params": n_params(model), "counts": counts}
    (out_dir / "pfld.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"pfld reference: wrote {out_dir} ({doc['params']} parameters; counts {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
