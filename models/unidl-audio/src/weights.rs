//! `torchaudio.models.Conformer` state dicts into [`Conformer`] (and, at
//! the end, r9y9's `wavenet_vocoder.WaveNet` ones into [`WaveNet`]:
//! [`load_wavenet_vocoder`]):
//!
//! | unidl | torchaudio |
//! |---|---|
//! | `layers.{i}` | `conformer_layers.{i}` |
//! | `….ffn{1,2}.{norm,fc1,fc2}` | `….ffn{1,2}.sequential.{0,1,4}` |
//! | `….self_attn.{query,key,value}` | `….self_attn.in_proj_{weight,bias}` (split in three) |
//! | `….self_attn.output` | `….self_attn.out_proj` |
//! | `….conv_module.{pointwise1,depthwise,norm,pointwise2}` | `….conv_module.sequential.{0,2,3,5}` |
//! | `….self_attn.{query,key,value,output}` (relative) | ESPnet's `….self_attn.linear_{q,k,v,out}` |
//! | `….self_attn_pos.{linear_pos,pos_bias_u,pos_bias_v}` (relative) | ESPnet's `….self_attn.{linear_pos,pos_bias_u,pos_bias_v}` |
//!
//! The relative Conformer (`pos_encoding = "relative"`) loads torchaudio's
//! layer keys with ESPnet's `RelPositionMultiHeadedAttention` under
//! `self_attn` (what `tests/reference/gen_conformer_rel.py` writes); the
//! rest of an ESPnet encoder (`encoders.{i}.feed_forward_macaron`, …) is
//! not mapped.
//!
//! The batch/group norm of the convolution module is an enum in unidl
//! (`norm.Batch`/`norm.Group`). Then PyTorch's defaults: norm `weight`/`bias`
//! → `gamma`/`beta`, linear weights transposed, `num_batches_tracked` ignored.
//! An RNN-T's keys are torchaudio's own (`transcriber.…`, `predictor.…`,
//! `joiner.linear`), its blocks under `transcriber.conformer.`.

use std::path::Path;

use unidl_interop::{Checkpoint, Framework, HostData, HostTensor, MappingRules, Report};

use crate::{AudioError, Conformer, Result, Rnnt, WaveNet};

fn rules_error(e: unidl_interop::InteropError) -> AudioError {
    AudioError::Weights(e.to_string())
}

/// The renames from torchaudio's `Conformer` keys (and ESPnet's relative
/// attention keys) to [`Conformer`]'s; `group_norm` says which norm the
/// convolution modules have.
pub fn torchaudio_conformer_rules(group_norm: bool) -> Result<MappingRules> {
    let norm = if group_norm {
        "norm.Group"
    } else {
        "norm.Batch"
    };
    let r = MappingRules::new()
        .rename(r"(^|\.)conformer_layers\.", "${1}layers.")
        .and_then(|r| r.rename(r"\.(ffn[12])\.sequential\.0\.", ".$1.norm."))
        .and_then(|r| r.rename(r"\.(ffn[12])\.sequential\.1\.", ".$1.fc1."))
        .and_then(|r| r.rename(r"\.(ffn[12])\.sequential\.4\.", ".$1.fc2."))
        .and_then(|r| {
            r.rename(
                r"\.conv_module\.sequential\.0\.",
                ".conv_module.pointwise1.",
            )
        })
        .and_then(|r| r.rename(r"\.conv_module\.sequential\.2\.", ".conv_module.depthwise."))
        .and_then(|r| {
            r.rename(
                r"\.conv_module\.sequential\.3\.",
                &format!(".conv_module.{norm}."),
            )
        })
        .and_then(|r| {
            r.rename(
                r"\.conv_module\.sequential\.5\.",
                ".conv_module.pointwise2.",
            )
        })
        // ESPnet's relative attention (`RelPositionMultiHeadedAttention`)
        .and_then(|r| r.rename(r"\.self_attn\.linear_q\.", ".self_attn.query."))
        .and_then(|r| r.rename(r"\.self_attn\.linear_k\.", ".self_attn.key."))
        .and_then(|r| r.rename(r"\.self_attn\.linear_v\.", ".self_attn.value."))
        .and_then(|r| r.rename(r"\.self_attn\.linear_out\.", ".self_attn.output."))
        .and_then(|r| {
            r.rename(
                r"\.self_attn\.(linear_pos\.|pos_bias_u$|pos_bias_v$)",
                ".self_attn_pos.$1",
            )
        })
        .map_err(rules_error)?;
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch).map_err(rules_error)?))
}

/// Loads a torchaudio `Conformer` state dict (`.pt`/`.pth` from
/// `torch.save`, or safetensors) into the model's blocks. Strict: any
/// missing, unexpected or misshapen key is an error listing them all —
/// except the unidl-only parts (front end, input projection, CTC head),
/// which torchaudio's model does not have and which keep their weights.
pub fn load_torchaudio_conformer(
    mut model: Conformer,
    path: &Path,
    strict: bool,
) -> Result<(Conformer, Report)> {
    let group = model.layers.first().is_some_and(|l| {
        matches!(
            l.conv_module.norm,
            crate::conformer::ConvModuleNorm::Group(_)
        )
    });
    // `torch.save` files and safetensors, told apart by content
    let ckpt = unidl_interop::read_pytorch(path)
        .map_err(|e| AudioError::Weights(format!("{}: {e}", path.display())))?;
    let (subsampling, input_proj, ctc_head) = (
        model.subsampling.take(),
        model.input_proj.take(),
        model.ctc_head.take(),
    );
    let (mut model, report) =
        unidl_interop::load_into(model, &ckpt, &torchaudio_conformer_rules(group)?, strict)
            .map_err(|e| AudioError::Weights(format!("{}: {e}", path.display())))?;
    model.subsampling = subsampling;
    model.input_proj = input_proj;
    model.ctc_head = ctc_head;
    Ok((model, report))
}

