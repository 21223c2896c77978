//! # WaveNet (van den Oord et al., 2016, "WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499)
//!
//! An autoregressive model of μ-law quantised audio: a stack of dilated
//! causal convolutions with gated units, residual and skip paths, and a
//! softmax over the `out_channels` μ-law classes of the next sample — laid
//! out as r9y9's `wavenet_vocoder.WaveNet` (PyPI `wavenet-vocoder` 0.1.1),
//! whose state dicts load through [`crate::weights::load_wavenet_vocoder`]:
//!
//! ```text
//! x = first_conv(one_hot(classes))                   1×1, Q → R (mixture: 1 → R over the sample)
//! for layer i (dilation 2^(i mod layers/stacks)):
//!     h = conv(dropout(x))                          kernel k, dilation d, causal: R → G
//!       + conv1x1c(c↑) + conv1x1g(embed(g))           local / global conditioning
//!     z = tanh(h[..G/2]) · σ(h[G/2..])
//!     skip_i = conv1x1_skip(z)                      G/2 → S
//!     x = (conv1x1_out(z) + x) · √½                 G/2 → R
//! skips = Σ skip_i   (legacy: after each addition · √½, as the package's default)
//! logits = last_conv2(ReLU(last_conv1(ReLU(skips))))  S → S → Q
//! ```
//!
//! `gate_channels` counts both halves (the package's convention). Local
//! conditioning `c` (e.g. log-mel frames, `cin_channels`) is upsampled to
//! the sample rate by transposed 2-D convolutions over `[mel, time]`, one
//! per `upsample_scales` entry (kernel `(freq_axis_kernel_size, s)`,
//! stride `(1, s)`, each followed by ReLU; the scales multiply to the hop
//! length); without `upsample_scales` it must come at the sample rate.
//! Global conditioning (`gin_channels`, `n_speakers`) embeds a class id per
//! sequence — a speaker, a word — and adds its projection at every step.
//!
//! Two outputs ([`WaveNetConfig::output`], [`WaveNetOutput`]), as the
//! package's: a softmax over `out_channels` μ-law classes over one-hot
//! class inputs (the default), or a discretised mixture of
//! `K = out_channels / 3` logistics (Salimans et al., 2017, "PixelCNN++")
//! over scalar inputs in `[-1, 1]` (`scalar_input=True`: `first_conv`
//! takes one channel; `logits` above are then the mixture's logits, means
//! and log scales). The model's *classes* are quantised samples either
//! way — μ-law ids, or the levels `0..num_classes` of a linear
//! quantisation, level `q` being the sample `2q/(num_classes − 1) − 1`
//! ([`linear_dequantize`]) — so [`WaveNet::forward`], the loss and
//! generation take and return integer levels for both
//! ([`WaveNet::quantization_channels`]).
//!
//! Differences from the package: the layers are plain convolutions —
//! the package trains with weight normalisation (`weight_g`, `weight_v`),
//! which the loader folds into the weights (`w = g·v/‖v‖`, as its own
//! `make_generation_fast_()` does), so a model trained here has no
//! weight-norm reparameterisation; the inputs are quantised samples
//! ([`WaveNet::forward`]; one-hot, soft or scalar inputs as the package's
//! through [`WaveNet::forward_one_hot`]); the mixture's loss is averaged
//! over the steps (the package's `discretized_mix_logistic_loss` sums with
//! `reduce=True`; its training script averages over the mask); generation
//! from a mixture quantises each drawn sample to the nearest level and
//! feeds that level back (the package feeds the raw sample) and scales the
//! logistic's noise by the temperature.
//!
//! Training: [`WaveNet::loss`] — μ-law: the cross-entropy of the logits at
//! `t` against the class at `t + 1` ([`mu_law_cross_entropy`]); mixture:
//! the negative log-likelihood of the sample at `t + 1`
//! ([`mixture_of_logistics_nll`]). Data: [`mu_law_encode`] /
//! [`mu_law_decode`] (torchaudio's `mu_law_encoding`/`mu_law_decoding`).
//! Generation ([`generate`]): fast incremental generation
//! with per-layer queues (Paine et al., 2016, "Fast Wavenet Generation
//! Algorithm", arXiv:1611.09482) and a naive one that re-runs the whole
//! forward over the growing signal; both sample with a seeded generator.
//!
//! Parameter names: `first_conv`, `conv_layers.{i}.{conv, conv1x1c,
//! conv1x1g, conv1x1_out, conv1x1_skip}`, `last_conv1`, `last_conv2`,
//! `embed_speakers`, `upsample.{i}`. The package's `WaveNet()` defaults
//! (20 layers, 2 stacks, 512/512/512 channels, kernel 3) have 21,527,808
//! parameters (without weight norm's gains), the mel vocoder of r9y9's
//! recipes ([`WaveNetConfig::mel_vocoder`]) 24,882,228. The tests compare
//! logits, the loss and every gradient with the package's, run by
//! `tests/reference/gen_wavenet.py` (μ-law and mixture models).

