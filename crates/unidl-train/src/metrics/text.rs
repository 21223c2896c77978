//! Text and speech metrics: CER, WER, corpus BLEU and perplexity.
//!
//! - CER/WER follow jiwer's defaults and are corpus-level: the sum of
//!   Levenshtein edits (substitutions + deletions + insertions) over all
//!   pairs divided by the total reference length. Words: the string split on
//!   whitespace; characters: Unicode scalar values of the string with leading
//!   and trailing whitespace removed (inner spaces count).
//! - BLEU is sacrebleu's `corpus_bleu` with its defaults: `13a` tokenisation
//!   ([`tokenize_13a`]), case-sensitive, n-grams up to 4 clipped by the
//!   maximum count over the references, the closest reference length (the
//!   shorter on ties) for the brevity penalty, `exp` smoothing; the score is
//!   on sacrebleu's 0–100 scale.
//! - Perplexity is `exp` of the mean negative log-likelihood per token
//!   (natural log), as torchmetrics' `Perplexity`.

use std::collections::HashMap;

use super::{bad, same_len};
use crate::error::Result;

/// Levenshtein distance (unit costs) between two sequences.
pub fn levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// What an [`ErrorRate`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorUnit {
    /// Characters (CER).
    Char,
    /// Whitespace-separated words (WER).
    Word,
}

/// Corpus-level CER or WER accumulator.
#[derive(Debug, Clone)]
pub struct ErrorRate {
    unit: ErrorUnit,
    edits: u64,
    reference_len: u64,
}

impl ErrorRate {
    /// An empty accumulator counting `unit`s.
    pub fn new(unit: ErrorUnit) -> Self {
        Self {
            unit,
            edits: 0,
            reference_len: 0,
        }
    }

    /// Adds pairs of hypothesis and reference.
    pub fn update<H: AsRef<str>, R: AsRef<str>>(
        &mut self,
        hypotheses: &[H],
        references: &[R],
    ) -> Result<()> {
        same_len(
            "hypotheses",
            "hypotheses",
            hypotheses.len(),
            "references",
            references.len(),
        )?;
        for (h, r) in hypotheses.iter().zip(references) {
            let (h, r) = (h.as_ref(), r.as_ref());
            let (edits, len) = match self.unit {
                ErrorUnit::Char => {
                    let (h, r): (Vec<char>, Vec<char>) =
                        (h.trim().chars().collect(), r.trim().chars().collect());
                    (levenshtein(&h, &r), r.len())
                }
                ErrorUnit::Word => {
                    let (h, r): (Vec<&str>, Vec<&str>) = (
                        h.split_whitespace().collect(),
                        r.split_whitespace().collect(),
                    );
                    (levenshtein(&h, &r), r.len())
                }
            };
            self.edits += edits as u64;
            self.reference_len += len as u64;
        }
        Ok(())
    }

    /// Total edits so far.
    pub fn edits(&self) -> u64 {
        self.edits
    }

    /// Total reference length so far.
    pub fn reference_len(&self) -> u64 {
        self.reference_len
    }

    /// Edits over reference length; an error when the references were empty.
    pub fn compute(&self) -> Result<f64> {
        if self.reference_len == 0 {
            return Err(bad(
                "references",
                format!(
                    "the references hold no {:?}s; the error rate is undefined ({} edits)",
                    self.unit, self.edits
                ),
            ));
        }
        Ok(self.edits as f64 / self.reference_len as f64)
    }
}

/// One-shot corpus character error rate.
pub fn cer<H: AsRef<str>, R: AsRef<str>>(hypotheses: &[H], references: &[R]) -> Result<f64> {
    let mut m = ErrorRate::new(ErrorUnit::Char);
    m.update(hypotheses, references)?;
    m.compute()
}

/// One-shot corpus word error rate.
pub fn wer<H: AsRef<str>, R: AsRef<str>>(hypotheses: &[H], references: &[R]) -> Result<f64> {
    let mut m = ErrorRate::new(ErrorUnit::Word);
    m.update(hypotheses, references)?;
    m.compute()
}

