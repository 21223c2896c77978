//! Speech recognition with CTC (Graves et al. 2006) and with a transducer
//! (RNN-T, Graves 2012): spectrogram frames padded per batch with their
//! lengths, transcripts as label ids with their lengths; the two losses as
//! forward-algorithm recursions in log space (CTC over Burn tensors, the
//! transducer's on the host with its exact gradient), differentiable on
//! every back-end; CTC or transducer decoding, greedy or beam; CER and WER.

use burn::tensor::{Bool, Int, Tensor as BTensor, TensorData};
use unidl_backend::Device;
use unidl_data::{Input, Sample};
use unidl_tensor::Tensor;

use super::{Task, TaskIo};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric};
use crate::eval_tasks::TextTask;
use crate::outputs::DecodedSequence;
use crate::postprocess::{CtcConfig, CtcDecoding, CtcMethod, TextConfig, TextDecoding, Vocabulary};

/// Log-space "minus infinity" that keeps sums and gradients finite.
const NEG: f32 = -1.0e30;

/// A collated speech batch.
#[derive(Debug, Clone)]
pub struct SpeechBatch {
    /// `[B, T, F]` frames (zero after each sample's length).
    pub features: BTensor<3>,
    /// Frames per sample.
    pub lengths: Vec<usize>,
    /// Label ids per sample (empty when unlabelled).
    pub targets: Vec<Vec<u32>>,
    /// Whether the samples have transcripts.
    pub labelled: bool,
    /// Where each sample came from.
    pub sources: Vec<String>,
}

/// The label alphabet of a speech task: `labels[i]` is the text of id `i`;
/// the blank has an id of its own (its text is never emitted).
#[derive(Debug, Clone, PartialEq)]
pub struct Alphabet {
    /// Text of every id.
    pub labels: Vec<String>,
    /// The blank id.
    pub blank: usize,
}

impl Alphabet {
    /// Characters as labels, the blank first (id 0).
    pub fn characters(chars: &str) -> Self {
        Alphabet {
            labels: std::iter::once(String::new())
                .chain(chars.chars().map(String::from))
                .collect(),
            blank: 0,
        }
    }

    /// Encodes a transcript character by character; an unknown character names the sample.
    pub fn encode(&self, text: &str, source: &str) -> Result<Vec<u32>> {
        text.chars()
            .map(|c| {
                let s = c.to_string();
                self.labels
                    .iter()
                    .enumerate()
                    .position(|(i, l)| i != self.blank && *l == s)
                    .map(|i| i as u32)
                    .ok_or_else(|| {
                        TrainError::Model(format!(
                            "{source}: character {c:?} is not in the alphabet"
                        ))
                    })
            })
            .collect()
    }
}

/// Frames `[T, F']` of a spectrogram input (`[C, F, T]` or `[F, T]`, time last).
fn frames(s: &Sample, input: &str) -> Result<(usize, usize, Vec<f32>)> {
    let t = match s.inputs.get(input) {
        Some(Input::Tensor(t)) if matches!(t.shape.len(), 2 | 3) => t,
        _ => {
            return Err(TrainError::Model(format!(
                "{}: no `{input}` spectrogram [channels, features, frames] (add a `mel_spectrogram` transform)",
                s.source
            )));
        }
    };
    let n = *t.shape.last().unwrap_or(&0);
    let f: usize = t.shape[..t.shape.len() - 1].iter().product();
    let mut out = vec![0.0; n * f];
    for k in 0..f {
        for j in 0..n {
            out[j * f + k] = t.data[k * n + j];
        }
    }
    Ok((n, f, out))
}

