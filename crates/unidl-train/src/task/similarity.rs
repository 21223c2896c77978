//! Text similarity (M-g): a sentence encoder maps each text to an embedding
//! whose cosine similarity says how alike two texts are.
//!
//! - Inference: every text's embedding and its nearest texts of the same
//!   call ([`SentenceEmbeddings`]), so `unidl infer --text A --text B`
//!   prints cos(A, B).
//! - Training: the supervised contrastive loss of Khosla et al. 2020 on the
//!   batch — for each text with another of its class in the batch,
//!   `−mean_p log(exp(s_ip/τ) / Σ_{a≠i} exp(s_ia/τ))` over cosine
//!   similarities `s` and those positives `p`; texts of other classes are
//!   the negatives.
//! - Evaluation: `neighbour_accuracy`, the share of texts whose nearest
//!   other text of the whole evaluated set (cosine) has their label.

use burn::tensor::{Bool, Int, Tensor as BTensor};
use serde::Serialize;
use unidl_backend::Device;
use unidl_data::{PreparedDataset, Sample};
use unidl_tensor::Tensor;

use super::classification::ClassTargets;
use super::text::TokenBatch;
use super::{EvaluationTask, Task, TaskIo, pad_ids};
use crate::error::{Result, TrainError};
use crate::eval::TaskMetrics;
use crate::eval::{Metric, Scores};
use crate::infer::{InferOptions, PostProcess};
use crate::postprocess::{Neighbour, Similarity, SimilarityConfig, cosine_similarity_matrix};

/// A model that embeds token sequences.
pub trait SentenceEncoder {
    /// # Shapes
    /// ids `[B, T]` (int), mask `[B, T]` (true on real tokens) → embeddings `[B, D]`.
    fn embed_tokens(&self, ids: BTensor<2, Int>, mask: BTensor<2, Bool>) -> BTensor<2>;
}

/// Text similarity over the token input `input`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSimilarity {
    /// Class names by index (training and evaluation labels).
    pub class_names: Vec<String>,
    /// Name of the [`Input::Tokens`](unidl_data::Input::Tokens) input.
    pub input: String,
    /// Padding id.
    pub pad_id: u32,
    /// Longest token sequence the model takes (see
    /// [`TextClassification::max_length`](super::TextClassification)).
    pub max_length: Option<usize>,
    /// Temperature τ of the contrastive loss (default 0.05).
    pub temperature: f64,
}

impl Default for TextSimilarity {
    fn default() -> Self {
        TextSimilarity {
            class_names: Vec::new(),
            input: "tokens".into(),
            pad_id: 0,
            max_length: None,
            temperature: 0.05,
        }
    }
}

/// One text's embedding and its nearest texts of the same call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentenceEmbedding {
    /// The embedding.
    pub embedding: Vec<f32>,
    /// The most similar other texts (index in the call, cosine), most similar first.
    pub neighbours: Vec<Neighbour>,
}

/// Post-processing of embeddings `[B, D]`: each row with its
/// [`InferOptions::top_k`] nearest other rows.
#[derive(Debug, Clone)]
pub struct SentenceEmbeddings(Similarity);

impl Default for SentenceEmbeddings {
    fn default() -> Self {
        SentenceEmbeddings(Similarity::new(SimilarityConfig::default()).expect("no gallery"))
    }
}

impl PostProcess for SentenceEmbeddings {
    type Output = SentenceEmbedding;

    fn process(&self, outputs: &Tensor, options: &InferOptions) -> Result<Vec<SentenceEmbedding>> {
        let neighbours = self.0.process(outputs, options)?;
        let dim = outputs.shape()[1];
        let values = outputs.to_vec_f32()?;
        Ok(values
            .chunks(dim.max(1))
            .zip(neighbours)
            .map(|(e, neighbours)| SentenceEmbedding {
                embedding: e.to_vec(),
                neighbours,
            })
            .collect())
    }
}

/// `neighbour_accuracy` over a data set.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimilarityEvaluation;

struct NeighbourMetrics {
    embeddings: Vec<f32>,
    dim: usize,
    labels: Vec<usize>,
}

impl EvaluationTask<SentenceEmbedding> for SimilarityEvaluation {
    fn supports(&self, m: Metric) -> bool {
        m == Metric::NeighbourAccuracy
    }
    fn start(
        &self,
        _metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<SentenceEmbedding>>> {
        Ok(Box::new(NeighbourMetrics {
            embeddings: Vec::new(),
            dim: 0,
            labels: Vec::new(),
        }))
    }
}

impl TaskMetrics<SentenceEmbedding> for NeighbourMetrics {
    fn update(&mut self, outputs: &[SentenceEmbedding], samples: &[Sample]) -> Result<()> {
        for (o, s) in outputs.iter().zip(samples) {
            let label = s.targets.label.ok_or_else(|| {
                TrainError::Model(format!(
                    "{}: neighbour accuracy needs a label on every sample",
                    s.source
                ))
            })?;
            if self.dim == 0 {
                self.dim = o.embedding.len();
            }
            self.embeddings.extend(&o.embedding);
            self.labels.push(label);
        }
        Ok(())
    }