/// Characters sacrebleu's first 13a rule pads with spaces.
fn is_13a_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// One `re.sub` pass of a two-character pattern `(a)(b)` → `pre a mid b post`.
fn sub_pairs(
    s: &[char],
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    pad: (&str, &str, &str),
) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && first(s[i]) && second(s[i + 1]) {
            out.extend(pad.0.chars());
            out.push(s[i]);
            out.extend(pad.1.chars());
            out.push(s[i + 1]);
            out.extend(pad.2.chars());
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// sacrebleu's `13a` tokeniser (mteval-v13a): tokens joined by single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut s: Vec<char> = Vec::with_capacity(line.len() + 16);
    s.push(' ');
    for c in line.chars() {
        if is_13a_symbol(c) {
            s.extend([' ', c, ' ']);
        } else {
            s.push(c);
        }
    }
    s.push(' ');
    let digit = |c: char| c.is_ascii_digit();
    let period = |c: char| c == '.' || c == ',';
    let s = sub_pairs(&s, |c| !digit(c), period, ("", " ", " "));
    let s = sub_pairs(&s, period, |c| !digit(c), (" ", " ", ""));
    let s = sub_pairs(&s, digit, |c| c == '-', ("", " ", " "));
    let s: String = s.into_iter().collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// BLEU smoothing (Chen & Cherry 2014), as sacrebleu names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BleuSmoothing {
    /// No smoothing: a zero n-gram precision makes BLEU 0.
    None,
    /// Method 1: a zero precision becomes `value / total`.
    Floor(f64),
    /// Method 2: add `value` to the counts of n ≥ 2.
    AddK(f64),
    /// Method 3 (mteval-v13a, sacrebleu's default): the k-th zero precision becomes `1 / (2^k · total)`.
    Exp,
}

/// A BLEU score with its statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    /// BLEU on the 0–100 scale.
    pub score: f64,
    /// Clipped matching n-grams, n = 1..4.
    pub correct: [u64; 4],
    /// Hypothesis n-grams, n = 1..4.
    pub total: [u64; 4],
    /// n-gram precisions in percent (after smoothing).
    pub precisions: [f64; 4],
    /// Brevity penalty.
    pub brevity_penalty: f64,
    /// Total hypothesis length in tokens.
    pub sys_len: u64,
    /// Total (closest) reference length in tokens.
    pub ref_len: u64,
}

/// Corpus BLEU-4 accumulator.
#[derive(Debug, Clone)]
pub struct Bleu {
    smoothing: BleuSmoothing,
    correct: [u64; 4],
    total: [u64; 4],
    sys_len: u64,
    ref_len: u64,
}

impl Default for Bleu {
    fn default() -> Self {
        Self::new(BleuSmoothing::Exp)
    }
}

fn ngrams(tokens: &[&str]) -> HashMap<Vec<String>, u64> {
    let mut m = HashMap::new();
    for n in 1..=4 {
        for w in tokens.windows(n) {
            *m.entry(w.iter().map(|s| s.to_string()).collect())
                .or_insert(0) += 1;
        }
    }
    m
}

impl Bleu {
    /// An empty accumulator with the given smoothing.
    pub fn new(smoothing: BleuSmoothing) -> Self {
        Self {
            smoothing,
            correct: [0; 4],
            total: [0; 4],
            sys_len: 0,
            ref_len: 0,
        }
    }

    /// Adds one hypothesis with its references (at least one).
    pub fn update<H: AsRef<str>, R: AsRef<str>>(
        &mut self,
        hypothesis: H,
        references: &[R],
    ) -> Result<()> {
        if references.is_empty() {
            return Err(bad(
                "references",
                "each hypothesis needs at least one reference",
            ));
        }
        let hyp = tokenize_13a(hypothesis.as_ref().trim_end());
        let hyp: Vec<&str> = hyp.split_whitespace().collect();
        let mut ref_ngrams: HashMap<Vec<String>, u64> = HashMap::new();
        let mut closest: Option<usize> = None;
        for r in references {
            let r = tokenize_13a(r.as_ref().trim_end());
            let r: Vec<&str> = r.split_whitespace().collect();
            for (g, c) in ngrams(&r) {
                let e = ref_ngrams.entry(g).or_insert(0);
                *e = (*e).max(c);
            }
            let diff = |l: usize| l.abs_diff(hyp.len());
            closest = match closest {
                Some(c)
                    if diff(c) < diff(r.len()) || (diff(c) == diff(r.len()) && c <= r.len()) =>
                {
                    Some(c)
                }
                _ => Some(r.len()),
            };
        }
        for (g, c) in ngrams(&hyp) {
            let n = g.len() - 1;
            self.total[n] += c;
            self.correct[n] += c.min(ref_ngrams.get(&g).copied().unwrap_or(0));
        }
        self.sys_len += hyp.len() as u64;
        self.ref_len += closest.unwrap_or(0) as u64;
        Ok(())
    }