/// Pads spectrograms into `[B, T, F]` and reads the targets.
fn collate_speech(
    samples: &[Sample],
    input: &str,
    alphabet: &Alphabet,
    device: &Device,
) -> Result<SpeechBatch> {
    let mut all = Vec::with_capacity(samples.len());
    let mut feat = None;
    for s in samples {
        let (n, f, v) = frames(s, input)?;
        match feat {
            None => feat = Some(f),
            Some(g) if g != f => {
                return Err(TrainError::Model(format!(
                    "{}: {f} features per frame, the batch has {g}",
                    s.source
                )));
            }
            _ => {}
        }
        all.push((n, v));
    }
    let f = feat.ok_or_else(|| TrainError::Model("speech batch: no samples".into()))?;
    let t = all.iter().map(|(n, _)| *n).max().unwrap_or(1).max(1);
    let mut data = vec![0.0f32; samples.len() * t * f];
    for (b, (n, v)) in all.iter().enumerate() {
        data[b * t * f..b * t * f + n * f].copy_from_slice(v);
    }
    let labelled = samples
        .iter()
        .any(|s| s.targets.text.is_some() || !s.targets.token_ids.is_empty());
    let mut targets = Vec::with_capacity(samples.len());
    for s in samples {
        targets.push(match (&s.targets.token_ids, &s.targets.text) {
            (ids, _) if !ids.is_empty() => ids.clone(),
            (_, Some(text)) => alphabet.encode(text, &s.source)?,
            _ if labelled => {
                return Err(TrainError::Model(format!(
                    "{}: no transcript (other samples of the batch have one)",
                    s.source
                )));
            }
            _ => Vec::new(),
        });
    }
    if let Some((s, bad)) = samples.iter().zip(&targets).find_map(|(s, y)| {
        y.iter()
            .find(|&&i| i as usize >= alphabet.labels.len() || i as usize == alphabet.blank)
            .map(|i| (s, *i))
    }) {
        return Err(TrainError::Model(format!(
            "{}: label id {bad} is the blank or outside the alphabet of {}",
            s.source,
            alphabet.labels.len()
        )));
    }
    Ok(SpeechBatch {
        features: BTensor::from_data(TensorData::new(data, [samples.len(), t, f]), device),
        lengths: all.iter().map(|(n, _)| *n).collect(),
        targets,
        labelled,
        sources: samples.iter().map(|s| s.source.clone()).collect(),
    })
}

fn lse2(a: BTensor<2>, b: BTensor<2>) -> BTensor<2> {
    let m = a.clone().max_pair(b.clone());
    m.clone() + ((a - m.clone()).exp() + (b - m).exp()).log()
}

fn lse3(a: BTensor<2>, b: BTensor<2>, c: BTensor<2>) -> BTensor<2> {
    let m = a.clone().max_pair(b.clone()).max_pair(c.clone());
    m.clone() + ((a - m.clone()).exp() + (b - m.clone()).exp() + (c - m).exp()).log()
}

/// The CTC loss, as `torch.nn.functional.ctc_loss(reduction="mean")`: the
/// negative log-likelihood of each target divided by its length, averaged
/// over the batch. An impossible alignment (a target longer than its
/// frames allow) gives a very large loss instead of infinity.
///
/// # Shapes
/// log_probs `[B, T, V]` (log-softmax over V) → `[1]`.
pub fn ctc_loss(
    log_probs: BTensor<3>,
    targets: &[Vec<u32>],
    input_lengths: &[usize],
    blank: usize,
) -> Result<BTensor<1>> {
    Ok(ctc_nll(log_probs, targets, input_lengths, blank)?.mean())
}

/// Frames a CTC alignment of `target` needs: one per label and one blank
/// between each pair of equal neighbours.
pub fn ctc_min_frames(target: &[u32]) -> usize {
    target.len() + target.windows(2).filter(|w| w[0] == w[1]).count()
}

/// The CTC loss over the samples whose target fits their frames (frames ≥
/// [`ctc_min_frames`]), the others left out as PyTorch's `zero_infinity`
/// leaves them: the mean of [`ctc_nll`] over the fitting samples, `None`
/// when none fits.
///
/// # Shapes
/// log_probs `[B, T, V]` (log-softmax over V) → `[1]`.
pub fn ctc_loss_fitting(
    log_probs: BTensor<3>,
    targets: &[Vec<u32>],
    input_lengths: &[usize],
    blank: usize,
) -> Result<Option<BTensor<1>>> {
    let fits: Vec<f32> = targets
        .iter()
        .zip(input_lengths)
        .map(|(y, &n)| f32::from(u8::from(ctc_min_frames(y) <= n)))
        .collect();
    let count: f32 = fits.iter().sum();
    if count == 0.0 {
        return Ok(None);
    }
    let device = log_probs.device();
    let b = fits.len();
    let nll = ctc_nll(log_probs, targets, input_lengths, blank)?;
    let w = BTensor::<1>::from_data(TensorData::new(fits, [b]), &device);
    Ok(Some((nll * w).sum().div_scalar(f64::from(count))))
}

