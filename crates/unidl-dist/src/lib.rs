//! # unidl-dist — data-parallel training over MPI (G-c)
//!
//! `mpirun -np N unidl train --config …` (or `cargo xtask train --config …
//! --procs N`, which calls `mpirun`) trains one model on N processes, on one
//! host or many: each rank reads its shard of the data, the gradients are
//! averaged with MPI all-reduce before the identical optimizer step on every
//! rank, rank 0 writes the checkpoints and records. The training side lives
//! in `unidl-train` ([`unidl_train::dist`]: the [`Collective`] trait, the
//! bucketed gradient averaging, the rank-0 broadcast); this crate supplies
//! the engine: [`MpiGroup`], Open MPI through the `mpi` crate (rsmpi), the
//! same engine Horovod stands on.
//!
//! Everything MPI sits behind the `mpi` feature: a build without it is
//! unchanged and [`init_from_env`] tells a process launched by `mpirun` that
//! it was built without MPI instead of training N unrelated copies.
//!
//! A collective that waits longer than the timeout (`UNIDL_DIST_TIMEOUT_S`,
//! default [`DEFAULT_TIMEOUT_S`]) ends the job with a message naming the
//! rank and the collective, and a rank whose training fails ends the job
//! through [`Collective::abort`] (`MPI_Abort`): no rank waits forever.
//!
//! Depends on: `unidl-env`, `unidl-train`.
//!
//! Dev-depends on: `unidl-backend`, `unidl-tensor`, `unidl-vision`.

use std::sync::Arc;

pub use unidl_train::dist::{Collective, ThreadGroup, install_global};

#[cfg(feature = "mpi")]
mod mpi_group;
#[cfg(feature = "mpi")]
pub use mpi_group::MpiGroup;

/// Seconds a collective may wait for the other ranks before the job ends
/// (Gloo's default; rank 0 validating a large held-out set keeps the others
/// waiting in the broadcast of its results).
pub const DEFAULT_TIMEOUT_S: u64 = 1800;

/// What can go wrong setting up the process group.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// Launched by `mpirun` (N > 1 ranks) but built without MPI.
    #[error(
        "launched as rank {rank} of {world} (mpirun), but this unidl was built without MPI: \
         build it with `--features mpi` (needs libopenmpi-dev and libclang-dev)"
    )]
    NotBuilt {
        /// This process's rank.
        rank: usize,
        /// The launcher's world size.
        world: usize,
    },
    /// MPI could not be initialised, or a setting is invalid.
    #[error("MPI: {0}")]
    Init(String),
}

/// `(rank, world_size)` when this process was started by an MPI launcher
/// (Open MPI's `OMPI_COMM_WORLD_*`, or PMI/PMIx variables of MPICH, Slurm and
/// others); `None` for a plain start.
pub fn launched_rank() -> Option<(usize, usize)> {
    launched_rank_from(|k| std::env::var(k).ok())
}

/// [`launched_rank`] reading the variables through `env`.
pub fn launched_rank_from(env: impl Fn(&str) -> Option<String>) -> Option<(usize, usize)> {
    let var = |k: &str| env(k)?.parse::<usize>().ok();
    for (rank, size) in [
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("PMI_RANK", "PMI_SIZE"),
        ("PMIX_RANK", "PMIX_SIZE"),
    ] {
        if let (Some(r), Some(s)) = (var(rank), var(size)) {
            return Some((r, s));
        }
    }
    None
}

/// The collective timeout: `UNIDL_DIST_TIMEOUT_S` or [`DEFAULT_TIMEOUT_S`].
pub fn timeout() -> Result<std::time::Duration, DistError> {
    timeout_from(std::env::var("UNIDL_DIST_TIMEOUT_S").ok().as_deref())
}

/// The collective timeout for a `UNIDL_DIST_TIMEOUT_S` value (`None`: unset).
pub fn timeout_from(value: Option<&str>) -> Result<std::time::Duration, DistError> {
    match value {
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| {
                DistError::Init(format!(
                    "UNIDL_DIST_TIMEOUT_S = `{v}`: expected a positive number of seconds"
                ))
            }),
        None => Ok(std::time::Duration::from_secs(DEFAULT_TIMEOUT_S)),
    }
}

/// The process group this process belongs to: `None` for a plain start (or
/// `mpirun -np 1`), the MPI world when launched by `mpirun` with several
/// ranks (built with the `mpi` feature), else [`DistError::NotBuilt`].
pub fn init_from_env() -> Result<Option<Arc<dyn Collective>>, DistError> {
    init_from(|k| std::env::var(k).ok())
}

/// [`init_from_env`] reading the variables through `env`.
pub fn init_from(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn Collective>>, DistError> {
    let Some((rank, world)) = launched_rank_from(&env) else {
        return Ok(None);
    };
    if world <= 1 {
        return Ok(None);
    }
    #[cfg(feature = "mpi")]
    {
        let _ = rank;
        let t = timeout_from(env("UNIDL_DIST_TIMEOUT_S").as_deref())?;
        let group: Arc<dyn Collective> = Arc::new(MpiGroup::init(t)?);
        Ok(Some(group))
    }
    #[cfg(not(feature = "mpi"))]
    Err(DistError::NotBuilt { rank, world })
}

/// Ends MPI cleanly at the end of a successful run (`MPI_Finalize`; `mpirun`
/// reports a rank that exits without it as failed). Does nothing when MPI
/// was not started.
pub fn finalize() {
    #[cfg(feature = "mpi")]
    mpi_group::finalize();
}

pub use unidl_env::{mpirun_available, mpirun_command};
