//! The worker: the child process that runs the cases of one target.
//!
//! It limits its own address space (an allocation the file cannot justify
//! then fails and aborts, which the driver sees), runs each case under
//! `catch_unwind` on a thread with the standard 2 MiB stack of a spawned
//! thread (where data loaders run readers), and before each case writes the
//! case index and its running totals to the progress file, so that a driver
//! whose worker died knows which case killed it and what came before.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::FuzzError;
use crate::mutate::Mutator;
use crate::target::{Ctx, Outcome, Target};

/// Stack of the thread that runs the cases: Rust's default for spawned
/// threads, so a reader that recurses on file data fails here as it would in
/// a data-loader thread.
pub const CASE_STACK_BYTES: usize = 2 << 20;

/// Default address-space limit of a worker.
pub const DEFAULT_MEM_LIMIT_MB: u64 = 4096;

/// Everything a worker is told on its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerArgs {
    /// Target name.
    pub target: String,
    /// Run seed.
    pub seed: u64,
    /// First case index.
    pub start: u64,
    /// One past the last case index.
    pub end: u64,
    /// Stop starting new cases after this long.
    pub time: Duration,
    /// Private folder for case files.
    pub dir: PathBuf,
    /// Progress file (see [`Progress`]).
    pub progress: PathBuf,
    /// Address-space limit, MiB (0: none).
    pub mem_limit_mb: u64,
    /// Repository root (seed files).
    pub root: PathBuf,
}

impl WorkerArgs {
    /// The arguments after the executable (`--worker …`).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--worker".into(),
            self.target.clone(),
            self.seed.to_string(),
            self.start.to_string(),
            self.end.to_string(),
            u64::try_from(self.time.as_millis())
                .unwrap_or(u64::MAX)
                .to_string(),
            self.dir.display().to_string(),
            self.progress.display().to_string(),
            self.mem_limit_mb.to_string(),
            self.root.display().to_string(),
        ]
    }

    /// Parses what [`to_args`](Self::to_args) wrote (without `--worker`).
    pub fn parse(args: &[String]) -> Result<Self, FuzzError> {
        let bad = || FuzzError::Usage(format!("malformed worker arguments {args:?}"));
        let [target, seed, start, end, millis, dir, progress, mem, root] = args else {
            return Err(bad());
        };
        let num = |s: &String| s.parse::<u64>().map_err(|_| bad());
        Ok(WorkerArgs {
            target: target.clone(),
            seed: num(seed)?,
            start: num(start)?,
            end: num(end)?,
            time: Duration::from_millis(num(millis)?),
            dir: dir.into(),
            progress: progress.into(),
            mem_limit_mb: num(mem)?,
            root: root.into(),
        })
    }
}

/// The record a worker keeps in its progress file: eight little-endian u64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Index of the case running now (or last run).
    pub current: u64,
    /// Cases finished by this worker.
    pub done: u64,
    /// Of those, cases the reader accepted.
    pub accepted: u64,
    /// Slowest finished case, microseconds.
    pub slowest_us: u64,
    /// Its index.
    pub slowest_index: u64,
    /// Peak resident memory of the worker so far, KiB (`VmHWM`).
    pub peak_rss_kb: u64,
    /// Panics caught so far.
    pub panics: u64,
    /// 1 once a case has started.
    pub started: u64,
}

impl Progress {
    const LEN: usize = 64;

    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        let v = [
            self.current,
            self.done,
            self.accepted,
            self.slowest_us,
            self.slowest_index,
            self.peak_rss_kb,
            self.panics,
            self.started,
        ];
        for (i, x) in v.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Reads a progress file (all zeros if it is missing or short).
    pub fn read(path: &Path) -> Progress {
        let Ok(b) = std::fs::read(path) else {
            return Progress::default();
        };
        if b.len() < Self::LEN {
            return Progress::default();
        }
        let w = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        Progress {
            current: w(0),
            done: w(1),
            accepted: w(2),
            slowest_us: w(3),
            slowest_index: w(4),
            peak_rss_kb: w(5),
            panics: w(6),
            started: w(7),
        }
    }
}

