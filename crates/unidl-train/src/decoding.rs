//! Generation for every encoder–decoder (T5, ByteNet, TrOCR): greedy,
//! beam search with a length penalty, and sampling with temperature,
//! top-k and top-p, each stopping a sequence at `[EOS]` — in one place, over
//! [`Seq2SeqModel`]'s step-by-step decoding (a key/value cache where the
//! model has one).
//!
//! Beam search follows `transformers`' `BeamSearchScorer` with early
//! stopping: each source keeps `num_beams` live hypotheses, expanded by
//! their `2·num_beams` best continuations; a hypothesis that ends in
//! `[EOS]` is scored `sum log p / length^length_penalty` (its length
//! counting the generated tokens, `[EOS]` included) and the source is done
//! when `num_beams` hypotheses have ended; at `max_length` the live
//! hypotheses are scored the same way. The best one is returned.

use burn::tensor::activation::log_softmax;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::task::{Seq2SeqModel, Seq2SeqSource};

mod ctc_prefix;
pub use ctc_prefix::{CtcPrefixScorer, CtcPrefixState};

/// How to generate (B.5.2's per-call settings for generation).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    /// Most tokens generated per sequence (`[EOS]` included).
    #[serde(default = "max_length")]
    pub max_length: usize,
    /// Beams (1: greedy or sampling).
    #[serde(default = "one")]
    pub num_beams: usize,
    /// Exponent of the length in a finished beam's score (> 1 favours long
    /// sequences).
    #[serde(default = "one_f")]
    pub length_penalty: f64,
    /// Sample the next token instead of taking the most likely.
    #[serde(default)]
    pub do_sample: bool,
    /// Divides the logits before sampling.
    #[serde(default = "one_f")]
    pub temperature: f64,
    /// Sample among the `top_k` most likely tokens only (0: all).
    #[serde(default)]
    pub top_k: usize,
    /// Sample among the smallest set of most likely tokens whose
    /// probabilities reach `top_p` (1: all).
    #[serde(default = "one_f")]
    pub top_p: f64,
    /// Seed of the sampler.
    #[serde(default)]
    pub seed: u64,
    /// Joint CTC/attention decoding (Watanabe et al. 2017): the weight λ
    /// of the encoder CTC head's prefix score in each hypothesis' score
    /// `(1 − λ)·log p_attention + λ·log p_CTC`, in [0, 1]; 0 (default)
    /// decodes with the attention decoder alone. Needs a model with a CTC
    /// head ([`Seq2SeqModel::decoding_ctc_log_probs`]); decoding is then a
    /// beam search (of `num_beams`, 1 included), the head's blank being
    /// the padding id.
    #[serde(default)]
    pub ctc_weight: f64,
}

fn max_length() -> usize {
    64
}
fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_length: max_length(),
            num_beams: 1,
            length_penalty: 1.0,
            do_sample: false,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            ctc_weight: 0.0,
        }
    }
}