use burn::module::Module;
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Int, Tensor};
use unidl_nn::{Conv1d, ConvTranspose2d, Dropout, Embedding};

use crate::{AudioError, Result};

mod config;
pub mod generate;
mod mixture;
mod mu_law;

pub use config::{WaveNetConfig, WaveNetOutput};
pub use generate::{GenerationConfig, Incremental};
pub use mixture::{linear_dequantize, mixture_of_logistics_nll};
pub use mu_law::{mu_law_cross_entropy, mu_law_decode, mu_law_encode};

const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// One residual layer: dilated causal convolution, conditioning, gated
/// unit, residual and skip 1×1 convolutions.
#[derive(Module, Debug)]
pub struct ResidualLayer {
    /// `R → G`, kernel `k`, dilation `d`, causal.
    pub conv: Conv1d,
    /// Local conditioning `cin → G`, 1×1.
    pub conv1x1c: Option<Conv1d>,
    /// Global conditioning `gin → G`, 1×1.
    pub conv1x1g: Option<Conv1d>,
    /// `G/2 → R`, 1×1.
    pub conv1x1_out: Conv1d,
    /// `G/2 → S`, 1×1.
    pub conv1x1_skip: Conv1d,
    dropout: Dropout,
}

impl ResidualLayer {
    /// The residual output and the skip output. `c` is the local
    /// conditioning at the sample rate, `g` the global one.
    ///
    /// # Shapes
    /// `x`: `[B, R, T]`, `c`: `[B, cin, T]`, `g`: `[B, gin, 1]` →
    /// (`[B, R, T]`, `[B, S, T]`).
    pub fn forward(
        &self,
        x: Tensor<3>,
        c: Option<&Tensor<3>>,
        g: Option<&Tensor<3>>,
    ) -> (Tensor<3>, Tensor<3>) {
        let residual = x.clone();
        let mut h = self.conv.forward(self.dropout.forward(x)); // [B, G, T]
        if let (Some(c), Some(p)) = (c, &self.conv1x1c) {
            h = h + p.forward(c.clone()); // + [B, G, T]
        }
        if let (Some(g), Some(p)) = (g, &self.conv1x1g) {
            h = h + p.forward(g.clone()); // + [B, G, 1], every step
        }
        let half = h.dims()[1] / 2;
        let z = tanh(h.clone().narrow(1, 0, half)) * sigmoid(h.narrow(1, half, half)); // [B, G/2, T]
        let s = self.conv1x1_skip.forward(z.clone()); // [B, S, T]
        let x = (self.conv1x1_out.forward(z) + residual).mul_scalar(SQRT_HALF); // [B, R, T]
        (x, s)
    }
}

/// The WaveNet (see the [module docs](self)). Build it with
/// [`WaveNetConfig::init`].
#[derive(Module, Debug)]
pub struct WaveNet {
    /// `Q → R`, 1×1 (over one-hot classes: a lookup); `1 → R` over scalar
    /// samples with a mixture-of-logistics output.
    pub first_conv: Conv1d,
    /// The residual layers.
    pub conv_layers: Vec<ResidualLayer>,
    /// `S → S`, 1×1 (after ReLU).
    pub last_conv1: Conv1d,
    /// `S → Q`, 1×1 (after ReLU): the logits (or the mixture's parameters).
    pub last_conv2: Conv1d,
    /// Global-conditioning classes → `gin` features.
    pub embed_speakers: Option<Embedding>,
    /// Transposed convolutions over `[1, cin, frames]`, each followed by ReLU.
    pub upsample: Vec<ConvTranspose2d>,
    out_channels: usize,
    cin_channels: usize,
    n_speakers: usize,
    hop_length: usize,
    legacy: bool,
    #[module(skip)]
    output: WaveNetOutput,
}

