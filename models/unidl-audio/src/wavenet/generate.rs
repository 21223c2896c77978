//! Sample-by-sample generation from a [`WaveNet`].
//!
//! **Fast** ([`WaveNet::generate`], [`Incremental`]): Paine et al., 2016,
//! "Fast Wavenet Generation Algorithm" (arXiv:1611.09482). A prediction
//! at step `t` only needs each layer's inputs at `t, t − d, …, t − (k − 1)·d`,
//! so each layer keeps a queue of its last `(k − 1)·d + 1` inputs (a ring
//! buffer per sequence) and a step computes the new sample through every
//! layer from them: `O(layers)` work per sample instead of the whole
//! signal. The step runs on the host, in f32 buffers copied from the model
//! once (weights, the local conditioning upsampled to the sample rate on
//! the model's device, the global conditioning's projection per layer),
//! with no allocation per step; a back-end's per-operation cost would
//! dominate at one sample per step, and on a CPU the loops are the fast
//! path. The buffers are zero at the start, as the causal convolutions'
//! zero padding.
//!
//! **Naive** ([`WaveNet::generate_naive`]): re-runs the whole
//! [`forward`](WaveNet::forward) (on the model's device, without autodiff)
//! over the growing signal and keeps its last step — `O(T²)`, for
//! comparison.
//!
//! Both feed `initial_class` (the package's 127 for 256 μ-law classes; the
//! level nearest 0, `(n − 1)/2`, for a mixture of logistics over `n`
//! levels) first and then each sample drawn, and draw with the same seeded
//! generator (in order, sequence by sequence, step by step), so they
//! return the same classes for the same seed (up to float rounding of the
//! two paths' outputs, which could move a draw across a boundary). μ-law:
//! a class from the softmax of `logits / temperature`, the most likely at
//! temperature 0. Mixture of logistics: the mixture by Gumbel-max over its
//! logits (noise `u ∈ [1e-5, 1 − 1e-5]`), then `x = mean + τ·exp(max(log
//! scale, log_scale_min))·(ln u − ln(1 − u))` clamped to `[-1, 1]` (the
//! most probable mixture's mean at τ = 0), quantised to the nearest level
//! `round((x + 1)/2·(n − 1))`, which is both the output and the next input.

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::mixture::{Sampler, SplitMix64, level_to_sample};
use super::{SQRT_HALF, WaveNet, WaveNetOutput};
use crate::{AudioError, Result};

/// How [`WaveNet::generate`] and [`WaveNet::generate_naive`] draw samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    /// Samples per sequence without local conditioning (with it: the
    /// frames × the hop length).
    #[serde(default = "samples")]
    pub samples: usize,
    /// Sequences when there is no conditioning (with it: its batch).
    #[serde(default = "one")]
    pub batch: usize,
    /// Softmax temperature (mixture of logistics: the scale of the
    /// logistic's noise); 0 takes the most likely class (the most probable
    /// mixture's mean).
    #[serde(default = "temperature")]
    pub temperature: f32,
    /// Seed of the sampler.
    #[serde(default)]
    pub seed: u64,
    /// The class fed first (default μ-law `Q/2 − 1`, the package's 127;
    /// mixture of logistics `(num_classes − 1)/2`, the level nearest 0).
    #[serde(default)]
    pub initial_class: Option<usize>,
}

fn samples() -> usize {
    16_000
}
fn one() -> usize {
    1
}
fn temperature() -> f32 {
    1.0
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            samples: samples(),
            batch: 1,
            temperature: 1.0,
            seed: 0,
            initial_class: None,
        }
    }
}

/// `Σ a·b` in eight lanes (so the compiler vectorises it).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += W·x` for a row-major `W` of `y.len()` rows and `x.len()` columns.
fn gemv_add(w: &[f32], x: &[f32], y: &mut [f32]) {
    for (row, yr) in w.chunks_exact(x.len()).zip(y.iter_mut()) {
        *yr += dot(row, x);
    }
}

fn host<const D: usize>(t: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    let dims = t.dims().to_vec();
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| AudioError::Input {
            model: "WaveNet".into(),
            shape: dims,
            reason: format!("{what}: {e:?}"),
        })
}

fn host_ints(t: Tensor<1, Int>) -> Result<Vec<i64>> {
    let dims = t.dims().to_vec();
    t.into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .map_err(|e| AudioError::Input {
            model: "WaveNet".into(),
            shape: dims,
            reason: format!("global conditioning ids: {e:?}"),
        })
}

