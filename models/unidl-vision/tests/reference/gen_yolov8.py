#!/usr/bin/env python3
"""Reference values for unidl-vision's YOLOv8 from ultralytics 8.4.190 (torch 2.9.0).

ultralytics is AGPL-3.0: this script only runs it to produce numbers; none
of its code enters the repository. The model is ultralytics' own
`DetectionModel` built from its `yolov8.yaml`: the committed reduced model
uses a custom scale (depth 0.33, width 0.0625, max channels 1024) and 5
classes; with --full, scale `n` and 80 classes (YOLOv8n, 3,157,200
parameters; generated into a cache, never committed).

Weights are seeded random with randomised batch-norm statistics; class
biases are set near logit −1 so that sigmoid scores straddle the 0.25
threshold, and the distance-bin biases favour the first bins so that boxes
are about a cell per side and NMS decisions are far from its threshold.

Saved (float32, state dict under ultralytics' key names `model.{i}.…`):

  <out>/<name>.safetensors      the state dict
  <out>/<name>.io.safetensors   for a 2x3x128x160 batch: the three maps the
        head reads (p3, p4, p5), eval-mode raw outputs `boxes` [B, 64, A]
        and `scores` [B, nc, A], the decoded output `y` [B, 4 + nc, A]
        (xywh in pixels, sigmoid scores), NMS results per image
        (conf 0.25, IoU 0.7, best class, 300 max: `det{i}` [n, 6] xyxy,
        conf, class); train mode: the three loss terms (box, cls, dfl;
        gains 7.5, 0.5, 1.5, not multiplied by the batch size) for the
        targets below and gradients of their sum for a few parameters.
  <out>/yolov8.json             configs, targets, parameter counts

Usage:
  gen_yolov8.py OUT           (the committed tests/reference/yolov8)
  gen_yolov8.py --full [OUT]  OUT defaults to $UNIDL_YOLOV8_REF or
                              ~/.cache/unidl/zoo-ref/yolov8-<key>
"""
import copy
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import torch
import ultralytics
import yaml
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from gen_retinanet import n_params, pattern  # noqa: E402

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert ultralytics.__version__ == "8.4.190", ultralytics.__version__

from ultralytics.cfg import get_cfg  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402
from ultralytics.utils.loss import v8DetectionLoss  # noqa: E402
from ultralytics.utils.nms import non_max_suppression  # noqa: E402

NAME = "yolov8_t"
SHAPE = [2, 3, 128, 160]
# targets in pixels of the 128x160 input, classes 0-based
TARGETS = [
    {"boxes": [[10.0, 12.0, 60.0, 70.0], [70.5, 30.25, 150.0, 120.0], [100.0, 5.0, 106.0, 11.0]], "labels": [1, 4, 2]},
    {"boxes": [[20.0, 40.0, 52.0, 100.0]], "labels": [0]},
]
GRADS = [
    "model.22.cv2.0.2.weight",
    "model.22.cv3.1.2.weight",
    "model.22.cv2.2.0.conv.weight",
    "model.22.cv3.0.1.bn.weight",
    "model.21.cv2.conv.weight",
    "model.9.cv1.conv.weight",
    "model.4.m.0.cv1.conv.weight",
    "model.0.conv.weight",
]
LOSSES = ["box", "cls", "dfl"]


def build(full: bool, nc: int) -> nn.Module:
    cfg_path = Path(ultralytics.__file__).parent / "cfg/models/v8/yolov8.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["nc"] = nc
    if full:
        cfg["scale"] = "n"
    else:
        cfg["scales"] = {"t": [0.33, 0.0625, 1024]}
        cfg["scale"] = "t"
    return DetectionModel(copy.deepcopy(cfg), verbose=False)


def randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.weight.numel()
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        det = model.model[-1]
        # distance bins favour the first ones (expected side ≈ 1 cell), so the
        # boxes are small and apart: NMS on hundreds of huge overlapping
        # random boxes is chaotic (a 1e-7 relative change flips 40 % of them)
        r = det.reg_max
        for seq in det.cv2:
            k = torch.arange(r, dtype=torch.float32).repeat(4)
            seq[-1].bias.copy_(2.0 - 1.2 * k + 0.3 * torch.randn(4 * r, generator=g))
        for seq in det.cv3:
            seq[-1].bias.copy_(-1.0 + 0.5 * torch.randn(seq[-1].bias.shape, generator=g))
    return model