impl WaveNet {
    /// Output channels: μ-law classes (the softmax width), or `3·K` for a
    /// mixture of `K` logistics.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// What the model predicts (μ-law softmax or mixture of logistics).
    pub fn output(&self) -> WaveNetOutput {
        self.output
    }

    /// Levels of the quantised samples the model takes and generates: the
    /// μ-law classes (`out_channels`), or the mixture's `num_classes`.
    pub fn quantization_channels(&self) -> usize {
        match self.output {
            WaveNetOutput::MuLaw => self.out_channels,
            WaveNetOutput::MixtureOfLogistics { num_classes, .. } => num_classes,
        }
    }

    /// Local conditioning features per frame (`None`: none).
    pub fn cin_channels(&self) -> Option<usize> {
        (self.cin_channels > 0).then_some(self.cin_channels)
    }

    /// Global conditioning classes (`None`: none).
    pub fn n_speakers(&self) -> Option<usize> {
        (self.n_speakers > 0).then_some(self.n_speakers)
    }

    /// Samples per conditioning frame.
    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    /// Past samples a prediction sees: `(k − 1)·Σ dilations + 1`.
    pub fn receptive_field(&self) -> usize {
        1 + self
            .conv_layers
            .iter()
            .map(|l| (l.conv.kernel_size - 1) * l.conv.dilation)
            .sum::<usize>()
    }

    /// Logits of the next sample's μ-law class (or the parameters of its
    /// mixture of logistics) at every step: position `t` sees the
    /// quantised samples `0..=t` and the conditioning up to `t`. Unchecked
    /// (classes outside `0..quantization_channels()` or conditioning the
    /// model lacks panic in the back-end or give garbage);
    /// [`try_forward`](Self::try_forward) checks.
    ///
    /// # Shapes
    /// `classes`: `[B, T]` in `0..quantization_channels()`; `c`: `[B, cin,
    /// T / hop]` (`[B, cin, T]` without upsampling); `g`: `B` class ids →
    /// `[B, out_channels, T]`.
    pub fn forward(
        &self,
        classes: Tensor<2, Int>,
        c: Option<Tensor<3>>,
        g: Option<Tensor<1, Int>>,
    ) -> Tensor<3> {
        let x = self.embed_classes(classes); // [B, R, T]
        let c = c.map(|c| self.upsample_features(c));
        let g = g.map(|g| self.speaker_features(g));
        self.forward_residual(x, c.as_ref(), g.as_ref())
    }

    /// [`forward`](Self::forward) over the package's input: one-hot (or
    /// soft) class vectors, or with a mixture of logistics the samples.
    ///
    /// # Shapes
    /// `x`: `[B, Q, T]` (mixture: `[B, 1, T]` in `[-1, 1]`); `c`, `g` as
    /// [`forward`](Self::forward) → `[B, out_channels, T]`.
    pub fn forward_one_hot(
        &self,
        x: Tensor<3>,
        c: Option<Tensor<3>>,
        g: Option<Tensor<1, Int>>,
    ) -> Tensor<3> {
        let x = self.first_conv.forward(x); // [B, R, T]
        let c = c.map(|c| self.upsample_features(c));
        let g = g.map(|g| self.speaker_features(g));
        self.forward_residual(x, c.as_ref(), g.as_ref())
    }

    /// [`forward`](Self::forward) after checking the inputs: `classes` in
    /// `0..quantization_channels()` with at least one step; `c` given exactly when the model has
    /// local conditioning, with `cin` features and `T / hop` frames; `g`
    /// given exactly when it has global conditioning, one id in
    /// `0..n_speakers` per sequence.
    pub fn try_forward(
        &self,
        classes: Tensor<2, Int>,
        c: Option<Tensor<3>>,
        g: Option<Tensor<1, Int>>,
    ) -> Result<Tensor<3>> {
        let [b, t] = classes.dims();
        self.check_conditioning(b, Some(t), c.as_ref(), g.as_ref())?;
        self.check_classes(&classes)?;
        Ok(self.forward(classes, c, g))
    }

