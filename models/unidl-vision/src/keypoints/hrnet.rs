//! # HRNet (Sun et al., 2019, "Deep High-Resolution Representation Learning for Human Pose Estimation", arXiv:1902.09212)
//!
//! The top-down pose network: a stem of two stride-2 3×3 convolutions, a
//! stage of bottleneck blocks, then three stages of high-resolution
//! modules — parallel branches at strides 4, 8, 16 and 32 (widths `w`,
//! `2w`, `4w`, `8w`) of basic blocks, each module ending in a multi-scale
//! fusion (every branch receives the sum of all branches, upsampled by a
//! 1×1 convolution and nearest interpolation or downsampled by strided 3×3
//! convolutions) — and a 1×1 convolution to one heatmap per joint on the
//! stride-4 branch.
//!
//! The body follows timm 1.0.31's `HighResolutionNet` (`hrnet_w32`,
//! `features_only=True, feature_location=''`: the body without the
//! classification head), whose parameter names it keeps; timm fuses every
//! branch in the last module (`final_fuse = "all"`), the paper's pose
//! network only the highest-resolution one (`final_fuse = "highest"`, the
//! default: 28,535,505 parameters with 17 joints, the paper's 28.5 M).
//! Heatmaps come out at a quarter of the input size.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{BatchNorm2d, Conv2d, Conv2dConfig};
use unidl_tensor::trace;

use crate::blocks::{ConvBn, NormLayer, NormSettings, conv};
use crate::classification::resnet::Block;
use crate::error::{Result, VisionError, positive};

/// Which branches the last module of stage 4 fuses into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FinalFuse {
    /// Only the stride-4 branch, which the head reads (the paper's pose network).
    #[default]
    Highest,
    /// All four (timm's body, `multi_scale_output=True`).
    All,
}

/// HRNet configuration; the defaults are HRNet-W32 for 17 joints.
///
/// ```toml
/// joints = 17
/// width = 32              # branch widths 32, 64, 128, 256
/// blocks = 4              # basic blocks per branch in every module
/// modules = [1, 4, 3]     # modules of stages 2, 3 and 4
/// stem_width = 64
/// stage1_blocks = 4       # bottlenecks of 64 planes (256 channels out)
/// final_fuse = "highest"  # or "all" (timm's body)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HrNetConfig {
    /// Joints, one heatmap each.
    pub joints: usize,
    /// Image channels.
    pub in_channels: usize,
    /// Width `w` of the stride-4 branch; the others are `2w`, `4w`, `8w`.
    pub width: usize,
    /// Basic blocks per branch in every high-resolution module.
    pub blocks: usize,
    /// Modules in stages 2, 3 and 4.
    pub modules: [usize; 3],
    /// Channels of the first stem convolution (the second has 64, as timm).
    pub stem_width: usize,
    /// Bottleneck blocks of stage 1 (64 planes, 256 channels out).
    pub stage1_blocks: usize,
    /// What the last module fuses.
    pub final_fuse: FinalFuse,
}

impl Default for HrNetConfig {
    fn default() -> Self {
        HrNetConfig {
            joints: 17,
            in_channels: 3,
            width: 32,
            blocks: 4,
            modules: [1, 4, 3],
            stem_width: 64,
            stage1_blocks: 4,
            final_fuse: FinalFuse::Highest,
        }
    }
}

/// Channels out of the stem's second convolution and planes of stage 1
/// (fixed in timm's `HighResolutionNet`).
const STEM_OUT: usize = 64;

/// A conv–BN–ReLU chain: a branch's transition or a downsampling fusion
/// path (timm: a `Sequential` of `Sequential(conv, bn[, relu])`).
#[derive(Module, Debug)]
pub struct ConvChain {
    /// The links, each strided 3×3 or (a transition kept at its
    /// resolution) stride 1.
    pub links: Vec<ConvBn>,
    /// Whether the last link is followed by ReLU (transitions yes, fusion
    /// paths no: the fusion applies ReLU after the sum).
    pub last_relu: bool,
}

