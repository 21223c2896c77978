//! Token sequences: language modelling (next-token prediction, perplexity)
//! and sequence-to-sequence (translation, OCR, generation: teacher forcing,
//! label smoothing, padding ignored in the loss; greedy decoding; CER, WER,
//! BLEU).

use std::sync::Arc;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Int, Tensor as BTensor};
use serde::Serialize;
use unidl_backend::Device;
use unidl_data::text::TextTokenizer;
use unidl_data::{PreparedDataset, Sample};
use unidl_tensor::Tensor;

use super::{Task, TaskIo, pad_ids, tokens_of};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric, Scores, TaskMetrics};
use crate::eval_tasks::TextTask;
use crate::infer::{InferOptions, PostProcess};
use crate::metrics::Perplexity;
use crate::outputs::DecodedSequence;
use crate::postprocess::{TextConfig, TextDecoding, Vocabulary};

/// Mean cross-entropy over the positions where `mask` is true, with label
/// smoothing ε as `torch.nn.CrossEntropyLoss(label_smoothing=ε)`:
/// `(1 − ε)·nll + ε·mean_k(−log p_k)`.
///
/// # Shapes
/// logits `[B, T, V]`, targets `[B, T]`, mask `[B, T]` → `[1]`.
pub fn token_cross_entropy(
    logits: BTensor<3>,
    targets: BTensor<2, Int>,
    mask: BTensor<2, Bool>,
    smoothing: f64,
) -> BTensor<1> {
    let [_, _, v] = logits.dims();
    let logp = log_softmax(logits, 2); // [B, T, V]
    let nll = logp
        .clone()
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2)
        .neg(); // [B, T]
    let per = if smoothing > 0.0 {
        let uniform = logp
            .sum_dim(2)
            .squeeze_dim::<2>(2)
            .neg()
            .div_scalar(v as f64); // [B, T]
        nll.mul_scalar(1.0 - smoothing) + uniform.mul_scalar(smoothing)
    } else {
        nll
    };
    let w = mask.float();
    let count = w.clone().sum().clamp_min(1.0);
    (per * w).sum() / count
}

/// A causal language model (what [`LanguageModelling`] trains).
pub trait LanguageModel {
    /// # Shapes
    /// ids `[B, T]`, mask `[B, T]` → logits `[B, T, V]`; position `t`
    /// predicts token `t + 1` and sees tokens `≤ t` only.
    fn lm_logits(&self, ids: BTensor<2, Int>, mask: BTensor<2, Bool>) -> BTensor<3>;
}

/// Next-token language modelling over the token input `input`.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageModelling {
    /// Name of the [`Input::Tokens`](unidl_data::Input::Tokens) input.
    pub input: String,
    /// Padding id.
    pub pad_id: u32,
}

impl Default for LanguageModelling {
    fn default() -> Self {
        LanguageModelling {
            input: "tokens".into(),
            pad_id: 0,
        }
    }
}

/// A collated token batch for language modelling.
#[derive(Debug, Clone)]
pub struct LmBatch {
    /// `[B, T]`.
    pub ids: BTensor<2, Int>,
    /// `[B, T]`, true on real tokens.
    pub mask: BTensor<2, Bool>,
    /// Where each sample came from.
    pub sources: Vec<String>,
}

/// The likelihood of one sequence under a language model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceLikelihood {
    /// Sum of the natural-log probabilities of the predicted tokens.
    pub log_prob: f64,
    /// Tokens predicted (all but the first).
    pub tokens: usize,
    /// `exp(−log_prob / tokens)`.
    pub perplexity: f64,
}

/// Post-processing of [`LanguageModelling`]'s raw outputs `[B, T−1, 2]`
/// (per position: log-probability of the true next token, 1 for a real token).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenLikelihoods;

impl PostProcess for TokenLikelihoods {
    type Output = SequenceLikelihood;

