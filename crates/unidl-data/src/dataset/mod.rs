//! Data sets (§6.2.2.3, B.1): `construct_dataset(path, params)` and
//! `get_sample(dataset, index)`. Samples are loaded lazily, one index at a
//! time, so part of a data set can be read without loading the rest (D-c).
//!
//! | `format` | path | sample |
//! | --- | --- | --- |
//! | `image_folder` | `root/<class>/<image>` | `image`, label |
//! | `csv` / `jsonl` | manifest of `path`, `label` | `image`, label |
//! | `coco` | annotation `.json` ([`CocoDataset`]) | `image`, boxes, crowd, masks, keypoints |
//! | `voc` | root with `Annotations/` ([`VocDataset`]) | `image`, boxes, difficult |
//! | `audio_manifest` | `.jsonl`/`.csv` of `path`, `transcript` ([`AudioManifest`]) | `audio`, text, label?, speaker? |
//! | `text_classification` | `.jsonl`/`.csv` of `text`, `label` ([`TextClassification`]) | `text`, label |
//! | `text_folder` | `root/<class>/*.txt` | `text`, label |
//! | `image_text` | `.jsonl`/`.csv` of `path`, `text` ([`ImageText`]) | `image`, text |
//! | `parallel_text` | `.tsv` or `.jsonl` of `source`, `target` ([`ParallelText`]) | `text`, target text |
//! | `video_folder` | `root/<class>/<clip>` ([`VideoFolder`]) | `video`, label |
//!
//! `format` may be left out where the path says it ([`guess_format`]).
//! A broken sample is an error when it is loaded, naming its file; with
//! `on_error = "skip"` construction loads every sample once, drops the broken
//! ones and keeps a [`ValidationReport`] ([`PreparedDataset::report`]), so no
//! sample is ever skipped silently. [`PreparedDataset::validate`] gives the
//! same report without dropping anything.

mod audio;
mod coco;
pub mod coco_mask;
mod folder;
mod image_text;
mod parallel;
mod report;
mod rows;
mod text;
mod video;
mod voc;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::sample::Sample;
use crate::transform::{Compose, Registry, Transform, TransformConfig, rng_for};

pub use audio::{AudioLoad, AudioManifest, load_audio_sample};
pub use coco::CocoDataset;
pub use folder::LabeledImages;
pub use image_text::ImageText;
pub use parallel::ParallelText;
pub use report::{Failure, OnError, ValidationReport};
pub use text::TextClassification;
pub use video::{VIDEO_EXT, VideoFolder, load_clip};
pub use voc::{VOC_CLASSES, VocDataset};

/// A collection of samples addressed by index.
pub trait Dataset: Send + Sync + std::fmt::Debug {
    /// Number of samples (D-b).
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Loads sample `index` without any transform.
    fn get(&self, index: usize) -> Result<Sample>;
    /// Class names, when the data set has them.
    fn classes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The file (or manifest line) sample `index` comes from, without loading it.
    fn source(&self, _index: usize) -> Option<String> {
        None
    }
    /// A cheap size of sample `index` without loading it — characters of
    /// its text (inline texts; sources plus targets of pairs; an OCR line's
    /// text) — for length-grouped batching; `None` where unknown.
    fn length(&self, _index: usize) -> Option<usize> {
        None
    }
}

/// Layout of the files under a data-set path.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    /// `root/<class>/<image>`: one sub-folder per class.
    ImageFolder,
    /// A CSV manifest with `path` and `label` columns (paths relative to the manifest).
    Csv,
    /// A JSON-lines manifest with `path` and `label` fields.
    Jsonl,
    /// A COCO annotation `.json` ([`CocoDataset`]).
    Coco,
    /// A Pascal VOC root with `Annotations/` and `JPEGImages/` ([`VocDataset`]).
    Voc,
    /// A `.jsonl`/`.csv` of audio files with transcripts ([`AudioManifest`]).
    AudioManifest,
    /// A `.jsonl`/`.csv` with `text` and `label` ([`TextClassification`]).
    TextClassification,
    /// `root/<class>/*.txt` ([`TextClassification::open_folder`]).
    TextFolder,
    /// A `.tsv` of `source<TAB>target` or `.jsonl` with `source`/`target` ([`ParallelText`]).
    ParallelText,
    /// A `.jsonl`/`.csv` of images with the text they show ([`ImageText`]).
    ImageText,
    /// `root/<class>/<clip>.{mp4,mkv,avi,mov,webm}` ([`VideoFolder`]).
    VideoFolder,
}

