#!/usr/bin/env python3
"""Reference values for unidl-audio's RNN-T from torchaudio 2.9.0 (torch
2.9.0), seeded random weights (layer and group norms randomised), padded
batches with per-sample lengths:

  conformer   torchaudio.models.RNNT with torchaudio's _Predictor and
              _Joiner (tanh) and the Conformer transcriber of torchaudio's
              former prototype conformer_rnnt_model (_ConformerEncoder,
              written out below: 4x time reduction by stacking frames,
              Linear, torchaudio's Conformer blocks with group norm and
              convolution first, Linear, LayerNorm); predictor LSTMs with
              layer norm
  lstm        the same with _CustomLSTM layers (no layer norm, with biases)
              in place of the blocks and a ReLU joiner
  loss        torchaudio.functional.rnnt_loss (blank 0, mean) on random
              logits [3, 7, 5, 6] with per-sample logit and target lengths:
              the loss and its gradient with respect to the logits

For each model: eval-mode logits of RNNT.forward (targets with a leading
blank), then one training step (dropout 0) with rnnt_loss: the loss and
every parameter's gradient.

  <name>.safetensors      state dict (torchaudio keys)
  <name>.io.safetensors   inputs, lengths, targets, logits, loss, grad.<key>
  rnnt.json               configs and conformer_rnnt_base's parameter count
                          (80 mel features, 29 labels)

Usage: gen_rnnt.py OUT (committed as tests/reference/rnnt)
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
from torchaudio.functional import rnnt_loss  # noqa: E402
from torchaudio.models import RNNT, Conformer  # noqa: E402
from torchaudio.models.rnnt import _CustomLSTM, _Joiner, _Predictor, _TimeReduction  # noqa: E402


class ConformerEncoder(nn.Module):
    """torchaudio's former prototype `_ConformerEncoder` (torchaudio <= 2.1)."""

    def __init__(self, input_dim, output_dim, stride, d, ffn, layers, heads, kernel, dropout):
        super().__init__()
        self.time_reduction = _TimeReduction(stride)
        self.input_linear = nn.Linear(input_dim * stride, d)
        self.conformer = Conformer(
            num_layers=layers,
            input_dim=d,
            ffn_dim=ffn,
            num_heads=heads,
            depthwise_conv_kernel_size=kernel,
            dropout=dropout,
            use_group_norm=True,
            convolution_first=True,
        )
        self.output_linear = nn.Linear(d, output_dim)
        self.layer_norm = nn.LayerNorm(output_dim)

    def forward(self, input, lengths):
        x, lengths = self.time_reduction(input, lengths)
        x, lengths = self.conformer(self.input_linear(x), lengths)
        return self.layer_norm(self.output_linear(x)), lengths


class LstmEncoder(nn.Module):
    """The same with torchaudio's `_CustomLSTM` layers (time-major inside)."""

    def __init__(self, input_dim, output_dim, stride, d, layers):
        super().__init__()
        self.time_reduction = _TimeReduction(stride)
        self.input_linear = nn.Linear(input_dim * stride, d)
        self.lstm_layers = nn.ModuleList([_CustomLSTM(d, d) for _ in range(layers)])
        self.output_linear = nn.Linear(d, output_dim)
        self.layer_norm = nn.LayerNorm(output_dim)

    def forward(self, input, lengths):
        x, lengths = self.time_reduction(input, lengths)
        x = self.input_linear(x).transpose(0, 1)
        for lstm in self.lstm_layers:
            x, _ = lstm(x, None)
        return self.layer_norm(self.output_linear(x.transpose(0, 1))), lengths


def build(cfg):
    if cfg["transcriber"] == "conformer":
        enc = ConformerEncoder(
            cfg["input_dim"], cfg["encoding_dim"], cfg["time_reduction_stride"], cfg["d_model"],
            cfg["ffn_dim"], cfg["num_layers"], cfg["num_heads"], cfg["depthwise_conv_kernel_size"],
            cfg["dropout"],
        )
    else:
        enc = LstmEncoder(
            cfg["input_dim"], cfg["encoding_dim"], cfg["time_reduction_stride"], cfg["d_model"],
            cfg["num_layers"],
        )
    pred = _Predictor(
        cfg["vocab_size"], cfg["encoding_dim"], cfg["symbol_embedding_dim"], cfg["num_lstm_layers"],
        cfg["lstm_hidden_dim"], cfg["lstm_layer_norm"], cfg["lstm_layer_norm_epsilon"],
        cfg["lstm_dropout"],
    )
    return RNNT(enc, pred, _Joiner(cfg["encoding_dim"], cfg["vocab_size"], cfg["joiner_activation"]))