impl ConvChain {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let n = self.links.len();
        self.links.iter().enumerate().fold(x, |x, (k, l)| {
            let y = l.forward(x);
            if k + 1 < n || self.last_relu {
                relu(y)
            } else {
                y
            }
        })
    }
}

/// A transition between stages for one branch: identity (no field set), a
/// 3×3 convolution changing the width at the same resolution (`same`,
/// timm's `transition{n}.{i}.0`/`.1`), or a chain of strided convolutions
/// from the lowest-resolution branch (`down`, timm's `transition{n}.{i}.{k}.0`/`.1`).
#[derive(Module, Debug)]
pub struct Transition {
    /// Same resolution, new width.
    pub same: Option<ConvBn>,
    /// A new, lower-resolution branch.
    pub down: Option<ConvChain>,
}

/// One fusion path from branch `j` into branch `i`: identity (`i = j`), a
/// 1×1 convolution with BN then nearest upsampling by `2^(j−i)` (`up`,
/// `j > i`), or `i − j` strided 3×3 convolutions (`down`, `j < i`).
#[derive(Module, Debug)]
pub struct FusePath {
    /// From a lower resolution.
    pub up: Option<ConvBn>,
    /// From a higher resolution.
    pub down: Option<ConvChain>,
}

/// A high-resolution module: the branches' basic blocks, then the fusion.
#[derive(Module, Debug)]
pub struct HrModule {
    /// Per branch, its blocks.
    pub branches: Vec<Vec<Block>>,
    /// `fuse_layers[i][j]`: branch `j` into output `i`.
    pub fuse_layers: Vec<Vec<FusePath>>,
}

impl HrModule {
    fn new(
        widths: &[usize],
        blocks: usize,
        outputs: usize,
        norm: NormSettings,
        dev: &Device,
    ) -> Self {
        let branches = widths
            .iter()
            .map(|&c| {
                (0..blocks)
                    .map(|_| Block::new(c, c, 1, 1, false, norm, dev))
                    .collect()
            })
            .collect();
        let n = widths.len();
        let fuse_layers = if n == 1 {
            Vec::new()
        } else {
            (0..outputs)
                .map(|i| {
                    (0..n)
                        .map(|j| {
                            if j > i {
                                FusePath {
                                    up: Some(ConvBn::new(
                                        [widths[j], widths[i]],
                                        1,
                                        1,
                                        1,
                                        norm,
                                        dev,
                                    )),
                                    down: None,
                                }
                            } else if j == i {
                                FusePath {
                                    up: None,
                                    down: None,
                                }
                            } else {
                                let links = (0..i - j)
                                    .map(|k| {
                                        let out =
                                            if k == i - j - 1 { widths[i] } else { widths[j] };
                                        ConvBn::new([widths[j], out], 3, 2, 1, norm, dev)
                                    })
                                    .collect();
                                FusePath {
                                    up: None,
                                    down: Some(ConvChain {
                                        links,
                                        last_relu: false,
                                    }),
                                }
                            }
                        })
                        .collect()
                })
                .collect()
        };
        HrModule {
            branches,
            fuse_layers,
        }
    }

    /// # Shapes
    /// branch `i` `[B, C_i, H/2^i, W/2^i]` → the same for each fused output.
    fn forward(&self, xs: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let xs: Vec<Tensor<4>> = xs
            .into_iter()
            .zip(&self.branches)
            .map(|(x, blocks)| blocks.iter().fold(x, |x, b| b.forward(x)))
            .collect();
        if self.fuse_layers.is_empty() {
            return xs;
        }
        self.fuse_layers
            .iter()
            .enumerate()
            .map(|(i, paths)| {
                let [_, _, h, w] = xs[i].dims();
                let sum = paths
                    .iter()
                    .enumerate()
                    .map(|(j, p)| match (&p.up, &p.down) {
                        (Some(up), _) => {
                            let y = up.forward(xs[j].clone()); // [B, C_i, H/2^j, W/2^j]
                            // nn.Upsample(scale_factor=2^(j-i), mode="nearest")
                            interpolate(
                                y,
                                InterpolateOptions::new(InterpolateMode::Nearest)
                                    .with_output_size([h, w]),
                            )
                        }
                        (None, Some(down)) => down.forward(xs[j].clone()),
                        (None, None) => xs[j].clone(),
                    })
                    .reduce(|a, b| a + b)
                    .expect("a module has branches");
                relu(sum)
            })
            .collect()
    }
}