/// Per sample, CTC's negative log-likelihood divided by the target's length
/// (`torch.nn.functional.ctc_loss(reduction="none") / target_lengths`).
///
/// # Shapes
/// log_probs `[B, T, V]` (log-softmax over V) → `[B]`.
pub fn ctc_nll(
    log_probs: BTensor<3>,
    targets: &[Vec<u32>],
    input_lengths: &[usize],
    blank: usize,
) -> Result<BTensor<1>> {
    let [b, t, _] = log_probs.dims();
    if targets.len() != b || input_lengths.len() != b {
        return Err(TrainError::Model(format!(
            "ctc_loss: {b} sequences but {} targets and {} lengths",
            targets.len(),
            input_lengths.len()
        )));
    }
    if let Some(&n) = input_lengths.iter().find(|&&n| n == 0 || n > t) {
        return Err(TrainError::Model(format!(
            "ctc_loss: input length {n} outside 1..={t}"
        )));
    }
    let device = log_probs.device();
    let lmax = targets.iter().map(Vec::len).max().unwrap_or(0);
    let s = 2 * lmax + 1;
    let mut ext = vec![blank as i64; b * s];
    let mut skip = vec![false; b * s];
    let mut init = vec![false; b * s];
    for (i, y) in targets.iter().enumerate() {
        for (k, &c) in y.iter().enumerate() {
            ext[i * s + 2 * k + 1] = i64::from(c);
            if k > 0 && y[k - 1] != c {
                skip[i * s + 2 * k + 1] = true;
            }
        }
        init[i * s] = true;
        if !y.is_empty() {
            init[i * s + 1] = true;
        }
    }
    let ext_t: BTensor<3, Int> =
        BTensor::<2, Int>::from_data(TensorData::new(ext, [b, s]), &device)
            .unsqueeze_dim::<3>(1)
            .expand([b, t, s]);
    let e = log_probs.gather(2, ext_t); // [B, T, S]
    let skip: BTensor<2, Bool> = BTensor::from_data(TensorData::new(skip, [b, s]), &device);
    let init: BTensor<2, Bool> = BTensor::from_data(TensorData::new(init, [b, s]), &device);
    let neg = |cols: usize| BTensor::<2>::full([b, cols], NEG, &device);
    let step = |k: usize| e.clone().slice([0..b, k..k + 1, 0..s]).squeeze_dim::<2>(1);
    let mut alpha = neg(s).mask_where(init, step(0));
    for k in 1..t {
        let prev1 = if s > 1 {
            BTensor::cat(vec![neg(1), alpha.clone().slice([0..b, 0..s - 1])], 1)
        } else {
            neg(1)
        };
        let prev2 = if s > 2 {
            BTensor::cat(vec![neg(2), alpha.clone().slice([0..b, 0..s - 2])], 1)
        } else {
            neg(s)
        };
        let prev2 = neg(s).mask_where(skip.clone(), prev2);
        let next = lse3(alpha.clone(), prev1, prev2) + step(k);
        let active: Vec<bool> = input_lengths.iter().map(|&n| k < n).collect();
        let active: BTensor<2, Bool> =
            BTensor::<1, Bool>::from_data(TensorData::new(active, [b]), &device)
                .unsqueeze_dim::<2>(1)
                .expand([b, s]);
        alpha = alpha.mask_where(active, next);
    }
    let last: Vec<i64> = targets.iter().map(|y| 2 * y.len() as i64).collect();
    let before: Vec<i64> = targets
        .iter()
        .map(|y| (2 * y.len() as i64 - 1).max(0))
        .collect();
    let has: Vec<bool> = targets.iter().map(|y| !y.is_empty()).collect();
    let idx = |v: Vec<i64>| BTensor::<2, Int>::from_data(TensorData::new(v, [b, 1]), &device);
    let a_last = alpha.clone().gather(1, idx(last));
    let a_before = neg(1).mask_where(
        BTensor::<2, Bool>::from_data(TensorData::new(has, [b, 1]), &device),
        alpha.gather(1, idx(before)),
    );
    let ll = lse2(a_last, a_before).squeeze_dim::<1>(1); // [B]
    let lens: Vec<f32> = targets.iter().map(|y| y.len().max(1) as f32).collect();
    let lens = BTensor::<1>::from_data(TensorData::new(lens, [b]), &device);
    Ok(ll.neg() / lens)
}

