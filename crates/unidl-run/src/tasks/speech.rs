//! The speech tasks in runs: CTC and transducer recognition (`[task]
//! alphabet`, `beam_width`), and synthesis (a vocoder; text to frames by unit
//! selection from `[task] voice_bank`).

use std::path::Path;

use unidl_data::{Input, Sample};
use unidl_train::outputs::DecodedSequence;
use unidl_train::{Alphabet, SpeechRecognition, SpeechSynthesis, TransducerRecognition, Waveform};

use crate::config::{DataConfig, TaskConfig};
use crate::error::{Result, RunError};
use crate::registry::{BuildTask, DataFacts, TaskKind};

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
    /// `quantization_channels` (μ-law levels, default 256; a model whose
    /// output is a mixture of logistics sets linear levels of its own
    /// through `ZooModel::adapt_task`) and `[task.generation]`
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
