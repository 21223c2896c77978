//! How the run layer builds each task of `unidl-train` from `[task]` and the
//! data, reads `unidl infer` inputs for it and prints its outputs.

use std::path::Path;

use unidl_data::{Input, Sample};
use unidl_train::outputs::{ClassMap, DecodedSequence, Detection, InstanceMask, PredictedKeypoint};
use unidl_train::postprocess::InstanceConfig;
use unidl_train::{
    ClassScore, FilledText, ImageClassification, InstanceSegmentationTraining, KeypointHeatmaps,
    KeypointMetrics, KeypointRegression, MaskedLanguageModelling, ObjectDetection,
    PixelClassification, SentenceEmbedding, SequenceToSequence, SourceInput, TextClassification,
    TextSimilarity, VideoClassification,
};

use crate::config::{DataConfig, TaskConfig};
use crate::error::{Result, RunError};
use crate::registry::{BuildTask, DataFacts, TaskKind};

mod speech;

fn ranked(output: &[ClassScore]) -> String {
    output
        .iter()
        .map(|c| format!("{} ({:.3})", c.label, c.probability))
        .collect::<Vec<_>>()
        .join(", ")
}

impl BuildTask for ImageClassification {
    const KIND: TaskKind = TaskKind::ImageClassification;

    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(ImageClassification {
            class_names: facts.class_names.clone(),
            label_smoothing: config.label_smoothing,
        })
    }

    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        image_input(path, data)
    }

    fn describe(output: &Vec<ClassScore>, _class_names: &[String]) -> String {
        ranked(output)
    }

    /// The image with the top class and its probability as a caption.
    fn draw(
        input: &Sample,
        output: &Vec<ClassScore>,
        _names: &[String],
        path: &Path,
    ) -> Result<()> {
        let mut canvas = canvas_of(input, path)?;
        if let Some(top) = output.first() {
            canvas.caption(&format!("{} ({:.3})", top.label, top.probability))?;
        }
        Ok(canvas.save(path)?)
    }
}

impl BuildTask for TextClassification {
    const KIND: TaskKind = TaskKind::TextClassification;

    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(TextClassification {
            class_names: facts.class_names.clone(),
            pad_id: facts.pad_id.unwrap_or(0),
            label_smoothing: config.label_smoothing,
            ..TextClassification::default()
        })
    }

    /// A UTF-8 text file, whole, as input `text`.
    fn read_input(path: &Path, _data: &DataConfig) -> Result<Sample> {
        let bytes = std::fs::read(path).map_err(|source| RunError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut s = Sample {
            source: path.display().to_string(),
            ..Sample::default()
        };
        s.inputs.insert("text".into(), Input::Text(text));
        Ok(s)
    }

    fn text_input(text: &str, _data: &DataConfig, _task: &TaskConfig) -> Result<Sample> {
        let mut s = Sample {
            source: "--text".into(),
            ..Sample::default()
        };
        s.inputs
            .insert("text".into(), Input::Text(text.to_string()));
        Ok(s)
    }

    fn describe(output: &Vec<ClassScore>, _class_names: &[String]) -> String {
        ranked(output)
    }
}

impl BuildTask for TextSimilarity {
    const KIND: TaskKind = TaskKind::TextSimilarity;

    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(TextSimilarity {
            class_names: facts.class_names.clone(),
            pad_id: facts.pad_id.unwrap_or(0),
            temperature: config.temperature.unwrap_or(0.05),
            ..TextSimilarity::default()
        })
    }

    /// A UTF-8 text file, whole, as input `text`.
    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        TextClassification::read_input(path, data)
    }

    fn text_input(text: &str, data: &DataConfig, task: &TaskConfig) -> Result<Sample> {
        TextClassification::text_input(text, data, task)
    }

    /// The nearest other input of the call and its cosine similarity.
    fn describe(output: &SentenceEmbedding, _class_names: &[String]) -> String {
        let near: Vec<String> = output
            .neighbours
            .iter()
            .map(|n| format!("input {} (cosine {:.4})", n.index + 1, n.similarity))
            .collect();
        if near.is_empty() {
            format!(
                "{}-d embedding (give two or more inputs to compare)",
                output.embedding.len()
            )
        } else {
            format!("most similar: {}", near.join(", "))
        }
    }
}

impl BuildTask for MaskedLanguageModelling {
    const KIND: TaskKind = TaskKind::MaskedLanguageModelling;

