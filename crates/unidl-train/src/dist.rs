//! Data-parallel training over a process group (G-c, B.4).
//!
//! A [`Collective`] is the group a trainer belongs to: its rank, its size,
//! and three collectives — element-wise sums over every rank
//! ([`Collective::all_reduce_sum_f32`], `…_f64`) and a broadcast of bytes
//! from one rank. The trainer ([`crate::Trainer::set_collective`]) uses it
//! to start every rank from rank 0's parameters, to average the gradients
//! of each step before the identical optimizer step on every rank
//! ([`average_gradients`]), and to share the epoch's records. The engine
//! behind it is MPI (`unidl-dist`, `mpirun -np N unidl train …`);
//! [`ThreadGroup`] runs ranks as threads of one process, for tests and for
//! checking a model's data-parallel equivalence without MPI.
//!
//! The gradient exchange follows PyTorch DDP: every float gradient
//! flattened in the model's visiting order (fixed, the same on every rank),
//! cut into buckets of at most [`BUCKET_BYTES`] per dtype, one all-reduce
//! per bucket, the sums divided by the world size. A parameter that has a
//! gradient on some ranks only (a branch one rank's batch did not reach)
//! counts as zero on the others; one without a gradient anywhere stays
//! without one.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData};

use crate::error::{Result, TrainError};

/// Largest all-reduce bucket, in bytes of gradient (PyTorch DDP's 25 MiB).
pub const BUCKET_BYTES: usize = 25 << 20;

/// The process group of a data-parallel run (one rank per process, or per
/// thread with [`ThreadGroup`]). Every rank must call the collectives in the
/// same order with the same sizes; an implementation returns
/// [`TrainError::Distributed`] rather than hang when a rank does not come
/// (a timeout) or has failed.
pub trait Collective: Send + Sync + std::fmt::Debug {
    /// This rank, `0..world_size`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn world_size(&self) -> usize;
    /// Replaces `values` on every rank by their element-wise sum over ranks.
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<()>;
    /// Replaces `values` on every rank by their element-wise sum over ranks.
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()>;
    /// Replaces `bytes` on every rank by rank `root`'s (any length).
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()>;
    /// Ends the whole job after an error on this rank (MPI: `MPI_Abort`),
    /// so that no other rank waits for it. The default does nothing (the
    /// other ranks' timeouts end them).
    fn abort(&self, _code: i32) {}
    /// Whether this rank writes checkpoints, records and progress (rank 0).
    fn is_leader(&self) -> bool {
        self.rank() == 0
    }
}

/// An error of rank `rank` in a collective.
pub fn dist_error(rank: usize, reason: impl Into<String>) -> TrainError {
    TrainError::Distributed {
        rank,
        reason: reason.into(),
    }
}

/// One float parameter's gradient on this rank, flattened.
struct Entry {
    id: ParamId,
    numel: usize,
    dtype: DType,
    grad: Option<Tensor<1>>,
    device: burn::tensor::Device,
}

/// Collects the float parameters (visiting order) and their gradients.
struct Gather<'a> {
    grads: &'a GradientsParams,
    entries: Vec<Entry>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let numel = value.shape().num_elements();
        let grad = self.grads.get::<D>(param.id).map(|g| g.reshape([numel]));
        self.entries.push(Entry {
            id: param.id,
            numel,
            dtype: grad.as_ref().map_or(value.dtype(), |g| g.dtype()),
            device: value.device(),
            grad,
        });
    }
}

/// Registers the averaged gradients, reshaped to their parameters.
struct Scatter<'a> {
    grads: &'a mut GradientsParams,
    averaged: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for Scatter<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(flat) = self.averaged.remove(&param.id) {
            let dims: [usize; D] = param.val().dims();
            self.grads.register::<D>(param.id, flat.reshape(dims));
        }
    }
}

