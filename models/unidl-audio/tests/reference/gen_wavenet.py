#!/usr/bin/env python3
"""Reference values for unidl-audio's WaveNet from r9y9's wavenet_vocoder
0.1.1 (PyPI `wavenet-vocoder==0.1.1`, installed with `pip install --no-deps`;
only numpy and torch are imported) on torch 2.9.0, seeded random weights
(every weight, bias and weight-norm gain perturbed so that none is left at
its constant initial value):

  lcgc      WaveNet(out_channels=256, layers=6, stacks=2, residual 16, gate 32,
            skip 24, kernel 3, cin 8 with transposed-convolution upsampling
            [2, 3] (hop 6, frequency kernel 3), gin 6 over 3 speakers,
            legacy skip scaling), weight-normalised as the package builds
            it; eval mode: logits for mu-law class inputs
  k2        kernel 2, 4 layers, 1 stack, legacy=False, local conditioning
            already at the sample rate (no upsampling), no global
            conditioning; weight-normalised; eval mode
  train     the lcgc model with dropout 0 after `make_generation_fast_()`
            (weight norm removed: plain weights, as unidl's layers); one
            train-mode step of torch.nn.functional.cross_entropy between
            the logits at t and the class at t + 1: logits, loss and every
            gradient (zeros for the last layer's residual 1x1 convolution,
            whose output feeds nothing)
  mu_law    torchaudio.functional.mu_law_encoding/decoding (256 channels)
  mol       WaveNet(out_channels=30 (10 logistics), 6 layers, 2 stacks, residual
            16, gate 32, skip 24, kernel 3, cin 8 upsampled by [2, 3],
            scalar_input=True), dropout 0, after `make_generation_fast_()`;
            one train-mode step over scalar inputs (levels of a 65536-level
            linear quantisation, x = 2 level / 65535 - 1, the extreme levels
            0 and 65535 and levels near the centre included):
            discretized_mix_logistic_loss(y_hat[:, :, :-1], y[:, 1:],
            num_classes=65536, log_scale_min=-7, reduce=False) per step
            ("step_loss") and averaged ("loss", the package sums; its
            training script averages over the mask), every gradient
  mixture   discretized_mix_logistic_loss alone on random y_hat [2, 12, 9]
            (log scales in [-9, 1], some below log_scale_min) and y with the
            edge values -1, 1, +-0.9995: per-step losses and the gradient of
            their mean w.r.t. y_hat, for num_classes 65536 and 256
            ("<key>.65536", "<key>.256")

  <name>.safetensors      state dict (wavenet_vocoder's keys; weight_g/weight_v
                          for the weight-normalised models)
  <name>.io.safetensors   inputs (classes, c, g), outputs (and loss, grad.<key>)
  wavenet.json            configs (unidl's keys) and the parameter counts of
                          WaveNet()'s defaults and of the mel-vocoder setting
                          (24 layers, 4 stacks, 512/512/256, 80 mels upsampled
                          by [4, 4, 4, 4]), each with weight norm (the package's
                          count) and after make_generation_fast_() (plain
                          weights, unidl's count)

Usage: gen_wavenet.py OUT (committed as tests/reference/wavenet)
Run it with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import json
import sys
import warnings
from pathlib import Path

import torch
import torchaudio
from safetensors.torch import save_file

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
warnings.filterwarnings("ignore")  # weight_norm / backward-hook deprecations
import wavenet_vocoder  # noqa: E402
from wavenet_vocoder import WaveNet  # noqa: E402
from wavenet_vocoder.mixture import discretized_mix_logistic_loss  # noqa: E402

assert wavenet_vocoder.__version__.split("+")[0] == "0.1.1", wavenet_vocoder.__version__

LCGC = dict(
    out_channels=256, layers=6, stacks=2, residual_channels=16, gate_channels=32,
    skip_out_channels=24, kernel_size=3, cin_channels=8, gin_channels=6, n_speakers=3,
    upsample_conditional_features=True, upsample_scales=[2, 3], freq_axis_kernel_size=3,
)
K2 = dict(
    out_channels=256, layers=4, stacks=1, residual_channels=8, gate_channels=12,
    skip_out_channels=10, kernel_size=2, cin_channels=5, legacy=False,
)
MEL_VOCODER = dict(
    out_channels=256, layers=24, stacks=4, residual_channels=512, gate_channels=512,
    skip_out_channels=256, kernel_size=3, cin_channels=80,
    upsample_conditional_features=True, upsample_scales=[4, 4, 4, 4], freq_axis_kernel_size=3,
)
MOL = dict(
    out_channels=30, layers=6, stacks=2, residual_channels=16, gate_channels=32,
    skip_out_channels=24, kernel_size=3, cin_channels=8,
    upsample_conditional_features=True, upsample_scales=[2, 3], freq_axis_kernel_size=3,
    scalar_input=True,
)
MOL_CLASSES = 65536


def unidl_config(kw, dropout=0.0):
    """The same model in unidl's WaveNetConfig keys."""
    c = {
        "out_channels": kw["out_channels"],
        "layers": kw["layers"],
        "stacks": kw["stacks"],
        "residual_channels": kw["residual_channels"],
        "gate_channels": kw["gate_channels"],
        "skip_out_channels": kw["skip_out_channels"],
        "kernel_size": kw["kernel_size"],
        "dropout": dropout,
        "legacy": kw.get("legacy", True),
    }
    if kw.get("cin_channels", -1) > 0:
        c["cin_channels"] = kw["cin_channels"]
    if kw.get("gin_channels", -1) > 0:
        c["gin_channels"] = kw["gin_channels"]
        c["n_speakers"] = kw["n_speakers"]
    if kw.get("upsample_conditional_features"):
        c["upsample_scales"] = kw["upsample_scales"]
        c["freq_axis_kernel_size"] = kw["freq_axis_kernel_size"]
    if kw.get("scalar_input"):
        c["output"] = {"type": "mixture_of_logistics", "num_classes": MOL_CLASSES, "log_scale_min": -7.0}
    return c


