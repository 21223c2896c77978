//! `torchaudio.models.Conformer` state dicts into [`Conformer`]:
//!
//! | unidl | torchaudio |
//! |---|---|
//! | `layers.{i}` | `conformer_layers.{i}` |
//! | `….ffn{1,2}.{norm,fc1,fc2}` | `….ffn{1,2}.sequential.{0,1,4}` |
//! | `….self_attn.{query,key,value}` | `….self_attn.in_proj_{weight,bias}` (split in three) |
//! | `….self_attn.output` | `….self_attn.out_proj` |
//! | `….conv_module.{pointwise1,depthwise,norm,pointwise2}` | `….conv_module.sequential.{0,2,3,5}` |
//!
//! The batch/group norm of the convolution module is an enum in unidl
//! (`norm.Batch`/`norm.Group`). Then PyTorch's defaults: norm `weight`/`bias`
//! → `gamma`/`beta`, linear weights transposed, `num_batches_tracked` ignored.

use std::path::Path;

use unidl_interop::{Framework, MappingRules, Report};

use crate::{AudioError, Conformer, Result};

fn rules_error(e: unidl_interop::InteropError) -> AudioError {
    AudioError::Weights(e.to_string())
}

/// The renames from torchaudio's `Conformer` keys to [`Conformer`]'s;
/// `group_norm` says which norm the convolution modules have.
pub fn torchaudio_conformer_rules(group_norm: bool) -> Result<MappingRules> {
    let norm = if group_norm {
        "norm.Group"
    } else {
        "norm.Batch"
    };
    let r = MappingRules::new()
        .rename(r"^conformer_layers\.", "layers.")
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
