//! Tidy checks of the workspace (issue 13). They read manifests and crate
//! roots only; nothing else is built, so they take milliseconds.
//!
//! - Every member's crate docs state its workspace dependencies exactly as
//!   its `Cargo.toml` has them (the convention in docs/ARCHITECTURE.md,
//!   "Conventions"): a `Depends on:` line and, where tests use more, a
//!   `Dev-depends on:` line.
//! - Back-end features (`ndarray`, `tch`, `wgpu`, `cuda`) are declared all
//!   together or not at all, only forward, and reach every workspace
//!   dependency that has the same feature; `cuda` is never on by default.
//! - Every dependency is declared once, in the root `[workspace.dependencies]`,
//!   and used as `name.workspace = true`.
//! - The table under "Dependency graph" in docs/ARCHITECTURE.md is the same
//!   graph.
//!
//! Each test lists every problem it finds, naming the crate and the
//! difference.
//!
//! Depends on: none.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// The back-end features that are forwarded up the crate chain (`flex`, the
/// default, is on in `unidl-backend` and needs no forwarding).
const BACKENDS: [&str; 4] = ["ndarray", "tch", "wgpu", "cuda"];

/// Dependency tables of a manifest.
const KINDS: [&str; 3] = ["dependencies", "build-dependencies", "dev-dependencies"];

/// One workspace member.
struct Member {
    /// The package name.
    name: String,
    /// Its directory, relative to the workspace root.
    dir: PathBuf,
    manifest: Table,
}

/// One dependency entry of a member.
struct Dep<'a> {
    /// The key (the name the crate uses).
    key: &'a str,
    /// `dependencies`, `build-dependencies` or `dev-dependencies`, with the
    /// `target.<cfg>.` prefix for target-specific tables.
    kind: String,
    spec: &'a Value,
}

impl Dep<'_> {
    fn is_dev(&self) -> bool {
        self.kind.ends_with("dev-dependencies")
    }

    fn optional(&self) -> bool {
        self.spec.get("optional").and_then(Value::as_bool) == Some(true)
    }

    fn features(&self) -> Vec<&str> {
        strings(self.spec.get("features"))
    }
}

struct Workspace {
    root: PathBuf,
    manifest: Table,
    members: Vec<Member>,
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn read_toml(path: &Path) -> Table {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Workspace {
    fn load() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .expect("workspace root");
        let manifest = read_toml(&root.join("Cargo.toml"));
        let members = strings(manifest.get("workspace").and_then(|w| w.get("members")))
            .into_iter()
            .map(|dir| {
                assert!(
                    !dir.contains('*'),
                    "tidy reads literal member paths only, not the glob `{dir}`"
                );
                let manifest = read_toml(&root.join(dir).join("Cargo.toml"));
                let name = manifest
                    .get("package")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{dir}/Cargo.toml has no package name"))
                    .to_string();
                Member {
                    name,
                    dir: PathBuf::from(dir),
                    manifest,
                }
            })
            .collect();
        Workspace {
            root,
            manifest,
            members,
        }
    }

    fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    fn root_dependencies(&self) -> &Table {
        self.manifest
            .get("workspace")
            .and_then(|w| w.get("dependencies"))
            .and_then(Value::as_table)
            .expect("root Cargo.toml has [workspace.dependencies]")
    }
}

/// Appends the entries of `table`'s dependency tables.
fn push_deps<'a>(out: &mut Vec<Dep<'a>>, prefix: &str, table: &'a Table) {
    for kind in KINDS {
        if let Some(t) = table.get(kind).and_then(Value::as_table) {
            for (key, spec) in t {
                out.push(Dep {
                    key,
                    kind: format!("{prefix}{kind}"),
                    spec,
                });
            }
        }
    }
}

impl Member {
    /// `crate (dir)` for messages.
    fn label(&self) -> String {
        format!("{} ({})", self.name, self.dir.display())
    }

