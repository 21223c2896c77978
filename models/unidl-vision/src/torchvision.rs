//! Loading torchvision state dicts (safetensors) into the zoo's models.
//!
//! torchvision checkpoints are PyTorch `state_dict`s. [`load_torchvision`]
//! reads them as torchvision publishes them (`torch.save` zip files such as
//! `resnet18-f37072fd.pth`, legacy `torch.save` pickles) or as safetensors,
//! through `unidl-interop`'s PyTorch reader, which never executes pickle code
//! (only tensors, containers and the `OrderedDict` of a state dict are
//! understood). No weights are downloaded: a user's pretrained torchvision
//! checkpoint at a path is the supported route.
//!
//! ## Key mapping
//!
//! Every unidl key is `module path` + `.` + `leaf`. The leaf is renamed
//! (Burn's batch norm calls γ/β `gamma`/`beta`, PyTorch `weight`/`bias';
//! `running_mean`, `running_var`, `weight`, `bias` are kept) and the module
//! path is renamed per model ([`TorchvisionNames::torchvision_path`]):
//!
//! | model | unidl module path | torchvision module path |
//! |-------|-------------------|-------------------------|
//! | ResNet | `conv1`, `bn1`, `layer{n}.{b}.conv{k}`, `layer{n}.{b}.bn{k}`, `fc` | same |
//! | ResNet | `layer{n}.{b}.downsample.conv` / `.bn` | `layer{n}.{b}.downsample.0` / `.1` |
//! | VGG | `features.{k}.conv` / `.bn` (k-th convolution) | `features.{i}` / `features.{i+1}`, `i` = its index in torchvision's `features` sequence (ReLU and max-pool layers counted) |
//! | VGG | `fc1`, `fc2`, `fc3` | `classifier.0`, `classifier.3`, `classifier.6` |
//! | EfficientNet | `stem.conv` / `stem.bn` | `features.0.0` / `features.0.1` |
//! | EfficientNet | `stages.{s}.{b}.expand.{conv,bn}` | `features.{s+1}.{b}.block.0.{0,1}` |
//! | EfficientNet | `stages.{s}.{b}.depthwise.{conv,bn}` | `features.{s+1}.{b}.block.{e}.{0,1}`, `e` = 1 with an expansion conv, else 0 |
//! | EfficientNet | `stages.{s}.{b}.se.fc1` / `.fc2` | `features.{s+1}.{b}.block.{e+1}.fc1` / `.fc2` |
//! | EfficientNet | `stages.{s}.{b}.project.{conv,bn}` | `features.{s+1}.{b}.block.{e+2}.{0,1}` |
//! | EfficientNet | `head.{conv,bn}` | `features.8.{0,1}` |
//! | EfficientNet | `classifier` | `classifier.1` |
//! | ResNet body (detection backbone alone) | as ResNet's, no `fc` | same (a classification state dict's `fc.*` is reported unused) |
//! | DeepLabv3 | `backbone.*` | same, shortcut as ResNet's |
//! | DeepLabv3 | `classifier.aspp.convs.{i}.{conv,bn}`, `classifier.aspp.pooling.{conv,bn}`, `classifier.aspp.project.{conv,bn}` | `classifier.0.convs.{i}.{0,1}`, `classifier.0.convs.{R+1}.{1,2}`, `classifier.0.project.{0,1}` |
//! | DeepLabv3 | `classifier.conv.{conv,bn}`, `classifier.out`; `aux_classifier.conv.{conv,bn}`, `aux_classifier.out` | `classifier.{1,2}`, `classifier.4`; `aux_classifier.{0,1}`, `aux_classifier.4` |
//! | RetinaNet | `backbone.body.*` | same, shortcut as ResNet's (`downsample.0` / `.1`) |
//! | RetinaNet | `backbone.fpn.inner_blocks.{i}`, `backbone.fpn.layer_blocks.{i}` | `… .{i}.0` |
//! | RetinaNet | `backbone.fpn.extra_blocks.p6` / `.p7` | same |
//! | RetinaNet | `head.{classification,regression}_head.conv.{i}` | `… .conv.{i}.0` |
//! | RetinaNet | `head.{classification,regression}_head.norm.{i}` (`head_norm = "group"`) | `… .conv.{i}.1` |
//! | RetinaNet | `head.classification_head.cls_logits`, `head.regression_head.bbox_reg` | same |
//! | Faster R-CNN | `backbone.*` | as RetinaNet's (`body`, `fpn.inner_blocks.{i}.0`, `fpn.layer_blocks.{i}.0`) |
//! | Faster R-CNN | `rpn.head.conv` | `rpn.head.conv.0.0` (torchvision's COCO v1 file has the older `rpn.head.conv`, read too) |
//! | SSD | `backbone.features.{k}` (k-th VGG convolution up to `conv4_3`) | `backbone.features.{i}`, `i` its index in `vgg16().features` |
//! | SSD | `backbone.conv5.{j}`, `backbone.fc6`, `backbone.fc7` | `backbone.extra.0.{1,3,5}`, `backbone.extra.0.7.1`, `backbone.extra.0.7.3` |
//! | SSD | `backbone.extra.{k}.conv1` / `.conv2` | `backbone.extra.{k+1}.0` / `.2` |
//! | SSD | `head.{classification,regression}_head.{l}` | `… .module_list.{l}` |
//! | YOLOv8 (ultralytics names) | `m{i}.…`, `m22.cv{2,3}.{l}.c{0,1,2}`, `m22.dfl` | `model.{i}.…`, `model.22.cv{2,3}.{l}.{0,1,2}`, `model.22.dfl.conv` |
//! | Faster R-CNN | `rpn.head.{cls_logits,bbox_pred}`, `roi_heads.box_head.{fc6,fc7}`, `roi_heads.box_predictor.{cls_score,bbox_pred}` | same |
//! | Mask R-CNN | `roi_heads.mask_head.layers.{i}` | `roi_heads.mask_head.{i}.0` (the COCO file's older `mask_fcn{i+1}` read too) |
//! | Mask R-CNN | `roi_heads.mask_predictor.{conv5_mask,mask_fcn_logits}` | same |
//! | HRNet (timm names) | `transition{n}.{i}.same.{conv,bn}` | `transition{n}.{i}.{0,1}` |
//! | HRNet (timm names) | `transition{n}.{i}.down.links.{k}.{conv,bn}` | `transition{n}.{i}.{k}.{0,1}` |
//! | HRNet (timm names) | `stage{n}.{m}.fuse_layers.{i}.{j}.up.{conv,bn}` | `stage{n}.{m}.fuse_layers.{i}.{j}.{0,1}` |
//! | HRNet (timm names) | `stage{n}.{m}.fuse_layers.{i}.{j}.down.links.{k}.{conv,bn}` | `stage{n}.{m}.fuse_layers.{i}.{j}.{k}.{0,1}` |
//! | HRNet (timm names) | `conv1`, `bn1`, `conv2`, `bn2`, `layer1.*`, `stage{n}.{m}.branches.*`, `final_layer` | same, shortcut as ResNet's |
//! | PFLD (`gen_pfld.py`'s definition) | every path | same |
//!
//! [`FrozenBatchNorm2d`](crate::detection::FrozenBatchNorm2d) keeps
//! torchvision's leaf names (`weight`, `bias`, `running_mean`,
//! `running_var`). Tensor layouts: convolution weights are `[out, in/groups, kh, kw]` in
//! both; **linear weights are transposed** (Burn stores `[in, out]`, PyTorch
//! `[out, in]`; in these models every rank-2 `weight` is a linear layer's).
//! `num_batches_tracked` has no counterpart and is skipped.