    /// The corpus score (0 when nothing matched, as sacrebleu).
    pub fn compute(&self) -> BleuScore {
        let (sys, reference) = (self.sys_len as f64, self.ref_len as f64);
        let brevity_penalty = if self.sys_len < self.ref_len {
            if self.sys_len > 0 {
                (1.0 - reference / sys).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut precisions = [0.0; 4];
        let mut score = 0.0;
        if self.correct.iter().any(|&c| c > 0) {
            let mut smooth = 1.0;
            for (n, precision) in precisions.iter_mut().enumerate() {
                let (mut correct, mut total) = (self.correct[n] as f64, self.total[n] as f64);
                if let BleuSmoothing::AddK(k) = self.smoothing
                    && n > 0
                {
                    correct += k;
                    total += k;
                }
                if total == 0.0 {
                    break;
                }
                *precision = if correct == 0.0 {
                    match self.smoothing {
                        BleuSmoothing::Exp => {
                            smooth *= 2.0;
                            100.0 / (smooth * total)
                        }
                        BleuSmoothing::Floor(v) => 100.0 * v / total,
                        _ => 0.0,
                    }
                } else {
                    100.0 * correct / total
                };
            }
            // sacrebleu's `my_log` floors log(0) at -9999999999.
            let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
            score = brevity_penalty * (precisions.iter().map(|&p| log(p)).sum::<f64>() / 4.0).exp();
        }
        BleuScore {
            score,
            correct: self.correct,
            total: self.total,
            precisions,
            brevity_penalty,
            sys_len: self.sys_len,
            ref_len: self.ref_len,
        }
    }
}

/// One-shot corpus BLEU with sacrebleu's defaults: `references[i]` are the
/// references of `hypotheses[i]`.
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[Vec<R>],
) -> Result<BleuScore> {
    same_len(
        "hypotheses",
        "hypotheses",
        hypotheses.len(),
        "reference lists",
        references.len(),
    )?;
    let mut m = Bleu::default();
    for (h, r) in hypotheses.iter().zip(references) {
        m.update(h, r)?;
    }
    Ok(m.compute())
}

/// Perplexity accumulator: `exp(total NLL / tokens)`.
#[derive(Debug, Clone, Default)]
pub struct Perplexity {
    nll: f64,
    tokens: u64,
}

impl Perplexity {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the natural-log probabilities of target tokens (each ≤ 0).
    pub fn update_log_probs(&mut self, log_probs: &[f64]) -> Result<()> {
        if let Some((i, lp)) = log_probs
            .iter()
            .enumerate()
            .find(|(_, lp)| lp.is_nan() || **lp > 0.0)
        {
            return Err(bad(
                "log_probs",
                format!("token {i} has log-probability {lp}; it must be ≤ 0 and not NaN"),
            ));
        }
        self.nll -= log_probs.iter().sum::<f64>();
        self.tokens += log_probs.len() as u64;
        Ok(())
    }

    /// Adds `tokens` tokens whose mean negative log-likelihood is `mean_nll`.
    pub fn update_mean_nll(&mut self, mean_nll: f64, tokens: u64) -> Result<()> {
        if !(mean_nll.is_finite() && mean_nll >= 0.0) {
            return Err(bad(
                "mean_nll",
                format!("{mean_nll} must be a finite number ≥ 0"),
            ));
        }
        self.nll += mean_nll * tokens as f64;
        self.tokens += tokens;
        Ok(())
    }

