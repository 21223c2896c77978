//! # unidl-run — runs from TOML configs, and the model registry
//!
//! - [`config`]: the strict run config (`[model]`, `[task]`, `[data]`,
//!   `[optimizer]`, `[schedule]`, `[trainer]`, `[infer]`, `[eval]`,
//!   `[pretrained]`); unknown keys are errors naming file, line and key.
//! - [`registry`]: [`ModelRegistry`], where zoo crates register each model
//!   ([`ZooModel`]: its serde config type, model and task) under a name.
//! - [`baseline`]: baselines learnt models are measured against (the
//!   word-by-word translation of a dictionary).
//! - [`run`]: the task-generic `train`/`eval`/`infer`/`summary` commands, one
//!   implementation for every registered model.
//!
//! A zoo crate exposes `pub fn register(&mut ModelRegistry)`; the `unidl`
//! binary calls the enabled ones and names no model itself.
//!
//! Architecture invariant: depends on the core crates (`unidl-train`,
//! `unidl-data`, `unidl-tensor`, `unidl-backend`) and `unidl-env`, never on a
//! zoo crate or the CLI.
//!
//! Depends on: `unidl-env`, `unidl-backend`, `unidl-tensor`, `unidl-data`,
//! `unidl-train`.

pub mod baseline;
pub mod config;
pub mod error;
pub mod registry;
pub mod run;
mod tasks;

pub use config::{DataConfig, RunConfig, TaskConfig, TokenizerConfig, data_dir, resolve};
pub use error::{BoxError, Result, RunError};
pub use registry::{BuildTask, DataFacts, Entry, ModelRegistry, Output, TaskKind, ZooModel};
pub use run::{
    InferArgs, Run, eval_config, eval_config_with, infer_config, summary_config, train_config,
};
