//! Normalisation layers.
//!
//! [`LayerNorm`], [`GroupNorm`] and the rank-generic [`BatchNorm`] are Burn's.
//! [`BatchNorm1d`], [`BatchNorm2d`] and [`BatchNorm3d`] are thin wrappers
//! around [`BatchNorm`] that fix the input rank the way PyTorch's classes do.
//! They hold exactly one [`BatchNorm`] and expose its parameters under the
//! same names (`gamma`, `beta`, `running_mean`, `running_var`), so records of
//! a wrapper and of a plain [`BatchNorm`] are interchangeable. PyTorch's
//! `weight`/`bias` correspond to `gamma`/`beta`.
//!
//! Like Burn's, the wrappers use batch statistics (and update the running
//! ones) only when the input is on an autodiff device and the module is in
//! training mode; otherwise they normalise with the running statistics.
//!
//! Unlike Burn's, they update the running variance as PyTorch does, with the
//! **unbiased** batch variance (`n / (n - 1)` times the biased one, `n` the
//! values per channel); Burn 0.22.1 uses the biased one, which drifts from
//! PyTorch where few values reach a channel (late 1×1 stages, small
//! batches). [`batch_norm`] applies the same rule to a plain [`BatchNorm`].
//! See `docs/DECISIONS.md` D20.

use burn::config::Config;
use burn::module::{
    Content, Devices, DisplaySettings, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper,
    ModuleVisitor,
};
use burn::tensor::{Device, Tensor};

pub use burn::nn::{
    BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig,
};

/// Batch normalisation with `bn`'s parameters, updating its running
/// statistics as PyTorch's `nn.BatchNorm{1,2,3}d` do in training.
///
/// Training (the layer's training flag is on and `input` is on an autodiff
/// device): normalises with the batch mean and biased variance, then sets
/// `running_mean ← (1 − m)·running_mean + m·mean` and
/// `running_var ← (1 − m)·running_var + m·var·n/(n − 1)`, `n` being the values
/// per channel (`N·L`, `N·H·W`, …). Otherwise: normalises with the running
/// statistics. Burn's `BatchNorm::forward` differs only in using the biased
/// variance for the running update.
///
/// # Shapes
/// `[N, C, …]` → `[N, C, …]`.
///
/// # Panics
/// If `C` differs from the layer's channel count.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, input: Tensor<D>) -> Tensor<D> {
    let [channels] = bn.gamma.shape().dims();
    let dims = input.dims();
    assert!(
        D >= 2 && dims[1] == channels,
        "batch norm over {channels} channels got an input of shape {dims:?}"
    );
    let device = input.device();
    if !(device.is_autodiff() && bn.training.is_enabled()) {
        // evaluation: Burn's own path (normalise with the running statistics)
        return bn.forward(input);
    }
    if let Some(group) = unidl_tensor::collective::current_rank_sum()
        && group.world_size() > 1
    {
        return sync_batch_norm(bn, input, &group);
    }
    let n = dims.iter().product::<usize>() / channels;
    let r =
        burn::tensor::module::batch_norm_train(input, bn.gamma.val(), bn.beta.val(), bn.epsilon);
    let unbiased = if n > 1 {
        n as f64 / (n - 1) as f64
    } else {
        1.0
    };
    let m = bn.momentum;
    let mean = bn.running_mean.value_sync().to_device(&device);
    let var = bn.running_var.value_sync().to_device(&device);
    let mean = mean.mul_scalar(1.0 - m).add(r.mean.detach().mul_scalar(m));
    let var = var
        .mul_scalar(1.0 - m)
        .add(r.variance.detach().mul_scalar(m * unbiased));
    bn.running_mean.update(mean.detach());
    bn.running_var.update(var.detach());
    r.output
}

