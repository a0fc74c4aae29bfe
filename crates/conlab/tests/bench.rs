//! `conlab bench` through the binary: every model's answers equal serial's, the exports are
//! what they claim, bad input is refused before anything runs.

mod common;

use common::{conlab, json_of};

#[test]
fn every_model_agrees_with_serial_and_the_json_has_the_documented_shape() {
    let dir = std::env::temp_dir().join(format!("conlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("out.json");
    let csv = dir.join("out.csv");
    let out = conlab(&[
        "bench",
        "primes:120000",
        "--tasks",
        "6",
        "--runs",
        "1",
        "--gil",
        "-j",
        "1,2",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], "conlab.bench/2");
    let rows = report["results"].as_array().unwrap();
    // serial + (threads, threads --gil, processes, async, rayon) x (1, 2)
    assert_eq!(rows.len(), 1 + 5 * 2);
    for row in rows {
        for key in [
            "model",
            "workers",
            "gil",
            "wall_s",
            "throughput_per_s",
            "latency_us",
            "cpu_percent",
            "peak_rss_bytes",
            "speedup",
            "efficiency",
            "errors",
            "first_error",
            "checksum_ok",
        ] {
            assert!(row.get(key).is_some(), "row lacks {key}: {row}");
        }
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(row["latency_us"][p].is_u64(), "{row}");
        }
        assert_eq!(row["checksum_ok"], true, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
    }
    // CPU/wall is a measurement: on a loaded machine a CPU-bound batch can look "mixed", but
    // never like waiting.
    let kind = report["classification"]["kind"].as_str().unwrap();
    assert!(kind == "cpu-bound" || kind == "mixed", "{kind}");
    assert!(report["recommendation"]["winner"].is_string());
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.starts_with("model,wall,throughput"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + rows.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_sleeping_workload_is_io_bound_and_async_is_recommended() {
    let report = json_of(&[
        "bench",
        "sleep:5ms",
        "--tasks",
        "20",
        "--runs",
        "1",
        "--models",
        "threads,async",
        "--json",
        "-",
    ]);
    assert_eq!(report["classification"]["kind"], "io-bound");
    assert_eq!(report["recommendation"]["rule_of_thumb"], "async");
}

#[test]
fn a_failing_command_is_counted_and_the_exit_status_says_so() {
    let out = conlab(&[
        "bench",
        "cmd:'exit 3'",
        "--tasks",
        "2",
        "--runs",
        "1",
        "--models",
        "threads",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("errors"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed"));
}

#[test]
fn bad_input_is_refused_with_the_grammar_before_anything_runs() {
    let out = conlab(&["bench", "primes:many"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("must be a whole number") && stderr.contains("examples:"),
        "{stderr}"
    );

    let out = conlab(&["bench", "primes:10", "--models", "fibers"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("serial, threads"));

    let started = std::time::Instant::now();
    let out = conlab(&[
        "bench",
        "sleep:1s",
        "--tasks",
        "50",
        "--json",
        "/nonexistent-dir/x.json",
    ]);
    // Found before anything ran: the command line named a file that cannot be written.
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir/x.json"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "failed before running"
    );
}

#[test]
fn bench_http_loads_each_server_model_in_its_own_process() {
    let report = json_of(&[
        "bench",
        "http",
        "--servers",
        "threadpool,event",
        "--connections",
        "2,8",
        "--duration",
        "300ms",
        "--json",
        "-",
    ]);
    assert_eq!(report["schema"], "conlab.bench-http/2");
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "2 servers x 2 connection counts");
    for row in rows {
        assert!(row["requests_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
        assert_eq!(row["non_2xx"], 0, "{row}");
        assert!(row["server_pss_bytes"].as_u64().unwrap() > 0, "{row}");
        assert!(row["requests_per_cpu_s"].as_f64().unwrap() > 0.0, "{row}");
        for key in [
            "p50_us",
            "p99_us",
            "max_us",
            "server_cpu_percent",
            "connections_answered",
        ] {
            assert!(row.get(key).is_some(), "{row} lacks {key}");
        }
    }
}

#[test]
fn what_cannot_run_is_a_usage_error_that_names_the_value() {
    for (args, says) in [
        (
            vec!["bench", "primes:10", "--tasks", "18446744073709551615"],
            "--tasks",
        ),
        (vec!["bench", "primes:10", "--tasks", "0"], "--tasks"),
        (vec!["bench", "primes:10", "-j", "0"], "--jobs"),
        (vec!["bench", "sleep:abc"], "`abc` is not a duration"),
        (vec!["bench", "spin:-1s"], "`-1s` is negative"),
        (
            vec!["bench", "primes:10", "--json", "-", "--csv", "-"],
            "only one report",
        ),
        (vec!["bench", "http", "--duration", "soon"], "`soon`"),
        (vec!["load", "-c", "0", "http://127.0.0.1:1/"], "-c"),
        (vec!["load", "ftp://127.0.0.1:1/"], "or https://"),
        (
            vec!["load", "--cacert", "/nonexistent", "https://127.0.0.1:1/"],
            "--cacert /nonexistent",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = conlab(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{args:?} ran before refusing"
        );
    }
}

#[test]
fn an_os_error_is_said_once() {
    let out = conlab(&["bench", "primes:10", "--json", "/nonexistent-dir/x.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn bench_http_on_a_missing_path_fails_and_says_so() {
    let out = conlab(&[
        "bench",
        "http",
        "--servers",
        "event",
        "--connections",
        "2",
        "--duration",
        "200ms",
        "--path",
        "/nonexistent",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("non-2xx"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("WARNING"));
}

/// Starts `conlab ARGS` and returns it once one of its process-pool workers is asleep in a
/// task (`sleep:` workloads: the run is then measuring), with that worker's pid.
// The child is handed to the caller, which waits for it.
#[allow(clippy::zombie_processes)]
fn spawn_until_worker(args: &[&str]) -> (std::process::Child, u32) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let tree = conlab_measure::usage::process_tree(child.id());
        let sleeping = |pid: &&u32| {
            std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                .is_ok_and(|w| w.contains("nanosleep"))
        };
        if let Some(&worker) = tree.iter().skip(1).find(sleeping) {
            return (child, worker);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no worker asleep in a task within 60 s");
        }
        std::thread::yield_now();
    }
}

#[test]
fn a_killed_worker_is_named_with_its_task_and_cause() {
    let (child, worker) = spawn_until_worker(&[
        "bench",
        "sleep:500ms",
        "--tasks",
        "2",
        "--runs",
        "1",
        "--models",
        "processes",
        "-j",
        "1",
    ]);
    // SAFETY: `kill` has no memory-safety preconditions; the pid is our child's worker.
    unsafe {
        libc::kill(worker as i32, libc::SIGKILL);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("under processes x1") && stderr.contains("killed by signal 9 (SIGKILL)"),
        "{stderr}"
    );
    assert!(stderr.contains("task #"), "{stderr}");
}

#[test]
fn an_interrupted_run_leaves_the_earlier_export_as_it_was() {
    let dir = std::env::temp_dir().join(format!("conlab-bench-keep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("earlier.json");
    std::fs::write(&json, "earlier").unwrap();
    let (mut child, _) = spawn_until_worker(&[
        "bench",
        "sleep:100ms",
        "--tasks",
        "4",
        "--runs",
        "1",
        "--models",
        "processes",
        "--json",
        json.to_str().unwrap(),
    ]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "earlier");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "a staging file was left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn html_writes_speedup_by_workers_with_the_ideal_and_bench_http_refuses_it() {
    let page = std::env::temp_dir().join(format!("conlab-bench-{}.html", std::process::id()));
    let out = conlab(&[
        "bench",
        "sleep:2ms",
        "--tasks",
        "8",
        "--runs",
        "1",
        "--models",
        "serial,threads",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::remove_file(&page).unwrap();
    assert!(html.contains("Speedup over serial by workers") && html.contains("I/O-bound"));
    assert!(
        html.contains("data-series=\"threads\"") && html.contains("class=\"series reference\"")
    );
    assert!(
        html.contains("conlab.bench/2"),
        "the report's JSON is embedded"
    );
    let out = conlab(&["bench", "http", "--html", "x.html"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--html is not supported by `bench http`")
    );
}
