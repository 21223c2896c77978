//! CI's short fuzzing pass: every target of this build, 10,000 cases each
//! with a fixed seed, through the real child-process driver (so an abort or
//! a hang fails this test as well as a panic). Findings are saved under
//! `target/fuzz-findings/` and named in the failure message.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use unidl_fuzz::driver::{self, Config, FindingKind};
use unidl_fuzz::{Mutator, targets};

/// Cases per target: every target, every run.
const CASES: u64 = 10_000;
/// The seed of the short pass (the long run in docs/RELIABILITY.md uses others).
const SEED: u64 = 13;

#[test]
fn every_target_survives_ten_thousand_mutated_cases() {
    let root = driver::default_root();
    // Slowest first (measured in the test profile), so that the two workers
    // finish together instead of one running the slowest target alone.
    const SLOW_FIRST: [&str; 8] = [
        "mp3",
        "ffmpeg-video",
        "ffmpeg-audio",
        "keras-archive",
        "keras-weights-h5",
        "wav",
        "pytorch-zip",
        "paddle",
    ];
    let mut all = targets::all();
    all.sort_by_key(|t| {
        SLOW_FIRST
            .iter()
            .position(|s| *s == t.name)
            .unwrap_or(SLOW_FIRST.len())
    });
    let cfg = Config {
        targets: all,
        seed: SEED,
        cases: Some(CASES),
        time: None,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get().min(2)),
        mem_limit_mb: unidl_fuzz::worker::DEFAULT_MEM_LIMIT_MB,
        // Generous: this is a debug build sharing the machine with other tests.
        case_timeout: Duration::from_secs(60),
        findings_dir: root.join("target/fuzz-findings"),
        root,
        worker_exe: PathBuf::from(env!("CARGO_BIN_EXE_unidl-fuzz")),
        verbose: false,
    };
    let began = Instant::now();
    let report = driver::run(&cfg).expect("the fuzz driver runs");
    println!(
        "short pass: {} targets x {CASES} cases, seed {SEED}, {:.1} s\n{report}",
        report.rows.len(),
        began.elapsed().as_secs_f64()
    );
    for (t, feature) in targets::left_out() {
        println!("short pass: NOT RUN: {t} (cargo feature `{feature}` of unidl-fuzz)");
    }
    for row in &report.rows {
        assert!(
            row.cases >= CASES,
            "{}: only {} of {CASES} cases ran",
            row.name,
            row.cases
        );
    }
    assert!(report.is_clean(), "fuzzing found failures:\n{report}");
}

/// The harness finds what it is meant to: the `selftest` target panics,
/// aborts and hangs on known cases; each kind is reported with the case
/// index that does it, saved, and the worker goes on after an abort or a
/// hang.
#[test]
fn the_driver_reports_panics_aborts_and_hangs_with_their_cases() {
    let root = driver::default_root();
    let findings = std::env::temp_dir().join(format!("unidl-fuzz-selftest-{}", std::process::id()));
    let target = targets::select(&["selftest".to_string()]).unwrap();
    let cfg = Config {
        targets: target.clone(),
        seed: 5,
        cases: Some(1500),
        time: None,
        jobs: 1,
        mem_limit_mb: unidl_fuzz::worker::DEFAULT_MEM_LIMIT_MB,
        case_timeout: Duration::from_millis(500),
        findings_dir: findings.clone(),
        root: root.clone(),
        worker_exe: PathBuf::from(env!("CARGO_BIN_EXE_unidl-fuzz")),
        verbose: false,
    };
    let report = driver::run(&cfg).unwrap();
    let row = &report.rows[0];
    assert_eq!(row.cases, 1500, "{report}");
    assert!(!report.is_clean());
    // What each case does is known in advance.
    let seeds = target[0].load_seeds(&root).unwrap();
    let m = Mutator::new(&seeds, &[], 5, "selftest");
    let count = |k| {
        (0..1500)
            .filter(|&i| targets::selftest_kind(&target[0].case(&m, i)) == Some(k))
            .count() as u64
    };
    assert_eq!(row.panics, count(FindingKind::Panic), "{report}");
    assert_eq!(row.aborts, count(FindingKind::Abort), "{report}");
    assert_eq!(row.hangs, count(FindingKind::Hang), "{report}");
    for kind in [FindingKind::Panic, FindingKind::Abort, FindingKind::Hang] {
        let f = report
            .findings
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} reported:\n{report}"));
        let saved = std::fs::read(f.saved.as_ref().unwrap()).unwrap();
        assert_eq!(saved, target[0].case(&m, f.case));
        assert_eq!(targets::selftest_kind(&saved), Some(kind));
    }
    std::fs::remove_dir_all(&findings).ok();
}