/// Averages `grads` (the gradients of `model`'s parameters on this rank)
/// over the ranks of `group`, in place: buckets of at most `bucket_bytes`
/// per dtype, one all-reduce each, in the model's visiting order. With one
/// rank it returns at once.
pub fn average_gradients<M: Module>(
    model: &M,
    grads: &mut GradientsParams,
    group: &dyn Collective,
    bucket_bytes: usize,
) -> Result<()> {
    let world = group.world_size();
    if world <= 1 {
        return Ok(());
    }
    let mut gather = Gather {
        grads,
        entries: Vec::new(),
    };
    model.visit(&mut gather);
    let entries = gather.entries;
    // Which parameters have a gradient on any rank (one small all-reduce).
    let mut present: Vec<f32> = entries
        .iter()
        .map(|e| f32::from(u8::from(e.grad.is_some())))
        .collect();
    group.all_reduce_sum_f32(&mut present)?;
    let mut averaged = HashMap::new();
    let live: Vec<(usize, &Entry)> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| present[*i] > 0.0)
        .collect();
    let mut start = 0;
    while start < live.len() {
        // A bucket: consecutive entries of one dtype up to `bucket_bytes`.
        let dtype = live[start].1.dtype;
        let mut end = start;
        let mut bytes = 0usize;
        while end < live.len()
            && live[end].1.dtype == dtype
            && (end == start || bytes + live[end].1.numel * dtype.size() <= bucket_bytes)
        {
            bytes += live[end].1.numel * dtype.size();
            end += 1;
        }
        let bucket = &live[start..end];
        let parts: Vec<Tensor<1>> = bucket
            .iter()
            .map(|(_, e)| match &e.grad {
                Some(g) => g.clone(),
                None => Tensor::zeros([e.numel], (&e.device, dtype)),
            })
            .collect();
        let device = parts[0].device();
        let flat = Tensor::cat(parts, 0).into_data();
        let total: usize = bucket.iter().map(|(_, e)| e.numel).sum();
        let data = if dtype == DType::F64 {
            let mut v = flat
                .convert::<f64>()
                .try_into_vec::<f64>()
                .map_err(|e| dist_error(group.rank(), format!("reading gradients: {e:?}")))?;
            group.all_reduce_sum_f64(&mut v)?;
            let scale = 1.0 / world as f64;
            v.iter_mut().for_each(|x| *x *= scale);
            TensorData::new(v, [total])
        } else {
            // f32, and f16/bf16 summed in f32 (then converted back).
            let mut v = flat
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| dist_error(group.rank(), format!("reading gradients: {e:?}")))?;
            group.all_reduce_sum_f32(&mut v)?;
            let scale = 1.0 / world as f32;
            v.iter_mut().for_each(|x| *x *= scale);
            TensorData::new(v, [total]).convert_dtype(dtype)
        };
        let summed = Tensor::<1>::from_data(data, (&device, dtype));
        let mut offset = 0;
        for (_, e) in bucket {
            averaged.insert(e.id, summed.clone().slice(offset..offset + e.numel));
            offset += e.numel;
        }
        start = end;
    }
    let mut scatter = Scatter { grads, averaged };
    model.visit(&mut scatter);
    Ok(())
}

/// State shared by the ranks of a [`ThreadGroup`].
#[derive(Debug)]
struct Shared {
    world: usize,
    timeout: Duration,
    state: Mutex<Round>,
    cv: Condvar,
}

/// One collective in progress: contributions arrive, the last one completes
/// it, every rank reads the result, the last reader opens the next round.
#[derive(Debug, Default)]
struct Round {
    arrived: usize,
    read: usize,
    sum: Vec<f64>,
    bytes: Vec<u8>,
    done: bool,
    failed: Option<String>,
}

/// Ranks as threads of one process, sharing memory: the same
/// [`Collective`] contract as MPI (and the same summation order on every
/// rank), for tests and single-process checks. Not a transport between
/// processes.
#[derive(Debug, Clone)]
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

