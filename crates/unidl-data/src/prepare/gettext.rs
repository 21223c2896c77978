//! GNU gettext `.mo` catalogues (parsed here, no gettext dependency) and
//! GIMP's user-interface translations as parallel text.
//!
//! `.mo` layout: a header of 32-bit words in the file's byte order (magic
//! `0x950412de`, revision, string count `N`, offset of the source table,
//! offset of the translation table, hash size, hash offset); each table holds
//! `N` (length, offset) pairs pointing at NUL-terminated strings. A source
//! may be `context\x04msgid` and `msgid\0msgid_plural`; a translation of a
//! plural entry holds its forms separated by `\0`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    PrepareResult, Prepared, check_test_every, create_dir, is_test, list_dir, read_bytes,
    write_file,
};
use crate::error::DataError;

/// One entry of a `.mo` catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoEntry {
    /// `msgctxt`, when the entry has one.
    pub context: Option<String>,
    /// `msgid` (the source text).
    pub source: String,
    /// `msgid_plural`, for plural entries.
    pub source_plural: Option<String>,
    /// `msgstr`, or `msgstr[0]`, `msgstr[1]` … for plural entries.
    pub translations: Vec<String>,
}

const MAGIC: u32 = 0x9504_12de;

/// Parses the bytes of a `.mo` file. The header entry (empty `msgid`) is
/// left out; a catalogue whose header names a charset other than UTF-8 is
/// refused. `path` is only used in error messages.
pub fn parse_mo(bytes: &[u8], path: &Path) -> PrepareResult<Vec<MoEntry>> {
    let corrupt = |reason: String| -> super::PrepareError {
        DataError::Corrupt {
            path: path.to_path_buf(),
            reason,
        }
        .into()
    };
    if bytes.len() < 28 {
        return Err(corrupt(format!(
            "{} bytes is too short for a .mo header (28)",
            bytes.len()
        )));
    }
    let word_le = |at: usize| -> Option<u32> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let big_endian = match word_le(0) {
        Some(MAGIC) => false,
        Some(m) if m.swap_bytes() == MAGIC => true,
        Some(m) => return Err(corrupt(format!("magic {m:#010x} is not a .mo file's"))),
        None => unreachable!("length checked"),
    };
    let word = |at: usize| -> Option<usize> {
        word_le(at).map(|w| if big_endian { w.swap_bytes() } else { w } as usize)
    };
    let revision = word(4).unwrap_or(0);
    if revision >> 16 > 1 {
        return Err(corrupt(format!(
            "revision {revision:#x} is not supported (major 0 or 1)"
        )));
    }
    let (n, sources, targets) = (
        word(8).unwrap_or(0),
        word(12).unwrap_or(0),
        word(16).unwrap_or(0),
    );
    let string = |table: usize, i: usize, what: &str| -> PrepareResult<&[u8]> {
        let at = table + 8 * i;
        let (Some(len), Some(off)) = (word(at), word(at + 4)) else {
            return Err(corrupt(format!(
                "{what} table entry {i} at byte {at} is past the end of the file"
            )));
        };
        bytes.get(off..off + len).ok_or_else(|| {
            corrupt(format!(
                "{what} string {i} (bytes {off}..{}) is past the end of the file ({} bytes)",
                off + len,
                bytes.len()
            ))
        })
    };
    let text = |b: &[u8], i: usize, what: &str| -> PrepareResult<String> {
        String::from_utf8(b.to_vec())
            .map_err(|e| corrupt(format!("{what} string {i} is not UTF-8: {e}")))
    };
    // Each entry takes 16 bytes of the two tables: a count the file cannot
    // hold is refused before anything is allocated for it.
    if n.checked_mul(16).is_none_or(|t| t > bytes.len()) {
        return Err(corrupt(format!(
            "header declares {n} strings, more than the {} bytes of the file can describe",
            bytes.len()
        )));
    }
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let src = string(sources, i, "source")?;
        let dst = string(targets, i, "translation")?;
        if src.is_empty() {
            let header = String::from_utf8_lossy(dst);
            if let Some(charset) = header
                .lines()
                .find_map(|l| l.split_once("charset=").map(|(_, c)| c.trim()))
                && !charset.eq_ignore_ascii_case("utf-8")
                && !charset.eq_ignore_ascii_case("utf8")
            {
                return Err(corrupt(format!(
                    "charset {charset} is not supported (UTF-8 only)"
                )));
            }
            continue;
        }
        let src = text(src, i, "source")?;
        let (context, rest) = match src.split_once('\u{4}') {
            Some((c, r)) => (Some(c.to_string()), r),
            None => (None, src.as_str()),
        };
        let (source, source_plural) = match rest.split_once('\0') {
            Some((s, p)) => (s.to_string(), Some(p.to_string())),
            None => (rest.to_string(), None),
        };
        let translations = text(dst, i, "translation")?
            .split('\0')
            .map(str::to_string)
            .collect();
        entries.push(MoEntry {
            context,
            source,
            source_plural,
            translations,
        });
    }
    Ok(entries)
}

