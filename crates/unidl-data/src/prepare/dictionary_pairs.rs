//! Parallel text grown with dictionary entries: the pairs of a prepared
//! translation set (`train.tsv`, `test.tsv`) plus one pair per frequent
//! English word — the word and its dictionary translation — in training.
//!
//! A model trained on a few thousand UI strings never sees most content
//! words; the word-by-word baseline it is measured against knows them from
//! the dictionary. Giving the model the same dictionary as training data
//! (word pairs, the way lexicon-augmented NMT does) makes the comparison
//! one of translation, not of vocabulary. Which words: the most frequent
//! in an independent English corpus (the Brown corpus), never chosen by
//! the held-out sentences.

use std::collections::HashMap;
use std::path::Path;

use super::{PrepareResult, Prepared, create_dir, write_file};
use crate::error::DataError;
use crate::text::WordByWord;

/// Lower-case alphabetic words of `text`, in order (apostrophes and
/// hyphens split words; anything with a digit is not a word).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn read_text(path: &Path) -> PrepareResult<String> {
    Ok(crate::parse::read_text(path)?)
}

/// `source<TAB>target` lines of a prepared pair file; a line without a tab
/// is [`DataError::Parse`] naming it.
fn pairs(path: &Path) -> PrepareResult<Vec<(String, String)>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let Some((s, t)) = line.split_once('\t') else {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: Some(i + 1),
                reason: "no TAB between source and target".into(),
            }
            .into());
        };
        out.push((s.to_string(), t.to_string()));
    }
    Ok(out)
}

/// Writes `out/train.tsv` (the pairs of `parallel/train.tsv`, then one
/// `word<TAB>translation` pair for each of the `words` most frequent words
/// of `corpus` that `dictionary` has an entry for), `out/test.tsv` (a copy
/// of `parallel/test.tsv`, unchanged) and `out/dictionary_pairs.tsv` (the
/// added pairs alone, most frequent word first).
///
/// The translation of a word is the one the word-by-word baseline would
/// choose ([`WordByWord`] fitted on the training targets: the translation
/// whose words are most frequent there, else the dictionary's first), so
/// the model learns the sense the data uses. Frequency ties are broken
/// alphabetically; the corpus is any English text (`corpus.txt` of `unidl
/// data brown`).
///
/// A missing file is [`DataError::NotFound`], a pair line without a TAB
/// [`DataError::Parse`]; `words = 0` adds nothing.
pub fn dictionary_pairs(
    parallel: &Path,
    dictionary: &Path,
    corpus: &Path,
    words_wanted: usize,
    out: &Path,
) -> PrepareResult<Prepared> {
    let train = pairs(&parallel.join("train.tsv"))?;
    let test = pairs(&parallel.join("test.tsv"))?;
    let mut wbw = WordByWord::load(dictionary)?;
    wbw.fit_target(train.iter().map(|(_, t)| t.as_str()));

    let mut counts: HashMap<String, u64> = HashMap::new();
    for w in words(&read_text(corpus)?) {
        *counts.entry(w).or_default() += 1;
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let added: Vec<(String, String)> = ranked
        .into_iter()
        .filter(|(w, _)| wbw.contains(w))
        .map(|(w, _)| {
            let t = wbw.translate(&w);
            (w, t)
        })
        .take(words_wanted)
        .collect();

    create_dir(out)?;
    let lines = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(s, t)| format!("{s}\t{t}\n"))
            .collect::<String>()
    };
    write_file(&out.join("train.tsv"), lines(&train) + &lines(&added))?;
    write_file(&out.join("test.tsv"), lines(&test))?;
    write_file(&out.join("dictionary_pairs.tsv"), lines(&added))?;
    Ok(Prepared {
        train: train.len() + added.len(),
        test: test.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_case_alphabetic_runs() {
        let w: Vec<String> = words("The cat's 3 hats, Open-Source!").collect();
        assert_eq!(w, ["the", "cat", "s", "hats", "open", "source"]);
    }
}
