//! Real recorded speech with transcripts from Debian's
//! `pocketsphinx-testdata` (CMU Sphinx's test recordings,
//! `usr/share/pocketsphinx/test/data/`) into a 16 kHz audio manifest for
//! evaluation: too few utterances to train on, but real talkers, real rooms
//! and real microphones.
//!
//! What the package holds, and what is used:
//!
//! | in the package | used as |
//! |---|---|
//! | `cards/00{1..5}.wav` + `cards/cards.transcription` | 5 utterances ("ten of clubs", …), speaker `cards` |
//! | `librivox/*.wav` + `librivox/transcription` | 5 LibriVox sentences of *Sense and Sensibility*, speaker `librivox` |
//! | `goforward.raw` | "go forward ten meters", speaker `goforward` (the sentence of the package's `goforward.gram`; upstream's unit tests decode it from this file) |
//! | `tidigits/dhd.2934z.raw` | "two nine three four zero", speaker `tidigits-dhd` (TIDIGITS names a file by its digits, `z` = zero; upstream's tests decode it so) |
//! | `numbers.raw`, `something.raw` | left out: nothing in the package or upstream says what is spoken |
//! | `tidigits/*.mfc`, `goforward.mfc` | left out: cepstra, not audio |

use std::path::Path;

use serde::Serialize;

use super::{PrepareResult, Prepared, create_dir, read_bytes, write_file, write_jsonl};
use crate::dataset::{AudioLoad, load_audio_sample};
use crate::error::DataError;
use crate::sample::Input;

/// Sample rate of the written files (Hz).
pub const SPEECH_TESTDATA_RATE: u32 = 16_000;

/// Sphinx transcription files, relative to the package's `test/data/`:
/// (speaker, transcription file, folder of its `<id>.wav` recordings).
pub const SPEECH_TESTDATA_TRANSCRIBED: [(&str, &str, &str); 2] = [
    ("cards", "cards/cards.transcription", "cards"),
    ("librivox", "librivox/transcription", "librivox"),
];

/// Headerless recordings (16 kHz, 16-bit little-endian mono PCM) whose words
/// no transcription file lists: (file, speaker, output name, transcript).
pub const SPEECH_TESTDATA_RAW: [(&str, &str, &str, &str); 2] = [
    (
        "goforward.raw",
        "goforward",
        "goforward.wav",
        "go forward ten meters",
    ),
    (
        "tidigits/dhd.2934z.raw",
        "tidigits-dhd",
        "tidigits_dhd_2934z.wav",
        "two nine three four zero",
    ),
];

#[derive(Serialize)]
struct Row {
    path: String,
    transcript: String,
    speaker: String,
    sample_rate: u32,
    /// The recording inside the package (relative to `test/data/`).
    source: String,
}

/// The words of a digit, for [`clean_transcript`].
const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// A transcript in the recognisers' default alphabet: lower-case letters
/// `a`–`z`, the apostrophe and single spaces. Upper case is folded; each digit
/// becomes its word (`"4"` → `"four"`, `"10"` → `"one zero"`); every other
/// ASCII character (punctuation, hyphens, tabs) separates words; runs of
/// spaces collapse and the ends are trimmed.
///
/// A non-ASCII character is an error (folding `é` or `ß` would change the
/// word), and so is a transcript with no words; the `Err` says why.
pub fn clean_transcript(text: &str) -> Result<String, String> {
    let mut spaced = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'a'..='z' | '\'' => spaced.push(c),
            'A'..='Z' => spaced.push(c.to_ascii_lowercase()),
            '0'..='9' => {
                spaced.push(' ');
                spaced.push_str(DIGITS[usize::from(c as u8 - b'0')]);
                spaced.push(' ');
            }
            c if c.is_ascii() => spaced.push(' '),
            c => return Err(format!("character {c:?} is outside a-z")),
        }
    }
    let words: Vec<&str> = spaced.split_whitespace().collect();
    if words.is_empty() {
        return Err(format!("{text:?} has no words"));
    }
    Ok(words.join(" "))
}

/// One line of a Sphinx transcription file, `<s> words </s> (id)`: the words
/// (markers `<…>` and fillers `++…++` dropped, not yet cleaned) and the id.
/// `None` when the line does not end with `(id)`.
fn sphinx_line(line: &str) -> Option<(String, &str)> {
    let line = line.trim();
    let open = line.strip_suffix(')')?.rfind('(')?;
    let id = line[open + 1..line.len() - 1].trim();
    if id.is_empty() {
        return None;
    }
    let words: Vec<&str> = line[..open]
        .split_whitespace()
        .filter(|w| {
            !(w.starts_with('<') && w.ends_with('>')
                || w.len() > 4 && w.starts_with("++") && w.ends_with("++"))
        })
        .collect();
    Some((words.join(" "), id))
}

/// 16-bit samples from `f32` in `[-1, 1]` (the inverse of the decoder's
/// `v / 32768`, so 16-bit sources round-trip exactly).
fn quantise(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&x| (f64::from(x) * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)
        .collect()
}