    /// The perplexity; an error when no token was added.
    pub fn compute(&self) -> Result<f64> {
        if self.tokens == 0 {
            return Err(bad(
                "log_probs",
                "no token was added; perplexity is undefined",
            ));
        }
        Ok((self.nll / self.tokens as f64).exp())
    }
}

/// One-shot perplexity from per-token natural-log probabilities.
pub fn perplexity(log_probs: &[f64]) -> Result<f64> {
    let mut m = Perplexity::new();
    m.update_log_probs(log_probs)?;
    m.compute()
}

/// Perplexity from a mean negative log-likelihood per token: `exp(mean_nll)`.
pub fn perplexity_from_mean_nll(mean_nll: f64) -> Result<f64> {
    let mut m = Perplexity::new();
    m.update_mean_nll(mean_nll, 1)?;
    m.compute()
}

/// Corpus chrF (Popović 2015) as sacrebleu's `CHRF()` defaults: character
/// n-grams of orders 1–6 with whitespace removed, match statistics summed
/// over the corpus (per hypothesis, those of the first reference with the
/// best sentence F-score), precision and recall averaged over the orders
/// both sides have n-grams of, then `F_β` with β = 2, on a 0–100 scale.
#[derive(Debug, Clone, Default)]
pub struct ChrF {
    /// Per order: hypothesis n-grams, reference n-grams, matches.
    stats: [[u64; 3]; CHRF_ORDER],
}

/// chrF's character n-gram orders.
const CHRF_ORDER: usize = 6;
/// chrF's β (recall weighs β² times precision).
const CHRF_BETA: f64 = 2.0;

fn char_ngrams(text: &str) -> Vec<HashMap<String, u64>> {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    (1..=CHRF_ORDER)
        .map(|n| {
            let mut m = HashMap::new();
            for w in chars.windows(n) {
                *m.entry(w.iter().collect::<String>()).or_insert(0) += 1;
            }
            m
        })
        .collect()
}

fn chrf_stats(
    hyp: &[HashMap<String, u64>],
    reference: &[HashMap<String, u64>],
) -> [[u64; 3]; CHRF_ORDER] {
    let mut s = [[0u64; 3]; CHRF_ORDER];
    for n in 0..CHRF_ORDER {
        s[n][0] = hyp[n].values().sum();
        s[n][1] = reference[n].values().sum();
        s[n][2] = hyp[n]
            .iter()
            .map(|(g, c)| (*c).min(reference[n].get(g).copied().unwrap_or(0)))
            .sum();
    }
    s
}

fn chrf_score(stats: &[[u64; 3]; CHRF_ORDER]) -> f64 {
    // precision and recall averaged over the orders both sides have
    // n-grams of (sacrebleu's effective order)
    let (mut prec, mut rec, mut orders) = (0.0, 0.0, 0usize);
    for [hyp, reference, matched] in stats {
        if *hyp > 0 && *reference > 0 {
            prec += *matched as f64 / *hyp as f64;
            rec += *matched as f64 / *reference as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (prec, rec) = (prec / orders as f64, rec / orders as f64);
    let f = CHRF_BETA * CHRF_BETA;
    if prec + rec > 0.0 {
        100.0 * (1.0 + f) * prec * rec / (f * prec + rec)
    } else {
        0.0
    }
}

impl ChrF {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one hypothesis with its references (at least one).
    pub fn update<H: AsRef<str>, R: AsRef<str>>(
        &mut self,
        hypothesis: H,
        references: &[R],
    ) -> Result<()> {
        if references.is_empty() {
            return Err(bad(
                "references",
                "each hypothesis needs at least one reference",
            ));
        }
        let hyp = char_ngrams(hypothesis.as_ref());
        let best = references
            .iter()
            .map(|r| chrf_stats(&hyp, &char_ngrams(r.as_ref())))
            .fold(None::<([[u64; 3]; CHRF_ORDER], f64)>, |best, s| {
                let score = chrf_score(&s);
                match best {
                    Some((_, b)) if b >= score => best,
                    _ => Some((s, score)),
                }
            })
            .expect("at least one reference")
            .0;
        for (acc, s) in self.stats.iter_mut().zip(best) {
            for k in 0..3 {
                acc[k] += s[k];
            }
        }
        Ok(())
    }

    /// The corpus score, 0–100.
    pub fn compute(&self) -> f64 {
        chrf_score(&self.stats)
    }
}