/// A 1×1 convolution's weight `[out, in]` (row-major) and bias.
fn pointwise(conv: &unidl_nn::Conv1d, what: &str) -> Result<(Vec<f32>, Vec<f32>)> {
    let w = host(conv.weight.val(), what)?;
    let n = conv.weight.dims()[0];
    let b = match &conv.bias {
        Some(b) => host(b.val(), what)?,
        None => vec![0.0; n],
    };
    Ok((w, b))
}

/// One residual layer's weights and queues.
#[derive(Debug, Clone)]
struct HostLayer {
    k: usize,
    d: usize,
    /// Positions in each ring: `(k − 1)·d + 1`.
    len: usize,
    /// Tap `j`'s `[G, R]` matrix at `j·G·R` (tap `j` sees `t − (k − 1 − j)·d`).
    taps: Vec<f32>,
    /// Per sequence `[G]`: the convolution's bias, the local conditioning's
    /// bias and the global conditioning's projection.
    bias: Vec<f32>,
    /// Local conditioning `[G, cin]` (empty without).
    cond: Vec<f32>,
    /// `conv1x1_out` then `conv1x1_skip`: `[R + S, G/2]`.
    out: Vec<f32>,
    /// Their biases, `[R + S]`.
    out_bias: Vec<f32>,
    /// Per sequence, `len` past inputs `[R]`.
    ring: Vec<f32>,
}

/// Fast incremental WaveNet (see the [module docs](self)): feed one class
/// (quantised sample) per sequence per step, get the logits (or mixture
/// parameters) of the next sample. Build it with [`WaveNet::incremental`].
#[derive(Debug, Clone)]
pub struct Incremental {
    batch: usize,
    /// Levels of the inputs.
    levels: usize,
    /// Output channels.
    q: usize,
    /// `Some(levels)`: scalar input (mixture of logistics), `first` is the
    /// `[R]` column.
    scalar: Option<usize>,
    r: usize,
    gate: usize,
    s: usize,
    cin: usize,
    legacy: bool,
    /// `first_conv`'s columns, `[Q, R]` (scalar input: `[1, R]`).
    first: Vec<f32>,
    first_bias: Vec<f32>,
    layers: Vec<HostLayer>,
    last1: (Vec<f32>, Vec<f32>),
    last2: (Vec<f32>, Vec<f32>),
    /// The local conditioning at the sample rate, `[B, T, cin]`.
    c: Vec<f32>,
    steps: Option<usize>,
    t: usize,
    x: Vec<f32>,
    h: Vec<f32>,
    z: Vec<f32>,
    os: Vec<f32>,
    skips: Vec<f32>,
    head: Vec<f32>,
    logits: Vec<f32>,
}

impl Incremental {
    /// Steps taken.
    pub fn position(&self) -> usize {
        self.t
    }

    /// Samples the local conditioning covers (`None`: unbounded).
    pub fn steps(&self) -> Option<usize> {
        self.steps
    }

    /// Sequences.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Forgets the past (queues to zero, position 0); the conditioning stays.
    pub fn reset(&mut self) {
        self.t = 0;
        for l in &mut self.layers {
            l.ring.fill(0.0);
        }
    }