impl DatasetFormat {
    /// True for the layouts whose samples have a `text` input (what a
    /// tokenizer reads); false where text is only a target (OCR lines,
    /// transcripts) or absent.
    pub fn has_text_inputs(self) -> bool {
        matches!(
            self,
            DatasetFormat::TextClassification
                | DatasetFormat::TextFolder
                | DatasetFormat::ParallelText
        )
    }
}

/// `construct_dataset` parameters (a `[dataset]` table in a run config).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetParams {
    /// Layout; guessed from the path when omitted (see [`guess_format`]).
    #[serde(default)]
    pub format: Option<DatasetFormat>,
    /// Image channels to decode to (1 or 3; default: as stored, gray stays gray).
    #[serde(default)]
    pub channels: Option<usize>,
    /// Preprocessing and augmentation (D-d), applied by `get_sample`.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Seed of the transforms' random draws.
    #[serde(default)]
    pub seed: u64,
    /// Keep only samples `[start, end)` (D-c).
    #[serde(default)]
    pub range: Option<[usize; 2]>,
    /// COCO: folder of the images, relative to the JSON's folder (default: that
    /// folder); `{stem}` stands for the JSON's file stem (`"../images/{stem}"`
    /// reads `annotations/train.json`'s images from `images/train/`).
    #[serde(default)]
    pub images_dir: Option<PathBuf>,
    /// VOC: the `ImageSets/Main/<split>.txt` list to read (default: every annotation).
    #[serde(default)]
    pub split: Option<String>,
    /// VOC: class names, in class-index order (default: the 20 VOC classes).
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// Audio: resample to this rate (Hz) at load (default: each file's rate).
    #[serde(default)]
    pub sample_rate: Option<u32>,
    /// Audio: channels at load (1 downmixes; default: as stored).
    #[serde(default)]
    pub audio_channels: Option<u16>,
    /// Audio: longest accepted clip in seconds; longer is an `Invalid` error naming the file.
    #[serde(default)]
    pub max_duration: Option<f64>,
    /// Video: frames per clip, evenly spaced (default 16).
    #[serde(default)]
    pub frames: Option<usize>,
    /// Video: `[height, width]` every frame is resized to (default: as decoded).
    #[serde(default)]
    pub frame_size: Option<[usize; 2]>,
    /// `fail` (default) or `skip`: drop samples that fail to load, with a report (see [`OnError`]).
    #[serde(default)]
    pub on_error: OnError,
}

/// A data set with its preprocessing pipeline: what `construct_dataset` returns.
#[derive(Debug, Clone)]
pub struct PreparedDataset {
    inner: Arc<dyn Dataset>,
    pipeline: Arc<Compose>,
    seed: u64,
    root: PathBuf,
    report: Option<Arc<ValidationReport>>,
}

impl PreparedDataset {
    /// Wraps any data set with a pipeline.
    pub fn new(inner: Arc<dyn Dataset>, pipeline: Compose, seed: u64, root: PathBuf) -> Self {
        PreparedDataset {
            inner,
            pipeline: Arc::new(pipeline),
            seed,
            root,
            report: None,
        }
    }

    /// Loads every sample once (without transforms) and lists those that
    /// fail, with their source and error. Costs a full pass over the data.
    pub fn validate(&self) -> ValidationReport {
        let failures = (0..self.len())
            .filter_map(|index| {
                self.inner.get(index).err().map(|e| Failure {
                    index,
                    source: self
                        .inner
                        .source(index)
                        .unwrap_or_else(|| format!("sample {index}")),
                    error: e.to_string(),
                })
            })
            .collect();
        ValidationReport {
            checked: self.len(),
            failures,
        }
    }

    /// With `on_error = "skip"`: the samples dropped at construction and why
    /// (indices are those before dropping). `None` with `on_error = "fail"`.
    pub fn report(&self) -> Option<&ValidationReport> {
        self.report.as_deref()
    }