/// The transducer loss (`torchaudio.functional.rnnt_loss`, mean over the
/// batch): `−log P(y | x)` summed over every alignment of the `T × (U + 1)`
/// lattice, where a blank advances time and a label advances the output.
///
/// The forward (α) and backward (β) recursions run on the host in float64
/// over each sample's own `T_b × (U_b + 1)` lattice (one device read of the
/// log-probs); the gradient with respect to the log-probs,
/// `∂L/∂lp(t, u, k) = −exp(α(t, u) + lp(t, u, k) + β(next) − log P)` at the
/// blank and at the next label, enters autodiff through a surrogate
/// `Σ G ⊙ lp` whose value is replaced by the exact loss — so the loss
/// differentiates on every back-end and costs `O(B·T·U)` host work rather
/// than `T·U` tensor operations.
///
/// # Shapes
/// log_probs `[B, T, U + 1, V]` (log-softmax over V, `U` = longest target) → `[1]`.
pub fn transducer_loss(
    log_probs: BTensor<4>,
    targets: &[Vec<u32>],
    input_lengths: &[usize],
    blank: usize,
) -> Result<BTensor<1>> {
    let [b, t, u1, v] = log_probs.dims();
    let umax = targets.iter().map(Vec::len).max().unwrap_or(0);
    if targets.len() != b || input_lengths.len() != b || u1 != umax + 1 {
        return Err(TrainError::Shape {
            what: "transducer log-probs".into(),
            expected: format!(
                "[{}, T, {} (longest target + 1), V]",
                targets.len(),
                umax + 1
            ),
            got: vec![b, t, u1, v],
        });
    }
    if let Some(&n) = input_lengths.iter().find(|&&n| n == 0 || n > t) {
        return Err(TrainError::Model(format!(
            "transducer_loss: input length {n} outside 1..={t}"
        )));
    }
    if blank >= v {
        return Err(TrainError::Model(format!(
            "transducer_loss: blank {blank} outside the {v} labels"
        )));
    }
    if let Some(&c) = targets.iter().flatten().find(|&&c| c as usize >= v) {
        return Err(TrainError::Model(format!(
            "transducer_loss: label {c} outside the {v} labels"
        )));
    }
    let device = log_probs.device();
    let host: Vec<f32> = log_probs
        .clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Model(format!("transducer_loss: {e:?}")))?;
    let mut grad = vec![0.0f32; b * t * u1 * v];
    let mut total = 0.0f64;
    for (k, y) in targets.iter().enumerate() {
        let (tk, uk) = (input_lengths[k], y.len());
        let at = |i: usize, j: usize, c: usize| f64::from(host[((k * t + i) * u1 + j) * v + c]);
        let emit = |i: usize, j: usize| at(i, j, y[j] as usize);
        let w = uk + 1;
        let mut alpha = vec![f64::NEG_INFINITY; tk * w];
        let mut beta = vec![f64::NEG_INFINITY; tk * w];
        for i in 0..tk {
            for j in 0..=uk {
                alpha[i * w + j] = match (i, j) {
                    (0, 0) => 0.0,
                    (0, _) => alpha[j - 1] + emit(0, j - 1),
                    (_, 0) => alpha[(i - 1) * w] + at(i - 1, 0, blank),
                    _ => log_add(
                        alpha[(i - 1) * w + j] + at(i - 1, j, blank),
                        alpha[i * w + j - 1] + emit(i, j - 1),
                    ),
                };
            }
        }
        for i in (0..tk).rev() {
            for j in (0..=uk).rev() {
                beta[i * w + j] = if i == tk - 1 && j == uk {
                    at(i, j, blank)
                } else if i == tk - 1 {
                    beta[i * w + j + 1] + emit(i, j)
                } else if j == uk {
                    beta[(i + 1) * w + j] + at(i, j, blank)
                } else {
                    log_add(
                        beta[(i + 1) * w + j] + at(i, j, blank),
                        beta[i * w + j + 1] + emit(i, j),
                    )
                };
            }
        }
        let ll = beta[0];
        total -= ll;
        let scale = 1.0 / b as f64;
        for i in 0..tk {
            for j in 0..=uk {
                let a = alpha[i * w + j];
                let cell = ((k * t + i) * u1 + j) * v;
                let next_blank = if i + 1 < tk {
                    beta[(i + 1) * w + j]
                } else if j == uk {
                    0.0
                } else {
                    f64::NEG_INFINITY
                };
                grad[cell + blank] =
                    (-(a + at(i, j, blank) + next_blank - ll).exp() * scale) as f32;
                if j < uk {
                    let c = y[j] as usize;
                    grad[cell + c] +=
                        (-(a + at(i, j, c) + beta[i * w + j + 1] - ll).exp() * scale) as f32;
                }
            }
        }
    }
    let g = BTensor::<4>::from_data(TensorData::new(grad, [b, t, u1, v]), &device);
    let surrogate = (log_probs * g).sum();
    let value = BTensor::<1>::from_data(
        TensorData::new(vec![(total / b as f64) as f32], [1]),
        &device,
    );
    Ok(surrogate.clone() - surrogate.detach() + value)
}

