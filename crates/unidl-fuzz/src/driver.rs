//! The driver: runs each target's cases in a worker process, restarts the
//! worker after a case kills it, and saves every case that panicked, aborted
//! or hung.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::FuzzError;
use crate::mutate::Mutator;
use crate::target::Target;
use crate::worker::{Progress, WorkerArgs, peak_rss_kb};

/// Distinct findings of one kind saved per target (the rest are counted).
pub const MAX_SAVED_PER_TARGET: usize = 20;

/// How a run is made.
#[derive(Debug, Clone)]
pub struct Config {
    /// Targets to run, in order.
    pub targets: Vec<Target>,
    /// Run seed: the same seed gives the same cases.
    pub seed: u64,
    /// Cases per target (`None`: until `time` runs out).
    pub cases: Option<u64>,
    /// Time per target (`None`: until `cases` are done).
    pub time: Option<Duration>,
    /// Targets run at once, each in its own worker.
    pub jobs: usize,
    /// Address-space limit of a worker, MiB (0: none).
    pub mem_limit_mb: u64,
    /// A case still running after this long is a hang (a finding).
    pub case_timeout: Duration,
    /// Where findings are saved (`<dir>/<target>/…`).
    pub findings_dir: PathBuf,
    /// Repository root (seed files).
    pub root: PathBuf,
    /// The `unidl-fuzz` executable that serves as worker.
    pub worker_exe: PathBuf,
    /// Print a line per target as it finishes.
    pub verbose: bool,
}

/// What kind of failure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// The reader panicked (caught by `catch_unwind`).
    Panic,
    /// The worker died: a stack overflow, an allocation beyond the memory
    /// limit, or another abort.
    Abort,
    /// A case ran longer than the case timeout.
    Hang,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Panic => "panic",
            FindingKind::Abort => "abort",
            FindingKind::Hang => "hang",
        })
    }
}

/// One failing case.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Panic, abort or hang.
    pub kind: FindingKind,
    /// The target.
    pub target: String,
    /// The run seed.
    pub seed: u64,
    /// The case index (the same seed and index give the same bytes).
    pub case: u64,
    /// The saved case (`None` past [`MAX_SAVED_PER_TARGET`]).
    pub saved: Option<PathBuf>,
    /// Panic message, or the end of the worker's stderr.
    pub message: String,
    /// How many cases failed the same way (same panic location).
    pub count: u64,
}

/// Totals of one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetReport {
    /// The target.
    pub name: String,
    /// Cases run (the ones that killed a worker included).
    pub cases: u64,
    /// Cases the reader accepted (the rest were typed errors or findings).
    pub accepted: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Panicking cases.
    pub panics: u64,
    /// Cases that killed the worker.
    pub aborts: u64,
    /// Cases that hung.
    pub hangs: u64,
    /// Slowest finished case, microseconds.
    pub slowest_us: u64,
    /// Its index.
    pub slowest_case: u64,
    /// Peak resident memory of a worker, KiB.
    pub peak_rss_kb: u64,
}