    fn process(&self, outputs: &Tensor, _o: &InferOptions) -> Result<Vec<SequenceLikelihood>> {
        let shape = outputs.shape();
        if shape.len() != 3 || shape[2] != 2 {
            return Err(TrainError::Shape {
                what: "token likelihoods".into(),
                expected: "[batch, positions, 2]".into(),
                got: shape.to_vec(),
            });
        }
        let v = outputs.to_vec_f64()?;
        Ok(v.chunks(shape[1] * 2)
            .map(|row| {
                let (mut lp, mut n) = (0.0, 0usize);
                for p in row.chunks(2) {
                    if p[1] > 0.5 {
                        lp += p[0];
                        n += 1;
                    }
                }
                SequenceLikelihood {
                    log_prob: lp,
                    tokens: n,
                    perplexity: if n == 0 {
                        f64::NAN
                    } else {
                        (-lp / n as f64).exp()
                    },
                }
            })
            .collect())
    }
}

/// Perplexity over a data set (every predicted token weighs the same).
#[derive(Debug, Clone, Copy, Default)]
pub struct LanguageModelTask;

struct PplMetrics(Perplexity);

impl EvaluationTask<SequenceLikelihood> for LanguageModelTask {
    fn supports(&self, m: Metric) -> bool {
        m == Metric::Perplexity
    }
    fn start(
        &self,
        _metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<SequenceLikelihood>>> {
        Ok(Box::new(PplMetrics(Perplexity::new())))
    }
}

impl TaskMetrics<SequenceLikelihood> for PplMetrics {
    fn update(&mut self, outputs: &[SequenceLikelihood], _samples: &[Sample]) -> Result<()> {
        for o in outputs.iter().filter(|o| o.tokens > 0) {
            self.0
                .update_mean_nll(-o.log_prob / o.tokens as f64, o.tokens as u64)?;
        }
        Ok(())
    }
    fn compute(&self) -> Result<Scores> {
        Ok([("perplexity".to_string(), self.0.compute()?)]
            .into_iter()
            .collect())
    }
}

impl TaskIo for LanguageModelling {
    type Batch = LmBatch;
    type Post = TokenLikelihoods;

    fn name(&self) -> &'static str {
        "language_modelling"
    }

    fn loss_name(&self) -> &'static str {
        "token_cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<LmBatch> {
        let seqs = samples
            .iter()
            .map(|s| tokens_of(s, &self.input))
            .collect::<Result<Vec<_>>>()?;
        let (ids, mask) = pad_ids(&seqs, self.pad_id, 2, device)?;
        Ok(LmBatch {
            ids,
            mask,
            sources: samples.iter().map(|s| s.source.clone()).collect(),
        })
    }

    fn post(&self) -> TokenLikelihoods {
        TokenLikelihoods
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<SequenceLikelihood>> {
        Box::new(LanguageModelTask)
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::Perplexity]
    }
}

/// Logits of positions `0..T−1`, targets and mask of positions `1..T`.
fn shifted<M: LanguageModel>(
    model: &M,
    batch: &LmBatch,
) -> (BTensor<3>, BTensor<2, Int>, BTensor<2, Bool>) {
    let [b, t] = batch.ids.dims();
    let logits = model.lm_logits(batch.ids.clone(), batch.mask.clone()); // [B, T, V]
    let v = logits.dims()[2];
    (
        logits.slice([0..b, 0..t - 1, 0..v]),
        batch.ids.clone().slice([0..b, 1..t]),
        batch.mask.clone().slice([0..b, 1..t]),
    )
}

