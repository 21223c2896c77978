#!/usr/bin/env python3
"""Full-size reference values for unidl-audio's models, built by the reduced
generators' own definitions (gen_conformer.py, gen_conformer_rel.py,
gen_rnnt.py, gen_wavenet.py) at the sizes the zoo documents, with seeded
random weights (norms and batch-norm running statistics randomised, the
vocoder's weights perturbed), eval mode, padded batches with per-sample
lengths:

  conformer_s      Conformer-S as a CTC model: the paper's 4x convolutional
                   front end (80 mels), torchaudio 2.9.0's blocks (d 144,
                   4 heads, FFN 576, 16 layers, kernel 31), Linear to 29
                   labels: log-probs and output lengths
  conformer_s_rel  the same with ESPnet's relative positional attention
  rnnt_base        torchaudio's conformer_rnnt_base (80 mels, 29 labels,
                   28,959,773 parameters): joiner logits for targets with a
                   leading blank
  mel_vocoder      wavenet_vocoder 0.1.1's mel vocoder (24 layers, 4 stacks,
                   512/512/256 channels, 80 mels upsampled by [4, 4, 4, 4]),
                   weight-normalised as the package builds it: logits for
                   mu-law class inputs

  <name>.safetensors      state dict (the reduced generators' keys)
  <name>.io.safetensors   inputs, lengths, outputs
  full.json               configs (unidl's keys) and parameter counts

About 250 MB. `.ci/run` writes it to a cache keyed by this script's and the
four generators' hashes; unidl-audio's `tests/full_size.rs` reads it through
UNIDL_AUDIO_FULL_REF.

Usage: gen_audio_full.py --full OUT
Run it with the torch venv: /var/cache/unidl/torch-venv/bin/python.
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_conformer  # noqa: E402
import gen_conformer_rel  # noqa: E402
import gen_rnnt  # noqa: E402
import gen_wavenet  # noqa: E402

CONFORMER_S = dict(num_heads=4, ffn_dim=576, num_layers=16, depthwise_conv_kernel_size=31)


def count(m):
    return sum(p.numel() for p in m.parameters())


def save(out, name, m, io):
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(out / f"{name}.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / f"{name}.io.safetensors"))


def conformer(out, name, ctc_class, seed, extra):
    torch.manual_seed(seed)
    m = ctc_class(80, 144, 29, **CONFORMER_S)
    gen_conformer.randomise(m, seed + 1)
    m.eval()
    x = torch.randn(2, 160, 80)
    lengths = torch.tensor([160, 111])
    with torch.no_grad():
        lp, n = m(x, lengths)
    save(out, name, m, {"input": x, "lengths": lengths, "log_probs": lp, "output_lengths": n})
    config = {
        "input_dim": 80,
        "d_model": 144,
        "num_heads": 4,
        "ffn_dim": 576,
        "num_layers": 16,
        "depthwise_conv_kernel_size": 31,
        "subsampling": True,
        "vocab_size": 29,
        **extra,
    }
    return {"config": config, "params": count(m)}


def rnnt(out, seed):
    cfg = gen_rnnt.BASE
    torch.manual_seed(seed)
    m = gen_rnnt.build(cfg)
    gen_rnnt.randomise(m, seed + 1)
    m.eval()
    x = torch.randn(2, 64, 80)
    lengths = torch.tensor([64, 45])
    targets = torch.tensor([[3, 7, 7, 21], [28, 1, 0, 0]], dtype=torch.int32)
    target_lengths = torch.tensor([4, 2], dtype=torch.int32)
    prepended = torch.cat([torch.zeros(2, 1, dtype=torch.int32), targets], 1)
    with torch.no_grad():
        logits, n, _, _ = m(x, lengths, prepended, target_lengths + 1)
    io = {
        "input": x,
        "lengths": lengths,
        "targets_flat": targets.flatten().long(),
        "target_lengths": target_lengths.long(),
        "logits": logits,
        "output_lengths": n.long(),
    }
    save(out, "rnnt_base", m, io)
    return {"config": cfg, "params": count(m)}


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    meta = {"models": {}}
    meta["models"]["conformer_s"] = conformer(out, "conformer_s", gen_conformer.ConformerCtc, 300, {})
    meta["models"]["conformer_s_rel"] = conformer(
        out, "conformer_s_rel", gen_conformer_rel.ConformerCtc, 310, {"pos_encoding": "relative"}
    )
    meta["models"]["rnnt_base"] = rnnt(out, 320)
    # 3 frames of 256 samples: beyond the 505-sample receptive field's start
    meta["models"]["mel_vocoder"] = gen_wavenet.eval_reference(
        out, "mel_vocoder", gen_wavenet.MEL_VOCODER, 330, 1, 3, None
    )
    (out / "full.json").write_text(json.dumps(meta, indent=1) + "\n")
    print({k: v.get("params") for k, v in meta["models"].items()})


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--full":
        sys.exit(__doc__)
    main(Path(sys.argv[2]))