    fn deps(&self) -> Vec<Dep<'_>> {
        let mut out = Vec::new();
        push_deps(&mut out, "", &self.manifest);
        if let Some(targets) = self.manifest.get("target").and_then(Value::as_table) {
            for (cfg, t) in targets {
                if let Some(t) = t.as_table() {
                    push_deps(&mut out, &format!("target.{cfg}."), t);
                }
            }
        }
        out
    }

    fn features(&self) -> BTreeMap<&str, Vec<&str>> {
        self.manifest
            .get("features")
            .and_then(Value::as_table)
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.as_str(), strings(Some(v))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The file holding the crate docs: the library root, else the first
    /// binary, else the first test target.
    fn crate_root(&self, root: &Path) -> Option<PathBuf> {
        let dir = root.join(&self.dir);
        let path_of = |section: &str| -> Option<PathBuf> {
            let t = match self.manifest.get(section)? {
                Value::Array(a) => a.first()?,
                other => other,
            };
            t.get("path").and_then(Value::as_str).map(|p| dir.join(p))
        };
        path_of("lib")
            .or_else(|| Some(dir.join("src/lib.rs")).filter(|p| p.is_file()))
            .or_else(|| path_of("bin"))
            .or_else(|| Some(dir.join("src/main.rs")).filter(|p| p.is_file()))
            .or_else(|| path_of("test"))
    }
}

/// The items of a `//! <label> a, b (optional), c.` statement, which may
/// continue over the following `//!` lines up to its full stop. `None` when
/// the docs have no such line; `Some(Err)` when it is there twice or has no
/// full stop.
fn stated(docs: &str, label: &str) -> Option<Result<Vec<String>, String>> {
    let lines: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .map(str::trim)
        .collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with(label))
        .collect();
    let &first = starts.first()?;
    if starts.len() > 1 {
        return Some(Err(format!("`{label}` appears {} times", starts.len())));
    }
    let mut text = lines[first][label.len()..].trim().to_string();
    let mut next = first + 1;
    while !text.ends_with('.') && next < lines.len() && !lines[next].is_empty() {
        text.push(' ');
        text.push_str(lines[next]);
        next += 1;
    }
    let Some(text) = text.strip_suffix('.') else {
        return Some(Err(format!("`{label}` does not end with a full stop")));
    };
    Some(Ok(split_items(text)))
}

/// `a (optional, feature `x`), b` → its items, split at the commas outside
/// parentheses; `none` or nothing → no item.
fn split_items(text: &str) -> Vec<String> {
    let text = text.trim();
    if text.is_empty() || text == "none" {
        return Vec::new();
    }
    let (mut items, mut item, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(item.trim().to_string());
                item.clear();
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item.trim().to_string());
    items
}

/// Compares a stated list with the workspace crates Cargo.toml has
/// (name → optional), appending the differences to `problems`.
fn compare(
    who: &str,
    label: &str,
    items: &[String],
    actual: &BTreeMap<&str, bool>,
    problems: &mut Vec<String>,
) {
    let mut seen = BTreeSet::new();
    for item in items {
        let name = item
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches('`');
        seen.insert(name.to_string());
        match actual.get(name) {
            None => problems.push(format!(
                "{who}: `{label}` names {name}, which Cargo.toml does not have"
            )),
            Some(&optional) => {
                let marked = item.contains("(optional");
                if optional && !marked {
                    problems.push(format!(
                        "{who}: `{label}` should mark {name} `(optional)`, as Cargo.toml does"
                    ));
                } else if !optional && marked {
                    problems.push(format!(
                        "{who}: `{label}` marks {name} optional; Cargo.toml does not"
                    ));
                }
            }
        }
    }
    let missing: Vec<&str> = actual
        .keys()
        .copied()
        .filter(|k| !seen.contains(*k))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{who}: `{label}` lacks {} (in Cargo.toml)",
            missing.join(", ")
        ));
    }
}

fn report(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s)\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The workspace crates among `m`'s dependencies (name → optional): those
/// of `[dependencies]` and `[build-dependencies]`, and those only in
/// `[dev-dependencies]`.
type WorkspaceDeps<'a> = (BTreeMap<&'a str, bool>, BTreeMap<&'a str, bool>);