/// `log(eˣ + eʸ)` in float64, exact at −∞.
pub fn log_add(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    if m == f64::NEG_INFINITY {
        m
    } else {
        m + ((x - m).exp() + (y - m).exp()).ln()
    }
}

/// A CTC acoustic model (what [`SpeechRecognition`] trains).
pub trait CtcModel {
    /// Log-probabilities over the alphabet and the output frames per sample.
    ///
    /// # Shapes
    /// features `[B, T, F]` (+ lengths) → log-probs `[B, T', V]`.
    fn ctc_log_probs(&self, features: BTensor<3>, lengths: &[usize]) -> (BTensor<3>, Vec<usize>);
}

/// Speech recognition with CTC over the spectrogram input `input`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRecognition {
    /// The spectrogram input (`[C, F, T]`, as `mel_spectrogram` writes it).
    pub input: String,
    /// Output labels and the blank.
    pub alphabet: Alphabet,
    /// Prefixes kept by the CTC prefix beam search (1: greedy).
    pub beam_width: usize,
}

impl TaskIo for SpeechRecognition {
    type Batch = SpeechBatch;
    type Post = CtcDecoding;

    fn name(&self) -> &'static str {
        "speech_recognition"
    }

    fn loss_name(&self) -> &'static str {
        "ctc"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<SpeechBatch> {
        collate_speech(samples, &self.input, &self.alphabet, device)
    }

    fn post(&self) -> CtcDecoding {
        CtcDecoding::new(
            CtcConfig {
                blank: self.alphabet.blank,
                method: if self.beam_width > 1 {
                    CtcMethod::Beam {
                        width: self.beam_width,
                    }
                } else {
                    CtcMethod::Greedy
                },
                ..CtcConfig::default()
            },
            Vocabulary::List(self.alphabet.labels.clone()),
        )
        .expect("a valid alphabet")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<DecodedSequence>> {
        Box::new(TextTask::default())
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::Cer, Metric::Wer]
    }
}

impl<M: CtcModel + Send + Sync + 'static> Task<M> for SpeechRecognition {
    /// Log-probs `[B, T', V]`; frames past a sample's output length are
    /// blank with certainty, so decoding ignores them.
    fn forward(&self, model: &M, batch: &SpeechBatch) -> Result<Tensor> {
        let (lp, out) = model.ctc_log_probs(batch.features.clone(), &batch.lengths);
        let [b, t, v] = lp.dims();
        let device = lp.device();
        let mut pad = vec![false; b * t];
        for (k, &n) in out.iter().enumerate() {
            for j in n.min(t)..t {
                pad[k * t + j] = true;
            }
        }
        let pad = BTensor::<2, Bool>::from_data(TensorData::new(pad, [b, t]), &device)
            .unsqueeze_dim::<3>(2)
            .expand([b, t, v]);
        let mut blank_row = vec![NEG; v];
        blank_row[self.alphabet.blank] = 0.0;
        let blank = BTensor::<1>::from_data(TensorData::new(blank_row, [v]), &device)
            .reshape([1, 1, v])
            .expand([b, t, v]);
        Ok(Tensor::from_burn(lp.mask_where(pad, blank))?)
    }

    fn loss(&self, model: &M, batch: &SpeechBatch) -> Result<Tensor> {
        if !batch.labelled {
            return Err(TrainError::Model(
                "speech training needs transcripts".into(),
            ));
        }
        let (lp, out) = model.ctc_log_probs(batch.features.clone(), &batch.lengths);
        let v = lp.dims()[2];
        if v != self.alphabet.labels.len() {
            return Err(TrainError::Config {
                key: "model.vocab_size".into(),
                reason: format!(
                    "the model scores {v} labels, the alphabet has {} (its characters and the blank)",
                    self.alphabet.labels.len()
                ),
            });
        }
        // as PyTorch's `zero_infinity`: a transcript that needs more frames
        // than the model gives (labels + repeated neighbours) is left out
        match ctc_loss_fitting(lp, &batch.targets, &out, self.alphabet.blank)? {
            Some(loss) => Ok(Tensor::from_burn(loss)?),
            None => Err(TrainError::Model(format!(
                "{}: {} output frames for a transcript that needs {} (no sample of the batch fits: \
                 give more frames per second, e.g. a smaller hop_length, or subsample less)",
                batch.sources[0],
                out[0],
                ctc_min_frames(&batch.targets[0])
            ))),
        }
    }
}

