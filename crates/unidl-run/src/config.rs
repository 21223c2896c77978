//! Run configs: one strict TOML file per run (D13). Unknown keys and
//! out-of-range values are errors naming the file, the line and the key.
//!
//! ```toml
//! seed = 7
//! [model]                 # resolved through the model registry
//! name = "resnet"         # the registered name; the other keys are the
//! depth = 18              # zoo's own config type (strict)
//! [task]                  # optional: the model's task and its options
//! label_smoothing = 0.1
//! [data]
//! format = "image_folder" # any unidl-data format, or guessed from the path
//! train = "data:mnist/train"
//! val = "data:mnist/test"
//! [optimizer]             # B.3.1 keys
//! [schedule]              # optional
//! [trainer]               # B.4.1 keys
//! [infer]                 # optional: B.5 defaults
//! [eval]                  # optional: metrics
//! [pretrained]            # optional: foreign weights to start from
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use unidl_data::dataset::{DatasetFormat, OnError};
use unidl_data::transform::BatchTransformConfig;
use unidl_data::{DatasetParams, TransformConfig};
use unidl_train::{InferOptions, Metric, OptimizerConfig, Schedule, TrainerConfig};

use crate::error::{Result, RunError};

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
    /// `[model]`: `name` picks the registered model, the other keys are its config.
    pub model: toml::Table,
    /// `[task]`: the task and its options (default: the model's task).
    #[serde(default)]
    pub task: TaskConfig,
    /// Weights to start training from (a foreign checkpoint the model's zoo maps).
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
    pub infer: InferOptions,
    /// Evaluation settings.
    #[serde(default)]
    pub eval: EvalSection,
}

fn constant() -> Schedule {
    Schedule::Constant
}

/// `[task]`: which task the model trains for and the task's options.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The task (`image_classification`, `text_classification`, …); must be
    /// the one the model is registered for. Default: the model's.
    #[serde(default)]
    pub name: Option<String>,
    /// Label smoothing ε in [0, 1) for classification tasks.
    #[serde(default)]
    pub label_smoothing: f64,
    /// Keypoint heatmaps: the targets' Gaussian σ in heatmap pixels
    /// (default 2, HRNet's).
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Keypoint metrics: the PCK threshold as a fraction of the instance
    /// box's longer side (default 0.2).
    #[serde(default)]
    pub pck_alpha: Option<f64>,
    /// Keypoint metrics: OKS σ per joint for keypoint AP (default COCO's 17).
    #[serde(default)]
    pub oks_sigmas: Option<Vec<f64>>,
    /// Text similarity: the contrastive loss's temperature τ (default 0.05).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Masked language modelling: the share of tokens hidden (default 0.15).
    #[serde(default)]
    pub mask_probability: Option<f64>,
    /// Sequence to sequence: how outputs are generated (`[task.generation]`:
    /// `max_length`, `num_beams`, `length_penalty`, `do_sample`,
    /// `temperature`, `top_k`, `top_p`, `seed`); `[infer.generation]`
    /// overrides it for inference.
    #[serde(default)]
    pub generation: Option<unidl_train::decoding::GenerationConfig>,
    /// Sequence to sequence on a classification data set (text-to-text
    /// classification, as T5): `true` makes each sample's target its class
    /// name; evaluation then reports exact-match accuracy and macro F1.
    #[serde(default)]
    pub label_targets: bool,
    /// Sequence to sequence: the weight `w` of the hybrid CTC/attention
    /// objective, `(1 − w)·cross-entropy + w·CTC` over the model's encoder
    /// CTC head (TrOCR with `ctc_head = true`); in [0, 1), default 0 (off).
    #[serde(default)]
    pub ctc_weight: f64,
    /// Semantic segmentation: per-label weights of the cross-entropy,
    /// background (label 0) first, one per label (PyTorch's
    /// `cross_entropy(weight=…)`); default all 1.
    #[serde(default)]
    pub class_weights: Option<Vec<f64>>,
    /// Semantic segmentation: weight of a soft Dice loss added to the
    /// cross-entropy (every label counts equally whatever its area);
    /// default 0 (off).
    #[serde(default)]
    pub dice_weight: f64,
    /// Speech recognition: the characters of the transcripts, in label
    /// order after the blank (id 0); default `"abcdefghijklmnopqrstuvwxyz' "`.
    #[serde(default)]
    pub alphabet: Option<String>,
    /// Speech recognition: hypotheses kept by the decoder's beam search —
    /// CTC prefix beam search, or the transducer's — (default 1: greedy).
    #[serde(default)]
    pub beam_width: Option<usize>,
    /// Speech synthesis: frames of the training windows (default 16).
    #[serde(default)]
    pub segment_frames: Option<usize>,
    /// Speech synthesis: μ-law classes of the waveform (default 256, the
    /// model's `out_channels`).
    #[serde(default)]
    pub quantization_channels: Option<usize>,
    /// Speech synthesis from text: a manifest of single-word recordings
    /// (`path`, `transcript`, `speaker`; e.g. `"data:spoken-digits/train.jsonl"`)
    /// whose frames `unidl infer --text` concatenates word by word.
    #[serde(default)]
    pub voice_bank: Option<String>,
    /// Speech synthesis from text: the bank's speaker (default: the first
    /// row's).
    #[serde(default)]
    pub voice: Option<String>,
}