/// A canonical 44-byte-header PCM WAV: mono, 16-bit, `rate` Hz.
fn wav_bytes(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    b.extend_from_slice(&2u16.to_le_bytes()); // block align
    b.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// The samples of a WAV file at [`SPEECH_TESTDATA_RATE`], mono (decoded by
/// `unidl-media`; other rates are resampled, several channels averaged).
fn wav_samples(path: &Path) -> PrepareResult<Vec<i16>> {
    let load = AudioLoad {
        sample_rate: Some(SPEECH_TESTDATA_RATE),
        channels: Some(1),
        max_duration: None,
    };
    let sample = load_audio_sample(path, &load)?;
    match sample.inputs.get("audio") {
        Some(Input::Audio(a)) => Ok(quantise(&a.samples)),
        _ => Err(DataError::Corrupt {
            path: path.to_path_buf(),
            reason: "decoded to no audio".into(),
        }
        .into()),
    }
}

/// The samples of a headerless 16-bit little-endian PCM file.
fn raw_samples(path: &Path) -> PrepareResult<Vec<i16>> {
    let bytes = read_bytes(path)?;
    if bytes.len() % 2 != 0 {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes: 16-bit PCM needs an even number of bytes",
                bytes.len()
            ),
        }
        .into());
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect())
}

/// Converts the unpacked `pocketsphinx-testdata` (`root` =
/// `usr/share/pocketsphinx/test/data`) into `out/wav/*.wav` (16 kHz mono
/// 16-bit PCM) and the manifest `out/test.jsonl`, one line per utterance:
/// `{"path": "wav/…", "transcript", "speaker", "sample_rate": 16000,
/// "source": <file in the package>}`. There is no training split: the set is
/// for `[data] val` (`unidl eval`), e.g. `val = "data:speech-testdata/test.jsonl"`.
///
/// Utterances, in this order: every line of the transcription files of
/// [`SPEECH_TESTDATA_TRANSCRIBED`] (`<s> words </s> (id)`, the recording is
/// `<folder>/<id>.wav`, written as `wav/<speaker>_<id>.wav`), then the raw
/// recordings of [`SPEECH_TESTDATA_RAW`]. Transcripts go through
/// [`clean_transcript`]. Samples are copied as they are (a file at another
/// rate or with several channels would be resampled and averaged).
///
/// Errors name the file: a missing transcription file or recording is
/// [`DataError::NotFound`]; a transcription line without `(id)`, with an id
/// that is not a file name, given twice, or whose words do not clean is
/// [`DataError::Parse`] with its line; an undecodable WAV, a raw file with
/// an odd number of bytes or a recording with no samples is
/// [`DataError::Corrupt`].
pub fn speech_testdata(root: &Path, out: &Path) -> PrepareResult<Prepared> {
    let wav_dir = out.join("wav");
    create_dir(&wav_dir)?;
    let mut rows = Vec::new();
    let mut emit = |samples: Vec<i16>,
                    recording: &Path,
                    name: String,
                    transcript: String,
                    speaker: &str,
                    source: String|
     -> PrepareResult<()> {
        if samples.is_empty() {
            return Err(DataError::Corrupt {
                path: recording.to_path_buf(),
                reason: "holds no audio samples".into(),
            }
            .into());
        }
        write_file(
            &wav_dir.join(&name),
            wav_bytes(&samples, SPEECH_TESTDATA_RATE),
        )?;
        rows.push(Row {
            path: format!("wav/{name}"),
            transcript,
            speaker: speaker.to_string(),
            sample_rate: SPEECH_TESTDATA_RATE,
            source,
        });
        Ok(())
    };
    for (speaker, file, dir) in SPEECH_TESTDATA_TRANSCRIBED {
        let path = root.join(file);
        let text = String::from_utf8(read_bytes(&path)?).map_err(|e| DataError::Corrupt {
            path: path.clone(),
            reason: format!("not UTF-8: {e}"),
        })?;
        let mut seen: Vec<&str> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parse_error = |reason: String| DataError::Parse {
                path: path.clone(),
                line: Some(i + 1),
                reason,
            };
            let Some((words, id)) = sphinx_line(line) else {
                return Err(parse_error(
                    "expected `<s> words </s> (utterance id)`: no `(id)` at the end".into(),
                )
                .into());
            };
            if id.contains(['/', '\\']) || id.starts_with('.') {
                return Err(parse_error(format!("utterance id {id:?} is not a file name")).into());
            }
            if seen.contains(&id) {
                return Err(parse_error(format!("utterance id {id:?} is given twice")).into());
            }
            seen.push(id);
            let transcript = clean_transcript(&words).map_err(parse_error)?;
            let recording = root.join(dir).join(format!("{id}.wav"));
            let samples = wav_samples(&recording)?;
            emit(
                samples,
                &recording,
                format!("{speaker}_{id}.wav"),
                transcript,
                speaker,
                format!("{dir}/{id}.wav"),
            )?;
        }
    }
    for (file, speaker, name, transcript) in SPEECH_TESTDATA_RAW {
        let recording = root.join(file);
        let samples = raw_samples(&recording)?;
        emit(
            samples,
            &recording,
            name.to_string(),
            transcript.to_string(),
            speaker,
            file.to_string(),
        )?;
    }
    write_jsonl(&out.join("test.jsonl"), &rows)?;
    Ok(Prepared {
        train: 0,
        test: rows.len(),
    })
}
