//! Word-level syntactic perturbations (EDA style) and truncation of text inputs.
//!
//! Words are whitespace-separated; the result joins them with single spaces.
//! Synonyms are looked up by the word with its leading and trailing
//! punctuation removed (`"Dog,"` looks up `Dog`, then `dog`); a replacement
//! keeps that punctuation.

use std::collections::BTreeMap;

use rand::Rng as _;

use crate::error::{DataError, Result};
use crate::sample::{Input, Sample};
use crate::transform::{Rng, Transform};

/// Word → synonyms it may be replaced by (or that may be inserted next to it).
pub type Synonyms = BTreeMap<String, Vec<String>>;

fn default_input() -> String {
    "text".to_string()
}

/// Runs `f` on the words of the text input `input`, writing the joined result back.
fn map_words(
    transform: &str,
    input: &str,
    mut sample: Sample,
    f: impl FnOnce(Vec<String>) -> Vec<String>,
) -> Result<Sample> {
    let source = sample.source.clone();
    match sample.inputs.get_mut(input) {
        Some(Input::Text(text)) => {
            let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
            *text = f(words).join(" ");
            Ok(sample)
        }
        Some(_) => Err(DataError::transform(
            transform,
            format!("{source}: input `{input}` is not text"),
        )),
        None => Err(DataError::transform(
            transform,
            format!("{source}: no input `{input}`"),
        )),
    }
}

/// Byte range of `word` without leading/trailing non-alphanumeric characters.
fn core_range(word: &str) -> (usize, usize) {
    let not_alnum = |c: char| !c.is_alphanumeric();
    let start = word.len() - word.trim_start_matches(not_alnum).len();
    let end = word.trim_end_matches(not_alnum).len().max(start);
    (start, end)
}

/// The usable synonyms of `word` (its core, exact then lower-cased), minus
/// empty ones and the word itself.
fn synonyms_of<'s>(synonyms: &'s Synonyms, word: &str) -> Vec<&'s str> {
    let (s, e) = core_range(word);
    let core = &word[s..e];
    if core.is_empty() {
        return Vec::new();
    }
    let list = synonyms
        .get(core)
        .or_else(|| synonyms.get(&core.to_lowercase()));
    let lower = core.to_lowercase();
    list.map(|l| {
        l.iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && s.to_lowercase() != lower)
            .collect()
    })
    .unwrap_or_default()
}

/// Swaps two distinct random words, `n` times (texts of fewer than two words
/// are left as they are). The multiset of words never changes.
///
/// Example: `"the quick brown fox"` with `n = 1` may give `"the fox brown quick"`.
/// In TOML: `{ type = "custom", name = "random_swap", params = { n = 2 } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomSwap {
    /// Number of swaps.
    pub n: usize,
    /// Name of the text input (default `"text"`).
    pub input: String,
}

impl RandomSwap {
    /// `n` swaps on the input `"text"`.
    pub fn new(n: usize) -> Self {
        RandomSwap {
            n,
            input: default_input(),
        }
    }
}

impl Transform for RandomSwap {
    fn name(&self) -> &str {
        "random_swap"
    }

    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample> {
        map_words(self.name(), &self.input, sample, |mut words| {
            let len = words.len();
            if len >= 2 {
                for _ in 0..self.n {
                    let i = rng.random_range(0..len);
                    let mut j = rng.random_range(0..len - 1);
                    if j >= i {
                        j += 1;
                    }
                    words.swap(i, j);
                }
            }
            words
        })
    }
}

/// Deletes each word independently with probability `p`; when every word
/// would go, one random word is kept, so a non-empty text never becomes empty.
///
/// Example: `"the quick brown fox"` with `p = 0.5` may give `"quick fox"`;
/// with `p = 1` it gives one of its words. In TOML:
/// `{ type = "custom", name = "random_deletion", params = { p = 0.1 } }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomDeletion {
    /// Deletion probability of each word, in [0, 1].
    pub p: f64,
    /// Name of the text input (default `"text"`).
    pub input: String,
}

impl RandomDeletion {
    /// Deletion with probability `p` on the input `"text"`.
    pub fn new(p: f64) -> Self {
        RandomDeletion {
            p,
            input: default_input(),
        }
    }
}

impl Transform for RandomDeletion {
    fn name(&self) -> &str {
        "random_deletion"
    }

    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample> {
        map_words(self.name(), &self.input, sample, |words| {
            if words.is_empty() {
                return words;
            }
            let keep: Vec<bool> = words
                .iter()
                .map(|_| rng.random::<f64>() >= self.p)
                .collect();
            if keep.iter().any(|k| *k) {
                words
                    .into_iter()
                    .zip(keep)
                    .filter_map(|(w, k)| k.then_some(w))
                    .collect()
            } else {
                let i = rng.random_range(0..words.len());
                vec![words[i].clone()]
            }
        })
    }
}

