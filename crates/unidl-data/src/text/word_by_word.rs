//! A word-by-word translator from a bilingual dictionary: the baseline a
//! learnt translation model has to beat.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{DataError, Result};

/// Translates a text word by word with a dictionary (`dictionary.tsv`, as
/// `unidl data freedict-de` writes it: `headword<TAB>translation…`).
///
/// - Phrases first: at each word the longest headword of up to
///   [`max_phrase`](Self::max_phrase) words that matches (case folded) is
///   taken, so "zoom in" can translate as one unit.
/// - Among a headword's translations the one whose words are most frequent
///   in target-language text given to [`fit_target`](Self::fit_target)
///   (the training side of the same pairs) is chosen — the frequency is the
///   rarest of its words' counts; ties and unseen ones keep the dictionary's
///   order. Without target text the dictionary's first translation is used.
/// - Words the dictionary lacks, numbers, punctuation, placeholders (`%s`)
///   and spacing are kept as they are; a capitalised first word gives a
///   capitalised first translation.
///
/// ```
/// use unidl_data::text::WordByWord;
/// let mut wbw = WordByWord::from_entries([
///     ("open", vec!["aufdrehen", "öffnen"]),
///     ("image", vec!["Abbild", "Bild"]),
///     ("the", vec!["der", "die", "das"]),
/// ]);
/// assert_eq!(wbw.translate("Open the image"), "Aufdrehen der Abbild");
/// wbw.fit_target(["Bild öffnen", "Das Bild speichern", "das Bild"]);
/// assert_eq!(wbw.translate("Open the image"), "Öffnen das Bild");
/// ```
#[derive(Debug, Clone, Default)]
pub struct WordByWord {
    /// Case-folded headword → translations, dictionary order.
    entries: HashMap<String, Vec<String>>,
    /// Case-folded target word → count.
    counts: HashMap<String, u64>,
    max_phrase: usize,
}

/// Length in bytes of the printf placeholder (`%s`, `%1$d`, `%.2f`, `%%`)
/// starting at `text[i]`, if one does.
fn placeholder(text: &str, i: usize) -> Option<usize> {
    let rest = text.get(i..)?.strip_prefix('%')?;
    let bytes = rest.as_bytes();
    let mut k = 0;
    let digits = |k: &mut usize| {
        while *k < bytes.len() && bytes[*k].is_ascii_digit() {
            *k += 1;
        }
    };
    if bytes.first() == Some(&b'%') {
        return Some(2);
    }
    digits(&mut k);
    if k > 0 && bytes.get(k) == Some(&b'$') {
        k += 1;
    } else {
        k = 0;
    }
    while k < bytes.len() && b"-+#0'".contains(&bytes[k]) {
        k += 1;
    }
    digits(&mut k);
    if bytes.get(k) == Some(&b'.') {
        k += 1;
        digits(&mut k);
    }
    while k < bytes.len() && b"hlLqjzt".contains(&bytes[k]) {
        k += 1;
    }
    bytes
        .get(k)
        .filter(|b| b.is_ascii_alphabetic())
        .map(|_| k + 2)
}

