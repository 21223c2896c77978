//! CTC decoding of speech (or handwriting) models (Graves et al., 2006).
//!
//! Input: per-step scores `[B, T, V]` (or `[T, B, V]`), logits or
//! log-probabilities — a log-softmax is applied over `V` first, which leaves
//! log-probabilities unchanged.
//!
//! - **Greedy**: the best label per step, repeats collapsed, blanks dropped;
//!   `log_prob` is the log-probability of that single best path.
//! - **Prefix beam search** (Hannun et al., 2014): keeps the `width` most
//!   probable label prefixes, each with separate log-probabilities of ending
//!   in a blank or in a label, merges paths that collapse to the same prefix
//!   with log-sum-exp, and extends a prefix by its own last label only through
//!   a blank (`a·a` collapses, `a·∅·a` gives `aa`). `log_prob` is the total
//!   probability of the best prefix over all its alignments. No language model.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unidl_tensor::Tensor;

use super::text::Vocabulary;
use super::{config_error, log_softmax_rows, shape_error};
use crate::error::Result;
use crate::infer::{InferOptions, PostProcess};
use crate::outputs::DecodedSequence;

/// Axis order of the CTC scores.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CtcLayout {
    /// `[batch, time, vocabulary]`.
    #[default]
    Btv,
    /// `[time, batch, vocabulary]` (PyTorch's `ctc_loss` layout).
    Tbv,
}

/// The CTC search.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CtcMethod {
    /// Best label per step.
    #[default]
    Greedy,
    /// Prefix beam search.
    Beam {
        /// Prefixes kept per step.
        width: usize,
    },
}

/// Configuration of [`CtcDecoding`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CtcConfig {
    /// Index of the blank label (default 0).
    #[serde(default)]
    pub blank: usize,
    /// Axis order (default `btv`).
    #[serde(default)]
    pub layout: CtcLayout,
    /// Greedy or beam search (default greedy).
    #[serde(default)]
    pub method: CtcMethod,
    /// Joins the labels of a [`Vocabulary::List`] (default "").
    #[serde(default)]
    pub separator: String,
}

/// CTC decoding → one [`DecodedSequence`] per sample.
#[derive(Debug, Clone)]
pub struct CtcDecoding {
    config: CtcConfig,
    vocabulary: Vocabulary,
}

impl CtcDecoding {
    /// Validates `config` against `vocabulary`.
    pub fn new(config: CtcConfig, vocabulary: Vocabulary) -> Result<Self> {
        if let CtcMethod::Beam { width: 0 } = config.method {
            return Err(config_error("ctc.method.width", "must be at least 1"));
        }
        if let Some(n) = vocabulary.len()
            && config.blank >= n
        {
            return Err(config_error(
                "ctc.blank",
                format!("{} is outside the vocabulary of {n}", config.blank),
            ));
        }
        Ok(CtcDecoding { config, vocabulary })
    }
}

/// Greedy CTC decoding of one sequence of log-probabilities (`steps × v`,
/// row-major): the labels and the best path's log-probability.
pub fn ctc_greedy(log_probs: &[f64], v: usize, blank: usize) -> (Vec<usize>, f64) {
    let (mut labels, mut total, mut prev) = (Vec::new(), 0.0, None);
    for row in log_probs.chunks(v) {
        let mut best = 0;
        for (i, x) in row.iter().enumerate() {
            if *x > row[best] {
                best = i;
            }
        }
        total += row[best];
        if best != blank && prev != Some(best) {
            labels.push(best);
        }
        prev = Some(best);
    }
    (labels, total)
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    a.max(b) + (-(a - b).abs()).exp().ln_1p()
}