    /// Teacher-forced training loss, averaged over `B·(T − 1)` steps (the
    /// inputs are checked as [`try_forward`](Self::try_forward)'s; `T` must
    /// be at least 2): μ-law, the cross-entropy of the logits at `t`
    /// against the class at `t + 1`; mixture of logistics, the negative
    /// log-likelihood ([`mixture_of_logistics_nll`]) of the output at `t`
    /// against the sample of level `t + 1` — the package's
    /// `discretized_mix_logistic_loss` averaged instead of summed (its
    /// training script averages over the mask).
    ///
    /// # Shapes
    /// `classes`: `[B, T]`, `c`, `g` as [`forward`](Self::forward) → `[1]`.
    pub fn loss(
        &self,
        classes: Tensor<2, Int>,
        c: Option<Tensor<3>>,
        g: Option<Tensor<1, Int>>,
    ) -> Result<Tensor<1>> {
        let [b, t] = classes.dims();
        if t < 2 {
            return Err(self.input_error(
                vec![b, t],
                "the loss needs at least 2 steps (a sample and its successor)".into(),
            ));
        }
        let logits = self.try_forward(classes.clone(), c, g)?;
        Ok(match self.output {
            WaveNetOutput::MuLaw => {
                mu_law_cross_entropy(logits.narrow(2, 0, t - 1), classes.narrow(1, 1, t - 1))
            }
            WaveNetOutput::MixtureOfLogistics {
                num_classes,
                log_scale_min,
            } => mixture_of_logistics_nll(
                logits.narrow(2, 0, t - 1),
                linear_dequantize(classes.narrow(1, 1, t - 1), num_classes),
                num_classes,
                log_scale_min,
            )
            .mean(),
        })
    }

    /// The local conditioning at the sample rate.
    ///
    /// # Shapes
    /// `[B, cin, F]` → `[B, cin, F·hop]`.
    pub fn upsample_features(&self, c: Tensor<3>) -> Tensor<3> {
        if self.upsample.is_empty() {
            return c;
        }
        let mut c = c.unsqueeze_dim::<4>(1); // [B, 1, cin, F]
        for up in &self.upsample {
            c = relu(up.forward(c)); // [B, 1, cin, F·s]
        }
        c.squeeze_dim(1)
    }

    /// The global conditioning's embedding.
    ///
    /// # Shapes
    /// `B` ids → `[B, gin, 1]`.
    ///
    /// # Panics
    /// Without global conditioning (check with [`n_speakers`](Self::n_speakers)).
    pub fn speaker_features(&self, g: Tensor<1, Int>) -> Tensor<3> {
        let embed = self
            .embed_speakers
            .as_ref()
            .expect("speaker_features: the model has no global conditioning");
        embed.forward(g.unsqueeze_dim(1)).swap_dims(1, 2) // [B, 1, gin] → [B, gin, 1]
    }

    /// `first_conv` over one-hot classes, as a lookup of its weight columns
    /// (mixture of logistics: over the levels' samples).
    ///
    /// # Shapes
    /// `[B, T]` → `[B, R, T]`.
    fn embed_classes(&self, classes: Tensor<2, Int>) -> Tensor<3> {
        if let WaveNetOutput::MixtureOfLogistics { num_classes, .. } = self.output {
            let x = linear_dequantize(classes, num_classes); // [B, T]
            return self.first_conv.forward(x.unsqueeze_dim(1)); // [B, 1, T] → [B, R, T]
        }
        let [b, t] = classes.dims();
        let w = self.first_conv.weight.val(); // [R, Q, 1]
        let [r, q, _] = w.dims();
        let table = w.reshape([r, q]).transpose(); // [Q, R]
        let x = table
            .select(0, classes.reshape([b * t]))
            .reshape([b, t, r])
            .swap_dims(1, 2); // [B, R, T]
        match &self.first_conv.bias {
            Some(bias) => x + bias.val().reshape([1, r, 1]),
            None => x,
        }
    }