/// `[eval]`: what `unidl eval` computes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Metrics (default: the task's default metrics).
    #[serde(default)]
    pub metrics: Vec<Metric>,
}

/// `[pretrained]`: foreign weights (e.g. a torchvision `.pth`) a model starts
/// training from. Read by the model's zoo crate; no code in the file is
/// executed and nothing is downloaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainedConfig {
    /// The checkpoint; `data:<name>/…` or a path, as for data.
    pub path: PathBuf,
    /// `true` (default): any missing, unexpected or misshapen key is an error
    /// listing them all. `false`: load what matches and report the rest.
    #[serde(default = "yes")]
    pub strict: bool,
}

fn yes() -> bool {
    true
}

/// `[data]`: data sets, their format and parameters, and preprocessing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Training data: a path, or `data:<name>/<split>` inside the data cache
    /// (`UNIDL_DATA_DIR`, see `unidl data`).
    pub train: String,
    /// Held-out data, same syntax.
    #[serde(default)]
    pub val: Option<String>,
    /// Layout of the files (guessed from the path when omitted).
    #[serde(default)]
    pub format: Option<DatasetFormat>,
    /// Image channels to decode to (1 or 3).
    #[serde(default)]
    pub channels: Option<usize>,
    /// COCO: folder of the images, relative to the annotation file; `{stem}`
    /// stands for the annotation file's stem (`"../images/{stem}"` serves
    /// `train.json` and `test.json` beside `images/train/`, `images/test/`).
    #[serde(default)]
    pub images_dir: Option<PathBuf>,
    /// VOC: the `ImageSets/Main/<split>.txt` list to read.
    #[serde(default)]
    pub split: Option<String>,
    /// VOC: class names in index order.
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// Audio: resample to this rate (Hz).
    #[serde(default)]
    pub sample_rate: Option<u32>,
    /// Audio: channels at load (1 downmixes).
    #[serde(default)]
    pub audio_channels: Option<u16>,
    /// Audio: longest accepted clip in seconds.
    #[serde(default)]
    pub max_duration: Option<f64>,
    /// Video: frames per clip.
    #[serde(default)]
    pub frames: Option<usize>,
    /// Video: `[height, width]` of every frame.
    #[serde(default)]
    pub frame_size: Option<[usize; 2]>,
    /// `fail` (default) or `skip` broken samples, with a report.
    #[serde(default)]
    pub on_error: OnError,
    /// Augmentation for training only.
    #[serde(default)]
    pub train_transforms: Vec<TransformConfig>,
    /// Preprocessing for training, validation and inference.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Augmentation for training only, applied after `transforms`: what
    /// works on features rather than raw inputs (e.g. `spec_augment` on the
    /// `mel_spectrogram` that `transforms` computes).
    #[serde(default)]
    pub train_feature_transforms: Vec<TransformConfig>,
    /// Batch-level augmentation for training (MixUp, CutMix).
    #[serde(default)]
    pub batch_transforms: Vec<BatchTransformConfig>,
    /// Text: a tokenizer trained on the training texts (saved with the run).
    #[serde(default)]
    pub tokenizer: Option<TokenizerConfig>,
}

impl DataConfig {
    /// The `construct_dataset` parameters for `transforms` and `seed`.
    pub fn params(&self, transforms: Vec<TransformConfig>, seed: u64) -> DatasetParams {
        DatasetParams {
            format: self.format,
            channels: self.channels,
            transforms,
            seed,
            range: None,
            images_dir: self.images_dir.clone(),
            split: self.split.clone(),
            classes: self.classes.clone(),
            sample_rate: self.sample_rate,
            audio_channels: self.audio_channels,
            max_duration: self.max_duration,
            frames: self.frames,
            frame_size: self.frame_size,
            on_error: self.on_error,
        }
    }
}

/// Kind of a tokenizer trained for a run.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// BERT-style WordPiece (lower-cased, accents stripped).
    #[default]
    Wordpiece,
    /// Byte-level BPE (GPT-2 style).
    BpeBytes,
    /// BPE over whitespace/punctuation-split words.
    BpeWords,
    /// SentencePiece-style unigram (T5's kind): case and spacing kept.
    Unigram,
}

