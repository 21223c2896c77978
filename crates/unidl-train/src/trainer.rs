//! The trainer (§6.2.3.2, B.4): `construct_trainer`, `train_one_batch`,
//! `train_one_epoch`, `train`, with atomic checkpoints and exact resume.
//!
//! Reproducibility: before step `t` the device's generator is re-seeded from
//! (seed, t), and the sampler's position is part of the checkpoint, so a run
//! stopped after `k` steps and resumed ends with the same weights as an
//! uninterrupted one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_data::{
    DataLoader, LoaderConfig, PreparedDataset, Sample, Sampler, SamplerConfig, SamplerState,
};
use unidl_tensor::Tensor;
use unidl_tensor::module::{ModuleApi, load_state_dict_file, save_state_dict, write_atomic};

use crate::callback::{
    BatchEnd, Callback, EarlyStopping, EarlyStoppingConfig, EpochEnd, Monitor, PlateauConfig,
    PlateauLr, ProgressBar, TrainBegin,
};
use crate::error::{Result, TrainError};
use crate::optim::{Optimizer, OptimizerConfig, construct_optimizer, update_learnable_parameter};
use crate::records::{ModelSummary, RunRecorder};
use crate::schedule::Schedule;

/// What the trainer needs to know about a task: how to compute the loss of a
/// batch, and (optionally) how to predict classes for accuracy (Tr-b: the
/// preprocess → model → postprocess steps are these methods, overridable).
pub trait TrainStep<M>: Send + Sync {
    /// Loss of `samples` under `model` on `device` (an autodiff device while training).
    fn loss(&self, model: &M, samples: &[Sample], device: &Device) -> Result<Tensor>;
    /// Predicted class of each sample, for the accuracy metric; `None` if the
    /// task is not classification.
    fn predict(
        &self,
        _model: &M,
        _samples: &[Sample],
        _device: &Device,
    ) -> Result<Option<Vec<usize>>> {
        Ok(None)
    }
}

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
fn unit() -> f64 {
    1.0
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
}

/// Progress saved in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct TrainerState {
    step: u64,
    sampler: SamplerState,
    records: Vec<EpochRecord>,
    /// Parameter path → Burn parameter id: the optimizer state is keyed by id,
    /// so a resumed model takes the ids of the saved one.
    param_ids: std::collections::BTreeMap<String, u64>,
    /// Learning-rate factor set by reduce-on-plateau.
    #[serde(default = "unit")]
    lr_scale: f64,
    /// Why training stopped early, if it did.
    #[serde(default)]
    stopped: Option<String>,
}

/// Reads (`set` = None) or assigns parameter ids by path.
struct Ids {
    stack: Vec<String>,
    ids: std::collections::BTreeMap<String, u64>,
}

impl burn::module::ModuleVisitor for Ids {
    fn enter_module(&mut self, name: &str, _c: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _n: &str, _c: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        self.ids.insert(self.stack.join("."), param.id.val());
    }
}

impl burn::module::ModuleMapper for Ids {
    fn enter_module(&mut self, name: &str, _c: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _n: &str, _c: &str) {
        self.stack.pop();
    }
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<D>> {
        match self.ids.get(&self.stack.join(".")) {
            Some(&id) => {
                let (_, value, mapper) = param.consume();
                burn::module::Param::from_mapped_value(
                    burn::module::ParamId::from(id),
                    value,
                    mapper,
                )
            }
            None => param,
        }
    }
}

/// A model, its optimizer and data, ready to train.
pub struct Trainer<M: Module, S: TrainStep<M>> {
    model: Option<M>,
    optimizer: Optimizer,
    schedule: Schedule,
    step: S,
    config: TrainerConfig,
    train: PreparedDataset,
    val: Option<PreparedDataset>,
    sampler: Sampler,
    device: Device,
    global_step: u64,
    records: Vec<EpochRecord>,
    lr_scale: f64,
    stopped: Option<String>,
    callbacks: Vec<Box<dyn Callback>>,
}