def randomise(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.GroupNorm, nn.LayerNorm)):
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))


SMALL = dict(
    input_dim=8, vocab_size=6, encoding_dim=12, time_reduction_stride=4, d_model=16, ffn_dim=24,
    num_layers=2, num_heads=2, depthwise_conv_kernel_size=5, conv_norm="group",
    convolution_first=True, dropout=0.0, symbol_embedding_dim=8, num_lstm_layers=2,
    lstm_hidden_dim=10, lstm_layer_norm=True, lstm_layer_norm_epsilon=1e-3, lstm_dropout=0.0,
    joiner_activation="tanh",
)


# torchaudio's former conformer_rnnt_base (80 mels, 29 labels)
BASE = dict(
    SMALL, input_dim=80, vocab_size=29, encoding_dim=1024, d_model=256, ffn_dim=1024,
    num_layers=16, num_heads=4, depthwise_conv_kernel_size=31, dropout=0.1,
    symbol_embedding_dim=256, num_lstm_layers=2, lstm_hidden_dim=512,
    lstm_layer_norm_epsilon=1e-5, lstm_dropout=0.3, transcriber="conformer",
)


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    meta = {"conformer_rnnt_base_params": sum(p.numel() for p in build(BASE).parameters()), "models": {}}
    variants = [
        ("conformer", dict(SMALL, transcriber="conformer")),
        ("lstm", dict(SMALL, transcriber="lstm", lstm_layer_norm=False, joiner_activation="relu")),
    ]
    for seed, (name, cfg) in enumerate(variants):
        torch.manual_seed(seed)
        m = build(cfg)
        randomise(m, 10 + seed)
        x = torch.randn(3, 26, cfg["input_dim"])
        lengths = torch.tensor([26, 19, 9])
        targets = torch.tensor([[1, 5, 5], [2, 3, 0], [4, 0, 0]], dtype=torch.int32)
        target_lengths = torch.tensor([3, 2, 1], dtype=torch.int32)
        prepended = torch.cat([torch.zeros(3, 1, dtype=torch.int32), targets], 1)
        state = {k: v.clone().contiguous() for k, v in m.state_dict().items()}
        m.eval()
        with torch.no_grad():
            logits, n, _, _ = m(x, lengths, prepended, target_lengths + 1)
        m.train()
        logits_t, n_t, _, _ = m(x, lengths, prepended, target_lengths + 1)
        loss = rnnt_loss(logits_t, targets, n_t.int(), target_lengths, blank=0, reduction="mean")
        loss.backward()
        io = {
            "input": x,
            "lengths": lengths,
            "targets_flat": targets.flatten().long(),
            "target_lengths": target_lengths.long(),
            "logits": logits,
            "output_lengths": n.long(),
            "loss": loss.detach().reshape(1),
        }
        io.update({f"grad.{k}": p.grad for k, p in m.named_parameters()})
        save_file(state, str(out / f"{name}.safetensors"))
        save_file({k: v.contiguous() for k, v in io.items()}, str(out / f"{name}.io.safetensors"))
        meta["models"][name] = {
            "config": cfg,
            "params": sum(p.numel() for p in m.parameters()),
        }
    # the loss alone, on random logits with per-sample lengths
    torch.manual_seed(5)
    logits = torch.randn(3, 7, 5, 6, requires_grad=True)
    targets = torch.tensor([[1, 2, 2, 5], [3, 4, 0, 0], [5, 0, 0, 0]], dtype=torch.int32)
    logit_lengths = torch.tensor([7, 5, 2], dtype=torch.int32)
    target_lengths = torch.tensor([4, 2, 1], dtype=torch.int32)
    loss = rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=0, reduction="mean")
    loss.backward()
    save_file(
        {
            "logits": logits.detach(),
            "targets_flat": targets.flatten().long(),
            "logit_lengths": logit_lengths.long(),
            "target_lengths": target_lengths.long(),
            "loss": loss.detach().reshape(1),
            "grad": logits.grad,
        },
        str(out / "loss.io.safetensors"),
    )
    (out / "rnnt.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
