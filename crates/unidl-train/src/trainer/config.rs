//! The trainer's config (B.4.1) and the record of an epoch.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The standard's trainer config (B.4.1). `train_dataset`/`val_dataset` and the
/// model are passed to [`construct_trainer`](crate::construct_trainer) as values.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainerConfig {
    /// Number of epochs (≥ 1).
    pub epochs: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Seed of shuffling, transforms and the device generator.
    #[serde(default)]
    pub seed: u64,
    /// Where checkpoints and records go.
    pub output_dir: PathBuf,
    /// Checkpoints to keep (≥ 1).
    #[serde(default = "two")]
    pub keep_last: usize,
    /// Loader threads.
    #[serde(default = "two")]
    pub workers: usize,
    /// Gradient accumulation: each batch is run as this many micro-batches
    /// whose gradients are summed (weighted by size) before one update, so a
    /// large batch fits in less memory. 1 = off.
    #[serde(default = "one")]
    pub micro_batches: usize,
    /// The epoch value watched by `keep_best`, early stopping and reduce-on-plateau.
    #[serde(default)]
    pub monitor: Monitor,
    /// Also keep the best checkpoint (by `monitor`) in `checkpoints/best`.
    #[serde(default)]
    pub keep_best: bool,
    /// Stop when `monitor` stops improving.
    #[serde(default)]
    pub early_stopping: Option<EarlyStoppingConfig>,
    /// Lower the learning rate when `monitor` stops improving.
    #[serde(default)]
    pub reduce_lr_on_plateau: Option<PlateauConfig>,
    /// Write run records (summary, step and epoch metrics, curves) into `output_dir`.
    #[serde(default = "yes")]
    pub records: bool,
    /// A step row is recorded every `log_every` updates.
    #[serde(default = "ten")]
    pub log_every: u64,
    /// Progress bar: `true`/`false`, or unset for "when standard error is a terminal".
    #[serde(default)]
    pub progress: Option<bool>,
    /// Metrics computed on the validation set after each epoch (B.4.1
    /// `metrics`); empty = the task's default metrics. A metric the task
    /// cannot compute is a config error naming `trainer.metrics`.
    #[serde(default)]
    pub metrics: Vec<crate::eval::Metric>,
    /// The training loss (B.4.1 `loss`). The task defines its loss (see
    /// `TaskIo::loss_name`: `cross_entropy` for classification, `ctc` for
    /// CTC speech recognition, …); naming it documents the run and any
    /// other name is a config error naming `trainer.loss`. Unset = the
    /// task's loss.
    #[serde(default)]
    pub loss: Option<String>,
    /// Batch training samples of similar length together (text: less
    /// padding, so faster steps); the order is still shuffled each epoch
    /// (`unidl_data::SamplerConfig::group_by_length`). Needs a data set that
    /// knows its samples' lengths.
    #[serde(default)]
    pub group_by_length: bool,
    /// In a data-parallel run, normalise batch-norm layers with statistics
    /// over every rank's samples (synchronised batch norm, as PyTorch's
    /// `SyncBatchNorm`) instead of each rank's own (the default, as DDP).
    /// No effect on one process.
    #[serde(default)]
    pub sync_batch_norm: bool,
}

fn two() -> usize {
    2
}
fn one() -> usize {
    1
}
fn ten() -> u64 {
    10
}
fn yes() -> bool {
    true
}

impl TrainerConfig {
    /// A config with the required values and defaults for the rest.
    pub fn new(epochs: usize, batch_size: usize, output_dir: impl Into<PathBuf>) -> Self {
        TrainerConfig {
            epochs,
            batch_size,
            seed: 0,
            output_dir: output_dir.into(),
            keep_last: 2,
            workers: 2,
            micro_batches: 1,
            monitor: Monitor::Auto,
            keep_best: false,
            early_stopping: None,
            reduce_lr_on_plateau: None,
            records: true,
            log_every: 10,
            progress: None,
            metrics: Vec::new(),
            loss: None,
            group_by_length: false,
            sync_batch_norm: false,
        }
    }