impl<M: LanguageModel + Send + Sync + 'static> Task<M> for LanguageModelling {
    fn forward(&self, model: &M, batch: &LmBatch) -> Result<Tensor> {
        let (logits, targets, mask) = shifted(model, batch);
        let lp = log_softmax(logits, 2).gather(2, targets.unsqueeze_dim::<3>(2)); // [B, T−1, 1]
        let m = mask.float().unsqueeze_dim::<3>(2);
        Ok(Tensor::from_burn(BTensor::cat(vec![lp * m.clone(), m], 2))?)
    }

    fn loss(&self, model: &M, batch: &LmBatch) -> Result<Tensor> {
        let (logits, targets, mask) = shifted(model, batch);
        Ok(Tensor::from_burn(token_cross_entropy(
            logits, targets, mask, 0.0,
        ))?)
    }
}

/// The source side of a sequence-to-sequence batch.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Seq2SeqSource {
    /// Token ids `[B, S]` and their mask (translation).
    Tokens {
        /// `[B, S]`.
        ids: BTensor<2, Int>,
        /// `[B, S]`, true on real tokens.
        mask: BTensor<2, Bool>,
    },
    /// Images `[B, C, H, W]` (OCR).
    Images(BTensor<4>),
}

impl Seq2SeqSource {
    /// Number of sources.
    pub fn len(&self) -> usize {
        match self {
            Seq2SeqSource::Tokens { ids, .. } => ids.dims()[0],
            Seq2SeqSource::Images(x) => x.dims()[0],
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device the source lives on.
    pub fn device(&self) -> Device {
        match self {
            Seq2SeqSource::Tokens { ids, .. } => ids.device(),
            Seq2SeqSource::Images(x) => x.device(),
        }
    }

    /// The token ids and their mask, or an error naming `model` when the
    /// source is images.
    pub fn tokens(&self, model: &str) -> Result<(BTensor<2, Int>, BTensor<2, Bool>)> {
        match self {
            Seq2SeqSource::Tokens { ids, mask } => Ok((ids.clone(), mask.clone())),
            Seq2SeqSource::Images(_) => Err(TrainError::Model(format!(
                "{model} reads token ids; the task gives images"
            ))),
        }
    }

    /// The images, or an error naming `model` when the source is token ids.
    pub fn images(&self, model: &str) -> Result<BTensor<4>> {
        match self {
            Seq2SeqSource::Images(x) => Ok(x.clone()),
            Seq2SeqSource::Tokens { .. } => Err(TrainError::Model(format!(
                "{model} reads images; the task gives token ids"
            ))),
        }
    }

    /// Rows `rows` of the source, in that order (repeats allowed).
    pub fn select(&self, rows: &[usize]) -> Seq2SeqSource {
        let index = row_index(rows, &self.device());
        match self {
            Seq2SeqSource::Tokens { ids, mask } => Seq2SeqSource::Tokens {
                ids: ids.clone().select(0, index.clone()),
                mask: mask.clone().int().select(0, index).bool(),
            },
            Seq2SeqSource::Images(x) => Seq2SeqSource::Images(x.clone().select(0, index)),
        }
    }
}

/// `rows` as an index tensor.
pub fn row_index(rows: &[usize], device: &Device) -> BTensor<1, Int> {
    let v: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    BTensor::from_data(burn::tensor::TensorData::new(v, [rows.len()]), device)
}

/// Where step-by-step decoding stands: what a model needs to predict the
/// next token of every row.
#[allow(clippy::large_enum_variant)] // one per generation call, moved, never stored in bulk
pub enum DecodingState {
    /// No cache: the source and every row's tokens so far (`[BOS]` first),
    /// the whole prefix re-run through [`Seq2SeqModel::seq2seq_logits`] at
    /// every step.
    Recompute {
        /// The source.
        source: Seq2SeqSource,
        /// Each row's decoder tokens so far.
        prefix: Vec<Vec<u32>>,
    },
    /// A model's own state (its encoder output and key/value caches).
    Model(Box<dyn std::any::Any + Send>),
}

/// An encoder–decoder (what [`SequenceToSequence`] trains and
/// [`generate`](crate::decoding::generate) decodes).
pub trait Seq2SeqModel {
    /// # Shapes
    /// source (ids `[B, S]` + mask, or images), decoder ids `[B, T]` + mask →
    /// logits `[B, T, V]`; position `t` predicts target token `t` from the
    /// decoder tokens `≤ t` (teacher forcing). A source the model cannot
    /// read (images for a text model, a wrong image size, ids beyond the
    /// vocabulary) is an error, not a panic.
    fn seq2seq_logits(
        &self,
        source: &Seq2SeqSource,
        decoder_ids: BTensor<2, Int>,
        decoder_mask: BTensor<2, Bool>,
    ) -> Result<BTensor<3>>;

    /// [`seq2seq_logits`](Self::seq2seq_logits) and, for a model with a CTC
    /// head on its encoder (the hybrid CTC/attention objective), that
    /// head's log-probabilities `[B, S', V]` (log-softmax over the same
    /// vocabulary, padding = blank) from the same encoder pass. The default
    /// has no head.
    fn seq2seq_logits_and_ctc(
        &self,
        source: &Seq2SeqSource,
        decoder_ids: BTensor<2, Int>,
        decoder_mask: BTensor<2, Bool>,
    ) -> Result<(BTensor<3>, Option<BTensor<3>>)> {
        Ok((
            self.seq2seq_logits(source, decoder_ids, decoder_mask)?,
            None,
        ))
    }

    /// The encoder CTC head's log-probabilities `[rows, S', V]` for a
    /// decoding [`begin_decoding`](Self::begin_decoding) started (log-softmax
    /// over the decoder's vocabulary, padding = blank), for joint
    /// CTC/attention decoding (`[infer.generation] ctc_weight`); a model
    /// keeps them in its state so that one encoder pass serves both. The
    /// default: no head.
    fn decoding_ctc_log_probs(&self, state: &mut DecodingState) -> Result<Option<BTensor<3>>> {
        let _ = state;
        Ok(None)
    }

    /// Starts decoding `source`. The default keeps the source and re-runs
    /// the prefix each step; models with a cache return
    /// [`DecodingState::Model`] and override the next two methods too.
    fn begin_decoding(&self, source: &Seq2SeqSource) -> Result<DecodingState> {
        Ok(DecodingState::Recompute {
            source: source.clone(),
            prefix: vec![Vec::new(); source.len()],
        })
    }

    /// Appends `tokens` (one per row) and returns the logits of every row's
    /// next token, `[rows, V]`.
    fn decode_next(&self, state: &mut DecodingState, tokens: &[u32]) -> Result<BTensor<2>> {
        let DecodingState::Recompute { source, prefix } = state else {
            return Err(TrainError::Model(
                "this model keeps its own decoding state but does not decode with it".into(),
            ));
        };
        for (p, &t) in prefix.iter_mut().zip(tokens) {
            p.push(t);
        }
        let (ids, mask) = pad_ids(prefix, 0, 1, &source.device())?;
        let [b, t] = ids.dims();
        let logits = self.seq2seq_logits(source, ids, mask)?;
        let v = logits.dims()[2];
        Ok(logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]))
    }

