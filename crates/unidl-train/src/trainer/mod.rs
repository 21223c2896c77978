//! The trainer (§6.2.3.2, B.4): `construct_trainer`, `train_one_batch`,
//! `train_one_epoch`, `train`, with atomic checkpoints and exact resume.
//!
//! Reproducibility: before step `t` the device's generator is re-seeded from
//! (seed, t), and the sampler's position is part of the checkpoint, so a run
//! stopped after `k` steps and resumed ends with the same weights as an
//! uninterrupted one.

mod checkpoint;
pub(crate) mod config;

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use unidl_backend::Device;
use unidl_data::transform::{BatchTransform, rng_for};
use unidl_data::{
    Collated, DataLoader, LoaderConfig, PreparedDataset, Sample, Sampler, SamplerConfig,
    SamplerState,
};

use crate::callback::{
    BatchEnd, Callback, EarlyStopping, EpochEnd, PlateauLr, ProgressBar, TrainBegin,
};
use crate::dist::Collective;
use crate::error::{Result, TrainError};
use crate::eval::Scores;
use crate::infer::{InferOptions, PostProcess};
use crate::optim::{Optimizer, OptimizerConfig, construct_optimizer, update_learnable_parameter};
use crate::records::{ModelSummary, RunRecorder};
use crate::schedule::Schedule;
use crate::task::Task;
use unidl_tensor::module::ModuleApi;

pub use checkpoint::{CheckpointChoice, find_checkpoint, load_model_checkpoint};
pub use config::{EpochRecord, TrainerConfig};

/// The micro-batches of one training batch, collated, with their sizes.
type Parts<B> = Vec<(B, usize)>;

/// A model, its optimizer and data, ready to train on a [`Task`].
pub struct Trainer<M: Module, T: Task<M>> {
    model: Option<M>,
    optimizer: Optimizer,
    schedule: Schedule,
    task: T,
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
    batch_transforms: Vec<Arc<dyn BatchTransform>>,
    /// Sum and count of the training losses of the sampler's current epoch
    /// (checkpointed, so that an epoch resumed midway reports its true mean).
    epoch_losses: (f64, u64),
    /// The data-parallel group, when training on several ranks.
    group: Option<Arc<dyn Collective>>,
}