/// Inserts, `n` times, a random synonym of a random word that has one at a
/// random position. Texts with no word in `synonyms` are left as they are;
/// otherwise the word count grows by `n` (for single-word synonyms).
///
/// Example: with `synonyms = { quick = ["fast"] }`, `"the quick fox"` and
/// `n = 1` may give `"the quick fox fast"`. In TOML:
/// `{ type = "custom", name = "random_insertion", params = { n = 1, synonyms = { quick = ["fast"] } } }`
/// (or `synonyms_file = "synonyms.json"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomInsertion {
    /// Number of insertions.
    pub n: usize,
    /// Word → synonyms.
    pub synonyms: Synonyms,
    /// Name of the text input (default `"text"`).
    pub input: String,
}

impl RandomInsertion {
    /// `n` insertions from `synonyms` on the input `"text"`.
    pub fn new(n: usize, synonyms: Synonyms) -> Self {
        RandomInsertion {
            n,
            synonyms,
            input: default_input(),
        }
    }
}

impl Transform for RandomInsertion {
    fn name(&self) -> &str {
        "random_insertion"
    }

    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample> {
        map_words(self.name(), &self.input, sample, |mut words| {
            for _ in 0..self.n {
                let candidates: Vec<Vec<&str>> = words
                    .iter()
                    .map(|w| synonyms_of(&self.synonyms, w))
                    .filter(|s| !s.is_empty())
                    .collect();
                if candidates.is_empty() {
                    break;
                }
                let choices = &candidates[rng.random_range(0..candidates.len())];
                let synonym = choices[rng.random_range(0..choices.len())].to_string();
                let at = rng.random_range(0..=words.len());
                words.insert(at, synonym);
            }
            words
        })
    }
}

/// Replaces up to `n` distinct random words that have synonyms with one of
/// them (chosen at random); every other word stays in place.
///
/// Example: with `synonyms = { quick = ["fast", "speedy"], fox = ["vixen"] }`,
/// `"The quick fox."` and `n = 1` may give `"The speedy fox."` or
/// `"The quick vixen."`. In TOML:
/// `{ type = "custom", name = "synonym_replacement", params = { n = 1, synonyms = { quick = ["fast", "speedy"] } } }`
/// (or `synonyms_file = "synonyms.json"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynonymReplacement {
    /// Most words replaced.
    pub n: usize,
    /// Word → synonyms.
    pub synonyms: Synonyms,
    /// Name of the text input (default `"text"`).
    pub input: String,
}

impl SynonymReplacement {
    /// Up to `n` replacements from `synonyms` on the input `"text"`.
    pub fn new(n: usize, synonyms: Synonyms) -> Self {
        SynonymReplacement {
            n,
            synonyms,
            input: default_input(),
        }
    }
}

impl Transform for SynonymReplacement {
    fn name(&self) -> &str {
        "synonym_replacement"
    }

    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample> {
        map_words(self.name(), &self.input, sample, |mut words| {
            let mut candidates: Vec<(usize, Vec<&str>)> = words
                .iter()
                .enumerate()
                .map(|(i, w)| (i, synonyms_of(&self.synonyms, w)))
                .filter(|(_, s)| !s.is_empty())
                .collect();
            // partial Fisher–Yates: the first `n` are a uniform random subset
            let take = self.n.min(candidates.len());
            for k in 0..take {
                let j = rng.random_range(k..candidates.len());
                candidates.swap(k, j);
            }
            for (i, choices) in candidates.into_iter().take(take) {
                let synonym = choices[rng.random_range(0..choices.len())];
                let w = &words[i];
                let (s, e) = core_range(w);
                words[i] = format!("{}{synonym}{}", &w[..s], &w[e..]);
            }
            words
        })
    }
}

/// Keeps the first `max_words` words. Uses no randomness.
///
/// Example: `"the quick brown fox"` with `max_words = 2` gives `"the quick"`.
/// In TOML: `{ type = "custom", name = "truncate", params = { max_words = 64 } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// Words kept.
    pub max_words: usize,
    /// Name of the text input (default `"text"`).
    pub input: String,
}

impl Truncate {
    /// Keep `max_words` words of the input `"text"`.
    pub fn new(max_words: usize) -> Self {
        Truncate {
            max_words,
            input: default_input(),
        }
    }
}

impl Transform for Truncate {
    fn name(&self) -> &str {
        "truncate"
    }

    fn apply(&self, sample: Sample, _rng: &mut Rng) -> Result<Sample> {
        map_words(self.name(), &self.input, sample, |mut words| {
            words.truncate(self.max_words);
            words
        })
    }
}
