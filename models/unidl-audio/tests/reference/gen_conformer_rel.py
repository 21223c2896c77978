#!/usr/bin/env python3
"""Reference values for unidl-audio's Conformer with relative positional
encoding (`pos_encoding = "relative"`), the paper's (Gulati et al. 2020):
Transformer-XL's relative sinusoidal self-attention as ESPnet defines it
(espnet 202511, `RelPositionalEncoding` + `RelPositionMultiHeadedAttention`,
the "latest" rel_pos_type), written out here in PyTorch and placed in
torchaudio 2.9.0's `ConformerLayer` instead of `nn.MultiheadAttention`.

What ESPnet defines and this file repeats:

  RelPositionalEncoding(d, p)   x -> x * sqrt(d); the encodings of the
                                relative positions T-1, T-2, ..., -(T-1)
                                ([2T-1, d], pe[:, 0::2] = sin(pos * f),
                                pe[:, 1::2] = cos(pos * f), f = exp(-2k ln(1e4)/d)
                                in float32); dropout p on both
  RelPositionMultiHeadedAttention(h, d, p)
                                linear_{q,k,v,out} (with bias), linear_pos
                                (no bias), pos_bias_u, pos_bias_v [h, d/h]
                                (xavier uniform); scores
                                ((q+u) k^T + rel_shift((q+v) (W_pos pe)^T)) / sqrt(d/h),
                                padded keys at the lowest float, softmax (then
                                0 at padded keys), dropout p, values, linear_out

The positional encoding sits after the front end (ESPnet's
`Conv2dSubsampling(..., pos_enc)`: Linear then pos_enc), before the layers;
every layer gets the same encodings.

Seeded random weights (norm affine parameters and batch-norm running
statistics randomised), padded batches with per-sample lengths:

  rel_blocks     the relative blocks (input_dim = d = 16, 2 heads, FFN 24,
                 2 layers, kernel 5), eval mode: outputs and output lengths
  rel_blocks_gn  the same with group norm and convolution first
  rel_ctc        the paper's 4x front end (as gen_conformer.py), the relative
                 blocks, a Linear CTC head; one train-mode step (dropout 0)
                 with torch.nn.functional.ctc_loss (blank 0, "mean"):
                 log-probs, loss and every gradient

  <name>.safetensors      state dict (torchaudio's keys, ESPnet's under self_attn;
                          "rel_ctc": frontend.*, blocks.*, head.*)
  <name>.io.safetensors   inputs, lengths, outputs (and targets, loss, grad.<key>)
  conformer_rel.json      configs and the parameter counts of Conformer-S
                          blocks, absolute (torchaudio) and relative

Usage: gen_conformer_rel.py OUT (committed as tests/reference/conformer_rel)
Run it with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import json
import math
import sys
from pathlib import Path

import torch
import torchaudio
from safetensors.torch import save_file
from torch import nn

assert torch.__version__.split("+")[0] == "2.9.0", torch.__version__
assert torchaudio.__version__.split("+")[0] == "2.9.0", torchaudio.__version__
from torchaudio.models import Conformer  # noqa: E402
from torchaudio.models.conformer import ConformerLayer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_conformer import Subsampling, randomise  # noqa: E402  (the CTC front end and norm randomising)


class RelPositionalEncoding(nn.Module):
    """ESPnet's RelPositionalEncoding (latest): scaled input, relative encodings."""

    def __init__(self, d_model, dropout):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)

    def encodings(self, t):
        # positions t-1, ..., 1, 0 (flipped positive half), then -1, ..., -(t-1)
        position = torch.arange(0, t, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(
            torch.arange(0, self.d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / self.d_model)
        )
        pos = torch.zeros(t, self.d_model)
        neg = torch.zeros(t, self.d_model)
        pos[:, 0::2] = torch.sin(position * freq)
        pos[:, 1::2] = torch.cos(position * freq)
        neg[:, 0::2] = torch.sin(-1 * position * freq)
        neg[:, 1::2] = torch.cos(-1 * position * freq)
        return torch.cat([torch.flip(pos, [0]), neg[1:]], dim=0).unsqueeze(0)  # [1, 2t-1, d]

    def forward(self, x):
        pos_emb = self.encodings(x.size(1)).to(x.dtype)
        return self.dropout(x * self.xscale), self.dropout(pos_emb)


class RelPositionMultiHeadedAttention(nn.Module):
    """ESPnet's RelPositionMultiHeadedAttention (zero_triu off)."""

    def __init__(self, n_head, n_feat, dropout):
        super().__init__()
        assert n_feat % n_head == 0
        self.h = n_head
        self.d_k = n_feat // n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout = nn.Dropout(dropout)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(self.h, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    @staticmethod
    def rel_shift(x):
        # [b, h, t, 2t-1] scores against every relative position -> [b, h, t, t]
        b, h, t, r = x.shape
        padded = torch.cat([x.new_zeros(b, h, t, 1), x], dim=-1).view(b, h, r + 1, t)
        return padded[:, :, 1:].reshape(b, h, t, r)[:, :, :, : r // 2 + 1]

    def forward(self, x, pos_emb, mask):
        b = x.size(0)
        heads = lambda y: y.view(y.size(0), -1, self.h, self.d_k)  # noqa: E731
        q = heads(self.linear_q(x))  # [b, t, h, d_k]
        k = heads(self.linear_k(x)).transpose(1, 2)
        v = heads(self.linear_v(x)).transpose(1, 2)
        p = heads(self.linear_pos(pos_emb)).transpose(1, 2)  # [1, h, 2t-1, d_k]
        ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        bd = self.rel_shift(torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1)))
        scores = (ac + bd) / math.sqrt(self.d_k)
        pad = mask.unsqueeze(1).eq(0)  # [b, 1, 1, t], True at padded keys
        scores = scores.masked_fill(pad, torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1).masked_fill(pad, 0.0)
        y = torch.matmul(self.dropout(attn), v).transpose(1, 2).reshape(b, -1, self.h * self.d_k)
        return self.linear_out(y)


