//! Waveform generation (speech synthesis, WaveNet): audio quantised with
//! μ-law to `channels` levels, a causal model predicting each sample from
//! the ones before it, cross-entropy over the next sample; outputs decoded
//! back to waveforms.

use burn::tensor::{Bool, Int, Tensor as BTensor};
use unidl_backend::Device;
use unidl_data::{Input, PreparedDataset, Sample};
use unidl_tensor::Tensor;

use super::sequence::token_cross_entropy;
use super::{Task, TaskIo};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric, Scores, TaskMetrics};
use crate::infer::{InferOptions, PostProcess};

/// μ-law companding of a sample in [−1, 1] to `0..channels` (WaveNet, §2.2).
pub fn mu_law_encode(x: f32, channels: usize) -> u32 {
    let mu = (channels - 1) as f64;
    let x = f64::from(x).clamp(-1.0, 1.0);
    let y = x.signum() * (1.0 + mu * x.abs()).ln() / (1.0 + mu).ln(); // [-1, 1]
    (((y + 1.0) / 2.0 * mu) + 0.5).floor().clamp(0.0, mu) as u32
}

/// The inverse of [`mu_law_encode`].
pub fn mu_law_decode(q: u32, channels: usize) -> f32 {
    let mu = (channels - 1) as f64;
    let y = 2.0 * f64::from(q) / mu - 1.0;
    (y.signum() * ((1.0 + mu).powf(y.abs()) - 1.0) / mu) as f32
}

/// How a waveform is quantised to the integer levels a sample-level model
/// takes and generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// μ-law companding to this many levels ([`mu_law_encode`]; WaveNet's
    /// softmax output, 256).
    MuLaw(usize),
    /// Uniform levels over `[-1, 1]`: level `q` is `2q/(n − 1) − 1`
    /// (WaveNet's mixture-of-logistics output, 65536).
    Linear(usize),
}

impl Quantization {
    /// The number of levels.
    pub fn levels(&self) -> usize {
        match *self {
            Quantization::MuLaw(n) | Quantization::Linear(n) => n,
        }
    }

    /// The level of a sample (clamped to `[-1, 1]`): μ-law as
    /// [`mu_law_encode`], linear the nearest level `round((x + 1)/2·(n − 1))`.
    pub fn encode(&self, x: f32) -> u32 {
        match *self {
            Quantization::MuLaw(n) => mu_law_encode(x, n),
            Quantization::Linear(n) => {
                let top = (n.max(2) - 1) as f64;
                ((f64::from(x).clamp(-1.0, 1.0) + 1.0) / 2.0 * top)
                    .round()
                    .clamp(0.0, top) as u32
            }
        }
    }

    /// The sample of a level (clamped to `0..n`), the inverse of
    /// [`encode`](Self::encode).
    pub fn decode(&self, q: u32) -> f32 {
        match *self {
            Quantization::MuLaw(n) => mu_law_decode(q.min(n.max(1) as u32 - 1), n),
            Quantization::Linear(n) => {
                let top = (n.max(2) - 1) as f64;
                (2.0 * f64::from(q).min(top) / top - 1.0) as f32
            }
        }
    }

    /// The name of its levels in messages (`"μ-law classes"`, `"linear levels"`).
    pub fn describe(&self) -> String {
        match *self {
            Quantization::MuLaw(n) => format!("{n} μ-law classes"),
            Quantization::Linear(n) => format!("{n} linear levels"),
        }
    }
}

/// A causal sample-level model (what [`WaveformGeneration`] trains).
pub trait WaveformModel {
    /// # Shapes
    /// quantised samples `[B, T]` → logits `[B, T, channels]`; position `t`
    /// predicts sample `t + 1` from samples `≤ t`.
    fn sample_logits(&self, ids: BTensor<2, Int>) -> BTensor<3>;
}

/// Waveform generation over the mono [`Input::Audio`] `input` (default `"audio"`).
#[derive(Debug, Clone, PartialEq)]
pub struct WaveformGeneration {
    /// The audio input.
    pub input: String,
    /// μ-law levels (WaveNet: 256).
    pub channels: usize,
}

impl Default for WaveformGeneration {
    fn default() -> Self {
        WaveformGeneration {
            input: "audio".into(),
            channels: 256,
        }
    }
}

/// A collated batch of quantised waveforms.
#[derive(Debug, Clone)]
pub struct WaveBatch {
    /// `[B, T]` μ-law ids (the mid level after each sample's end).
    pub ids: BTensor<2, Int>,
    /// `[B, T]`, true on real samples.
    pub mask: BTensor<2, Bool>,
    /// Where each sample came from.
    pub sources: Vec<String>,
}

/// A generated (or teacher-forced) waveform.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Waveform {
    /// Samples in [−1, 1].
    pub samples: Vec<f32>,
}

/// Post-processing of [`WaveformGeneration`]'s outputs (ids `[B, T]`) into waveforms.
#[derive(Debug, Clone, Copy)]
pub struct MuLawDecode {
    /// μ-law levels.
    pub channels: usize,
}

impl PostProcess for MuLawDecode {
    type Output = Waveform;