/// `construct_trainer(model, trainer_config)` (B.4.1): config errors name the key;
/// a model without parameters is [`TrainError::Model`].
#[allow(clippy::too_many_arguments)]
pub fn construct_trainer<M: Module, S: TrainStep<M>>(
    model: M,
    optimizer: &OptimizerConfig,
    schedule: Schedule,
    step: S,
    config: TrainerConfig,
    train_dataset: PreparedDataset,
    val_dataset: Option<PreparedDataset>,
    device: &Device,
) -> Result<Trainer<M, S>> {
    config.validate()?;
    schedule.validate()?;
    let sampler = Sampler::new(
        SamplerConfig {
            shuffle: true,
            seed: config.seed,
            repeat: true,
            ..SamplerConfig::new(config.batch_size)
        },
        train_dataset.len(),
    )
    .map_err(|e| TrainError::Config {
        key: "batch_size".into(),
        reason: e.to_string(),
    })?;
    let device = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    // `train()` puts every parameter back into its configured gradient-tracking state.
    let model = model.fork(&device).train();
    let optimizer = construct_optimizer(&model, optimizer)?;
    Ok(Trainer {
        model: Some(model),
        optimizer,
        schedule,
        step,
        config,
        train: train_dataset,
        val: val_dataset,
        sampler,
        device,
        global_step: 0,
        records: Vec::new(),
        lr_scale: 1.0,
        stopped: None,
        callbacks: Vec::new(),
    })
}

impl<M: Module, S: TrainStep<M>> Trainer<M, S> {
    /// The model (on the training device).
    pub fn model(&self) -> &M {
        self.model.as_ref().expect("model present between steps")
    }

    /// Optimizer updates done so far.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Records of finished epochs.
    pub fn records(&self) -> &[EpochRecord] {
        &self.records
    }

    fn batches_per_epoch(&self) -> u64 {
        self.sampler.batches_per_epoch() as u64
    }

    /// Adds a hook (Tr-e). Built-in callbacks from the config (records,
    /// progress bar, reduce-on-plateau, early stopping) run first, in that order.
    pub fn add_callback(&mut self, callback: impl Callback + 'static) {
        self.callbacks.push(Box::new(callback));
    }

    /// The learning-rate factor set by reduce-on-plateau (1 when unused).
    pub fn lr_scale(&self) -> f64 {
        self.lr_scale
    }