    /// Where sample `index` comes from (file or manifest line), without loading it.
    pub fn source(&self, index: usize) -> Option<String> {
        self.inner.source(index)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Every sample's [`Dataset::length`] (for length-grouped batching), or
    /// `None` when the data set does not know one.
    pub fn lengths(&self) -> Option<Vec<usize>> {
        (0..self.len()).map(|i| self.inner.length(i)).collect()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Class names.
    pub fn classes(&self) -> Vec<String> {
        self.inner.classes()
    }

    /// Where it was read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sample `index` of `epoch`, transformed with a generator seeded by
    /// (seed, epoch, index): reproducible, and independent of loader threads.
    pub fn get_sample_at(&self, index: usize, epoch: u64) -> Result<Sample> {
        if index >= self.len() {
            return Err(DataError::OutOfRange {
                index,
                len: self.len(),
            });
        }
        let s = self.inner.get(index)?;
        let mut rng = rng_for(self.seed, epoch, index as u64);
        self.pipeline.apply(s, &mut rng)
    }

    /// The same samples restricted to `indices` (a split or a filter).
    pub fn subset(&self, indices: Vec<usize>) -> Result<PreparedDataset> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::OutOfRange {
                index: bad,
                len: self.len(),
            });
        }
        Ok(PreparedDataset {
            inner: Arc::new(Subset {
                inner: self.inner.clone(),
                indices,
            }),
            pipeline: self.pipeline.clone(),
            seed: self.seed,
            root: self.root.clone(),
            report: self.report.clone(),
        })
    }

    /// Splits into a first part of `fraction` of the samples and the rest, after
    /// a shuffle seeded by `seed`.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(PreparedDataset, PreparedDataset)> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(DataError::config(
                "split",
                format!("fraction {fraction} is outside [0, 1]"),
            ));
        }
        let order = crate::transform::permutation(self.len(), seed, u64::MAX);
        let cut = (self.len() as f64 * fraction).round() as usize;
        Ok((
            self.subset(order[..cut].to_vec())?,
            self.subset(order[cut..].to_vec())?,
        ))
    }
}

/// Samples of another data set at given indices.
#[derive(Debug)]
struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let i = *self.indices.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.indices.len(),
        })?;
        self.inner.get(i)
    }
    fn classes(&self) -> Vec<String> {
        self.inner.classes()
    }
    fn source(&self, index: usize) -> Option<String> {
        self.inner.source(*self.indices.get(index)?)
    }
    fn length(&self, index: usize) -> Option<usize> {
        self.inner.length(*self.indices.get(index)?)
    }
}

/// `construct_dataset(path, params)` (B.1.1). A missing path is
/// [`DataError::NotFound`]; a bad parameter is [`DataError::Config`].
pub fn construct_dataset(path: &Path, params: &DatasetParams) -> Result<PreparedDataset> {
    construct_dataset_with(path, params, &Registry::new())
}

/// [`construct_dataset`] with user-registered transforms.
pub fn construct_dataset_with(
    path: &Path,
    params: &DatasetParams,
    registry: &Registry,
) -> Result<PreparedDataset> {
    if !path.exists() {
        return Err(DataError::NotFound {
            path: path.to_path_buf(),
        });
    }
    if let Some(c) = params.channels
        && !matches!(c, 1 | 3)
    {
        return Err(DataError::config("channels", format!("{c} must be 1 or 3")));
    }
    let format = match params.format {
        Some(f) => f,
        None => guess_format(path)?,
    };
    let inner = open_format(path, format, params)?;
    let pipeline = Compose(
        params
            .transforms
            .iter()
            .map(|t| t.build(registry))
            .collect::<Result<_>>()?,
    );
    let ds = PreparedDataset::new(inner, pipeline, params.seed, path.to_path_buf());
    let ds = match params.range {
        None => ds,
        Some([a, b]) if a <= b && b <= ds.len() => ds.subset((a..b).collect())?,
        Some(r) => {
            return Err(DataError::config(
                "range",
                format!("{r:?} is not within 0..={}", ds.len()),
            ));
        }
    };
    match params.on_error {
        OnError::Fail => Ok(ds),
        OnError::Skip => {
            let report = ds.validate();
            let mut kept = ds.subset(report.good_indices())?;
            kept.report = Some(Arc::new(report));
            Ok(kept)
        }
    }
}

