//! Trainer hooks (Tr-e): extra steps before and after training, each epoch
//! and each batch, plus the built-in callbacks — early stopping,
//! reduce-learning-rate-on-plateau and a progress bar.
//!
//! A callback sees read-only views of the run and may ask the trainer to stop
//! or to scale the learning rate at the end of an epoch through
//! [`EpochEnd`]. Callbacks that keep state rebuild it from the epoch records
//! in [`Callback::on_train_start`], so a resumed run behaves exactly like an
//! uninterrupted one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::schedule::ReduceOnPlateau;
use crate::trainer::{EpochRecord, TrainerConfig};

/// What a callback sees when training starts (or resumes).
#[derive(Debug)]
pub struct TrainBegin<'a> {
    /// The trainer's config.
    pub config: &'a TrainerConfig,
    /// Records of the epochs already done (non-empty after a resume).
    pub records: &'a [EpochRecord],
    /// Optimizer updates already done.
    pub global_step: u64,
    /// Batches per epoch.
    pub batches_per_epoch: u64,
    /// The model summary, as text.
    pub summary: &'a str,
}

/// What a callback sees after each batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchEnd {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Optimizer updates done, this one included.
    pub step: u64,
    /// Batch index within the epoch (0-based).
    pub batch: u64,
    /// Batches per epoch.
    pub batches: u64,
    /// Training loss of the batch.
    pub loss: f64,
    /// Learning rate used for the update.
    pub learning_rate: f64,
    /// Samples in the batch.
    pub samples: usize,
    /// Throughput of this batch (data loading included).
    pub samples_per_second: f64,
}

/// The end of an epoch: records so far, and the trainer's answers a callback can change.
#[derive(Debug)]
pub struct EpochEnd<'a> {
    /// The epoch just finished.
    pub record: &'a EpochRecord,
    /// All records, this one last.
    pub records: &'a [EpochRecord],
    /// Its checkpoint directory.
    pub checkpoint: &'a Path,
    /// Set to `true` to stop after this epoch.
    pub stop: bool,
    /// Why, when stopping.
    pub stop_reason: Option<String>,
    /// Factor applied on top of the schedule from the next step on (starts at
    /// the current factor; reduce-on-plateau lowers it). Saved in checkpoints.
    pub lr_scale: f64,
}

/// A trainer hook. Every method has an empty default.
pub trait Callback: Send {
    /// Before the first epoch of this call to `train` (also after a resume).
    fn on_train_start(&mut self, _begin: &TrainBegin<'_>) -> Result<()> {
        Ok(())
    }
    /// Before an epoch.
    fn on_epoch_start(&mut self, _epoch: usize, _begin_batch: u64) -> Result<()> {
        Ok(())
    }
    /// Before a batch's forward pass.
    fn on_batch_start(&mut self, _epoch: usize, _step: u64) -> Result<()> {
        Ok(())
    }
    /// After a batch's update.
    fn on_batch_end(&mut self, _batch: &BatchEnd) -> Result<()> {
        Ok(())
    }
    /// After an epoch's validation and checkpoint.
    fn on_epoch_end(&mut self, _end: &mut EpochEnd<'_>) -> Result<()> {
        Ok(())
    }
    /// After the last epoch, or after an early stop.
    fn on_train_end(&mut self, _records: &[EpochRecord], _stopped: Option<&str>) -> Result<()> {
        Ok(())
    }
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

/// Early stopping as a callback.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    config: EarlyStoppingConfig,
    monitor: Monitor,
    best: Option<f64>,
    bad: usize,
}

impl EarlyStopping {
    /// A new early-stopping callback; a negative `min_delta` is a config error.
    pub fn new(config: EarlyStoppingConfig, monitor: Monitor) -> Result<Self> {
        if config.min_delta.is_nan() || config.min_delta < 0.0 {
            return Err(TrainError::Config {
                key: "trainer.early_stopping.min_delta".into(),
                reason: format!("{} must be a non-negative number", config.min_delta),
            });
        }
        Ok(EarlyStopping {
            config,
            monitor,
            best: None,
            bad: 0,
        })
    }