    /// `train_one_batch({X, Y}) -> loss` (B.4.2): loss, backward, NaN guard,
    /// update, learning-rate step. With `micro_batches > 1` the batch is split
    /// and the gradients accumulated before the one update. A non-finite loss
    /// is an error naming the step.
    pub fn train_one_batch(&mut self, samples: &[Sample]) -> Result<f64> {
        if samples.is_empty() {
            return Err(TrainError::Model(
                "train_one_batch: the batch is empty".into(),
            ));
        }
        unidl_backend::seed(
            &self.device,
            self.config.seed ^ self.global_step.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let lr = self.optimizer.config().base_learningrate
            * self.schedule.factor(self.global_step)
            * self.lr_scale;
        self.optimizer.set_learning_rate(lr)?;
        let model = self.model.take().expect("model present between steps");
        let result = self.accumulate(&model, samples);
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                self.optimizer.clear_gradients();
                self.model = Some(model);
                return Err(e);
            }
        };
        // Keep a handle (Burn clones share the tensors) so that a refused
        // update leaves the trainer usable, with the weights of before the step.
        let before = model.clone();
        let model = match update_learnable_parameter(model, &mut self.optimizer) {
            Ok(m) => m,
            Err(e) => {
                self.model = Some(before);
                return Err(e);
            }
        };
        self.model = Some(model);
        self.global_step += 1;
        Ok(value)
    }

    /// Forward and backward over the micro-batches of `samples`; returns the
    /// batch's mean loss. Each micro-batch loss is weighted by its share of
    /// the batch, so the summed gradient equals the full batch's.
    fn accumulate(&mut self, model: &M, samples: &[Sample]) -> Result<f64> {
        let parts = self.config.micro_batches.min(samples.len()).max(1);
        let n = samples.len();
        let mut total = 0.0;
        let mut start = 0;
        for k in 0..parts {
            let end = n * (k + 1) / parts;
            let chunk = &samples[start..end];
            start = end;
            let loss = self.step.loss(model, chunk, &self.device)?;
            let value = loss.item()?;
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    what: "loss".into(),
                    param: "(loss)".into(),
                    step: self.global_step,
                });
            }
            let w = chunk.len() as f64 / n as f64;
            total += value * w;
            if parts == 1 {
                self.optimizer.backward(&loss, model)?;
            } else {
                self.optimizer
                    .backward_accumulate(&loss.mul_scalar(w)?, model)?;
            }
        }
        Ok(total)
    }

    /// `train_one_epoch(epoch_index) -> loss` (B.4.3): the mean loss over the
    /// epoch's batches (continuing mid-epoch after a resume).
    pub fn train_one_epoch(&mut self, epoch: usize) -> Result<f64> {
        let state = self.sampler.state();
        if state.epoch != epoch as u64 {
            self.sampler
                .restore(SamplerState {
                    epoch: epoch as u64,
                    position: 0,
                })
                .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        }
        let batches = self.batches_per_epoch();
        let done = (self.sampler.state().position / self.config.batch_size) as u64;
        let remaining = batches - done;
        let loader = DataLoader::new(
            self.train.clone(),
            self.sampler.clone(),
            LoaderConfig {
                workers: self.config.workers,
                prefetch: 2,
            },
        )
        .map_err(|e| TrainError::Config {
            key: "loader".into(),
            reason: e.to_string(),
        })?;
        let mut callbacks = std::mem::take(&mut self.callbacks);
        let r = (|| {
            for c in callbacks.iter_mut() {
                c.on_epoch_start(epoch, done)?;
            }
            let mut total = 0.0;
            let mut n = 0usize;
            let mut t0 = std::time::Instant::now();
            for (i, batch) in loader.take(remaining as usize).enumerate() {
                let batch = batch.map_err(|e| TrainError::Model(format!("data: {e}")))?;
                for c in callbacks.iter_mut() {
                    c.on_batch_start(epoch, self.global_step)?;
                }
                let loss = self.train_one_batch(&batch.samples)?;
                total += loss;
                n += 1;
                self.sampler
                    .restore(batch.state)
                    .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
                let secs = t0.elapsed().as_secs_f64();
                t0 = std::time::Instant::now();
                let info = BatchEnd {
                    epoch,
                    step: self.global_step,
                    batch: done + i as u64,
                    batches,
                    loss,
                    learning_rate: self.optimizer.learning_rate(),
                    samples: batch.samples.len(),
                    samples_per_second: batch.samples.len() as f64 / secs.max(1e-9),
                };
                for c in callbacks.iter_mut() {
                    c.on_batch_end(&info)?;
                }
            }
            Ok(if n == 0 { 0.0 } else { total / n as f64 })
        })();
        self.callbacks = callbacks;
        r
    }

    /// Mean loss and (when the task predicts classes) accuracy of the model on
    /// `dataset`, in evaluation mode without gradients.
    pub fn validate(&self, dataset: &PreparedDataset) -> Result<(f64, Option<f64>)> {
        let model = self.model().valid();
        let device = self.device.clone().without_autodiff();
        let (mut correct, mut total) = (0usize, 0usize);
        let (mut loss_sum, mut predicts) = (0.0, true);
        let sampler = Sampler::new(
            SamplerConfig::new(self.config.batch_size.max(1)),
            dataset.len(),
        )
        .map_err(|e| TrainError::Config {
            key: "val_dataset".into(),
            reason: e.to_string(),
        })?;
        for batch in DataLoader::new(
            dataset.clone(),
            sampler,
            LoaderConfig {
                workers: self.config.workers,
                prefetch: 2,
            },
        )
        .map_err(|e| TrainError::Model(e.to_string()))?
        {
            let batch = batch.map_err(|e| TrainError::Model(format!("data: {e}")))?;
            let n = batch.samples.len();
            loss_sum += self.step.loss(&model, &batch.samples, &device)?.item()? * n as f64;
            total += n;
            if predicts {
                match self.step.predict(&model, &batch.samples, &device)? {
                    Some(pred) => {
                        for (p, s) in pred.iter().zip(&batch.samples) {
                            correct += usize::from(Some(*p) == s.targets.label);
                        }
                    }
                    None => predicts = false,
                }
            }
        }
        if total == 0 {
            return Err(TrainError::Config {
                key: "val_dataset".into(),
                reason: "the validation set is empty".into(),
            });
        }
        let acc = predicts.then(|| correct as f64 / total as f64);
        Ok((loss_sum / total as f64, acc))
    }

    /// Accuracy of the model on `dataset` (None when the task does not predict classes).
    pub fn evaluate_accuracy(&self, dataset: &PreparedDataset) -> Result<Option<f64>> {
        Ok(self.validate(dataset)?.1)
    }

    /// The model summary (modules, output shapes of one traced forward pass on
    /// the first training sample, parameter counts).
    pub fn summary(&self) -> Result<ModelSummary> {
        let model = self.model().valid();
        let device = self.device.clone().without_autodiff();
        let sample = unidl_data::get_sample(&self.train, 0)
            .map_err(|e| TrainError::Model(format!("data: {e}")))?;
        let (r, traced) =
            unidl_tensor::trace::capture(|| self.step.loss(&model, &[sample], &device));
        r?;
        Ok(ModelSummary::of(self.model(), &traced))
    }

    /// `train()` (B.4.4): every remaining epoch, validation each epoch, a
    /// checkpoint after each epoch, the callbacks; returns the epoch records.
    pub fn train(&mut self) -> Result<Vec<EpochRecord>> {
        self.train_with(|_, _| Ok(()))
    }

    /// The built-in callbacks the config asks for.
    fn builtin_callbacks(&self) -> Result<Vec<Box<dyn Callback>>> {
        let mut v: Vec<Box<dyn Callback>> = Vec::new();
        if self.config.records {
            v.push(Box::new(RunRecorder::new(
                self.config.output_dir.clone(),
                self.config.log_every,
            )));
        }
        let progress = self
            .config
            .progress
            .unwrap_or_else(|| std::io::IsTerminal::is_terminal(&std::io::stderr()));
        if progress {
            v.push(Box::new(ProgressBar::new()));
        }
        if let Some(p) = &self.config.reduce_lr_on_plateau {
            v.push(Box::new(PlateauLr::new(p.clone(), self.config.monitor)?));
        }
        if let Some(e) = &self.config.early_stopping {
            v.push(Box::new(EarlyStopping::new(
                e.clone(),
                self.config.monitor,
            )?));
        }
        Ok(v)
    }

    /// [`Trainer::train`] calling `on_epoch(record, checkpoint_dir)` after each
    /// epoch's checkpoint and callbacks (a closure-shaped extra post-step).
    pub fn train_with(
        &mut self,
        mut on_epoch: impl FnMut(&EpochRecord, &Path) -> Result<()>,
    ) -> Result<Vec<EpochRecord>> {
        let summary = self.summary()?.to_string();
        let mut callbacks = self.builtin_callbacks()?;
        let builtin = callbacks.len();
        callbacks.append(&mut self.callbacks);
        let begin = TrainBegin {
            config: &self.config,
            records: &self.records,
            global_step: self.global_step,
            batches_per_epoch: self.batches_per_epoch(),
            summary: &summary,
        };
        for c in callbacks.iter_mut() {
            c.on_train_start(&begin)?;
        }
        self.callbacks = callbacks;
        let result = self.run_epochs(&mut on_epoch);
        let mut callbacks = std::mem::take(&mut self.callbacks);
        let stopped = result.as_ref().ok().and_then(|s| s.as_deref());
        if result.is_ok() {
            for c in callbacks.iter_mut() {
                c.on_train_end(&self.records, stopped)?;
            }
        }
        // Keep only the user's callbacks for a later call.
        self.callbacks = callbacks.split_off(builtin);
        result?;
        Ok(self.records.clone())
    }

    /// Whether training stopped early (and why).
    fn run_epochs(
        &mut self,
        on_epoch: &mut impl FnMut(&EpochRecord, &Path) -> Result<()>,
    ) -> Result<Option<String>> {
        if let Some(reason) = self.stopped_reason() {
            return Ok(Some(reason));
        }
        for epoch in self.records.len()..self.config.epochs {
            let t0 = std::time::Instant::now();
            let train_loss = self.train_one_epoch(epoch)?;
            let (val_loss, val_accuracy) = match &self.val {
                Some(v) => {
                    let (l, a) = self.validate(v)?;
                    (Some(l), a)
                }
                None => (None, None),
            };
            self.records.push(EpochRecord {
                epoch,
                train_loss,
                val_loss,
                val_accuracy,
                learning_rate: self.optimizer.learning_rate(),
                seconds: t0.elapsed().as_secs_f64(),
            });
            let dir = self.save_checkpoint()?;
            let record = self.records.last().expect("just pushed").clone();
            let mut end = EpochEnd {
                record: &record,
                records: &self.records,
                checkpoint: &dir,
                stop: false,
                stop_reason: None,
                lr_scale: self.lr_scale,
            };
            let mut callbacks = std::mem::take(&mut self.callbacks);
            let r: Result<()> = callbacks
                .iter_mut()
                .try_for_each(|c| c.on_epoch_end(&mut end));
            self.callbacks = callbacks;
            r?;
            let (stop, reason, scale) = (end.stop, end.stop_reason.take(), end.lr_scale);
            if scale != self.lr_scale || stop {
                self.lr_scale = scale;
                if stop {
                    self.stopped = Some(
                        reason
                            .clone()
                            .unwrap_or_else(|| "stopped by a callback".into()),
                    );
                }
                // The scale and the stop are part of the state a resume must see.
                self.rewrite_state(&dir)?;
            }
            self.update_best(&dir)?;
            on_epoch(&record, &dir)?;
            if stop {
                return Ok(Some(
                    reason.unwrap_or_else(|| "stopped by a callback".into()),
                ));
            }
        }
        Ok(None)
    }

    /// Why an earlier run stopped early, if it did (kept in checkpoints, so a
    /// resumed run that already stopped does not train on).
    pub fn stopped_reason(&self) -> Option<String> {
        self.stopped.clone()
    }

    fn checkpoint_dir(&self, step: u64) -> PathBuf {
        self.config
            .output_dir
            .join("checkpoints")
            .join(format!("step-{step:09}"))
    }

    /// Writes model, optimizer and trainer state under
    /// `output_dir/checkpoints/step-N/` (Tr-d). Each file is written atomically
    /// and the directory is complete before it is renamed into place, so an
    /// interrupted save never leaves a half checkpoint. Old ones beyond `keep_last` are removed.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let io = |e: std::io::Error| TrainError::Checkpoint(e.to_string());
        let final_dir = self.checkpoint_dir(self.global_step);
        let tmp = final_dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io)?;
        // `valid()` folds Burn's per-thread running-state updates (BatchNorm
        // statistics) into the shared value first; a plain state_dict of the
        // training model can be one update behind.
        save_state_dict(
            &self.model().valid().state_dict(),
            &tmp.join("model.safetensors"),
        )
        .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        write_atomic(&tmp.join("optimizer.bin"), &self.optimizer.state_bytes()?).map_err(io)?;
        self.rewrite_state(&tmp)?;
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(io)?;
        let mut all = list_checkpoints(&self.config.output_dir);
        while all.len() > self.config.keep_last {
            let old = all.remove(0);
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(final_dir)
    }

    /// Writes `trainer.json` (progress, records, parameter ids, learning-rate
    /// scale, early stop) into the checkpoint directory `dir`, atomically.
    fn rewrite_state(&self, dir: &Path) -> Result<()> {
        let mut ids = Ids {
            stack: Vec::new(),
            ids: Default::default(),
        };
        self.model().visit(&mut ids);
        let state = TrainerState {
            step: self.global_step,
            sampler: self.sampler.state(),
            records: self.records.clone(),
            param_ids: ids.ids,
            lr_scale: self.lr_scale,
            stopped: self.stopped.clone(),
        };
        let json = serde_json_string(&state, self.optimizer.learning_rate());
        write_atomic(&dir.join("trainer.json"), json.as_bytes())
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", dir.display())))
    }

    /// With `keep_best`, copies checkpoint `dir` to `checkpoints/best` when the
    /// newest record is the best so far by `monitor`. The copy is made under a
    /// temporary name and renamed into place, so `best` is always complete.
    fn update_best(&self, dir: &Path) -> Result<bool> {
        if !self.config.keep_best {
            return Ok(false);
        }
        let Some((last, earlier)) = self.records.split_last() else {
            return Ok(false);
        };
        let m = self.config.monitor;
        let mut best = None;
        for r in earlier {
            let v = m.require(r)?;
            if m.improves(v, best, 0.0) {
                best = Some(v);
            }
        }
        if !m.improves(m.require(last)?, best, 0.0) {
            return Ok(false);
        }
        let io = |e: std::io::Error| TrainError::Checkpoint(format!("checkpoints/best: {e}"));
        let root = self.config.output_dir.join("checkpoints");
        let tmp = root.join("best.partial");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io)?;
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            std::fs::copy(entry.path(), tmp.join(entry.file_name())).map_err(io)?;
        }
        let old = root.join("best.old");
        let _ = std::fs::remove_dir_all(&old);
        let best_dir = root.join("best");
        if best_dir.exists() {
            std::fs::rename(&best_dir, &old).map_err(io)?;
        }
        std::fs::rename(&tmp, &best_dir).map_err(io)?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(true)
    }

    /// Continues from the newest complete checkpoint in `output_dir` (if any);
    /// returns whether one was loaded.
    pub fn resume(&mut self) -> Result<bool> {
        let Some(dir) = list_checkpoints(&self.config.output_dir).pop() else {
            return Ok(false);
        };
        self.load_checkpoint(&dir)?;
        Ok(true)
    }

    /// Loads a checkpoint directory written by [`Trainer::save_checkpoint`].
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        let ck = |e: String| TrainError::Checkpoint(format!("{}: {e}", dir.display()));
        let text =
            std::fs::read_to_string(dir.join("trainer.json")).map_err(|e| ck(e.to_string()))?;
        let (state, lr) = parse_state(&text).map_err(ck)?;
        let sd = load_state_dict_file(&dir.join("model.safetensors"), &self.device)
            .map_err(|e| ck(e.to_string()))?;
        let model = self.model.take().expect("model present between steps");
        let model = model.load_state_dict(&sd).map_err(|e| ck(e.to_string()))?;
        let model = model.map(&mut Ids {
            stack: Vec::new(),
            ids: state.param_ids.clone(),
        });
        self.model = Some(model);
        let bytes = std::fs::read(dir.join("optimizer.bin")).map_err(|e| ck(e.to_string()))?;
        let placeholder = construct_optimizer(self.model(), self.optimizer.config())?;
        let opt = std::mem::replace(&mut self.optimizer, placeholder);
        self.optimizer = opt.load_state_bytes(bytes, state.step, lr)?;
        self.sampler
            .restore(state.sampler)
            .map_err(|e| ck(e.to_string()))?;
        self.global_step = state.step;
        self.records = state.records;
        self.lr_scale = state.lr_scale;
        self.stopped = state.stopped;
        Ok(())
    }
}