fn workspace_deps<'a>(ws: &Workspace, m: &'a Member) -> WorkspaceDeps<'a> {
    let mut normal: BTreeMap<&str, bool> = BTreeMap::new();
    let mut dev: BTreeMap<&str, bool> = BTreeMap::new();
    for d in m.deps() {
        if ws.member(d.key).is_none() {
            continue;
        }
        if d.is_dev() {
            dev.insert(d.key, false);
        } else {
            *normal.entry(d.key).or_default() |= d.optional();
        }
    }
    dev.retain(|k, _| !normal.contains_key(k));
    (normal, dev)
}

#[test]
fn every_crate_states_its_workspace_dependencies() {
    let ws = Workspace::load();
    let mut problems = Vec::new();
    for m in &ws.members {
        let (normal, dev) = workspace_deps(&ws, m);
        let Some(file) = m.crate_root(&ws.root) else {
            problems.push(format!("{}: no library, binary or test target", m.label()));
            continue;
        };
        let who = format!(
            "{} {}",
            m.label(),
            file.strip_prefix(&ws.root).unwrap_or(&file).display()
        );
        let docs = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{who}: {e}"));
        match stated(&docs, "Depends on:") {
            None => problems.push(format!(
                "{who}: no `//! Depends on:` line; Cargo.toml has {}",
                if normal.is_empty() {
                    "none".to_string()
                } else {
                    normal.keys().copied().collect::<Vec<_>>().join(", ")
                }
            )),
            Some(Err(e)) => problems.push(format!("{who}: {e}")),
            Some(Ok(items)) => compare(&who, "Depends on:", &items, &normal, &mut problems),
        }
        match stated(&docs, "Dev-depends on:") {
            None if dev.is_empty() => {}
            None => problems.push(format!(
                "{who}: no `//! Dev-depends on:` line; [dev-dependencies] add {}",
                dev.keys().copied().collect::<Vec<_>>().join(", ")
            )),
            Some(Err(e)) => problems.push(format!("{who}: {e}")),
            Some(Ok(items)) => compare(&who, "Dev-depends on:", &items, &dev, &mut problems),
        }
    }
    report("stated dependencies", &problems);
}

#[test]
fn the_architecture_table_is_the_dependency_graph() {
    let ws = Workspace::load();
    let path = ws.root.join("docs/ARCHITECTURE.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = text
        .split("\n## Dependency graph\n")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a `## Dependency graph` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    // crate → (depends on, tests also use)
    let mut rows: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let name = cells[0].split('`').nth(1).unwrap_or("").to_string();
        let cell = |i: usize| split_items(cells.get(i).copied().unwrap_or(""));
        rows.insert(name, (cell(1), cell(2)));
    }
    let mut problems = Vec::new();
    for m in &ws.members {
        let who = format!("docs/ARCHITECTURE.md, row {}", m.name);
        let (normal, dev) = workspace_deps(&ws, m);
        match rows.remove(&m.name) {
            None => problems.push(format!("{who}: missing")),
            Some((deps, dev_deps)) => {
                compare(&who, "depends on", &deps, &normal, &mut problems);
                compare(&who, "tests also use", &dev_deps, &dev, &mut problems);
            }
        }
    }
    for name in rows.keys() {
        problems.push(format!(
            "docs/ARCHITECTURE.md, row {name}: no workspace member has this name"
        ));
    }
    report("dependency table", &problems);
}

