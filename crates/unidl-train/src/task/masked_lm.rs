//! Masked-token generation (BERT's masked language modelling, M-g "text
//! generation"): some tokens of a text are hidden and the model predicts
//! them from both sides.
//!
//! - Training and evaluation: in every text without a `[MASK]` of its own,
//!   each real non-special token is chosen with `probability` (at least one
//!   per text); a chosen token becomes `[MASK]` 80 % of the time, a random
//!   token 10 %, itself 10 % (Devlin et al. 2019, §3.1), and the loss is the
//!   cross-entropy of the chosen positions. The choice is drawn from a
//!   generator seeded by the batch's contents, so a batch masks the same way
//!   on every run, and differently whenever shuffling composes it
//!   differently (dynamic masking, as RoBERTa); evaluation batches are
//!   fixed, so its masks are too.
//! - Inference: a text that contains `[MASK]` tokens (`unidl infer --text
//!   "the [MASK] sat on the mat"`) has exactly those filled in.
//! - Metric: `masked_accuracy`, the share of chosen positions whose top-1
//!   prediction is the hidden token.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int, Tensor as BTensor, TensorData};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use unidl_backend::Device;
use unidl_data::text::TextTokenizer;
use unidl_data::{PreparedDataset, Sample};
use unidl_tensor::Tensor;

use super::sequence::token_cross_entropy;
use super::{Task, TaskIo, pad_ids};
use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric, Scores, TaskMetrics};
use crate::infer::{InferOptions, PostProcess};

/// A model that predicts every position's token from the whole text.
pub trait MaskedLanguageModel {
    /// # Shapes
    /// ids `[B, T]` (int), mask `[B, T]` (true on real tokens) → logits `[B, T, V]`.
    fn mlm_logits(&self, ids: BTensor<2, Int>, mask: BTensor<2, Bool>) -> BTensor<3>;
}

/// Masked language modelling over the token input `input`.
#[derive(Debug, Clone)]
pub struct MaskedLanguageModelling {
    /// Name of the [`Input::Tokens`](unidl_data::Input::Tokens) input.
    pub input: String,
    /// Padding id.
    pub pad_id: u32,
    /// `[MASK]`'s id.
    pub mask_id: u32,
    /// Vocabulary size (random replacements are drawn below it).
    pub vocab_size: usize,
    /// Ids never chosen (padding, `[CLS]`, `[SEP]`, …).
    pub special_ids: Vec<u32>,
    /// Share of tokens chosen (default 0.15).
    pub probability: f64,
    /// Longest token sequence the model takes.
    pub max_length: Option<usize>,
    /// Turns predicted ids into text.
    pub tokenizer: Option<Arc<TextTokenizer>>,
}

impl MaskedLanguageModelling {
    /// The task for `tokenizer`'s vocabulary: its `[MASK]`, padding and
    /// special tokens. A tokenizer without `[MASK]` is a
    /// [`TrainError::Config`].
    pub fn for_tokenizer(tokenizer: Arc<TextTokenizer>) -> Result<Self> {
        let mask_id = tokenizer
            .token_to_id(unidl_data::text::MASK)
            .ok_or_else(|| TrainError::Config {
                key: "data.tokenizer".into(),
                reason: format!(
                    "masked language modelling needs a {} token",
                    unidl_data::text::MASK
                ),
            })?;
        let special_ids = unidl_data::text::SPECIAL_TOKENS
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        Ok(MaskedLanguageModelling {
            input: "tokens".into(),
            pad_id: tokenizer.pad_id().unwrap_or(0),
            mask_id,
            vocab_size: tokenizer.vocab_size(),
            special_ids,
            probability: 0.15,
            max_length: None,
            tokenizer: Some(tokenizer),
        })
    }
}

/// A collated masked-LM batch.
#[derive(Debug, Clone)]
pub struct MlmBatch {
    /// `[B, T]`: the ids the model sees (chosen positions replaced).
    pub ids: BTensor<2, Int>,
    /// `[B, T]`, true on real tokens.
    pub mask: BTensor<2, Bool>,
    /// `[B, T]`: the original ids.
    pub targets: BTensor<2, Int>,
    /// `[B, T]`, true at the positions the task chose (the loss's).
    pub predict: BTensor<2, Bool>,
    /// Per position: 0 not predicted, 1 chosen by the task (target known),
    /// 2 a `[MASK]` of the input itself (inference).
    pub kinds: Vec<Vec<u8>>,
    /// The original ids (host), for outputs.
    pub original: Vec<Vec<u32>>,
}

