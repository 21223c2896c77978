//! FreeDict bilingual dictionaries (Debian `dict-freedict-*`, dictd format)
//! into a plain `dictionary.tsv` that [`WordByWord`](crate::text::WordByWord)
//! reads.

use std::collections::BTreeMap;
use std::path::Path;

use super::{PrepareResult, Prepared, create_dir, read_bytes, write_file};
use crate::error::DataError;

/// Value of a dictd base-64 number (`A`–`Z`, `a`–`z`, `0`–`9`, `+`, `/`).
fn base64_number(s: &str) -> Option<u64> {
    let mut v: u64 = 0;
    for c in s.bytes() {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        v = v.checked_mul(64)?.checked_add(u64::from(d))?;
    }
    (!s.is_empty()).then_some(v)
}

/// Removes `<…>`, `[…]`, `(…)` and `{…}` annotations (nested too).
fn strip_annotations(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '<' | '[' | '(' | '{' => depth += 1,
            '>' | ']' | ')' | '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The translations of one dictd entry: its second line (the first is the
/// headword with its pronunciation), split at commas outside brackets,
/// annotations removed.
///
/// ```text
/// open /ˈəʊpən/
/// geöffnet, offen <adj>
///       "open to the public"  - geöffnet, öffentlich …
/// ```
/// gives `["geöffnet", "offen"]`.
pub fn dictd_translations(entry: &str) -> Vec<String> {
    let Some(line) = entry.lines().nth(1) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in line.char_indices() {
        match c {
            '<' | '[' | '(' | '{' => depth += 1,
            '>' | ']' | ')' | '}' => depth = depth.saturating_sub(1),
            ',' | ';' if depth == 0 => {
                parts.push(&line[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&line[start..]);
    parts
        .into_iter()
        .map(strip_annotations)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Converts a dictd dictionary (`index`: `headword<TAB>offset<TAB>length`
/// in base 64; `dict`: the uncompressed `.dict` text) into
/// `out/dictionary.tsv`: one line per headword, sorted, `headword<TAB>
/// translation<TAB>translation…`, translations in the order the dictionary
/// gives its entries and de-duplicated ([`dictd_translations`]). Headwords
/// keep their case (lookups decide how to fold it).
///
/// A malformed index line is [`DataError::Parse`] naming the line; an entry
/// beyond the end of `dict` is [`DataError::Corrupt`].
pub fn freedict(index: &Path, dict: &Path, out: &Path) -> PrepareResult<Prepared> {
    let index_text = String::from_utf8(read_bytes(index)?).map_err(|e| DataError::Corrupt {
        path: index.to_path_buf(),
        reason: format!("not UTF-8: {e}"),
    })?;
    let dict_bytes = read_bytes(dict)?;
    let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, line) in index_text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let parse_error = |reason: String| DataError::Parse {
            path: index.to_path_buf(),
            line: Some(i + 1),
            reason,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let [word, offset, length] = fields[..] else {
            return Err(parse_error(format!(
                "expected headword, offset and length separated by tabs, found {} fields",
                fields.len()
            ))
            .into());
        };
        let (Some(offset), Some(length)) = (base64_number(offset), base64_number(length)) else {
            return Err(parse_error(format!(
                "offset {offset:?} or length {length:?} is not a dictd base-64 number"
            ))
            .into());
        };
        // dictd's own entries (00-database-info, …) describe the file.
        if word.starts_with("00-database") || word.starts_with("00database") {
            continue;
        }
        let end = offset.saturating_add(length);
        if end > dict_bytes.len() as u64 {
            return Err(DataError::Corrupt {
                path: dict.to_path_buf(),
                reason: format!(
                    "entry {word:?} (index line {}) ends at byte {end}, beyond the file's {} bytes",
                    i + 1,
                    dict_bytes.len()
                ),
            }
            .into());
        }
        let body = String::from_utf8_lossy(&dict_bytes[offset as usize..end as usize]);
        let list = entries.entry(word.trim().to_string()).or_default();
        for t in dictd_translations(&body) {
            if !list.contains(&t) {
                list.push(t);
            }
        }
    }
    create_dir(out)?;
    let mut text = String::new();
    let mut counts = Prepared { train: 0, test: 0 };
    for (word, list) in entries {
        if word.is_empty() || list.is_empty() || word.contains('\t') {
            continue;
        }
        text.push_str(&word);
        for t in list {
            text.push('\t');
            text.push_str(&t);
        }
        text.push('\n');
        counts.train += 1;
    }
    write_file(&out.join("dictionary.tsv"), text)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_numbers_are_dictd_numbers() {
        assert_eq!(base64_number("A"), Some(0));
        assert_eq!(base64_number("B8"), Some(64 + 60));
        assert_eq!(base64_number("/"), Some(63));
        assert_eq!(base64_number(""), None);
        assert_eq!(base64_number("a-b"), None);
        assert_eq!(base64_number(&"/".repeat(20)), None);
    }

    #[test]
    fn translations_drop_annotations_and_split_at_top_level_commas() {
        let e = "to /tˈuː/\nzu, an ([+ acc]) <prep>\n      \"go\" - gehen\n";
        assert_eq!(dictd_translations(e), ["zu", "an"]);
        let e = "image /ˈɪmɪdʒ/\nImage <neut>, Bild in der Öffentlichkeit [soc.]\n";
        assert_eq!(
            dictd_translations(e),
            ["Image", "Bild in der Öffentlichkeit"]
        );
        assert!(dictd_translations("only a headword").is_empty());
    }
}