impl TargetReport {
    /// Cases per second.
    pub fn rate(&self) -> f64 {
        self.cases as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Panics, aborts and hangs together.
    pub fn failures(&self) -> u64 {
        self.panics + self.aborts + self.hangs
    }
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The run seed.
    pub seed: u64,
    /// One row per target, in the order asked.
    pub rows: Vec<TargetReport>,
    /// Every distinct finding.
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when no case panicked, aborted or hung.
    pub fn is_clean(&self) -> bool {
        self.rows.iter().all(|r| r.failures() == 0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| target | cases | cases/s | accepted | panics | aborts | hangs | slowest case | peak RSS |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---|---:|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {} | {:.0} | {:.1}% | {} | {} | {} | {:.1} ms (#{}) | {:.0} MiB |",
                r.name,
                r.cases,
                r.rate(),
                100.0 * r.accepted as f64 / r.cases.max(1) as f64,
                r.panics,
                r.aborts,
                r.hangs,
                r.slowest_us as f64 / 1000.0,
                r.slowest_case,
                r.peak_rss_kb as f64 / 1024.0
            )?;
        }
        for x in &self.findings {
            writeln!(
                f,
                "FINDING {} in `{}`: seed {}, case {} ({} alike){}\n  {}\n  replay: cargo xtask fuzz {} --replay {}",
                x.kind,
                x.target,
                x.seed,
                x.case,
                x.count,
                x.saved
                    .as_ref()
                    .map(|p| format!(", saved as {}", p.display()))
                    .unwrap_or_default(),
                x.message.trim().replace('\n', "\n  "),
                x.target,
                x.saved
                    .as_ref()
                    .map_or_else(|| "<file>".into(), |p| p.display().to_string()),
            )?;
        }
        Ok(())
    }
}

/// Runs every target of `cfg` and returns the report (findings are saved as
/// they are found).
pub fn run(cfg: &Config) -> Result<Report, FuzzError> {
    let jobs = cfg.jobs.clamp(1, cfg.targets.len().max(1));
    let next = AtomicUsize::new(0);
    type Slot = Option<Result<(TargetReport, Vec<Finding>), FuzzError>>;
    let results: Mutex<Vec<Slot>> = Mutex::new((0..cfg.targets.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(t) = cfg.targets.get(i) else { break };
                    let r = run_target(cfg, t);
                    if cfg.verbose
                        && let Ok((row, _)) = &r
                    {
                        eprintln!(
                            "unidl-fuzz: {:<20} {:>9} cases {:>8.0}/s  accepted {:.1}%  panics {} aborts {} hangs {}  slowest {:.1} ms (#{})  peak {:.0} MiB",
                            row.name,
                            row.cases,
                            row.rate(),
                            100.0 * row.accepted as f64 / row.cases.max(1) as f64,
                            row.panics,
                            row.aborts,
                            row.hangs,
                            row.slowest_us as f64 / 1000.0,
                            row.slowest_case,
                            row.peak_rss_kb as f64 / 1024.0
                        );
                    }
                    results.lock().expect("results lock")[i] = Some(r);
                }
            });
        }
    });
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    for r in results.into_inner().expect("results lock") {
        let (row, f) = r.expect("every target ran")?;
        rows.push(row);
        findings.extend(f);
    }
    Ok(Report {
        seed: cfg.seed,
        rows,
        findings,
    })
}

/// Collects findings of one target, deduplicated by kind and message head.
struct Findings<'a> {
    cfg: &'a Config,
    target: &'a Target,
    mutator: Mutator<'a>,
    by_key: HashMap<(FindingKind, String), usize>,
    list: Vec<Finding>,
    saved: usize,
}

impl Findings<'_> {
    fn add(&mut self, kind: FindingKind, case: u64, message: String) -> Result<(), FuzzError> {
        let key = (kind, dedup_key(&message));
        if let Some(&i) = self.by_key.get(&key) {
            self.list[i].count += 1;
            return Ok(());
        }
        let saved = if self.saved < MAX_SAVED_PER_TARGET {
            self.saved += 1;
            let dir = self.cfg.findings_dir.join(self.target.name);
            std::fs::create_dir_all(&dir).map_err(|e| FuzzError::io(&dir, e))?;
            let stem = format!("{kind}-seed{}-case{case}", self.cfg.seed);
            let bin = dir.join(format!("{stem}.bin"));
            let bytes = self.target.case(&self.mutator, case);
            std::fs::write(&bin, &bytes).map_err(|e| FuzzError::io(&bin, e))?;
            let txt = dir.join(format!("{stem}.txt"));
            let note = format!(
                "{kind} in fuzz target `{}` (seed {}, case {case}, {} bytes)\n\n{message}\n\nreplay: cargo xtask fuzz {} --replay {}\nregenerate: cargo xtask fuzz {} --seed {} --cases {}\n",
                self.target.name,
                self.cfg.seed,
                bytes.len(),
                self.target.name,
                bin.display(),
                self.target.name,
                self.cfg.seed,
                case + 1
            );
            std::fs::write(&txt, note).map_err(|e| FuzzError::io(&txt, e))?;
            Some(bin)
        } else {
            None
        };
        self.by_key.insert(key, self.list.len());
        self.list.push(Finding {
            kind,
            target: self.target.name.to_string(),
            seed: self.cfg.seed,
            case,
            saved,
            message,
            count: 1,
        });
        Ok(())
    }
}

