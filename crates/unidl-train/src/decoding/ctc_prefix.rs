//! CTC prefix scores for joint CTC/attention decoding (Watanabe et al.
//! 2017, "Hybrid CTC/Attention Architecture for End-to-End Speech
//! Recognition", §3.2; the recursion ESPnet's `CTCPrefixScore` implements).
//!
//! For a label prefix `g` over `T` frames of CTC log-probabilities `x`,
//! `r_n[t]` and `r_b[t]` are the log-probabilities of all alignments of
//! frames `0..=t` that spell `g` and end in its last label or in a blank.
//! The prefix score `ψ(g·c)` is the log-probability of every alignment
//! whose first `|g| + 1` labels are `g·c`, whatever follows; `ψ(g·[EOS])`
//! is the probability that the whole input spells exactly `g`.

use crate::log_add;

/// The CTC state of one hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct CtcPrefixState {
    /// Alignments of frames `0..=t` spelling the prefix, ending in its last label.
    pub r_n: Vec<f64>,
    /// The same, ending in a blank.
    pub r_b: Vec<f64>,
    /// The prefix score `ψ` of the prefix itself.
    pub score: f64,
    /// The prefix's last label (`None`: empty prefix).
    pub last: Option<u32>,
}

/// CTC log-probabilities of one source, `frames × vocabulary`, and its blank.
#[derive(Debug, Clone)]
pub struct CtcPrefixScorer {
    x: Vec<f32>,
    frames: usize,
    vocab: usize,
    blank: u32,
}

impl CtcPrefixScorer {
    /// `log_probs`: `frames × vocab` row-major (log-softmax over the
    /// vocabulary); `blank` the CTC blank id.
    ///
    /// # Panics
    /// When `log_probs` is not `frames × vocab` or `blank` is outside it.
    pub fn new(log_probs: Vec<f32>, frames: usize, vocab: usize, blank: u32) -> Self {
        assert_eq!(log_probs.len(), frames * vocab, "frames × vocab values");
        assert!((blank as usize) < vocab, "blank inside the vocabulary");
        CtcPrefixScorer {
            x: log_probs,
            frames,
            vocab,
            blank,
        }
    }

    fn x(&self, t: usize, c: u32) -> f64 {
        f64::from(self.x[t * self.vocab + c as usize])
    }

    /// The empty prefix: no label yet, every frame a blank so far.
    pub fn initial(&self) -> CtcPrefixState {
        let mut r_b = Vec::with_capacity(self.frames);
        let mut acc = 0.0;
        for t in 0..self.frames {
            acc += self.x(t, self.blank);
            r_b.push(acc);
        }
        CtcPrefixState {
            r_n: vec![f64::NEG_INFINITY; self.frames],
            r_b,
            score: 0.0,
            last: None,
        }
    }

    /// `φ[t]`: the alignments of frames `0..=t` after which label `c` may
    /// start a new symbol (the prefix ended in a blank, or in a different
    /// label).
    fn phi(&self, g: &CtcPrefixState, c: u32) -> Vec<f64> {
        g.r_b
            .iter()
            .zip(&g.r_n)
            .map(|(&b, &n)| if g.last == Some(c) { b } else { log_add(b, n) })
            .collect()
    }

    /// `ψ(g·c)` for every label `c` of the vocabulary (the blank gets −∞);
    /// `eos` gets the probability that the input spells exactly `g`.
    pub fn scores(&self, g: &CtcPrefixState, eos: u32) -> Vec<f64> {
        let mut out = vec![f64::NEG_INFINITY; self.vocab];
        if self.frames == 0 {
            return out;
        }
        let both: Vec<f64> = g
            .r_b
            .iter()
            .zip(&g.r_n)
            .map(|(&b, &n)| log_add(b, n))
            .collect();
        for (c, slot) in out.iter_mut().enumerate() {
            let c = c as u32;
            if c == self.blank {
                continue;
            }
            if c == eos {
                *slot = both[self.frames - 1];
                continue;
            }
            let mut psi = if g.last.is_none() {
                self.x(0, c)
            } else {
                f64::NEG_INFINITY
            };
            for t in 1..self.frames {
                let phi = if g.last == Some(c) {
                    g.r_b[t - 1]
                } else {
                    both[t - 1]
                };
                psi = log_add(psi, phi + self.x(t, c));
            }
            *slot = psi;
        }
        out
    }

