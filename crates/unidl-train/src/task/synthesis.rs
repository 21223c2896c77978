//! Speech synthesis with a neural vocoder (WaveNet conditioned on log-mel
//! frames): the waveform `audio` and its spectrogram `features` (a
//! `mel_spectrogram` transform with `output = "mel"` keeps both) per
//! sample; training draws a window of `segment_frames` frames and the
//! `segment_frames · hop` samples under them from every sample of the
//! batch and minimises the negative log-likelihood of each next quantised
//! sample (the cross-entropy of its μ-law class, or the likelihood of its
//! linear level under a mixture of logistics); inference generates the
//! whole waveform from the frames (the model's own sampling loop) and
//! decodes it back from the model's [`Quantization`].
//!
//! Frame `j` of a centred STFT with hop `h` covers samples `j·h … (j+1)·h`
//! here, so a recording of `n` samples gives `⌊n / h⌋` usable frames (the
//! transform's `1 + ⌊n / h⌋` checks that its hop is the model's).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::{Int, Tensor as BTensor, TensorData};
use rand::Rng as _;
use unidl_backend::Device;
use unidl_data::transform::rng_for;
use unidl_data::{Input, Sample};
use unidl_tensor::Tensor;

use super::waveform::{Dequantize, NoMetrics, Quantization, Waveform};
use super::{Task, TaskIo};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric};

/// A vocoder: a waveform model conditioned on spectrogram frames (what
/// [`SpeechSynthesis`] trains).
pub trait VocoderModel {
    /// Samples per conditioning frame.
    fn hop_length(&self) -> usize;

    /// How the model's inputs and outputs are quantised (μ-law classes or
    /// linear levels).
    fn quantization(&self) -> Quantization;

    /// Teacher-forced negative log-likelihood of each next class (level),
    /// averaged over the batch and the steps.
    ///
    /// # Shapes
    /// features `[B, F', W]`, classes `[B, W · hop]` → `[1]`.
    fn vocoder_loss(&self, features: BTensor<3>, classes: BTensor<2, Int>) -> Result<BTensor<1>>;

    /// Generates `F · hop` classes (levels) per sample from the frames (sampling at
    /// `temperature` from a generator seeded with `seed`; 0: most likely).
    ///
    /// # Shapes
    /// features `[B, F', F]` → classes `[B, F · hop]`.
    fn vocode(&self, features: BTensor<3>, temperature: f32, seed: u64) -> Result<BTensor<2, Int>>;
}

/// Speech synthesis: vocoding spectrogram frames into a waveform.
#[derive(Debug, Clone)]
pub struct SpeechSynthesis {
    /// The mono waveform input (default `"audio"`).
    pub audio: String,
    /// The spectrogram input `[C, F', frames]` (default `"mel"`).
    pub features: String,
    /// The quantisation of the waveforms (the model's).
    pub quantization: Quantization,
    /// Frames of the training windows.
    pub segment_frames: usize,
    /// Sampling temperature of generation (0: the most likely class).
    pub temperature: f32,
    /// Seed of the training windows and of generation.
    pub seed: u64,
    /// Batches drawn so far (each draws new windows).
    draws: Arc<AtomicU64>,
}

