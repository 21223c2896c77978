"""How fast a from-scratch TrOCR of configs/trocr_text_lines.toml's size
learns in PyTorch/transformers 5.23.0 (D52): 256 text lines, batch 32,
320 AdamW steps (warm-up 40, cosine), label smoothing 0.1; prints the
training loss every 40 steps. unidl's run of the same probe (a
`unidl train` config on the same 256 lines) ended at the same loss as
this one at lr 3e-4 (2.74 vs 2.71), so the slow start is the recipe's,
not the implementation's.

    probe_trocr_lr.py MANIFEST [LR]
MANIFEST: a text-lines `.jsonl` with absolute image paths (its first 256
rows are used), e.g. `head -256` of `unidl data text-lines`' train.jsonl
with `images/` made absolute. Needs pillow in the torch venv.
"""
import json, math, random, sys
import numpy as np, torch
from PIL import Image
from transformers import ViTConfig, ViTModel, TrOCRConfig, TrOCRForCausalLM, VisionEncoderDecoderModel
torch.manual_seed(1); random.seed(1); torch.set_num_threads(1)
rows = [json.loads(l) for l in open(sys.argv[1])][:256]
px = torch.tensor(np.stack([np.asarray(Image.open(r['path']).convert('L'), dtype=np.float32) / 255.0 for r in rows]))[:, None]
px = (px - 0.5) / 0.5
def ids(t): return [b + 5 for b in t.encode()][:63]
enc = ViTConfig(image_size=[32, 384], patch_size=16, num_channels=1, hidden_size=256, num_hidden_layers=4,
                num_attention_heads=8, intermediate_size=1024, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
dec = TrOCRConfig(vocab_size=261, d_model=256, decoder_layers=3, decoder_attention_heads=8, decoder_ffn_dim=1024,
                  activation_function="relu", max_position_embeddings=64, scale_embedding=True,
                  use_learned_position_embeddings=True, layernorm_embedding=True, tie_word_embeddings=False,
                  dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, pad_token_id=0, bos_token_id=2,
                  eos_token_id=3, decoder_start_token_id=2)
model = VisionEncoderDecoderModel(encoder=ViTModel(enc, add_pooling_layer=False), decoder=TrOCRForCausalLM(dec))
model.config.decoder_start_token_id = 2; model.config.pad_token_id = 0
lr = float(sys.argv[2]) if len(sys.argv) > 2 else 3e-4
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
total, warm = 320, 40
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
step = 0
model.train()
while step < total:
    order = list(range(len(rows))); random.shuffle(order)
    for i in range(0, len(order), 32):
        b = order[i:i + 32]
        ys = [ids(rows[j]['text']) + [3] for j in b]
        L = max(map(len, ys))
        labels = torch.tensor([y + [-100] * (L - len(y)) for y in ys])
        out = model(pixel_values=px[b], labels=labels)
        logits = out.logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 261), labels.reshape(-1), ignore_index=-100, label_smoothing=0.1)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step(); step += 1
        if step % 40 == 0:
            print(step, round(loss.item(), 4), flush=True)
        if step >= total:
            break