def to_batch(h: int, w: int) -> dict:
    idx, cls, xywh = [], [], []
    for i, t in enumerate(TARGETS):
        for (x0, y0, x1, y1), c in zip(t["boxes"], t["labels"]):
            idx.append(float(i))
            cls.append(float(c))
            xywh.append([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h])
    return {"batch_idx": torch.tensor(idx), "cls": torch.tensor(cls).view(-1, 1), "bboxes": torch.tensor(xywh)}


def run(model: nn.Module, out: dict) -> None:
    x = pattern(SHAPE)
    feats = {}
    det = model.model[-1]
    hook = det.register_forward_pre_hook(lambda m, a: feats.update({"p": [t.detach().clone() for t in a[0]]}))
    model.eval()
    with torch.no_grad():
        y, preds = model(x)
    hook.remove()
    for i, f in enumerate(feats["p"]):
        out[f"p{i + 3}"] = f
    out["boxes"] = preds["boxes"]
    out["scores"] = preds["scores"]
    out["y"] = y
    dets = non_max_suppression(y, conf_thres=0.25, iou_thres=0.7, max_det=300)
    for i, d in enumerate(dets):
        out[f"det{i}"] = d
        print(f"image {i}: {len(d)} detections", flush=True)
    # training: BN on batch statistics, the loss of ultralytics' trainer
    model.args = get_cfg()
    crit = v8DetectionLoss(model)
    model.train()
    model.zero_grad()
    preds = model(x)
    loss, items = crit(preds, to_batch(SHAPE[2], SHAPE[3]))
    (loss.sum() / SHAPE[0]).backward()
    for k, v in zip(LOSSES, items.values()):
        out[f"loss.{k}"] = v.reshape(1)
        print(f"loss {k}: {v.item():.6f}")
    params = dict(model.named_parameters())
    for name in GRADS:
        out[f"grad.{name}"] = params[name].grad.detach().clone()
    out["input_sum"] = x.sum(dtype=torch.float64).to(torch.float32).reshape(1)


def cache_key() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in ("gen_yolov8.py", "gen_retinanet.py"):
        h.update((here / f).read_bytes())
    return h.hexdigest()


def generate(out_dir: Path, name: str, full: bool, nc: int, seed: int) -> None:
    torch.manual_seed(0)
    model = randomize(build(full, nc), seed)
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    save_file(sd, str(out_dir / f"{name}.safetensors"))
    io = {}
    run(model, io)
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{name}.io.safetensors"))
    n = build(True, 80)
    meta = {
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "cache_key": cache_key(),
        "name": name,
        "config": {"num_classes": nc, "scale": "n" if full else [0.33, 0.0625, 1024]},
        "shape": SHAPE,
        "targets": TARGETS,
        "grads": GRADS,
        "params": n_params(model),
        "trainable_params": n_params(model, True),
        "counts": {"yolov8n": n_params(n), "yolov8n_trainable": n_params(n, True)},
    }
    (out_dir / "yolov8.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"yolov8 reference: wrote {out_dir}")


def main():
    args = sys.argv[1:]
    full = "--full" in args
    args = [a for a in args if a != "--full"]
    if len(args) > 1 or (not full and len(args) != 1):
        print(__doc__)
        return 2
    if args:
        out_dir = Path(args[0])
    elif os.environ.get("UNIDL_YOLOV8_REF"):
        out_dir = Path(os.environ["UNIDL_YOLOV8_REF"])
    else:
        out_dir = Path.home() / ".cache/unidl/zoo-ref" / f"yolov8-{cache_key()}"
    if full and (out_dir / "yolov8.json").exists():
        print(f"yolov8 reference: {out_dir} is complete")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if full:
        generate(out_dir, "yolov8n_full", True, 80, 2718)
    else:
        generate(out_dir, NAME, False, 5, 314)
    return 0


if __name__ == "__main__":
    sys.exit(main())