    /// Checks every value; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, reason: &str| {
            Err(TrainError::Config {
                key: format!("trainer.{key}"),
                reason: reason.into(),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.keep_last == 0 {
            return bad("keep_last", "must be at least 1");
        }
        if self.workers == 0 {
            return bad("workers", "must be at least 1");
        }
        if self.micro_batches == 0 || self.micro_batches > self.batch_size {
            return bad("micro_batches", "must be between 1 and batch_size");
        }
        if self.log_every == 0 {
            return bad("log_every", "must be at least 1");
        }
        if let Some(e) = &self.early_stopping {
            e.validate()?;
        }
        if let Some(p) = &self.reduce_lr_on_plateau {
            p.validate()?;
        }
        Ok(())
    }
}

/// Scalars recorded for one epoch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Mean validation loss, when a validation set is given.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// Validation accuracy, when the task predicts classes and a validation set is given.
    pub val_accuracy: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub learning_rate: f64,
    /// Wall time of the epoch, validation included.
    #[serde(default)]
    pub seconds: f64,
    /// Every validation metric of the task (its default metrics), by name.
    #[serde(default)]
    pub val_scores: crate::eval::Scores,
}

/// Which epoch value is watched by early stopping, reduce-on-plateau and keep-best.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Validation loss when a validation set is given, else training loss.
    #[default]
    Auto,
    /// Mean training loss (lower is better).
    TrainLoss,
    /// Validation loss (lower is better).
    ValLoss,
    /// Validation accuracy (higher is better).
    ValAccuracy,
}

impl Monitor {
    /// The watched value of `record`, if it has one.
    pub fn value(self, record: &EpochRecord) -> Option<f64> {
        match self {
            Monitor::Auto => record.val_loss.or(Some(record.train_loss)),
            Monitor::TrainLoss => Some(record.train_loss),
            Monitor::ValLoss => record.val_loss,
            Monitor::ValAccuracy => record.val_accuracy,
        }
    }

    /// Whether larger values are better.
    pub fn maximize(self) -> bool {
        matches!(self, Monitor::ValAccuracy)
    }

    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::Auto => "val_loss (or train_loss)",
            Monitor::TrainLoss => "train_loss",
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
        }
    }

    /// `record`'s value, or a typed error saying the monitored value is missing.
    pub fn require(self, record: &EpochRecord) -> Result<f64> {
        self.value(record).ok_or_else(|| TrainError::Config {
            key: "trainer.monitor".into(),
            reason: format!(
                "`{}` is not recorded (no validation set, or the task predicts no classes)",
                self.name()
            ),
        })
    }

    /// Whether `value` beats `best` by more than `min_delta`.
    pub fn improves(self, value: f64, best: Option<f64>, min_delta: f64) -> bool {
        match best {
            None => true,
            Some(b) if self.maximize() => value > b + min_delta,
            Some(b) => value < b - min_delta,
        }
    }
}

/// `[trainer.early_stopping]`: stop when the monitored value has not improved
/// by more than `min_delta` for `patience` epochs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// Epochs without improvement that are tolerated.
    pub patience: usize,
    /// Smallest change that counts as improvement.
    #[serde(default)]
    pub min_delta: f64,
}

impl EarlyStoppingConfig {
    /// A negative or NaN `min_delta` is a config error naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.min_delta.is_nan() || self.min_delta < 0.0 {
            return Err(TrainError::Config {
                key: "trainer.early_stopping.min_delta".into(),
                reason: format!("{} must be a non-negative number", self.min_delta),
            });
        }
        Ok(())
    }
}

/// `[trainer.reduce_lr_on_plateau]`: multiply the learning rate by `factor`
/// when the monitored value has not improved by more than `threshold` for
/// `patience` epochs, never below `min_scale`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlateauConfig {
    /// Epochs without improvement before reducing.
    pub patience: usize,
    /// Reduction factor in (0, 1).
    pub factor: f64,
    /// Smallest change that counts as improvement.
    #[serde(default)]
    pub threshold: f64,
    /// Lowest scale of the learning rate.
    #[serde(default)]
    pub min_scale: f64,
}

impl PlateauConfig {
    /// `factor` outside (0, 1) is a config error naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(TrainError::Config {
                key: "trainer.reduce_lr_on_plateau.factor".into(),
                reason: format!("{} must be in (0, 1)", self.factor),
            });
        }
        Ok(())
    }
}
