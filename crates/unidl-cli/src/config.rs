//! Run configs: one strict TOML file per run. Unknown keys and out-of-range
//! values are errors naming the file, the line and the key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use unidl_data::TransformConfig;
use unidl_train::{OptimizerConfig, Schedule, TrainerConfig};

/// A whole run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Back-end name (`flex`, `tch`, `wgpu:0`, …); `UNIDL_BACKEND` and `--backend` take precedence.
    #[serde(default)]
    pub backend: Option<String>,
    /// Seed of weights, shuffling, augmentation and dropout.
    #[serde(default)]
    pub seed: u64,
    /// The model.
    pub model: ModelConfig,
    /// Weights to start training from (zoo models: a torchvision checkpoint).
    #[serde(default)]
    pub pretrained: Option<PretrainedConfig>,
    /// The data.
    pub data: DataConfig,
    /// The optimizer (B.3.1 keys).
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    #[serde(default = "constant")]
    pub schedule: Schedule,
    /// The trainer (B.4.1 keys; `seed` is the run's top-level `seed`).
    pub trainer: TrainerConfig,
    /// Inference defaults.
    #[serde(default)]
    pub infer: unidl_train::InferOptions,
}

/// `[pretrained]`: a torchvision state dict that a zoo model starts training
/// from (fine-tuning). Read with `unidl_vision::torchvision::load_torchvision`;
/// no code in the file is executed and nothing is downloaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainedConfig {
    /// `.pth`/`.pt` (`torch.save(model.state_dict(), …)`, as torchvision
    /// publishes its weights) or `.safetensors`; relative paths as for data.
    pub path: PathBuf,
    /// `true` (default): any missing, unexpected or misshapen key is an error
    /// listing them all. `false`: load what matches, e.g. an ImageNet
    /// checkpoint into a 10-class model (the classifier keeps its fresh
    /// initialisation), and print what was skipped.
    #[serde(default = "yes")]
    pub strict: bool,
}

fn yes() -> bool {
    true
}

fn constant() -> Schedule {
    Schedule::Constant
}

/// Built-in models (the zoo crates add theirs).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelConfig {
    /// Two conv blocks and two dense layers: the quick-start digit classifier.
    SimpleCnn {
        /// Input channels.
        #[serde(default = "one")]
        in_channels: usize,
        /// Classes.
        num_classes: usize,
        /// Input side length (square images).
        #[serde(default = "twenty_eight")]
        image_size: usize,
    },
    /// ResNet-18/34/50/101/152 from `unidl-vision` (`depth = 18`, `small_input = true`, …).
    Resnet(unidl_vision::classification::ResNetConfig),
    /// VGG-11/13/16/19 from `unidl-vision` (`depth = 11`, `batch_norm = true`, …).
    Vgg(unidl_vision::classification::VggConfig),
    /// EfficientNet-B0…B7 from `unidl-vision` (`variant = "b0"`, …).
    Efficientnet(unidl_vision::classification::EfficientNetConfig),
}

impl ModelConfig {
    /// The zoo classifier this config names, if it is one.
    pub fn zoo(&self) -> Option<unidl_vision::ClassifierConfig> {
        use unidl_vision::ClassifierConfig as C;
        match self {
            ModelConfig::SimpleCnn { .. } => None,
            ModelConfig::Resnet(c) => Some(C::Resnet(c.clone())),
            ModelConfig::Vgg(c) => Some(C::Vgg(c.clone())),
            ModelConfig::Efficientnet(c) => Some(C::Efficientnet(c.clone())),
        }
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        match (self, self.zoo()) {
            (ModelConfig::SimpleCnn { in_channels, .. }, _) => *in_channels,
            (_, Some(z)) => z.in_channels(),
            (_, None) => 1,
        }
    }
}

fn one() -> usize {
    1
}
fn twenty_eight() -> usize {
    28
}

/// Data sets and their transforms.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Training data: a path, or `data:<name>/<split>` inside `UNIDL_DATA_DIR` (see `cargo xtask data`).
    pub train: String,
    /// Held-out data, same syntax.
    #[serde(default)]
    pub val: Option<String>,
    /// Channels to decode images to.
    #[serde(default)]
    pub channels: Option<usize>,
    /// Augmentation for training only.
    #[serde(default)]
    pub train_transforms: Vec<TransformConfig>,
    /// Preprocessing for training, validation and inference.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
}

/// The data cache (`UNIDL_DATA_DIR`, default `~/.cache/unidl/data`).
pub fn data_dir() -> PathBuf {
    if let Ok(d) = std::env::var("UNIDL_DATA_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
        .join(".cache/unidl/data")
}

/// Resolves `data:<name>/<split>` and relative paths.
pub fn resolve(spec: &str, base: &Path) -> Result<PathBuf> {
    let p = match spec.strip_prefix("data:") {
        Some(rest) => data_dir().join(rest),
        None => base.join(spec),
    };
    if !p.exists() {
        if spec.starts_with("data:") {
            bail!(
                "{}: not found; prepare it with `cargo xtask data {}`",
                p.display(),
                spec.trim_start_matches("data:")
                    .split('/')
                    .next()
                    .unwrap_or("")
            );
        }
        bail!("{}: not found", p.display());
    }
    Ok(p)
}

impl RunConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<(RunConfig, String)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let cfg: RunConfig = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0);
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message())
        })?;
        cfg.optimizer
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: [optimizer] {e}", path.display()))?;
        cfg.schedule
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: [schedule] {e}", path.display()))?;
        cfg.trainer
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: [trainer] {e}", path.display()))?;
        if cfg.trainer.seed != 0 && cfg.trainer.seed != cfg.seed {
            bail!(
                "{}: [trainer] seed: set the run's seed at the top level (`seed = {}`)",
                path.display(),
                cfg.trainer.seed
            );
        }
        let mut cfg = cfg;
        cfg.trainer.seed = cfg.seed;
        Ok((cfg, text))
    }
}