use std::collections::BTreeSet;
use std::path::Path;

use unidl_backend::Device;
use unidl_tensor::module::{LoadReport, ModuleApi, StateDict};

use crate::classification::{EfficientNet, ResNet, Vgg};
use crate::detection::{FasterRcnn, ResNetBody, RetinaNet, Ssd, YoloV8};
use crate::error::{Result, VisionError};
use crate::keypoints::{HrNet, Pfld};
use crate::segmentation::DeepLabV3;

/// A model whose parameters have torchvision counterparts.
pub trait TorchvisionNames: ModuleApi {
    /// torchvision's module path for a unidl module path (without the
    /// parameter's leaf name); `None` when it has no counterpart.
    fn torchvision_path(&self, path: &str) -> Option<String>;

    /// torchvision's full key for a unidl parameter or buffer key.
    fn torchvision_key(&self, key: &str) -> Option<String> {
        let (path, leaf) = key.rsplit_once('.')?;
        let leaf = match leaf {
            "gamma" => "weight",
            "beta" => "bias",
            l => l,
        };
        Some(format!("{}.{leaf}", self.torchvision_path(path)?))
    }

    /// An older spelling of torchvision key `key` that torchvision's own
    /// `_load_from_state_dict` still accepts (published checkpoints predate
    /// some renames); read when `key` itself is absent.
    fn legacy_key(&self, _key: &str) -> Option<String> {
        None
    }
}

