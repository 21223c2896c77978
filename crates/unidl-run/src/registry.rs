//! The model registry: zoo crates register each model under a name with its
//! serde config type ([`ZooModel`]) and the task it serves ([`BuildTask`]);
//! `[model] name = "…"` resolves through it, so the CLI holds no per-model
//! code (mmengine's `Registry`, timm's `register_model`, as a name →
//! monomorphised-commands table filled at start-up by the enabled zoo crates).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::path::Path;

use burn::module::Module;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_train::{PostProcess, Task, TaskIo};

use crate::config::{DataConfig, TaskConfig};
use crate::error::{BoxError, Result, RunError};
use crate::run::{InferArgs, Run};

/// Facts about the data a model and its task are built for.
#[derive(Debug, Clone, Default)]
pub struct DataFacts {
    /// Class names in index order (classification data sets).
    pub class_names: Vec<String>,
    /// Vocabulary size of the run's tokenizer (text tasks).
    pub vocab_size: Option<usize>,
    /// The tokenizer's padding id (text tasks).
    pub pad_id: Option<u32>,
    /// Keypoints per instance (keypoint data sets: the first labelled
    /// sample's count).
    pub joints: Option<usize>,
    /// The run's tokenizer (text tasks that decode or mask tokens).
    pub tokenizer: Option<std::sync::Arc<unidl_data::text::TextTokenizer>>,
}

impl DataFacts {
    /// The facts of `class_names` and (text runs) the run's tokenizer.
    pub fn new(
        class_names: Vec<String>,
        tokenizer: Option<&std::sync::Arc<unidl_data::text::TextTokenizer>>,
    ) -> Self {
        DataFacts {
            class_names,
            vocab_size: tokenizer.map(|t| t.vocab_size()),
            pad_id: tokenizer.and_then(|t| t.pad_id()),
            joints: None,
            tokenizer: tokenizer.cloned(),
        }
    }
}

/// The tasks a registered model can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Images → one class.
    ImageClassification,
    /// Token sequences → one class.
    TextClassification,
    /// Images → boxes with classes and scores.
    ObjectDetection,
    /// Images → a class per pixel.
    SemanticSegmentation,
    /// Images of one instance → its keypoints, through heatmaps.
    KeypointHeatmaps,
    /// Images of one instance → its keypoints, regressed as coordinates.
    KeypointRegression,
    /// Images → boxes with classes, scores and a mask each.
    InstanceSegmentation,
    /// Token sequences → embeddings compared by cosine similarity.
    TextSimilarity,
    /// Token sequences with hidden tokens → the hidden tokens.
    MaskedLanguageModelling,
    /// Token sequences → token sequences (translation).
    SequenceToSequence,
    /// Video clips → one class.
    VideoClassification,
    /// Speech → its transcript (CTC).
    SpeechRecognition,
    /// Speech → its transcript (a transducer, RNN-T).
    TransducerRecognition,
    /// Spectrogram frames (from a recording or from text) → a waveform.
    SpeechSynthesis,
}

impl TaskKind {
    /// Whether the task needs the data's keypoint count ([`DataFacts::joints`]).
    pub fn needs_joints(self) -> bool {
        matches!(
            self,
            TaskKind::KeypointHeatmaps | TaskKind::KeypointRegression
        )
    }

    /// The name written in `[task] name`.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::ImageClassification => "image_classification",
            TaskKind::TextClassification => "text_classification",
            TaskKind::ObjectDetection => "object_detection",
            TaskKind::SemanticSegmentation => "semantic_segmentation",
            TaskKind::KeypointHeatmaps => "keypoint_heatmaps",
            TaskKind::KeypointRegression => "keypoint_regression",
            TaskKind::InstanceSegmentation => "instance_segmentation",
            TaskKind::TextSimilarity => "text_similarity",
            TaskKind::MaskedLanguageModelling => "masked_language_modelling",
            TaskKind::SequenceToSequence => "sequence_to_sequence",
            TaskKind::VideoClassification => "video_classification",
            TaskKind::SpeechRecognition => "speech_recognition",
            TaskKind::TransducerRecognition => "transducer_recognition",
            TaskKind::SpeechSynthesis => "speech_synthesis",
        }
    }
}

/// A post-processed output of task `T`.
pub type Output<T> = <<T as TaskIo>::Post as PostProcess>::Output;

/// What the run layer needs to build a task from a config and to talk to
/// people about its inputs and outputs.
pub trait BuildTask: TaskIo + Sized {
    /// Which task this is.
    const KIND: TaskKind;
    /// Builds the task from `[task]` and the data.
    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self>;
    /// Reads one input file for `unidl infer` (an image, a text file, …)
    /// into a sample the run's preprocessing then transforms.
    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample>;
    /// A text given on the command line (`unidl infer --text`) as a sample
    /// (`task` is the run's `[task]`); default: this task takes no text, an
    /// error.
    fn text_input(_text: &str, _data: &DataConfig, _task: &TaskConfig) -> Result<Sample> {
        Err(RunError::Config {
            file: "--text".into(),
            line: 0,
            message: format!(
                "task `{}` does not take text inputs; give files",
                Self::KIND.name()
            ),
        })
    }
    /// One line for a person; `class_names` are the data set's, for outputs
    /// that carry class indices.
    fn describe(output: &Output<Self>, class_names: &[String]) -> String;
    /// The structure for `--json`; default: the output's own serialisation
    /// (every `PostProcess::Output` is `Serialize`).
    fn to_json(output: &Output<Self>) -> serde_json::Value {
        serde_json::to_value(output).unwrap_or_default()
    }
    /// The extension of the files [`draw`](Self::draw) writes.
    fn output_extension() -> &'static str {
        "png"
    }
    /// Writes `output` as a file at `path` (`--draw`): vision tasks draw it
    /// on `input` (PNG), speech synthesis writes the waveform (WAV);
    /// default: this task has nothing to write, an error.
    fn draw(
        _input: &Sample,
        _output: &Output<Self>,
        _class_names: &[String],
        path: &Path,
    ) -> Result<()> {
        Err(RunError::NotFound {
            path: path.to_path_buf(),
            hint: format!(
                "; task `{}` has no drawing (--draw is for vision tasks)",
                Self::KIND.name()
            ),
        })
    }
}

