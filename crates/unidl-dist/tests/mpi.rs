//! The launcher helpers, and (with the `mpi` feature and `mpirun` installed)
//! the MPI collectives across real processes: this test binary runs itself
//! under `mpirun`, the ranks check sums, broadcasts and the timeout.

use std::path::Path;

#[cfg(not(feature = "mpi"))]
use unidl_dist::DistError;
use unidl_dist::{init_from, launched_rank_from, mpirun_command, timeout_from};

/// `mpirun` command lines carry the rank count, the program, its arguments
/// and the UNIDL_ settings.
#[test]
fn mpirun_command_lines_name_procs_program_and_settings() {
    let cmd = mpirun_command(
        3,
        Path::new("/bin/unidl"),
        &["train".into(), "--config".into(), "c.toml".into()],
        &["-H".into(), "a,b".into()],
    );
    assert_eq!(cmd.get_program(), "mpirun");
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = |s: &str| args.iter().position(|a| a == s).unwrap_or(usize::MAX);
    assert_eq!(args[..2], ["-np", "3"]);
    assert!(at("--oversubscribe") < at("/bin/unidl"));
    assert!(at("-H") < at("/bin/unidl"));
    assert_eq!(args[args.len() - 3..], ["train", "--config", "c.toml"]);
}

/// Launcher variables are read (Open MPI's, then PMI's); without them a
/// process is a plain start. Built without MPI, a process that `mpirun`
/// started as one of several ranks gets a typed error, not a lone run.
#[test]
fn launch_variables_and_the_not_built_error() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let pmi = env(&[("PMI_RANK", "1"), ("PMI_SIZE", "4")]);
    assert_eq!(launched_rank_from(pmi), Some((1, 4)));
    let ompi = env(&[
        ("OMPI_COMM_WORLD_RANK", "2"),
        ("OMPI_COMM_WORLD_SIZE", "3"),
        ("PMI_RANK", "0"),
        ("PMI_SIZE", "1"),
    ]);
    assert_eq!(launched_rank_from(ompi), Some((2, 3)));
    assert_eq!(launched_rank_from(env(&[])), None);
    // one rank, or a plain start: no group
    assert!(
        init_from(env(&[("PMI_RANK", "0"), ("PMI_SIZE", "1")]))
            .unwrap()
            .is_none()
    );
    assert!(init_from(env(&[])).unwrap().is_none());
    #[cfg(not(feature = "mpi"))]
    {
        let e = init_from(pmi).expect_err("not built");
        assert!(matches!(e, DistError::NotBuilt { rank: 1, world: 4 }));
        assert!(e.to_string().contains("--features mpi"), "{e}");
    }
    let e = timeout_from(Some("soon")).unwrap_err().to_string();
    assert!(
        e.contains("UNIDL_DIST_TIMEOUT_S") && e.contains("soon"),
        "{e}"
    );
    assert!(timeout_from(Some("-3")).is_err());
    assert_eq!(timeout_from(Some("2.5")).unwrap().as_millis(), 2500);
    assert_eq!(
        timeout_from(None).unwrap().as_secs(),
        unidl_dist::DEFAULT_TIMEOUT_S
    );
}

#[cfg(feature = "mpi")]
mod over_mpirun {
    use std::process::Command;

    use unidl_dist::{Collective, MpiGroup, mpirun_command};

    /// Runs this test binary's `child` test on `np` ranks with `mode`.
    fn launch(np: usize, mode: &str, timeout_s: &str) -> std::process::Output {
        let me = std::env::current_exe().expect("test binary path");
        let mut cmd: Command = mpirun_command(
            np,
            &me,
            &[
                "over_mpirun::child".into(),
                "--exact".into(),
                "--ignored".into(),
                "--nocapture".into(),
                "--test-threads=1".into(),
            ],
            &[
                "-x".into(),
                "UNIDL_MPI_CHILD".into(),
                "-x".into(),
                "UNIDL_DIST_TIMEOUT_S".into(),
            ],
        );
        cmd.env("UNIDL_MPI_CHILD", mode)
            .env("UNIDL_DIST_TIMEOUT_S", timeout_s);
        cmd.output().expect("mpirun runs")
    }

    /// Three processes: sums of f32 and f64 (across chunks of any length),
    /// broadcasts from every root, all equal on every rank.
    #[test]
    fn three_processes_sum_and_broadcast() {
        if unidl_dist::mpirun_available().is_err() {
            panic!("the `mpi` feature is on but mpirun is missing");
        }
        let out = launch(3, "collectives", "60");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert_eq!(text.matches("rank-ok").count(), 3, "{text}");
    }

    /// A rank that never joins: the others' collective times out, the job
    /// ends (no hang) with a message naming the rank and the collective.
    #[test]
    fn a_missing_rank_ends_the_job_with_a_timeout_naming_the_rank() {
        let t0 = std::time::Instant::now();
        let out = launch(2, "hang", "2");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("rank 0: all-reduce timed out after 2 s"),
            "{err}"
        );
        assert!(t0.elapsed().as_secs() < 60);
    }

    /// The rank side of the tests above, which start it under `mpirun`
    /// (ignored in a plain test run: alone it has nothing to check).
    #[test]
    #[ignore = "the rank side of the over_mpirun tests; they run it under mpirun"]
    fn child() {
        let mode = std::env::var("UNIDL_MPI_CHILD").expect("started by the over_mpirun tests");
        let g = MpiGroup::init(unidl_dist::timeout().unwrap()).unwrap();
        let (r, n) = (g.rank(), g.world_size());
        match mode.as_str() {
            "collectives" => {
                for len in [0usize, 1, 7, 100_003] {
                    let mut v: Vec<f32> = (0..len).map(|i| (i % 97) as f32 + r as f32).collect();
                    g.all_reduce_sum_f32(&mut v).unwrap();
                    for (i, x) in v.iter().enumerate() {
                        let want = n as f32 * (i % 97) as f32 + (n * (n - 1) / 2) as f32;
                        assert_eq!(*x, want, "rank {r} element {i}");
                    }
                    let mut w: Vec<f64> = vec![0.5 * r as f64; len];
                    g.all_reduce_sum_f64(&mut w).unwrap();
                    assert!(w.iter().all(|&x| x == 0.5 * (n * (n - 1) / 2) as f64));
                }
                for root in 0..n {
                    let mut b = if r == root {
                        vec![root as u8 + 1; 1000 * (root + 1)]
                    } else {
                        vec![9; 3]
                    };
                    g.broadcast_bytes(&mut b, root).unwrap();
                    assert_eq!(b, vec![root as u8 + 1; 1000 * (root + 1)]);
                }
                assert!(g.broadcast_bytes(&mut Vec::new(), n).is_err());
                println!("rank-ok {r}");
            }
            "hang" => {
                if r == 0 {
                    let mut v = [1.0f32];
                    let _ = g.all_reduce_sum_f32(&mut v);
                } else {
                    std::thread::sleep(std::time::Duration::from_secs(30));
                }
            }
            other => panic!("unknown child mode {other}"),
        }
        unidl_dist::finalize();
    }
}