    /// Keeps rows `rows` of the state, in that order (beam search).
    fn reorder(&self, state: DecodingState, rows: &[usize]) -> Result<DecodingState> {
        match state {
            DecodingState::Recompute { source, prefix } => Ok(DecodingState::Recompute {
                source: source.select(rows),
                prefix: rows.iter().map(|&r| prefix[r].clone()).collect(),
            }),
            DecodingState::Model(_) => Err(TrainError::Model(
                "this model keeps its own decoding state but does not reorder it".into(),
            )),
        }
    }
}

/// Where the source of a sequence-to-sequence sample comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceInput {
    /// The [`Input::Tokens`](unidl_data::Input::Tokens) of this name.
    Tokens(String),
    /// The `image` input.
    Image,
}

/// Sequence to sequence. Targets are `targets.token_ids`, or `targets.text`
/// encoded with `target_tokenizer`, or — text-to-text classification, when
/// `label_targets` holds the class names — the name of `targets.label`; the
/// decoder reads `[BOS] y` and learns `y [EOS]`; padding is ignored in the
/// loss.
#[derive(Debug, Clone)]
pub struct SequenceToSequence {
    /// The source.
    pub source: SourceInput,
    /// Padding id (source and target).
    pub pad_id: u32,
    /// Begin-of-sequence id (first decoder input).
    pub bos_id: u32,
    /// End-of-sequence id (last target).
    pub eos_id: u32,
    /// Label smoothing ε in [0, 1).
    pub label_smoothing: f64,
    /// How outputs are generated (greedy, beams, sampling; longest output);
    /// a call's `InferOptions::generation` overrides it. Training targets
    /// are cut to `max_length - 1` tokens (plus `[EOS]`): what generation
    /// can produce.
    pub generation: crate::decoding::GenerationConfig,
    /// Encodes target texts when samples have no target ids; also decodes outputs.
    pub target_tokenizer: Option<Arc<TextTokenizer>>,
    /// Text-to-text classification: the class names, one per label. A
    /// sample with a `label` and no target text learns its class's name;
    /// evaluation adds exact-match accuracy and macro F1. Empty: off.
    pub label_targets: Vec<String>,
    /// The hybrid CTC/attention objective (Watanabe et al. 2017): the loss
    /// is `(1 − w)·cross-entropy + w·CTC`, CTC over the model's encoder
    /// head ([`Seq2SeqModel::seq2seq_logits_and_ctc`]) with the targets
    /// (no `[EOS]`) and padding as blank; samples too long for the
    /// encoder's positions are left out of the CTC term (as
    /// `zero_infinity`). In [0, 1); 0 (default): off.
    pub ctc_weight: f64,
}