    /// Feeds each sequence's class (μ-law id, or level of a mixture-of-
    /// logistics model) at the current step and returns the raw outputs for
    /// its next sample, `[B, out_channels]` row-major (logits, or the
    /// mixture's logits, means and log scales) — the same as
    /// [`WaveNet::forward`]'s at this position over the classes fed so far.
    /// A wrong count, a class outside `0..quantization_channels()` or a
    /// step past the local conditioning is [`AudioError::Input`].
    pub fn step(&mut self, classes: &[usize]) -> Result<&[f32]> {
        let bad = |reason: String| AudioError::Input {
            model: "WaveNet (incremental)".into(),
            shape: vec![classes.len()],
            reason,
        };
        if classes.len() != self.batch {
            return Err(bad(format!(
                "{} classes for {} sequences",
                classes.len(),
                self.batch
            )));
        }
        if let Some(&c) = classes.iter().find(|&&c| c >= self.levels) {
            return Err(bad(format!("class {c} outside 0..{}", self.levels)));
        }
        if self.steps.is_some_and(|n| self.t >= n) {
            return Err(bad(format!(
                "step {} is past the {} samples the local conditioning covers",
                self.t,
                self.steps.unwrap_or(0)
            )));
        }
        let (r, half, s, q, cin, t) = (self.r, self.gate / 2, self.s, self.q, self.cin, self.t);
        for (b, &class) in classes.iter().enumerate() {
            let x = &mut self.x;
            match self.scalar {
                Some(levels) => {
                    let v = level_to_sample(class, levels);
                    for ((xi, w), bi) in x.iter_mut().zip(&self.first).zip(&self.first_bias) {
                        *xi = v * w + bi;
                    }
                }
                None => {
                    x.copy_from_slice(&self.first[class * r..(class + 1) * r]);
                    for (xi, bi) in x.iter_mut().zip(&self.first_bias) {
                        *xi += bi;
                    }
                }
            }
            let c = (cin > 0).then(|| {
                let at = (b * self.steps.unwrap_or(0) + t) * cin;
                &self.c[at..at + cin]
            });
            let skips = &mut self.skips[b * s..(b + 1) * s];
            for (i, l) in self.layers.iter_mut().enumerate() {
                let ring = &mut l.ring[b * l.len * r..(b + 1) * l.len * r];
                let pos = t % l.len;
                ring[pos * r..(pos + 1) * r].copy_from_slice(x);
                let h = &mut self.h;
                h.copy_from_slice(&l.bias[b * self.gate..(b + 1) * self.gate]);
                for j in 0..l.k {
                    let at = (t + l.len - (l.k - 1 - j) * l.d) % l.len;
                    let w = &l.taps[j * self.gate * r..(j + 1) * self.gate * r];
                    gemv_add(w, &ring[at * r..(at + 1) * r], h);
                }
                if let Some(c) = c {
                    gemv_add(&l.cond, c, h);
                }
                for (zi, (a, g)) in self.z.iter_mut().zip(h[..half].iter().zip(&h[half..])) {
                    *zi = a.tanh() / (1.0 + (-g).exp());
                }
                self.os.copy_from_slice(&l.out_bias);
                gemv_add(&l.out, &self.z, &mut self.os);
                for (xi, o) in x.iter_mut().zip(&self.os[..r]) {
                    *xi = (*xi + o) * SQRT_HALF;
                }
                let skip = &self.os[r..];
                if i == 0 {
                    skips.copy_from_slice(skip);
                } else {
                    for (acc, v) in skips.iter_mut().zip(skip) {
                        *acc = if self.legacy {
                            (*acc + v) * SQRT_HALF
                        } else {
                            *acc + v
                        };
                    }
                }
            }
            for v in skips.iter_mut() {
                *v = v.max(0.0);
            }
            self.head.copy_from_slice(&self.last1.1);
            gemv_add(&self.last1.0, skips, &mut self.head);
            for v in self.head.iter_mut() {
                *v = v.max(0.0);
            }
            let logits = &mut self.logits[b * q..(b + 1) * q];
            logits.copy_from_slice(&self.last2.1);
            gemv_add(&self.last2.0, &self.head, logits);
        }
        self.t += 1;
        Ok(&self.logits)
    }
}