/// One predicted position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskedToken {
    /// Position in the token sequence.
    pub position: usize,
    /// Predicted id.
    pub predicted: u32,
    /// Its text (when a tokenizer is known).
    pub token: Option<String>,
    /// Its probability.
    pub probability: f64,
    /// The hidden id (`None` for a `[MASK]` of the input itself).
    pub target: Option<u32>,
}

/// A text's predicted tokens, and the text with the input's `[MASK]`s filled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilledText {
    /// Every predicted position.
    pub predictions: Vec<MaskedToken>,
    /// The input text with its `[MASK]` tokens replaced by the predictions
    /// (when a tokenizer is known and the input had any).
    pub text: Option<String>,
}

/// Post-processing of [`MaskedLanguageModelling`]'s raw outputs `[B, T, 5]`
/// (per position: kind, input id, predicted id, target id, probability).
#[derive(Debug, Clone, Default)]
pub struct MaskedTokens {
    tokenizer: Option<Arc<TextTokenizer>>,
}

impl PostProcess for MaskedTokens {
    type Output = FilledText;

    fn process(&self, outputs: &Tensor, _o: &InferOptions) -> Result<Vec<FilledText>> {
        let shape = outputs.shape();
        if shape.len() != 3 || shape[2] != 5 {
            return Err(TrainError::Shape {
                what: "masked-token outputs".into(),
                expected: "[batch, positions, 5]".into(),
                got: shape.to_vec(),
            });
        }
        let v = outputs.to_vec_f64()?;
        v.chunks(shape[1] * 5)
            .map(|row| {
                let mut predictions = Vec::new();
                let mut filled = Vec::new();
                let mut had_mask = false;
                for (position, p) in row.chunks(5).enumerate() {
                    let kind = p[0] as u8;
                    let input = p[1] as u32;
                    let predicted = p[2] as u32;
                    if kind == 3 {
                        continue; // padding
                    }
                    if kind == 0 {
                        filled.push(input);
                        continue;
                    }
                    had_mask |= kind == 2;
                    filled.push(if kind == 2 { predicted } else { input });
                    predictions.push(MaskedToken {
                        position,
                        predicted,
                        token: self
                            .tokenizer
                            .as_ref()
                            .and_then(|t| t.id_to_token(predicted)),
                        probability: p[4],
                        target: (kind == 1).then_some(p[3] as u32),
                    });
                }
                let text = match (&self.tokenizer, had_mask) {
                    (Some(t), true) => Some(t.decode(&filled)?),
                    _ => None,
                };
                Ok(FilledText { predictions, text })
            })
            .collect()
    }
}

/// `masked_accuracy` over a data set.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskedLmEvaluation;

struct MaskedAccuracy {
    hits: u64,
    total: u64,
}

impl EvaluationTask<FilledText> for MaskedLmEvaluation {
    fn supports(&self, m: Metric) -> bool {
        m == Metric::MaskedAccuracy
    }
    fn start(
        &self,
        _metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<FilledText>>> {
        Ok(Box::new(MaskedAccuracy { hits: 0, total: 0 }))
    }
}

impl TaskMetrics<FilledText> for MaskedAccuracy {
    fn update(&mut self, outputs: &[FilledText], _samples: &[Sample]) -> Result<()> {
        for p in outputs.iter().flat_map(|o| &o.predictions) {
            if let Some(t) = p.target {
                self.total += 1;
                self.hits += u64::from(t == p.predicted);
            }
        }
        Ok(())
    }
    fn compute(&self) -> Result<Scores> {
        if self.total == 0 {
            return Err(TrainError::Model(
                "masked accuracy: no position was masked".into(),
            ));
        }
        Ok([(
            Metric::MaskedAccuracy.name().to_string(),
            self.hits as f64 / self.total as f64,
        )]
        .into_iter()
        .collect())
    }
}

impl MaskedLanguageModelling {
    /// Chooses the positions of `seqs` and what the model sees there; per
    /// text: the ids shown and each position's kind (see [`MlmBatch::kinds`]).
    fn choose(&self, seqs: &[&[u32]]) -> Result<Vec<(Vec<u32>, Vec<u8>)>> {
        if !(self.probability > 0.0 && self.probability < 1.0) {
            return Err(TrainError::Config {
                key: "task.mask_probability".into(),
                reason: format!("{} is outside (0, 1)", self.probability),
            });
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        seqs.hash(&mut hasher);
        let mut rng = rand::rngs::StdRng::seed_from_u64(hasher.finish());
        Ok(seqs
            .iter()
            .map(|s| {
                let mut shown = s.to_vec();
                if s.contains(&self.mask_id) {
                    let kinds = s
                        .iter()
                        .map(|&t| if t == self.mask_id { 2 } else { 0 })
                        .collect();
                    return (shown, kinds);
                }
                let mut kinds = vec![0u8; s.len()];
                let candidates: Vec<usize> = (0..s.len())
                    .filter(|&i| !self.special_ids.contains(&s[i]))
                    .collect();
                let mut chosen: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|_| rng.random::<f64>() < self.probability)
                    .collect();
                if chosen.is_empty() && !candidates.is_empty() {
                    chosen.push(candidates[rng.random_range(0..candidates.len())]);
                }
                for i in chosen {
                    kinds[i] = 1;
                    let r: f64 = rng.random();
                    if r < 0.8 {
                        shown[i] = self.mask_id;
                    } else if r < 0.9 {
                        shown[i] = rng.random_range(0..self.vocab_size as u32);
                    }
                }
                (shown, kinds)
            })
            .collect())
    }
}

impl TaskIo for MaskedLanguageModelling {
    type Batch = MlmBatch;
    type Post = MaskedTokens;

