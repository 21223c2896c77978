#!/usr/bin/env python3
"""Reference values for unidl-text's ByteNet (`tests/bytenet.rs`).

torch 2.9.0 (the torch venv: `~/.cache/unidl/torch-venv/bin/python`).

    python gen_bytenet.py [OUT]    a reduced random model (committed: tests/reference/bytenet/)

No package ships ByteNet, so its definition is written here, in PyTorch,
from Kalchbrenner et al., "Neural Machine Translation in Linear Time"
(arXiv:1610.10099), with the choices `unidl_text::bytenet` documents:

- width: the residual stream has 2d channels (d = `hidden_units`);
- encoder: source embedding (2d), zero beyond the source; the source is
  unfolded to t^ = ceil(a |s| + b) positions (a = `unfold_scale`,
  b = `unfold_offset`) by zero padding; `encoder_blocks` residual blocks of
  non-causal dilated convolutions whose k-wide convolution sees zeros at
  every position >= t^ (so batch padding never leaks); the output is zero
  at positions >= t^;
- decoder: [target embedding (2d); encoder output at the same position, zero
  beyond the encoder's length, cut to the target's] (4d) -> 1x1 convolution
  to 2d; `decoder_blocks` residual blocks of causal dilated convolutions
  (left zero padding); then 1x1 convolution (2d -> 2d), ReLU, 1x1
  convolution (2d -> vocab): the logits;
- residual block (Fig. 3, left): LayerNorm -> ReLU -> 1x1 conv (2d -> d) ->
  LayerNorm -> ReLU -> k-wide conv with dilation r (d -> d) -> LayerNorm ->
  ReLU -> 1x1 conv (d -> 2d), plus the input; LayerNorms over channels;
  dilations cycle through `dilations`.

The reduced model (vocab 261, d = 8, 5 + 5 blocks, k = 3, dilations 1..16,
a = 1.2, b = 0) is seeded, its LayerNorms random, run in float64 and saved in
float32: the state dict, a padded source batch, decoder inputs `[BOS] y`
(longer than the unfolded source: zero columns reached), labels `y [EOS]`
with their mask, the encoder output, the logits, the loss (mean token
cross-entropy over real label tokens) and the gradients of a few
parameters. `bytenet.json` holds the config (unidl's `ByteNetConfig` keys),
the gradient names and the paper configuration's parameter count.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))

PAPER = dict(
    vocab_size=261,
    hidden_units=800,
    encoder_blocks=30,
    decoder_blocks=30,
    encoder_kernel_size=3,
    decoder_kernel_size=3,
    dilations=[1, 2, 4, 8, 16],
    unfold_scale=1.2,
    unfold_offset=0.0,
    layer_norm_epsilon=1e-5,
    dropout=0.0,
)
REDUCED = dict(PAPER, hidden_units=8, encoder_blocks=5, decoder_blocks=5)
GRADS = [
    "source_embedding.weight",
    "encoder.0.conv.weight",
    "encoder.4.norm2.weight",
    "encoder.3.expand.bias",
    "target_embedding.weight",
    "decoder_input.weight",
    "decoder.1.reduce.weight",
    "decoder.2.conv.weight",
    "decoder.4.norm3.bias",
    "output_hidden.weight",
    "output.weight",
    "output.bias",
]


def unfolded_length(n, cfg):
    return max(0, math.ceil(cfg["unfold_scale"] * n + cfg["unfold_offset"] - 1e-9))


class Block(nn.Module):
    """Fig. 3 (left): the ReLU residual block, channels last outside the convolutions."""

    def __init__(self, d, k, dilation, causal, eps):
        super().__init__()
        self.k, self.dilation, self.causal = k, dilation, causal
        self.norm1 = nn.LayerNorm(2 * d, eps=eps)
        self.reduce = nn.Conv1d(2 * d, d, 1)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.conv = nn.Conv1d(d, d, k, dilation=dilation)
        self.norm3 = nn.LayerNorm(d, eps=eps)
        self.expand = nn.Conv1d(d, 2 * d, 1)

    def forward(self, x, valid=None):
        # x: [B, T, 2d]; valid: [B, T] (encoder) or None (decoder)
        h = self.reduce(F.relu(self.norm1(x)).transpose(1, 2)).transpose(1, 2)
        h = F.relu(self.norm2(h))
        if valid is not None:
            h = h * valid.unsqueeze(-1)
        h = h.transpose(1, 2)  # [B, d, T]
        span = (self.k - 1) * self.dilation
        h = F.pad(h, (span, 0) if self.causal else (span // 2, span // 2))
        h = self.conv(h).transpose(1, 2)
        h = self.expand(F.relu(self.norm3(h)).transpose(1, 2)).transpose(1, 2)
        return x + h


class ByteNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, v, eps = cfg["hidden_units"], cfg["vocab_size"], cfg["layer_norm_epsilon"]
        dil = cfg["dilations"]
        self.source_embedding = nn.Embedding(v, 2 * d)
        self.encoder = nn.ModuleList(
            Block(d, cfg["encoder_kernel_size"], dil[i % len(dil)], False, eps)
            for i in range(cfg["encoder_blocks"])
        )
        self.target_embedding = nn.Embedding(v, 2 * d)
        self.decoder_input = nn.Conv1d(4 * d, 2 * d, 1)
        self.decoder = nn.ModuleList(
            Block(d, cfg["decoder_kernel_size"], dil[i % len(dil)], True, eps)
            for i in range(cfg["decoder_blocks"])
        )
        self.output_hidden = nn.Conv1d(2 * d, 2 * d, 1)
        self.output = nn.Conv1d(2 * d, v, 1)

    def encode(self, ids, mask):
        b, s = ids.shape
        lengths = mask.sum(1).tolist()
        unfolded = [unfolded_length(n, self.cfg) for n in lengths]
        length = max([s] + unfolded)
        x = self.source_embedding(ids) * mask.unsqueeze(-1).to(self.source_embedding.weight.dtype)
        x = F.pad(x, (0, 0, 0, length - s))
        pos = torch.arange(length).unsqueeze(0)
        valid = (pos < torch.tensor(unfolded).unsqueeze(1)).to(x.dtype)
        for block in self.encoder:
            x = block(x, valid)
        return x * valid.unsqueeze(-1)

    def decode(self, encoded, decoder_ids):
        t = decoder_ids.shape[1]
        length = encoded.shape[1]
        src = encoded[:, :t] if length >= t else F.pad(encoded, (0, 0, 0, t - length))
        y = torch.cat([self.target_embedding(decoder_ids), src], -1)
        y = self.decoder_input(y.transpose(1, 2)).transpose(1, 2)
        for block in self.decoder:
            y = block(y)
        h = F.relu(self.output_hidden(y.transpose(1, 2)))
        return self.output(h).transpose(1, 2)

    def forward(self, ids, mask, decoder_ids):
        return self.decode(self.encode(ids, mask), decoder_ids)


def contiguous(state):
    return {k: v.detach().float().clone().contiguous() for k, v in state.items()}


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(7)
    model = ByteNet(REDUCED)
    with torch.no_grad():
        for k, p in model.named_parameters():
            if ".norm" in k:
                p.copy_((torch.rand_like(p) * 0.5 + 0.75) if k.endswith("weight") else torch.randn_like(p) * 0.1)
    model = model.double().eval()
    # [PAD] 0, [CLS] 2 starts the decoder, [SEP] 3 ends; bytes are 5 + b
    src = [b"Open image", b"Undo"]
    tgt = [b"Bild \xc3\xb6ffnen!!", b"Zur\xc3\xbcck"]
    s = max(len(x) for x in src) + 2  # two padding columns on every row
    ids = torch.tensor([[5 + c for c in x] + [0] * (s - len(x)) for x in src])
    mask = (torch.arange(s).unsqueeze(0) < torch.tensor([len(x) for x in src]).unsqueeze(1)).long()
    t = max(len(y) for y in tgt) + 1
    dec = torch.tensor([[2] + [5 + c for c in y] + [0] * (t - 1 - len(y)) for y in tgt])
    labels = torch.tensor([[5 + c for c in y] + [3] + [0] * (t - 1 - len(y)) for y in tgt])
    label_mask = (torch.arange(t).unsqueeze(0) <= torch.tensor([len(y) for y in tgt]).unsqueeze(1)).long()
    encoded = model.encode(ids, mask)
    assert encoded.shape[1] < t, "the target reaches beyond the unfolded source"
    logits = model.decode(encoded, dec)
    logp = F.log_softmax(logits, -1)
    nll = -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    w = label_mask.double()
    loss = (nll * w).sum() / w.sum()
    loss.backward()
    params = dict(model.named_parameters())
    grads = {f"grad.{k}": params[k].grad for k in GRADS}
    save_file(contiguous(model.state_dict()), os.path.join(out, "bytenet.safetensors"))
    io = {
        "input_ids": ids.double(),
        "attention_mask": mask.double(),
        "decoder_ids": dec.double(),
        "labels": labels.double(),
        "label_mask": label_mask.double(),
        "encoder_output": encoded,
        "logits": logits,
        "loss": loss.reshape(1),
        **grads,
    }
    save_file(contiguous(io), os.path.join(out, "bytenet.io.safetensors"))
    with torch.device("meta"):
        paper = sum(p.numel() for p in ByteNet(PAPER).parameters())
    meta = {"name": "bytenet", "config": REDUCED, "grads": GRADS, "paper_params": paper}
    with open(os.path.join(out, "bytenet.json"), "w") as f:
        json.dump(meta, f, indent=1)
    n = sum(p.numel() for p in model.parameters())
    print(f"reduced ByteNet ({n} parameters) in {out}; loss {loss.item():.6f}; paper parameters {paper}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "bytenet"))
