#!/usr/bin/env python3
"""Reference values for unidl-vision's HRNet from timm 1.0.31 (torch 2.9.0).

The body is timm's own `HighResolutionNetFeatures` with `feature_location=''`
(what `timm.create_model('hrnet_w32', features_only=True,
feature_location='')` builds) from a reduced architecture dictionary in
timm's format: stem width 16 (the second stem convolution has timm's fixed
64), one bottleneck in stage 1, branch widths 8/16/32/64 with one basic
block each, one module per stage, every branch fused at the end (timm's
`multi_scale_output=True`). The head is the HRNet paper's: a 1x1
convolution with bias from the stride-4 branch to one heatmap per joint (5),
named `final_layer` as in the paper's code. Weights are seeded random
(timm's initialisation, then random BN statistics and affine so that eval
mode is not the identity).

Saved (float32; the state dict under timm's key names plus `final_layer.*`):

  <out>/hrnet_w8.safetensors      the state dict
  <out>/hrnet_w8.io.safetensors   input `x` (2x3x64x64, the detection
        generators' pattern); eval: the stem and the four stage-4 branches
        (`f0`..`f4`) and the heatmaps; train mode (batch statistics, one
        forward): the heatmaps, the loss mean((heatmaps - target)^2) against
        `target` = sin of the flat index, the gradients of a few
        parameters, and two BN running statistics after the step.
  <out>/hrnet.json                config, parameter counts (the reduced
        model; timm's hrnet_w32 body; the paper's pose HRNet-W32 with 17
        joints, whose last module fuses into the stride-4 branch only).

Usage: gen_hrnet.py OUT   (the committed tests/reference/hrnet)
Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python
(timm==1.0.31 installed with --no-deps).
"""
import copy
import json
import os
import sys
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file
from timm.models import hrnet as tm
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from gen_retinanet import n_params, pattern  # noqa: E402

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert timm.__version__ == "1.0.31", timm.__version__

NAME = "hrnet_w8"
JOINTS = 5
W = 8
CFG = dict(
    stem_width=16,
    stage1=dict(num_modules=1, num_branches=1, block_type="BOTTLENECK", num_blocks=(1,),
                num_channels=(64,), fuse_method="SUM"),
    stage2=dict(num_modules=1, num_branches=2, block_type="BASIC", num_blocks=(1, 1),
                num_channels=(W, 2 * W), fuse_method="SUM"),
    stage3=dict(num_modules=1, num_branches=3, block_type="BASIC", num_blocks=(1, 1, 1),
                num_channels=(W, 2 * W, 4 * W), fuse_method="SUM"),
    stage4=dict(num_modules=1, num_branches=4, block_type="BASIC", num_blocks=(1, 1, 1, 1),
                num_channels=(W, 2 * W, 4 * W, 8 * W), fuse_method="SUM"),
)
SHAPE = [2, 3, 64, 64]
GRADS = [
    "final_layer.weight",
    "final_layer.bias",
    "stage4.0.fuse_layers.0.3.0.weight",
    "stage4.0.fuse_layers.0.1.0.weight",
    "stage4.0.branches.3.0.conv1.weight",
    "stage4.0.branches.2.0.conv2.weight",
    "transition3.3.0.0.weight",
    "layer1.0.downsample.0.weight",
    "conv1.weight",
    "bn2.weight",
]
STATS = ["bn1.running_mean", "stage4.0.fuse_layers.1.0.0.1.running_var"]


class PoseHrNet(nn.Module):
    def __init__(self, cfg, joints):
        super().__init__()
        self.body = tm.HighResolutionNetFeatures(cfg, feature_location="")
        width = cfg["stage2"]["num_channels"][0]
        self.final_layer = nn.Conv2d(width, joints, 1)

    def forward(self, x):
        feats = self.body(x)
        return feats, self.final_layer(feats[1])


def randomize(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))


def state_dict(model: PoseHrNet) -> dict:
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        sd[k.removeprefix("body.")] = v.detach().contiguous()
    return sd


def pose_w32_count(joints: int) -> int:
    """The paper's pose HRNet-W32: timm's body with the last module of stage 4
    fusing into the stride-4 branch only, plus the 1x1 head."""
    body = tm.HighResolutionNetFeatures(tm.cfg_cls["hrnet_w32"], feature_location="")
    last = body.stage4[-1]
    fused_all = n_params(last.fuse_layers)
    highest = n_params(last.fuse_layers[0])
    return n_params(body) - fused_all + highest + 32 * joints + joints


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = PoseHrNet(copy.deepcopy(CFG), JOINTS)
    randomize(model, 7)
    sd = state_dict(model)
    save_file(sd, str(out_dir / f"{NAME}.safetensors"))
    x = pattern(SHAPE)
    io = {"x": x}
    model.eval()
    with torch.no_grad():
        feats, heat = model(x)
    for i, f in enumerate(feats):
        io[f"eval.f{i}"] = f
    io["eval.heatmaps"] = heat
    model.train()
    feats, heat = model(x)
    target = torch.sin(torch.arange(heat.numel(), dtype=torch.float32)).reshape(heat.shape)
    loss = ((heat - target) ** 2).mean()
    loss.backward()
    io["train.heatmaps"] = heat.detach()
    io["train.target"] = target
    io["train.loss"] = loss.detach().reshape(1)
    params = {k.removeprefix("body."): p for k, p in model.named_parameters()}
    for name in GRADS:
        io[f"train.grad.{name}"] = params[name].grad.detach().clone()
    buffers = {k.removeprefix("body."): b for k, b in model.named_buffers()}
    for name in STATS:
        io[f"train.{name}"] = buffers[name].detach().clone()
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{NAME}.io.safetensors"))
    w32 = tm.HighResolutionNetFeatures(tm.cfg_cls["hrnet_w32"], feature_location="")
    doc = {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "name": NAME,
        "config": {"joints": JOINTS, "width": W, "blocks": 1, "modules": [1, 1, 1],
                   "stem_width": 16, "stage1_blocks": 1, "final_fuse": "all"},
        "shape": SHAPE,
        "grads": GRADS,
        "stats": STATS,
        "params": n_params(model),
        "counts": {
            "timm_hrnet_w32_features": n_params(w32),
            "pose_hrnet_w32_17_joints": pose_w32_count(17),
        },
    }
    (out_dir / "hrnet.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"hrnet reference: wrote {out_dir} ({doc['params']} parameters; counts {doc['counts']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
