//! `conlab load` through the binary against conlab's own server: the request count must be
//! the server's own count (`/stats`), pipelined or not, closed or open loop; errors are
//! counted by kind. Every run is bounded by -n or a short -d.

use std::process::Command;
use std::sync::Arc;

use conlab_http::Site;
use conlab_http::server::{self, Server, ServerConfig, ServerModel};

fn start(model: ServerModel) -> (Server, Arc<Site>) {
    let listener = server::bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let site = Arc::new(Site::new(None, conlab_work::sum_primes, model.name()));
    let config = ServerConfig {
        model,
        workers: 2,
        ..ServerConfig::default()
    };
    (Server::start(listener, site.clone(), config).unwrap(), site)
}

fn load(args: &[&str]) -> (bool, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .arg("load")
        .args(args)
        .args(["--json", "-"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

#[test]
fn the_request_count_is_the_servers_own() {
    for model in [ServerModel::Event, ServerModel::Threadpool] {
        let (server, site) = start(model);
        let url = format!("http://{}/hello", server.local_addr());
        let (ok, r) = load(&["-n", "2000", "-c", "8", "-t", "2", &url]);
        assert!(ok, "{r}");
        assert_eq!(r["requests"], 2000);
        assert_eq!(r["status"]["200"], 2000);
        let (ok, r) = load(&["-n", "1600", "-c", "4", "--pipeline", "16", &url]);
        assert!(ok, "{r}");
        assert_eq!(r["requests"], 1600);
        assert_eq!(
            site.requests(),
            3600,
            "{model}: the server saw exactly what the generator counted"
        );
        for key in [
            "mean", "stdev", "p50", "p75", "p90", "p99", "p999", "p9999", "max",
        ] {
            assert!(r["latency_us"].get(key).is_some(), "latency_us lacks {key}");
        }
        for key in ["requests_per_s", "bytes_per_s", "duration_s", "errors"] {
            assert!(r.get(key).is_some(), "the report lacks {key}");
        }
        server.shutdown();
    }
}

#[test]
fn an_open_loop_sends_at_the_rate_and_reports_both_latencies() {
    let (server, site) = start(ServerModel::Event);
    let url = format!("http://{}/sleep?ms=2", server.local_addr());
    let (ok, r) = load(&["--rate", "200", "-d", "1s", "-c", "4", &url]);
    assert!(ok, "{r}");
    let requests = r["requests"].as_u64().unwrap();
    // A run of -d ends at -d: a request in flight then (one per connection at most) may be
    // answered by the server and not counted by the generator.
    let served = site.requests();
    assert!(
        served >= requests && served <= requests + 4,
        "{served} vs {requests}"
    );
    // 200/s for 1 s: the schedule, not the server, decides how many are sent.
    assert!((150..=250).contains(&requests), "{requests}");
    let corrected = r["latency_us"]["p50"].as_u64().unwrap();
    let uncorrected = r["uncorrected_latency_us"]["p50"].as_u64().unwrap();
    assert!(
        corrected >= 2000 && uncorrected >= 2000,
        "a 2 ms wait is inside every latency"
    );
    server.shutdown();
}

#[test]
fn errors_and_non_2xx_are_reported_and_fail_the_exit_status() {
    let (server, _) = start(ServerModel::Event);
    let (ok, r) = load(&[
        "-n",
        "20",
        "-c",
        "2",
        &format!("http://{}/missing", server.local_addr()),
    ]);
    assert!(!ok);
    assert_eq!(r["status"]["404"], 20);
    assert_eq!(r["successes"], 0);
    let addr = server.local_addr();
    server.shutdown();
    let (ok, r) = load(&[
        "-d",
        "300ms",
        "-c",
        "1",
        "--timeout",
        "200ms",
        &format!("http://{addr}/hello"),
    ]);
    assert!(!ok);
    assert!(r["errors"]["connect"].as_u64().unwrap_or(0) > 0, "{r}");
}

#[test]
fn a_response_slower_than_the_timeout_is_a_timeout_and_a_busy_connection_is_not() {
    let (server, _) = start(ServerModel::Event);
    let addr = server.local_addr();
    // Answers take 400 ms, the timeout is 150 ms: every request times out.
    let (ok, r) = load(&[
        "-d",
        "1s",
        "-c",
        "2",
        "--timeout",
        "150ms",
        &format!("http://{addr}/sleep?ms=400"),
    ]);
    assert!(!ok);
    assert!(r["errors"]["timeout"].as_u64().unwrap_or(0) >= 2, "{r}");
    assert_eq!(r["successes"], 0, "{r}");
    // Answers take 20 ms, the timeout is 500 ms, the run 2 s: the connection outlives four
    // timeout periods without a single late answer, so no timeout may be counted.
    let (ok, r) = load(&[
        "-d",
        "2s",
        "-c",
        "2",
        "--timeout",
        "500ms",
        &format!("http://{addr}/sleep?ms=20"),
    ]);
    assert!(ok, "{r}");
    assert!(r["requests"].as_u64().unwrap() > 10, "{r}");
    assert!(r["errors"].as_object().unwrap().is_empty(), "{r}");
    server.shutdown();
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        vec!["ftp://x/"],
        vec!["--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1/"],
        vec!["-c", "0", "http://127.0.0.1:1/"],
        vec!["--rate=0", "http://127.0.0.1:1/"],
        vec!["-H", "nocolon", "http://127.0.0.1:1/"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
            .arg("load")
            .args(&args)
            .output()
            .unwrap();
        // 2, as `--help` promises for a command line that cannot run.
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn head_requests_are_answered_without_a_body() {
    let (server, site) = start(ServerModel::Event);
    let url = format!("http://{}/hello", server.local_addr());
    let (ok, r) = load(&["-n", "20", "-c", "2", "-m", "HEAD", &url]);
    assert!(ok, "{r}");
    assert_eq!(
        (r["requests"].as_u64(), r["successes"].as_u64()),
        (Some(20), Some(20))
    );
    assert_eq!(site.requests(), 20);
    server.shutdown();
}

/// A one-shot server on loopback answering every connection with `reply` (and then holding
/// or closing it), for the responses conlab's own server never sends.
fn fake(reply: &'static [u8], close: bool) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64).flatten() {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(reply).is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn chunked_and_until_close_bodies_are_responses_not_errors() {
    let chunked = fake(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        false,
    );
    let (ok, r) = load(&["-n", "10", "-c", "1", &format!("http://{chunked}/")]);
    assert!(ok, "{r}");
    assert_eq!(r["successes"], 10);
    let old = fake(b"HTTP/1.0 200 OK\r\n\r\nbody until close", true);
    let (ok, r) = load(&["-n", "5", "-c", "1", &format!("http://{old}/")]);
    assert!(ok, "{r}");
    assert_eq!(r["successes"], 5);
    assert!(r["errors"].as_object().unwrap().is_empty(), "{r}");
}

#[test]
fn a_refused_target_ends_the_run_and_says_why() {
    // A port nothing listens on: bound, then dropped.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["load", "-n", "5", "-c", "2", "--timeout", "1s"])
        .arg(format!("http://{addr}/"))
        .output()
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "-n must end"
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no responses") && stderr.contains("Connection refused"),
        "{stderr}"
    );
}

#[test]
fn an_open_loop_keeps_to_its_duration() {
    let (server, _) = start(ServerModel::Event);
    let url = format!("http://{}/hello", server.local_addr());
    // 2 requests a second over 10 connections for 3 s: one every 5 s per connection, first
    // ones spread half a second apart: six in all, none sent at or after the end.
    let (ok, r) = load(&["-R", "2", "-d", "3s", "-c", "10", &url]);
    assert!(ok, "{r}");
    assert_eq!(r["requests"], 6, "{r}");
    assert_eq!(r["duration_s"], 3.0, "{r}");
    server.shutdown();
}

#[test]
fn many_headers_and_large_bodies_are_responses_and_overflowing_lengths_are_named() {
    // 40 headers (httparse's default is 32) and a body of 8 MiB, chunked and by length:
    // read, streamed and counted in full.
    let mut many = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    many.push_str("Content-Length: 2\r\n\r\nok");
    let many = fake(Box::leak(many.into_bytes().into_boxed_slice()), false);
    let (ok, r) = load(&["-n", "5", "-c", "1", &format!("http://{many}/")]);
    assert!(ok, "{r}");
    assert_eq!(r["successes"], 5);
    let body = 8usize << 20;
    let mut big = format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n").into_bytes();
    let head = big.len();
    big.resize(head + body, b'x');
    let big = fake(Box::leak(big.into_boxed_slice()), false);
    let (ok, r) = load(&["-n", "3", "-c", "1", &format!("http://{big}/")]);
    assert!(ok, "{r}");
    assert_eq!(r["successes"], 3);
    assert!(r["bytes_per_s"].as_f64().unwrap() > 0.0);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..64 {
        chunked.extend_from_slice(format!("{:x}\r\n", 128 * 1024).as_bytes());
        chunked.resize(chunked.len() + 128 * 1024, b'y');
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let chunked = fake(Box::leak(chunked.into_boxed_slice()), false);
    let (ok, r) = load(&["-n", "3", "-c", "1", &format!("http://{chunked}/")]);
    assert!(ok, "{r}");
    assert_eq!(r["successes"], 3);
    // A Content-Length beyond any length is a parse error that says so.
    let huge = fake(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabc",
        false,
    );
    let (ok, r) = load(&[
        "-n",
        "2",
        "-c",
        "1",
        "--timeout",
        "2s",
        &format!("http://{huge}/"),
    ]);
    assert!(!ok);
    assert!(r["errors"]["parse"].as_u64().unwrap() >= 1, "{r}");
}

#[test]
fn an_interrupted_run_reports_what_it_measured_until_then() {
    let (server, _) = start(ServerModel::Event);
    let url = format!("http://{}/hello", server.local_addr());
    let target = conlab_http::load::Target::parse(&url).unwrap();
    let config = conlab_http::load::LoadConfig {
        connections: 4,
        duration: Some(std::time::Duration::from_secs(60)),
        timeout: std::time::Duration::from_secs(5),
        ..conlab_http::load::LoadConfig::new(target)
    };
    let result = conlab_http::load::run(config, |progress| {
        std::thread::spawn(move || {
            // Once answers have come, interrupt: the run must end then, not after 60 s.
            while progress.done() < 100 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            progress.interrupt();
        });
    });
    assert!(result.interrupted);
    assert!(result.requests >= 100, "{}", result.requests);
    assert!(result.duration < std::time::Duration::from_secs(60));
    assert_eq!(result.latency.count(), result.requests);
    server.shutdown();
}

#[test]
fn html_writes_the_percentile_curve_corrected_and_uncorrected() {
    let (server, _site) = start(ServerModel::Event);
    let url = format!("http://{}/hello", server.local_addr());
    let page = std::env::temp_dir().join(format!("conlab-load-{}.html", std::process::id()));
    let (ok, _) = load(&[
        "-n",
        "200",
        "-c",
        "2",
        "--rate",
        "2000",
        "--html",
        page.to_str().unwrap(),
        &url,
    ]);
    assert!(ok);
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::remove_file(&page).unwrap();
    assert!(
        html.contains("Latency by percentile")
            && html.contains("uncorrected (from the actual send)")
    );
    assert_eq!(
        html.matches("class=\"series s").count(),
        3,
        "two curves and the status bar"
    );
    assert!(html.contains("<title>200: 200</title>"));
}