def count(m):
    return sum(p.numel() for p in m.parameters())


def perturb(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("bias"):
                p.copy_(0.1 * noise)
            elif name.endswith("weight_g"):
                p.mul_(1.0 + 0.2 * noise)
            else:
                p.add_(0.3 * p.std().nan_to_num(0.1).clamp(min=0.05) * noise)


def one_hot(classes, q):
    return torch.nn.functional.one_hot(classes, q).transpose(1, 2).float()


def eval_reference(out, name, kw, seed, b, frames, speakers):
    torch.manual_seed(seed)
    m = WaveNet(dropout=0.05, **kw)
    perturb(m, 100 + seed)
    m.eval()
    hop = 1
    for s in kw.get("upsample_scales", []) if kw.get("upsample_conditional_features") else []:
        hop *= s
    t = frames * hop
    classes = torch.randint(0, kw["out_channels"], (b, t))
    c = torch.rand(b, kw["cin_channels"], frames)
    g = torch.tensor(speakers) if speakers else None
    with torch.no_grad():
        y = m(one_hot(classes, kw["out_channels"]), c=c, g=None if g is None else g.view(b, 1))
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(out / f"{name}.safetensors"))
    io = {"classes": classes, "c": c, "output": y.contiguous()}
    if g is not None:
        io["g"] = g
    save_file(io, str(out / f"{name}.io.safetensors"))
    return {"config": unidl_config(kw)}


