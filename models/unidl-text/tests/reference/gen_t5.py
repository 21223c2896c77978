#!/usr/bin/env python3
"""Reference values for unidl-text's T5 (`tests/t5.rs`).

transformers 5.23.0 on torch 2.9.0 (the torch venv plus
`pip install transformers==5.23.0`).

    python gen_t5.py [OUT]      reduced random models (committed: tests/reference/t5/)

Two reduced `T5ForConditionalGeneration`s with seeded weights and random RMS
norms, dropout 0: `relu` (T5 v1.0 as t5-small: ReLU feed-forward, tied head)
and `gated` (v1.1: gated-GELU feed-forward, untied head), with 2 encoder and
3 decoder blocks, 8 relative-position buckets up to distance 20 (so that
the log-spaced buckets are reached by the 11-token source). Saved per case:
the state dict (`transformers`' names), the inputs (a padded source batch,
labels with -100 padding), the encoder's last hidden state, the logits, the
loss and the gradients of a few parameters.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))

BASE = dict(
    vocab_size=99,
    d_model=32,
    d_kv=8,
    d_ff=37,
    num_layers=2,
    num_decoder_layers=3,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=20,
    dropout_rate=0.0,
    layer_norm_epsilon=1e-6,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)
CASES = {
    "relu": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    "gated": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}
GRADS = [
    "shared.weight",
    "encoder.block.0.layer.0.SelfAttention.q.weight",
    "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "encoder.block.1.layer.0.layer_norm.weight",
    "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "decoder.block.2.layer.1.EncDecAttention.v.weight",
    "decoder.final_layer_norm.weight",
]


def contiguous(state):
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def case(name, out):
    torch.manual_seed(11)
    config = T5Config(**BASE, **CASES[name], attn_implementation="eager")
    model = T5ForConditionalGeneration(config)
    if not CASES[name]["tie_word_embeddings"]:
        # transformers 5.23 turns `tie_word_embeddings=False` into "do not
        # scale the decoder output" and ties the head anyway (its config sets
        # `tie_word_embeddings = True`): give the head its own weights, as a
        # T5 v1.1 checkpoint has
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight) * 0.05)
    with torch.no_grad():
        for k, p in model.named_parameters():
            if "layer_norm" in k:
                p.copy_(torch.rand_like(p) * 0.5 + 0.75)
    model.eval()
    ids = torch.tensor([[5, 17, 45, 98, 3, 60, 11, 23, 7, 2, 1], [9, 33, 8, 71, 1, 0, 0, 0, 0, 0, 0]])
    attention = (ids != 0).long()
    attention[0, :] = 1
    labels = torch.tensor([[12, 40, 3, 77, 1, -100], [6, 6, 90, 14, 51, 1]])
    o = model(input_ids=ids, attention_mask=attention, labels=labels)
    o.loss.backward()
    grads = {f"grad.{k}": p.grad for k, p in model.named_parameters() if k in GRADS}
    if name == "gated":
        grads["grad.lm_head.weight"] = model.lm_head.weight.grad
    state = contiguous(model.state_dict())
    save_file(state, os.path.join(out, f"t5_{name}.safetensors"))
    io = {
        "input_ids": ids.float(),
        "attention_mask": attention.float(),
        "labels": labels.float(),
        "encoder_hidden": o.encoder_last_hidden_state,
        "logits": o.logits,
        "loss": o.loss.reshape(1),
        **grads,
    }
    save_file(contiguous(io), os.path.join(out, f"t5_{name}.io.safetensors"))
    return {**BASE, **CASES[name]}


def main(out):
    os.makedirs(out, exist_ok=True)
    configs = {name: case(name, out) for name in CASES}
    small = sum(p.numel() for p in T5ForConditionalGeneration(T5Config()).parameters())
    meta = {"name": "t5", "configs": configs, "grads": GRADS, "t5_small_params": small}
    with open(os.path.join(out, "t5.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"reduced T5 references in {out}; t5-small parameters {small}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "t5"))