    /// The residual stack and the output head over the first convolution's
    /// output and conditioning already at the sample rate.
    ///
    /// # Shapes
    /// `x`: `[B, R, T]`, `c`: `[B, cin, T]`, `g`: `[B, gin, 1]` →
    /// `[B, out_channels, T]`.
    fn forward_residual(
        &self,
        x: Tensor<3>,
        c: Option<&Tensor<3>>,
        g: Option<&Tensor<3>>,
    ) -> Tensor<3> {
        let mut x = x;
        let mut skips: Option<Tensor<3>> = None;
        for layer in &self.conv_layers {
            let (y, s) = layer.forward(x, c, g); // [B, R, T], [B, S, T]
            x = y;
            skips = Some(match skips {
                None => s,
                Some(acc) if self.legacy => (acc + s).mul_scalar(SQRT_HALF),
                Some(acc) => acc + s,
            });
        }
        let skips = skips.expect("a WaveNet has at least one layer (checked by init)");
        let h = relu(self.last_conv1.forward(relu(skips))); // [B, S, T]
        self.last_conv2.forward(h) // [B, Q, T]
    }

    fn input_error(&self, shape: Vec<usize>, reason: String) -> AudioError {
        AudioError::Input {
            model: "WaveNet".into(),
            shape,
            reason,
        }
    }

    /// Classes within `0..quantization_channels()`.
    fn check_classes(&self, classes: &Tensor<2, Int>) -> Result<()> {
        let dims = classes.dims().to_vec();
        if dims.contains(&0) {
            return Err(self.input_error(dims, "no samples".into()));
        }
        let lo = classes.clone().min().into_scalar::<i64>();
        let hi = classes.clone().max().into_scalar::<i64>();
        let q = self.quantization_channels();
        if lo < 0 || hi >= q as i64 {
            let what = match self.output {
                WaveNetOutput::MuLaw => "μ-law classes",
                WaveNetOutput::MixtureOfLogistics { .. } => {
                    "levels of the samples, output.num_classes"
                }
            };
            return Err(
                self.input_error(dims, format!("classes {lo}..={hi} outside 0..{q} ({what})"))
            );
        }
        Ok(())
    }

    /// `c` and `g` against the model and `b` sequences of `t` samples
    /// (`None`: any length the conditioning implies). Returns the samples
    /// the local conditioning covers.
    fn check_conditioning(
        &self,
        b: usize,
        t: Option<usize>,
        c: Option<&Tensor<3>>,
        g: Option<&Tensor<1, Int>>,
    ) -> Result<Option<usize>> {
        let covered = match (c, self.cin_channels()) {
            (None, None) => None,
            (Some(c), None) => {
                return Err(self.input_error(
                    c.dims().to_vec(),
                    "local conditioning given to a model without cin_channels".into(),
                ));
            }
            (None, Some(cin)) => {
                return Err(self.input_error(
                    vec![b, cin, 0],
                    "the model has local conditioning: c is required".into(),
                ));
            }
            (Some(c), Some(cin)) => {
                let dims = c.dims();
                let reason = if dims[0] != b {
                    Some(format!("{} conditioning sequences for {b} inputs", dims[0]))
                } else if dims[1] != cin {
                    Some(format!(
                        "expected {cin} conditioning features (cin_channels)"
                    ))
                } else if dims[2] == 0 {
                    Some("no conditioning frames".into())
                } else {
                    t.filter(|&t| t != dims[2] * self.hop_length).map(|t| {
                        format!("{} frames × hop {} ≠ {t} samples", dims[2], self.hop_length)
                    })
                };
                if let Some(reason) = reason {
                    return Err(self.input_error(dims.to_vec(), reason));
                }
                Some(dims[2] * self.hop_length)
            }
        };
        match (g, self.n_speakers()) {
            (None, None) => {}
            (Some(g), None) => {
                return Err(self.input_error(
                    g.dims().to_vec(),
                    "global conditioning given to a model without gin_channels".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(self.input_error(
                    vec![b],
                    "the model has global conditioning: g (one id per sequence) is required".into(),
                ));
            }
            (Some(g), Some(n)) => {
                let dims = g.dims().to_vec();
                if dims[0] != b {
                    let reason = format!("{} ids for {b} inputs", dims[0]);
                    return Err(self.input_error(dims, reason));
                }
                let lo = g.clone().min().into_scalar::<i64>();
                let hi = g.clone().max().into_scalar::<i64>();
                if lo < 0 || hi >= n as i64 {
                    return Err(self.input_error(
                        dims,
                        format!("speaker ids {lo}..={hi} outside 0..{n} (n_speakers)"),
                    ));
                }
            }
        }
        Ok(covered)
    }
}