impl SpeechSynthesis {
    /// A task over `audio` and `features` with these settings, `channels`
    /// μ-law classes ([`with_quantization`](Self::with_quantization) for
    /// another quantisation).
    pub fn new(segment_frames: usize, channels: usize, temperature: f32, seed: u64) -> Self {
        SpeechSynthesis {
            audio: "audio".into(),
            features: "mel".into(),
            quantization: Quantization::MuLaw(channels),
            segment_frames,
            temperature,
            seed,
            draws: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same task over waveforms quantised as `quantization` (a
    /// mixture-of-logistics vocoder's [`Quantization::Linear`] levels).
    pub fn with_quantization(mut self, quantization: Quantization) -> Self {
        self.quantization = quantization;
        self
    }
}

/// One utterance of a [`SynthesisBatch`], on the host.
#[derive(Debug, Clone)]
pub struct Utterance {
    /// Frames `[F', frames]` (row-major, time last).
    pub features: Vec<f32>,
    /// Usable frames.
    pub frames: usize,
    /// The waveform (empty at inference from text).
    pub samples: Vec<f32>,
}

/// A collated synthesis batch (kept on the host: training windows and
/// generation take different parts of it).
#[derive(Debug, Clone)]
pub struct SynthesisBatch {
    /// Per sample.
    pub utterances: Vec<Utterance>,
    /// Features per frame.
    pub bins: usize,
    /// Where each sample came from.
    pub sources: Vec<String>,
    /// The device of the model's inputs.
    pub device: Device,
}

impl TaskIo for SpeechSynthesis {
    type Batch = SynthesisBatch;
    type Post = Dequantize;

    fn name(&self) -> &'static str {
        "speech_synthesis"
    }

    /// `mu_law_cross_entropy`, or `mixture_of_logistics_nll` over linear
    /// levels (the mixture-of-logistics vocoder's).
    fn loss_name(&self) -> &'static str {
        match self.quantization {
            Quantization::MuLaw(_) => "mu_law_cross_entropy",
            Quantization::Linear(_) => "mixture_of_logistics_nll",
        }
    }

    /// Reads each sample's spectrogram and (when it has one) mono waveform;
    /// a sample without the spectrogram, with a stereo waveform, or whose
    /// spectrogram frames do not match its samples is an error naming it.
    fn collate(&self, samples: &[Sample], device: &Device) -> Result<SynthesisBatch> {
        let mut utterances = Vec::with_capacity(samples.len());
        let mut bins = None;
        for s in samples {
            let t = match s.inputs.get(&self.features) {
                Some(Input::Tensor(t)) if matches!(t.shape.len(), 2 | 3) => t,
                _ => {
                    return Err(TrainError::Model(format!(
                        "{}: no `{}` spectrogram [channels, features, frames] (add a \
                         `mel_spectrogram` transform with output = \"{}\")",
                        s.source, self.features, self.features
                    )));
                }
            };
            let n = *t.shape.last().unwrap_or(&0);
            let f: usize = t.shape[..t.shape.len() - 1].iter().product();
            if *bins.get_or_insert(f) != f {
                return Err(TrainError::Model(format!(
                    "{}: {f} features per frame, the batch has {}",
                    s.source,
                    bins.unwrap_or(0)
                )));
            }
            let samples = match s.inputs.get(&self.audio) {
                Some(Input::Audio(a)) if a.channels == 1 => a.samples.clone(),
                Some(Input::Audio(a)) => {
                    return Err(TrainError::Model(format!(
                        "{}: {} audio channels; synthesis needs mono (audio_channels = 1)",
                        s.source, a.channels
                    )));
                }
                _ => Vec::new(),
            };
            utterances.push(Utterance {
                features: t.data.clone(),
                frames: n,
                samples,
            });
        }
        Ok(SynthesisBatch {
            utterances,
            bins: bins.unwrap_or(0),
            sources: samples.iter().map(|s| s.source.clone()).collect(),
            device: device.clone(),
        })
    }

    fn post(&self) -> Dequantize {
        Dequantize {
            quantization: self.quantization,
        }
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<Waveform>> {
        Box::new(NoMetrics)
    }

    fn default_metrics(&self) -> Vec<Metric> {
        Vec::new()
    }
}

impl SpeechSynthesis {
    fn check_model<M: VocoderModel>(&self, model: &M) -> Result<()> {
        let q = model.quantization();
        if q != self.quantization {
            return Err(TrainError::Config {
                key: match self.quantization {
                    Quantization::MuLaw(_) => "task.quantization_channels".into(),
                    Quantization::Linear(_) => "task.quantization".into(),
                },
                reason: format!(
                    "{}, the model has {}",
                    self.quantization.describe(),
                    q.describe()
                ),
            });
        }
        Ok(())
    }

    /// Usable frames of an utterance: all of them at inference, else
    /// `⌊samples / hop⌋` after checking the transform's hop.
    fn usable(u: &Utterance, hop: usize, source: &str) -> Result<usize> {
        if u.samples.is_empty() {
            return Ok(u.frames);
        }
        let n = u.samples.len();
        if u.frames != 1 + n / hop {
            return Err(TrainError::Config {
                key: "data.transforms".into(),
                reason: format!(
                    "{source}: {} frames for {n} samples: the mel_spectrogram's hop_length must be \
                     the model's hop, {hop} (centred frames: 1 + samples / hop)",
                    u.frames
                ),
            });
        }
        Ok(n / hop)
    }

    /// Frames `[lo, lo + w)` of every utterance as `[B, F', w]`.
    fn windows(batch: &SynthesisBatch, starts: &[usize], w: usize) -> BTensor<3> {
        let f = batch.bins;
        let mut data = Vec::with_capacity(starts.len() * f * w);
        for (u, &lo) in batch.utterances.iter().zip(starts) {
            for k in 0..f {
                let row = &u.features[k * u.frames..(k + 1) * u.frames];
                data.extend((0..w).map(|j| row.get(lo + j).copied().unwrap_or(0.0)));
            }
        }
        BTensor::from_data(TensorData::new(data, [starts.len(), f, w]), &batch.device)
    }
}

impl<M: VocoderModel + Send + Sync + 'static> Task<M> for SpeechSynthesis {
    /// Generated classes (levels) `[B, frames · hop]` (each sample's own
    /// frames; the rest of a shorter sample's row is silence).
    fn forward(&self, model: &M, batch: &SynthesisBatch) -> Result<Tensor> {
        self.check_model(model)?;
        let hop = model.hop_length();
        let frames: Vec<usize> = batch
            .utterances
            .iter()
            .zip(&batch.sources)
            .map(|(u, s)| Self::usable(u, hop, s))
            .collect::<Result<_>>()?;
        let longest = frames.iter().copied().max().unwrap_or(0);
        if longest == 0 {
            return Err(TrainError::Model(format!(
                "{}: no frame to synthesise from",
                batch.sources.first().map_or("", String::as_str)
            )));
        }
        let classes = model.vocode(
            Self::windows(batch, &vec![0; frames.len()], longest),
            self.temperature,
            self.seed,
        )?;
        let [b, t] = classes.dims();
        let mut ids: Vec<i64> = classes
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| TrainError::Model(format!("generated classes: {e:?}")))?;
        let silence = i64::from(self.quantization.encode(0.0));
        for (k, &n) in frames.iter().enumerate() {
            for v in &mut ids[k * t + (n * hop).min(t)..(k + 1) * t] {
                *v = silence;
            }
        }
        Ok(Tensor::from_i64(ids, &[b, t], &batch.device)?)
    }