def train_reference(out, kw, seed):
    torch.manual_seed(seed)
    m = WaveNet(dropout=0.0, **kw)
    perturb(m, 200 + seed)
    m.make_generation_fast_()
    m.train()
    b, frames = 2, 6
    t = frames * 6
    classes = torch.randint(0, kw["out_channels"], (b, t))
    c = torch.rand(b, kw["cin_channels"], frames)
    g = torch.tensor([2, 0])
    state = {k: v.clone().contiguous() for k, v in m.state_dict().items()}
    y = m(one_hot(classes, kw["out_channels"]), c=c, g=g.view(b, 1))
    loss = torch.nn.functional.cross_entropy(y[:, :, :-1], classes[:, 1:])
    loss.backward()
    io = {"classes": classes, "c": c, "g": g, "output": y.detach(), "loss": loss.detach().reshape(1)}
    # the last layer's residual output feeds nothing: no gradient, saved as zeros
    io.update(
        {f"grad.{k}": torch.zeros_like(p) if p.grad is None else p.grad for k, p in m.named_parameters()}
    )
    save_file(state, str(out / "train.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / "train.io.safetensors"))
    return {"config": unidl_config(kw)}, float(loss)


def levels_to_x(levels, n):
    """Level q of an n-level linear quantisation -> 2 q / (n - 1) - 1, in f32."""
    return levels.to(torch.float32) * torch.tensor(2.0 / (n - 1), dtype=torch.float32) - 1.0


def mol_reference(out, kw, seed):
    torch.manual_seed(seed)
    m = WaveNet(dropout=0.0, **kw)
    perturb(m, 300 + seed)
    m.make_generation_fast_()
    m.train()
    b, frames = 2, 6
    t = frames * 6
    n = MOL_CLASSES
    levels = torch.randint(0, n, (b, t))
    # the extremes (the loss's edge cases) and levels near the centre
    levels[0, 3], levels[0, 10], levels[1, 5], levels[1, 20] = 0, n - 1, n - 1, 0
    levels[0, 15:19] = torch.tensor([n // 2 - 2, n // 2 - 1, n // 2, n // 2 + 1])
    levels[1, 30:33] = torch.tensor([n // 2 - 1, n // 2, n // 2 - 1])
    x = levels_to_x(levels, n)
    c = torch.rand(b, kw["cin_channels"], frames)
    state = {k: v.clone().contiguous() for k, v in m.state_dict().items()}
    y = m(x.unsqueeze(1), c=c)
    steps = discretized_mix_logistic_loss(
        y[:, :, :-1], x[:, 1:].unsqueeze(-1), num_classes=n, log_scale_min=-7.0, reduce=False
    ).squeeze(-1)
    loss = steps.mean()
    loss.backward()
    io = {
        "classes": levels, "x": x, "c": c, "output": y.detach(),
        "step_loss": steps.detach(), "loss": loss.detach().reshape(1),
    }
    io.update(
        {f"grad.{k}": torch.zeros_like(p) if p.grad is None else p.grad for k, p in m.named_parameters()}
    )
    save_file(state, str(out / "mol.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / "mol.io.safetensors"))
    return {"config": unidl_config(kw)}, float(loss)


def mixture_reference(out, seed):
    torch.manual_seed(seed)
    k, b, t = 4, 2, 9
    y_hat = torch.randn(b, 3 * k, t) * 2.0
    y_hat[:, 2 * k:] = torch.rand(b, k, t) * 10.0 - 9.0
    y = torch.rand(b, t) * 2.0 - 1.0
    y[0, 0], y[0, 1], y[1, 2], y[1, 3], y[0, 4], y[1, 8] = -1.0, 1.0, -0.9995, 0.9995, 0.0, 1.0
    io = {"y_hat": y_hat, "y": y}
    for n in [65536, 256]:
        yh = y_hat.clone().requires_grad_(True)
        steps = discretized_mix_logistic_loss(
            yh, y.unsqueeze(-1), num_classes=n, log_scale_min=-7.0, reduce=False
        ).squeeze(-1)
        steps.mean().backward()
        io[f"step_loss.{n}"] = steps.detach()
        io[f"grad.{n}"] = yh.grad
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / "mixture.io.safetensors"))


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    meta = {"wavenet_vocoder": wavenet_vocoder.__version__, "params": {}, "models": {}}
    for key, kw in [("default", {}), ("mel_vocoder", MEL_VOCODER)]:
        m = WaveNet(**kw)
        wn = count(m)
        m.make_generation_fast_()
        meta["params"][key] = {"weight_norm": wn, "plain": count(m)}
    meta["params"]["mel_vocoder"]["config"] = unidl_config(MEL_VOCODER, dropout=0.05)
    meta["models"]["lcgc"] = eval_reference(out, "lcgc", LCGC, 0, 2, 5, [1, 2])
    meta["models"]["k2"] = eval_reference(out, "k2", K2, 1, 2, 23, None)
    meta["models"]["train"], loss = train_reference(out, LCGC, 2)
    x = torch.cat([torch.linspace(-1.0, 1.0, 401), torch.rand(200) * 2 - 1])
    enc = torchaudio.functional.mu_law_encoding(x, 256)
    save_file(
        {"x": x, "encoded": enc, "decoded": torchaudio.functional.mu_law_decoding(enc, 256)},
        str(out / "mu_law.io.safetensors"),
    )
    meta["models"]["mol"], mol_loss = mol_reference(out, MOL, 3)
    mixture_reference(out, 4)
    (out / "wavenet.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta["params"]), loss, mol_loss)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
