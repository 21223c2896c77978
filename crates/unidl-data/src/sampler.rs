//! Samplers (§6.2.3.6, B.2): `construct_sampler`, `iterate_sample`,
//! `iterate_batch`. A sampler's position is a small serialisable state, so a
//! resumed run continues at exactly the next batch.

use serde::{Deserialize, Serialize};

use crate::dataset::PreparedDataset;
use crate::error::{DataError, Result};
use crate::sample::Sample;

/// The standard's sampler config (B.2.1) plus seed and data-parallel sharding.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Samples per batch (≥ 1).
    pub batch_size: usize,
    /// Shuffle every epoch.
    #[serde(default)]
    pub shuffle: bool,
    /// Start a new epoch after the last batch instead of stopping.
    #[serde(default)]
    pub repeat: bool,
    /// Drop a last batch smaller than `batch_size`.
    #[serde(default)]
    pub drop_last_batch: bool,
    /// Seed of the shuffles.
    #[serde(default)]
    pub seed: u64,
    /// This process's shard (data-parallel rank).
    #[serde(default)]
    pub rank: usize,
    /// Number of shards (data-parallel world size, ≥ 1).
    #[serde(default = "one")]
    pub world_size: usize,
    /// Batch samples of similar length together, so that little of a batch
    /// is padding (text): the (shuffled) order is cut into groups of
    /// [`LENGTH_GROUP_BATCHES`] batches, each group sorted by length and cut
    /// into batches, and the batches shuffled. Needs the data set's
    /// lengths ([`Sampler::with_lengths`]).
    #[serde(default)]
    pub group_by_length: bool,
}

/// Batches per group of a length-grouped sampler: wide enough to find
/// samples of similar length, narrow enough that every group still mixes
/// the data (`transformers`' `LengthGroupedSampler` uses 50).
pub const LENGTH_GROUP_BATCHES: usize = 50;

fn one() -> usize {
    1
}

impl SamplerConfig {
    /// A config with `batch_size` and the defaults (no shuffle, no repeat, keep the last batch).
    pub fn new(batch_size: usize) -> Self {
        SamplerConfig {
            batch_size,
            shuffle: false,
            repeat: false,
            drop_last_batch: false,
            seed: 0,
            rank: 0,
            world_size: 1,
            group_by_length: false,
        }
    }
}

/// Where a sampler is: restore it with [`Sampler::restore`].
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SamplerState {
    /// Current epoch.
    pub epoch: u64,
    /// Position within the epoch's (sharded) order.
    pub position: usize,
}

/// Draws indices of a data set of `len` samples.
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplerConfig,
    len: usize,
    state: SamplerState,
    order: Vec<usize>,
    /// Per-sample lengths (length-grouped batching).
    lengths: Option<std::sync::Arc<Vec<usize>>>,
}

pub use crate::transform::permutation;

/// `construct_sampler(sampler_config, dataset)` (B.2.1). With
/// `group_by_length`, the data set must know its samples' lengths
/// ([`crate::Dataset::length`]), else a config error names the key.
pub fn construct_sampler(config: &SamplerConfig, dataset: &PreparedDataset) -> Result<Sampler> {
    if config.group_by_length {
        let lengths = dataset.lengths().ok_or_else(|| {
            DataError::config(
                "group_by_length",
                format!(
                    "the data set at {} does not know its samples' lengths (text data sets with inline texts do)",
                    dataset.root().display()
                ),
            )
        })?;
        Sampler::with_lengths(config.clone(), lengths)
    } else {
        Sampler::new(config.clone(), dataset.len())
    }
}

impl Sampler {
    /// A sampler over samples of the given lengths: batches of similar
    /// lengths when `config.group_by_length` (see [`SamplerConfig`]).
    pub fn with_lengths(config: SamplerConfig, lengths: Vec<usize>) -> Result<Self> {
        let mut s = Sampler::checked(config, lengths.len())?;
        s.lengths = Some(std::sync::Arc::new(lengths));
        s.order = s.epoch_order(0);
        Ok(s)
    }

    /// A sampler over `len` samples; config errors name the key;
    /// `group_by_length` needs [`Sampler::with_lengths`].
    pub fn new(config: SamplerConfig, len: usize) -> Result<Self> {
        if config.group_by_length {
            return Err(DataError::config(
                "group_by_length",
                "grouping by length needs the samples' lengths (Sampler::with_lengths)",
            ));
        }
        let mut s = Sampler::checked(config, len)?;
        s.order = s.epoch_order(0);
        Ok(s)
    }

