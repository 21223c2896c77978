#!/usr/bin/env python3
"""Reference values for unidl-vision's Faster R-CNN from torchvision 0.24.0 (torch 2.9.0).

The model is torchvision's own `FasterRCNN` built as `fasterrcnn_resnet50_fpn`
builds it with a pretrained backbone (a ResNet-50 body with
`FrozenBatchNorm2d`, `_resnet_fpn_extractor(trainable_layers=3)` — all four
stages returned, `LastLevelMaxPool` — the default anchor generator, RPN,
MultiScaleRoIAlign, TwoMLPHead and FastRCNNPredictor), through
torchvision's public classes, at reduced width so the weights can be
committed: ResNet-50 at base width 4, an FPN and RPN of 16 channels, a
32-wide box head, 5 classes (background included), transform min_size 128
/ max_size 160. Weights are seeded random with randomised frozen-BN
statistics and a larger spread in the RPN and box predictor (class biases
σ 2), so that the
objectness values are well apart (the per-level top-k and NMS decide the
same way whatever the rounding) and many class scores pass 0.05.

Both fg/bg samplers get a batch of 10^6 so that they take every candidate:
torchvision draws them with `torch.randperm`, and with every candidate
taken the losses (sums and means) do not depend on the draw.

Saved (all float32; the state dict under torchvision's key names):

  <out>/<name>.safetensors      the state dict
  <out>/<name>.io.safetensors   per case `fixed` (2x3x128x160) and `resized`
        (2x3x100x120, resized to 128x153 and padded to 128x160): the FPN
        levels (f0..f3, pool), RPN objectness [B, N] and deltas [B, N, 4] in
        torchvision's concatenated order, anchors [N, 4]; train mode: the
        RPN's proposals per image, the four losses for the targets below and
        gradients of their sum for a few parameters; eval mode: the
        proposals, the box head's class logits and box regression, the
        detections (boxes, scores, labels).
  <out>/faster_rcnn.json        configs, targets, parameter counts

Images are the pattern of gen_retinanet.py: value i of the flattened batch
is ((i * 7919) % 2003) / 2003.

With --full, the standard model (ResNet-50 at width 64, 256-channel FPN,
1024-wide box head, 91 classes; transform min_size 128 / max_size 160 so the
CPU test stays short), case `fixed` only, named faster_rcnn_r50_full (about
170 MB: generated into a cache, never committed).

Usage:
  gen_faster_rcnn.py OUT           (the committed tests/reference/faster_rcnn)
  gen_faster_rcnn.py --full [OUT]  OUT defaults to $UNIDL_FASTER_RCNN_REF or
                                   ~/.cache/unidl/zoo-ref/faster-rcnn-<key>

Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python.
"""
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import resnet as tv_resnet
from torchvision.models.detection import faster_rcnn as tv_frcnn
from torchvision.models.detection import fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

sys.path.insert(0, str(Path(__file__).parent))
from gen_retinanet import n_params, pattern, resnet50_frozen  # noqa: E402

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.24.0", torchvision.__version__

NAME = "faster_rcnn_r50_w4"
WIDTH, FPN, REPR, CLASSES = 4, 16, 32, 5
EVERYTHING = 10**6


def extractor(body: nn.Module, trainable_layers: int, out_channels: int) -> nn.Module:
    """torchvision's `_resnet_fpn_extractor` with its defaults (all four stages,
    LastLevelMaxPool) and the FPN width as a parameter."""
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers_to_train.append("bn1")
    for name, p in body.named_parameters():
        if all(not name.startswith(layer) for layer in layers_to_train):
            p.requires_grad_(False)
    returned = [1, 2, 3, 4]
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned)}
    stage2 = body.inplanes // 8
    in_channels_list = [stage2 * 2 ** (i - 1) for i in returned]
    return BackboneWithFPN(body, return_layers, in_channels_list, out_channels,
                           extra_blocks=LastLevelMaxPool())


def build(width: int, fpn: int, rep: int, classes: int, everything: bool) -> nn.Module:
    backbone = extractor(resnet50_frozen(width), 3, fpn)
    box_head = tv_frcnn.TwoMLPHead(fpn * 7 * 7, rep)
    box_predictor = tv_frcnn.FastRCNNPredictor(rep, classes)
    kw = {}
    if everything:
        kw = {"rpn_batch_size_per_image": EVERYTHING, "box_batch_size_per_image": EVERYTHING}
    return tv_frcnn.FasterRCNN(backbone, None, min_size=128, max_size=160,
                               box_head=box_head, box_predictor=box_predictor, **kw)


def randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FrozenBatchNorm2d):
                n = m.weight.numel()
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        for m in model.modules():
            if isinstance(m, tv_resnet.Bottleneck):
                m.bn3.weight.mul_(0.2)
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d) and name.startswith("rpn."):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(1.0 / fan_in))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.Linear) and name.startswith("roi_heads.box_predictor"):
                fan_in = m.weight.shape[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(1.0 / fan_in))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        # box deltas at a tenth of the logits' spread: decoded boxes stay near their proposals
        m = model.roi_heads.box_predictor.bbox_pred
        m.weight.mul_(0.1)
        # class biases spread wide (σ 2) so that, with 91 classes too, the top
        # classes of many proposals score above the 0.05 threshold
        cls = model.roi_heads.box_predictor.cls_score
        cls.bias.copy_(2.0 * torch.randn(cls.bias.shape, generator=g))
    return model


# Targets in input pixels of each case, torchvision labels (0 is background):
# image 0 has three boxes (one so small that only low-quality matching gives
# it anchors), image 1 none in `fixed`, one in `resized`.
TARGETS = {
    "fixed": [
        {"boxes": [[10.0, 12.0, 60.0, 70.0], [70.5, 30.25, 150.0, 120.0], [100.0, 5.0, 108.0, 15.0]],
         "labels": [1, 4, 2]},
        {"boxes": [], "labels": []},
    ],
    "resized": [
        {"boxes": [[8.0, 10.0, 47.0, 55.0], [55.5, 23.25, 118.0, 95.0], [80.0, 4.0, 86.0, 12.0]],
         "labels": [3, 3, 2]},
        {"boxes": [[20.0, 20.0, 60.0, 90.0]], "labels": [1]},
    ],
}
SHAPES = {"fixed": [2, 3, 128, 160], "resized": [2, 3, 100, 120]}
GRADS = [
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_predictor.bbox_pred.weight",
    "roi_heads.box_head.fc6.weight",
    "rpn.head.conv.0.0.weight",
    "rpn.head.cls_logits.weight",
    "rpn.head.bbox_pred.weight",
    "backbone.fpn.layer_blocks.0.0.weight",
    "backbone.body.layer3.0.conv2.weight",
]
LOSSES = ["loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"]


def run_case(model: nn.Module, case: str, out: dict) -> None:
    x = pattern(SHAPES[case])
    images = list(x)
    targets = [{"boxes": torch.tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(t["labels"], dtype=torch.int64)} for t in TARGETS[case]]
    # training, in pieces so the intermediate values can be saved
    model.train()
    model.zero_grad()
    il, tt = model.transform(images, [dict(t) for t in targets])
    feats = model.backbone(il.tensors)
    proposals, rpn_losses = model.rpn(il, feats, tt)
    _, det_losses = model.roi_heads(feats, proposals, il.image_sizes, tt)
    losses = {**det_losses, **rpn_losses}
    sum(losses[k] for k in LOSSES).backward()
    again = model(images, [dict(t) for t in targets])
    for k in LOSSES:
        assert torch.equal(again[k], losses[k]), k
    params = dict(model.named_parameters())
    for name in GRADS:
        out[f"{case}.grad.{name}"] = params[name].grad.detach().clone()
    assert params["backbone.body.layer1.0.conv1.weight"].grad is None
    for k in LOSSES:
        out[f"{case}.loss.{k}"] = losses[k].detach().reshape(1)
    for i, p in enumerate(proposals):
        out[f"{case}.train.proposals{i}"] = p.detach()
    for name, f in feats.items():
        out[f"{case}.f{name}"] = f.detach()
    with torch.no_grad():
        fl = list(feats.values())
        obj, deltas = model.rpn.head(fl)
        anchors = model.rpn.anchor_generator(il, fl)
        obj, deltas = concat_box_prediction_layers(obj, deltas)
    b = len(images)
    out[f"{case}.rpn.objectness"] = obj.reshape(b, -1)
    out[f"{case}.rpn.deltas"] = deltas.reshape(b, -1, 4)
    out[f"{case}.anchors"] = anchors[0]
    out[f"{case}.image_size"] = torch.tensor(il.image_sizes[0], dtype=torch.float32)
    # evaluation: pieces, then the model's own call
    model.eval()
    with torch.no_grad():
        il, _ = model.transform(images)
        feats = model.backbone(il.tensors)
        proposals, _ = model.rpn(il, feats)
        pooled = model.roi_heads.box_roi_pool(feats, proposals, il.image_sizes)
        logits, regression = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
        for i, p in enumerate(proposals):
            out[f"{case}.eval.proposals{i}"] = p
        out[f"{case}.eval.class_logits"] = logits
        out[f"{case}.eval.box_regression"] = regression
        dets = model(images)
    for i, d in enumerate(dets):
        out[f"{case}.det{i}.boxes"] = d["boxes"]
        out[f"{case}.det{i}.scores"] = d["scores"]
        out[f"{case}.det{i}.labels"] = d["labels"].to(torch.float32)
        print(f"{case}: image {i}: {len(proposals[i])} proposals, {len(d['scores'])} detections", flush=True)
    out[f"{case}.input_sum"] = x.sum(dtype=torch.float64).to(torch.float32).reshape(1)


