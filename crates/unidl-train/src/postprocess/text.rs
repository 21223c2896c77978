//! Text post-processing.
//!
//! - [`TextDecoding`]: token ids `[B, T]` or logits `[B, T, V]` (greedy
//!   argmax per step) → ids up to the end-of-sequence token, special tokens
//!   dropped, and the text through a [`Vocabulary`] (a token list or a
//!   `tokenizers` tokenizer wrapped in [`TextTokenizer`]).
//! - [`Similarity`]: embeddings `[B, D]` → for each, the
//!   [`InferOptions::top_k`] most cosine-similar embeddings of the batch (or
//!   of a fixed gallery).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use unidl_data::text::TextTokenizer;
use unidl_tensor::Tensor;

use super::{config_error, log_softmax_rows, shape_error};
use crate::error::{Result, TrainError};
use crate::infer::{InferOptions, PostProcess};
use crate::outputs::DecodedSequence;

/// How token ids become text.
#[derive(Debug, Clone, Default)]
pub enum Vocabulary {
    /// No text, ids only.
    #[default]
    None,
    /// Token strings by id, joined with the configured separator.
    List(Vec<String>),
    /// A tokenizer's decoder (special tokens skipped).
    Tokenizer(Arc<TextTokenizer>),
}

impl Vocabulary {
    /// Number of ids known, if any.
    pub fn len(&self) -> Option<usize> {
        match self {
            Vocabulary::None => None,
            Vocabulary::List(v) => Some(v.len()),
            Vocabulary::Tokenizer(t) => Some(t.vocab_size()),
        }
    }

    /// Whether the vocabulary has no entries (`None` counts as empty).
    pub fn is_empty(&self) -> bool {
        self.len().unwrap_or(0) == 0
    }

    /// Whether `id` is one of the tokenizer's special tokens.
    fn is_special(&self, id: u32) -> bool {
        match self {
            Vocabulary::Tokenizer(t) => t
                .id_to_token(id)
                .is_some_and(|tok| t.inner().get_added_vocabulary().is_special_token(&tok)),
            _ => false,
        }
    }

    /// The text of `ids` (`None` without a vocabulary).
    pub fn text(&self, ids: &[u32], separator: &str) -> Result<Option<String>> {
        match self {
            Vocabulary::None => Ok(None),
            Vocabulary::List(v) => {
                let mut parts = Vec::with_capacity(ids.len());
                for &id in ids {
                    parts.push(v.get(id as usize).map(String::as_str).ok_or_else(|| {
                        TrainError::Model(format!(
                            "token id {id} is outside the vocabulary of {} entries",
                            v.len()
                        ))
                    })?);
                }
                Ok(Some(parts.join(separator)))
            }
            Vocabulary::Tokenizer(t) => Ok(Some(t.decode(ids)?)),
        }
    }
}

/// Configuration of [`TextDecoding`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// End-of-sequence id: decoding stops before it.
    #[serde(default)]
    pub eos_id: Option<u32>,
    /// Ids dropped from the output (padding, begin-of-sequence, …); a
    /// tokenizer's special tokens are dropped as well.
    #[serde(default)]
    pub special_ids: Vec<u32>,
    /// Joins the tokens of a [`Vocabulary::List`] (default "").
    #[serde(default)]
    pub separator: String,
}

/// Greedy text decoding → one [`DecodedSequence`] per sample.
///
/// `log_prob` is the sum of the chosen tokens' log-softmax over the steps up
/// to and including the end-of-sequence token (0 for id inputs).
#[derive(Debug, Clone)]
pub struct TextDecoding {
    config: TextConfig,
    vocabulary: Vocabulary,
}

impl TextDecoding {
    /// Checks that the configured ids exist in `vocabulary`.
    pub fn new(config: TextConfig, vocabulary: Vocabulary) -> Result<Self> {
        if let Some(n) = vocabulary.len() {
            if let Some(e) = config.eos_id
                && e as usize >= n
            {
                return Err(config_error(
                    "text.eos_id",
                    format!("{e} is outside the vocabulary of {n}"),
                ));
            }
            if let Some(s) = config.special_ids.iter().find(|&&s| s as usize >= n) {
                return Err(config_error(
                    "text.special_ids",
                    format!("{s} is outside the vocabulary of {n}"),
                ));
            }
        }
        Ok(TextDecoding { config, vocabulary })
    }

    /// Decodes one sequence of `(id, log_prob)` steps.
    fn decode(&self, steps: impl Iterator<Item = (u32, f64)>) -> Result<DecodedSequence> {
        let (mut ids, mut log_prob) = (Vec::new(), 0.0);
        for (id, lp) in steps {
            log_prob += lp;
            if Some(id) == self.config.eos_id {
                break;
            }
            if !self.config.special_ids.contains(&id) && !self.vocabulary.is_special(id) {
                ids.push(id);
            }
        }
        let text = self.vocabulary.text(&ids, &self.config.separator)?;
        Ok(DecodedSequence {
            ids,
            text,
            log_prob,
        })
    }
}

impl PostProcess for TextDecoding {
    type Output = DecodedSequence;