    /// The state of `g·c` (`c` neither the blank nor `[EOS]`).
    pub fn extend(&self, g: &CtcPrefixState, c: u32, score: f64) -> CtcPrefixState {
        let phi = self.phi(g, c);
        let mut r_n = vec![f64::NEG_INFINITY; self.frames];
        let mut r_b = vec![f64::NEG_INFINITY; self.frames];
        if self.frames > 0 && g.last.is_none() {
            r_n[0] = self.x(0, c);
        }
        for t in 1..self.frames {
            r_n[t] = log_add(r_n[t - 1], phi[t - 1]) + self.x(t, c);
            r_b[t] = log_add(r_b[t - 1], r_n[t - 1]) + self.x(t, self.blank);
        }
        CtcPrefixState {
            r_n,
            r_b,
            score,
            last: Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// log P(alignment collapses to `labels`), by enumerating every
    /// alignment of `t` frames over `v` symbols.
    fn brute(x: &[f32], t: usize, v: usize, blank: u32, labels: &[u32], prefix_only: bool) -> f64 {
        let mut total = f64::NEG_INFINITY;
        let mut path = vec![0u32; t];
        loop {
            let mut out: Vec<u32> = Vec::new();
            let mut prev = None;
            for &s in &path {
                if s != blank && Some(s) != prev {
                    out.push(s);
                }
                prev = Some(s);
            }
            let hit = if prefix_only {
                out.len() >= labels.len() && out[..labels.len()] == *labels
            } else {
                out == labels
            };
            if hit {
                let lp: f64 = path
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| f64::from(x[i * v + s as usize]))
                    .sum();
                total = log_add(total, lp);
            }
            // next path
            let mut i = 0;
            loop {
                if i == t {
                    return total;
                }
                path[i] += 1;
                if (path[i] as usize) < v {
                    break;
                }
                path[i] = 0;
                i += 1;
            }
        }
    }

    fn log_softmax_rows(raw: &[f32], v: usize) -> Vec<f32> {
        raw.chunks(v)
            .flat_map(|row| {
                let m = row.iter().cloned().fold(f32::MIN, f32::max);
                let lse = m + row.iter().map(|z| (z - m).exp()).sum::<f32>().ln();
                row.iter().map(move |z| z - lse).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn prefix_and_sequence_scores_equal_the_sums_over_alignments() {
        // 5 frames over {blank 0, a 1, b 2, eos 3 (never emitted by CTC)};
        // within 1e-6: float32 rows sum to 1 only to rounding, which the
        // prefix score assumes of the frames after the prefix
        let (t, v) = (5, 4);
        // eos is not a CTC symbol: probability 0, the rows still normalised
        let raw: Vec<f32> = (0..t * v)
            .map(|i| {
                if i % v == 3 {
                    -1e4
                } else {
                    ((i * 37 % 11) as f32) * 0.3 - 1.0
                }
            })
            .collect();
        let x = log_softmax_rows(&raw, v);
        let s = CtcPrefixScorer::new(x.clone(), t, v, 0);
        let mut g = s.initial();
        for labels in [vec![1u32], vec![1, 1], vec![1, 1, 2]] {
            let c = *labels.last().unwrap();
            let scores = s.scores(&g, 3);
            let want = brute(&x, t, v, 0, &labels, true);
            assert!(
                (scores[c as usize] - want).abs() < 1e-6,
                "{labels:?}: {} vs {want}",
                scores[c as usize]
            );
            assert_eq!(scores[0], f64::NEG_INFINITY);
            g = s.extend(&g, c, scores[c as usize]);
            // [EOS] after the prefix: exactly the prefix
            let end = s.scores(&g, 3)[3];
            let exact = brute(&x, t, v, 0, &labels, false);
            assert!((end - exact).abs() < 1e-6, "{labels:?}: {end} vs {exact}");
        }
    }
}
