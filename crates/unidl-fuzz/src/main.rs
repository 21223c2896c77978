//! `unidl-fuzz`: the mutation fuzzer's command line (`cargo xtask fuzz …`).
//!
//! ```text
//! unidl-fuzz [TARGET…|all] [--time S] [--cases N] [--seed K] [--jobs J]
//!            [--mem-limit-mb M] [--case-timeout S] [--findings DIR] [--list]
//! unidl-fuzz TARGET --replay FILE      run one saved case in this process
//! unidl-fuzz TARGET --seed K --save-case I   write case I of seed K to the findings folder
//! ```
//!
//! Without `--time` or `--cases`, each target runs 10,000 cases. The exit
//! status is 1 when any case panicked, aborted or hung.

use std::path::PathBuf;
use std::time::Duration;

use unidl_fuzz::driver::{self, Config};
use unidl_fuzz::worker::{self, DEFAULT_MEM_LIMIT_MB, WorkerArgs};
use unidl_fuzz::{FuzzError, targets};

const USAGE: &str = "usage: unidl-fuzz [TARGET...|all] [--time S] [--cases N] [--seed K] [--jobs J] \
[--mem-limit-mb M] [--case-timeout S] [--findings DIR] [--list] | TARGET --replay FILE | \
TARGET --seed K --save-case I";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("unidl-fuzz: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn value<T: std::str::FromStr>(args: &[String], i: usize, flag: &str) -> Result<T, FuzzError> {
    args.get(i)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| FuzzError::Usage(format!("{flag} needs a value\n{USAGE}")))
}

fn run(args: &[String]) -> Result<i32, FuzzError> {
    if args.first().map(String::as_str) == Some("--worker") {
        let w = WorkerArgs::parse(&args[1..])?;
        let mut every = targets::all();
        every.extend(targets::selftest());
        worker::run_worker(&w, &every)?;
        return Ok(0);
    }
    let root = driver::default_root();
    let mut names = Vec::new();
    let mut cfg = Config {
        targets: Vec::new(),
        seed: 0,
        cases: None,
        time: None,
        jobs: 1,
        mem_limit_mb: DEFAULT_MEM_LIMIT_MB,
        case_timeout: Duration::from_secs(20),
        findings_dir: root.join("target/fuzz-findings"),
        root: root.clone(),
        worker_exe: std::env::current_exe().map_err(|e| FuzzError::io(&PathBuf::from("."), e))?,
        verbose: true,
    };
    let mut replay: Option<PathBuf> = None;
    let mut save_case: Option<u64> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--time" => cfg.time = Some(Duration::from_secs_f64(value(args, i + 1, a)?)),
            "--cases" => cfg.cases = Some(value(args, i + 1, a)?),
            "--seed" => cfg.seed = value(args, i + 1, a)?,
            "--jobs" => cfg.jobs = value(args, i + 1, a)?,
            "--mem-limit-mb" => cfg.mem_limit_mb = value(args, i + 1, a)?,
            "--case-timeout" => cfg.case_timeout = Duration::from_secs_f64(value(args, i + 1, a)?),
            "--findings" => cfg.findings_dir = PathBuf::from(value::<String>(args, i + 1, a)?),
            "--replay" => replay = Some(PathBuf::from(value::<String>(args, i + 1, a)?)),
            "--save-case" => save_case = Some(value(args, i + 1, a)?),
            "--list" => {
                for t in targets::all() {
                    println!("{:<18} {}", t.name, t.about);
                }
                for (t, feature) in targets::left_out() {
                    println!("{t:<18} (not in this build: cargo feature `{feature}`)");
                }
                return Ok(0);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            flag if flag.starts_with("--") => {
                return Err(FuzzError::Usage(format!("unknown option {flag}\n{USAGE}")));
            }
            name => {
                names.push(name.to_string());
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    cfg.targets = targets::select(&names)?;
    if let Some(case) = save_case {
        let [target] = cfg.targets.as_slice() else {
            return Err(FuzzError::Usage(format!(
                "--save-case needs exactly one target\n{USAGE}"
            )));
        };
        let seeds = target.load_seeds(&root)?;
        let m = unidl_fuzz::Mutator::new(&seeds, target.tokens, cfg.seed, target.name);
        let dir = cfg.findings_dir.join(target.name);
        std::fs::create_dir_all(&dir).map_err(|e| FuzzError::io(&dir, e))?;
        let out = dir.join(format!("case-seed{}-case{case}.bin", cfg.seed));
        std::fs::write(&out, target.case(&m, case)).map_err(|e| FuzzError::io(&out, e))?;
        println!("{}", out.display());
        return Ok(0);
    }
    if let Some(file) = replay {
        let [target] = cfg.targets.as_slice() else {
            return Err(FuzzError::Usage(format!(
                "--replay needs exactly one target\n{USAGE}"
            )));
        };
        let bytes = std::fs::read(&file).map_err(|e| FuzzError::io(&file, e))?;
        let out = worker::replay(target, &root, &bytes)?;
        println!("{}: {} ({out:?})", target.name, file.display());
        return Ok(0);
    }
    if cfg.cases.is_none() && cfg.time.is_none() {
        cfg.cases = Some(10_000);
    }
    for (t, feature) in targets::left_out() {
        eprintln!("unidl-fuzz: NOT RUN: {t} (needs cargo feature `{feature}`)");
    }
    let report = driver::run(&cfg)?;
    println!("seed {}\n{report}", cfg.seed);
    Ok(if report.is_clean() { 0 } else { 1 })
}
