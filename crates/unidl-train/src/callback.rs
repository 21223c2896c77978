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

use serde::Serialize;

use crate::error::{Result, TrainError};
use crate::schedule::ReduceOnPlateau;
pub use crate::trainer::config::{EarlyStoppingConfig, Monitor, PlateauConfig};
use crate::trainer::config::{EpochRecord, TrainerConfig};

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
        config.validate()?;
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
        config.validate()?;
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