/// A model a zoo crate registers: the config type (strict serde, the keys of
/// `[model]` besides `name`) builds the model; `Task` trains and runs it.
pub trait ZooModel: DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// The model.
    type Model: Module + 'static;
    /// The task it serves.
    type Task: BuildTask + Task<Self::Model>;

    /// Builds a freshly initialised model on `device`.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Self::Model, BoxError>;

    /// Adjusts the task to the model (e.g. the shortest sequence a
    /// convolution window needs); identity by default.
    fn adapt_task(&self, task: Self::Task) -> Self::Task {
        task
    }

    /// Loads foreign weights (e.g. a torchvision `.pth`) into `model`; returns
    /// the model and a one-line report. Default: no mapping, an error.
    fn load_weights(
        &self,
        _model: Self::Model,
        path: &Path,
        _strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), BoxError> {
        Err(format!(
            "{}: this model has no mapping for foreign weights (a unidl checkpoint loads directly)",
            path.display()
        )
        .into())
    }
}

/// The commands of one registered model, monomorphised for its types.
pub(crate) trait Commands: Send + Sync {
    fn train(&self, run: &Run, resume: bool) -> Result<()>;
    fn eval(&self, run: &Run, weights: Option<&Path>) -> Result<()>;
    fn infer(&self, run: &Run, args: &InferArgs) -> Result<Vec<serde_json::Value>>;
    fn summary(&self, run: &Run) -> Result<()>;
}

struct Typed<C>(PhantomData<fn() -> C>);

impl<C: ZooModel> Commands for Typed<C> {
    fn train(&self, run: &Run, resume: bool) -> Result<()> {
        crate::run::train::<C>(run, resume)
    }
    fn eval(&self, run: &Run, weights: Option<&Path>) -> Result<()> {
        crate::run::eval::<C>(run, weights)
    }
    fn infer(&self, run: &Run, args: &InferArgs) -> Result<Vec<serde_json::Value>> {
        crate::run::infer::<C>(run, args)
    }
    fn summary(&self, run: &Run) -> Result<()> {
        crate::run::summary::<C>(run)
    }
}

/// One registered model.
pub struct Entry {
    /// The name `[model] name` uses.
    pub name: String,
    /// One line about it.
    pub about: String,
    /// The task it serves.
    pub task: TaskKind,
    pub(crate) commands: Box<dyn Commands>,
}

impl Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("task", &self.task)
            .finish()
    }
}

/// Registered models by name.
#[derive(Debug, Default)]
pub struct ModelRegistry {
    entries: BTreeMap<String, Entry>,
}

impl ModelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ModelRegistry::default()
    }

    /// Registers config type `C` under `name`; a second model under one name
    /// is an error.
    pub fn register<C: ZooModel>(&mut self, name: &str, about: &str) -> Result<()> {
        if self.entries.contains_key(name) {
            return Err(RunError::Duplicate(name.to_string()));
        }
        self.entries.insert(
            name.to_string(),
            Entry {
                name: name.to_string(),
                about: about.to_string(),
                task: <C::Task as BuildTask>::KIND,
                commands: Box::new(Typed::<C>(PhantomData)),
            },
        );
        Ok(())
    }

    /// The registered models, by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The model `name`, or [`RunError::UnknownModel`] naming `file` and the known names.
    pub fn get(&self, name: &str, file: &str) -> Result<&Entry> {
        self.entries
            .get(name)
            .ok_or_else(|| RunError::UnknownModel {
                file: file.to_string(),
                name: name.to_string(),
                known: self.entries.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }
}

/// Parses `[model]` (without `name`) into `C`; errors name the file, line and key.
pub fn model_config<C: DeserializeOwned>(run: &Run) -> Result<C> {
    let mut table = run.cfg.model.clone();
    table.remove("name");
    C::deserialize(toml::Value::Table(table)).map_err(|e| {
        let msg = e.to_string();
        // "unknown field `dpeth`, expected …" / "invalid value … for key `depth`"
        let key = msg.split('`').nth(1).unwrap_or_default().to_string();
        let line = crate::config::line_of_key(&run.text, "model", &key);
        RunError::Config {
            file: run.path.display().to_string(),
            line: if line == 0 {
                crate::config::line_of_key(&run.text, "model", "name")
            } else {
                line
            },
            message: format!("[model] {}", msg.trim()),
        }
    })
}