/// The renames from `wavenet_vocoder.WaveNet`'s keys to [`WaveNet`]'s
/// (after [`fold_weight_norm`]): `last_conv_layers.{1,3}` →
/// `last_conv1`/`last_conv2`, `upsample_conv.{2i}` (the ReLUs between are
/// unnumbered here) → `upsample.{i}`; the other names are the package's.
pub fn wavenet_vocoder_rules(upsample_layers: usize) -> Result<MappingRules> {
    let mut r = MappingRules::new()
        .rename(r"^last_conv_layers\.1\.", "last_conv1.")
        .and_then(|r| r.rename(r"^last_conv_layers\.3\.", "last_conv2."))
        .map_err(rules_error)?;
    for i in 0..upsample_layers {
        r = r
            .rename(
                &format!(r"^upsample_conv\.{}\.", 2 * i),
                &format!("upsample.{i}."),
            )
            .map_err(rules_error)?;
    }
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch).map_err(rules_error)?))
}

/// Folds PyTorch's weight normalisation (`torch.nn.utils.weight_norm`,
/// `dim = 0`) into plain weights: each `X.weight_g` and `X.weight_v` pair
/// becomes `X.weight = g · v / ‖v‖`, the norm over every axis but the
/// first — what `torch.nn.utils.remove_weight_norm` computes. Returns the
/// number of pairs folded; a lone half or mismatched shapes is an error
/// naming the key.
pub fn fold_weight_norm(ckpt: &mut Checkpoint) -> Result<usize> {
    let stems: Vec<String> = ckpt
        .tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".weight_v").map(str::to_string))
        .collect();
    for stem in &stems {
        let (gk, vk) = (format!("{stem}.weight_g"), format!("{stem}.weight_v"));
        let (Some(g), Some(v)) = (ckpt.tensors.remove(&gk), ckpt.tensors.remove(&vk)) else {
            return Err(AudioError::Weights(format!("{vk} without {gk}")));
        };
        let rows = v.shape.first().copied().unwrap_or(0);
        if g.data.len() != rows || rows == 0 {
            return Err(AudioError::Weights(format!(
                "{gk}: shape {:?} does not scale the {rows} rows of {vk} {:?}",
                g.shape, v.shape
            )));
        }
        let (gv, mut vv) = (g.data.to_f32(), v.data.to_f32());
        let per = vv.len() / rows;
        for (row, scale) in vv.chunks_exact_mut(per).zip(&gv) {
            let norm = row
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt();
            let f = (f64::from(*scale) / norm) as f32;
            row.iter_mut().for_each(|x| *x *= f);
        }
        let w = HostTensor::new(v.shape.clone(), HostData::F32(vv), &vk)
            .map_err(|e| AudioError::Weights(e.to_string()))?;
        ckpt.tensors.insert(format!("{stem}.weight"), w);
    }
    if let Some(k) = ckpt.tensors.keys().find(|k| k.ends_with(".weight_g")) {
        return Err(AudioError::Weights(format!("{k} without its weight_v")));
    }
    Ok(stems.len())
}

/// Loads a `wavenet_vocoder.WaveNet` state dict (`.pt`/`.pth` from
/// `torch.save`, or safetensors; weight-normalised or not) into `model`,
/// folding weight normalisation first. Strict: any missing, unexpected or
/// misshapen key is an error listing them all.
pub fn load_wavenet_vocoder(
    model: WaveNet,
    path: &Path,
    strict: bool,
) -> Result<(WaveNet, Report)> {
    let mut ckpt = unidl_interop::read_pytorch(path)
        .map_err(|e| AudioError::Weights(format!("{}: {e}", path.display())))?;
    fold_weight_norm(&mut ckpt)
        .map_err(|e| AudioError::Weights(format!("{}: {e}", path.display())))?;
    let rules = wavenet_vocoder_rules(model.upsample.len())?;
    unidl_interop::load_into(model, &ckpt, &rules, strict)
        .map_err(|e| AudioError::Weights(format!("{}: {e}", path.display())))
}

/// Loads a `torchaudio.models.RNNT` state dict (`.pt`/`.pth` from
/// `torch.save`, or safetensors): strict, or lenient (`strict = false`:
/// what fits loads, the report lists the rest).
pub fn load_torchaudio_rnnt(model: Rnnt, path: &Path, strict: bool) -> Result<(Rnnt, Report)> {
    let group = model
        .transcriber
        .conformer
        .as_ref()
        .and_then(|c| c.layers.first())
        .is_some_and(|l| {
            matches!(
                l.conv_module.norm,
                crate::conformer::ConvModuleNorm::Group(_)
            )
        });
    let ckpt = unidl_interop::read_pytorch(path)
        .map_err(|e| AudioError::Weights(format!("{}: {e}", path.display())))?;
    unidl_interop::load_into(model, &ckpt, &torchaudio_conformer_rules(group)?, strict)
        .map_err(|e| AudioError::Weights(format!("{}: {e}", path.display())))
}