/// Cleans a user-interface string for use as plain text: whitespace runs
/// (newlines, tabs) become one space, and a GTK mnemonic underscore is removed
/// (`"Save _As…"` → `"Save As…"`, `"Ö_ffnen"` → `"Öffnen"`; `"__"` stays a
/// literal `_`). A string with several single underscores is left as it is
/// (those are identifiers, not mnemonics). `None` when nothing is left.
pub fn clean_ui_text(s: &str) -> Option<String> {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = collapsed.chars().collect();
    let mnemonics = (0..chars.len())
        .filter(|&i| {
            chars[i] == '_'
                && chars.get(i + 1).is_some_and(|c| c.is_alphanumeric())
                && (i == 0 || chars[i - 1] != '_')
        })
        .count();
    let cleaned = if mnemonics == 1 {
        let mut out = String::with_capacity(collapsed.len());
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '_' {
                if chars.get(i + 1) == Some(&'_') {
                    out.push('_');
                    i += 2;
                    continue;
                }
                i += 1;
                continue;
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    } else {
        collapsed
    };
    let cleaned = cleaned.trim().to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Converts the GIMP catalogues of language `lang` found under an unpacked
/// `gimp-data` package (`root/usr/share/locale/<lang>/LC_MESSAGES/*.mo`,
/// read in sorted order) into `out/train.tsv` and `out/test.tsv`: one
/// `source<TAB>target` pair per line (English → `lang`), no header.
///
/// Only translated entries whose cleaned source ([`clean_ui_text`]) has at
/// least two words are kept; context prefixes are dropped, plural entries
/// give their singular pair, and a source seen twice keeps its first
/// translation. Pairs are sorted by source; every `test_every`-th is held
/// out; `limit` caps the pairs taken (spread evenly).
pub fn gimp_translations(
    root: &Path,
    lang: &str,
    out: &Path,
    test_every: usize,
    limit: Option<usize>,
) -> PrepareResult<Prepared> {
    check_test_every(test_every)?;
    let dir = root.join("usr/share/locale").join(lang).join("LC_MESSAGES");
    let files: Vec<_> = list_dir(&dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mo"))
        .collect();
    if files.is_empty() {
        return Err(DataError::NotFound {
            path: dir.join("*.mo"),
        }
        .into());
    }
    let mut pairs: BTreeMap<String, String> = BTreeMap::new();
    for file in &files {
        for entry in parse_mo(&read_bytes(file)?, file)? {
            let Some(target) = entry.translations.first().and_then(|t| clean_ui_text(t)) else {
                continue;
            };
            let Some(source) = clean_ui_text(&entry.source) else {
                continue;
            };
            if source.split(' ').count() < 2 {
                continue;
            }
            pairs.entry(source).or_insert(target);
        }
    }
    let pairs: Vec<(String, String)> = pairs.into_iter().collect();
    create_dir(out)?;
    let (mut train, mut test) = (String::new(), String::new());
    let mut counts = Prepared { train: 0, test: 0 };
    for (i, idx) in super::spread(pairs.len(), limit).into_iter().enumerate() {
        let (s, t) = &pairs[idx];
        let held_out = is_test(i, test_every);
        let buf = if held_out { &mut test } else { &mut train };
        buf.push_str(s);
        buf.push('\t');
        buf.push_str(t);
        buf.push('\n');
        counts.count(held_out);
    }
    write_file(&out.join("train.tsv"), train)?;
    write_file(&out.join("test.tsv"), test)?;
    Ok(counts)
}