    /// `[MASK]`, padding and special tokens from the run's tokenizer.
    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        let tokenizer = facts.tokenizer.clone().ok_or_else(|| RunError::Config {
            file: "[data.tokenizer]".into(),
            line: 0,
            message: "masked language modelling needs the run's tokenizer ([data.tokenizer])"
                .into(),
        })?;
        let mut task = MaskedLanguageModelling::for_tokenizer(tokenizer)?;
        if let Some(p) = config.mask_probability {
            task.probability = p;
        }
        Ok(task)
    }

    /// A UTF-8 text file, whole, as input `text` (its `[MASK]`s are filled).
    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        TextClassification::read_input(path, data)
    }

    fn text_input(text: &str, data: &DataConfig, task: &TaskConfig) -> Result<Sample> {
        TextClassification::text_input(text, data, task)
    }

    /// The filled text, or the predictions with their probabilities.
    fn describe(output: &FilledText, _class_names: &[String]) -> String {
        let shown: Vec<String> = output
            .predictions
            .iter()
            .map(|p| {
                let token = p.token.clone().unwrap_or_else(|| p.predicted.to_string());
                format!("{token} ({:.3})", p.probability)
            })
            .collect();
        match &output.text {
            Some(t) => format!("{t}  [{}]", shown.join(", ")),
            None => shown.join(", "),
        }
    }
}

impl BuildTask for SequenceToSequence {
    const KIND: TaskKind = TaskKind::SequenceToSequence;

    /// Source tokens from the run's tokenizer, which also encodes the target
    /// texts and decodes the outputs: `[CLS]` starts the decoder, `[SEP]`
    /// ends a sequence, `[PAD]` pads.
    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        let tokenizer = facts.tokenizer.clone().ok_or_else(|| RunError::Config {
            file: "[data.tokenizer]".into(),
            line: 0,
            message: "sequence to sequence needs the run's tokenizer ([data.tokenizer])".into(),
        })?;
        let id = |token: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| RunError::Config {
                file: "[data.tokenizer]".into(),
                line: 0,
                message: format!("the tokenizer has no {token} token (sequence to sequence needs [PAD], [CLS], [SEP])"),
            })
        };
        let label_targets = if config.label_targets {
            if facts.class_names.is_empty() {
                return Err(RunError::Config {
                    file: "[task]".into(),
                    line: 0,
                    message: "label_targets = true needs a classification data set (its class names are the targets)".into(),
                });
            }
            facts.class_names.clone()
        } else {
            Vec::new()
        };
        Ok(SequenceToSequence {
            source: SourceInput::Tokens("tokens".into()),
            pad_id: id(unidl_data::text::PAD)?,
            bos_id: id(unidl_data::text::CLS)?,
            eos_id: id(unidl_data::text::SEP)?,
            label_smoothing: config.label_smoothing,
            generation: config.generation.clone().unwrap_or_default(),
            target_tokenizer: Some(tokenizer),
            label_targets,
            ctc_weight: config.ctc_weight,
        })
    }

    /// An image (`.png`, `.jpg`, `.jpeg`, `.bmp`: OCR models) as input
    /// `image`, any other file as UTF-8 text, whole, as the source `text`.
    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if ["png", "jpg", "jpeg", "bmp"].contains(&ext.as_str()) {
            image_input(path, data)
        } else {
            TextClassification::read_input(path, data)
        }
    }

    fn text_input(text: &str, data: &DataConfig, task: &TaskConfig) -> Result<Sample> {
        TextClassification::text_input(text, data, task)
    }

    /// The generated text.
    fn describe(output: &DecodedSequence, _class_names: &[String]) -> String {
        output
            .text
            .clone()
            .unwrap_or_else(|| format!("{:?}", output.ids))
    }
}

impl BuildTask for VideoClassification {
    const KIND: TaskKind = TaskKind::VideoClassification;

    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(VideoClassification {
            class_names: facts.class_names.clone(),
            input: "video".into(),
            label_smoothing: config.label_smoothing,
        })
    }

    /// A clip (`.mp4`, `.mkv`, `.avi`, `.mov`, `.webm`), decoded as the
    /// data set's clips are: `[data] frames` (default 16) evenly spaced
    /// frames at `[data] frame_size`.
    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        if !path.is_file() {
            return Err(RunError::NotFound {
                path: path.to_path_buf(),
                hint: String::new(),
            });
        }
        Ok(unidl_data::dataset::load_clip(
            path,
            data.frames.unwrap_or(16),
            data.frame_size,
        )?)
    }

    /// The top classes with their probabilities.
    fn describe(output: &Vec<ClassScore>, _class_names: &[String]) -> String {
        ranked(output)
    }
}

impl BuildTask for ObjectDetection {
    const KIND: TaskKind = TaskKind::ObjectDetection;

