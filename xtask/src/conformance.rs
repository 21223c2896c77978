//! `cargo xtask conformance [--markdown] [--check]`: the standard's
//! requirements, each with the Rust items and tests that `docs/STANDARD.md`
//! maps to it and the outcome of those tests in the last `cargo xtask test`.
//!
//! - Requirement IDs come from `docs/spec/REQUIREMENTS.md` (every bullet's
//!   IDs, in order); the mapping from the tables of `docs/STANDARD.md`
//!   (`| ID | item | test | status |`).
//! - A test reference is `[package/]target::path` (`api::x`,
//!   `unidl-train/train::trainer::y`), `package::path` for a crate's unit
//!   tests, with `{a, b}` alternatives and a trailing `*` wildcard (a path
//!   naming a module stands for its tests); `same`
//!   repeats the previous row's references. Text in parentheses is a note.
//! - A requirement shows as **done** only when STANDARD marks it done, at
//!   least one of its tests passed and none failed; references that matched
//!   no test in this run (tests compiled only under another feature set) are
//!   listed as not run.
//! - `--markdown` writes `docs/CONFORMANCE.md`; `--check` fails when a
//!   requirement marked done is not shown by passing tests, when a
//!   requirement has no row, or when the committed report's mapping differs
//!   from what STANDARD.md says now (drift).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::results::{self, Outcome, Results};

/// One requirement of REQUIREMENTS.md.
struct Requirement {
    id: String,
    text: String,
}

/// One row of a STANDARD.md table.
struct Row {
    ids: Vec<String>,
    item: String,
    refs: Vec<Ref>,
    status: String,
}

/// A test reference of a row.
#[derive(Clone)]
struct Ref {
    text: String,
    package: Option<String>,
    target: Option<String>,
    /// Test path; a trailing `*` matches any suffix; empty = every test.
    path: String,
}

/// Whether `tok` looks like a requirement ID (`G-a`, `6.1.1-e`, `6.1.2`,
/// `T-c`, `Post-b`, `A.2.2.5`, `B.4.1`).
fn is_id(tok: &str) -> bool {
    let tok = tok.trim_start_matches('§');
    if let Some((head, tail)) = tok.rsplit_once('-') {
        let letter = tail.len() == 1 && tail.chars().all(|c| c.is_ascii_lowercase());
        let word = !head.is_empty()
            && head.len() <= 4
            && head.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && head.chars().skip(1).all(|c| c.is_ascii_lowercase());
        let number = head.contains('.') && head.chars().all(|c| c.is_ascii_digit() || c == '.');
        return letter && (word || number);
    }
    let parts: Vec<&str> = tok.split('.').collect();
    parts.len() >= 2
        && (parts[0] == "A" || parts[0] == "B" || parts[0].chars().all(|c| c.is_ascii_digit()))
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && !parts[0].is_empty()
}

/// IDs in a STANDARD.md ID cell; `Pre-a/b/c` stands for `Pre-a`, `Pre-b`, `Pre-c`.
fn ids_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in text.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
    {
        let t = t.trim_end_matches([':', '.']).trim_start_matches('§');
        let mut parts = t.split('/');
        let Some(first) = parts.next() else { continue };
        if !is_id(first) {
            continue;
        }
        out.push(first.to_string());
        if let Some((head, _)) = first.rsplit_once('-') {
            for letter in parts {
                let id = format!("{head}-{letter}");
                if is_id(&id) {
                    out.push(id);
                }
            }
        }
    }
    out
}

