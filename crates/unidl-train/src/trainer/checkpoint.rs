//! Checkpoint I/O: atomic saves of model, optimizer and trainer state, exact
//! resume, keep-last/keep-best, and loading weights for inference.

use std::path::{Path, PathBuf};

use burn::module::Module;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_data::SamplerState;
use unidl_tensor::module::{ModuleApi, load_state_dict_file, save_state_dict, write_atomic};

use super::{EpochRecord, Trainer};
use crate::error::{Result, TrainError};
use crate::optim::construct_optimizer;
use crate::task::Task;

fn unit() -> f64 {
    1.0
}

/// Progress saved in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct TrainerState {
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
    /// Sum and count of the training losses of the sampler's current epoch.
    #[serde(default)]
    epoch_losses: (f64, u64),
}

/// Reads (`set` = None) or assigns parameter ids by path.
pub(super) struct Ids {
    pub(super) stack: Vec<String>,
    pub(super) ids: std::collections::BTreeMap<String, u64>,
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

impl<M: Module, T: Task<M>> Trainer<M, T> {
    pub(super) fn checkpoint_dir(&self, step: u64) -> PathBuf {
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
    pub(super) fn rewrite_state(&self, dir: &Path) -> Result<()> {
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
            epoch_losses: self.epoch_losses,
        };
        let json = serde_json_string(&state, self.optimizer.learning_rate());
        write_atomic(&dir.join("trainer.json"), json.as_bytes())
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", dir.display())))
    }

    /// With `keep_best`, copies checkpoint `dir` to `checkpoints/best` when the
    /// newest record is the best so far by `monitor`. The copy is made under a
    /// temporary name and renamed into place, so `best` is always complete.
    pub(super) fn update_best(&self, dir: &Path) -> Result<bool> {
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
    ///
    /// In a data-parallel run every rank calls it: each loads the newest
    /// checkpoint it finds (one shared folder, written by rank 0), then rank
    /// 0's weights are broadcast and the ranks' steps compared — a rank that
    /// found another checkpoint (or none) is an error naming it.
    pub fn resume(&mut self) -> Result<bool> {
        let found = list_checkpoints(&self.config.output_dir).pop();
        if let Some(dir) = &found {
            self.load_checkpoint(dir)?;
        }
        self.broadcast_state()?;
        Ok(found.is_some())
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
        self.epoch_losses = state.epoch_losses;
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