enum Contribution<'a> {
    Sum(&'a [f64]),
    Bytes(Option<&'a [u8]>),
}

impl ThreadGroup {
    /// `world` handles, one per rank (hand each to its thread); a collective
    /// that waits longer than `timeout` for the other ranks fails with
    /// [`TrainError::Distributed`].
    pub fn new(world: usize, timeout: Duration) -> Vec<ThreadGroup> {
        let shared = Arc::new(Shared {
            world: world.max(1),
            timeout,
            state: Mutex::new(Round::default()),
            cv: Condvar::new(),
        });
        (0..world.max(1))
            .map(|rank| ThreadGroup {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect()
    }

    fn wait<'a>(
        &self,
        mut guard: std::sync::MutexGuard<'a, Round>,
        until: impl Fn(&Round) -> bool,
        deadline: Instant,
        what: &str,
    ) -> Result<std::sync::MutexGuard<'a, Round>> {
        loop {
            if let Some(f) = &guard.failed {
                return Err(dist_error(self.rank, format!("{what}: {f}")));
            }
            if until(&guard) {
                return Ok(guard);
            }
            let now = Instant::now();
            if now >= deadline {
                let reason = format!(
                    "{what}: timed out after {:.1} s waiting for the other ranks ({} of {} arrived)",
                    self.shared.timeout.as_secs_f64(),
                    guard.arrived,
                    self.shared.world
                );
                guard.failed = Some(format!("rank {} {reason}", self.rank));
                self.shared.cv.notify_all();
                return Err(dist_error(self.rank, reason));
            }
            let (g, _) = self
                .shared
                .cv
                .wait_timeout(guard, deadline - now)
                .map_err(|_| dist_error(self.rank, "a rank panicked"))?;
            guard = g;
        }
    }

    /// Adds this rank's contribution and returns the completed round's
    /// sum (or bytes).
    fn collective(&self, c: Contribution<'_>, what: &str) -> Result<(Vec<f64>, Vec<u8>)> {
        let deadline = Instant::now() + self.shared.timeout;
        let guard = self
            .shared
            .state
            .lock()
            .map_err(|_| dist_error(self.rank, "a rank panicked"))?;
        // Wait until the previous round has been read by everyone.
        let mut g = self.wait(guard, |r| !r.done, deadline, what)?;
        if g.arrived == 0 {
            g.sum.clear();
            g.bytes.clear();
        }
        match c {
            Contribution::Sum(v) => {
                if g.arrived == 0 {
                    g.sum = vec![0.0; v.len()];
                } else if g.sum.len() != v.len() {
                    let reason = format!(
                        "{what}: rank {} sent {} values, another rank {}",
                        self.rank,
                        v.len(),
                        g.sum.len()
                    );
                    g.failed = Some(reason.clone());
                    self.shared.cv.notify_all();
                    return Err(dist_error(self.rank, reason));
                }
                for (s, x) in g.sum.iter_mut().zip(v) {
                    *s += x;
                }
            }
            Contribution::Bytes(Some(b)) => g.bytes = b.to_vec(),
            Contribution::Bytes(None) => {}
        }
        g.arrived += 1;
        if g.arrived == self.shared.world {
            g.done = true;
            self.shared.cv.notify_all();
        }
        let mut g = self.wait(g, |r| r.done, deadline, what)?;
        let out = (g.sum.clone(), g.bytes.clone());
        g.read += 1;
        if g.read == self.shared.world {
            g.read = 0;
            g.arrived = 0;
            g.done = false;
            self.shared.cv.notify_all();
        }
        Ok(out)
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.shared.world
    }
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<()> {
        let wide: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
        let (sum, _) = self.collective(Contribution::Sum(&wide), "all-reduce")?;
        for (v, s) in values.iter_mut().zip(sum) {
            *v = s as f32;
        }
        Ok(())
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let (sum, _) = self.collective(Contribution::Sum(values), "all-reduce")?;
        values.copy_from_slice(&sum);
        Ok(())
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        if root >= self.shared.world {
            return Err(dist_error(
                self.rank,
                format!(
                    "broadcast from rank {root} in a group of {}",
                    self.shared.world
                ),
            ));
        }
        let mine = (self.rank == root).then_some(bytes.as_slice());
        let (_, got) = self.collective(Contribution::Bytes(mine), "broadcast")?;
        *bytes = got;
        Ok(())
    }
    fn abort(&self, _code: i32) {
        if let Ok(mut g) = self.shared.state.lock() {
            g.failed = Some(format!("rank {} failed", self.rank));
            self.shared.cv.notify_all();
        }
    }
}

/// A group as the differentiable sums of synchronised batch norm
/// (`unidl_tensor::collective`): what the trainer installs for a training
/// step with `sync_batch_norm`.
pub struct RankSums(pub Arc<dyn Collective>);

impl unidl_tensor::collective::RankSum for RankSums {
    fn world_size(&self) -> usize {
        self.0.world_size()
    }
    fn all_reduce_sum(&self, values: &mut [f32]) -> std::result::Result<(), String> {
        self.0.all_reduce_sum_f32(values).map_err(|e| e.to_string())
    }
}

static GLOBAL: std::sync::OnceLock<Arc<dyn Collective>> = std::sync::OnceLock::new();

/// Makes `group` this process's data-parallel group: every trainer built
/// afterwards ([`crate::construct_trainer`]) joins it. Launchers call it
/// once at start-up (`unidl` under `mpirun`); returns `false` (and changes
/// nothing) when a group was installed already.
pub fn install_global(group: Arc<dyn Collective>) -> bool {
    GLOBAL.set(group).is_ok()
}

/// The group [`install_global`] installed, if any.
pub fn global() -> Option<Arc<dyn Collective>> {
    GLOBAL.get().cloned()
}