impl WaveNet {
    /// The fast incremental state for `batch` sequences (`c`, `g` as
    /// [`forward`](Self::forward)'s; their batch must be `batch`): the
    /// weights copied to the host, the local conditioning upsampled once.
    pub fn incremental(
        &self,
        c: Option<Tensor<3>>,
        g: Option<Tensor<1, Int>>,
        batch: usize,
    ) -> Result<Incremental> {
        if batch == 0 {
            return Err(self.input_error(vec![0], "no sequences".into()));
        }
        let steps = self.check_conditioning(batch, None, c.as_ref(), g.as_ref())?;
        // the inference path: no autodiff, the conditioning moved along
        let m = self.valid();
        let device = m.first_conv.weight.device();
        let c = c.map(|c| c.to_device(&device));
        let (q, r) = (m.out_channels, m.first_conv.weight.dims()[0]);
        let inputs = m.first_conv.weight.dims()[1];
        let (first_w, first_bias) = pointwise(&m.first_conv, "first_conv")?; // [R, Q] ([R, 1])
        let mut first = vec![0.0; inputs * r];
        for (i, row) in first_w.chunks_exact(inputs).enumerate() {
            for (class, v) in row.iter().enumerate() {
                first[class * r + i] = *v;
            }
        }
        let scalar = match m.output {
            WaveNetOutput::MuLaw => None,
            WaveNetOutput::MixtureOfLogistics { num_classes, .. } => Some(num_classes),
        };
        let cin = m.cin_channels;
        let c = match c {
            Some(c) => {
                let up = host(m.upsample_features(c), "local conditioning")?; // [B, cin, T]
                let t = steps.unwrap_or(0);
                let mut out = vec![0.0; up.len()];
                for b in 0..batch {
                    for f in 0..cin {
                        for i in 0..t {
                            out[(b * t + i) * cin + f] = up[(b * cin + f) * t + i];
                        }
                    }
                }
                out
            }
            None => Vec::new(),
        };
        // the embedding of each sequence's class, [B, gin]
        let speakers = match (g, &m.embed_speakers) {
            (Some(g), Some(e)) => {
                let ids = host_ints(g)?;
                let table = host(e.weight.val(), "embed_speakers")?;
                let gin = e.weight.dims()[1];
                Some((
                    ids.iter()
                        .flat_map(|&id| table[id as usize * gin..(id as usize + 1) * gin].to_vec())
                        .collect::<Vec<f32>>(),
                    gin,
                ))
            }
            _ => None,
        };
        let mut layers = Vec::with_capacity(m.conv_layers.len());
        let (mut gate, mut s) = (0, 0);
        for l in &m.conv_layers {
            let [g_ch, _, k] = l.conv.weight.dims();
            let d = l.conv.dilation;
            gate = g_ch;
            let w = host(l.conv.weight.val(), "conv")?; // [G, R, k]
            let mut taps = vec![0.0; k * g_ch * r];
            for o in 0..g_ch {
                for i in 0..r {
                    for j in 0..k {
                        taps[(j * g_ch + o) * r + i] = w[(o * r + i) * k + j];
                    }
                }
            }
            let mut bias = match &l.conv.bias {
                Some(b) => host(b.val(), "conv")?,
                None => vec![0.0; g_ch],
            };
            let cond = match &l.conv1x1c {
                Some(p) => {
                    let (w, b) = pointwise(p, "conv1x1c")?;
                    bias.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    w
                }
                None => Vec::new(),
            };
            let global = match (&speakers, &l.conv1x1g) {
                (Some(_), Some(p)) => Some(pointwise(p, "conv1x1g")?),
                _ => None,
            };
            let mut per_seq = Vec::with_capacity(batch * g_ch);
            for b in 0..batch {
                let mut v = bias.clone();
                if let (Some((emb, gin)), Some((w, pb))) = (&speakers, &global) {
                    v.iter_mut().zip(pb).for_each(|(x, y)| *x += y);
                    gemv_add(w, &emb[b * gin..(b + 1) * gin], &mut v);
                }
                per_seq.extend(v);
            }
            let (mut out, mut out_bias) = pointwise(&l.conv1x1_out, "conv1x1_out")?;
            let (skip, skip_bias) = pointwise(&l.conv1x1_skip, "conv1x1_skip")?;
            s = skip_bias.len();
            out.extend(skip);
            out_bias.extend(skip_bias);
            let len = (k - 1) * d + 1;
            layers.push(HostLayer {
                k,
                d,
                len,
                taps,
                bias: per_seq,
                cond,
                out,
                out_bias,
                ring: vec![0.0; batch * len * r],
            });
        }
        let last1 = pointwise(&m.last_conv1, "last_conv1")?;
        let last2 = pointwise(&m.last_conv2, "last_conv2")?;
        Ok(Incremental {
            batch,
            levels: m.quantization_channels(),
            q,
            scalar,
            r,
            gate,
            s,
            cin: if steps.is_some() { cin } else { 0 },
            legacy: m.legacy,
            first,
            first_bias,
            layers,
            last1,
            last2,
            c,
            steps,
            t: 0,
            x: vec![0.0; r],
            h: vec![0.0; gate],
            z: vec![0.0; gate / 2],
            os: vec![0.0; r + s],
            skips: vec![0.0; batch * s],
            head: vec![0.0; s],
            logits: vec![0.0; batch * q],
        })
    }

    /// How a step's output becomes the next class.
    fn sampler(&self) -> Sampler {
        match self.output {
            WaveNetOutput::MuLaw => Sampler::Softmax,
            WaveNetOutput::MixtureOfLogistics {
                num_classes,
                log_scale_min,
            } => Sampler::Mixture {
                num_classes,
                log_scale_min,
            },
        }
    }