/// ResNet's shortcut: `downsample.conv`/`.bn` are torchvision's
/// `downsample.0`/`.1`.
fn resnet_path(path: &str) -> String {
    path.replace(".downsample.conv", ".downsample.0")
        .replace(".downsample.bn", ".downsample.1")
}

impl TorchvisionNames for ResNet {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        Some(resnet_path(path))
    }
}

/// A detection backbone's body on its own: torchvision's ResNet keys
/// without `fc` (a classification ResNet's state dict, or a detector's
/// `backbone.body.*` with the prefix removed).
impl TorchvisionNames for ResNetBody {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        Some(resnet_path(path))
    }
}

/// A detector's backbone: the ResNet body's shortcut as ResNet's, the FPN's
/// `Conv2dNormActivation` sequences (`.0`); `None` outside the backbone.
fn detection_backbone_path(path: &str) -> Option<String> {
    if path.starts_with("backbone.body.") {
        return Some(resnet_path(path));
    }
    for seq in ["backbone.fpn.inner_blocks.", "backbone.fpn.layer_blocks."] {
        if path
            .strip_prefix(seq)
            .is_some_and(|i| i.parse::<usize>().is_ok())
        {
            return Some(format!("{path}.0"));
        }
    }
    None
}

/// DeepLabv3 (`deeplabv3_resnet50`): the body as ResNet's, the heads'
/// `ConvBn` pairs at their `nn.Sequential` indices.
impl TorchvisionNames for DeepLabV3 {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        if path.starts_with("backbone.") {
            return Some(resnet_path(path));
        }
        let pair = |leaf: &str, conv: usize| -> Option<usize> {
            match leaf {
                "conv" => Some(conv),
                "bn" => Some(conv + 1),
                _ => None,
            }
        };
        if let Some(rest) = path.strip_prefix("classifier.aspp.convs.") {
            let (i, leaf) = rest.split_once('.')?;
            let i: usize = i.parse().ok()?;
            return Some(format!("classifier.0.convs.{i}.{}", pair(leaf, 0)?));
        }
        if let Some(leaf) = path.strip_prefix("classifier.aspp.pooling.") {
            let n = self.classifier.aspp.convs.len();
            return Some(format!("classifier.0.convs.{n}.{}", pair(leaf, 1)?));
        }
        if let Some(leaf) = path.strip_prefix("classifier.aspp.project.") {
            return Some(format!("classifier.0.project.{}", pair(leaf, 0)?));
        }
        if let Some(leaf) = path.strip_prefix("classifier.conv.") {
            return Some(format!("classifier.{}", pair(leaf, 1)?));
        }
        if path == "classifier.out" {
            return Some("classifier.4".into());
        }
        if let Some(leaf) = path.strip_prefix("aux_classifier.conv.") {
            return Some(format!("aux_classifier.{}", pair(leaf, 0)?));
        }
        if path == "aux_classifier.out" {
            return Some("aux_classifier.4".into());
        }
        None
    }
}

