//! # unidl-train — training layer (T/AII 008 §6.2.3, B.3)
//!
//! - [`optim`]: `construct_optimizer`, `update_learnable_parameter`,
//!   `zero_gradient` (B.3) over burn-optim's SGD, momentum, Nesterov, Adam,
//!   AdamW, RMSprop and Adagrad, with the standard's error cases.
//! - [`schedule`]: learning-rate schedules and reduce-on-plateau.
//! - [`trainer`]: `construct_trainer`, `train_one_batch`, `train_one_epoch`,
//!   `train` (B.4), atomic checkpoints and exact resume.
//!
//! Inference and the evaluator (B.5, B.6) come next (issue 4).
//!
//! Architecture invariant: depends on `unidl-tensor`/`unidl-backend` and
//! burn-optim; never on the zoo.

pub mod error;
pub mod optim;
pub mod schedule;
pub mod trainer;

pub use error::{Result, TrainError};
pub use optim::{
    Optimizer, OptimizerConfig, OptimizerMethod, construct_optimizer, update_learnable_parameter,
    zero_gradient,
};
pub use schedule::{ReduceOnPlateau, Schedule};
pub use trainer::{
    EpochRecord, ImageClassification, TrainStep, Trainer, TrainerConfig, construct_trainer,
};