/// A transducer (what [`TransducerRecognition`] trains).
pub trait TransducerModel {
    /// Joint log-probabilities for teacher-forced targets.
    ///
    /// # Shapes
    /// features `[B, T, F]` (+ lengths), targets (ids, padded with the blank
    /// to the longest) → log-probs `[B, T', U + 1, V]` and the output frames
    /// per sample.
    fn joint_log_probs(
        &self,
        features: BTensor<3>,
        lengths: &[usize],
        targets: &[Vec<u32>],
    ) -> (BTensor<4>, Vec<usize>);

    /// Decoding: label ids per sample — greedy when `beam_width` is 1, a
    /// beam search keeping `beam_width` hypotheses otherwise.
    fn decode(&self, features: BTensor<3>, lengths: &[usize], beam_width: usize) -> Vec<Vec<u32>>;
}

/// Speech recognition with a transducer (RNN-T).
#[derive(Debug, Clone, PartialEq)]
pub struct TransducerRecognition {
    /// The spectrogram input.
    pub input: String,
    /// Output labels and the blank.
    pub alphabet: Alphabet,
    /// Hypotheses kept by the decoder's beam search (1: greedy).
    pub beam_width: usize,
}

impl TaskIo for TransducerRecognition {
    type Batch = SpeechBatch;
    type Post = TextDecoding;

    fn name(&self) -> &'static str {
        "transducer_recognition"
    }

    fn loss_name(&self) -> &'static str {
        "rnnt"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<SpeechBatch> {
        collate_speech(samples, &self.input, &self.alphabet, device)
    }

    fn post(&self) -> TextDecoding {
        TextDecoding::new(
            TextConfig {
                eos_id: None,
                special_ids: vec![self.alphabet.blank as u32],
                separator: String::new(),
            },
            Vocabulary::List(self.alphabet.labels.clone()),
        )
        .expect("a valid alphabet")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<DecodedSequence>> {
        Box::new(TextTask::default())
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::Cer, Metric::Wer]
    }
}

impl<M: TransducerModel + Send + Sync + 'static> Task<M> for TransducerRecognition {
    /// Decoded label ids `[B, L]` (greedy or beam search), padded with the blank.
    fn forward(&self, model: &M, batch: &SpeechBatch) -> Result<Tensor> {
        let ids = model.decode(
            batch.features.clone(),
            &batch.lengths,
            self.beam_width.max(1),
        );
        let l = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let flat: Vec<i64> = ids
            .iter()
            .flat_map(|s| {
                (0..l).map(move |j| i64::from(*s.get(j).unwrap_or(&(self.alphabet.blank as u32))))
            })
            .collect();
        Ok(Tensor::from_i64(
            flat,
            &[ids.len(), l],
            &batch.features.device(),
        )?)
    }

    fn loss(&self, model: &M, batch: &SpeechBatch) -> Result<Tensor> {
        if !batch.labelled {
            return Err(TrainError::Model(
                "speech training needs transcripts".into(),
            ));
        }
        let (lp, out) =
            model.joint_log_probs(batch.features.clone(), &batch.lengths, &batch.targets);
        let v = lp.dims()[3];
        if v != self.alphabet.labels.len() {
            return Err(TrainError::Config {
                key: "model.vocab_size".into(),
                reason: format!(
                    "the model scores {v} labels, the alphabet has {} (its characters and the blank)",
                    self.alphabet.labels.len()
                ),
            });
        }
        if let Some(k) = out.iter().position(|&n| n == 0) {
            return Err(TrainError::Model(format!(
                "{}: no frame left after the model's time reduction (a longer recording, or a smaller stride)",
                batch.sources[k]
            )));
        }
        Ok(Tensor::from_burn(transducer_loss(
            lp,
            &batch.targets,
            &out,
            self.alphabet.blank,
        )?)?)
    }
}