impl TorchvisionNames for RetinaNet {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        if let Some(p) = detection_backbone_path(path) {
            return Some(p);
        }
        // `Conv2dNormActivation` wraps each convolution in a sequence: `.0`
        for seq in [
            "head.classification_head.conv.",
            "head.regression_head.conv.",
        ] {
            if path
                .strip_prefix(seq)
                .is_some_and(|i| i.parse::<usize>().is_ok())
            {
                return Some(format!("{path}.0"));
            }
        }
        // the v2 head's GroupNorm after each convolution: `.1`
        for (ours, theirs) in [
            (
                "head.classification_head.norm.",
                "head.classification_head.conv.",
            ),
            ("head.regression_head.norm.", "head.regression_head.conv."),
        ] {
            if let Some(i) = path
                .strip_prefix(ours)
                .filter(|i| i.parse::<usize>().is_ok())
            {
                return Some(format!("{theirs}{i}.1"));
            }
        }
        Some(path.to_string())
    }
}

impl TorchvisionNames for FasterRcnn {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        if let Some(p) = detection_backbone_path(path) {
            return Some(p);
        }
        // the RPN's one-convolution sequence of `Conv2dNormActivation`s
        if path == "rpn.head.conv" {
            return Some("rpn.head.conv.0.0".into());
        }
        // Mask R-CNN's `MaskRCNNHeads`: a sequence of `Conv2dNormActivation`s
        if let Some(i) = path.strip_prefix("roi_heads.mask_head.layers.") {
            return Some(format!("roi_heads.mask_head.{i}.0"));
        }
        Some(path.to_string())
    }

    /// `RPNHead` before its version 2 (torchvision's COCO v1 checkpoints)
    /// named its convolution `rpn.head.conv`, and `MaskRCNNHeads` before
    /// its version 2 named its convolutions `mask_fcn1`…`mask_fcnN`.
    fn legacy_key(&self, key: &str) -> Option<String> {
        if let Some(leaf) = key.strip_prefix("rpn.head.conv.0.0.") {
            return Some(format!("rpn.head.conv.{leaf}"));
        }
        let rest = key.strip_prefix("roi_heads.mask_head.")?;
        let (i, leaf) = rest.split_once(".0.")?;
        let i: usize = i.parse().ok()?;
        Some(format!("roi_heads.mask_head.mask_fcn{}.{leaf}", i + 1))
    }
}

/// HRNet under timm's names: the `Sequential` indices of transitions and
/// fusion paths (`.{k}.0` convolution, `.{k}.1` norm).
impl TorchvisionNames for HrNet {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        let path = resnet_path(path);
        let path = path
            .replace(".same.conv", ".0")
            .replace(".same.bn", ".1")
            .replace(".up.conv", ".0")
            .replace(".up.bn", ".1");
        Some(match path.split_once(".down.links.") {
            Some((head, rest)) => {
                let rest = rest.replace(".conv", ".0").replace(".bn", ".1");
                format!("{head}.{rest}")
            }
            None => path,
        })
    }
}

/// PFLD: the reference definition (`gen_pfld.py`) uses unidl's names.
impl TorchvisionNames for Pfld {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        Some(path.to_string())
    }
}

