//! Decoding a transducer: greedy and time-synchronous beam search.

use std::collections::HashMap;

use burn::tensor::Tensor;
use unidl_backend::Device;

use unidl_train::log_add;

use super::{LstmState, Rnnt};

/// Labels the greedy decoder emits at one frame before it moves on.
pub const MAX_SYMBOLS_PER_FRAME: usize = 10;

/// Labels the beam search adds to a hypothesis at one frame (as many as
/// greedy: a trained transducer over characters emits a short word in one
/// or two frames, and a lower cap makes the beam pay for splitting it).
pub const BEAM_SYMBOLS_PER_FRAME: usize = MAX_SYMBOLS_PER_FRAME;

/// A hypothesis of the beam search.
struct Hyp {
    tokens: Vec<u32>,
    score: f64,
    /// The predictor's output for `tokens` `[1, E]` and its state.
    pred: Tensor<2>,
    state: Vec<LstmState>,
}

impl Rnnt {
    /// Decodes a batch: label ids per sample (the blank never among them).
    /// `beam_width` 1 is greedy, more a beam search (see the [module docs](super)).
    ///
    /// # Shapes
    /// `x`: `[B, T, input_dim]` (+ lengths) → `B` label sequences.
    pub fn decode(&self, x: Tensor<3>, lengths: &[usize], beam_width: usize) -> Vec<Vec<u32>> {
        let device = x.device();
        let (enc, n) = self.transcriber.forward(x, lengths);
        let [b, _, e] = enc.dims();
        (0..b)
            .map(|k| {
                let frames = enc
                    .clone()
                    .slice([k..k + 1, 0..n[k], 0..e])
                    .reshape([n[k], e]);
                if beam_width <= 1 {
                    self.greedy(frames, &device)
                } else {
                    self.beam(frames, beam_width, &device)
                }
            })
            .collect()
    }

    /// Greedy search over one sample's frames `[N, E]`: with the predictor
    /// fixed between emissions, the joiner scores every remaining frame at
    /// once and the first non-blank best label is the next emission.
    fn greedy(&self, frames: Tensor<2>, device: &Device) -> Vec<u32> {
        let [n, e] = frames.dims();
        let (mut pred, mut state) = self.predict(&[self.blank as u32], None, device);
        let mut tokens = Vec::new();
        let (mut t, mut here) = (0usize, 0usize);
        while t < n {
            if here >= MAX_SYMBOLS_PER_FRAME {
                (t, here) = (t + 1, 0);
                continue;
            }
            let lp = self
                .joiner
                .rows(frames.clone().slice([t..n, 0..e]), pred.clone());
            let v = lp.dims()[1];
            let host = host_f32(lp);
            let next = host.chunks(v).enumerate().find_map(|(r, row)| {
                let best = argmax(row);
                (best != self.blank).then_some((r, best))
            });
            let Some((r, best)) = next else { break };
            if r > 0 {
                (t, here) = (t + r, 0);
            }
            tokens.push(best as u32);
            here += 1;
            (pred, state) = self.predict(&[best as u32], Some(state), device);
        }
        tokens
    }

    /// Beam search over one sample's frames `[N, E]`, time-synchronous
    /// (Saon et al. 2020): at each frame, hypotheses are extended by up to
    /// [`BEAM_SYMBOLS_PER_FRAME`] labels (the `width` best kept after each
    /// expansion), and every one of them closes the frame with a blank;
    /// closed hypotheses with equal label sequences merge (log-sum of their
    /// probabilities) and the `width` best go on to the next frame. Scores
    /// are the transducer's own path probabilities (a blank ends every frame);
    /// the result is the final hypothesis of the best score.
    fn beam(&self, frames: Tensor<2>, width: usize, device: &Device) -> Vec<u32> {
        let [n, e] = frames.dims();
        let (pred, state) = self.predict(&[self.blank as u32], None, device);
        let mut hyps = vec![Hyp {
            tokens: Vec::new(),
            score: 0.0,
            pred,
            state,
        }];
        for t in 0..n {
            let frame = frames.clone().slice([t..t + 1, 0..e]);
            let mut closed: HashMap<Vec<u32>, Hyp> = HashMap::new();
            let mut open = hyps;
            for step in 0..=BEAM_SYMBOLS_PER_FRAME {
                if open.is_empty() {
                    break;
                }
                let preds = Tensor::cat(open.iter().map(|h| h.pred.clone()).collect(), 0);
                let lp = self
                    .joiner
                    .rows(frame.clone().expand([open.len(), e]), preds);
                let v = lp.dims()[1];
                let host = host_f32(lp);
                // (parent, label, score) of the extensions
                let mut grow: Vec<(usize, u32, f64)> = Vec::new();
                for (i, h) in open.iter().enumerate() {
                    let row = &host[i * v..(i + 1) * v];
                    if step < BEAM_SYMBOLS_PER_FRAME {
                        for (c, &l) in row.iter().enumerate() {
                            if c != self.blank {
                                grow.push((i, c as u32, h.score + f64::from(l)));
                            }
                        }
                    }
                    let score = h.score + f64::from(row[self.blank]);
                    match closed.get_mut(&h.tokens) {
                        Some(c) => c.score = log_add(c.score, score),
                        None => {
                            closed.insert(
                                h.tokens.clone(),
                                Hyp {
                                    tokens: h.tokens.clone(),
                                    score,
                                    pred: h.pred.clone(),
                                    state: h.state.clone(),
                                },
                            );
                        }
                    }
                }
                grow.sort_by(|a, b| b.2.total_cmp(&a.2));
                grow.truncate(width);
                // an extension worse than `width` closed hypotheses cannot survive
                let mut scores: Vec<f64> = closed.values().map(|h| h.score).collect();
                scores.sort_by(|a, b| b.total_cmp(a));
                if let Some(&floor) = scores.get(width - 1) {
                    grow.retain(|g| g.2 > floor);
                }
                open = self.extend(&open, &grow, device);
            }
            let mut next: Vec<Hyp> = closed.into_values().collect();
            next.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then_with(|| a.tokens.cmp(&b.tokens))
            });
            next.truncate(width);
            hyps = next;
        }
        hyps.into_iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|h| h.tokens)
            .unwrap_or_default()
    }

    /// The hypotheses `open[parent] + label` with their scores, their
    /// predictor steps batched.
    fn extend(&self, open: &[Hyp], grow: &[(usize, u32, f64)], device: &Device) -> Vec<Hyp> {
        if grow.is_empty() {
            return Vec::new();
        }
        let layers = open[0].state.len();
        let state: Vec<LstmState> = (0..layers)
            .map(|l| {
                let (hs, cs): (Vec<_>, Vec<_>) =
                    grow.iter().map(|g| open[g.0].state[l].clone()).unzip();
                (Tensor::cat(hs, 0), Tensor::cat(cs, 0))
            })
            .collect();
        let ids: Vec<u32> = grow.iter().map(|g| g.1).collect();
        let (p, s) = self.predict(&ids, Some(state), device);
        let [_, e] = p.dims();
        let h = s[0].0.dims()[1];
        grow.iter()
            .enumerate()
            .map(|(j, &(parent, label, score))| {
                let one = |x: &Tensor<2>| x.clone().slice([j..j + 1, 0..h]);
                let mut tokens = open[parent].tokens.clone();
                tokens.push(label);
                Hyp {
                    tokens,
                    score,
                    pred: p.clone().slice([j..j + 1, 0..e]),
                    state: s.iter().map(|(hh, cc)| (one(hh), one(cc))).collect(),
                }
            })
            .collect()
    }
}

fn host_f32<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float data")
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}
