//! # unidl-train — training layer (T/AII 008 §6.2.3, B.3)
//!
//! - [`optim`]: `construct_optimizer`, `update_learnable_parameter`,
//!   `zero_gradient` (B.3) over burn-optim's SGD, momentum, Nesterov, Adam,
//!   AdamW, RMSprop and Adagrad, with the standard's error cases.
//! - [`schedule`]: learning-rate schedules and reduce-on-plateau.
//! - [`trainer`]: `construct_trainer`, `train_one_batch`, `train_one_epoch`,
//!   `train` (B.4), atomic checkpoints and exact resume.
//!
//! - [`dist`]: data-parallel training over a process group ([`Collective`]):
//!   parameters from rank 0, gradients averaged in buckets, shared records.
//! - [`infer`]: `construct_inference`, `infer_one_sample`, `infer_samples`
//!   (B.5) and post-processing (classification top-k).
//! - [`postprocess`]: detection (box decoding, NMS), semantic and instance
//!   segmentation, keypoints, text, similarity and CTC post-processing
//!   (§6.2.3.5 Post-b).
//! - [`eval`]: metrics and `construct_evalvater` / `evalvate` (B.6), with the
//!   aliases `construct_evaluator` / `evaluate`.
//!
//! Architecture invariant: depends on `unidl-data` (samples, loader,
//! collation), `unidl-tensor`/`unidl-backend` and burn-optim; never on the
//! run layer, the CLI or the zoo.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-data`.
//!
//! Dev-depends on: `unidl-nn`.

pub mod callback;
pub mod decoding;
pub mod dist;
pub mod draw;
pub mod error;
pub mod eval;
pub mod eval_tasks;
pub mod geometry;
pub mod infer;
pub mod metrics;
pub mod optim;
pub mod outputs;
pub mod postprocess;
pub mod records;
pub mod schedule;
pub mod task;
pub mod trainer;

pub use callback::{
    BatchEnd, Callback, EarlyStopping, EarlyStoppingConfig, EpochEnd, Monitor, PlateauConfig,
    PlateauLr, ProgressBar, TrainBegin,
};
pub use dist::{Collective, ThreadGroup, average_gradients};
pub use error::{Result, TrainError};
pub use eval::{
    ClassificationTask, EvalConfig, EvaluationTask, Evaluator, Metric, Scores, TaskMetrics,
    construct_evaluator, construct_evalvater, construct_evalvater_for,
};
pub use eval_tasks::{
    DetectionTask, InstanceSegmentationTask, KeypointTask, SemanticSegmentationTask, TextTask,
};
pub use infer::{
    ClassScore, Classification, InferOptions, Inference, PostProcess, Predictor,
    construct_inference, with_input_geometry,
};
pub use optim::{
    Optimizer, OptimizerConfig, OptimizerMethod, construct_optimizer, update_learnable_parameter,
    zero_gradient,
};
pub use postprocess::{
    CtcConfig, CtcDecoding, DetectionConfig, DetectionPost, HeatmapKeypoints, ImageGeometry,
    InstanceSegmentation, RegressionKeypoints, SemanticSegmentation, Similarity, TextDecoding,
    Vocabulary, batched_nms, nms,
};
pub use records::{ModelSummary, RunRecorder};
pub use schedule::{ReduceOnPlateau, Schedule};
pub use task::*;
pub use trainer::{
    CheckpointChoice, EpochRecord, Trainer, TrainerConfig, construct_trainer, find_checkpoint,
    load_model_checkpoint,
};