/// A collated sequence-to-sequence batch.
#[derive(Debug, Clone)]
pub struct Seq2SeqBatch {
    /// The source.
    pub source: Seq2SeqSource,
    /// `[B, T]`: `[BOS] y`, padded.
    pub decoder_ids: Option<BTensor<2, Int>>,
    /// `[B, T]`: `y [EOS]`, padded.
    pub labels: Option<BTensor<2, Int>>,
    /// `[B, T]`, true on real label tokens.
    pub label_mask: Option<BTensor<2, Bool>>,
    /// The targets `y` on the host: the CTC term's labels, kept only when
    /// the task has one (`ctc_weight > 0`).
    pub targets: Option<Vec<Vec<u32>>>,
    /// Samples in the batch.
    pub len: usize,
    /// Where each sample came from.
    pub sources: Vec<String>,
}

impl SequenceToSequence {
    fn targets(&self, s: &Sample) -> Result<Option<Vec<u32>>> {
        if !s.targets.token_ids.is_empty() {
            return Ok(Some(s.targets.token_ids.clone()));
        }
        let named;
        let text = match (&s.targets.text, s.targets.label) {
            (None, Some(l)) if !self.label_targets.is_empty() => {
                named = Some(self.label_targets.get(l).cloned().ok_or_else(|| {
                    TrainError::Model(format!(
                        "{}: label {l} is outside the {} class names",
                        s.source,
                        self.label_targets.len()
                    ))
                })?);
                &named
            }
            (t, _) => t,
        };
        match (text, &self.target_tokenizer) {
            (Some(t), Some(tok)) => Ok(Some(tok.encode(t)?)),
            (Some(_), None) => Err(TrainError::Model(format!(
                "{}: a target text but no target tokenizer to encode it",
                s.source
            ))),
            (None, _) => Ok(None),
        }
    }
}

impl TaskIo for SequenceToSequence {
    type Batch = Seq2SeqBatch;
    type Post = TextDecoding;