    fn name(&self) -> &'static str {
        "masked_language_modelling"
    }

    fn loss_name(&self) -> &'static str {
        "masked_token_cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<MlmBatch> {
        let seqs = super::text::token_sequences(samples, &self.input, self.max_length)?;
        let chosen = self.choose(&seqs)?;
        let shown: Vec<&[u32]> = chosen.iter().map(|(s, _)| s.as_slice()).collect();
        let (ids, mask) = pad_ids(&shown, self.pad_id, 1, device)?;
        let (targets, _) = pad_ids(&seqs, self.pad_id, 1, device)?;
        let [b, t] = ids.dims();
        let predict: Vec<bool> = chosen
            .iter()
            .flat_map(|(_, k)| (0..t).map(move |i| k.get(i) == Some(&1)))
            .collect();
        Ok(MlmBatch {
            ids,
            mask,
            targets,
            predict: BTensor::from_data(TensorData::new(predict, [b, t]), device),
            kinds: chosen.iter().map(|(_, k)| k.clone()).collect(),
            original: seqs.iter().map(|s| s.to_vec()).collect(),
        })
    }

    fn post(&self) -> MaskedTokens {
        MaskedTokens {
            tokenizer: self.tokenizer.clone(),
        }
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<FilledText>> {
        Box::new(MaskedLmEvaluation)
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::MaskedAccuracy]
    }
}

impl MaskedLanguageModelling {
    /// Raw outputs `[B, T, 5]` from the logits (see [`MaskedTokens`]).
    fn outputs(&self, logits: BTensor<3>, batch: &MlmBatch) -> Result<Tensor> {
        let [b, t, _] = logits.dims();
        let probs = softmax(logits, 2);
        let best = probs.clone().argmax(2); // [B, T, 1]
        let p = probs.gather(2, best.clone()); // [B, T, 1]
        let best: Vec<i64> = best
            .into_data()
            .convert::<i64>()
            .try_into_vec()
            .map_err(data_err)?;
        let p: Vec<f32> = p
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .map_err(data_err)?;
        let shown: Vec<i64> = batch
            .ids
            .to_data()
            .convert::<i64>()
            .try_into_vec()
            .map_err(data_err)?;
        let mut out = Vec::with_capacity(b * t * 5);
        for i in 0..b {
            for j in 0..t {
                let k = i * t + j;
                let kind = match (batch.kinds[i].get(j), batch.original[i].get(j)) {
                    (Some(&kind), Some(_)) => kind,
                    _ => 3, // padding
                };
                let target = batch.original[i].get(j).copied().unwrap_or(self.pad_id);
                out.extend([
                    f32::from(kind),
                    shown[k] as f32,
                    best[k] as f32,
                    target as f32,
                    p[k],
                ]);
            }
        }
        Ok(Tensor::from_f32(out, &[b, t, 5], &batch.ids.device())?)
    }
}

fn data_err(e: impl std::fmt::Debug) -> TrainError {
    TrainError::Model(format!("reading masked-LM outputs: {e:?}"))
}

impl<M: MaskedLanguageModel + Send + Sync + 'static> Task<M> for MaskedLanguageModelling {
    fn forward(&self, model: &M, batch: &MlmBatch) -> Result<Tensor> {
        let logits = model.mlm_logits(batch.ids.clone(), batch.mask.clone());
        unidl_tensor::trace::record("(model)", &logits.dims());
        self.outputs(logits, batch)
    }

    fn loss(&self, model: &M, batch: &MlmBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &MlmBatch) -> Result<(Tensor, Tensor)> {
        let logits = model.mlm_logits(batch.ids.clone(), batch.mask.clone());
        let loss = token_cross_entropy(
            logits.clone(),
            batch.targets.clone(),
            batch.predict.clone(),
            0.0,
        );
        Ok((
            Tensor::from_burn(loss)?,
            self.outputs(logits.detach(), batch)?,
        ))
    }
}