    fn process(&self, outputs: &Tensor, _o: &InferOptions) -> Result<Vec<Waveform>> {
        let shape = outputs.shape();
        if shape.len() != 2 {
            return Err(TrainError::Shape {
                what: "μ-law ids".into(),
                expected: "[batch, samples]".into(),
                got: shape.to_vec(),
            });
        }
        let v = outputs.to_vec_i64()?;
        Ok(v.chunks(shape[1].max(1))
            .map(|row| Waveform {
                samples: row
                    .iter()
                    .map(|&q| {
                        mu_law_decode(q.clamp(0, self.channels as i64 - 1) as u32, self.channels)
                    })
                    .collect(),
            })
            .collect())
    }
}

/// Post-processing of quantised waveforms (ids `[B, T]`, μ-law or linear
/// levels) into waveforms ([`Quantization::decode`]).
#[derive(Debug, Clone, Copy)]
pub struct Dequantize {
    /// How the levels were quantised.
    pub quantization: Quantization,
}

impl PostProcess for Dequantize {
    type Output = Waveform;

    fn process(&self, outputs: &Tensor, _o: &InferOptions) -> Result<Vec<Waveform>> {
        let shape = outputs.shape();
        if shape.len() != 2 {
            return Err(TrainError::Shape {
                what: "quantised samples".into(),
                expected: "[batch, samples]".into(),
                got: shape.to_vec(),
            });
        }
        let v = outputs.to_vec_i64()?;
        let top = self.quantization.levels().max(1) as i64 - 1;
        Ok(v.chunks(shape[1].max(1))
            .map(|row| Waveform {
                samples: row
                    .iter()
                    .map(|&q| self.quantization.decode(q.clamp(0, top) as u32))
                    .collect(),
            })
            .collect())
    }
}

/// No metric: generated audio is judged by listening or by a recogniser.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

struct Nothing;

impl<O: 'static> EvaluationTask<O> for NoMetrics {
    fn supports(&self, _m: Metric) -> bool {
        false
    }
    fn start(&self, _m: &[Metric], _d: &PreparedDataset) -> Result<Box<dyn TaskMetrics<O>>> {
        Ok(Box::new(Nothing))
    }
}

impl<O> TaskMetrics<O> for Nothing {
    fn update(&mut self, _o: &[O], _s: &[Sample]) -> Result<()> {
        Ok(())
    }
    fn compute(&self) -> Result<Scores> {
        Ok(Scores::new())
    }
}

impl TaskIo for WaveformGeneration {
    type Batch = WaveBatch;
    type Post = MuLawDecode;

    fn name(&self) -> &'static str {
        "waveform_generation"
    }

    fn loss_name(&self) -> &'static str {
        "mu_law_cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<WaveBatch> {
        if self.channels < 2 {
            return Err(TrainError::Config {
                key: "task.channels".into(),
                reason: "needs at least 2 levels".into(),
            });
        }
        let mut seqs = Vec::with_capacity(samples.len());
        for s in samples {
            match s.inputs.get(&self.input) {
                Some(Input::Audio(a)) if a.channels == 1 && a.samples.len() >= 2 => seqs.push(
                    a.samples
                        .iter()
                        .map(|&x| mu_law_encode(x, self.channels))
                        .collect::<Vec<u32>>(),
                ),
                _ => {
                    return Err(TrainError::Model(format!(
                        "{}: no mono `{}` audio of at least 2 samples (load with audio_channels = 1)",
                        s.source, self.input
                    )));
                }
            }
        }
        let mid = mu_law_encode(0.0, self.channels);
        let (ids, mask) = super::pad_ids(&seqs, mid, 2, device)?;
        Ok(WaveBatch {
            ids,
            mask,
            sources: samples.iter().map(|s| s.source.clone()).collect(),
        })
    }

    fn post(&self) -> MuLawDecode {
        MuLawDecode {
            channels: self.channels,
        }
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<Waveform>> {
        Box::new(NoMetrics)
    }

    fn default_metrics(&self) -> Vec<Metric> {
        Vec::new()
    }
}

impl<M: WaveformModel + Send + Sync + 'static> Task<M> for WaveformGeneration {
    /// Teacher-forced next-sample predictions (most likely level), `[B, T − 1]`.
    /// Free-running generation is the model's own loop (WaveNet's fast
    /// generation keeps per-layer queues).
    fn forward(&self, model: &M, batch: &WaveBatch) -> Result<Tensor> {
        let [b, t] = batch.ids.dims();
        let logits = model.sample_logits(batch.ids.clone());
        let c = logits.dims()[2];
        let ids = logits
            .slice([0..b, 0..t - 1, 0..c])
            .argmax(2)
            .squeeze_dim::<2>(2);
        Ok(Tensor::from_burn(ids)?)
    }

    fn loss(&self, model: &M, batch: &WaveBatch) -> Result<Tensor> {
        let [b, t] = batch.ids.dims();
        let logits = model.sample_logits(batch.ids.clone());
        let c = logits.dims()[2];
        if c != self.channels {
            return Err(TrainError::Shape {
                what: "waveform logits".into(),
                expected: format!("[{b}, {t}, {}]", self.channels),
                got: logits.dims().to_vec(),
            });
        }
        Ok(Tensor::from_burn(token_cross_entropy(
            logits.slice([0..b, 0..t - 1, 0..c]),
            batch.ids.clone().slice([0..b, 1..t]),
            batch.mask.clone().slice([0..b, 1..t]),
            0.0,
        ))?)
    }
}
