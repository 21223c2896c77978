#!/usr/bin/env python3
"""Reference values for unidl-text's TrOCR (`tests/trocr.rs`).

transformers 5.23.0 on torch 2.9.0 (the torch venv).

    python gen_trocr.py [OUT]   reduced random model (committed: tests/reference/trocr/)

A reduced `VisionEncoderDecoderModel` (ViT encoder on non-square 16x32
images, patch 4, hidden 32, 2 layers, 4 heads; `TrOCRForCausalLM` decoder,
vocabulary 60, d_model 24 so that `enc_to_dec_proj` exists, 2 layers, 4
heads, ffn 48, learned positions, layernorm_embedding, scaled embedding,
its own output projection) with seeded weights, random layer norms, dropout
0, eval mode. Saved: the state dict (`transformers`' names, the encoder's
unused pooler left out), the inputs (pixel values, labels with -100), the
encoder's last hidden state, the logits, the loss and a few gradients.
A second case, `trocr_deit`: a DeiT encoder (distillation token, hidden
16, 1 layer), sinusoidal positions over padded decoder inputs, GELU, a tied
output projection, `cross_attention_hidden_size` = 16 (no projection).
Also the parameter count of TrOCR-small (`microsoft/trocr-small-printed`'s
architecture, built from configs, random init, nothing downloaded):
DeiT-small 384x384 encoder and a 6-layer d_model-256 decoder, untied
output projection, the encoder's pooler left out (unused by TrOCR).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import (
    DeiTConfig,
    TrOCRConfig,
    TrOCRForCausalLM,
    ViTConfig,
    ViTModel,
    DeiTModel,
    VisionEncoderDecoderModel,
)

HERE = os.path.dirname(os.path.abspath(__file__))

ENCODER = dict(
    image_size=[16, 32],
    patch_size=4,
    num_channels=3,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
    qkv_bias=True,
)
DECODER = dict(
    vocab_size=60,
    d_model=24,
    decoder_layers=2,
    decoder_attention_heads=4,
    decoder_ffn_dim=48,
    activation_function="relu",
    max_position_embeddings=40,
    scale_embedding=True,
    use_learned_position_embeddings=True,
    layernorm_embedding=True,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    decoder_start_token_id=2,
)
GRADS = [
    "encoder.embeddings.patch_embeddings.projection.weight",
    "encoder.embeddings.cls_token",
    "encoder.embeddings.position_embeddings",
    "encoder.layers.0.attention.q_proj.weight",
    "encoder.layers.1.layernorm_before.weight",
    "encoder.layernorm.weight",
    "enc_to_dec_proj.weight",
    "decoder.model.decoder.embed_tokens.weight",
    "decoder.model.decoder.embed_positions.weight",
    "decoder.model.decoder.layers.0.encoder_attn.k_proj.weight",
    "decoder.model.decoder.layers.1.fc1.weight",
    "decoder.model.decoder.layers.1.final_layer_norm.weight",
    "decoder.output_projection.weight",
]


def contiguous(state):
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def zero_dropout(cfg):
    for k in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout", "activation_dropout"):
        if hasattr(cfg, k):
            setattr(cfg, k, 0.0)


def reduced(out):
    torch.manual_seed(5)
    enc_cfg = ViTConfig(**ENCODER, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    dec_cfg = TrOCRConfig(**DECODER, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                          tie_word_embeddings=False)
    enc_cfg._attn_implementation = "eager"
    dec_cfg._attn_implementation = "eager"
    model = VisionEncoderDecoderModel(encoder=ViTModel(enc_cfg), decoder=TrOCRForCausalLM(dec_cfg))
    model.config.decoder_start_token_id = DECODER["decoder_start_token_id"]
    model.config.pad_token_id = DECODER["pad_token_id"]
    dec = model.decoder
    if dec.output_projection.weight is dec.model.decoder.embed_tokens.weight:
        dec.output_projection.weight = torch.nn.Parameter(torch.randn(60, 24) * 0.1)
    with torch.no_grad():
        for k, p in model.named_parameters():
            if "norm" in k and k.endswith("weight"):
                p.copy_(torch.rand_like(p) * 0.5 + 0.75)
            elif "norm" in k and k.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.1)
            elif k.endswith("cls_token") or k.endswith("position_embeddings"):
                p.copy_(torch.randn_like(p) * 0.5)
    model.eval()
    pixels = torch.randn(2, 3, 16, 32)
    labels = torch.tensor([[12, 40, 3, 57, 2, -100, -100], [6, 6, 30, 14, 51, 9, 2]])
    o = model(pixel_values=pixels, labels=labels)
    o.loss.backward()
    named = dict(model.named_parameters())
    assert all(k in named for k in GRADS), [k for k in GRADS if k not in named]
    grads = {f"grad.{k}": named[k].grad for k in GRADS}
    # the encoder's pooler is unused by TrOCR (the loader ignores it): left out, to keep the file small
    state = contiguous({k: v for k, v in model.state_dict().items() if ".pooler." not in k})
    save_file(state, os.path.join(out, "trocr.safetensors"))
    io = {
        "pixel_values": pixels,
        "labels": labels.float(),
        "encoder_hidden": o.encoder_last_hidden_state,
        "logits": o.logits,
        "loss": o.loss.reshape(1),
        **grads,
    }
    save_file(contiguous(io), os.path.join(out, "trocr.io.safetensors"))
    return {
        "encoder": {**ENCODER, "image_size": ENCODER["image_size"]},
        "decoder": {**DECODER, "tie_word_embeddings": False},
    }


def deit_case(out):
    """DeiT encoder (distillation token), sinusoidal positions, tied output
    projection, GELU, cross-attention reading the encoder's width
    (`cross_attention_hidden_size`, no `enc_to_dec_proj`), padded labels."""
    torch.manual_seed(6)
    enc = {**ENCODER, "hidden_size": 16, "num_hidden_layers": 1, "intermediate_size": 20}
    dec = {**DECODER, "decoder_layers": 1, "activation_function": "gelu",
           "use_learned_position_embeddings": False, "scale_embedding": False,
           "cross_attention_hidden_size": 16}
    enc_cfg = DeiTConfig(**enc, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    dec_cfg = TrOCRConfig(**dec, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                          tie_word_embeddings=True)
    enc_cfg._attn_implementation = "eager"
    dec_cfg._attn_implementation = "eager"
    model = VisionEncoderDecoderModel(encoder=DeiTModel(enc_cfg, add_pooling_layer=False),
                                      decoder=TrOCRForCausalLM(dec_cfg))
    model.config.decoder_start_token_id = DECODER["decoder_start_token_id"]
    model.config.pad_token_id = DECODER["pad_token_id"]
    d = model.decoder
    assert d.output_projection.weight is d.model.decoder.embed_tokens.weight
    assert not hasattr(model, "enc_to_dec_proj") or model.enc_to_dec_proj is None
    with torch.no_grad():
        for k, p in model.named_parameters():
            if "norm" in k and k.endswith("weight"):
                p.copy_(torch.rand_like(p) * 0.5 + 0.75)
            elif k.endswith("_token") or k.endswith("position_embeddings"):
                p.copy_(torch.randn_like(p) * 0.5)
    model.eval()
    pixels = torch.randn(2, 3, 16, 32)
    labels = torch.tensor([[12, 40, 3, 2, -100, -100], [6, 6, 30, 14, 51, 2]])
    o = model(pixel_values=pixels, labels=labels)
    o.loss.backward()
    state = contiguous(model.state_dict())
    save_file(state, os.path.join(out, "trocr_deit.safetensors"))
    io = {
        "pixel_values": pixels,
        "labels": labels.float(),
        "encoder_hidden": o.encoder_last_hidden_state,
        "logits": o.logits,
        "loss": o.loss.reshape(1),
        "grad.encoder.embeddings.distillation_token": model.encoder.embeddings.distillation_token.grad,
        "grad.decoder.model.decoder.embed_tokens.weight": d.model.decoder.embed_tokens.weight.grad,
        "grad.decoder.model.decoder.layers.0.encoder_attn.k_proj.weight":
            d.model.decoder.layers[0].encoder_attn.k_proj.weight.grad,
    }
    save_file(contiguous(io), os.path.join(out, "trocr_deit.io.safetensors"))
    return {"encoder": {**enc, "distillation_token": True}, "decoder": {**dec, "tie_word_embeddings": True}}


def small_params():
    enc = DeiTConfig(image_size=384, patch_size=16, hidden_size=384, num_hidden_layers=12,
                     num_attention_heads=6, intermediate_size=1536, qkv_bias=True)
    dec = TrOCRConfig(vocab_size=64044, d_model=256, decoder_layers=6, decoder_attention_heads=8,
                      decoder_ffn_dim=1024, activation_function="relu", max_position_embeddings=512,
                      scale_embedding=True, use_learned_position_embeddings=True,
                      layernorm_embedding=True, tie_word_embeddings=False)
    model = VisionEncoderDecoderModel(encoder=DeiTModel(enc, add_pooling_layer=False),
                                      decoder=TrOCRForCausalLM(dec))
    d = model.decoder
    assert d.output_projection.weight is not d.model.decoder.embed_tokens.weight
    return sum(p.numel() for p in model.parameters())


def main(out):
    os.makedirs(out, exist_ok=True)
    config = reduced(out)
    small = small_params()
    deit = deit_case(out)
    meta = {"name": "trocr", "config": config, "deit_config": deit, "grads": GRADS, "trocr_small_params": small}
    with open(os.path.join(out, "trocr.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"reduced TrOCR references in {out}; TrOCR-small parameters {small}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "trocr"))