    /// The data set's class names; the model's detections are post-processed
    /// as already-decoded boxes with per-class scores (the task's default).
    fn build(_config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(ObjectDetection {
            class_names: facts.class_names.clone(),
            ..ObjectDetection::default()
        })
    }

    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        image_input(path, data)
    }

    /// `class (score) [x0, y0, x1, y1]`, best first, `;`-separated; the
    /// class by name when the data set names it.
    fn describe(output: &Vec<Detection>, class_names: &[String]) -> String {
        if output.is_empty() {
            return "no detection".into();
        }
        output
            .iter()
            .map(|d| describe_detection(d, class_names))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The image with each box, its class name and score.
    fn draw(input: &Sample, output: &Vec<Detection>, names: &[String], path: &Path) -> Result<()> {
        let mut canvas = canvas_of(input, path)?;
        canvas.detections(output, names)?;
        Ok(canvas.save(path)?)
    }
}

/// `class (score) [x0, y0, x1, y1]`, the class by name when the data set
/// names it.
fn describe_detection(d: &Detection, class_names: &[String]) -> String {
    let class = class_names
        .get(d.class)
        .cloned()
        .unwrap_or_else(|| d.class.to_string());
    format!(
        "{class} ({:.3}) [{:.1}, {:.1}, {:.1}, {:.1}]",
        d.score, d.x0, d.y0, d.x1, d.y1
    )
}

/// The default mask grid of instance segmentation (Mask R-CNN's 28×28;
/// a model with another grid adapts the task, `ZooModel::adapt_task`).
pub const INSTANCE_MASK_SIZE: [usize; 2] = [28, 28];

impl BuildTask for InstanceSegmentationTraining {
    const KIND: TaskKind = TaskKind::InstanceSegmentation;