/// The format of `path` when it is unambiguous: a folder with `Annotations/`
/// is `voc`; another folder is `image_folder`, `text_folder` or `video_folder`
/// by the files in its class sub-folders (images win); `.json` is `coco`;
/// `.tsv` is `parallel_text`; a `.csv`/`.jsonl` is read by its columns
/// (`transcript` → `audio_manifest`, `text` + `label` → `text_classification`,
/// `source` + `target` → `parallel_text`, otherwise the image manifest
/// `csv`/`jsonl`). Anything else is [`DataError::Config`] asking for `format`.
pub fn guess_format(path: &Path) -> Result<DatasetFormat> {
    if path.is_dir() {
        if path.join("Annotations").is_dir() {
            return Ok(DatasetFormat::Voc);
        }
        let (mut txt, mut video) = (false, false);
        for dir in rows::sorted_dir(path)?.into_iter().filter(|p| p.is_dir()) {
            for f in rows::sorted_dir(&dir)? {
                let ext = rows::extension(&f);
                if matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "bmp") {
                    return Ok(DatasetFormat::ImageFolder);
                }
                txt |= ext == "txt";
                video |= VIDEO_EXT.contains(&ext.as_str());
            }
        }
        return Ok(match (video, txt) {
            (true, _) => DatasetFormat::VideoFolder,
            (false, true) => DatasetFormat::TextFolder,
            (false, false) => DatasetFormat::ImageFolder,
        });
    }
    let ext = rows::extension(path);
    match ext.as_str() {
        "json" => Ok(DatasetFormat::Coco),
        "tsv" => Ok(DatasetFormat::ParallelText),
        "csv" | "jsonl" => {
            let has = |fields: &std::collections::BTreeSet<String>, k: &str| fields.contains(k);
            let f = rows::peek_fields(path).unwrap_or_default();
            Ok(if has(&f, "transcript") {
                DatasetFormat::AudioManifest
            } else if has(&f, "text") && has(&f, "label") {
                DatasetFormat::TextClassification
            } else if has(&f, "source") && has(&f, "target") {
                DatasetFormat::ParallelText
            } else if has(&f, "path") && has(&f, "text") {
                DatasetFormat::ImageText
            } else if ext == "csv" {
                DatasetFormat::Csv
            } else {
                DatasetFormat::Jsonl
            })
        }
        _ => Err(DataError::config(
            "format",
            format!(
                "cannot guess the format of {}; set `format`",
                path.display()
            ),
        )),
    }
}

fn open_format(path: &Path, format: DatasetFormat, p: &DatasetParams) -> Result<Arc<dyn Dataset>> {
    Ok(match format {
        DatasetFormat::ImageFolder => Arc::new(LabeledImages::open_folder(path, p.channels)?),
        DatasetFormat::Csv | DatasetFormat::Jsonl => {
            Arc::new(LabeledImages::open_manifest(path, p.channels)?)
        }
        DatasetFormat::Coco => Arc::new(CocoDataset::open(
            path,
            p.images_dir.as_deref(),
            p.channels,
        )?),
        DatasetFormat::Voc => Arc::new(VocDataset::open(
            path,
            p.split.as_deref(),
            p.classes.as_deref(),
            p.channels,
        )?),
        DatasetFormat::AudioManifest => Arc::new(AudioManifest::open(
            path,
            AudioLoad {
                sample_rate: p.sample_rate,
                channels: p.audio_channels,
                max_duration: p.max_duration,
            },
        )?),
        DatasetFormat::TextClassification => Arc::new(TextClassification::open_manifest(path)?),
        DatasetFormat::TextFolder => Arc::new(TextClassification::open_folder(path)?),
        DatasetFormat::ParallelText => Arc::new(ParallelText::open(path)?),
        DatasetFormat::ImageText => Arc::new(ImageText::open(path, p.channels)?),
        DatasetFormat::VideoFolder => Arc::new(VideoFolder::open(
            path,
            p.frames.unwrap_or(16),
            p.frame_size,
        )?),
    })
}

/// `get_sample(dataset, index)` (B.1.2): loads, preprocesses and returns the
/// sample (epoch 0 draws). A missing sample file is [`DataError::NotFound`] naming it.
pub fn get_sample(dataset: &PreparedDataset, index: usize) -> Result<Sample> {
    dataset.get_sample_at(index, 0)
}
