//! How the run layer builds each task of `unidl-train` from `[task]` and the
//! data, reads `unidl infer` inputs for it and prints its outputs.

use std::path::Path;

use unidl_data::{Input, Sample};
use unidl_train::outputs::{ClassMap, DecodedSequence, Detection, InstanceMask, PredictedKeypoint};
use unidl_train::postprocess::InstanceConfig;
use unidl_train::{Alphabet, SpeechRecognition, SpeechSynthesis, TransducerRecognition, Waveform};
use unidl_train::{
    ClassScore, FilledText, ImageClassification, InstanceSegmentationTraining, KeypointHeatmaps,
    KeypointMetrics, KeypointRegression, MaskedLanguageModelling, ObjectDetection,
    PixelClassification, SentenceEmbedding, SequenceToSequence, SourceInput, TextClassification,
    TextSimilarity, VideoClassification,
};

use crate::config::{DataConfig, TaskConfig};
use crate::error::{Result, RunError};
use crate::registry::{BuildTask, DataFacts, TaskKind};

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

/// The default alphabet of speech recognition: lower-case letters, the
/// apostrophe and the space.
pub const DEFAULT_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz' ";

/// `[task] alphabet` (a repeated character is an error naming the key) and
/// `[task] beam_width` (default 1, greedy).
fn speech_task(config: &TaskConfig) -> Result<(Alphabet, usize)> {
    let chars = config.alphabet.as_deref().unwrap_or(DEFAULT_ALPHABET);
    let mut seen = std::collections::BTreeSet::new();
    if chars.is_empty() || !chars.chars().all(|c| seen.insert(c)) {
        return Err(RunError::Config {
            file: "[task]".into(),
            line: 0,
            message: format!("alphabet {chars:?}: needs at least one character, each once"),
        });
    }
    let beam = config.beam_width.unwrap_or(1);
    if beam == 0 {
        return Err(RunError::Config {
            file: "[task]".into(),
            line: 0,
            message: "beam_width: must be at least 1 (1 decodes greedily)".into(),
        });
    }
    Ok((Alphabet::characters(chars), beam))
}

/// A recording (WAV, MP3; more with the `ffmpeg` feature), loaded as the
/// data set's (`[data] sample_rate`, `audio_channels`).
fn speech_input(path: &Path, data: &DataConfig) -> Result<Sample> {
    if !path.is_file() {
        return Err(RunError::NotFound {
            path: path.to_path_buf(),
            hint: String::new(),
        });
    }
    Ok(unidl_data::dataset::load_audio_sample(
        path,
        &unidl_data::dataset::AudioLoad {
            sample_rate: data.sample_rate,
            channels: data.audio_channels,
            max_duration: data.max_duration,
        },
    )?)
}

/// The transcript (the label ids when there is no text).
fn transcript(output: &DecodedSequence) -> String {
    output
        .text
        .clone()
        .unwrap_or_else(|| format!("{:?}", output.ids))
}

impl BuildTask for SpeechRecognition {
    const KIND: TaskKind = TaskKind::SpeechRecognition;

    /// The alphabet from `[task] alphabet` and the CTC search from `[task]
    /// beam_width`; the spectrogram is the `audio` input (the
    /// `mel_spectrogram` transform replaces it).
    fn build(config: &TaskConfig, _facts: &DataFacts) -> Result<Self> {
        let (alphabet, beam_width) = speech_task(config)?;
        Ok(SpeechRecognition {
            input: "audio".into(),
            alphabet,
            beam_width,
        })
    }

    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        speech_input(path, data)
    }

    /// The transcript.
    fn describe(output: &DecodedSequence, _class_names: &[String]) -> String {
        transcript(output)
    }
}

impl BuildTask for TransducerRecognition {
    const KIND: TaskKind = TaskKind::TransducerRecognition;

