//! # unidl — a deep-learning framework implementing T/AII 008-2023
//!
//! One interface for tensors, models, data, training, inference and evaluation,
//! whichever Burn back-end runs underneath. This crate only re-exports; each
//! layer lives in its own crate:
//!
//! | module        | crate           | standard                                  |
//! |---------------|-----------------|-------------------------------------------|
//! | [`env`]       | `unidl-env`     | data cache, torch venv, back-end precedence |
//! | [`backend`]   | `unidl-backend` | §6.1 adapter layer: back-end choice, dtypes, capability report |
//! | [`tensor`]    | `unidl-tensor`  | §6.2.1, A.1 Tensor; A.2 Module API        |
//! | [`nn`]        | `unidl-nn`      | §6.1.1-d module catalogue                 |
//! | [`media`]     | `unidl-media`   | §6.2.2.1 audio and video decoding         |
//! | [`data`]      | `unidl-data`    | §6.2.2, B.1, B.2, B.7 data sets, samplers, transforms, operators |
//! | [`train`]     | `unidl-train`   | §6.2.3, B.3–B.6 tasks, optimizers, trainer, inference, evaluation |
//! | [`run`]       | `unidl-run`     | TOML run configs and the model registry   |
//! | [`interop`]   | `unidl-interop` | §6.1.1-e, §6.1.2 PyTorch/TF/Paddle/MindSpore/ONNX weights |
//! | `vision`      | `unidl-vision`  | §6.3 vision zoo (feature `vision`, default) |
//! | `text`        | `unidl-text`    | §6.3 text zoo (feature `text`, default)   |
//! | `video`       | `unidl-video`   | §6.3 video zoo (feature `video`, default) |
//! | `audio`       | `unidl-audio`   | §6.3 audio zoo (feature `audio`, default) |
//! | `onnx`        | `unidl-onnx-models` | ONNX graphs as modules (feature `onnx`) |
//!
//! [`prelude`] brings every Annex A and B interface under the standard's name.
//!
//! Depends on: `unidl-env`, `unidl-backend`, `unidl-tensor`, `unidl-nn`,
//! `unidl-media`, `unidl-data`, `unidl-train`, `unidl-run`, `unidl-interop`,
//! `unidl-vision` (optional, feature `vision`), `unidl-text` (optional,
//! feature `text`), `unidl-video` (optional, feature `video`),
//! `unidl-audio` (optional, feature `audio`), `unidl-onnx-models`
//! (optional, feature `onnx`).
//!
//! ## Cargo features
//!
//! | feature   | default | back-end |
//! |-----------|---------|----------|
//! | `flex`    | yes     | pure-Rust CPU (embedded default) |
//! | `ndarray` | no      | ndarray CPU |
//! | `tch`     | no      | LibTorch 2.9.0 — build with `LIBTORCH_USE_PYTORCH=1` and a Python with `torch==2.9.0` on `PATH`; run with its `torch/lib` on `LD_LIBRARY_PATH` (`scripts/setup-torch.sh` does both) |
//! | `wgpu`    | no      | WGPU; on a CPU-only Linux box through Mesa's lavapipe (`apt install mesa-vulkan-drivers`) |
//! | `cuda`    | no      | CUDA via CubeCL; its build script downloads an LLVM bundle, so it cannot build offline |
//!
//! | feature   | default | adds |
//! |-----------|---------|------|
//! | `vision`  | yes     | [`vision`](crate#modules) — the vision zoo |
//! | `text`    | yes     | `text` — the text zoo |
//! | `video`   | yes     | `video` — the video zoo |
//! | `audio`   | yes     | `audio` — the audio zoo |
//! | `onnx`    | no      | `onnx` — ONNX graphs imported at build time |
//! | `ffmpeg`  | no      | FFmpeg decoding in [`media`]/[`data`] |
//!
//! The back-end is chosen at start-up by name ([`backend::select`]): explicit
//! argument > `UNIDL_BACKEND` > config key > `flex`.
//!
//! ```
//! use unidl::prelude::*;
//! let rt = unidl::backend::select(Some("flex"), None).unwrap();
//! let t = initialize(vec![vec![1.0, 2.0], vec![3.0, 4.0]], None, &rt.device).unwrap();
//! let s = t.sum(Axes::All, false).unwrap();
//! assert_eq!(s.item().unwrap(), 10.0);
//! ```

pub use unidl_backend as backend;

/// The README's Rust examples, compiled (and run where they need no files) as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

#[cfg(feature = "audio")]
pub use unidl_audio as audio;
pub use unidl_data as data;
pub use unidl_env as env;
pub use unidl_interop as interop;
pub use unidl_media as media;
pub use unidl_nn as nn;
#[cfg(feature = "onnx")]
pub use unidl_onnx_models as onnx;
pub use unidl_run as run;
pub use unidl_tensor as tensor;
#[cfg(feature = "text")]
pub use unidl_text as text;
pub use unidl_train as train;
#[cfg(feature = "video")]
pub use unidl_video as video;
#[cfg(feature = "vision")]
pub use unidl_vision as vision;

/// The names most programs need: every Annex A and B interface under the
/// standard's own name, and the types they take and return.
///
/// | standard | item |
/// |---|---|
/// | A.1 Tensor | [`initialize`], [`index`], [`permute`], [`reshape`] |
/// | A.2 Module | [`forward`], [`ModuleApi::get_parameters`], [`ModuleApi::get_modules`], [`ModuleApi::load_state_dict`], [`backward`] |
/// | B.1 data set | [`construct_dataset`], [`get_sample`] |
/// | B.2 sampler | [`construct_sampler`], [`iterate_sample`], [`iterate_batch`] |
/// | B.3 optimizer | [`construct_optimizer`], [`update_learnable_parameter`], [`zero_gradient`] |
/// | B.4 trainer | [`construct_trainer`], [`Trainer::train_one_batch`], [`Trainer::train_one_epoch`], [`Trainer::train`] |
/// | B.5 inference | [`construct_inference`], [`Inference::infer_one_sample`], [`Inference::infer_samples`] |
/// | B.6 evaluator | [`construct_evalvater`], [`Evaluator::evalvate`] (and [`construct_evaluator`]) |
/// | B.7 operator | [`construct_operator`], [`Operator::operate`] |
pub mod prelude {
    pub use unidl_backend::{BackendKind, DType, Device, select};
    pub use unidl_data::{
        DatasetParams, Operator, PreparedDataset, Sample, Sampler, SamplerConfig,
        construct_dataset, construct_operator, construct_sampler, get_sample, iterate_batch,
        iterate_sample,
    };
    pub use unidl_run::{ModelRegistry, ZooModel};
    pub use unidl_tensor::module::{Forward, ModuleApi, backward, forward};
    pub use unidl_tensor::{
        Axes, Data, Idx, Tensor, TensorError, index, initialize, permute, reshape,
    };
    pub use unidl_train::{
        EvalConfig, Evaluator, ImageClassification, ImageClassifier, InferOptions, Inference,
        Metric, OptimizerConfig, OptimizerMethod, Schedule, SequenceClassifier, Task, TaskIo,
        TaskPredictor, TextClassification, Trainer, TrainerConfig, construct_evaluator,
        construct_evalvater, construct_evalvater_for, construct_inference, construct_optimizer,
        construct_trainer, update_learnable_parameter, zero_gradient,
    };
}