class RelConformerLayer(ConformerLayer):
    """torchaudio's layer (batch first here) with the relative attention."""

    def __init__(self, input_dim, ffn_dim, num_heads, kernel, dropout=0.0, **kw):
        super().__init__(input_dim, ffn_dim, num_heads, kernel, dropout=dropout, **kw)
        self.self_attn = RelPositionMultiHeadedAttention(num_heads, input_dim, dropout)

    def forward(self, x, mask, pos_emb):
        x = self.ffn1(x) * 0.5 + x
        if self.convolution_first:
            x = x + self.conv_module(x)
        y = self.self_attn(self.self_attn_layer_norm(x), pos_emb, mask)
        x = self.self_attn_dropout(y) + x
        if not self.convolution_first:
            x = x + self.conv_module(x)
        x = self.ffn2(x) * 0.5 + x
        return self.final_layer_norm(x)


class RelConformer(nn.Module):
    def __init__(self, input_dim, num_heads, ffn_dim, num_layers, depthwise_conv_kernel_size, dropout=0.0, **kw):
        super().__init__()
        self.pos_enc = RelPositionalEncoding(input_dim, dropout)
        self.conformer_layers = nn.ModuleList(
            RelConformerLayer(input_dim, ffn_dim, num_heads, depthwise_conv_kernel_size, dropout=dropout, **kw)
            for _ in range(num_layers)
        )

    def forward(self, x, lengths):
        t = x.size(1)
        mask = (torch.arange(t).expand(len(lengths), t) < lengths.unsqueeze(1)).unsqueeze(1)  # [b, 1, t]
        x, pos_emb = self.pos_enc(x)
        for layer in self.conformer_layers:
            x = layer(x, mask, pos_emb)
        return x, lengths


class ConformerCtc(nn.Module):
    def __init__(self, input_dim, d, vocab, **kw):
        super().__init__()
        self.frontend = Subsampling(input_dim, d)
        self.blocks = RelConformer(input_dim=d, **kw)
        self.head = nn.Linear(d, vocab)

    def forward(self, x, lengths):
        x, lengths = self.frontend(x, lengths)
        x, lengths = self.blocks(x, lengths)
        return self.head(x).log_softmax(-1), lengths


def count(m):
    return sum(p.numel() for p in m.parameters())


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(num_heads=2, ffn_dim=24, num_layers=2, depthwise_conv_kernel_size=5)
    meta = {
        "conformer_s_params": count(Conformer(144, 4, 576, 16, 31)),
        "conformer_s_rel_params": count(RelConformer(144, 4, 576, 16, 31)),
        "models": {},
    }
    # the relative encodings themselves, for T = 5 and d = 6
    meta["encodings_t5_d6"] = RelPositionalEncoding(6, 0.0).encodings(5)[0].tolist()
    for seed, (name, extra) in enumerate(
        [("rel_blocks", {}), ("rel_blocks_gn", {"use_group_norm": True, "convolution_first": True})]
    ):
        torch.manual_seed(100 + seed)
        m = RelConformer(input_dim=16, **kw, **extra)
        randomise(m, 110 + seed)
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
                "pos_encoding": "relative",
            }
        }
    # the full CTC model, one train-mode step
    torch.manual_seed(107)
    m = ConformerCtc(20, 16, 6, **kw)
    randomise(m, 117)
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
    save_file(state, str(out / "rel_ctc.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / "rel_ctc.io.safetensors"))
    meta["models"]["rel_ctc"] = {
        "config": {
            "input_dim": 20,
            "d_model": 16,
            "num_heads": 2,
            "ffn_dim": 24,
            "num_layers": 2,
            "depthwise_conv_kernel_size": 5,
            "subsampling": True,
            "vocab_size": 6,
            "pos_encoding": "relative",
        }
    }
    (out / "conformer_rel.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(meta["conformer_s_params"], meta["conformer_s_rel_params"], float(loss.detach()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