/// HRNet. Build it with [`HrNetConfig::init`].
#[derive(Module, Debug)]
pub struct HrNet {
    /// Stem 3×3 stride 2 (`stem_width` channels).
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: BatchNorm2d,
    /// Stem 3×3 stride 2 (64 channels).
    pub conv2: Conv2d,
    /// Its batch norm.
    pub bn2: BatchNorm2d,
    /// Stage 1: bottlenecks of 64 planes.
    pub layer1: Vec<Block>,
    /// Stage 1 → 2.
    pub transition1: Vec<Transition>,
    /// Stage 2: two branches.
    pub stage2: Vec<HrModule>,
    /// Stage 2 → 3.
    pub transition2: Vec<Transition>,
    /// Stage 3: three branches.
    pub stage3: Vec<HrModule>,
    /// Stage 3 → 4.
    pub transition3: Vec<Transition>,
    /// Stage 4: four branches.
    pub stage4: Vec<HrModule>,
    /// The heatmap head: 1×1 convolution `w → joints` with bias.
    pub final_layer: Conv2d,
}

fn transitions(pre: &[usize], cur: &[usize], norm: NormSettings, dev: &Device) -> Vec<Transition> {
    (0..cur.len())
        .map(|i| {
            if i < pre.len() {
                Transition {
                    same: (pre[i] != cur[i])
                        .then(|| ConvBn::new([pre[i], cur[i]], 3, 1, 1, norm, dev)),
                    down: None,
                }
            } else {
                let last = *pre.last().expect("a stage has branches");
                let links = (0..=i - pre.len())
                    .map(|j| {
                        let out = if j == i - pre.len() { cur[i] } else { last };
                        ConvBn::new([last, out], 3, 2, 1, norm, dev)
                    })
                    .collect();
                Transition {
                    same: None,
                    down: Some(ConvChain {
                        links,
                        last_relu: true,
                    }),
                }
            }
        })
        .collect()
}

impl HrNetConfig {
    /// HRNet-W32 for `joints` joints.
    pub fn new(joints: usize) -> Self {
        HrNetConfig {
            joints,
            ..HrNetConfig::default()
        }
    }

    /// Builds the network with timm's initialisation (convolutions Kaiming
    /// normal, fan-out; norms γ = 1, β = 0); the head is PyTorch's default
    /// `Conv2d`. A zero count is [`VisionError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<HrNet> {
        for (key, v) in [
            ("joints", self.joints),
            ("in_channels", self.in_channels),
            ("width", self.width),
            ("blocks", self.blocks),
            ("stem_width", self.stem_width),
            ("stage1_blocks", self.stage1_blocks),
        ] {
            positive(key, v)?;
        }
        if let Some(k) = self.modules.iter().position(|&m| m == 0) {
            return Err(VisionError::Config {
                key: "modules".into(),
                reason: format!("{:?}: stage {} has no module", self.modules, k + 2),
            });
        }
        let norm = NormSettings::default();
        let dev = device;
        let w = self.width;
        let widths: Vec<usize> = (0..4).map(|i| w << i).collect();
        let layer1: Vec<Block> = (0..self.stage1_blocks)
            .map(|b| {
                let inp = if b == 0 { STEM_OUT } else { 4 * STEM_OUT };
                Block::new(inp, STEM_OUT, 1, 1, true, norm, dev)
            })
            .collect();
        let stage = |n: usize, count: usize, last_outputs: usize| -> Vec<HrModule> {
            (0..count)
                .map(|m| {
                    let outputs = if m + 1 == count { last_outputs } else { n };
                    HrModule::new(&widths[..n], self.blocks, outputs, norm, dev)
                })
                .collect()
        };
        let last = match self.final_fuse {
            FinalFuse::All => 4,
            FinalFuse::Highest => 1,
        };
        Ok(HrNet {
            conv1: conv([self.in_channels, self.stem_width], 3, 2, 1, dev),
            bn1: BatchNorm2d::build(self.stem_width, norm, dev),
            conv2: conv([self.stem_width, STEM_OUT], 3, 2, 1, dev),
            bn2: BatchNorm2d::build(STEM_OUT, norm, dev),
            layer1,
            transition1: transitions(&[4 * STEM_OUT], &widths[..2], norm, dev),
            stage2: stage(2, self.modules[0], 2),
            transition2: transitions(&widths[..2], &widths[..3], norm, dev),
            stage3: stage(3, self.modules[1], 3),
            transition3: transitions(&widths[..3], &widths[..4], norm, dev),
            stage4: stage(4, self.modules[2], last),
            final_layer: Conv2dConfig::new([w, self.joints], [1, 1]).init(dev),
        })
    }
}

