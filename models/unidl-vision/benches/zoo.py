#!/usr/bin/env python3
"""PyTorch eager baseline for `cargo xtask bench zoo` (benches/zoo.rs).

  zoo.py train X.f32 Y.i64 STEPS WARMUP   ResNet-18 (small-image stem, 10
                                           classes) Adam step, batch 32x3x32x32
  zoo.py infer X.f32 STEPS WARMUP         torchvision resnet50 eval forward,
                                           batch 8x3x224x224
  zoo.py frcnn X.f32 STEPS WARMUP         torchvision fasterrcnn_resnet50_fpn
                                           eval call, one 3x480x640 image
  zoo.py yolo X.f32 BOXES.f32 STEPS WARMUP  ultralytics YOLOv8n (80 classes)
                                           train step with v8DetectionLoss and
                                           Adam, batch 8x3x320x320; BOXES rows
                                           are x0 y0 x1 y1 class in pixels, 3
                                           per image (ultralytics is AGPL: it
                                           runs here as a baseline only)

Reads the inputs the Rust bench wrote, prints JSON {ms_per_step, torch, threads}.
"""
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet

torch.set_num_threads(max(1, torch.get_num_threads()))


def timed(step, steps, warmup):
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) * 1000.0 / steps


def main():
    mode = sys.argv[1]
    torch.manual_seed(0)
    if mode == "train":
        x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(32, 3, 32, 32))
        y = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.int64))
        steps, warmup = int(sys.argv[4]), int(sys.argv[5])
        m = resnet.resnet18(num_classes=10)
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(m(x), y)
            loss.backward()
            opt.step()
            loss.item()
    elif mode == "frcnn":
        from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
        from torchvision.models.detection.faster_rcnn import FasterRCNN
        from torchvision.ops.misc import FrozenBatchNorm2d

        x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(3, 480, 640))
        steps, warmup = int(sys.argv[3]), int(sys.argv[4])
        # fasterrcnn_resnet50_fpn as built with a pretrained backbone (frozen
        # norms, trainable_layers 3): unidl's default config
        body = resnet.resnet50(norm_layer=FrozenBatchNorm2d)
        m = FasterRCNN(_resnet_fpn_extractor(body, 3), num_classes=91).eval()

        def step():
            with torch.no_grad():
                m([x])
    elif mode == "yolo":
        os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks or downloads
        from ultralytics.cfg import get_cfg
        from ultralytics.nn.tasks import DetectionModel
        from ultralytics.utils.loss import v8DetectionLoss

        x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(8, 3, 320, 320))
        rows = np.fromfile(sys.argv[3], dtype=np.float32).reshape(-1, 5)
        steps, warmup = int(sys.argv[4]), int(sys.argv[5])
        idx = torch.arange(8).repeat_interleave(3).float()
        xyxy = torch.from_numpy(rows[:, :4]) / 320.0
        xywh = torch.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                            xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], 1)
        batch = {"batch_idx": idx, "cls": torch.from_numpy(rows[:, 4:5]), "bboxes": xywh}
        m = DetectionModel("yolov8n.yaml", nc=80, verbose=False)
        m.args = get_cfg()
        crit = v8DetectionLoss(m)
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss, _ = crit(m(x), batch)
            loss.sum().backward()
            opt.step()
            loss.sum().item()
    else:
        x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(8, 3, 224, 224))
        steps, warmup = int(sys.argv[3]), int(sys.argv[4])
        m = resnet.resnet50().eval()

        def step():
            with torch.no_grad():
                m(x).sum().item()

    ms = timed(step, steps, warmup)
    print(json.dumps({"ms_per_step": ms, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