impl GenerationConfig {
    /// Checks the settings; a [`TrainError::Config`] names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, reason: String| TrainError::Config {
            key: format!("generation.{key}"),
            reason,
        };
        if self.max_length == 0 {
            return Err(bad("max_length", "must be at least 1".into()));
        }
        if self.num_beams == 0 {
            return Err(bad("num_beams", "must be at least 1".into()));
        }
        if self.do_sample && self.num_beams > 1 {
            return Err(bad(
                "do_sample",
                "sampling and beam search do not combine: set num_beams = 1".into(),
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(bad(
                "temperature",
                format!("{} is not positive", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(bad("top_p", format!("{} is outside (0, 1]", self.top_p)));
        }
        if !self.length_penalty.is_finite() {
            return Err(bad("length_penalty", "must be finite".into()));
        }
        if !(0.0..=1.0).contains(&self.ctc_weight) {
            return Err(bad(
                "ctc_weight",
                format!("{} is outside [0, 1]", self.ctc_weight),
            ));
        }
        if self.ctc_weight > 0.0 && self.do_sample {
            return Err(bad(
                "ctc_weight",
                "joint CTC/attention decoding is a beam search: set do_sample = false".into(),
            ));
        }
        Ok(())
    }
}

/// The special ids generation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    /// The decoder's first input.
    pub bos: u32,
    /// Ends a sequence.
    pub eos: u32,
    /// Fills after `[EOS]`.
    pub pad: u32,
}

/// Generates one sequence per source row: the tokens after `[BOS]`, up to
/// and including `[EOS]` (when produced within `max_length`).
pub fn generate<M: Seq2SeqModel>(
    model: &M,
    source: &Seq2SeqSource,
    ids: SpecialIds,
    cfg: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    cfg.validate()?;
    if cfg.ctc_weight > 0.0 {
        let mut start = model.begin_decoding(source)?;
        let lp = model
            .decoding_ctc_log_probs(&mut start)?
            .ok_or_else(|| TrainError::Config {
                key: "generation.ctc_weight".into(),
                reason: "joint CTC/attention decoding needs a model with a CTC head on its \
                     encoder (TrOCR: ctc_head = true)"
                    .into(),
            })?;
        let [b, t, v] = lp.dims();
        if b != source.len() || (ids.pad as usize) >= v {
            return Err(TrainError::Model(format!(
                "CTC head: log-probabilities [{b}, {t}, {v}] for {} sources with blank {}",
                source.len(),
                ids.pad
            )));
        }
        let rows = rows_of(lp.reshape([b * t, v]))?;
        let scorers: Vec<CtcPrefixScorer> = rows
            .chunks(t.max(1))
            .take(b)
            .map(|frames| CtcPrefixScorer::new(frames.concat(), t, v, ids.pad))
            .collect();
        return beam_search(model, source, ids, cfg, start, Some(&scorers));
    }
    if cfg.num_beams > 1 {
        beam_search(model, source, ids, cfg, model.begin_decoding(source)?, None)
    } else {
        greedy_or_sample(model, source, ids, cfg)
    }
}

fn rows_of(logp: burn::tensor::Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let v = logp.dims()[1];
    let flat: Vec<f32> = logp
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .map_err(|e| TrainError::Model(format!("generation: {e:?}")))?;
    Ok(flat.chunks(v).map(<[f32]>::to_vec).collect())
}

/// Log-probabilities of the next token for every live row.
fn next_log_probs<M: Seq2SeqModel>(
    model: &M,
    state: &mut crate::task::DecodingState,
    tokens: &[u32],
    temperature: f64,
) -> Result<Vec<Vec<f32>>> {
    let logits = model.decode_next(state, tokens)?;
    let logits = if temperature != 1.0 {
        logits.div_scalar(temperature)
    } else {
        logits
    };
    rows_of(log_softmax(logits, 1))
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Samples from `logp` restricted by top-k and top-p.
fn sample(logp: &[f32], cfg: &GenerationConfig, rng: &mut rand::rngs::StdRng) -> u32 {
    let mut order: Vec<usize> = (0..logp.len()).collect();
    order.sort_by(|&a, &b| logp[b].total_cmp(&logp[a]));
    if cfg.top_k > 0 {
        order.truncate(cfg.top_k);
    }
    let probs: Vec<f64> = order.iter().map(|&i| f64::from(logp[i]).exp()).collect();
    let mut keep = probs.len();
    if cfg.top_p < 1.0 {
        let total: f64 = probs.iter().sum();
        let mut acc = 0.0;
        for (k, p) in probs.iter().enumerate() {
            acc += p / total;
            if acc >= cfg.top_p {
                keep = k + 1;
                break;
            }
        }
    }
    let total: f64 = probs[..keep].iter().sum();
    let mut r = rng.random::<f64>() * total;
    for k in 0..keep {
        r -= probs[k];
        if r <= 0.0 {
            return order[k] as u32;
        }
    }
    order[keep - 1] as u32
}

fn greedy_or_sample<M: Seq2SeqModel>(
    model: &M,
    source: &Seq2SeqSource,
    ids: SpecialIds,
    cfg: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    let b = source.len();
    let mut state = model.begin_decoding(source)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut done = vec![false; b];
    let mut last = vec![ids.bos; b];
    for _ in 0..cfg.max_length {
        let temperature = if cfg.do_sample { cfg.temperature } else { 1.0 };
        let rows = next_log_probs(model, &mut state, &last, temperature)?;
        for (k, row) in rows.iter().enumerate() {
            let next = if done[k] {
                ids.pad
            } else if cfg.do_sample {
                sample(row, cfg, &mut rng)
            } else {
                argmax(row)
            };
            if !done[k] {
                out[k].push(next);
                done[k] = next == ids.eos;
            }
            last[k] = next;
        }
        if done.iter().all(|d| *d) {
            break;
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    /// The score beams compete on: the attention log-probability, or the
    /// joint score with a CTC head.
    logp: f64,
    /// The attention decoder's log-probability (joint decoding).
    att: f64,
    /// The CTC prefix state (joint decoding).
    ctc: Option<CtcPrefixState>,
}

impl Hypothesis {
    fn dead() -> Self {
        Hypothesis {
            tokens: Vec::new(),
            logp: f64::NEG_INFINITY,
            att: f64::NEG_INFINITY,
            ctc: None,
        }
    }
}

fn score(h: &Hypothesis, penalty: f64) -> f64 {
    h.logp / (h.tokens.len().max(1) as f64).powf(penalty)
}

/// Beam search from `start` (`begin_decoding`'s state); with `ctc` (one
/// scorer per source) every hypothesis is scored jointly,
/// `(1 − λ)·attention + λ·CTC prefix score`.
fn beam_search<M: Seq2SeqModel>(
    model: &M,
    source: &Seq2SeqSource,
    ids: SpecialIds,
    cfg: &GenerationConfig,
    start: crate::task::DecodingState,
    ctc: Option<&[CtcPrefixScorer]>,
) -> Result<Vec<Vec<u32>>> {
    let lambda = cfg.ctc_weight;
    let (b, k) = (source.len(), cfg.num_beams);
    // row r·k + j is beam j of source r
    let rows: Vec<usize> = (0..b).flat_map(|r| std::iter::repeat_n(r, k)).collect();
    let mut state = model.reorder(start, &rows)?;
    // only the first beam of each source is live at the start (the others
    // would duplicate it)
    let mut beams: Vec<Vec<Hypothesis>> = (0..b)
        .map(|r| {
            (0..k)
                .map(|j| {
                    if j == 0 {
                        Hypothesis {
                            tokens: Vec::new(),
                            logp: 0.0,
                            att: 0.0,
                            ctc: ctc.map(|s| s[r].initial()),
                        }
                    } else {
                        Hypothesis::dead()
                    }
                })
                .collect()
        })
        .collect();
    let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); b];
    let mut done = vec![false; b];
    let mut last = vec![ids.bos; b * k];
    for step in 0..cfg.max_length {
        let logp = next_log_probs(model, &mut state, &last, 1.0)?;
        let mut keep_rows = Vec::with_capacity(b * k);
        for r in 0..b {
            if done[r] {
                // keep its rows alive with padding so the batch shape stays
                for j in 0..k {
                    keep_rows.push(r * k + j);
                    last[r * k + j] = ids.pad;
                }
                continue;
            }
            // the 2k best continuations over every live beam:
            // (score, beam, token, attention log-prob, CTC prefix score)
            let mut cands: Vec<(f64, usize, u32, f64, f64)> = Vec::new();
            for (j, h) in beams[r].iter().enumerate() {
                if h.logp == f64::NEG_INFINITY {
                    continue;
                }
                let row = &logp[r * k + j];
                let joint: Vec<(f64, f64, f64)> = match (&h.ctc, ctc) {
                    (Some(state), Some(scorers)) => {
                        let psi = scorers[r].scores(state, ids.eos);
                        row.iter()
                            .zip(psi)
                            .map(|(&a, p)| {
                                let att = h.att + f64::from(a);
                                ((1.0 - lambda) * att + lambda * p, att, p)
                            })
                            .collect()
                    }
                    _ => row
                        .iter()
                        .map(|&a| {
                            let att = h.att + f64::from(a);
                            (att, att, 0.0)
                        })
                        .collect(),
                };
                let mut order: Vec<usize> = (0..joint.len()).collect();
                let n = (2 * k).min(joint.len());
                order.select_nth_unstable_by(n - 1, |&a, &c| joint[c].0.total_cmp(&joint[a].0));
                for &t in &order[..n] {
                    let (score, att, psi) = joint[t];
                    if score > f64::NEG_INFINITY {
                        cands.push((score, j, t as u32, att, psi));
                    }
                }
            }
            cands.sort_by(|a, c| c.0.total_cmp(&a.0));
            let mut next: Vec<(Hypothesis, usize)> = Vec::with_capacity(k);
            for (lp, j, t, att, psi) in cands {
                let mut tokens = beams[r][j].tokens.clone();
                tokens.push(t);
                let ctc_state = match (&beams[r][j].ctc, ctc) {
                    (Some(state), Some(scorers)) if t != ids.eos => {
                        Some(scorers[r].extend(state, t, psi))
                    }
                    _ => None,
                };
                let h = Hypothesis {
                    tokens,
                    logp: lp,
                    att,
                    ctc: ctc_state,
                };
                if t == ids.eos {
                    finished[r].push(h);
                } else {
                    next.push((h, j));
                }
                if next.len() == k || finished[r].len() >= k {
                    break;
                }
            }
            if finished[r].len() >= k || next.is_empty() || step + 1 == cfg.max_length {
                done[r] = true;
                if step + 1 == cfg.max_length || finished[r].is_empty() {
                    // out of length: the live hypotheses compete as they are
                    finished[r].extend(next.iter().map(|(h, _)| h.clone()));
                }
            }
            while next.len() < k {
                // fewer live continuations than beams: pad with dead ones
                next.push((Hypothesis::dead(), 0));
            }
            for (j, (h, from)) in next.into_iter().enumerate() {
                keep_rows.push(r * k + from);
                last[r * k + j] = h.tokens.last().copied().unwrap_or(ids.pad);
                beams[r][j] = h;
            }
        }
        if done.iter().all(|d| *d) {
            break;
        }
        state = model.reorder(state, &keep_rows)?;
    }
    Ok(finished
        .into_iter()
        .zip(beams)
        .map(|(f, live)| {
            let pool = if f.is_empty() { live } else { f };
            pool.into_iter()
                .filter(|h| h.logp > f64::NEG_INFINITY)
                .max_by(|a, c| {
                    score(a, cfg.length_penalty).total_cmp(&score(c, cfg.length_penalty))
                })
                .map(|h| h.tokens)
                .unwrap_or_default()
        })
        .collect())
}
