#!/usr/bin/env python3
"""Reference values for unidl-audio's Conformer from torchaudio 2.9.0
(torch 2.9.0), seeded random weights (batch-norm running statistics
randomised), padded batches with per-sample lengths:

  blocks        torchaudio.models.Conformer(input_dim=16, num_heads=2,
                ffn_dim=24, num_layers=2, depthwise_conv_kernel_size=5),
                eval mode: outputs and output lengths
  blocks_gn     the same with use_group_norm=True, convolution_first=True
  ctc           unidl's full model written out here in PyTorch: the paper's
                convolutional 4x subsampling front end (two 3x3 stride-2
                Conv2d + ReLU over [time, features], Linear(d*F', d)), the
                torchaudio blocks, a Linear CTC head; one train-mode step
                (dropout 0) with torch.nn.functional.ctc_loss (blank 0,
                reduction "mean"): log-probs, loss and every gradient

  <name>.safetensors      state dict (torch keys; "ctc": frontend.*, blocks.*, head.*)
  <name>.io.safetensors   inputs, lengths, outputs (and targets, loss, grad.<key>)
  conformer.json          configs and Conformer-S's parameter count

Usage: gen_conformer.py OUT (committed as tests/reference/conformer)
Run it with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import json
import sys
from pathlib import Path

import torch
import torchaudio
from safetensors.torch import save_file
from torch import nn

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchaudio.__version__.split("+")[0] == "2.9.0", torchaudio.__version__
from torchaudio.models import Conformer  # noqa: E402


class Subsampling(nn.Module):
    def __init__(self, input_dim, d):
        super().__init__()
        self.conv1 = nn.Conv2d(1, d, 3, 2)
        self.conv2 = nn.Conv2d(d, d, 3, 2)
        f = ((input_dim - 1) // 2 - 1) // 2
        self.out = nn.Linear(d * f, d)

    def forward(self, x, lengths):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x.unsqueeze(1)))))
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return x, ((lengths - 1) // 2 - 1) // 2


class ConformerCtc(nn.Module):
    def __init__(self, input_dim, d, vocab, **kw):
        super().__init__()
        self.frontend = Subsampling(input_dim, d)
        self.blocks = Conformer(input_dim=d, **kw)
        self.head = nn.Linear(d, vocab)

    def forward(self, x, lengths):
        x, lengths = self.frontend(x, lengths)
        x, lengths = self.blocks(x, lengths)
        return self.head(x).log_softmax(-1), lengths


def randomise(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) * 0.5 + 0.75)
            if isinstance(mod, (nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm)):
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(num_heads=2, ffn_dim=24, num_layers=2, depthwise_conv_kernel_size=5)
    meta = {
        "conformer_s_params": sum(p.numel() for p in Conformer(144, 4, 576, 16, 31).parameters()),
        "models": {},
    }
    for seed, (name, extra) in enumerate(
        [("blocks", {}), ("blocks_gn", {"use_group_norm": True, "convolution_first": True})]
    ):
        torch.manual_seed(seed)
        m = Conformer(input_dim=16, **kw, **extra)
        randomise(m, 10 + seed)
        m.eval()
        x = torch.randn(3, 12, 16)
        lengths = torch.tensor([12, 9, 5])
        with torch.no_grad():
            y, n = m(x, lengths)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(out / f"{name}.safetensors"))
        save_file(
            {"input": x, "lengths": lengths, "output": y.contiguous(), "output_lengths": n.clone()},
            str(out / f"{name}.io.safetensors"),
        )
        meta["models"][name] = {
            "config": {
                "input_dim": 16,
                "d_model": 16,
                "num_heads": 2,
                "ffn_dim": 24,
                "num_layers": 2,
                "depthwise_conv_kernel_size": 5,
                "conv_norm": "group" if extra else "batch",
                "convolution_first": bool(extra),
            }
        }
    # the full CTC model, one train-mode step
    torch.manual_seed(7)
    m = ConformerCtc(20, 16, 6, **kw)
    randomise(m, 17)
    m.train()
    x = torch.randn(2, 40, 20)
    lengths = torch.tensor([40, 31])
    targets = torch.tensor([[1, 2, 2, 5], [3, 4, 0, 0]])
    target_lengths = torch.tensor([4, 2])
    state = {k: v.clone().contiguous() for k, v in m.state_dict().items()}
    lp, n = m(x, lengths)
    loss = nn.functional.ctc_loss(lp.transpose(0, 1), targets, n, target_lengths, blank=0)
    loss.backward()
    io = {
        "input": x,
        "lengths": lengths,
        "targets_flat": targets.flatten().contiguous(),
        "target_lengths": target_lengths,
        "log_probs": lp.detach(),
        "output_lengths": n,
        "loss": loss.detach().reshape(1),
    }
    io.update({f"grad.{k}": p.grad for k, p in m.named_parameters()})
    save_file(state, str(out / "ctc.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / "ctc.io.safetensors"))
    meta["models"]["ctc"] = {
        "config": {
            "input_dim": 20,
            "d_model": 16,
            "num_heads": 2,
            "ffn_dim": 24,
            "num_layers": 2,
            "depthwise_conv_kernel_size": 5,
            "subsampling": True,
            "vocab_size": 6,
        }
    }
    (out / "conformer.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(meta["conformer_s_params"], float(loss))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