#[test]
fn backend_features_are_declared_and_forwarded_alike() {
    let ws = Workspace::load();
    let mut problems = Vec::new();
    let enables_cuda = |f: &str| f == "cuda" || f.ends_with("/cuda");
    for (key, spec) in ws.root_dependencies() {
        if strings(spec.get("features"))
            .iter()
            .any(|f| enables_cuda(f))
        {
            problems.push(format!(
                "root [workspace.dependencies] {key} enables `cuda`; it may only be forwarded"
            ));
        }
    }
    for m in &ws.members {
        let who = m.label();
        let features = m.features();
        if features
            .get("default")
            .is_some_and(|d| d.iter().any(|f| enables_cuda(f)))
        {
            problems.push(format!(
                "{who}: `cuda` is on by default; it may only be forwarded"
            ));
        }
        let deps = m.deps();
        for d in &deps {
            if d.features().iter().any(|f| enables_cuda(f)) {
                problems.push(format!(
                    "{who}: [{}] {} enables `cuda`; it may only be forwarded",
                    d.kind, d.key
                ));
            }
        }
        let declared: Vec<&str> = BACKENDS
            .into_iter()
            .filter(|b| features.contains_key(b))
            .collect();
        if declared.is_empty() {
            continue;
        }
        // key → optional, for every dependency whatever its table
        let mut by_key: BTreeMap<&str, bool> = BTreeMap::new();
        for d in &deps {
            *by_key.entry(d.key).or_default() |= d.optional();
        }
        for b in BACKENDS {
            let Some(list) = features.get(b) else {
                problems.push(format!(
                    "{who}: declares {} but not `{b}`",
                    declared.join(", ")
                ));
                continue;
            };
            for entry in list {
                let forwards = entry.split_once('/').is_some_and(|(dep, f)| {
                    f == b && by_key.contains_key(dep.trim_end_matches('?'))
                });
                if !forwards {
                    problems.push(format!(
                        "{who}: feature `{b}` has `{entry}`; a back-end feature only forwards `<dependency>/{b}`"
                    ));
                }
            }
            for (&key, &optional) in &by_key {
                let has = ws
                    .member(key)
                    .is_some_and(|dep| dep.features().contains_key(b));
                if !has {
                    continue;
                }
                let want = if optional {
                    format!("{key}?/{b}")
                } else {
                    format!("{key}/{b}")
                };
                if !list.contains(&want.as_str()) {
                    problems.push(format!("{who}: feature `{b}` does not forward to `{want}`"));
                }
            }
        }
    }
    report("back-end features", &problems);
}

#[test]
fn every_dependency_comes_from_the_workspace_table() {
    let ws = Workspace::load();
    let root_deps = ws.root_dependencies();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for m in &ws.members {
        let who = m.label();
        let deps = m.deps();
        for d in &deps {
            used.insert(d.key);
            let inherits = d.spec.get("workspace").and_then(Value::as_bool) == Some(true);
            if !inherits {
                problems.push(format!(
                    "{who}: [{}] {} is not `{}.workspace = true`",
                    d.kind, d.key, d.key
                ));
            }
            if !root_deps.contains_key(d.key) {
                problems.push(format!(
                    "{who}: [{}] {} is not in the root [workspace.dependencies]",
                    d.kind, d.key
                ));
            }
            // a dev entry that repeats a normal one and adds no feature
            let normal_kind = d.kind.replace("dev-dependencies", "dependencies");
            if d.is_dev()
                && d.features().is_empty()
                && deps.iter().any(|n| n.key == d.key && n.kind == normal_kind)
            {
                problems.push(format!(
                    "{who}: {} is in both [{normal_kind}] and [{}]; the second adds nothing",
                    d.key, d.kind
                ));
            }
        }
    }
    let mut packages: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, spec) in root_deps {
        if !used.contains(key.as_str()) {
            problems.push(format!(
                "root [workspace.dependencies] {key} is used by no member"
            ));
        }
        let package = spec.get("package").and_then(Value::as_str).unwrap_or(key);
        packages.entry(package).or_default().push(key);
        if let Some(path) = spec.get("path").and_then(Value::as_str) {
            match ws.members.iter().find(|m| m.dir == Path::new(path)) {
                None => problems.push(format!(
                    "root [workspace.dependencies] {key} points at {path}, which is no member"
                )),
                Some(m) if m.name != package => problems.push(format!(
                    "root [workspace.dependencies] {key} points at {path}, which is {}",
                    m.name
                )),
                Some(_) => {}
            }
        }
    }
    for (package, keys) in packages {
        if keys.len() > 1 {
            problems.push(format!(
                "root [workspace.dependencies] declares {package} {} times: {}",
                keys.len(),
                keys.join(", ")
            ));
        }
    }
    report("workspace dependencies", &problems);
}