impl TorchvisionNames for Ssd {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        use crate::detection::ssd::VGG_FEATURE_INDEX;
        let index = |rest: &str| rest.parse::<usize>().ok();
        if let Some(k) = path.strip_prefix("backbone.features.").and_then(index) {
            return Some(format!("backbone.features.{}", VGG_FEATURE_INDEX.get(k)?));
        }
        if let Some(j) = path.strip_prefix("backbone.conv5.").and_then(index) {
            return Some(format!("backbone.extra.0.{}", 1 + 2 * j));
        }
        match path {
            "backbone.fc6" => return Some("backbone.extra.0.7.1".into()),
            "backbone.fc7" => return Some("backbone.extra.0.7.3".into()),
            _ => {}
        }
        if let Some((k, conv)) = path
            .strip_prefix("backbone.extra.")
            .and_then(|r| r.split_once('.'))
        {
            let k = index(k)?;
            let j = match conv {
                "conv1" => 0,
                "conv2" => 2,
                _ => return None,
            };
            return Some(format!("backbone.extra.{}.{j}", k + 1));
        }
        for head in ["head.classification_head.", "head.regression_head."] {
            if let Some(l) = path.strip_prefix(head).and_then(index) {
                return Some(format!("{head}module_list.{l}"));
            }
        }
        Some(path.to_string())
    }
}

/// ultralytics' names: `m{i}` is `model.{i}`; the head's branches number
/// their layers (`c0`, `c1`, `c2` ↔ `0`, `1`, `2`); the DFL projection is
/// `dfl.conv`.
impl TorchvisionNames for YoloV8 {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix('m')?;
        let (index, tail) = rest.split_once('.').unwrap_or((rest, ""));
        index.parse::<usize>().ok()?;
        let tail = match tail {
            "dfl" => "dfl.conv".to_string(),
            t => t
                .split('.')
                .map(|seg| match seg {
                    "c0" => "0",
                    "c1" => "1",
                    "c2" => "2",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("."),
        };
        Some(if tail.is_empty() {
            format!("model.{index}")
        } else {
            format!("model.{index}.{tail}")
        })
    }
}

impl TorchvisionNames for Vgg {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        match path {
            "fc1" => return Some("classifier.0".into()),
            "fc2" => return Some("classifier.3".into()),
            "fc3" => return Some("classifier.6".into()),
            _ => {}
        }
        let rest = path.strip_prefix("features.")?;
        let (k, part) = rest.split_once('.')?;
        let k: usize = k.parse().ok()?;
        // torchvision's sequence: conv, [bn], relu per convolution, then maxpool.
        let mut i = 0;
        for f in self.features.iter().take(k) {
            i += if f.bn.is_some() { 3 } else { 2 } + usize::from(f.pool);
        }
        match part {
            "conv" => Some(format!("features.{i}")),
            "bn" => Some(format!("features.{}", i + 1)),
            _ => None,
        }
    }
}

impl TorchvisionNames for EfficientNet {
    fn torchvision_path(&self, path: &str) -> Option<String> {
        let cbn = |p: &str| match p {
            "conv" => Some("0"),
            "bn" => Some("1"),
            _ => None,
        };
        if let Some(p) = path.strip_prefix("stem.") {
            return Some(format!("features.0.{}", cbn(p)?));
        }
        if let Some(p) = path.strip_prefix("head.") {
            return Some(format!("features.{}.{}", self.stages.len() + 1, cbn(p)?));
        }
        if path == "classifier" {
            return Some("classifier.1".into());
        }
        let rest = path.strip_prefix("stages.")?;
        let mut it = rest.splitn(4, '.');
        let s: usize = it.next()?.parse().ok()?;
        let b: usize = it.next()?.parse().ok()?;
        let part = it.next()?;
        let leaf = it.next()?;
        let e = usize::from(self.stages.get(s)?.get(b)?.expand.is_some());
        let (j, sub) = match part {
            "expand" => (0, cbn(leaf)?),
            "depthwise" => (e, cbn(leaf)?),
            "se" => (e + 1, leaf),
            "project" => (e + 2, cbn(leaf)?),
            _ => return None,
        };
        Some(format!("features.{}.{b}.block.{j}.{sub}", s + 1))
    }
}