    /// Validation: the loss only, with one silent sample per output —
    /// generating every held-out waveform each epoch would take minutes;
    /// `unidl infer` generates.
    fn loss_and_outputs(&self, model: &M, batch: &SynthesisBatch) -> Result<(Tensor, Tensor)> {
        let loss = self.loss(model, batch)?;
        let b = batch.utterances.len();
        let silence = i64::from(self.quantization.encode(0.0));
        Ok((
            loss,
            Tensor::from_i64(vec![silence; b], &[b, 1], &batch.device)?,
        ))
    }

    /// The model's loss over a random window of `segment_frames` frames
    /// of every sample (all of the shortest sample's when it has fewer).
    fn loss(&self, model: &M, batch: &SynthesisBatch) -> Result<Tensor> {
        self.check_model(model)?;
        let hop = model.hop_length();
        let mut frames = Vec::with_capacity(batch.utterances.len());
        for (u, s) in batch.utterances.iter().zip(&batch.sources) {
            if u.samples.is_empty() {
                return Err(TrainError::Model(format!(
                    "{s}: synthesis training needs the `{}` waveform",
                    self.audio
                )));
            }
            frames.push(Self::usable(u, hop, s)?);
        }
        let w = frames
            .iter()
            .copied()
            .min()
            .unwrap_or(0)
            .min(self.segment_frames);
        if w == 0 {
            return Err(TrainError::Model(format!(
                "{}: shorter than one frame of {hop} samples",
                batch.sources[frames.iter().position(|&f| f == 0).unwrap_or(0)]
            )));
        }
        let draw = self.draws.fetch_add(1, Ordering::Relaxed);
        let starts: Vec<usize> = frames
            .iter()
            .enumerate()
            .map(|(k, &f)| rng_for(self.seed, draw, k as u64).random_range(0..=f - w))
            .collect();
        let mut classes = Vec::with_capacity(frames.len() * w * hop);
        for (u, &lo) in batch.utterances.iter().zip(&starts) {
            classes.extend(
                u.samples[lo * hop..(lo + w) * hop]
                    .iter()
                    .map(|&x| i64::from(self.quantization.encode(x))),
            );
        }
        let classes = BTensor::<2, Int>::from_data(
            TensorData::new(classes, [frames.len(), w * hop]),
            &batch.device,
        );
        let loss = model.vocoder_loss(Self::windows(batch, &starts, w), classes)?;
        Ok(Tensor::from_burn(loss)?)
    }
}
