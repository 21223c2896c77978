#!/usr/bin/env python3
"""Reference values for unidl-vision's Mask R-CNN from torchvision 0.24.0 (torch 2.9.0).

The model is torchvision's own `MaskRCNN` built as `maskrcnn_resnet50_fpn`
builds it with a pretrained backbone (the Faster R-CNN of gen_faster_rcnn.py:
ResNet-50 body with `FrozenBatchNorm2d`, FPN, RPN, box branch) plus the mask
branch (`MultiScaleRoIAlign` 14x14 with sampling ratio 2, `MaskRCNNHeads`,
`MaskRCNNPredictor`), through torchvision's public classes, at reduced width
so the weights can be committed: ResNet-50 at base width 4, FPN and RPN of
16 channels, a 32-wide box head, a mask head of four 16-channel
convolutions and a 16-channel predictor, 5 classes (background included),
transform min_size 128 / max_size 160. Weights are randomised as
gen_faster_rcnn.py does (same seed and order), and the samplers take every
candidate, so nothing depends on `torch.randperm`.

Ground-truth masks are the ellipses inscribed in the target boxes of
gen_faster_rcnn.py: pixel (x, y) is inside when
((x + 0.5 - cx) / rx)^2 + ((y + 0.5 - cy) / ry)^2 <= 1 in float64, with
(cx, cy) the box centre and (rx, ry) its half sides; the test draws them the
same way and checks their pixel counts against the JSON.

Saved (all float32; the state dict under torchvision's key names):

  <out>/mask_rcnn_r50_w4.safetensors      the state dict
  <out>/mask_rcnn_r50_w4.io.safetensors   per case (`fixed` 2x3x128x160,
        `resized` 2x3x100x120): train mode, the five losses and gradients of
        their sum for a few parameters (the mask branch's among them); eval
        mode, the detections on the transformed image (boxes, scores,
        labels) and the 28x28 mask probabilities of the first 25
        (torchvision's `maskrcnn_inference`), then the model's own outputs:
        boxes, scores, labels and the masks of the first two pasted into the
        input image.
  <out>/mask_rcnn.json                    config, mask pixel counts,
                                          parameter counts

Usage: gen_mask_rcnn.py OUT   (the committed tests/reference/mask_rcnn)
Run it with the torch venv: ~/.cache/unidl/torch-venv/bin/python.
"""
import json
import os
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import resnet as tv_resnet
from torchvision.models.detection import faster_rcnn as tv_frcnn
from torchvision.models.detection import mask_rcnn as tv_mrcnn
from torchvision.models.detection import maskrcnn_resnet50_fpn
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

sys.path.insert(0, str(Path(__file__).parent))
from gen_faster_rcnn import (  # noqa: E402
    EVERYTHING, GRADS, SHAPES, TARGETS, extractor, randomize)
from gen_retinanet import n_params, pattern, resnet50_frozen  # noqa: E402

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.24.0", torchvision.__version__

NAME = "mask_rcnn_r50_w4"
WIDTH, FPN, REPR, MASK, CLASSES = 4, 16, 32, 16, 5
LOSSES = ["loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"]
MASK_GRADS = [
    "roi_heads.mask_predictor.mask_fcn_logits.weight",
    "roi_heads.mask_predictor.conv5_mask.weight",
    "roi_heads.mask_head.0.0.weight",
    "roi_heads.mask_head.3.0.bias",
]
PASTED = 2
PROBS = 25


def build() -> nn.Module:
    backbone = extractor(resnet50_frozen(WIDTH), 3, FPN)
    box_head = tv_frcnn.TwoMLPHead(FPN * 7 * 7, REPR)
    box_predictor = tv_frcnn.FastRCNNPredictor(REPR, CLASSES)
    mask_roi_pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2)
    mask_head = tv_mrcnn.MaskRCNNHeads(FPN, [MASK] * 4, 1)
    mask_predictor = tv_mrcnn.MaskRCNNPredictor(MASK, MASK, CLASSES)
    return tv_mrcnn.MaskRCNN(backbone, None, min_size=128, max_size=160,
                             box_head=box_head, box_predictor=box_predictor,
                             rpn_batch_size_per_image=EVERYTHING,
                             box_batch_size_per_image=EVERYTHING,
                             mask_roi_pool=mask_roi_pool, mask_head=mask_head,
                             mask_predictor=mask_predictor)