    fn observe(&mut self, record: &EpochRecord) -> Result<bool> {
        let v = self.monitor.require(record)?;
        if self.monitor.improves(v, self.best, self.config.min_delta) {
            self.best = Some(v);
            self.bad = 0;
        } else {
            self.bad += 1;
        }
        Ok(self.bad > self.config.patience)
    }
}

impl Callback for EarlyStopping {
    fn on_train_start(&mut self, begin: &TrainBegin<'_>) -> Result<()> {
        self.best = None;
        self.bad = 0;
        for r in begin.records {
            self.observe(r)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, end: &mut EpochEnd<'_>) -> Result<()> {
        if self.observe(end.record)? {
            end.stop = true;
            end.stop_reason = Some(format!(
                "early stopping: {} did not improve for {} epochs (best {:.6})",
                self.monitor.name(),
                self.bad,
                self.best.unwrap_or(f64::NAN)
            ));
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

/// Reduce-learning-rate-on-plateau as a callback (wraps [`ReduceOnPlateau`]).
#[derive(Debug, Clone)]
pub struct PlateauLr {
    config: PlateauConfig,
    monitor: Monitor,
    inner: ReduceOnPlateau,
}

impl PlateauLr {
    /// A new callback; `factor` outside (0, 1) is a config error.
    pub fn new(config: PlateauConfig, monitor: Monitor) -> Result<Self> {
        let inner = Self::fresh(&config, monitor)?;
        Ok(PlateauLr {
            config,
            monitor,
            inner,
        })
    }

    fn fresh(config: &PlateauConfig, monitor: Monitor) -> Result<ReduceOnPlateau> {
        let mut r = ReduceOnPlateau::new(config.patience, config.factor, monitor.maximize())
            .map_err(|_| TrainError::Config {
                key: "trainer.reduce_lr_on_plateau.factor".into(),
                reason: format!("{} must be in (0, 1)", config.factor),
            })?;
        r.threshold = config.threshold;
        r.min_factor = config.min_scale;
        Ok(r)
    }
}

impl Callback for PlateauLr {
    fn on_train_start(&mut self, begin: &TrainBegin<'_>) -> Result<()> {
        self.inner = Self::fresh(&self.config, self.monitor)?;
        for r in begin.records {
            self.inner.observe(self.monitor.require(r)?);
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, end: &mut EpochEnd<'_>) -> Result<()> {
        end.lr_scale = self.inner.observe(self.monitor.require(end.record)?);
        Ok(())
    }
}

/// A progress bar on standard error with ETA, loss, learning rate and
/// samples/s (indicatif). It draws nothing when standard error is not a terminal.
pub struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    epochs: usize,
    batches: u64,
}

impl std::fmt::Debug for ProgressBar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProgressBar")
    }
}

impl Default for ProgressBar {
    fn default() -> Self {
        ProgressBar::new()
    }
}

impl ProgressBar {
    /// A progress bar callback.
    pub fn new() -> Self {
        ProgressBar {
            bar: None,
            epochs: 0,
            batches: 0,
        }
    }
}

impl Callback for ProgressBar {
    fn on_train_start(&mut self, begin: &TrainBegin<'_>) -> Result<()> {
        self.epochs = begin.config.epochs;
        self.batches = begin.batches_per_epoch;
        Ok(())
    }

    fn on_epoch_start(&mut self, epoch: usize, begin_batch: u64) -> Result<()> {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(self.batches),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
        bar.set_position(begin_batch);
        self.bar = Some(bar);
        Ok(())
    }

    fn on_batch_end(&mut self, b: &BatchEnd) -> Result<()> {
        if let Some(bar) = &self.bar {
            bar.set_position(b.batch + 1);
            bar.set_message(format!(
                "loss {:.4} lr {:.2e} {:.0} samples/s",
                b.loss, b.learning_rate, b.samples_per_second
            ));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _end: &mut EpochEnd<'_>) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        Ok(())
    }
}