/// Synchronised batch normalisation (PyTorch's `SyncBatchNorm`): the batch
/// mean and biased variance over every rank's samples — the count, then the
/// per-channel sums of `x` and of `(x − mean)²`, each all-reduced as a
/// differentiable operation, so the gradient carries every rank's loss — then the same normalisation
/// and running-statistics update as [`batch_norm`] with the global count.
/// On one rank it equals [`batch_norm`] over the concatenated batches.
///
/// # Panics
/// When the ranks disagree on the channel count or a collective fails (the
/// trainer's timeout then ends the job); a layer cannot return an error.
fn sync_batch_norm<const D: usize>(
    bn: &BatchNorm,
    input: Tensor<D>,
    group: &std::sync::Arc<dyn unidl_tensor::collective::RankSum>,
) -> Tensor<D> {
    let dims = input.dims();
    let channels = dims[1];
    let device = input.device();
    // [N, C, …] → [C, N·…]
    let flat = input.clone().swap_dims(0, 1).reshape([channels as i32, -1]);
    let mut count = [(dims.iter().product::<usize>() / channels) as f32];
    group
        .all_reduce_sum(&mut count)
        .unwrap_or_else(|e| panic!("sync batch norm: summing the sample counts: {e}"));
    let n = f64::from(count[0]);
    let sum = |t: Tensor<1>, what: &str| {
        unidl_tensor::collective::all_reduce_sum(t, group)
            .unwrap_or_else(|e| panic!("sync batch norm: summing the {what}: {e}"))
    };
    // Two passes, as a single process's batch norm: the mean, then the
    // squared deviations from it (no cancellation of E[x²] − mean²).
    let mean = sum(flat.clone().sum_dim(1).reshape([channels]), "means").div_scalar(n);
    let dev = flat.sub(mean.clone().reshape([channels, 1]));
    let var = sum(
        dev.powi_scalar(2).sum_dim(1).reshape([channels]),
        "variances",
    )
    .div_scalar(n);
    let mut shape = [1usize; D];
    shape[1] = channels;
    let x = input
        .sub(mean.clone().reshape(shape))
        .div(var.clone().add_scalar(bn.epsilon).sqrt().reshape(shape));
    let out = x
        .mul(bn.gamma.val().reshape(shape))
        .add(bn.beta.val().reshape(shape));
    let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    let m = bn.momentum;
    let rm = bn.running_mean.value_sync().to_device(&device);
    let rv = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(
        rm.mul_scalar(1.0 - m)
            .add(mean.detach().mul_scalar(m))
            .detach(),
    );
    bn.running_var.update(
        rv.mul_scalar(1.0 - m)
            .add(var.detach().mul_scalar(m * unbiased))
            .detach(),
    );
    out
}

/// Defines a rank-specific batch-norm config and wrapper module.
macro_rules! batch_norm_nd {
    (
        $(#[$config_doc:meta])* config $config:ident,
        $(#[$module_doc:meta])* module $name:ident
    ) => {
        $(#[$config_doc])*
        #[derive(Config, Debug)]
        pub struct $config {
            /// Number of channels `C` (dimension 1 of the input).
            pub num_features: usize,
            /// Value added to the variance for numerical stability.
            #[config(default = 1e-5)]
            pub epsilon: f64,
            /// Weight of the current batch in the running statistics
            /// (`running = (1 - momentum) * running + momentum * batch`, as PyTorch).
            #[config(default = 0.1)]
            pub momentum: f64,
        }

        impl $config {
            /// Creates the module with `gamma = 1`, `beta = 0`, running mean 0 and running variance 1.
            pub fn init(&self, device: &Device) -> $name {
                $name {
                    inner: BatchNormConfig::new(self.num_features)
                        .with_epsilon(self.epsilon)
                        .with_momentum(self.momentum)
                        .init(device),
                }
            }
        }

        $(#[$module_doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            inner: BatchNorm,
        }

        impl $name {
            /// The wrapped rank-generic [`BatchNorm`].
            pub fn inner(&self) -> &BatchNorm {
                &self.inner
            }

            /// Unwraps into the rank-generic [`BatchNorm`].
            pub fn into_inner(self) -> BatchNorm {
                self.inner
            }
        }

        impl From<BatchNorm> for $name {
            fn from(inner: BatchNorm) -> Self {
                Self { inner }
            }
        }

        impl Module for $name {
            fn collect_devices(&self, devices: Devices) -> Devices {
                self.inner.collect_devices(devices)
            }

            fn fork(self, device: &Device) -> Self {
                Self { inner: self.inner.fork(device) }
            }

            fn to_device(self, device: &Device) -> Self {
                Self { inner: self.inner.to_device(device) }
            }

            fn train(self) -> Self {
                Self { inner: self.inner.train() }
            }

            fn valid(&self) -> Self {
                Self { inner: self.inner.valid() }
            }

            fn materialize(self) -> Self {
                Self { inner: self.inner.materialize() }
            }

            fn num_params(&self) -> usize {
                Module::num_params(&self.inner)
            }

            fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
                self.inner.visit(visitor)
            }

            fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
                Self { inner: self.inner.map(mapper) }
            }
        }

        impl ModuleDisplayDefault for $name {
            fn content(&self, content: Content) -> Option<Content> {
                self.inner.content(content)
            }

            fn num_params(&self) -> usize {
                Module::num_params(&self.inner)
            }
        }

        impl ModuleDisplay for $name {
            fn custom_settings(&self) -> Option<DisplaySettings> {
                self.inner.custom_settings()
            }

            fn custom_content(&self, content: Content) -> Option<Content> {
                self.inner.custom_content(content)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&ModuleDisplay::format(self, DisplaySettings::default()))
            }
        }
    };
}