    fn checked(config: SamplerConfig, len: usize) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::config("batch_size", "must be at least 1"));
        }
        if config.world_size == 0 || config.rank >= config.world_size {
            return Err(DataError::config(
                "rank",
                format!("rank {} with world_size {}", config.rank, config.world_size),
            ));
        }
        if len == 0 {
            return Err(DataError::config("dataset", "the data set is empty"));
        }
        if len < config.world_size {
            // A rank with an empty shard would index nothing (and, with
            // `repeat`, yield empty batches forever).
            return Err(DataError::config(
                "world_size",
                format!(
                    "{} ranks but the data set has {len} samples: every rank needs at least one",
                    config.world_size
                ),
            ));
        }
        Ok(Sampler {
            config,
            len,
            state: SamplerState::default(),
            order: Vec::new(),
            lengths: None,
        })
    }

    fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let all = if self.config.shuffle {
            permutation(self.len, self.config.seed, epoch)
        } else {
            (0..self.len).collect()
        };
        // Every rank gets the same number of samples (data-parallel ranks
        // step together): the order is padded to a multiple of world_size
        // with its own first samples, as PyTorch's DistributedSampler does.
        let world = self.config.world_size;
        let padded = all.len().div_ceil(world) * world;
        let shard: Vec<usize> = all
            .iter()
            .cycle()
            .take(padded)
            .copied()
            .skip(self.config.rank)
            .step_by(world)
            .collect();
        match &self.lengths {
            Some(lengths) if self.config.group_by_length => self.grouped(shard, lengths, epoch),
            _ => shard,
        }
    }

    /// `order` regrouped: groups of [`LENGTH_GROUP_BATCHES`] batches sorted
    /// longest first, cut into batches; the full batches shuffled (when the
    /// sampler shuffles), a last partial batch kept last so that every
    /// batch starts at a multiple of `batch_size`.
    fn grouped(&self, order: Vec<usize>, lengths: &[usize], epoch: u64) -> Vec<usize> {
        let bs = self.config.batch_size;
        let mut sorted = Vec::with_capacity(order.len());
        for group in order.chunks(bs * LENGTH_GROUP_BATCHES) {
            let mut g = group.to_vec();
            // stable: equal lengths keep their (shuffled) order
            g.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
            sorted.extend(g);
        }
        let full = sorted.len() / bs;
        let batch_order: Vec<usize> = if self.config.shuffle {
            crate::transform::shuffled(
                full,
                &mut crate::transform::rng_for(self.config.seed, 0x1E46_7B0C, epoch),
            )
        } else {
            (0..full).collect()
        };
        let mut out = Vec::with_capacity(sorted.len());
        for b in batch_order {
            out.extend_from_slice(&sorted[b * bs..(b + 1) * bs]);
        }
        out.extend_from_slice(&sorted[full * bs..]);
        out
    }

    /// The config.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The current state (to checkpoint).
    pub fn state(&self) -> SamplerState {
        self.state
    }

    /// Continues from a saved state.
    pub fn restore(&mut self, state: SamplerState) -> Result<()> {
        let order = self.epoch_order(state.epoch);
        if state.position > order.len() {
            return Err(DataError::config(
                "sampler state",
                format!(
                    "position {} beyond epoch length {}",
                    state.position,
                    order.len()
                ),
            ));
        }
        self.order = order;
        self.state = state;
        Ok(())
    }

    /// Batches per epoch for this shard.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.order.len();
        if self.config.drop_last_batch {
            n / self.config.batch_size
        } else {
            n.div_ceil(self.config.batch_size)
        }
    }

    fn roll_epoch(&mut self) -> bool {
        if !self.config.repeat {
            return false;
        }
        self.state.epoch += 1;
        self.state.position = 0;
        self.order = self.epoch_order(self.state.epoch);
        true
    }

    /// The next sample index with its epoch, or `None` at the end (without `repeat`).
    pub fn next_index(&mut self) -> Option<(u64, usize)> {
        if self.state.position >= self.order.len() && !self.roll_epoch() {
            return None;
        }
        let i = self.order[self.state.position];
        self.state.position += 1;
        Some((self.state.epoch, i))
    }

    /// The next batch of (epoch, index) pairs, or `None` at the end.
    pub fn next_batch(&mut self) -> Option<Vec<(u64, usize)>> {
        let bs = self.config.batch_size;
        let mut remaining = self.order.len() - self.state.position.min(self.order.len());
        if remaining == 0 || (self.config.drop_last_batch && remaining < bs) {
            if !self.roll_epoch() {
                return None;
            }
            remaining = self.order.len();
            if self.config.drop_last_batch && remaining < bs {
                return None;
            }
        }
        let take = remaining.min(bs);
        let epoch = self.state.epoch;
        let out = self.order[self.state.position..self.state.position + take]
            .iter()
            .map(|&i| (epoch, i))
            .collect();
        self.state.position += take;
        Some(out)
    }
}

/// `iterate_sample(dataset, sampler?)` (B.2.2): samples in the sampler's order
/// (in index order once when no sampler is given).
pub fn iterate_sample<'a>(
    dataset: &'a PreparedDataset,
    sampler: Option<&'a mut Sampler>,
) -> Box<dyn Iterator<Item = Result<Sample>> + 'a> {
    match sampler {
        Some(s) => Box::new(
            std::iter::from_fn(move || s.next_index()).map(|(e, i)| dataset.get_sample_at(i, e)),
        ),
        None => Box::new((0..dataset.len()).map(|i| dataset.get_sample_at(i, 0))),
    }
}

/// `iterate_batch(dataset, sampler)` (B.2.3): lists of `batch_size` samples.
pub fn iterate_batch<'a>(
    dataset: &'a PreparedDataset,
    sampler: &'a mut Sampler,
) -> impl Iterator<Item = Result<Vec<Sample>>> + 'a {
    std::iter::from_fn(move || sampler.next_batch()).map(|b| {
        b.into_iter()
            .map(|(e, i)| dataset.get_sample_at(i, e))
            .collect()
    })
}
