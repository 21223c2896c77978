#!/usr/bin/env python3
"""Reference values for `tasks::families::segmentation_losses_match_torch`.

torch 2.9.0: `torch.nn.functional.cross_entropy(logits, targets,
weight=w, ignore_index=255)` (the weighted mean Σ w_y·(−log p_y) / Σ w_y)
and the soft Dice loss as unidl defines it (written out here in torch:
per label k over the pixels whose target is not 255,
D_k = (2·Σ p_k·y_k + 1) / (Σ p_k + Σ y_k + 1), loss 1 − mean_k D_k), with
their gradients with respect to the logits, on seeded logits [2, 4, 3, 5]
and targets holding every label, one label absent from one image and
ignored pixels. Writes `segmentation_losses.json` beside this script.

Run it with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import json
import os

import torch

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
HERE = os.path.dirname(os.path.abspath(__file__))


def dice(logits, targets, ignore=255):
    k = logits.shape[1]
    valid = (targets != ignore).unsqueeze(1).float()
    safe = torch.where(targets == ignore, torch.zeros_like(targets), targets)
    onehot = torch.nn.functional.one_hot(safe, k).permute(0, 3, 1, 2).float() * valid
    p = logits.softmax(1) * valid
    inter = (p * onehot).sum((0, 2, 3))
    card = p.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (card + 1)).mean()


def main():
    g = torch.Generator().manual_seed(17)
    logits = (torch.randn(2, 4, 3, 5, generator=g) * 2).requires_grad_()
    targets = torch.randint(0, 4, (2, 3, 5), generator=g)
    targets[0, 0, :2] = 255
    targets[1, 2, 4] = 255
    targets[1][targets[1] == 3] = 1  # label 3 absent from the second image
    weights = torch.tensor([0.2, 1.0, 2.5, 4.0])
    out = {
        "logits": logits.detach().flatten().tolist(),
        "targets": targets.flatten().tolist(),
        "weights": weights.tolist(),
    }
    ce = torch.nn.functional.cross_entropy(logits, targets, weight=weights, ignore_index=255)
    (grad,) = torch.autograd.grad(ce, logits)
    out["weighted_ce"], out["weighted_ce_grad"] = ce.item(), grad.flatten().tolist()
    d = dice(logits, targets)
    (grad,) = torch.autograd.grad(d, logits)
    out["dice"], out["dice_grad"] = d.item(), grad.flatten().tolist()
    with open(os.path.join(HERE, "segmentation_losses.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(out["weighted_ce"], out["dice"])


if __name__ == "__main__":
    main()