    fn name(&self) -> &'static str {
        "sequence_to_sequence"
    }

    fn loss_name(&self) -> &'static str {
        "token_cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<Seq2SeqBatch> {
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(TrainError::Config {
                key: "task.label_smoothing".into(),
                reason: format!("{} is outside [0, 1)", self.label_smoothing),
            });
        }
        let source = match &self.source {
            SourceInput::Tokens(name) => {
                let seqs = samples
                    .iter()
                    .map(|s| tokens_of(s, name))
                    .collect::<Result<Vec<_>>>()?;
                let (ids, mask) = pad_ids(&seqs, self.pad_id, 1, device)?;
                Seq2SeqSource::Tokens { ids, mask }
            }
            SourceInput::Image => {
                Seq2SeqSource::Images(unidl_data::stack_images(samples, device)?.into_burn()?)
            }
        };
        let targets = samples
            .iter()
            .map(|s| self.targets(s))
            .collect::<Result<Vec<_>>>()?;
        if !(0.0..1.0).contains(&self.ctc_weight) {
            return Err(TrainError::Config {
                key: "task.ctc_weight".into(),
                reason: format!("{} is outside [0, 1)", self.ctc_weight),
            });
        }
        let (decoder_ids, labels, label_mask, targets) = if targets.iter().all(Option::is_some) {
            // Targets are cut where generation stops (`max_length` tokens
            // with `[EOS]`): longer ones cannot be produced, and one long
            // outlier would pad the whole batch to its length.
            let keep = self.generation.max_length.saturating_sub(1).max(1);
            let ys: Vec<Vec<u32>> = targets
                .into_iter()
                .flatten()
                .map(|mut y| {
                    y.truncate(keep);
                    y
                })
                .collect();
            let dec: Vec<Vec<u32>> = ys
                .iter()
                .map(|y| {
                    std::iter::once(self.bos_id)
                        .chain(y.iter().copied())
                        .collect()
                })
                .collect();
            let lab: Vec<Vec<u32>> = ys
                .iter()
                .map(|y| {
                    y.iter()
                        .copied()
                        .chain(std::iter::once(self.eos_id))
                        .collect()
                })
                .collect();
            let (d, _) = pad_ids(&dec, self.pad_id, 1, device)?;
            let (l, m) = pad_ids(&lab, self.pad_id, 1, device)?;
            (
                Some(d),
                Some(l),
                Some(m),
                (self.ctc_weight > 0.0).then_some(ys),
            )
        } else if let Some(s) = samples
            .iter()
            .zip(&targets)
            .find(|(_, t)| t.is_some())
            .map(|(s, _)| s)
        {
            return Err(TrainError::Model(format!(
                "{}: some samples of the batch have targets and some have none",
                s.source
            )));
        } else {
            (None, None, None, None)
        };
        Ok(Seq2SeqBatch {
            source,
            decoder_ids,
            labels,
            label_mask,
            targets,
            len: samples.len(),
            sources: samples.iter().map(|s| s.source.clone()).collect(),
        })
    }

    fn post(&self) -> TextDecoding {
        TextDecoding::new(
            TextConfig {
                eos_id: Some(self.eos_id),
                special_ids: vec![self.pad_id, self.bos_id],
                separator: String::new(),
            },
            self.target_tokenizer
                .clone()
                .map_or(Vocabulary::None, Vocabulary::Tokenizer),
        )
        .expect("ids within the vocabulary")
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<DecodedSequence>> {
        Box::new(TextTask {
            class_names: self.label_targets.clone(),
        })
    }

    /// BLEU, chrF, CER and WER; exact-match accuracy and macro F1 for
    /// text-to-text classification.
    fn default_metrics(&self) -> Vec<Metric> {
        if self.label_targets.is_empty() {
            vec![Metric::Bleu, Metric::Chrf, Metric::Cer, Metric::Wer]
        } else {
            vec![Metric::Accuracy, Metric::F1Macro]
        }
    }
}