batch_norm_nd!(
    /// Configuration of [`BatchNorm1d`] (PyTorch `nn.BatchNorm1d`).
    config BatchNorm1dConfig,
    /// Batch normalisation over `[N, C]` or `[N, C, L]` inputs (PyTorch `nn.BatchNorm1d`).
    ///
    /// Statistics are taken per channel over every dimension except 1.
    module BatchNorm1d
);

batch_norm_nd!(
    /// Configuration of [`BatchNorm2d`] (PyTorch `nn.BatchNorm2d`).
    config BatchNorm2dConfig,
    /// Batch normalisation over `[N, C, H, W]` inputs (PyTorch `nn.BatchNorm2d`).
    ///
    /// Statistics are taken per channel over `N`, `H` and `W`.
    module BatchNorm2d
);

batch_norm_nd!(
    /// Configuration of [`BatchNorm3d`] (PyTorch `nn.BatchNorm3d`).
    config BatchNorm3dConfig,
    /// Batch normalisation over `[N, C, D, H, W]` inputs (PyTorch `nn.BatchNorm3d`).
    ///
    /// Statistics are taken per channel over `N`, `D`, `H` and `W`.
    module BatchNorm3d
);

impl BatchNorm1d {
    /// Normalises each channel.
    ///
    /// # Shapes
    ///
    /// - input: `[N, C]` or `[N, C, L]` (`D` = 2 or 3)
    /// - output: same shape as the input
    ///
    /// # Panics
    ///
    /// If `D` is not 2 or 3, or if `C` differs from `num_features`.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        assert!(
            D == 2 || D == 3,
            "BatchNorm1d expects a rank-2 [N, C] or rank-3 [N, C, L] input, got rank {D}"
        );
        batch_norm(&self.inner, input)
    }
}

impl BatchNorm2d {
    /// Normalises each channel.
    ///
    /// # Shapes
    ///
    /// - input: `[N, C, H, W]`
    /// - output: `[N, C, H, W]`
    ///
    /// # Panics
    ///
    /// If `C` differs from `num_features`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        batch_norm(&self.inner, input)
    }
}

impl BatchNorm3d {
    /// Normalises each channel.
    ///
    /// # Shapes
    ///
    /// - input: `[N, C, D, H, W]`
    /// - output: `[N, C, D, H, W]`
    ///
    /// # Panics
    ///
    /// If `C` differs from `num_features`.
    pub fn forward(&self, input: Tensor<5>) -> Tensor<5> {
        batch_norm(&self.inner, input)
    }
}