    fn compute(&self) -> Result<Scores> {
        let n = self.labels.len();
        if n < 2 {
            return Err(TrainError::Model(
                "neighbour accuracy needs at least two samples".into(),
            ));
        }
        let sims = cosine_similarity_matrix(&self.embeddings, &self.embeddings, self.dim);
        let hits = (0..n)
            .filter(|&i| {
                let row = &sims[i * n..(i + 1) * n];
                let nearest = (0..n)
                    .filter(|&j| j != i)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .expect("n ≥ 2");
                self.labels[nearest] == self.labels[i]
            })
            .count();
        Ok([(
            Metric::NeighbourAccuracy.name().to_string(),
            hits as f64 / n as f64,
        )]
        .into_iter()
        .collect())
    }
}

impl TaskIo for TextSimilarity {
    type Batch = TokenBatch;
    type Post = SentenceEmbeddings;

    fn name(&self) -> &'static str {
        "text_similarity"
    }

    fn loss_name(&self) -> &'static str {
        "supervised_contrastive"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<TokenBatch> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(TrainError::Config {
                key: "task.temperature".into(),
                reason: format!("{} is not a positive number", self.temperature),
            });
        }
        let seqs = super::text::token_sequences(samples, &self.input, self.max_length)?;
        let (ids, mask) = pad_ids(&seqs, self.pad_id, 1, device)?;
        Ok(TokenBatch {
            ids,
            mask,
            targets: ClassTargets::collate(samples, device)?,
        })
    }

    fn post(&self) -> SentenceEmbeddings {
        SentenceEmbeddings::default()
    }

    fn evaluation(&self) -> Box<dyn EvaluationTask<SentenceEmbedding>> {
        Box::new(SimilarityEvaluation)
    }

    fn default_metrics(&self) -> Vec<Metric> {
        vec![Metric::NeighbourAccuracy]
    }
}

/// The supervised contrastive loss of `embeddings` `[B, D]` with `labels`
/// at temperature `tau` (see the module documentation); anchors with no
/// positive in the batch do not count, and a batch without any positive
/// pair gives 0 (still attached to the graph).
pub fn supervised_contrastive_loss(
    embeddings: BTensor<2>,
    labels: &[usize],
    tau: f64,
) -> BTensor<1> {
    let [b, _] = embeddings.dims();
    let device = embeddings.device();
    let norm = embeddings
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-8);
    let unit = embeddings / norm;
    let logits = unit.clone().matmul(unit.transpose()).div_scalar(tau); // [B, B]
    let eye: Vec<bool> = (0..b * b).map(|k| k / b == k % b).collect();
    let eye = BTensor::<2, Bool>::from_data(burn::tensor::TensorData::new(eye, [b, b]), &device);
    // log-softmax over the other texts of the batch
    let masked = logits.mask_fill(eye, f32::MIN);
    let log_prob = burn::tensor::activation::log_softmax(masked, 1);
    let mut pos = vec![0f32; b * b];
    let mut anchors = vec![0f32; b];
    for i in 0..b {
        let count = (0..b).filter(|&j| j != i && labels[j] == labels[i]).count();
        if count > 0 {
            anchors[i] = 1.0;
            for j in (0..b).filter(|&j| j != i && labels[j] == labels[i]) {
                pos[i * b + j] = 1.0 / count as f32;
            }
        }
    }
    let n_anchors: f32 = anchors.iter().sum();
    let pos = BTensor::<2>::from_data(burn::tensor::TensorData::new(pos, [b, b]), &device);
    // the positives' log-probabilities (non-positives weigh 0; the diagonal's
    // lowest-value logit is replaced so that 0·(−huge) stays 0)
    let per_anchor = (log_prob.clamp_min(-1e4) * pos).sum_dim(1).reshape([b]); // [B]
    if n_anchors == 0.0 {
        return per_anchor.sum().mul_scalar(0.0);
    }
    per_anchor.sum().div_scalar(-n_anchors)
}

impl<M: SentenceEncoder + Send + Sync + 'static> Task<M> for TextSimilarity {
    fn forward(&self, model: &M, batch: &TokenBatch) -> Result<Tensor> {
        let e = model.embed_tokens(batch.ids.clone(), batch.mask.clone());
        unidl_tensor::trace::record("(model)", &e.dims());
        Ok(Tensor::from_burn(e)?)
    }

    fn loss(&self, model: &M, batch: &TokenBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &TokenBatch) -> Result<(Tensor, Tensor)> {
        let labels = batch.targets.label_values.as_ref().ok_or_else(|| {
            TrainError::Model(format!(
                "text similarity trains on labelled texts; {} has none",
                batch
                    .targets
                    .sources
                    .first()
                    .map_or("the batch", String::as_str)
            ))
        })?;
        let e = model.embed_tokens(batch.ids.clone(), batch.mask.clone());
        let loss = supervised_contrastive_loss(e.clone(), labels, self.temperature);
        Ok((Tensor::from_burn(loss)?, Tensor::from_burn(e)?))
    }
}