    /// Sequences and samples to generate, after checking the inputs and
    /// the sampling settings.
    fn generation_plan(
        &self,
        c: Option<&Tensor<3>>,
        g: Option<&Tensor<1, Int>>,
        cfg: &GenerationConfig,
    ) -> Result<(usize, usize, usize)> {
        let bad = |key: &str, reason: String| AudioError::Config {
            key: key.into(),
            reason,
        };
        if !(cfg.temperature >= 0.0 && cfg.temperature.is_finite()) {
            return Err(bad(
                "temperature",
                format!("{} must be finite and at least 0", cfg.temperature),
            ));
        }
        let levels = self.quantization_channels();
        let initial = cfg.initial_class.unwrap_or(match self.output {
            WaveNetOutput::MuLaw => (levels / 2).saturating_sub(1),
            WaveNetOutput::MixtureOfLogistics { .. } => (levels - 1) / 2,
        });
        if initial >= levels {
            return Err(bad(
                "initial_class",
                format!("{initial} outside 0..{levels}"),
            ));
        }
        let batch = c
            .map(|c| c.dims()[0])
            .or_else(|| g.map(|g| g.dims()[0]))
            .unwrap_or(cfg.batch);
        if batch == 0 {
            return Err(bad("batch", "must be at least 1".into()));
        }
        let covered = self.check_conditioning(batch, None, c, g)?;
        let samples = covered.unwrap_or(cfg.samples);
        if samples == 0 {
            return Err(bad("samples", "must be at least 1".into()));
        }
        Ok((batch, samples, initial))
    }

    /// Generates classes (μ-law ids, or a mixture's levels) with the fast
    /// incremental algorithm (see the [module docs](self)): `frames × hop`
    /// samples per sequence with local conditioning, `cfg.samples` without.
    ///
    /// # Shapes
    /// `c`: `[B, cin, F]`, `g`: `B` ids → `[B, T]` classes.
    pub fn generate(
        &self,
        c: Option<Tensor<3>>,
        g: Option<Tensor<1, Int>>,
        cfg: &GenerationConfig,
    ) -> Result<Tensor<2, Int>> {
        let (batch, samples, initial) = self.generation_plan(c.as_ref(), g.as_ref(), cfg)?;
        let mut state = self.incremental(c, g, batch)?;
        let mut rng = SplitMix64(cfg.seed);
        let (q, sampler) = (self.out_channels, self.sampler());
        let mut current = vec![initial; batch];
        let mut out = vec![0i64; batch * samples];
        for t in 0..samples {
            let logits = state.step(&current)?;
            for (b, cur) in current.iter_mut().enumerate() {
                *cur = sampler.draw(&logits[b * q..(b + 1) * q], cfg.temperature, &mut rng);
                out[b * samples + t] = *cur as i64;
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(out, [batch, samples]),
            &self.first_conv.weight.device(),
        ))
    }

    /// Generates as [`generate`](Self::generate) does (the same classes for
    /// the same seed), but re-running the whole forward over the growing
    /// signal at every step: `O(T²)`, for comparison.
    ///
    /// # Shapes
    /// `c`: `[B, cin, F]`, `g`: `B` ids → `[B, T]` classes.
    pub fn generate_naive(
        &self,
        c: Option<Tensor<3>>,
        g: Option<Tensor<1, Int>>,
        cfg: &GenerationConfig,
    ) -> Result<Tensor<2, Int>> {
        let (batch, samples, initial) = self.generation_plan(c.as_ref(), g.as_ref(), cfg)?;
        let m = self.valid();
        let device = m.first_conv.weight.device();
        let c = c.map(|c| m.upsample_features(c.to_device(&device)));
        let g = g.map(|g| m.speaker_features(g.to_device(&device)));
        let mut rng = SplitMix64(cfg.seed);
        let (q, sampler) = (m.out_channels, m.sampler());
        // [B][t + 1]: the initial class, then the samples
        let mut seqs: Vec<Vec<i64>> = vec![vec![initial as i64]; batch];
        for t in 0..samples {
            let flat: Vec<i64> = seqs.iter().flatten().copied().collect();
            let x = m.embed_classes(Tensor::from_data(
                TensorData::new(flat, [batch, t + 1]),
                &device,
            ));
            let ct = c.as_ref().map(|c| c.clone().narrow(2, 0, t + 1));
            let logits = m.forward_residual(x, ct.as_ref(), g.as_ref()); // [B, Q, t + 1]
            let last = host(logits.narrow(2, t, 1), "logits")?; // [B, Q, 1]
            for (b, seq) in seqs.iter_mut().enumerate() {
                seq.push(sampler.draw(&last[b * q..(b + 1) * q], cfg.temperature, &mut rng) as i64);
            }
        }
        let out: Vec<i64> = seqs
            .into_iter()
            .flat_map(|s| s.into_iter().skip(1))
            .collect();
        Ok(Tensor::from_data(
            TensorData::new(out, [batch, samples]),
            &device,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-4);
    }
}
