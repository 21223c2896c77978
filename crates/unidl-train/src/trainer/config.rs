//! The trainer's config (B.4.1) and the record of an epoch.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::callback::{EarlyStopping, EarlyStoppingConfig, Monitor, PlateauConfig, PlateauLr};
use crate::error::{Result, TrainError};

/// The standard's trainer config (B.4.1). `train_dataset`/`val_dataset` and the
/// model are passed to [`construct_trainer`] as values.
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
            EarlyStopping::new(e.clone(), self.monitor)?;
        }
        if let Some(p) = &self.reduce_lr_on_plateau {
            PlateauLr::new(p.clone(), self.monitor)?;
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
