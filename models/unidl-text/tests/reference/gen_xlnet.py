#!/usr/bin/env python3
"""Reference values for unidl-text's XLNet (`tests/xlnet.rs`).

transformers 5.23.0 on torch 2.9.0 (the torch venv of scripts/setup-torch.sh
plus `pip install transformers==5.23.0`).

    python gen_xlnet.py [OUT]      reduced random model (committed: tests/reference/xlnet/)

The reduced case: a 2-layer XLNet (d_model 32, 4 heads of 8, feed-forward
64, vocabulary 120) with seeded weights large enough that every attention
term (content, position, segment) moves the output, random layer norms,
dropout 0, eval mode. Saved:

- `xlnet_cls.safetensors`: the `XLNetForSequenceClassification` state dict
  (3 labels; `transformers`' names);
- `xlnet_config.json`: its config as `transformers` writes it (every key);
- `xlnet.io.safetensors`: the inputs (a batch of two rows, the second
  left-padded as XLNet's tokenizer pads, with segment ids 0/1, 2 for
  `<cls>` and 3 for padding), and
  - `hidden`: `XLNetModel`'s last hidden state with the attention mask and
    the segment ids;
  - `hidden_plain`: the first row alone, no mask, no segment ids;
  - `hidden_relu_clamp`: the same weights with `ff_activation="relu"` and
    `clamp_len=3`;
  - `query_stream`: the two-stream output (`output_g`) for a `perm_mask`
    (a random factorisation order per row) and a `target_mapping` of two
    predicted positions per row;
  - `cls_logits`, `cls_loss` (cross-entropy over `labels`) and `grad.<name>`
    for the parameters in GRADS (one backward pass, eval mode, dropout 0).

`xlnet.json` holds the config, the labels and the parameter count of
xlnet-base-cased's architecture (`XLNetModel`, vocabulary 32000, d_model
768, 12 layers, 12 heads, d_inner 3072).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import XLNetConfig, XLNetForSequenceClassification, XLNetModel

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = dict(
    vocab_size=120,
    d_model=32,
    n_layer=2,
    n_head=4,
    d_inner=64,
    ff_activation="gelu",
    untie_r=True,
    attn_type="bi",
    layer_norm_eps=1e-12,
    dropout=0.0,
    bi_data=False,
    clamp_len=-1,
    same_length=False,
    mem_len=None,
    summary_type="last",
    summary_use_proj=True,
    summary_activation="tanh",
    summary_last_dropout=0.0,
    initializer_range=0.02,
)

BASE = dict(vocab_size=32000, d_model=768, n_layer=12, n_head=12, d_inner=3072)

# gradients compared by the test (transformers' names)
GRADS = [
    "transformer.word_embedding.weight",
    "transformer.layer.0.rel_attn.q",
    "transformer.layer.0.rel_attn.r",
    "transformer.layer.0.rel_attn.r_r_bias",
    "transformer.layer.0.rel_attn.r_s_bias",
    "transformer.layer.0.rel_attn.seg_embed",
    "transformer.layer.0.rel_attn.layer_norm.weight",
    "transformer.layer.1.rel_attn.k",
    "transformer.layer.1.rel_attn.o",
    "transformer.layer.1.rel_attn.r_w_bias",
    "transformer.layer.1.ff.layer_1.weight",
    "transformer.layer.1.ff.layer_norm.bias",
    "sequence_summary.summary.weight",
    "logits_proj.bias",
]


def contiguous(state):
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def randomise(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_(torch.rand_like(p) * 0.5 + (0.75 if name.endswith("weight") else -0.25))
            elif name.endswith(("r_w_bias", "r_r_bias", "r_s_bias")):
                p.copy_(torch.randn_like(p) * 0.5)
            elif name.endswith("seg_embed"):
                p.copy_(torch.randn_like(p) * 0.5)
            elif name.endswith(("rel_attn.q", "rel_attn.k", "rel_attn.v", "rel_attn.o", "rel_attn.r")):
                p.copy_(torch.randn_like(p) * 0.2)
            elif "word_embedding" in name or "mask_emb" in name:
                p.copy_(torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.05)
            else:
                p.copy_(torch.randn_like(p) * 0.15)


def main(out):
    torch.manual_seed(5)
    config = XLNetConfig(**CONFIG, num_labels=3)
    cls = XLNetForSequenceClassification(config)
    randomise(cls)
    cls.eval()

    pad = config.pad_token_id
    ids = torch.tensor(
        [
            [17, 45, 98, 3, 60, 11, 23, 4, 3],
            [pad, pad, pad, 33, 8, 71, 4, 90, 3],
        ]
    )
    attention = torch.tensor([[1] * 9, [0, 0, 0, 1, 1, 1, 1, 1, 1]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 2], [3, 3, 3, 0, 0, 1, 1, 1, 2]])
    labels = torch.tensor([2, 0])

    base = cls.transformer
    with torch.no_grad():
        hidden = base(input_ids=ids, attention_mask=attention, token_type_ids=types).last_hidden_state
        plain = base(input_ids=ids[:1]).last_hidden_state

    # two-stream attention: position i may see j when j comes before i in a
    # random factorisation order of the row (and j is not padding)
    t = ids.shape[1]
    perm_mask = torch.zeros(2, t, t)
    g = torch.Generator().manual_seed(3)
    for b in range(2):
        order = torch.randperm(t, generator=g)
        rank = torch.empty(t, dtype=torch.long)
        rank[order] = torch.arange(t)
        perm_mask[b] = (rank[None, :] >= rank[:, None]).float()  # 1: i cannot see j
    target_mapping = torch.zeros(2, 2, t)
    target_mapping[0, 0, 2] = 1.0
    target_mapping[0, 1, 7] = 1.0
    target_mapping[1, 0, 4] = 1.0
    target_mapping[1, 1, 8] = 1.0
    with torch.no_grad():
        query_stream = base(
            input_ids=ids,
            attention_mask=attention,
            token_type_ids=types,
            perm_mask=perm_mask,
            target_mapping=target_mapping,
        ).last_hidden_state

    relu = XLNetModel(XLNetConfig(**{**CONFIG, "ff_activation": "relu", "clamp_len": 3}))
    relu.load_state_dict(base.state_dict())
    relu.eval()
    with torch.no_grad():
        hidden_relu = relu(input_ids=ids, attention_mask=attention, token_type_ids=types).last_hidden_state

    c = cls(input_ids=ids, attention_mask=attention, token_type_ids=types, labels=labels)
    c.loss.backward()
    grads = {f"grad.{k}": p.grad for k, p in cls.named_parameters() if k in GRADS}
    assert len(grads) == len(GRADS), sorted(grads)

    os.makedirs(out, exist_ok=True)
    save_file(contiguous(cls.state_dict()), os.path.join(out, "xlnet_cls.safetensors"))
    config.to_json_file(os.path.join(out, "xlnet_config.json"), use_diff=False)
    io = {
        "input_ids": ids.float(),
        "attention_mask": attention.float(),
        "token_type_ids": types.float(),
        "labels": labels.float(),
        "perm_mask": perm_mask,
        "target_mapping": target_mapping,
        "hidden": hidden,
        "hidden_plain": plain,
        "hidden_relu_clamp": hidden_relu,
        "query_stream": query_stream,
        "cls_logits": c.logits,
        "cls_loss": c.loss.reshape(1),
        **grads,
    }
    save_file(contiguous(io), os.path.join(out, "xlnet.io.safetensors"))
    params = sum(p.numel() for p in XLNetModel(XLNetConfig(**BASE)).parameters())
    meta = {
        "name": "xlnet",
        "config": CONFIG,
        "num_labels": 3,
        "grads": GRADS,
        "base_config": BASE,
        "xlnet_base_params": params,
    }
    with open(os.path.join(out, "xlnet.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"reduced XLNet reference in {out}; xlnet-base parameters {params}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "xlnet"))
