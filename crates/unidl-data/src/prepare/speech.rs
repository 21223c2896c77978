//! Spoken digits rendered by the `espeak-ng` synthesiser (resampled to
//! 16 kHz mono by `sox` when it is installed) with audio manifests.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::{PrepareResult, Prepared, create_dir, find_tool, require_tool, run_tool, write_jsonl};
use crate::error::DataError;

/// The words spoken, index = label.
pub const DIGIT_WORDS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Options of [`spoken_digits`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenDigitsOptions {
    /// espeak-ng voices (`-v`), e.g. `en-us`, `en-gb-x-rp`, `en+f3`.
    pub voices: Vec<String>,
    /// Indices into `voices` whose recordings form the test split.
    pub test_voices: Vec<usize>,
    /// Speaking rates in words per minute (`-s`).
    pub speeds: Vec<u32>,
    /// Recordings per digit, taken speed by speed over all voices (`None`: all).
    pub per_class: Option<usize>,
}

impl Default for SpokenDigitsOptions {
    fn default() -> Self {
        let voices = [
            "en-us",
            "en-gb",
            "en-gb-x-rp",
            "en-gb-scotland",
            "en+f3",
            "en-029",
            "en-us+m3",
            "en-gb-x-gbclan",
            "en-us+f2",
            "en+m7",
            "en-gb-x-gbcwmd",
            "en-us+f4",
        ];
        SpokenDigitsOptions {
            voices: voices.iter().map(|v| v.to_string()).collect(),
            test_voices: vec![2, 6, 10],
            speeds: vec![130, 160, 190],
            per_class: None,
        }
    }
}

/// sox effects: cut leading and trailing silence, then pad 50 ms each side.
const TRIM: [&str; 13] = [
    "silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%", "reverse", "pad",
    "0.05", "0.05",
];

#[derive(Serialize)]
struct Row {
    path: String,
    transcript: &'static str,
    label: usize,
    speaker: String,
    speed: u32,
    sample_rate: u32,
}

/// Renders every digit word with every (speed, voice) pair into
/// `out/wav/<voice>_s<speed>_<digit>.wav` and writes the manifests
/// `out/train.jsonl` / `out/test.jsonl`, one line per file:
/// `{"path": "wav/…", "transcript": "seven", "label": 7, "speaker": <voice>,
/// "speed": <wpm>, "sample_rate": <Hz>}` (paths relative to the manifest).
/// Recordings of the voices listed in `test_voices` are the test split, so
/// test speakers are never heard in training.
///
/// With `sox` installed the files are 16 kHz mono 16-bit (resampled without
/// dither, so reruns are identical) with leading and trailing silence cut to
/// 50 ms; without it they keep espeak-ng's
/// 22,050 Hz, and `sample_rate` says so. Needs `espeak-ng`
/// ([`super::PrepareError::MissingTool`] names the apt package otherwise).
pub fn spoken_digits(out: &Path, opts: &SpokenDigitsOptions) -> PrepareResult<Prepared> {
    if opts.voices.is_empty() || opts.speeds.is_empty() {
        return Err(DataError::Config {
            key: "voices".into(),
            reason: "at least one voice and one speed are needed".into(),
        }
        .into());
    }
    if let Some(bad) = opts.test_voices.iter().find(|&&v| v >= opts.voices.len()) {
        return Err(DataError::Config {
            key: "test_voices".into(),
            reason: format!("index {bad} is outside the {} voices", opts.voices.len()),
        }
        .into());
    }
    if let Some(bad) = opts
        .voices
        .iter()
        .find(|v| v.is_empty() || v.contains(['/', '\\']) || v.starts_with('-'))
    {
        return Err(DataError::Config {
            key: "voices".into(),
            reason: format!("`{bad}` is not a voice name"),
        }
        .into());
    }
    let espeak = require_tool("espeak-ng", "espeak-ng")?;
    let sox = find_tool("sox");
    let sample_rate = if sox.is_some() { 16_000 } else { 22_050 };
    let wav_dir = out.join("wav");
    create_dir(&wav_dir)?;
    let combos: Vec<(u32, usize)> = opts
        .speeds
        .iter()
        .flat_map(|&s| (0..opts.voices.len()).map(move |v| (s, v)))
        .collect();
    let take = opts.per_class.unwrap_or(combos.len()).min(combos.len());
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for &(speed, v) in &combos[..take] {
        let voice = &opts.voices[v];
        for (label, word) in DIGIT_WORDS.iter().enumerate() {
            let name = format!("{}_s{speed}_{label}.wav", voice.replace('+', "-"));
            let path = wav_dir.join(&name);
            let raw = match &sox {
                Some(_) => wav_dir.join(format!(".raw-{name}")),
                None => path.clone(),
            };
            run_tool(Command::new(&espeak).arg("-w").arg(&raw).args([
                "-v",
                voice,
                "-s",
                &speed.to_string(),
                word,
            ]))?;
            if let Some(sox) = &sox {
                run_tool(
                    Command::new(sox)
                        .arg("-D")
                        .arg(&raw)
                        .args(["-r", "16000", "-c", "1", "-b", "16"])
                        .arg(&path)
                        .args(TRIM),
                )?;
                std::fs::remove_file(&raw).map_err(|e| DataError::io(&raw, e))?;
            }
            let row = Row {
                path: format!("wav/{name}"),
                transcript: word,
                label,
                speaker: voice.clone(),
                speed,
                sample_rate,
            };
            if opts.test_voices.contains(&v) {
                test.push(row);
            } else {
                train.push(row);
            }
        }
    }
    write_jsonl(&out.join("train.jsonl"), &train)?;
    write_jsonl(&out.join("test.jsonl"), &test)?;
    Ok(Prepared {
        train: train.len(),
        test: test.len(),
    })
}
