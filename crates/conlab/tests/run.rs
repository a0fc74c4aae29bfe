//! `conlab run` against GNU parallel and on its own promises: the same command lines give the
//! same output and exit status as `parallel`; a run interrupted by SIGINT loses no finished
//! job and `--resume` runs exactly the rest; a timeout kills grandchildren; grouped output
//! never interleaves.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn conlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conlab"))
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running conlab")
}

/// GNU parallel, if installed (CI installs it; a developer machine may not have it).
fn gnu(args: &[&str]) -> Option<Output> {
    let out = Command::new("parallel")
        .arg("--will-cite")
        .args(args)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => Some(out),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("GNU parallel is not installed (.ci/run installs it)")
        }
        Err(_) => {
            eprintln!("skipping the comparison: GNU parallel is not installed");
            None
        }
    }
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_same_command_lines_give_gnu_parallels_output_and_exit_status() {
    let dir = std::env::temp_dir().join(format!("conlab-run-compat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cols = dir.join("cols.tsv");
    std::fs::write(&cols, "a\tb\nc\td\n").unwrap();
    let cols = cols.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["-k", "echo", ":::", "a", "b", ":::", "1", "2"],
        vec!["-k", "--tag", "echo", "X", ":::", "a", "b", ":::", "1", "2"],
        vec![
            "-k",
            "echo {#} {} {1} {2} {.} {/} {//} {/.}",
            ":::",
            "/x/y.tar.gz",
            "./z",
            ":::",
            "q",
        ],
        vec!["-k", "echo", ":::", "a", "b", ":::+", "1", "2"],
        vec!["-k", "echo {} $HOME", ":::", "x y", "it's"],
        vec!["-k", "echo {3}", ":::", "a"],
        vec!["-k", "exit {}", ":::", "0", "1", "2"],
        vec!["-k", "--colsep", "\t", "echo {2}{1}", "::::", cols],
        vec!["-k", "-j1", "echo {%} {#}", ":::", "a", "b", "c"],
        vec!["-k", "--retries", "2", "exit 1", ":::", "a"],
        vec![
            "-k",
            "--halt",
            "now,fail=1",
            "-j1",
            "exit {}",
            ":::",
            "0",
            "3",
            "0",
        ],
        vec!["-k", "printf '%s-' {}; echo", ":::", "a b", "c"],
        vec!["-k", "--dry-run", "gzip -9 {}", ":::", "a b", "c"],
        vec![
            "-k",
            "echo {.} {/.}",
            ":::",
            "a.b.c",
            ".hidden",
            "dir.x/file",
            "x.",
        ],
        vec!["-k", "echo {/} {//}", ":::", "a/b/c", "/d", "c"],
        vec!["-k", "echo {1} {2}", "::::", cols, "::::+", cols],
        vec!["-k", "kill -9 $$", ":::", "1"],
        vec![
            "-k",
            "--halt",
            "now,success=1",
            "-j1",
            "exit {}",
            ":::",
            "1",
            "0",
            "1",
        ],
        vec!["-k", "-j2", "sleep 0.0{}; echo {}", ":::", "3", "2", "1"],
        vec!["-k", "-n2", "echo", ":::", "a", "b", "c", "d", "e"],
        vec![
            "-k",
            "-n2",
            "echo {1}-{2} {#}",
            ":::",
            "a",
            "b",
            "c",
            "d",
            "e",
        ],
        vec!["-k", "-v", "echo", ":::", "x", "y z"],
    ];
    for case in &cases {
        let Some(theirs) = gnu(case) else { return };
        let ours = conlab(case);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "stdout differs for {case:?}"
        );
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "exit status differs for {case:?}"
        );
    }
    // Without -k: the same lines, in any order.
    for case in [
        vec!["-j3", "echo", ":::", "1", "2", "3", "4", "5"],
        vec!["echo", "{}", ":::", "a", "b", ":::", "x", "y"],
    ] {
        let Some(theirs) = gnu(&case) else { return };
        assert_eq!(
            sorted_lines(&conlab(&case).stdout),
            sorted_lines(&theirs.stdout),
            "{case:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stdin_and_nul_separated_input() {
    let run = |args: &[&str], input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
            .arg("run")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["-k", "echo", "x{}x"], b"a b\nc\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "xa bx\nxcx\n");
    let out = run(&["-0", "-k", "echo"], b"x y\0z\0");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x y\nz\n");
}

#[test]
fn exit_status_counts_failed_jobs_and_errors_are_255() {
    assert_eq!(conlab(&["true", ":::", "1", "2"]).status.code(), Some(0));
    assert_eq!(
        conlab(&["exit {}", ":::", "0", "1", "2", "3"])
            .status
            .code(),
        Some(3)
    );
    let many: Vec<String> = (0..120).map(|_| "1".to_string()).collect();
    let mut args = vec!["-j4", "exit {}", ":::"];
    args.extend(many.iter().map(String::as_str));
    assert_eq!(conlab(&args).status.code(), Some(101));
    let bad = conlab(&["--no-such-option", "echo"]);
    assert_eq!(bad.status.code(), Some(255));
    let bad = conlab(&["--halt", "sometimes", "echo", ":::", "a"]);
    assert_eq!(bad.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("now,fail=1"));
    let bad = conlab(&["echo", "::::", "/nonexistent/inputs"]);
    assert_eq!(bad.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/inputs"));
}

#[test]
fn an_interrupted_run_keeps_every_finished_job_and_resume_runs_exactly_the_rest() {
    let dir = std::env::temp_dir().join(format!("conlab-run-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let joblog = dir.join("jobs.tsv");
    let ran = dir.join("ran.txt");
    let job = format!("sleep 0.1; echo {{}} >> {}", ran.display());
    let values: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    let mut args = vec![
        "-j2".to_string(),
        "--grace".into(),
        "0.2".into(),
        "--joblog".into(),
        joblog.display().to_string(),
        job.clone(),
        ":::".into(),
    ];
    args.extend(values.iter().cloned());
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .arg("run")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once a few jobs have finished (bounded wait: 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&joblog).map_or(0, |t| t.lines().count()) < 6 {
        assert!(Instant::now() < deadline, "no job finished in 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "128 + SIGINT");
    let logged = std::fs::read_to_string(&joblog).unwrap().lines().count() - 1;
    assert!(logged < 40, "the run was interrupted before the end");

    args.insert(0, "--resume".into());
    let resumed = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .arg("run")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let mut got = sorted_lines(std::fs::read_to_string(&ran).unwrap().as_bytes());
    got.dedup();
    let mut expected = values.clone();
    expected.sort();
    assert_eq!(got, expected, "every job ran");
    let all = std::fs::read_to_string(&ran).unwrap();
    assert_eq!(all.lines().count(), 40, "no job ran twice");
    let log = std::fs::read_to_string(&joblog).unwrap();
    assert_eq!(
        log.lines().filter(|l| !l.starts_with("Seq")).count(),
        40,
        "the joblog lists each job once"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let marker = format!("sleep 3{}.{}", std::process::id() % 1000, 7);
    let line = format!("sh -c '{marker} & {marker}'; echo never");
    let started = Instant::now();
    let out = conlab(&["--timeout", "0.3", "--grace", "0.2", &line, ":::", "1"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the job was not killed"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));
    // GNU's warning, which scripts may look for.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("This job was killed because it timed out")
    );
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "grandchildren survived: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn grouped_output_never_interleaves_and_tags_every_line() {
    let out = conlab(&[
        "-j4",
        "--tag",
        "seq 3000 | sed s/^/{}-/",
        ":::",
        "a",
        "b",
        "c",
        "d",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(tags.len(), 4 * 3000);
    // Each job's 3000 lines come as one block.
    let blocks = tags.windows(2).filter(|w| w[0] != w[1]).count() + 1;
    assert_eq!(blocks, 4, "output of different jobs interleaved");
}

#[test]
fn line_buffer_keeps_lines_whole() {
    let out = conlab(&[
        "-j4",
        "--line-buffer",
        "for i in $(seq 500); do echo {}-$i-xxxxxxxx; done",
        ":::",
        "a",
        "b",
        "c",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1500);
    for line in text.lines() {
        let whole =
            ["a-", "b-", "c-"].iter().any(|p| line.starts_with(p)) && line.ends_with("-xxxxxxxx");
        assert!(
            whole && line.matches('x').count() == 8,
            "a torn line: {line:?}"
        );
    }
}

#[test]
fn results_dir_and_built_in_tasks() {
    let dir = std::env::temp_dir().join(format!("conlab-run-results-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = conlab(&[
        "--results",
        dir.to_str().unwrap(),
        "-k",
        "echo {}; echo err-{} >&2",
        ":::",
        "a",
        "b",
    ]);
    assert!(out.status.success());
    // GNU's layout: DIR/<source number>/<value>/, and nothing printed.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let file = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(file("1/b/stdout"), "b\n");
    assert_eq!(file("1/a/stderr"), "err-a\n");
    assert_eq!(file("1/b/seq"), "2");
    std::fs::remove_dir_all(&dir).unwrap();

    for model in ["threads", "processes", "async"] {
        let out = conlab(&[
            "--task", "primes", "--model", model, "-k", ":::", "400000", "500000", "600000",
        ]);
        assert!(
            out.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "6458901531\n9914236195\n14071826345\n",
            "{model}"
        );
    }
    let bad = conlab(&["--task", "primes", ":::", "lots"]);
    assert_eq!(bad.status.code(), Some(255));
}

#[test]
fn a_closed_output_pipe_stops_the_run_quietly() {
    // `conlab run ... | head -1`: the reader goes away; that is success, not an error.
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["run", "-k", "-j2", "echo"])
        .arg(":::")
        .args((0..3000).map(|i| i.to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `bash -c "PROGRAM LINE"`: both runners then find bash as the shell they were started from.
fn under_bash(program: &str, line: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("{program} {line}"))
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("running bash")
}

#[test]
fn every_listed_command_line_gives_gnu_parallels_output_and_exit_status() {
    if gnu(&["--version"]).is_none() {
        return;
    }
    std::fs::write("/tmp/conlab-gnu-cols.tsv", "a\tb\nc\td\n").unwrap();
    std::fs::write("/tmp/conlab-gnu-header.csv", "n,v\na,1\nb,2\n").unwrap();
    let seq = |n: usize| (1..=n).map(|i| format!("{i}\n")).collect::<String>();
    std::fs::write("/tmp/conlab-gnu-s20", seq(20)).unwrap();
    std::fs::write("/tmp/conlab-gnu-s100k", seq(100_000)).unwrap();
    std::fs::write("/tmp/conlab-gnu-anl", "a\nb").unwrap();
    std::fs::write("/tmp/conlab-gnu-commas", "a,b,c,d,e").unwrap();
    let x = |n: usize| "x".repeat(n);
    let long = format!("a\nb\n{}\n{}\nc\n", x(30_000), x(30_000));
    std::fs::write("/tmp/conlab-gnu-long", long).unwrap();
    // `echo {}`: GNU's estimate is 5 + the value; 63664 is this machine's usable length.
    std::fs::write("/tmp/conlab-gnu-fits", format!("{}\n", x(21_000))).unwrap();
    std::fs::write("/tmp/conlab-gnu-toolong", format!("a\n{}\nb\n", x(70_000))).unwrap();
    let cases = include_str!("run/gnu_cases.txt");
    let conlab = format!("{} run", env!("CARGO_BIN_EXE_conlab"));
    let mut differ = Vec::new();
    let mut tried = 0;
    for line in cases
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        tried += 1;
        let theirs = under_bash("parallel --will-cite", line);
        let ours = under_bash(&conlab, line);
        if ours.stdout != theirs.stdout || ours.status.code() != theirs.status.code() {
            differ.push(format!(
                "{line}\n  GNU ({:?}): {:?}\n  conlab ({:?}): {:?} {:?}",
                theirs.status.code(),
                String::from_utf8_lossy(&theirs.stdout),
                ours.status.code(),
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&ours.stderr),
            ));
        }
    }
    assert!(tried > 50, "the case list was not read");
    assert!(
        differ.is_empty(),
        "{} of {tried} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

#[test]
fn what_conlab_does_not_support_is_refused_by_name() {
    for (args, named) in [
        (vec!["echo", "{= s/a/b/ =}", ":::", "a"], "{= s/a/b/ =}"),
        (vec!["--rpl", "{..} s/a//", "echo", ":::", "a"], "--rpl"),
        (vec!["-U", ",,", "echo", ":::", "a"], "-U"),
        (vec!["--pipe-part", "wc", "-l"], "--pipe-part"),
        (vec!["--pipe", "--block", "lots", "wc"], "--block"),
        (vec!["--keep", "echo", ":::", "a"], "--keep"),
        (vec!["--sem", "echo", "x"], "--sem"),
        (vec!["-j", "-5", "echo", ":::", "a"], "cannot run any jobs"),
        (vec!["--halt", "later,fail=1", "echo", ":::", "a"], "--halt"),
    ] {
        let out = conlab(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{args:?} should name {named}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} ran something");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["run", "echo", ":::", "a"])
        .env("PARALLEL", "-j4")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("$PARALLEL"));
}

#[test]
fn arguments_are_bytes_not_text() {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("conlab-run-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"a\xffb");
    std::fs::write(dir.join(name), "x").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["run", "-0", "cat"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\xffb\0").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!((out.status.code(), &out.stdout[..]), (Some(0), &b"x"[..]));
    let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .arg("run")
        .arg("echo")
        .arg(":::")
        .arg(name)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"a\xffb\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_huge_slot_count_starts_only_the_slots_the_jobs_need() {
    let out = conlab(&["-j", "100000", "-k", "echo", ":::", "a", "b", "c"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"a\nb\nc\n");
}

#[test]
fn a_results_dir_that_cannot_be_written_stops_the_run_before_any_job() {
    let base = std::env::temp_dir().join(format!("conlab-run-results-{}", std::process::id()));
    std::fs::write(&base, "a file").unwrap();
    let marker = base.with_extension("ran");
    let out = conlab(&[
        "--results",
        base.to_str().unwrap(),
        &format!("touch {}", marker.display()),
        ":::",
        "a",
    ]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--results"));
    assert!(!marker.exists(), "a job ran");
    std::fs::remove_file(&base).unwrap();
}

#[test]
fn keep_order_with_line_buffer_streams_in_input_order() {
    let out = conlab(&[
        "-k",
        "--lb",
        "-j3",
        "sleep 0.{}; echo {}; sleep 0.{}; echo {}",
        ":::",
        "3",
        "1",
        "2",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n3\n1\n1\n2\n2\n");
}

#[test]
fn big_outputs_wait_on_disk_not_in_memory() {
    // Two jobs of 96 MB each: held in memory that would be ~200 MB of resident set.
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args([
            "run",
            "-j2",
            "-n0",
            "head -c 100000000 /dev/zero",
            ":::",
            "1",
            "2",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // A slow reader: the jobs finish long before their output is read.
        std::thread::sleep(Duration::from_micros(50));
        match std::io::Read::read(&mut stdout, &mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(total, 200_000_000);
    assert!(child.wait().unwrap().success());
    // SAFETY: getrusage fills the struct it is given; it lives on the stack for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_CHILDREN covers the children this test process waited for.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert!(
        usage.ru_maxrss < 64 * 1024,
        "a child peaked at {} KB",
        usage.ru_maxrss
    );
}

#[test]
fn a_semaphore_runs_one_command_at_a_time_and_wait_waits_for_all() {
    let dir = std::env::temp_dir().join(format!("conlab-run-sem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let id = format!("test-{}", std::process::id());
    let inside = dir.join("inside");
    let log = dir.join("log");
    // Two commands inside at once would find the directory there already.
    let line = format!(
        "mkdir {0} || echo OVERLAP >> {1}; sleep 0.2; rmdir {0}; echo done >> {1}",
        inside.display(),
        log.display()
    );
    for _ in 0..3 {
        let out = conlab(&["--semaphore", "--id", &id, "-j1", &line]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = conlab(&["--semaphore", "--id", &id, "--wait"]);
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text, "done\ndone\ndone\n",
        "every command ran, none beside another"
    );
    let out = conlab(&["--semaphore", "--id", &id, "--fg", "exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "--fg gives the command's status"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