    fn process(&self, outputs: &Tensor, _options: &InferOptions) -> Result<Vec<DecodedSequence>> {
        let shape = outputs.shape();
        match shape.len() {
            2 => {
                let (batch, t) = (shape[0], shape[1]);
                let values = outputs.to_vec_f64()?;
                (0..batch)
                    .map(|b| {
                        let row = &values[b * t..(b + 1) * t];
                        if let Some(v) = row.iter().find(|v| {
                            !(**v >= 0.0 && v.fract() == 0.0 && **v <= f64::from(u32::MAX))
                        }) {
                            return Err(TrainError::Model(format!(
                                "token ids must be non-negative integers, sample {b} has {v}"
                            )));
                        }
                        self.decode(row.iter().map(|&v| (v as u32, 0.0)))
                    })
                    .collect()
            }
            3 => {
                let (batch, t, v) = (shape[0], shape[1], shape[2]);
                let lp = log_softmax_rows(&outputs.to_vec_f64()?, v);
                (0..batch)
                    .map(|b| {
                        self.decode((0..t).map(|s| {
                            let row = &lp[(b * t + s) * v..(b * t + s + 1) * v];
                            let mut best = 0;
                            for (i, x) in row.iter().enumerate() {
                                if *x > row[best] {
                                    best = i;
                                }
                            }
                            (best as u32, row[best])
                        }))
                    })
                    .collect()
            }
            _ => Err(shape_error(
                "text outputs",
                "ids [batch, steps] or logits [batch, steps, vocabulary]",
                shape,
            )),
        }
    }
}

/// One similar item: its index (in the batch or gallery) and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neighbour {
    /// Index in the batch (or gallery).
    pub index: usize,
    /// Cosine similarity in [-1, 1].
    pub similarity: f64,
}

/// Cosine similarities of every row of `a` with every row of `b` (rows of
/// `dim` values), row-major `[a_rows, b_rows]`; norms below `1e-8` count as
/// `1e-8` (as `torch.nn.functional.cosine_similarity`).
pub fn cosine_similarity_matrix(a: &[f32], b: &[f32], dim: usize) -> Vec<f64> {
    let unit = |m: &[f32]| -> Vec<Vec<f64>> {
        m.chunks(dim)
            .map(|r| {
                let n = r
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    .sqrt()
                    .max(1e-8);
                r.iter().map(|&v| f64::from(v) / n).collect()
            })
            .collect()
    };
    let (ua, ub) = (unit(a), unit(b));
    ua.iter()
        .flat_map(|x| {
            ub.iter()
                .map(move |y| x.iter().zip(y).map(|(p, q)| p * q).sum())
        })
        .collect()
}

/// Configuration of [`Similarity`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimilarityConfig {
    /// Compare against these embeddings instead of the batch itself.
    #[serde(default)]
    pub gallery: Option<Vec<Vec<f32>>>,
    /// Without a gallery, leave each embedding out of its own list (default true).
    #[serde(default = "yes")]
    pub exclude_self: bool,
}

fn yes() -> bool {
    true
}

impl Default for SimilarityConfig {
    fn default() -> Self {
        SimilarityConfig {
            gallery: None,
            exclude_self: true,
        }
    }
}

/// Embedding similarity → the [`InferOptions::top_k`] nearest [`Neighbour`]s
/// per sample, most similar first (ties by index).
#[derive(Debug, Clone)]
pub struct Similarity {
    config: SimilarityConfig,
}

impl Similarity {
    /// Checks that gallery rows share one non-zero length.
    pub fn new(config: SimilarityConfig) -> Result<Self> {
        if let Some(g) = &config.gallery {
            let d = g.first().map_or(0, Vec::len);
            if d == 0 {
                return Err(config_error("similarity.gallery", "is empty"));
            }
            if let Some(i) = g.iter().position(|r| r.len() != d) {
                return Err(config_error(
                    "similarity.gallery",
                    format!("row {i} has {} values, row 0 has {d}", g[i].len()),
                ));
            }
        }
        Ok(Similarity { config })
    }
}

impl PostProcess for Similarity {
    type Output = Vec<Neighbour>;

    fn process(&self, outputs: &Tensor, options: &InferOptions) -> Result<Vec<Vec<Neighbour>>> {
        let shape = outputs.shape();
        if shape.len() != 2 {
            return Err(shape_error("embeddings", "[batch, dim]", shape));
        }
        let (batch, dim) = (shape[0], shape[1]);
        let values = outputs.to_vec_f32()?;
        let (gallery, exclude) = match &self.config.gallery {
            Some(g) => {
                if g[0].len() != dim {
                    return Err(shape_error(
                        "embeddings",
                        &format!("[batch, {}] like the gallery", g[0].len()),
                        shape,
                    ));
                }
                (g.concat(), false)
            }
            None => (values.clone(), self.config.exclude_self),
        };
        let n = gallery.len() / dim;
        let sims = cosine_similarity_matrix(&values, &gallery, dim);
        Ok((0..batch)
            .map(|i| {
                let row = &sims[i * n..(i + 1) * n];
                let mut idx: Vec<usize> = (0..n).filter(|&j| !(exclude && j == i)).collect();
                idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                idx.into_iter()
                    .take(options.top_k)
                    .map(|j| Neighbour {
                        index: j,
                        similarity: row[j],
                    })
                    .collect()
            })
            .collect())
    }
}