/// Which checkpoint [`load_model_checkpoint`] reads from an output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointChoice {
    /// The newest `checkpoints/step-N`.
    #[default]
    Latest,
    /// `checkpoints/best` (written with `keep_best`).
    Best,
}

/// The checkpoint directory `choice` names under a trainer's `output_dir`; a
/// typed error when there is none.
pub fn find_checkpoint(output_dir: &Path, choice: CheckpointChoice) -> Result<PathBuf> {
    let found = match choice {
        CheckpointChoice::Latest => list_checkpoints(output_dir).pop(),
        CheckpointChoice::Best => {
            let b = output_dir.join("checkpoints/best");
            b.join("model.safetensors").exists().then_some(b)
        }
    };
    found.ok_or_else(|| {
        TrainError::Checkpoint(format!(
            "{}: no {} checkpoint (train first{})",
            output_dir.join("checkpoints").display(),
            match choice {
                CheckpointChoice::Latest => "complete",
                CheckpointChoice::Best => "best",
            },
            match choice {
                CheckpointChoice::Latest => "",
                CheckpointChoice::Best => " with `keep_best = true`",
            }
        ))
    })
}

/// Loads model weights for inference or evaluation (In-a): `path` is a
/// checkpoint directory, a `model.safetensors` file, or a trainer's
/// `output_dir` (then `choice` picks the newest or the best checkpoint). The
/// state dict is loaded strictly: a missing or mismatched key is an error
/// naming it.
pub fn load_model_checkpoint<M: Module>(
    model: M,
    path: &Path,
    choice: CheckpointChoice,
    device: &Device,
) -> Result<M> {
    let file = if path.is_file() {
        path.to_path_buf()
    } else if path.join("model.safetensors").is_file() {
        path.join("model.safetensors")
    } else if path.is_dir() {
        find_checkpoint(path, choice)?.join("model.safetensors")
    } else {
        return Err(TrainError::Checkpoint(format!(
            "{}: not found",
            path.display()
        )));
    };
    let ck = |e: String| TrainError::Checkpoint(format!("{}: {e}", file.display()));
    let sd = load_state_dict_file(&file, device).map_err(|e| ck(e.to_string()))?;
    model.load_state_dict(&sd).map_err(|e| ck(e.to_string()))
}