def param_counts() -> dict:
    # fasterrcnn_resnet50_fpn as built with a pretrained backbone
    # (FrozenBatchNorm2d, trainable_layers 3): what the published 41,755,286 counts
    body = tv_resnet.resnet50(norm_layer=FrozenBatchNorm2d)
    frozen = tv_frcnn.FasterRCNN(extractor(body, 3, 256), 91)
    plain = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    return {
        "fasterrcnn_resnet50_fpn_frozen_bn": n_params(frozen),
        "fasterrcnn_resnet50_fpn_frozen_bn_trainable": n_params(frozen, True),
        "fasterrcnn_resnet50_fpn_batch_norm": n_params(plain),
        "published_num_params": tv_frcnn.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["num_params"],
    }


def cache_key() -> str:
    """This script and the one it imports from."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in ("gen_faster_rcnn.py", "gen_retinanet.py"):
        h.update((here / f).read_bytes())
    return h.hexdigest()


def generate(out_dir: Path, name: str, width: int, fpn: int, rep: int, classes: int, cases, seed: int) -> None:
    model = randomize(build(width, fpn, rep, classes, True), seed)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out_dir / f"{name}.safetensors"))
    io = {}
    for case in cases:
        run_case(model, case, io)
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{name}.io.safetensors"))
    meta = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cache_key": cache_key(),
        "name": name,
        "cases": list(cases),
        "config": {
            "num_classes": classes,
            "fpn_channels": fpn,
            "representation_size": rep,
            "backbone": {"depth": 50, "width": width, "trainable_layers": 3},
            "transform": {"min_size": 128, "max_size": 160},
            "rpn": {"batch_size_per_image": EVERYTHING},
            "roi_heads": {"batch_size_per_image": EVERYTHING},
        },
        "params": n_params(model),
        "trainable_params": n_params(model, True),
        "shapes": SHAPES,
        "targets": TARGETS,
        "grads": GRADS,
        "counts": param_counts(),
    }
    (out_dir / "faster_rcnn.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"faster r-cnn reference: wrote {out_dir}")


def main():
    args = sys.argv[1:]
    full = "--full" in args
    args = [a for a in args if a != "--full"]
    if len(args) > 1 or (not full and len(args) != 1):
        print(__doc__)
        return 2
    if args:
        out_dir = Path(args[0])
    elif os.environ.get("UNIDL_FASTER_RCNN_REF"):
        out_dir = Path(os.environ["UNIDL_FASTER_RCNN_REF"])
    else:
        out_dir = Path.home() / ".cache/unidl/zoo-ref" / f"faster-rcnn-{cache_key()}"
    if full and (out_dir / "faster_rcnn.json").exists():
        print(f"faster r-cnn reference: {out_dir} is complete")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if full:
        generate(out_dir, "faster_rcnn_r50_full", 64, 256, 1024, 91, ["fixed"], 2718)
    else:
        generate(out_dir, NAME, WIDTH, FPN, REPR, CLASSES, ["fixed", "resized"], 314)
    return 0


if __name__ == "__main__":
    sys.exit(main())
