//! torchvision's video state dicts (`.pth` from `torch.save`, or
//! safetensors) into [`VideoResNet`] and [`S3d`], through `unidl-interop`'s
//! reader (no pickle code runs) and mapping rules.
//!
//! | model | unidl module path | torchvision module path |
//! |---|---|---|
//! | ResNet3D | `stem.conv`, `stem.bn`, `stem.conv_t`, `stem.bn_t` | `stem.0`, `stem.1`, `stem.3`, `stem.4` |
//! | ResNet3D (R3D, MC3) | `layer{n}.{b}.conv{k}.conv` | `layer{n}.{b}.conv{k}.0` |
//! | ResNet3D (R(2+1)D) | `layer{n}.{b}.conv{k}.{conv,mid_bn,temporal}` | `layer{n}.{b}.conv{k}.0.{0,1,3}` |
//! | ResNet3D | `layer{n}.{b}.bn{k}`, `layer{n}.{b}.downsample.{conv,bn}`, `fc` | `layer{n}.{b}.conv{k}.1`, `layer{n}.{b}.downsample.{0,1}`, `fc` |
//! | S3D | `stem1`, `stem2`, `stem3` | `features.0`, `features.2`, `features.3` |
//! | S3D | `blocks.{i}` | `features.{j}`, `j` = [`FEATURE_INDEX`](crate::s3d::FEATURE_INDEX)`[i]` |
//! | S3D | `….{spatial,temporal}` (separable convolution) | `….{0,1}` |
//! | S3D | `….branch0`, `….branch1_reduce`, `….branch1`, `….branch3` (same for 2) | `….branch0`, `….branch1.0`, `….branch1.1`, `….branch3.1` |
//! | S3D | `….{conv,bn}` (convolution + batch norm) | `….{0,1}` |
//! | S3D | `classifier` | `classifier.1` |
//!
//! Then PyTorch's defaults: batch norm `weight`/`bias` → `gamma`/`beta`,
//! linear weights transposed, `num_batches_tracked` ignored.

use std::path::Path;

use unidl_interop::{Checkpoint, Framework, MappingRules, Report};
use unidl_tensor::module::ModuleApi;

use crate::{Result, S3d, VideoError, VideoResNet};

fn rules_error(e: unidl_interop::InteropError) -> VideoError {
    VideoError::Weights(e.to_string())
}

/// The renames from torchvision's `VideoResNet` keys to [`VideoResNet`]'s.
pub fn video_resnet_rules() -> Result<MappingRules> {
    let r = MappingRules::new()
        .rename(r"^stem\.0\.", "stem.conv.")
        .and_then(|r| r.rename(r"^stem\.1\.", "stem.bn."))
        .and_then(|r| r.rename(r"^stem\.3\.", "stem.conv_t."))
        .and_then(|r| r.rename(r"^stem\.4\.", "stem.bn_t."))
        // (2+1)D first: conv{k}.0.{0,1,3}
        .and_then(|r| r.rename(r"^(layer\d\.\d+)\.conv(\d)\.0\.0\.", "$1.conv$2.conv."))
        .and_then(|r| r.rename(r"^(layer\d\.\d+)\.conv(\d)\.0\.1\.", "$1.conv$2.mid_bn."))
        .and_then(|r| r.rename(r"^(layer\d\.\d+)\.conv(\d)\.0\.3\.", "$1.conv$2.temporal."))
        .and_then(|r| {
            r.rename(
                r"^(layer\d\.\d+)\.conv(\d)\.0\.(weight|bias)$",
                "$1.conv$2.conv.$3",
            )
        })
        .and_then(|r| r.rename(r"^(layer\d\.\d+)\.conv(\d)\.1\.", "$1.bn$2."))
        .and_then(|r| r.rename(r"^(layer\d\.\d+)\.downsample\.0\.", "$1.downsample.conv."))
        .and_then(|r| r.rename(r"^(layer\d\.\d+)\.downsample\.1\.", "$1.downsample.bn."))
        .map_err(rules_error)?;
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch).map_err(rules_error)?))
}

/// The renames from torchvision's `S3D` keys to [`S3d`]'s.
pub fn s3d_rules() -> Result<MappingRules> {
    let mut r = MappingRules::new();
    let mut add = |pattern: &str, replace: &str| -> Result<()> {
        r = std::mem::take(&mut r)
            .rename(pattern, replace)
            .map_err(rules_error)?;
        Ok(())
    };
    add(r"^classifier\.1\.", "classifier.")?;
    add(r"^features\.0\.", "stem1.")?;
    add(r"^features\.2\.", "stem2.")?;
    add(r"^features\.3\.", "stem3.")?;
    for (i, j) in crate::s3d::FEATURE_INDEX.iter().enumerate() {
        add(&format!(r"^features\.{j}\."), &format!("blocks.{i}."))?;
    }
    add(
        r"^(blocks\.\d+)\.branch([12])\.0\.",
        "$1.branch${2}_reduce.",
    )?;
    add(r"^(blocks\.\d+)\.branch([12])\.1\.", "$1.branch$2.")?;
    add(r"^(blocks\.\d+)\.branch3\.1\.", "$1.branch3.")?;
    // separable convolutions: `.0.`/`.1.` halves, then conv/bn inside each
    add(
        r"^((?:stem[13])|(?:blocks\.\d+\.branch[12]))\.0\.",
        "$1.spatial.",
    )?;
    add(
        r"^((?:stem[13])|(?:blocks\.\d+\.branch[12]))\.1\.",
        "$1.temporal.",
    )?;
    add(r"\.0\.(weight|bias)$", ".conv.$1")?;
    add(
        r"\.1\.(weight|bias|running_mean|running_var|num_batches_tracked)$",
        ".bn.$1",
    )?;
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch).map_err(rules_error)?))
}

/// `torch.save` files (zip or legacy) and safetensors, told apart by content.
fn read(path: &Path) -> Result<Checkpoint> {
    unidl_interop::read_pytorch(path)
        .map_err(|e| VideoError::Weights(format!("{}: {e}", path.display())))
}

fn load<M: ModuleApi>(
    model: M,
    path: &Path,
    rules: MappingRules,
    strict: bool,
) -> Result<(M, Report)> {
    let ckpt = read(path)?;
    unidl_interop::load_into(model, &ckpt, &rules, strict)
        .map_err(|e| VideoError::Weights(format!("{}: {e}", path.display())))
}

/// Loads a torchvision `r3d_18`/`mc3_18`/`r2plus1d_18` state dict. Strict:
/// any missing, unexpected or misshapen key is an error listing them all.
pub fn load_torchvision_video_resnet(
    model: VideoResNet,
    path: &Path,
    strict: bool,
) -> Result<(VideoResNet, Report)> {
    load(model, path, video_resnet_rules()?, strict)
}

/// Loads a torchvision `s3d` state dict (strict as above).
pub fn load_torchvision_s3d(model: S3d, path: &Path, strict: bool) -> Result<(S3d, Report)> {
    load(model, path, s3d_rules()?, strict)
}