/// `[data.tokenizer]`: trained on the training set's texts when the run
/// starts (saved as `<output_dir>/tokenizer.json`, reused by resume, eval and
/// infer), then applied as the last preprocessing step (`text` → `tokens`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// A pretrained `tokenizer.json` to use instead of training one (e.g.
    /// `data:minilm/tokenizer.json`, the one a pretrained model was trained
    /// with); copied into the run's output folder. `kind`, `vocab_size` and
    /// `min_frequency` then do not apply.
    #[serde(default)]
    pub file: Option<String>,
    /// Whether the tokenizer's special tokens are added (BERT's `[CLS] …
    /// [SEP]`); default: yes with a pretrained `file`, no otherwise.
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
    /// Vocabulary kind.
    #[serde(default)]
    pub kind: TokenizerKind,
    /// Vocabulary size, special tokens included (required unless `file`).
    #[serde(default)]
    pub vocab_size: Option<usize>,
    /// Pieces seen fewer times are not merged.
    #[serde(default = "two")]
    pub min_frequency: u64,
    /// Longest token sequence; longer texts are cut at the end.
    #[serde(default)]
    pub max_length: Option<usize>,
}

fn two() -> u64 {
    2
}

pub use unidl_env::data_dir;

/// Resolves `data:<name>/<split>` (inside [`data_dir`]) and paths relative to `base`.
pub fn resolve(spec: &str, base: &Path) -> Result<PathBuf> {
    let p = match spec.strip_prefix("data:") {
        Some(rest) => data_dir().join(rest),
        None => base.join(spec),
    };
    if !p.exists() {
        let hint = match spec.strip_prefix("data:") {
            Some(rest) => format!(
                "; prepare it with `unidl data {}` (or `cargo xtask data …`)",
                rest.split('/').next().unwrap_or("")
            ),
            None => String::new(),
        };
        return Err(RunError::NotFound { path: p, hint });
    }
    Ok(p)
}

/// 1-based line of `key = …` inside table `[section]` of `text` (0 if not found).
pub fn line_of_key(text: &str, section: &str, key: &str) -> usize {
    let mut inside = section.is_empty();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t.trim_start_matches('[').trim_end_matches(']').trim() == section;
            continue;
        }
        if inside
            && t.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        {
            return i + 1;
        }
    }
    0
}

impl RunConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<(RunConfig, String)> {
        let text = std::fs::read_to_string(path).map_err(|source| RunError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = path.display().to_string();
        let err = |line: usize, message: String| RunError::Config {
            file: file.clone(),
            line,
            message,
        };
        let mut cfg: RunConfig = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0);
            err(line, e.message().to_string())
        })?;
        let section = |name: &str| {
            text.lines()
                .position(|l| l.trim() == format!("[{name}]"))
                .map_or(0, |i| i + 1)
        };
        cfg.optimizer
            .validate()
            .map_err(|e| err(section("optimizer"), format!("[optimizer] {e}")))?;
        cfg.schedule
            .validate()
            .map_err(|e| err(section("schedule"), format!("[schedule] {e}")))?;
        cfg.trainer
            .validate()
            .map_err(|e| err(section("trainer"), format!("[trainer] {e}")))?;
        if cfg.trainer.seed != 0 && cfg.trainer.seed != cfg.seed {
            return Err(err(
                line_of_key(&text, "trainer", "seed"),
                format!(
                    "[trainer] seed: set the run's seed at the top level (`seed = {}`)",
                    cfg.trainer.seed
                ),
            ));
        }
        if !cfg.model.contains_key("name") {
            return Err(err(
                section("model"),
                "[model] needs `name = \"…\"` (a registered model; `unidl models` lists them)"
                    .into(),
            ));
        }
        if !(0.0..1.0).contains(&cfg.task.label_smoothing) {
            return Err(err(
                line_of_key(&text, "task", "label_smoothing"),
                format!(
                    "[task] label_smoothing: {} is outside [0, 1)",
                    cfg.task.label_smoothing
                ),
            ));
        }
        for (i, b) in cfg.data.batch_transforms.iter().enumerate() {
            b.build().map_err(|e| {
                err(
                    line_of_key(&text, "data", "batch_transforms"),
                    format!("[data] batch_transforms[{i}]: {e}"),
                )
            })?;
        }
        cfg.trainer.seed = cfg.seed;
        Ok((cfg, text))
    }

    /// `[model] name`.
    pub fn model_name(&self) -> &str {
        self.model
            .get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or("")
    }
}
