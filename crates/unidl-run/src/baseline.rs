//! Baselines that learnt models are measured against, scored with the same
//! metrics as `unidl eval`.

use std::path::Path;

use unidl_data::dataset::ParallelText;
use unidl_data::text::WordByWord;
use unidl_train::metrics::{ChrF, corpus_bleu};

use crate::config::resolve;
use crate::error::Result;

/// Scores of a translation baseline on held-out pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslationScores {
    /// Corpus BLEU (sacrebleu's defaults, 0–100).
    pub bleu: f64,
    /// Corpus chrF (sacrebleu's chrF2, 0–100).
    pub chrf: f64,
    /// Held-out pairs scored.
    pub pairs: usize,
    /// The first few `(source, translation, reference)` triples.
    pub examples: Vec<(String, String, String)>,
}

/// The word-by-word baseline: `dictionary` (`dictionary.tsv`, `unidl data
/// freedict-de`) translates the sources of `test` word by word, choosing
/// among a word's translations by their frequency in the targets of `train`
/// ([`WordByWord`]); BLEU and chrF against the references. Paths may be
/// `data:<name>/…`; relative ones are taken from `base`.
pub fn word_by_word(
    dictionary: &str,
    train: &str,
    test: &str,
    base: &Path,
    examples: usize,
) -> Result<TranslationScores> {
    let mut wbw = WordByWord::load(resolve(dictionary, base)?)?;
    let train = ParallelText::open(&resolve(train, base)?)?;
    wbw.fit_target(train.pairs().map(|(_, t)| t));
    let test = ParallelText::open(&resolve(test, base)?)?;
    let mut hypotheses = Vec::new();
    let mut references = Vec::new();
    let mut chrf = ChrF::new();
    let mut shown = Vec::new();
    for (source, reference) in test.pairs() {
        let hypothesis = wbw.translate(source);
        chrf.update(&hypothesis, &[reference])?;
        if shown.len() < examples {
            shown.push((
                source.to_string(),
                hypothesis.clone(),
                reference.to_string(),
            ));
        }
        hypotheses.push(hypothesis);
        references.push(vec![reference.to_string()]);
    }
    let bleu = corpus_bleu(&hypotheses, &references)?;
    Ok(TranslationScores {
        bleu: bleu.score,
        chrf: chrf.compute(),
        pairs: hypotheses.len(),
        examples: shown,
    })
}
