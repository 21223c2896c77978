//! # unidl-fuzz — mutation fuzzing of every reader and config parser
//!
//! Issue 13 ("Crash on crafted input") asked that no file a user hands unidl
//! can crash it: a malformed file is a typed error, never a panic, an abort
//! or a hang. This crate checks that continuously. Each [target](targets)
//! feeds mutated seed files (the repository's test fixtures) to one real
//! reader through its public entry point.
//!
//! - [`mutate`]: deterministic mutations (bit flips, interesting bytes and
//!   integers, arithmetic, truncation, deleted, inserted and duplicated runs,
//!   splices of two seeds, format tokens); case `i` of a run is a function of
//!   (seed, target, `i`) alone.
//! - [`worker`]: the child process that runs the cases under
//!   `catch_unwind`, with a limited address space and the 2 MiB stack of a
//!   spawned thread, recording the case index before each case.
//! - [`driver`]: starts a worker per target, restarts it after a case kills
//!   it, kills it when a case hangs, saves every failing case under
//!   `target/fuzz-findings/<target>/` and reports cases, cases/s, panics,
//!   aborts, hangs, the slowest case and the worker's peak memory.
//!
//! Run it with `cargo xtask fuzz [target|all] [--time S] [--cases N]
//! [--seed K]`; `tests/short_pass.rs` runs every target for 10,000 cases in
//! `cargo test`. docs/RELIABILITY.md has the details and the long run.
//!
//! Architecture invariant: a leaf — nothing depends on it; it only calls the
//! public readers of the other crates and never changes them.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-interop`, `unidl-data`,
//! `unidl-media`, `unidl-train`, `unidl-run`.

pub mod driver;
pub mod error;
pub mod mutate;
pub mod sstable;
pub mod target;
pub mod targets;
pub mod worker;

pub use driver::{Config, Finding, FindingKind, Report, TargetReport};
pub use error::FuzzError;
pub use mutate::Mutator;
pub use target::{Ctx, Outcome, Target};