/// A piece of the source: a word (letters, digits, apostrophes and inner
/// hyphens) or anything else (kept verbatim, printf placeholders such as
/// `%s` included).
fn pieces(text: &str) -> Vec<(bool, &str)> {
    let mut out: Vec<(bool, &str)> = Vec::new();
    let mut start = 0;
    let mut in_word = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut skip_until = 0;
    for (k, &(i, c)) in chars.iter().enumerate() {
        if i < skip_until {
            continue;
        }
        if let Some(n) = (c == '%').then(|| placeholder(text, i)).flatten() {
            skip_until = i + n;
            if in_word != Some(false) {
                if let Some(w) = in_word {
                    out.push((w, &text[start..i]));
                }
                start = i;
                in_word = Some(false);
            }
            continue;
        }
        let next_is_letter = chars.get(k + 1).is_some_and(|(_, n)| n.is_alphanumeric());
        let word_char = c.is_alphanumeric()
            || ((c == '\'' || c == '-') && in_word == Some(true) && next_is_letter);
        if in_word != Some(word_char) {
            if let Some(w) = in_word {
                out.push((w, &text[start..i]));
            }
            start = i;
            in_word = Some(word_char);
        }
    }
    if let Some(w) = in_word {
        out.push((w, &text[start..]));
    }
    out
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl WordByWord {
    /// A translator from `(headword, translations)` pairs.
    pub fn from_entries<I, W, T, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = (W, T)>,
        W: AsRef<str>,
        T: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut max_phrase = 1;
        for (word, list) in entries {
            let key = fold(word.as_ref().trim());
            if key.is_empty() {
                continue;
            }
            max_phrase = max_phrase.max(key.split(' ').count());
            let slot = map.entry(key).or_default();
            for t in list {
                let t = t.into();
                if !t.is_empty() && !slot.contains(&t) {
                    slot.push(t);
                }
            }
        }
        map.retain(|_, v| !v.is_empty());
        WordByWord {
            entries: map,
            max_phrase: max_phrase.min(4),
            ..Default::default()
        }
    }

    /// Reads `dictionary.tsv`; a line without a translation is
    /// [`DataError::Parse`] naming the file and line.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split('\t');
            let word = fields.next().unwrap_or_default();
            let list: Vec<&str> = fields.filter(|f| !f.trim().is_empty()).collect();
            if word.trim().is_empty() || list.is_empty() {
                return Err(DataError::Parse {
                    path: path.to_path_buf(),
                    line: Some(i + 1),
                    reason: "expected `headword<TAB>translation[<TAB>translation…]`".into(),
                });
            }
            entries.push((word, list));
        }
        Ok(Self::from_entries(entries))
    }

    /// Headwords known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `headword` (case folded) has an entry.
    pub fn contains(&self, headword: &str) -> bool {
        self.entries.contains_key(&fold(headword))
    }

    /// Longest headword in words (at most 4) tried at each position.
    pub fn max_phrase(&self) -> usize {
        self.max_phrase
    }

    /// Counts the words of target-language texts; translations are then
    /// chosen by them (see the type's documentation).
    pub fn fit_target<I, S>(&mut self, texts: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for t in texts {
            for (is_word, w) in pieces(t.as_ref()) {
                if is_word {
                    *self.counts.entry(fold(w)).or_default() += 1;
                }
            }
        }
    }

    /// The translation of one headword (case folded).
    fn choose(&self, key: &str) -> Option<&str> {
        let list = self.entries.get(key)?;
        let score = |t: &String| -> u64 {
            pieces(t)
                .into_iter()
                .filter(|(w, _)| *w)
                .map(|(_, w)| self.counts.get(&fold(w)).copied().unwrap_or(0))
                .min()
                .unwrap_or(0)
        };
        let mut best = &list[0];
        let mut best_score = score(best);
        for t in &list[1..] {
            let s = score(t);
            if s > best_score {
                best = t;
                best_score = s;
            }
        }
        Some(best)
    }

    /// The word-by-word translation of `text`.
    pub fn translate(&self, text: &str) -> String {
        let pieces = pieces(text);
        let mut out = String::new();
        let mut i = 0;
        let mut first_word = true;
        while i < pieces.len() {
            let (is_word, piece) = pieces[i];
            if !is_word {
                out.push_str(piece);
                i += 1;
                continue;
            }
            // Single letters other than "a" and "I" are names (an X cursor,
            // the R channel), not words.
            if piece.chars().count() == 1 && piece != "a" && piece != "A" && piece != "I" {
                out.push_str(piece);
                i += 1;
                first_word = false;
                continue;
            }
            // The longest phrase starting here: words separated by single spaces.
            let mut best: Option<(usize, &str)> = None;
            let mut phrase = fold(piece);
            let mut end = i;
            for n in 1..=self.max_phrase {
                if n > 1 {
                    let (Some((false, " ")), Some((true, w))) =
                        (pieces.get(end + 1).copied(), pieces.get(end + 2).copied())
                    else {
                        break;
                    };
                    phrase.push(' ');
                    phrase.push_str(&fold(w));
                    end += 2;
                }
                if let Some(t) = self.choose(&phrase) {
                    best = Some((end, t));
                }
            }
            match best {
                Some((last, t)) => {
                    let upper = piece.chars().next().is_some_and(char::is_uppercase);
                    if first_word && upper {
                        out.push_str(&capitalise(t));
                    } else {
                        out.push_str(t);
                    }
                    i = last + 1;
                }
                None => {
                    out.push_str(piece);
                    i += 1;
                }
            }
            first_word = false;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_everything_and_split_words() {
        let text = "Can't open %s — x-ray, 2 files at %1$d%% (%.2f)";
        let p = pieces(text);
        let words: Vec<&str> = p.iter().filter(|(w, _)| *w).map(|(_, s)| *s).collect();
        assert_eq!(words, ["Can't", "open", "x-ray", "2", "files", "at"]);
        let all: String = p.iter().map(|(_, s)| *s).collect();
        assert_eq!(all, text);
        assert_eq!(placeholder("%s", 0), Some(2));
        assert_eq!(placeholder("%1$s", 0), Some(4));
        assert_eq!(placeholder("%-10.3lf", 0), Some(8));
        assert_eq!(placeholder("% of", 0), None);
        assert_eq!(placeholder("100%", 3), None);
    }

    #[test]
    fn phrases_win_over_words_and_unknown_words_stay() {
        let w = WordByWord::from_entries([
            ("zoom", vec!["zoomen"]),
            ("zoom in", vec!["vergrößern"]),
            ("in", vec!["in"]),
        ]);
        assert_eq!(w.max_phrase(), 2);
        assert_eq!(w.translate("Zoom in on %s"), "Vergrößern on %s");
        assert_eq!(w.translate("zoom  in"), "zoomen  in");
        assert_eq!(w.translate(""), "");
    }
}