    /// The data set's class names; masks on Mask R-CNN's 28×28 grid as
    /// logits, pasted into the input image and cut at probability 0.5.
    fn build(_config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(InstanceSegmentationTraining {
            class_names: facts.class_names.clone(),
            post: InstanceConfig::new(INSTANCE_MASK_SIZE),
        })
    }

    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        image_input(path, data)
    }

    /// `class (score) [x0, y0, x1, y1] N px`, best first, `;`-separated:
    /// each instance with the pixel count of its mask.
    fn describe(output: &Vec<InstanceMask>, class_names: &[String]) -> String {
        if output.is_empty() {
            return "no instance".into();
        }
        output
            .iter()
            .map(|m| {
                let area = m.mask.iter().filter(|&&v| v != 0).count();
                format!(
                    "{} {area} px",
                    describe_detection(&m.detection, class_names)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The image with each mask tinted in its class colour, its box, class
    /// name and score.
    fn draw(
        input: &Sample,
        output: &Vec<InstanceMask>,
        names: &[String],
        path: &Path,
    ) -> Result<()> {
        let mut canvas = canvas_of(input, path)?;
        canvas.instance_masks(output, names)?;
        Ok(canvas.save(path)?)
    }
}

/// The data's keypoint count, or an error saying the data has none.
fn data_joints(facts: &DataFacts) -> Result<usize> {
    facts.joints.ok_or_else(|| RunError::Config {
        file: "[data]".into(),
        line: 0,
        message: "the data has no keypoints: a keypoint task needs instances with keypoints".into(),
    })
}

/// `[task] pck_alpha` and `oks_sigmas` over the defaults.
fn keypoint_metrics(config: &TaskConfig) -> KeypointMetrics {
    let mut m = KeypointMetrics::default();
    if let Some(a) = config.pck_alpha {
        m.pck_alpha = a;
    }
    m.sigmas = config.oks_sigmas.clone();
    m
}

/// An image file as a sample's `image` input (the vision tasks' `read_input`).
fn image_input(path: &Path, data: &DataConfig) -> Result<Sample> {
    let img = unidl_data::parse::load_image(path, data.channels)?;
    Ok(Sample::image(img, None, path.display().to_string()))
}

/// The keypoint tasks' shared input reading, description and drawing.
macro_rules! keypoint_io {
    () => {
        fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
            image_input(path, data)
        }

        /// `j (x, y) score` per joint, `;`-separated.
        fn describe(output: &Vec<PredictedKeypoint>, _class_names: &[String]) -> String {
            describe_keypoints(output)
        }

        /// The image with each joint as a dot coloured by joint.
        fn draw(
            input: &Sample,
            output: &Vec<PredictedKeypoint>,
            _names: &[String],
            path: &Path,
        ) -> Result<()> {
            draw_keypoints(input, output, path)
        }
    };
}

/// `j (x, y) score` per joint, `;`-separated.
fn describe_keypoints(output: &[PredictedKeypoint]) -> String {
    output
        .iter()
        .enumerate()
        .map(|(j, k)| format!("{j} ({:.1}, {:.1}) {:.2}", k.x, k.y, k.score))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The image with each joint as a dot coloured by joint.
fn draw_keypoints(input: &Sample, output: &[PredictedKeypoint], path: &Path) -> Result<()> {
    let mut canvas = canvas_of(input, path)?;
    canvas.keypoints(output)?;
    Ok(canvas.save(path)?)
}

impl BuildTask for KeypointHeatmaps {
    const KIND: TaskKind = TaskKind::KeypointHeatmaps;

    /// One heatmap per joint of the data (its keypoint count), stride 4
    /// and σ = 2 (HRNet's, `[task] sigma` overrides σ), PCK at
    /// `[task] pck_alpha` of the box's longer side, keypoint AP with `[task]
    /// oks_sigmas`. Data without keypoints is refused.
    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        let mut task = KeypointHeatmaps::new(data_joints(facts)?);
        if let Some(s) = config.sigma {
            task.sigma = s;
        }
        task.metrics = keypoint_metrics(config);
        Ok(task)
    }

    keypoint_io!();
}

impl BuildTask for KeypointRegression {
    const KIND: TaskKind = TaskKind::KeypointRegression;

    /// The data's joints as coordinates, fractions of a 112 × 112 input
    /// (PFLD's; a model adapts it to its own input size), PCK and keypoint
    /// AP as for heatmaps. Data without keypoints is refused.
    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(KeypointRegression {
            joints: data_joints(facts)?,
            input_size: [112, 112],
            metrics: keypoint_metrics(config),
        })
    }

    keypoint_io!();
}

impl BuildTask for PixelClassification {
    const KIND: TaskKind = TaskKind::SemanticSegmentation;

    /// Label 0 is the background (pixels no mask covers) and the data
    /// set's class `c` is label `c + 1`, as torchvision's segmentation
    /// models number VOC's classes; label 255 is ignored. The model needs
    /// `num_classes` ≥ the data's classes + 1. `[task] class_weights` (one
    /// per label, background first; finite, ≥ 0, not all 0) weight the
    /// cross-entropy; `dice_weight` (finite, ≥ 0) adds a soft Dice loss.
    fn build(config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        let num_classes = facts.class_names.len() + 1;
        let bad = |message: String| RunError::Config {
            file: "[task]".into(),
            line: 0,
            message,
        };
        let class_weights = match &config.class_weights {
            None => None,
            Some(w) if w.len() != num_classes => {
                return Err(bad(format!(
                    "class_weights: {} values, the task has {num_classes} labels (background                      first, then the data set's {} classes)",
                    w.len(),
                    num_classes - 1
                )));
            }
            Some(w) if w.iter().any(|v| !v.is_finite() || *v < 0.0) => {
                return Err(bad(format!(
                    "class_weights: {w:?}: every weight must be finite and ≥ 0"
                )));
            }
            Some(w) if w.iter().all(|v| *v == 0.0) => {
                return Err(bad("class_weights: all 0, nothing would be learnt".into()));
            }
            Some(w) => Some(w.iter().map(|&v| v as f32).collect()),
        };
        if !config.dice_weight.is_finite() || config.dice_weight < 0.0 {
            return Err(bad(format!(
                "dice_weight: {} must be finite and ≥ 0",
                config.dice_weight
            )));
        }
        Ok(PixelClassification {
            num_classes,
            background: 0,
            ignore_index: Some(255),
            class_offset: 1,
            class_weights,
            dice_weight: config.dice_weight,
        })
    }

    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        image_input(path, data)
    }

    /// The share of the pixels per label, largest first: `background
    /// 71.2 %, disc 12.3 %, …` (a label beyond the data's classes by its
    /// number).
    fn describe(output: &ClassMap, class_names: &[String]) -> String {
        let mut counts = std::collections::BTreeMap::<u32, usize>::new();
        for &c in &output.classes {
            *counts.entry(c).or_default() += 1;
        }
        let total = output.classes.len().max(1) as f64;
        let mut shares: Vec<(u32, usize)> = counts.into_iter().collect();
        shares.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        shares
            .iter()
            .map(|&(label, n)| {
                let name = match label {
                    0 => "background".to_string(),
                    l => class_names
                        .get(l as usize - 1)
                        .cloned()
                        .unwrap_or_else(|| format!("label {l}")),
                };
                format!("{name} {:.1} %", 100.0 * n as f64 / total)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The image with every non-background pixel in its class colour.
    fn draw(input: &Sample, output: &ClassMap, _names: &[String], path: &Path) -> Result<()> {
        let mut canvas = canvas_of(input, path)?;
        canvas.class_map(output, Some(0))?;
        Ok(canvas.save(path)?)
    }
}

/// A canvas over the sample's image input, for `--draw` into `path`.
fn canvas_of(input: &Sample, path: &Path) -> Result<unidl_train::draw::Canvas> {
    let image = input
        .image_input("image")
        .ok_or_else(|| RunError::NotFound {
            path: path.to_path_buf(),
            hint: format!("; {} has no image to draw on", input.source),
        })?;
    Ok(unidl_train::draw::Canvas::from_image(image))
}
