//! # unidl-data — the data layer (T/AII 008 §6.2.2, §6.2.3.4, §6.2.3.6, B.1, B.2, B.7)
//!
//! - [`parse`]: images (jpg, png, bmp) and text (txt, json, jsonl, csv, xml)
//!   into host data, with typed errors naming the file (P-a, P-b, P-e).
//! - [`sample`]: a [`Sample`] carries inputs of any modality and targets
//!   (labels, boxes, masks, keypoints, token ids, text).
//! - [`transform`]: the [`Transform`] base trait, image transforms that move
//!   boxes/masks/keypoints with the image, combinators, TOML pipelines and a
//!   registry for user transforms (A-a, A-b, A-c).
//! - [`dataset`]: `construct_dataset` / `get_sample` (B.1).
//! - [`sampler`]: `construct_sampler` / `iterate_sample` / `iterate_batch` (B.2)
//!   with a restorable state and sharding.
//! - [`loader`]: worker-count-invariant multi-threaded loading and collation.
//! - [`operator`]: `construct_operator` / `operate` (B.7).
//!
//! Architecture invariant: depends on `unidl-tensor`/`unidl-backend` (for
//! collation into tensors), `unidl-media` (audio and video decoding) and on
//! file-format crates; never on the training layer or the zoo.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-media`.

pub mod dataset;
pub mod error;
pub mod loader;
pub mod operator;
pub mod parse;
pub mod prepare;
pub mod sample;
pub mod sampler;
pub mod text;
pub mod transform;

pub use dataset::{Dataset, DatasetParams, PreparedDataset, construct_dataset, get_sample};
pub use error::{DataError, Result};
pub use loader::{
    Collated, DataLoader, LoadedBatch, LoaderConfig, collate_images, collate_tokens, pad_tokens,
    stack_clips, stack_images,
};
pub use operator::{OpData, Operator, construct_operator};
pub use sample::{Audio, BBox, Frame, Image, Input, Keypoint, Mask, Sample, Targets};
pub use sampler::{
    Sampler, SamplerConfig, SamplerState, construct_sampler, iterate_batch, iterate_sample,
};
pub use transform::{Transform, TransformConfig};
