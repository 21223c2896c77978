#!/usr/bin/env python3
"""Full-size reference values for unidl-text (`tests/full_size.rs`).

transformers 5.23.0 on torch 2.9.0 (the torch venv of scripts/setup-torch.sh
plus `pip install transformers==5.23.0`). The issue's four packaged
architectures at their published sizes, with seeded random weights (none
ship offline), in eval mode on a small padded batch:

  bert_base     BertForSequenceClassification (bert-base, 3 labels):
                hidden states, pooled output, logits
  t5_small      T5ForConditionalGeneration (t5-small): encoder states,
                logits under teacher forcing with -100 labels, loss
  xlnet_base    XLNetForSequenceClassification (xlnet-base-cased, 3 labels):
                hidden states, logits
  trocr_small   VisionEncoderDecoderModel (DeiT-small 384 / 16 + TrOCR
                decoder, TrOCR-small): encoder states, logits, loss

Saved per model: <name>.safetensors (transformers' state dict) and
<name>.io.safetensors (inputs and outputs), plus full.json (configs and
parameter counts). About 1.4 GB: generated into a cache, never committed.

Usage:
  gen_full.py --full [OUT]   OUT defaults to $UNIDL_TEXT_FULL_REF or
                             ~/.cache/unidl/zoo-ref/text-full-<sha256 of this file>
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DeiTConfig,
    DeiTModel,
    T5Config,
    T5ForConditionalGeneration,
    TrOCRConfig,
    TrOCRForCausalLM,
    VisionEncoderDecoderModel,
    XLNetConfig,
    XLNetForSequenceClassification,
)


def contiguous(state):
    return {k: v.detach().clone().contiguous().float() for k, v in state.items()}


def eager(cfg):
    cfg._attn_implementation = "eager"
    return cfg


def save(out, name, model, io, drop=()):
    state = {k: v for k, v in model.state_dict().items() if not any(d in k for d in drop)}
    save_file(contiguous(state), os.path.join(out, f"{name}.safetensors"))
    save_file(contiguous(io), os.path.join(out, f"{name}.io.safetensors"))
    return sum(p.numel() for p in model.parameters())


def ids(rows, cols, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, vocab, (rows, cols), generator=g)


def bert(out):
    torch.manual_seed(11)
    cfg = eager(BertConfig(num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    model = BertForSequenceClassification(cfg).eval()
    input_ids = ids(2, 16, cfg.vocab_size, 1)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 11:] = 0
    input_ids[1, 11:] = 0
    types = torch.zeros(2, 16, dtype=torch.long)
    types[:, 8:] = 1
    with torch.no_grad():
        h = model.bert(input_ids, attention_mask=mask, token_type_ids=types)
        logits = model(input_ids, attention_mask=mask, token_type_ids=types).logits
    n = save(out, "bert_base", model, {
        "input_ids": input_ids.float(), "attention_mask": mask.float(), "token_type_ids": types.float(),
        "hidden": h.last_hidden_state, "pooled": h.pooler_output, "logits": logits,
    })
    return {"params": n, "num_labels": 3}


def t5(out):
    torch.manual_seed(12)
    cfg = eager(T5Config(dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    model = T5ForConditionalGeneration(cfg).eval()
    input_ids = ids(2, 12, cfg.vocab_size, 2)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    input_ids[1, 9:] = cfg.pad_token_id
    labels = ids(2, 7, cfg.vocab_size, 3)
    labels[0, 5:] = -100
    with torch.no_grad():
        o = model(input_ids=input_ids, attention_mask=mask, labels=labels)
    n = save(out, "t5_small", model, {
        "input_ids": input_ids.float(), "attention_mask": mask.float(), "labels": labels.float(),
        "encoder_hidden": o.encoder_last_hidden_state, "logits": o.logits, "loss": o.loss.reshape(1),
    })
    return {"params": n}


def xlnet(out):
    torch.manual_seed(13)
    cfg = XLNetConfig(d_model=768, n_layer=12, n_head=12, d_inner=3072, num_labels=3, dropout=0.0,
                      summary_last_dropout=0.0)
    model = XLNetForSequenceClassification(cfg).eval()
    input_ids = ids(2, 14, cfg.vocab_size, 4)
    mask = torch.ones(2, 14, dtype=torch.long)
    # transformers' XLNet tokenizer pads on the left
    mask[1, :4] = 0
    input_ids[1, :4] = cfg.pad_token_id
    types = torch.zeros(2, 14, dtype=torch.long)
    types[:, 9:] = 1
    with torch.no_grad():
        h = model.transformer(input_ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        logits = model(input_ids, attention_mask=mask, token_type_ids=types).logits
    n = save(out, "xlnet_base", model, {
        "input_ids": input_ids.float(), "attention_mask": mask.float(), "token_type_ids": types.float(),
        "hidden": h, "logits": logits,
    })
    return {"params": n, "num_labels": 3}


def trocr(out):
    torch.manual_seed(14)
    enc = eager(DeiTConfig(image_size=384, patch_size=16, hidden_size=384, num_hidden_layers=12,
                           num_attention_heads=6, intermediate_size=1536, qkv_bias=True,
                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    dec = eager(TrOCRConfig(vocab_size=64044, d_model=256, decoder_layers=6, decoder_attention_heads=8,
                            decoder_ffn_dim=1024, activation_function="relu", max_position_embeddings=512,
                            scale_embedding=True, use_learned_position_embeddings=True,
                            layernorm_embedding=True, tie_word_embeddings=False, dropout=0.0,
                            attention_dropout=0.0, activation_dropout=0.0))
    model = VisionEncoderDecoderModel(encoder=DeiTModel(enc, add_pooling_layer=False),
                                      decoder=TrOCRForCausalLM(dec)).eval()
    model.config.decoder_start_token_id = dec.decoder_start_token_id
    model.config.pad_token_id = dec.pad_token_id
    g = torch.Generator().manual_seed(5)
    pixels = torch.randn(1, 3, 384, 384, generator=g)
    labels = ids(1, 9, dec.vocab_size, 6)
    with torch.no_grad():
        o = model(pixel_values=pixels, labels=labels)
    n = save(out, "trocr_small", model, {
        "pixel_values": pixels, "labels": labels.float(),
        "encoder_hidden": o.encoder_last_hidden_state, "logits": o.logits, "loss": o.loss.reshape(1),
    })
    return {"params": n, "decoder_start_token_id": dec.decoder_start_token_id,
            "pad_token_id": dec.pad_token_id}


def main(out):
    os.makedirs(out, exist_ok=True)
    meta = {"name": "text-full", "bert_base": bert(out), "t5_small": t5(out),
            "xlnet_base": xlnet(out), "trocr_small": trocr(out)}
    with open(os.path.join(out, "full.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"full-size text references in {out}: {json.dumps(meta)}")


def default_out():
    env = os.environ.get("UNIDL_TEXT_FULL_REF")
    if env:
        return env
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return str(Path.home() / ".cache/unidl/zoo-ref" / f"text-full-{digest}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "--full":
        sys.exit(__doc__)
    main(sys.argv[2] if len(sys.argv) > 2 else default_out())