impl SequenceToSequence {
    fn generate<M: Seq2SeqModel>(
        &self,
        model: &M,
        batch: &Seq2SeqBatch,
        cfg: &crate::decoding::GenerationConfig,
    ) -> Result<Tensor> {
        let ids = crate::decoding::SpecialIds {
            bos: self.bos_id,
            eos: self.eos_id,
            pad: self.pad_id,
        };
        let seqs = crate::decoding::generate(model, &batch.source, ids, cfg)?;
        let l = seqs.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let flat: Vec<i64> = seqs
            .iter()
            .flat_map(|s| (0..l).map(move |i| i64::from(s.get(i).copied().unwrap_or(self.pad_id))))
            .collect();
        Ok(Tensor::from_i64(
            flat,
            &[seqs.len(), l],
            &batch.source.device(),
        )?)
    }
}

impl<M: Seq2SeqModel + Send + Sync + 'static> Task<M> for SequenceToSequence {
    /// Generation with the task's settings ([`crate::decoding::generate`]):
    /// ids `[B, L]`, each row up to its `[EOS]`, then padding.
    fn forward(&self, model: &M, batch: &Seq2SeqBatch) -> Result<Tensor> {
        self.generate(model, batch, &self.generation)
    }

    /// Generation with the call's `generation` settings when it has some.
    fn forward_with(
        &self,
        model: &M,
        batch: &Seq2SeqBatch,
        options: &InferOptions,
    ) -> Result<Tensor> {
        self.generate(
            model,
            batch,
            options.generation.as_ref().unwrap_or(&self.generation),
        )
    }

    fn loss(&self, model: &M, batch: &Seq2SeqBatch) -> Result<Tensor> {
        let (Some(d), Some(l), Some(m)) = (&batch.decoder_ids, &batch.labels, &batch.label_mask)
        else {
            return Err(TrainError::Model(
                "sequence-to-sequence training needs targets".into(),
            ));
        };
        // `[BOS] y` and `y [EOS]` have the same real positions.
        let decoder_mask = m.clone();
        if self.ctc_weight == 0.0 {
            let logits = model.seq2seq_logits(&batch.source, d.clone(), decoder_mask)?;
            return Ok(Tensor::from_burn(token_cross_entropy(
                logits,
                l.clone(),
                m.clone(),
                self.label_smoothing,
            ))?);
        }
        let (logits, ctc) = model.seq2seq_logits_and_ctc(&batch.source, d.clone(), decoder_mask)?;
        let Some(log_probs) = ctc else {
            return Err(TrainError::Config {
                key: "task.ctc_weight".into(),
                reason: format!(
                    "{} needs a model with a CTC head on its encoder (e.g. TrOCR's \
                     [model.architecture] ctc_head = true)",
                    self.ctc_weight
                ),
            });
        };
        let ce = token_cross_entropy(logits, l.clone(), m.clone(), self.label_smoothing);
        let ctc = hybrid_ctc_term(
            log_probs,
            batch.targets.as_deref().unwrap_or(&[]),
            self.pad_id,
        )?;
        let w = self.ctc_weight;
        Ok(Tensor::from_burn(
            ce.mul_scalar(1.0 - w) + ctc.mul_scalar(w),
        )?)
    }
}

/// The CTC term of the hybrid objective: [`ctc_loss_fitting`](super::ctc_loss_fitting)
/// over all `S` encoder positions of every row (0 when no target fits).
///
/// # Shapes
/// log_probs `[B, S, V]` → `[1]`.
fn hybrid_ctc_term(log_probs: BTensor<3>, targets: &[Vec<u32>], blank: u32) -> Result<BTensor<1>> {
    let [b, s, _] = log_probs.dims();
    if targets.len() != b {
        return Err(TrainError::Model(format!(
            "hybrid CTC: {b} encoder rows but {} targets",
            targets.len()
        )));
    }
    let device = log_probs.device();
    Ok(
        super::ctc_loss_fitting(log_probs, targets, &vec![s; b], blank as usize)?
            .unwrap_or_else(|| BTensor::zeros([1], &device)),
    )
}