/// Prefix beam search over one sequence of log-probabilities (`steps × v`,
/// row-major) with `width` beams: the best labelling and its total
/// log-probability. Beams with equal scores are ordered by their labels, so
/// the result is deterministic.
pub fn ctc_prefix_beam_search(
    log_probs: &[f64],
    v: usize,
    blank: usize,
    width: usize,
) -> (Vec<usize>, f64) {
    const NEG: f64 = f64::NEG_INFINITY;
    // (prefix, log P(ends in blank), log P(ends in a label))
    let mut beams: Vec<(Vec<usize>, f64, f64)> = vec![(Vec::new(), 0.0, NEG)];
    for row in log_probs.chunks(v) {
        let mut next: HashMap<Vec<usize>, (f64, f64)> = HashMap::new();
        for (prefix, pb, pnb) in &beams {
            for (c, &p) in row.iter().enumerate() {
                if c == blank {
                    let e = next.entry(prefix.clone()).or_insert((NEG, NEG));
                    e.0 = log_add(e.0, log_add(pb + p, pnb + p));
                    continue;
                }
                let mut extended = prefix.clone();
                extended.push(c);
                if prefix.last() == Some(&c) {
                    // a repeat extends only through a blank; without one it collapses
                    let e = next.entry(extended).or_insert((NEG, NEG));
                    e.1 = log_add(e.1, pb + p);
                    let s = next.entry(prefix.clone()).or_insert((NEG, NEG));
                    s.1 = log_add(s.1, pnb + p);
                } else {
                    let e = next.entry(extended).or_insert((NEG, NEG));
                    e.1 = log_add(e.1, log_add(pb + p, pnb + p));
                }
            }
        }
        let mut all: Vec<(Vec<usize>, f64, f64)> =
            next.into_iter().map(|(k, (b, nb))| (k, b, nb)).collect();
        all.sort_by(|x, y| {
            log_add(y.1, y.2)
                .total_cmp(&log_add(x.1, x.2))
                .then_with(|| x.0.cmp(&y.0))
        });
        all.truncate(width);
        beams = all;
    }
    beams
        .into_iter()
        .next()
        .map(|(prefix, b, nb)| (prefix, log_add(b, nb)))
        .unwrap_or((Vec::new(), 0.0))
}

impl PostProcess for CtcDecoding {
    type Output = DecodedSequence;

    fn process(&self, outputs: &Tensor, _options: &InferOptions) -> Result<Vec<DecodedSequence>> {
        let shape = outputs.shape();
        let expected = match self.config.layout {
            CtcLayout::Btv => "[batch, time, vocabulary]",
            CtcLayout::Tbv => "[time, batch, vocabulary]",
        };
        if shape.len() != 3 {
            return Err(shape_error("CTC scores", expected, shape));
        }
        let v = shape[2];
        if self.config.blank >= v {
            return Err(shape_error(
                "CTC scores",
                &format!(
                    "{expected} with more than blank = {} labels",
                    self.config.blank
                ),
                shape,
            ));
        }
        if let Some(n) = self.vocabulary.len()
            && n != v
        {
            return Err(shape_error(
                "CTC scores",
                &format!("{expected} with vocabulary = {n} (the vocabulary's size)"),
                shape,
            ));
        }
        let (batch, t) = match self.config.layout {
            CtcLayout::Btv => (shape[0], shape[1]),
            CtcLayout::Tbv => (shape[1], shape[0]),
        };
        let lp = log_softmax_rows(&outputs.to_vec_f64()?, v);
        (0..batch)
            .map(|b| {
                let seq: Vec<f64> = match self.config.layout {
                    CtcLayout::Btv => lp[b * t * v..(b + 1) * t * v].to_vec(),
                    CtcLayout::Tbv => (0..t)
                        .flat_map(|s| {
                            lp[(s * batch + b) * v..(s * batch + b + 1) * v]
                                .iter()
                                .copied()
                        })
                        .collect(),
                };
                let (labels, log_prob) = match self.config.method {
                    CtcMethod::Greedy => ctc_greedy(&seq, v, self.config.blank),
                    CtcMethod::Beam { width } => {
                        ctc_prefix_beam_search(&seq, v, self.config.blank, width)
                    }
                };
                let ids: Vec<u32> = labels.into_iter().map(|l| l as u32).collect();
                let text = self.vocabulary.text(&ids, &self.config.separator)?;
                Ok(DecodedSequence {
                    ids,
                    text,
                    log_prob,
                })
            })
            .collect()
    }
}
