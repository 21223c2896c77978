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

use crate::error::{Result, TrainError};
use crate::optim::{Optimizer, OptimizerConfig, construct_optimizer, update_learnable_parameter};
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
}

fn two() -> usize {
    2
}

/// Scalars recorded for one epoch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
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
    if config.epochs == 0 {
        return Err(TrainError::Config {
            key: "epochs".into(),
            reason: "must be at least 1".into(),
        });
    }
    if config.keep_last == 0 || config.workers == 0 {
        return Err(TrainError::Config {
            key: "keep_last/workers".into(),
            reason: "must be at least 1".into(),
        });
    }
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

    /// `train_one_batch({X, Y}) -> loss` (B.4.2): loss, backward, NaN guard,
    /// update, learning-rate step. A non-finite loss is an error naming the step.
    pub fn train_one_batch(&mut self, samples: &[Sample]) -> Result<f64> {
        unidl_backend::seed(
            &self.device,
            self.config.seed ^ self.global_step.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let lr = self.optimizer.config().base_learningrate * self.schedule.factor(self.global_step);
        self.optimizer.set_learning_rate(lr)?;
        let model = self.model.take().expect("model present between steps");
        let loss = match self.step.loss(&model, samples, &self.device) {
            Ok(l) => l,
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        let value = loss.item()?;
        if !value.is_finite() {
            self.model = Some(model);
            return Err(TrainError::NonFinite {
                what: "loss".into(),
                param: "(loss)".into(),
                step: self.global_step,
            });
        }
        self.optimizer.backward(&loss, &model)?;
        let model = update_learnable_parameter(model, &mut self.optimizer)?;
        self.model = Some(model);
        self.global_step += 1;
        Ok(value)
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
        let remaining = self.batches_per_epoch()
            - (self.sampler.state().position / self.config.batch_size) as u64;
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
        let mut total = 0.0;
        let mut n = 0usize;
        for batch in loader.take(remaining as usize) {
            let batch = batch.map_err(|e| TrainError::Model(format!("data: {e}")))?;
            total += self.train_one_batch(&batch.samples)?;
            n += 1;
            self.sampler
                .restore(batch.state)
                .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        }
        Ok(if n == 0 { 0.0 } else { total / n as f64 })
    }

    /// Accuracy of the model on `dataset` (None when the task does not predict classes).
    pub fn evaluate_accuracy(&self, dataset: &PreparedDataset) -> Result<Option<f64>> {
        let model = self.model().valid();
        let device = self.device.clone().without_autodiff();
        let (mut correct, mut total) = (0usize, 0usize);
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
            let Some(pred) = self.step.predict(&model, &batch.samples, &device)? else {
                return Ok(None);
            };
            for (p, s) in pred.iter().zip(&batch.samples) {
                total += 1;
                correct += usize::from(Some(*p) == s.targets.label);
            }
        }
        Ok((total > 0).then(|| correct as f64 / total as f64))
    }

    /// `train()` (B.4.4): every remaining epoch, validation each epoch, a
    /// checkpoint after each epoch; returns the epoch records.
    pub fn train(&mut self) -> Result<Vec<EpochRecord>> {
        self.train_with(|_, _| Ok(()))
    }

    /// [`Trainer::train`] calling `on_epoch(record, checkpoint_dir)` after each
    /// epoch's checkpoint (Tr-e: an extra post-step, e.g. writing run records).
    pub fn train_with(
        &mut self,
        mut on_epoch: impl FnMut(&EpochRecord, &Path) -> Result<()>,
    ) -> Result<Vec<EpochRecord>> {
        let start = self.records.len();
        for epoch in start..self.config.epochs {
            let t0 = std::time::Instant::now();
            let train_loss = self.train_one_epoch(epoch)?;
            let val_accuracy = match &self.val {
                Some(v) => self.evaluate_accuracy(v)?,
                None => None,
            };
            self.records.push(EpochRecord {
                epoch,
                train_loss,
                val_accuracy,
                learning_rate: self.optimizer.learning_rate(),
                seconds: t0.elapsed().as_secs_f64(),
            });
            let dir = self.save_checkpoint()?;
            on_epoch(self.records.last().expect("just pushed"), &dir)?;
        }
        Ok(self.records.clone())
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
        save_state_dict(&self.model().state_dict(), &tmp.join("model.safetensors"))
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        write_atomic(&tmp.join("optimizer.bin"), &self.optimizer.state_bytes()?).map_err(io)?;
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
        };
        let json = serde_json_string(&state, self.optimizer.learning_rate());
        write_atomic(&tmp.join("trainer.json"), json.as_bytes()).map_err(io)?;
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(io)?;
        let mut all = list_checkpoints(&self.config.output_dir);
        while all.len() > self.config.keep_last {
            let old = all.remove(0);
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(final_dir)
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
        Ok(())
    }
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
        Ok(((self.forward)(model, x), b.labels))
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
