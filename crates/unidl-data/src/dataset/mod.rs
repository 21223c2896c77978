//! Data sets (§6.2.2.3, B.1): `construct_dataset(path, params)` and
//! `get_sample(dataset, index)`. Samples are loaded lazily, one index at a
//! time, so part of a data set can be read without loading the rest (D-c).

mod folder;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::sample::Sample;
use crate::transform::{Compose, Registry, Transform, TransformConfig, rng_for};

pub use folder::LabeledImages;

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
}

/// `construct_dataset` parameters (a `[dataset]` table in a run config).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetParams {
    /// Layout; guessed from the path when omitted (folder → image_folder, `.csv`, `.jsonl`).
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
}

/// A data set with its preprocessing pipeline: what `construct_dataset` returns.
#[derive(Debug, Clone)]
pub struct PreparedDataset {
    inner: Arc<dyn Dataset>,
    pipeline: Arc<Compose>,
    seed: u64,
    root: PathBuf,
}

impl PreparedDataset {
    /// Wraps any data set with a pipeline.
    pub fn new(inner: Arc<dyn Dataset>, pipeline: Compose, seed: u64, root: PathBuf) -> Self {
        PreparedDataset {
            inner,
            pipeline: Arc::new(pipeline),
            seed,
            root,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inner.len()
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
        let order = crate::sampler::permutation(self.len(), seed, u64::MAX);
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
        None if path.is_dir() => DatasetFormat::ImageFolder,
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => DatasetFormat::Csv,
            Some("jsonl") => DatasetFormat::Jsonl,
            _ => {
                return Err(DataError::config(
                    "format",
                    format!(
                        "cannot guess the format of {}; set `format`",
                        path.display()
                    ),
                ));
            }
        },
    };
    let inner: Arc<dyn Dataset> = match format {
        DatasetFormat::ImageFolder => Arc::new(LabeledImages::open_folder(path, params.channels)?),
        DatasetFormat::Csv | DatasetFormat::Jsonl => {
            Arc::new(LabeledImages::open_manifest(path, params.channels)?)
        }
    };
    let pipeline = Compose(
        params
            .transforms
            .iter()
            .map(|t| t.build(registry))
            .collect::<Result<_>>()?,
    );
    let ds = PreparedDataset::new(inner, pipeline, params.seed, path.to_path_buf());
    match params.range {
        None => Ok(ds),
        Some([a, b]) if a <= b && b <= ds.len() => ds.subset((a..b).collect()),
        Some(r) => Err(DataError::config(
            "range",
            format!("{r:?} is not within 0..={}", ds.len()),
        )),
    }
}

/// `get_sample(dataset, index)` (B.1.2): loads, preprocesses and returns the
/// sample (epoch 0 draws). A missing sample file is [`DataError::NotFound`] naming it.
pub fn get_sample(dataset: &PreparedDataset, index: usize) -> Result<Sample> {
    dataset.get_sample_at(index, 0)
}