fn list_checkpoints(output_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(output_dir.join("checkpoints"))
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_dir()
                        && p.extension().is_none()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn serde_json_string(state: &TrainerState, lr: f64) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        state: &'a TrainerState,
        learning_rate: f64,
    }
    serde_json::to_string_pretty(&Out {
        state,
        learning_rate: lr,
    })
    .unwrap_or_default()
}

fn parse_state(text: &str) -> std::result::Result<(TrainerState, f64), String> {
    #[derive(Deserialize)]
    struct In {
        #[serde(flatten)]
        state: TrainerState,
        learning_rate: f64,
    }
    let v: In = serde_json::from_str(text).map_err(|e| format!("trainer.json: {e}"))?;
    Ok((v.state, v.learning_rate))
}

/// Image classification: collate `image` inputs into `[B, C, H, W]`, run
/// `forward` to logits `[B, classes]`, cross-entropy loss; prediction = argmax.
pub struct ImageClassification<M> {
    /// The model's forward pass.
    pub forward: fn(&M, burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2>,
}

impl<M> ImageClassification<M> {
    fn logits(
        &self,
        model: &M,
        samples: &[Sample],
        device: &Device,
    ) -> Result<(burn::tensor::Tensor<2>, Option<Tensor>)> {
        let b = unidl_data::collate_images(samples, device)?;
        let x: burn::tensor::Tensor<4> = b.images.into_burn()?;
        let logits = (self.forward)(model, x);
        unidl_tensor::trace::record("(model)", &logits.dims());
        // A label the classifier has no output for would index out of the
        // logits inside the loss (a panic in the back-end): refuse it here.
        let classes = logits.dims()[1];
        if let Some(s) = samples
            .iter()
            .find(|s| s.targets.label.is_some_and(|l| l >= classes))
        {
            return Err(TrainError::Model(format!(
                "{}: label {} but the model has {classes} classes (raise `num_classes`)",
                s.source,
                s.targets.label.unwrap_or_default()
            )));
        }
        Ok((logits, b.labels))
    }
}

impl<M: Module> crate::infer::Predictor<M> for ImageClassification<M> {
    fn outputs(&self, model: &M, samples: &[Sample], device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_burn(self.logits(model, samples, device)?.0)?)
    }
}

impl<M: Module> TrainStep<M> for ImageClassification<M> {
    fn loss(&self, model: &M, samples: &[Sample], device: &Device) -> Result<Tensor> {
        let (logits, y) = self.logits(model, samples, device)?;
        let y: burn::tensor::Tensor<1, burn::tensor::Int> = y
            .ok_or_else(|| TrainError::Model("training samples need labels".into()))?
            .into_burn()?;
        let loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, y);
        Ok(Tensor::from_burn(loss)?)
    }

    fn predict(
        &self,
        model: &M,
        samples: &[Sample],
        device: &Device,
    ) -> Result<Option<Vec<usize>>> {
        let (logits, _) = self.logits(model, samples, device)?;
        let pred = Tensor::from_burn(logits)?
            .argmax(Some(1), false)?
            .to_vec_i64()?;
        Ok(Some(pred.into_iter().map(|p| p as usize).collect()))
    }
}