/// What identifies "the same bug": a panic's location line, an abort's
/// last stderr line with its numbers removed (allocation sizes differ).
fn dedup_key(message: &str) -> String {
    if let Some(l) = message.lines().find(|l| l.contains("panicked at")) {
        return l.to_string();
    }
    let line = message
        .lines()
        .find(|l| l.contains("memory allocation") || l.contains("overflowed"))
        .unwrap_or_else(|| message.lines().last().unwrap_or(""));
    line.chars().filter(|c| !c.is_ascii_digit()).collect()
}

fn run_target(cfg: &Config, target: &Target) -> Result<(TargetReport, Vec<Finding>), FuzzError> {
    let seeds = target.load_seeds(&cfg.root)?;
    let mut findings = Findings {
        cfg,
        target,
        mutator: Mutator::new(&seeds, target.tokens, cfg.seed, target.name),
        by_key: HashMap::new(),
        list: Vec::new(),
        saved: 0,
    };
    let end = cfg.cases.unwrap_or(u64::MAX);
    let budget = cfg.time.unwrap_or(Duration::from_secs(1 << 40));
    let began = Instant::now();
    let work = crate::worker::scratch_dir().join(format!(
        "unidl-fuzz-{}-{}",
        std::process::id(),
        target.name
    ));
    let mut row = TargetReport {
        name: target.name.to_string(),
        ..TargetReport::default()
    };
    let mut next = 0u64;
    while next < end {
        let left = budget.saturating_sub(began.elapsed());
        if left.is_zero() {
            break;
        }
        let args = WorkerArgs {
            target: target.name.to_string(),
            seed: cfg.seed,
            start: next,
            end,
            time: left,
            dir: work.join("case"),
            progress: work.join("progress"),
            mem_limit_mb: cfg.mem_limit_mb,
            root: cfg.root.clone(),
        };
        std::fs::create_dir_all(&work).map_err(|e| FuzzError::io(&work, e))?;
        let _ = std::fs::remove_file(&args.progress);
        let run = run_worker(cfg, &args)?;
        let p = run.progress;
        row.cases += p.done;
        row.accepted += p.accepted;
        if p.slowest_us > row.slowest_us {
            row.slowest_us = p.slowest_us;
            row.slowest_case = p.slowest_index;
        }
        row.peak_rss_kb = row.peak_rss_kb.max(p.peak_rss_kb).max(run.polled_rss_kb);
        for (case, msg) in run.panics {
            row.panics += 1;
            findings.add(FindingKind::Panic, case, msg)?;
        }
        match run.end {
            WorkerEnd::Finished => break,
            WorkerEnd::Died(reason) | WorkerEnd::Hung(reason) if p.started == 0 => {
                return Err(FuzzError::Worker {
                    target: target.name.to_string(),
                    reason: format!("died before its first case: {reason}"),
                });
            }
            WorkerEnd::Died(reason) => {
                row.cases += 1;
                row.aborts += 1;
                findings.add(FindingKind::Abort, p.current, reason)?;
                next = p.current + 1;
            }
            WorkerEnd::Hung(reason) => {
                row.cases += 1;
                row.hangs += 1;
                findings.add(FindingKind::Hang, p.current, reason)?;
                next = p.current + 1;
            }
        }
    }
    row.elapsed = began.elapsed();
    let _ = std::fs::remove_dir_all(&work);
    Ok((row, findings.list))
}

/// How a worker process ended.
enum WorkerEnd {
    /// It ran its cases (or its time out) and exited cleanly.
    Finished,
    /// It died in a case: why (exit status and the end of its stderr).
    Died(String),
    /// It was killed because a case ran past the timeout.
    Hung(String),
}

struct WorkerRun {
    progress: Progress,
    panics: Vec<(u64, String)>,
    polled_rss_kb: u64,
    end: WorkerEnd,
}

fn spawn(cfg: &Config, args: &WorkerArgs) -> Result<Child, FuzzError> {
    Command::new(&cfg.worker_exe)
        .args(args.to_args())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FuzzError::Worker {
            target: args.target.clone(),
            reason: format!("cannot start {}: {e}", cfg.worker_exe.display()),
        })
}

