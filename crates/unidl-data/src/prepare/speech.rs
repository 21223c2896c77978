//! Spoken digits rendered by the `espeak-ng` synthesiser (resampled to
//! 16 kHz mono by `sox` when it is installed) with audio manifests.

use std::path::Path;
use std::process::Command;

use rand::Rng as _;
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
    /// Digit strings (2–5 digits, e.g. "three one four") per (speed, voice)
    /// pair, besides the single digits; each at its own pitch.
    pub strings: usize,
    /// Range of espeak-ng pitches (`-p`, 0–99) the strings are spoken at.
    pub pitches: [u32; 2],
    /// Seed of the digit strings and their pitches.
    pub seed: u64,
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
            strings: 60,
            pitches: [25, 75],
            seed: 0,
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
    transcript: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<usize>,
    speaker: String,
    speed: u32,
    sample_rate: u32,
}

/// Renders every digit word with every (speed, voice) pair into
/// `out/wav/<voice>_s<speed>_<digit>.wav`, and `strings` digit strings of
/// 2–5 digits per pair (drawn from `seed`, spoken at a pitch drawn from
/// `pitches`) into `out/wav/<voice>_s<speed>_str<k>.wav`, and writes the
/// manifests `out/train.jsonl` / `out/test.jsonl`, one line per file:
/// `{"path": "wav/…", "transcript": "seven", "label": 7, "speaker": <voice>,
/// "speed": <wpm>, "sample_rate": <Hz>}` (paths relative to the manifest; a
/// string's transcript is its words separated by spaces; `label`, the
/// digit's class, is written only when there are no strings, as a
/// manifest gives labels to all its rows or to none). Recordings of the voices listed in `test_voices` are the test
/// split, so test speakers are never heard in training.
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
    if opts.pitches[0] > opts.pitches[1] || opts.pitches[1] > 99 {
        return Err(DataError::Config {
            key: "pitches".into(),
            reason: format!("{:?} must be [low, high] within 0..=99", opts.pitches),
        }
        .into());
    }
    let render =
        |name: &str, text: &str, voice: &str, speed: u32, pitch: u32| -> PrepareResult<()> {
            let path = wav_dir.join(name);
            let raw = match &sox {
                Some(_) => wav_dir.join(format!(".raw-{name}")),
                None => path.clone(),
            };
            run_tool(Command::new(&espeak).arg("-w").arg(&raw).args([
                "-v",
                voice,
                "-s",
                &speed.to_string(),
                "-p",
                &pitch.to_string(),
                text,
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
            Ok(())
        };
    for (k, &(speed, v)) in combos[..take].iter().enumerate() {
        let voice = &opts.voices[v];
        let stem = format!("{}_s{speed}", voice.replace('+', "-"));
        let mut rows = Vec::new();
        for (label, word) in DIGIT_WORDS.iter().enumerate() {
            let name = format!("{stem}_{label}.wav");
            render(&name, word, voice, speed, 50)?;
            // a manifest's labels are all given or all absent: digit
            // classes only when there are no strings
            rows.push((name, word.to_string(), (opts.strings == 0).then_some(label)));
        }
        let mut rng = crate::transform::rng_for(opts.seed, k as u64, v as u64);
        for i in 0..opts.strings {
            let n = rng.random_range(2..=5);
            let words: Vec<&str> = (0..n)
                .map(|_| DIGIT_WORDS[rng.random_range(0..10)])
                .collect();
            let text = words.join(" ");
            let pitch = rng.random_range(opts.pitches[0]..=opts.pitches[1]);
            let name = format!("{stem}_str{i:03}.wav");
            render(&name, &text, voice, speed, pitch)?;
            rows.push((name, text, None));
        }
        for (name, transcript, label) in rows {
            let row = Row {
                path: format!("wav/{name}"),
                transcript,
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