/// `construct_trainer(model, trainer_config)` (B.4.1): config errors name the key;
/// a model without parameters is [`TrainError::Model`].
#[allow(clippy::too_many_arguments)]
pub fn construct_trainer<M: Module, T: Task<M>>(
    model: M,
    optimizer: &OptimizerConfig,
    schedule: Schedule,
    task: T,
    config: TrainerConfig,
    train_dataset: PreparedDataset,
    val_dataset: Option<PreparedDataset>,
    device: &Device,
) -> Result<Trainer<M, T>> {
    config.validate()?;
    if let Some(loss) = config.loss.as_deref()
        && loss != task.loss_name()
    {
        return Err(TrainError::Config {
            key: "trainer.loss".into(),
            reason: format!(
                "`{loss}`: the {} task trains with `{}`",
                task.name(),
                task.loss_name()
            ),
        });
    }
    let evaluation = task.evaluation();
    if let Some(bad) = config.metrics.iter().find(|m| !evaluation.supports(**m)) {
        return Err(TrainError::Config {
            key: "trainer.metrics".into(),
            reason: format!(
                "`{}` is not computed by task `{}` (it computes: {})",
                bad.name(),
                task.name(),
                task.default_metrics()
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    schedule.validate()?;
    let sampler = training_sampler(&config, &train_dataset, 0, 1)?;
    let device = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    // `train()` puts every parameter back into its configured gradient-tracking state.
    let model = model.fork(&device).train();
    let optimizer = construct_optimizer(&model, optimizer)?;
    let mut trainer = Trainer {
        model: Some(model),
        optimizer,
        schedule,
        task,
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
        batch_transforms: Vec::new(),
        epoch_losses: (0.0, 0),
        group: None,
    };
    if let Some(group) = crate::dist::global() {
        trainer.set_collective(group)?;
    }
    Ok(trainer)
}

/// The shuffling, repeating training sampler of `config` over `train`, for
/// data-parallel rank `rank` of `world` (strided shards of one permutation,
/// so that the ranks' batches together are one process's batch of
/// `world × batch_size`).
fn training_sampler(
    config: &TrainerConfig,
    train: &PreparedDataset,
    rank: usize,
    world: usize,
) -> Result<Sampler> {
    let sampler_config = SamplerConfig {
        shuffle: true,
        seed: config.seed,
        repeat: true,
        group_by_length: config.group_by_length,
        rank,
        world_size: world,
        ..SamplerConfig::new(config.batch_size)
    };
    unidl_data::construct_sampler(&sampler_config, train).map_err(|e| TrainError::Config {
        key: if config.group_by_length {
            "trainer.group_by_length".into()
        } else {
            "batch_size".into()
        },
        reason: e.to_string(),
    })
}

impl<M: Module, T: Task<M>> Trainer<M, T> {
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

    /// The task the trainer trains on.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// The metrics validation computes: `metrics` of the config, else the task's defaults.
    pub fn validation_metrics(&self) -> Vec<crate::eval::Metric> {
        if self.config.metrics.is_empty() {
            self.task.default_metrics()
        } else {
            self.config.metrics.clone()
        }
    }

    /// Batch-level augmentation (MixUp, CutMix) applied to every training
    /// batch before collation, seeded by (seed, epoch, position) so that the
    /// batches are the same for any worker count and after a resume.
    pub fn set_batch_transforms(&mut self, transforms: Vec<Arc<dyn BatchTransform>>) {
        self.batch_transforms = transforms;
    }

    /// Makes this trainer rank `group.rank()` of a data-parallel run: its
    /// sampler reads that rank's shard, its parameters become rank 0's
    /// (broadcast), each step averages the gradients over the ranks before
    /// the update, the epoch's training loss is the mean over ranks and its
    /// validation (run by rank 0) is shared, and only rank 0 writes
    /// checkpoints, records and progress. Call it before training and
    /// before [`Trainer::resume`], which then broadcasts the resumed state
    /// ([`construct_trainer`] calls it when a launcher installed a group with
    /// [`crate::dist::install_global`]).
    pub fn set_collective(&mut self, group: Arc<dyn Collective>) -> Result<()> {
        let state = self.sampler.state();
        let mut sampler =
            training_sampler(&self.config, &self.train, group.rank(), group.world_size())?;
        sampler
            .restore(state)
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        self.sampler = sampler;
        self.group = Some(group);
        self.broadcast_state()
    }

    /// The data-parallel group when there is more than one rank (with one
    /// rank every collective would be the identity).
    fn ranks(&self) -> Option<&Arc<dyn Collective>> {
        self.group.as_ref().filter(|g| g.world_size() > 1)
    }

    /// Whether this trainer writes checkpoints and records (single process, or rank 0).
    pub fn is_leader(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.is_leader())
    }

    /// Rank 0's model weights (and the progress it resumed from) on every rank.
    pub(super) fn broadcast_state(&mut self) -> Result<()> {
        let Some(group) = self.ranks().cloned() else {
            return Ok(());
        };
        let rank = group.rank();
        let mut bytes = if group.is_leader() {
            unidl_tensor::module::state_dict_to_bytes(&self.model().valid().state_dict())
                .map_err(|e| crate::dist::dist_error(rank, e.to_string()))?
        } else {
            Vec::new()
        };
        group.broadcast_bytes(&mut bytes, 0)?;
        if !group.is_leader() {
            let sd = unidl_tensor::module::state_dict_from_bytes(&bytes, &self.device)
                .map_err(|e| crate::dist::dist_error(rank, e.to_string()))?;
            let model = self.model.take().expect("model present between steps");
            self.model = Some(
                model
                    .load_state_dict(&sd)
                    .map_err(|e| crate::dist::dist_error(rank, e.to_string()))?,
            );
        }
        // Every rank must stand at the same step: a resume on one rank only
        // would desynchronise the collectives. The steps are all equal iff
        // n·Σs² = (Σs)², which every rank can tell from the two sums.
        let s = self.global_step as f64;
        let mut sums = [s, s * s];
        group.all_reduce_sum_f64(&mut sums)?;
        if group.world_size() as f64 * sums[1] != sums[0] * sums[0] {
            return Err(crate::dist::dist_error(
                rank,
                format!(
                    "the ranks start from different steps (this rank: {}); resume every rank from the same checkpoint",
                    self.global_step
                ),
            ));
        }
        Ok(())
    }

    /// The seed of step-dependent randomness, distinct per rank (rank 0 and
    /// a single process: the configured seed).
    fn rank_seed(&self) -> u64 {
        let rank = self.group.as_ref().map_or(0, |g| g.rank()) as u64;
        self.config.seed ^ rank.wrapping_mul(0xD1B5_4A32_D192_ED03)
    }

    /// `train_one_batch({X, Y}) -> loss` (B.4.2): collation, loss, backward,
    /// NaN guard, update, learning-rate step. With `micro_batches > 1` the
    /// batch is split and the gradients accumulated before the one update. A
    /// non-finite loss is an error naming the step.
    pub fn train_one_batch(&mut self, samples: &[Sample]) -> Result<f64> {
        if samples.is_empty() {
            return Err(TrainError::Model(
                "train_one_batch: the batch is empty".into(),
            ));
        }
        let parts =
            split_and_collate(&self.task, samples, self.config.micro_batches, &self.device)?;
        self.train_collated(parts)
    }

    /// One optimizer step over already collated micro-batches.
    fn train_collated(&mut self, parts: Parts<T::Batch>) -> Result<f64> {
        unidl_backend::seed(
            &self.device,
            self.rank_seed() ^ self.global_step.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let lr = self.optimizer.config().base_learningrate
            * self.schedule.factor(self.global_step)
            * self.lr_scale;
        self.optimizer.set_learning_rate(lr)?;
        let model = self.model.take().expect("model present between steps");
        let sync = self
            .ranks()
            .filter(|_| self.config.sync_batch_norm)
            .map(|g| {
                Arc::new(crate::dist::RankSums(Arc::clone(g)))
                    as Arc<dyn unidl_tensor::collective::RankSum>
            });
        let mut result = match sync {
            Some(s) => {
                unidl_tensor::collective::with_rank_sum(s, || self.accumulate(&model, &parts))
            }
            None => self.accumulate(&model, &parts),
        };
        if let (Ok(_), Some(group)) = (&result, self.ranks().cloned())
            && let Err(e) = self.optimizer.average_gradients(&model, group.as_ref())
        {
            result = Err(e);
        }
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                self.optimizer.clear_gradients();
                // Records of user-defined backward functions from a forward
                // whose backward never ran.
                unidl_tensor::autograd::clear_pending();
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
        self.model = Some(self.task.after_update(model));
        self.global_step += 1;
        Ok(value)
    }

    /// Forward and backward over the micro-batches; returns the batch's mean
    /// loss. Each micro-batch loss is weighted by its share of the batch, so
    /// the summed gradient equals the full batch's.
    fn accumulate(&mut self, model: &M, parts: &Parts<T::Batch>) -> Result<f64> {
        let n: usize = parts.iter().map(|(_, k)| k).sum();
        let mut total = 0.0;
        for (batch, size) in parts {
            let loss = self.task.loss(model, batch)?;
            let value = loss.item()?;
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    what: "loss".into(),
                    param: "(loss)".into(),
                    step: self.global_step,
                });
            }
            let w = *size as f64 / n as f64;
            total += value * w;
            if parts.len() == 1 {
                self.optimizer.backward(&loss, model)?;
            } else {
                self.optimizer
                    .backward_accumulate(&loss.mul_scalar(w)?, model)?;
            }
        }
        Ok(total)
    }

    /// `train_one_epoch(epoch_index) -> loss` (B.4.3): the mean loss over the
    /// epoch's batches (continuing mid-epoch after a resume: the mean then
    /// covers the batches before the checkpoint too). Called again for an
    /// epoch already trained, it trains nothing and returns that mean.
    pub fn train_one_epoch(&mut self, epoch: usize) -> Result<f64> {
        let state = self.sampler.state();
        if state.epoch != epoch as u64 {
            self.sampler
                .restore(SamplerState {
                    epoch: epoch as u64,
                    position: 0,
                })
                .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
            self.epoch_losses = (0.0, 0);
        }
        let batches = self.batches_per_epoch();
        // Only the last batch of an epoch can be short.
        let done = self
            .sampler
            .state()
            .position
            .div_ceil(self.config.batch_size) as u64;
        let remaining = batches.saturating_sub(done);
        let (task, device) = (self.task.clone(), self.device.clone());
        let (micro, seed) = (self.config.micro_batches, self.rank_seed());
        let mixes = self.batch_transforms.clone();
        let loader: DataLoader<Collated<Parts<T::Batch>>, TrainError> = DataLoader::with_collate(
            self.train.clone(),
            self.sampler.clone(),
            LoaderConfig {
                workers: self.config.workers,
                prefetch: 2,
            },
            move |samples, state| {
                let samples = mix(&mixes, samples, seed, state)?;
                split_and_collate(&task, &samples, micro, &device)
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
            let mut t0 = std::time::Instant::now();
            for (i, batch) in loader.take(remaining as usize).enumerate() {
                let batch = batch?;
                for c in callbacks.iter_mut() {
                    c.on_batch_start(epoch, self.global_step)?;
                }
                let loss = self.train_collated(batch.batch)?;
                self.epoch_losses.0 += loss;
                self.epoch_losses.1 += 1;
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
                    samples: batch.len,
                    samples_per_second: batch.len as f64 / secs.max(1e-9),
                };
                for c in callbacks.iter_mut() {
                    c.on_batch_end(&info)?;
                }
            }
            let (sum, n) = self.epoch_losses;
            if n == 0 {
                // Never a made-up loss: an epoch that trained nothing is an error.
                return Err(TrainError::Model(format!(
                    "epoch {epoch}: no batch was trained ({batches} batches per epoch, {done} already done)"
                )));
            }
            Ok(sum / n as f64)
        })();
        self.callbacks = callbacks;
        r
    }

    /// Mean loss and the task's default metrics of the model on `dataset`,
    /// in evaluation mode without gradients (one forward pass per batch).
    pub fn validate_scores(&self, dataset: &PreparedDataset) -> Result<(f64, Scores)> {
        let model = self.model().valid();
        let device = self.device.clone().without_autodiff();
        let evaluation = self.task.evaluation();
        let metrics = self.validation_metrics();
        let mut acc = evaluation.start(&metrics, dataset)?;
        let options = evaluation.options(&InferOptions::default(), dataset);
        let post = self.task.post();
        let sampler = Sampler::new(
            SamplerConfig::new(self.config.batch_size.max(1)),
            dataset.len(),
        )
        .map_err(|e| TrainError::Config {
            key: "val_dataset".into(),
            reason: e.to_string(),
        })?;
        let task = self.task.clone();
        let collate_device = device.clone();
        type WithSamples<B> = DataLoader<Collated<(B, Vec<Sample>)>, TrainError>;
        let loader: WithSamples<T::Batch> = DataLoader::with_collate(
            dataset.clone(),
            sampler,
            LoaderConfig {
                workers: self.config.workers,
                prefetch: 2,
            },
            move |samples, _| Ok((task.collate(&samples, &collate_device)?, samples)),
        )
        .map_err(|e| TrainError::Model(e.to_string()))?;
        let (mut loss_sum, mut total) = (0.0, 0usize);
        for batch in loader {
            let batch = batch?;
            let (collated, samples) = &batch.batch;
            let (loss, outputs) = self.task.loss_and_outputs(&model, collated)?;
            loss_sum += loss.item()? * batch.len as f64;
            total += batch.len;
            let own = crate::infer::with_input_geometry(post.needs_geometry(), &options, samples);
            acc.update(&post.process(&outputs, &own)?, samples)?;
        }
        if total == 0 {
            return Err(TrainError::Config {
                key: "val_dataset".into(),
                reason: "the validation set is empty".into(),
            });
        }
        Ok((loss_sum / total as f64, acc.compute()?))
    }

    /// Mean loss and (when the task computes it) accuracy of the model on
    /// `dataset`, in evaluation mode without gradients.
    pub fn validate(&self, dataset: &PreparedDataset) -> Result<(f64, Option<f64>)> {
        let (loss, scores) = self.validate_scores(dataset)?;
        Ok((loss, scores.get("accuracy").copied()))
    }

    /// Accuracy of the model on `dataset` (None when the task does not compute it).
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
        let batch = self.task.collate(std::slice::from_ref(&sample), &device)?;
        let (r, traced) = unidl_tensor::trace::capture(|| self.task.forward(&model, &batch));
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
        let leader = self.is_leader();
        if self.config.records && leader {
            v.push(Box::new(RunRecorder::new(
                self.config.output_dir.clone(),
                self.config.log_every,
            )));
        }
        let progress = self
            .config
            .progress
            .unwrap_or_else(|| std::io::IsTerminal::is_terminal(&std::io::stderr()));
        if progress && leader {
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
            let train_loss = self.mean_over_ranks(train_loss)?;
            let (val_loss, val_scores) = self.shared_validation()?;
            let val_accuracy = val_scores.get("accuracy").copied();
            self.records.push(EpochRecord {
                epoch,
                train_loss,
                val_loss,
                val_accuracy,
                learning_rate: self.optimizer.learning_rate(),
                seconds: t0.elapsed().as_secs_f64(),
                val_scores,
            });
            let leader = self.is_leader();
            let dir = if leader {
                self.save_checkpoint()?
            } else {
                self.checkpoint_dir(self.global_step)
            };
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
                if leader {
                    self.rewrite_state(&dir)?;
                }
            }
            if leader {
                self.update_best(&dir)?;
                on_epoch(&record, &dir)?;
            }
            if stop {
                return Ok(Some(
                    reason.unwrap_or_else(|| "stopped by a callback".into()),
                ));
            }
        }
        Ok(None)
    }

    /// `value` averaged over the ranks (itself on one process).
    fn mean_over_ranks(&self, value: f64) -> Result<f64> {
        let Some(g) = self.ranks() else {
            return Ok(value);
        };
        let mut v = [value];
        g.all_reduce_sum_f64(&mut v)?;
        Ok(v[0] / g.world_size() as f64)
    }

    /// The validation loss and scores, computed by rank 0 alone and sent to
    /// every rank (so that plateau, early-stopping and best-checkpoint
    /// decisions agree everywhere).
    fn shared_validation(&self) -> Result<(Option<f64>, Scores)> {
        let Some(val) = &self.val else {
            return Ok((None, Scores::new()));
        };
        let Some(group) = self.ranks() else {
            let (l, scores) = self.validate_scores(val)?;
            return Ok((Some(l), scores));
        };
        let rank = group.rank();
        let mut bytes = if group.is_leader() {
            // A failed validation on rank 0 still reaches the others (as an
            // error message), so that no rank waits for it.
            let outcome: std::result::Result<(f64, Scores), String> =
                self.validate_scores(val).map_err(|e| e.to_string());
            serde_json::to_vec(&outcome)
                .map_err(|e| crate::dist::dist_error(rank, e.to_string()))?
        } else {
            Vec::new()
        };
        group.broadcast_bytes(&mut bytes, 0)?;
        let outcome: std::result::Result<(f64, Scores), String> = serde_json::from_slice(&bytes)
            .map_err(|e| crate::dist::dist_error(rank, format!("validation record: {e}")))?;
        match outcome {
            Ok((l, scores)) => Ok((Some(l), scores)),
            Err(e) if group.is_leader() => Err(TrainError::Model(e)),
            Err(e) => Err(crate::dist::dist_error(
                0,
                format!("validation failed: {e}"),
            )),
        }
    }

    /// Why an earlier run stopped early, if it did (kept in checkpoints, so a
    /// resumed run that already stopped does not train on).
    pub fn stopped_reason(&self) -> Option<String> {
        self.stopped.clone()
    }
}

/// Applies the batch transforms to a training batch, seeded by the sampler
/// position after it (the same for any worker count and after a resume).
fn mix(
    transforms: &[Arc<dyn BatchTransform>],
    mut samples: Vec<Sample>,
    seed: u64,
    state: &SamplerState,
) -> Result<Vec<Sample>> {
    for (k, t) in transforms.iter().enumerate() {
        let mut rng = rng_for(
            seed ^ 0xB47C_u64.wrapping_mul(k as u64 + 1),
            state.epoch,
            state.position as u64,
        );
        samples = t.apply_batch(samples, &mut rng)?;
    }
    Ok(samples)
}

/// Splits `samples` into `micro_batches` parts (sizes differing by at most
/// one) and collates each.
fn split_and_collate<M, T: Task<M>>(
    task: &T,
    samples: &[Sample],
    micro_batches: usize,
    device: &Device,
) -> Result<Parts<T::Batch>> {
    let n = samples.len();
    let parts = micro_batches.min(n).max(1);
    (0..parts)
        .map(|k| {
            let chunk = &samples[n * k / parts..n * (k + 1) / parts];
            Ok((task.collate(chunk, device)?, chunk.len()))
        })
        .collect()
}