/// Every requirement ID of REQUIREMENTS.md with the text that follows it
/// (up to the next ID; bullets continue on indented lines).
fn requirements(text: &str) -> Vec<Requirement> {
    let mut bullets: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(body) = line.strip_prefix("- ") {
            bullets.push(body.to_string());
        } else if line.starts_with("  ")
            && !line.trim().is_empty()
            && let Some(last) = bullets.last_mut()
        {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    let mut out: Vec<Requirement> = Vec::new();
    let mut seen = BTreeSet::new();
    for body in bullets {
        // IDs open the bullet or a `;`-separated clause: "M-a forward; M-b …".
        let mut current: Option<usize> = None;
        for clause in body.split("; ") {
            let first = clause.split_whitespace().next().unwrap_or("");
            if is_id(first) && seen.insert(first.to_string()) {
                let rest = clause[first.len()..].trim().to_string();
                out.push(Requirement {
                    id: first.to_string(),
                    text: rest,
                });
                current = Some(out.len() - 1);
            } else if let Some(i) = current {
                out[i].text.push_str("; ");
                out[i].text.push_str(clause.trim());
            }
        }
    }
    for r in &mut out {
        if r.text.chars().count() > 90 {
            r.text = format!("{}…", r.text.chars().take(90).collect::<String>());
        }
    }
    out
}

/// Splits at `sep` outside parentheses and braces.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let (mut depth, mut cur, mut out) = (0i32, String::new(), Vec::new());
    for c in s.chars() {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
        if c == sep && depth == 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Removes parenthesised notes.
fn strip_notes(s: &str) -> String {
    let (mut depth, mut out) = (0i32, String::new());
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Test references of a STANDARD.md test cell.
fn refs_of(cell: &str, packages: &BTreeSet<String>, previous: &[Ref]) -> Vec<Ref> {
    let mut out = Vec::new();
    let cell = strip_notes(&cell.replace('`', ""));
    let parts = split_top(&cell, ';')
        .into_iter()
        .flat_map(|p| split_top(&p, ','));
    for part in parts {
        let part = part.trim().trim_end_matches('.');
        if part.is_empty() {
            continue;
        }
        if part == "same" || part.starts_with("same ") {
            out.extend(previous.iter().cloned());
            continue;
        }
        // The reference is the first word outside braces.
        let mut depth = 0;
        let end = part
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                c.is_whitespace() && depth == 0
            })
            .map_or(part.len(), |(i, _)| i);
        let token = &part[..end];
        // Expand one `{a, b}` group.
        let expanded: Vec<String> = match (token.find('{'), token.rfind('}')) {
            (Some(l), Some(r)) if r > l => split_top(&token[l + 1..r], ',')
                .into_iter()
                .map(|alt| format!("{}{}{}", &token[..l], alt.trim(), &token[r + 1..]))
                .collect(),
            _ => vec![token.to_string()],
        };
        for t in expanded {
            let (package, rest) = match t.split_once('/') {
                Some((p, r)) if packages.contains(p) => (Some(p.to_string()), r.to_string()),
                _ => (None, t.clone()),
            };
            let (first, path) = match rest.split_once("::") {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (rest.clone(), String::new()),
            };
            if first.is_empty() || (!t.contains("::") && !t.contains('/') && !t.contains('*')) {
                // prose, or a bare target name (`catalogue`): a target only
                // when it names one; checked at resolution
                if t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && !t.is_empty()
                {
                    out.push(Ref {
                        text: t.clone(),
                        package: None,
                        target: Some(t.clone()),
                        path: String::new(),
                    });
                }
                continue;
            }
            let r = if package.is_none() && packages.contains(&first) {
                // a crate's unit tests: `unidl-backend::select::tests::x`
                Ref {
                    text: t.clone(),
                    package: Some(first.clone()),
                    target: Some(first.replace('-', "_")),
                    path,
                }
            } else if first == "*" {
                Ref {
                    text: t.clone(),
                    package,
                    target: None,
                    path: "*".into(),
                }
            } else {
                Ref {
                    text: t.clone(),
                    package,
                    target: Some(first),
                    path,
                }
            };
            out.push(r);
        }
    }
    out
}

fn matches(r: &Ref, o: &Outcome) -> bool {
    if r.package.as_ref().is_some_and(|p| *p != o.package) {
        return false;
    }
    if r.target.as_ref().is_some_and(|t| *t != o.target) {
        return false;
    }
    if r.path.is_empty() {
        return true;
    }
    match r.path.strip_suffix('*') {
        Some(prefix) => o.name.starts_with(prefix),
        // a test, or a module of tests
        None => {
            o.name == r.path
                || o.name
                    .strip_prefix(r.path.as_str())
                    .is_some_and(|rest| rest.starts_with("::"))
        }
    }
}

fn rows(text: &str, packages: &BTreeSet<String>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('|') || line.starts_with("|--") || line.starts_with("| ID") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let ids = ids_in(cells[0]);
        if ids.is_empty() {
            continue;
        }
        let previous = out.last().map(|r: &Row| r.refs.clone()).unwrap_or_default();
        out.push(Row {
            ids,
            item: cells[1].to_string(),
            refs: refs_of(cells[2], packages, &previous),
            status: cells[3]
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("")
                .to_lowercase(),
        });
    }
    out
}

/// The report for one requirement.
struct Line {
    id: String,
    text: String,
    claimed: String,
    items: Vec<String>,
    refs: Vec<String>,
    passed: usize,
    failed: Vec<String>,
    unresolved: Vec<String>,
}

