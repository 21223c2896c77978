#!/usr/bin/env python3
"""Writes `small/resnet50_w4.pth`: the committed reduced ResNet-50 state dict
(`small/resnet50_w4.safetensors`, from gen_torchvision.py) saved the way
torchvision publishes its weights (`torch.save(model.state_dict(), path)`,
zip format, `num_batches_tracked` included). The parity test loads it with
`load_torchvision` and checks the same logits as the safetensors file.

  gen_pth.py            (run from this folder, with torch and safetensors)
"""
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file

here = Path(__file__).parent / "small"
sd = load_file(str(here / "resnet50_w4.safetensors"))
out = OrderedDict((k, sd[k]) for k in sorted(sd))
for k in list(out):
    if k.endswith("running_var"):
        out[k[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
torch.save(out, str(here / "resnet50_w4.pth"))
print(f"wrote {here / 'resnet50_w4.pth'}: {len(out)} tensors")