/// Matches a torchvision state dict against the model: returns the tensors
/// renamed to unidl keys (linear weights transposed) and a report in
/// torchvision's key names.
pub fn map_torchvision_state<M: TorchvisionNames>(
    model: &M,
    source: &StateDict,
) -> Result<(StateDict, LoadReport)> {
    let own = model.state_dict();
    let mut report = LoadReport::default();
    let mut usable = StateDict::new();
    let mut used = BTreeSet::new();
    for (k, t) in &own {
        let Some(tk) = model.torchvision_key(k) else {
            report.missing.push(k.clone());
            continue;
        };
        let found = match source.get(&tk) {
            Some(g) => Some((tk.clone(), g)),
            None => model
                .legacy_key(&tk)
                .and_then(|old| source.get(&old).map(|g| (old, g))),
        };
        let Some((tk, g)) = found else {
            report.missing.push(tk);
            continue;
        };
        used.insert(tk.clone());
        let g = if t.shape().len() == 2 && k.ends_with(".weight") && g.shape().len() == 2 {
            g.transpose(0, 1)?
        } else {
            g.clone()
        };
        if g.shape() != t.shape() {
            report
                .shape_mismatch
                .push((tk, t.shape().to_vec(), g.shape().to_vec()));
            continue;
        }
        report.loaded.push(tk);
        usable.insert(k.clone(), g);
    }
    report.unexpected = source
        .keys()
        .filter(|k| !used.contains(*k) && !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    Ok((usable, report))
}

/// Loads a torchvision state dict (`.pth`/`.pt` from `torch.save`, or
/// safetensors) from `path`, **strictly**: a
/// missing, unexpected or misshapen key is [`VisionError::Mismatch`] listing
/// all of them in torchvision's names. Returns the model and the report.
///
/// ```no_run
/// use unidl_vision::classification::ResNetConfig;
/// use unidl_vision::torchvision::load_torchvision;
/// let device = unidl_backend::Device::flex();
/// let model = ResNetConfig::new(50).init(&device)?;
/// // torch.save(torchvision.models.resnet50(weights=…).state_dict(), "resnet50.pth")
/// let (model, report) = load_torchvision(model, "resnet50.pth".as_ref(), &device)?;
/// println!("{report}");
/// # Ok::<(), unidl_vision::VisionError>(())
/// ```
pub fn load_torchvision<M: TorchvisionNames>(
    model: M,
    path: &Path,
    device: &Device,
) -> Result<(M, LoadReport)> {
    let (model, report) = load_torchvision_lenient(model, path, device)?;
    if !report.is_clean() {
        return Err(VisionError::Mismatch {
            path: path.to_path_buf(),
            report,
        });
    }
    Ok((model, report))
}

/// Like [`load_torchvision`] but loads whatever matches (PyTorch's
/// `strict=False`, e.g. a checkpoint with a different classifier) and
/// returns the report of the rest.
pub fn load_torchvision_lenient<M: TorchvisionNames>(
    model: M,
    path: &Path,
    device: &Device,
) -> Result<(M, LoadReport)> {
    let source = read_torch_state(path, device)?;
    let (usable, report) = map_torchvision_state(&model, &source)?;
    let (model, _) = model.load_state_dict_lenient(&usable)?;
    Ok((model, report))
}

/// Reads a PyTorch state dict in any format `unidl-interop` knows (zip or
/// legacy `torch.save`, safetensors) onto `device`, by PyTorch's key names.
pub fn read_torch_state(path: &Path, device: &Device) -> Result<StateDict> {
    let ckpt = unidl_interop::read_pytorch(path)?;
    let mut out = StateDict::new();
    for (k, t) in &ckpt.tensors {
        out.insert(k.clone(), t.to_tensor(device)?);
    }
    Ok(out)
}