fn run_worker(cfg: &Config, args: &WorkerArgs) -> Result<WorkerRun, FuzzError> {
    let mut child = spawn(cfg, args)?;
    let pid = child.id().to_string();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let panics: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let out_thread = {
        let panics = Arc::clone(&panics);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = parse_panic_line(&line) {
                    panics.lock().expect("panics lock").push(p);
                }
            }
        })
    };
    let err_thread = std::thread::spawn(move || {
        // Keep the end of stderr: an abort's reason is its last lines.
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        let mut r = stderr;
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 16 * 1024 {
                tail.drain(..tail.len() - 8 * 1024);
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });

    let mut last = Progress::read(&args.progress);
    let mut changed = Instant::now();
    let mut polled_rss_kb = 0;
    let mut polls = 0u64;
    let mut hung = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| FuzzError::Worker {
            target: args.target.clone(),
            reason: e.to_string(),
        })? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
        polls += 1;
        if polls.is_multiple_of(10) {
            polled_rss_kb = polled_rss_kb.max(peak_rss_kb(&pid));
        }
        let p = Progress::read(&args.progress);
        if (p.current, p.started) != (last.current, last.started) {
            last = p;
            changed = Instant::now();
        } else if last.started == 1 && changed.elapsed() > cfg.case_timeout {
            let _ = child.kill();
            hung = true;
            break child.wait().map_err(|e| FuzzError::Worker {
                target: args.target.clone(),
                reason: e.to_string(),
            })?;
        }
    };
    let _ = out_thread.join();
    let stderr_tail = err_thread.join().unwrap_or_default();
    let progress = Progress::read(&args.progress);
    let panics = std::mem::take(&mut *panics.lock().expect("panics lock"));
    let end = if hung {
        WorkerEnd::Hung(format!(
            "case ran longer than {:.0} s (killed)",
            cfg.case_timeout.as_secs_f64()
        ))
    } else if status.success() {
        WorkerEnd::Finished
    } else {
        let tail: Vec<&str> = stderr_tail
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(6)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        WorkerEnd::Died(format!("worker {}: {}", describe(status), tail.join("\n")))
    };
    Ok(WorkerRun {
        progress,
        panics,
        polled_rss_kb,
        end,
    })
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(6)) => "killed by SIGABRT".into(),
        (_, Some(11)) => "killed by SIGSEGV".into(),
        (_, Some(9)) => "killed by SIGKILL".into(),
        (_, Some(s)) => format!("killed by signal {s}"),
        (Some(c), _) => format!("exited with status {c}"),
        _ => status.to_string(),
    }
}

/// `panic <index> <µs> "<message>"` → (index, message).
fn parse_panic_line(line: &str) -> Option<(u64, String)> {
    let rest = line.strip_prefix("panic ")?;
    let (index, rest) = rest.split_once(' ')?;
    let (_us, quoted) = rest.split_once(' ')?;
    Some((index.parse().ok()?, unquote(quoted)))
}

/// Undoes `{:?}` of a string (the escapes Rust's Debug writes).
fn unquote(q: &str) -> String {
    let inner = q
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(q);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('u') => {
                let hex: String = chars
                    .by_ref()
                    .skip_while(|&c| c == '{')
                    .take_while(|&c| c != '}')
                    .collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The repository root this crate was built in (`crates/unidl-fuzz/../..`).
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_lines_round_trip_through_debug_quoting() {
        let msg = "panicked at src/a.rs:1:2:\nindex 3 out of range for \"x\"\t\u{7f}é";
        let line = format!("panic 42 17 {msg:?}");
        assert_eq!(parse_panic_line(&line), Some((42, msg.to_string())));
        assert_eq!(parse_panic_line("noise"), None);
    }

    #[test]
    fn findings_of_one_location_share_a_key() {
        let a = "panicked at src/a.rs:10:5:\nindex 7 out of range";
        let b = "panicked at src/a.rs:10:5:\nindex 9 out of range";
        let c = "panicked at src/b.rs:10:5:\nindex 9 out of range";
        assert_eq!(dedup_key(a), dedup_key(b));
        assert_ne!(dedup_key(a), dedup_key(c));
        assert_eq!(
            dedup_key("memory allocation of 800 bytes failed"),
            dedup_key("memory allocation of 17179869184 bytes failed")
        );
    }
}