def ellipse(box, h: int, w: int) -> torch.Tensor:
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    ys = torch.arange(h, dtype=torch.float64)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float64)[None, :] + 0.5
    return (((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0).to(torch.uint8)


def targets_of(case: str):
    _, _, h, w = SHAPES[case]
    out = []
    for t in TARGETS[case]:
        masks = [ellipse(b, h, w) for b in t["boxes"]]
        out.append({
            "boxes": torch.tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(t["labels"], dtype=torch.int64),
            "masks": torch.stack(masks) if masks else torch.zeros((0, h, w), dtype=torch.uint8),
        })
    return out


def run_case(model: nn.Module, case: str, out: dict, meta: dict) -> None:
    x = pattern(SHAPES[case])
    images = list(x)
    targets = targets_of(case)
    meta[case] = {"mask_pixels": [[int(m.sum()) for m in t["masks"]] for t in targets]}
    model.train()
    model.zero_grad()
    losses = model(images, [dict(t) for t in targets])
    assert list(losses) == LOSSES, list(losses)
    sum(losses[k] for k in LOSSES).backward()
    params = dict(model.named_parameters())
    for name in GRADS + MASK_GRADS:
        out[f"{case}.grad.{name}"] = params[name].grad.detach().clone()
    for k in LOSSES:
        out[f"{case}.loss.{k}"] = losses[k].detach().reshape(1)
    model.eval()
    with torch.no_grad():
        il, _ = model.transform(images)
        feats = model.backbone(il.tensors)
        proposals, _ = model.rpn(il, feats)
        result, _ = model.roi_heads(feats, proposals, il.image_sizes)
        for i, r in enumerate(result):
            out[f"{case}.inner{i}.boxes"] = r["boxes"]
            out[f"{case}.inner{i}.scores"] = r["scores"]
            out[f"{case}.inner{i}.labels"] = r["labels"].to(torch.float32)
            out[f"{case}.inner{i}.mask_probs"] = r["masks"][:PROBS, 0]
        dets = model(images)
    for i, d in enumerate(dets):
        out[f"{case}.det{i}.boxes"] = d["boxes"]
        out[f"{case}.det{i}.scores"] = d["scores"]
        out[f"{case}.det{i}.labels"] = d["labels"].to(torch.float32)
        out[f"{case}.det{i}.masks"] = d["masks"][:PASTED, 0]
        print(f"{case}: image {i}: {len(d['scores'])} detections", flush=True)


def param_counts() -> dict:
    # maskrcnn_resnet50_fpn as built with a pretrained backbone
    # (FrozenBatchNorm2d, trainable_layers 3): what the published 44,401,393 counts
    body = tv_resnet.resnet50(norm_layer=FrozenBatchNorm2d)
    frozen = tv_mrcnn.MaskRCNN(extractor(body, 3, 256), 91)
    plain = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    return {
        "maskrcnn_resnet50_fpn_frozen_bn": n_params(frozen),
        "maskrcnn_resnet50_fpn_frozen_bn_trainable": n_params(frozen, True),
        "maskrcnn_resnet50_fpn_batch_norm": n_params(plain),
        "published_num_params": tv_mrcnn.MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["num_params"],
    }


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = randomize(build(), 314)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out_dir / f"{NAME}.safetensors"))
    io, meta = {}, {}
    for case in ["fixed", "resized"]:
        run_case(model, case, io, meta)
    save_file({k: v.contiguous() for k, v in io.items()}, str(out_dir / f"{NAME}.io.safetensors"))
    doc = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "name": NAME,
        "config": {
            "num_classes": CLASSES,
            "fpn_channels": FPN,
            "representation_size": REPR,
            "backbone": {"depth": 50, "width": WIDTH, "trainable_layers": 3},
            "transform": {"min_size": 128, "max_size": 160},
            "rpn": {"batch_size_per_image": EVERYTHING},
            "roi_heads": {"batch_size_per_image": EVERYTHING},
            "mask_head": {"layers": [MASK] * 4, "predictor_channels": MASK},
        },
        "params": n_params(model),
        "trainable_params": n_params(model, True),
        "shapes": SHAPES,
        "targets": TARGETS,
        "cases": meta,
        "grads": GRADS + MASK_GRADS,
        "losses": LOSSES,
        "pasted": PASTED,
        "probs": PROBS,
        "counts": param_counts(),
    }
    (out_dir / "mask_rcnn.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"mask r-cnn reference: wrote {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