    /// As `speech_recognition`: `[task] alphabet`, and `[task] beam_width`
    /// for the transducer's beam search.
    fn build(config: &TaskConfig, _facts: &DataFacts) -> Result<Self> {
        let (alphabet, beam_width) = speech_task(config)?;
        Ok(TransducerRecognition {
            input: "audio".into(),
            alphabet,
            beam_width,
        })
    }

    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        speech_input(path, data)
    }

    /// The transcript.
    fn describe(output: &DecodedSequence, _class_names: &[String]) -> String {
        transcript(output)
    }
}

impl BuildTask for SpeechSynthesis {
    const KIND: TaskKind = TaskKind::SpeechSynthesis;

    /// `[task] segment_frames` (training windows, default 16 frames),
    /// `quantization_channels` (default 256) and `[task.generation]`
    /// `temperature` (default 1) and `seed`; the waveform is the `audio`
    /// input, the frames the `mel` one (`mel_spectrogram` with `output = "mel"`).
    fn build(config: &TaskConfig, _facts: &DataFacts) -> Result<Self> {
        let bad = |message: String| RunError::Config {
            file: "[task]".into(),
            line: 0,
            message,
        };
        let segment = config.segment_frames.unwrap_or(16);
        if segment == 0 {
            return Err(bad("segment_frames: must be at least 1".into()));
        }
        let q = config.quantization_channels.unwrap_or(256);
        if q < 2 {
            return Err(bad(format!("quantization_channels: {q}, needs at least 2")));
        }
        let (temperature, seed) = config
            .generation
            .as_ref()
            .map_or((1.0, 0), |g| (g.temperature as f32, g.seed));
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(bad(format!(
                "generation.temperature: {temperature} must be a finite value ≥ 0"
            )));
        }
        Ok(SpeechSynthesis::new(segment, q, temperature, seed))
    }

    /// A recording: its frames are synthesised again (the waveform itself
    /// is not shown to the model).
    fn read_input(path: &Path, data: &DataConfig) -> Result<Sample> {
        let mut s = speech_input(path, data)?;
        if let Some(Input::Audio(a)) = s.inputs.get_mut("audio") {
            a.channels = a.channels.max(1);
        }
        Ok(s)
    }

    /// Text to frames by unit selection: each word's recording by `[task]
    /// voice` in the `[task] voice_bank` manifest, joined with 50 ms of
    /// silence; the run's `mel_spectrogram` then gives the frames the
    /// vocoder generates from.
    fn text_input(text: &str, data: &DataConfig, task: &TaskConfig) -> Result<Sample> {
        let audio = voice_bank_audio(text, data, task)?;
        let mut s = Sample {
            source: format!("--text {text:?}"),
            ..Sample::default()
        };
        s.inputs.insert("audio".into(), Input::Audio(audio));
        s.targets.text = Some(text.to_string());
        Ok(s)
    }

    /// Samples generated.
    fn describe(output: &Waveform, _class_names: &[String]) -> String {
        format!("{} samples generated", output.samples.len())
    }

    /// The sample count (the samples themselves go to `--draw` WAV files).
    fn to_json(output: &Waveform) -> serde_json::Value {
        serde_json::json!({ "samples": output.samples.len() })
    }

    fn output_extension() -> &'static str {
        "wav"
    }

    /// A 16-bit mono WAV at the input's sample rate, as long as the input
    /// (a batch's rows are padded with silence to its longest).
    fn draw(input: &Sample, output: &Waveform, _names: &[String], path: &Path) -> Result<()> {
        let (rate, len) = match input.inputs.get("audio") {
            Some(Input::Audio(a)) => (a.sample_rate, a.samples.len()),
            _ => (16_000, output.samples.len()),
        };
        write_wav(path, &output.samples[..len.min(output.samples.len())], rate)
    }
}