/// timm's transition rule between stages: an identity or same-resolution
/// transition reads its own branch; a new branch reads the last one.
fn apply_transitions(ts: &[Transition], ys: &[Tensor<4>]) -> Vec<Tensor<4>> {
    ts.iter()
        .enumerate()
        .map(|(i, t)| match (&t.same, &t.down) {
            (Some(s), _) => relu(s.forward(ys[i].clone())),
            (None, Some(d)) => d.forward(ys[ys.len() - 1].clone()),
            (None, None) => ys[i].clone(),
        })
        .collect()
}

fn run_stage(modules: &[HrModule], xs: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
    modules.iter().fold(xs, |xs, m| m.forward(xs))
}

impl HrNet {
    /// The body: the stem's output (stride 2) and the stage-4 branches
    /// (strides 4, 8, 16, 32; only the first when the last module fuses
    /// the highest resolution only) — timm's `features_only` outputs.
    /// Records `stem`, `stage2`, `stage3` and `stage4` shapes.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, 64·…, H/2, W/2]` and `[B, w·2^i, H/2^(i+2), W/2^(i+2)]`.
    pub fn features(&self, images: Tensor<4>) -> Result<(Tensor<4>, Vec<Tensor<4>>)> {
        let dims = images.dims();
        let c = self.conv1.weight.dims()[1];
        if dims[1] != c || !dims[2].is_multiple_of(32) || !dims[3].is_multiple_of(32) {
            return Err(VisionError::Input {
                model: "HrNet".into(),
                shape: dims.to_vec(),
                reason: format!("expected [B, {c}, H, W] with H and W multiples of 32"),
            });
        }
        let stem = relu(self.bn1.forward(self.conv1.forward(images))); // [B, s, H/2, W/2]
        trace::record("stem", &stem.dims());
        let x = relu(self.bn2.forward(self.conv2.forward(stem.clone()))); // [B, 64, H/4, W/4]
        let x = self.layer1.iter().fold(x, |x, b| b.forward(x)); // [B, 256, H/4, W/4]
        let xs = apply_transitions(&self.transition1, &[x]);
        let ys = run_stage(&self.stage2, xs);
        trace::record("stage2", &ys[0].dims());
        let ys = run_stage(&self.stage3, apply_transitions(&self.transition2, &ys));
        trace::record("stage3", &ys[0].dims());
        let ys = run_stage(&self.stage4, apply_transitions(&self.transition3, &ys));
        trace::record("stage4", &ys[0].dims());
        Ok((stem, ys))
    }

    /// One heatmap per joint at a quarter of the input size.
    ///
    /// # Shapes
    /// `[B, C, H, W]` (H, W multiples of 32) → `[B, joints, H/4, W/4]`.
    pub fn forward(&self, images: Tensor<4>) -> Result<Tensor<4>> {
        let (_, ys) = self.features(images)?;
        let y = self.final_layer.forward(ys[0].clone());
        trace::record("final_layer", &y.dims());
        Ok(y)
    }

    /// Joints the head predicts.
    pub fn joints(&self) -> usize {
        self.final_layer.weight.dims()[0]
    }
}