impl Line {
    /// What the run shows. A reference that matched no test (one compiled
    /// only with another feature set, e.g. without FFmpeg) is listed under
    /// "not run" but does not undo a requirement that other passing tests show.
    fn shown(&self) -> &'static str {
        match self.claimed.as_str() {
            "" => "unmapped",
            "done" if self.refs.is_empty() => "done, no test named",
            "done" if !self.failed.is_empty() => "done, TESTS FAIL",
            "done" if self.passed == 0 => "done, no passing test",
            "done" => "done",
            "partial" => "partial",
            _ => "open",
        }
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `cargo xtask conformance [--markdown] [--check]`.
pub fn run(rest: &[String]) -> Result<()> {
    let (_, root) = results::workspace()?;
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| format!("reading {p}"));
    let reqs = requirements(&read("docs/spec/REQUIREMENTS.md")?);
    let packages = workspace_packages(&root)?;
    let table = rows(&read("docs/STANDARD.md")?, &packages);
    let results = results::load()?;
    let lines = report(&reqs, &table, &results);
    let mapping = mapping_markdown(&lines);
    let markdown = format!("{}\n{}", mapping, run_markdown(&lines, &results));
    for l in &lines {
        println!(
            "{:<10} {:<22} {} passed{}{}",
            l.id,
            l.shown(),
            l.passed,
            if l.failed.is_empty() {
                String::new()
            } else {
                format!(", failed: {}", l.failed.join(", "))
            },
            if l.unresolved.is_empty() {
                String::new()
            } else {
                format!(", not run: {}", l.unresolved.join(", "))
            },
        );
    }
    let path = root.join("docs/CONFORMANCE.md");
    if rest.iter().any(|a| a == "--markdown") {
        std::fs::write(&path, &markdown)?;
        println!("wrote {}", path.display());
    }
    if rest.iter().any(|a| a == "--check") {
        let mut problems = Vec::new();
        for l in &lines {
            match l.shown() {
                "unmapped" => problems.push(format!("{}: no row in docs/STANDARD.md", l.id)),
                s if s.starts_with("done,") => problems.push(format!("{}: {s}", l.id)),
                _ => {}
            }
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if !committed.starts_with(&mapping) {
            problems.push(
                "docs/CONFORMANCE.md is stale: regenerate it with `cargo xtask conformance --markdown`"
                    .into(),
            );
        }
        if !problems.is_empty() {
            bail!("conformance check failed:\n  {}", problems.join("\n  "));
        }
        println!("conformance: every requirement marked done is shown by passing tests");
    }
    Ok(())
}

fn workspace_packages(root: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for dir in ["crates", "models", "tests"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let manifest = e.path().join("Cargo.toml");
            if let Ok(text) = std::fs::read_to_string(&manifest)
                && let Ok(v) = text.parse::<toml::Table>()
                && let Some(name) = v
                    .get("package")
                    .and_then(|p| p.get("name"))
                    .and_then(|n| n.as_str())
            {
                out.insert(name.to_string());
            }
        }
    }
    Ok(out)
}

fn report(reqs: &[Requirement], table: &[Row], results: &Results) -> Vec<Line> {
    reqs.iter()
        .map(|r| {
            let rows: Vec<&Row> = table.iter().filter(|row| row.ids.contains(&r.id)).collect();
            // The weakest claim of its rows: one partial row makes it partial.
            let claimed = if rows.is_empty() {
                String::new()
            } else if rows.iter().all(|x| x.status == "done") {
                "done".into()
            } else if rows
                .iter()
                .any(|x| x.status == "done" || x.status == "partial")
            {
                "partial".into()
            } else {
                "open".into()
            };
            let refs: Vec<&Ref> = rows.iter().flat_map(|x| x.refs.iter()).collect();
            let (mut passed, mut failed, mut unresolved) =
                (BTreeSet::new(), BTreeSet::new(), Vec::new());
            for rf in &refs {
                let hits: Vec<&Outcome> = results.tests.iter().filter(|o| matches(rf, o)).collect();
                if hits.is_empty() {
                    unresolved.push(rf.text.clone());
                }
                for h in hits {
                    let key = format!("{}/{}::{}", h.package, h.target, h.name);
                    match h.outcome.as_str() {
                        "ok" => {
                            passed.insert(key);
                        }
                        "FAILED" => {
                            failed.insert(key);
                        }
                        _ => {}
                    }
                }
            }
            Line {
                id: r.id.clone(),
                text: r.text.clone(),
                claimed,
                items: rows.iter().map(|x| x.item.clone()).collect(),
                refs: refs.iter().map(|x| x.text.clone()).collect(),
                passed: passed.len(),
                failed: failed.into_iter().collect(),
                unresolved,
            }
        })
        .collect()
}

/// The run-independent part: what STANDARD.md maps to each requirement.
fn mapping_markdown(lines: &[Line]) -> String {
    let mut s = String::from(
        "# Conformance report (generated)\n\n\
         Generated by `cargo xtask conformance --markdown` from\n\
         `docs/spec/REQUIREMENTS.md` (every requirement ID), `docs/STANDARD.md`\n\
         (items, tests, claimed status) and the test outcomes of the last\n\
         `cargo xtask test`. Do not edit by hand: CI regenerates it\n\
         (`cargo xtask conformance --check`) and fails when this mapping is stale\n\
         or when a requirement marked done is not shown by passing tests.\n\n\
         ## Mapping\n\n\
         | ID | requirement | claimed | Rust items | tests named |\n|---|---|---|---|---|\n",
    );
    for l in lines {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            l.id,
            cell(&l.text),
            if l.claimed.is_empty() {
                "unmapped"
            } else {
                &l.claimed
            },
            cell(&l.items.join(" / ")),
            cell(&l.refs.join("; "))
        );
    }
    s
}

/// The run-dependent part: outcomes and back-ends.
fn run_markdown(lines: &[Line], results: &Results) -> String {
    let mut s = format!(
        "## Last run\n\n{} on back-ends {}: {} test outcomes recorded.\n\n\
         | ID | shown | passed | failed | not run |\n|---|---|---|---|---|\n",
        results.date,
        results.backends.join(", "),
        results.tests.len()
    );
    for l in lines {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            l.id,
            l.shown(),
            l.passed,
            cell(&l.failed.join(", ")),
            cell(&l.unresolved.join(", "))
        );
    }
    s
}