/// Writes mono samples in [−1, 1] as a 16-bit WAV, atomically (a temporary
/// file renamed into place).
fn write_wav(path: &Path, samples: &[f32], rate: u32) -> Result<()> {
    let io = |source: std::io::Error| RunError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("wav.tmp");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let hound_err = |e: hound::Error| io(std::io::Error::other(e.to_string()));
    let mut w = hound::WavWriter::create(&tmp, spec).map_err(hound_err)?;
    for &x in samples {
        w.write_sample((x.clamp(-1.0, 1.0) * 32_767.0).round() as i16)
            .map_err(hound_err)?;
    }
    w.finalize().map_err(hound_err)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The recordings of `text`'s words by one speaker of the voice bank,
/// joined by 50 ms of silence.
fn voice_bank_audio(text: &str, data: &DataConfig, task: &TaskConfig) -> Result<unidl_data::Audio> {
    let bad = |message: String| RunError::Config {
        file: "[task]".into(),
        line: 0,
        message,
    };
    let bank = task.voice_bank.as_deref().ok_or_else(|| {
        bad(
            "voice_bank: speech synthesis from text needs a manifest of single-word \
             recordings (e.g. \"data:spoken-digits/train.jsonl\")"
                .into(),
        )
    })?;
    let manifest = crate::config::resolve(bank, Path::new("."))?;
    let body = std::fs::read_to_string(&manifest).map_err(|source| RunError::Io {
        path: manifest.clone(),
        source,
    })?;
    let rows: Vec<serde_json::Value> = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| RunError::Config {
                file: manifest.display().to_string(),
                line: 0,
                message: format!("not a JSON line: {e}"),
            })
        })
        .collect::<Result<_>>()?;
    let field =
        |r: &serde_json::Value, k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let voice = match &task.voice {
        Some(v) => v.clone(),
        None => rows
            .iter()
            .find_map(|r| field(r, "speaker"))
            .ok_or_else(|| bad(format!("voice: {} names no speaker", manifest.display())))?,
    };
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let load = unidl_data::dataset::AudioLoad {
        sample_rate: data.sample_rate,
        channels: Some(1),
        max_duration: None,
    };
    let mut out: Option<unidl_data::Audio> = None;
    for word in text.split_whitespace() {
        let word = word.to_lowercase();
        let row = rows
            .iter()
            .find(|r| {
                field(r, "speaker").as_deref() == Some(voice.as_str())
                    && field(r, "transcript").as_deref() == Some(word.as_str())
            })
            .ok_or_else(|| {
                let mut words: Vec<String> = rows
                    .iter()
                    .filter(|r| field(r, "speaker").as_deref() == Some(voice.as_str()))
                    .filter_map(|r| field(r, "transcript"))
                    .filter(|t| !t.contains(' '))
                    .collect();
                words.sort();
                words.dedup();
                bad(format!(
                    "voice_bank {}: no recording of {word:?} by {voice:?} (it has: {})",
                    manifest.display(),
                    words.join(", ")
                ))
            })?;
        let path = dir.join(field(row, "path").unwrap_or_default());
        let s = unidl_data::dataset::load_audio_sample(&path, &load)?;
        let Some(Input::Audio(a)) = s.inputs.get("audio") else {
            return Err(bad(format!("{}: no audio", path.display())));
        };
        match &mut out {
            None => out = Some(a.clone()),
            Some(o) => {
                if o.sample_rate != a.sample_rate {
                    return Err(bad(format!(
                        "voice_bank: {} is at {} Hz, the others at {} Hz (set [data] sample_rate)",
                        path.display(),
                        a.sample_rate,
                        o.sample_rate
                    )));
                }
                let gap = o.sample_rate as usize / 20;
                o.samples.extend(std::iter::repeat_n(0.0, gap));
                o.samples.extend_from_slice(&a.samples);
            }
        }
    }
    out.ok_or_else(|| bad("speech synthesis: the text has no word".into()))
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
    /// `num_classes` ≥ the data's classes + 1.
    fn build(_config: &TaskConfig, facts: &DataFacts) -> Result<Self> {
        Ok(PixelClassification {
            num_classes: facts.class_names.len() + 1,
            background: 0,
            ignore_index: Some(255),
            class_offset: 1,
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