/// Peak resident set (`VmHWM`, KiB) of process `pid` (`"self"` for this one),
/// from `/proc`; 0 where it cannot be read.
pub fn peak_rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Address space already mapped by this process (`VmSize`, bytes), from
/// `/proc`; 0 where it cannot be read.
fn mapped_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// Limits the address space and turns off core dumps (an abort is expected
/// and reported; a core file per finding is not wanted).
///
/// The limit is `mem_limit_mb` **on top of** what the process has mapped
/// already (its libraries, thread stacks and allocator arenas differ
/// between machines and builds: a debug build linked with FFmpeg maps far
/// more than a release one), so the cases get the same room everywhere.
/// It is applied after the case thread exists, so the thread's own stack
/// is not charged against the cases.
fn limit_resources(mem_limit_mb: u64) {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    if mem_limit_mb > 0 {
        let bytes = mem_limit_mb
            .saturating_mul(1 << 20)
            .saturating_add(mapped_bytes());
        if let Err(e) = setrlimit(
            Resource::As,
            Rlimit {
                current: Some(bytes),
                maximum: Some(bytes),
            },
        ) {
            eprintln!("unidl-fuzz worker: cannot limit the address space: {e}");
        }
    }
}

/// Runs a worker: the cases `start..end` of one target, until done or out
/// of time. Each panic is printed on stdout as `panic <index> <µs> <message>`
/// (the message `{:?}`-quoted); totals go to the progress file.
pub fn run_worker(args: &WorkerArgs, targets: &[Target]) -> Result<(), FuzzError> {
    let target = *targets
        .iter()
        .find(|t| t.name == args.target)
        .ok_or_else(|| FuzzError::UnknownTarget {
            name: args.target.clone(),
            known: names(targets),
        })?;
    let seeds = target.load_seeds(&args.root)?;
    let ctx = Ctx::new(&args.dir, &args.root)?;
    (target.setup)(&ctx)?;
    let progress = File::create(&args.progress).map_err(|e| FuzzError::io(&args.progress, e))?;
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if let Ok(mut slot) = LAST_PANIC.lock() {
            *slot = Some(msg);
        }
    }));

    let args = args.clone();
    let mem_limit_mb = args.mem_limit_mb;
    // The case thread waits until the limit is in place.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(CASE_STACK_BYTES)
        .spawn(move || {
            if wait.recv().is_err() {
                return;
            }
            let mutator = Mutator::new(&seeds, target.tokens, args.seed, target.name);
            let began = Instant::now();
            let mut p = Progress::default();
            for i in args.start..args.end {
                if began.elapsed() >= args.time {
                    break;
                }
                let bytes = target.case(&mutator, i);
                p.current = i;
                p.started = 1;
                if i % 256 == 0 {
                    p.peak_rss_kb = peak_rss_kb("self");
                }
                let _ = progress.write_at(&p.to_bytes(), 0);
                let t0 = Instant::now();
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&ctx, &bytes)));
                let us = t0.elapsed().as_micros() as u64;
                p.done += 1;
                if us > p.slowest_us {
                    p.slowest_us = us;
                    p.slowest_index = i;
                }
                match r {
                    Ok(Outcome::Accepted) => p.accepted += 1,
                    Ok(Outcome::Rejected) => {}
                    Err(_) => {
                        p.panics += 1;
                        let msg = LAST_PANIC
                            .lock()
                            .ok()
                            .and_then(|mut s| s.take())
                            .unwrap_or_else(|| "panic without a message".into());
                        println!("panic {i} {us} {msg:?}");
                    }
                }
            }
            p.peak_rss_kb = peak_rss_kb("self");
            let _ = progress.write_at(&p.to_bytes(), 0);
        })
        .map_err(|e| FuzzError::Worker {
            target: target.name.to_string(),
            reason: format!("cannot start the case thread: {e}"),
        })?;
    limit_resources(mem_limit_mb);
    let _ = go.send(());
    handle.join().map_err(|_| FuzzError::Worker {
        target: target.name.to_string(),
        reason: "the case thread panicked outside a case".into(),
    })
}

/// Runs one case in this process, without `catch_unwind`, so a panic shows
/// its backtrace (`--replay`).
pub fn replay(target: &Target, root: &Path, bytes: &[u8]) -> Result<Outcome, FuzzError> {
    let dir = scratch_dir().join(format!("unidl-fuzz-replay-{}", std::process::id()));
    let ctx = Ctx::new(&dir, root)?;
    (target.setup)(&ctx)?;
    let out = (target.run)(&ctx, bytes);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// Where case files are written: `/dev/shm` (memory) when it is there, so
/// that rewriting a file per case costs no disk I/O (on ext4 with `discard`
/// a truncation alone takes most of a millisecond), else the temp folder.
pub fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let writable =
        shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly());
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The names of `targets`, comma-separated.
pub fn names(targets: &[Target]) -> String {
    targets
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}
