//! `conlab fetch` through the binary against conlab's own server (`/site/N.html`): rows as
//! JSON lines and CSV, URLs from stdin, exit statuses, refusals on the command line, Ctrl-C
//! writing only whole rows, and `--resume` skipping exactly what a file already has.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Scratch, conlab};
use conlab_http::Site;
use conlab_http::server::{self, Server, ServerConfig, ServerModel};

fn start() -> Server {
    let listener = server::bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let site = Arc::new(Site::new(None, conlab_work::sum_primes, "event"));
    let config = ServerConfig {
        model: ServerModel::Event,
        workers: 1,
        ..ServerConfig::default()
    };
    Server::start(listener, site, config).unwrap()
}

fn rows(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn urls_of(rows: &[serde_json::Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["url"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn titles_come_as_json_lines_or_csv_and_the_exit_status_says_if_any_failed() {
    let server = start();
    let base = format!("http://{}", server.local_addr());
    let pages: Vec<String> = (0..30).map(|n| format!("{base}/site/{n}.html")).collect();
    let args: Vec<&str> = ["fetch", "-q"]
        .into_iter()
        .chain(pages.iter().map(String::as_str))
        .collect();
    let out = conlab(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rows(&out.stdout);
    assert_eq!(urls_of(&got), pages.iter().cloned().collect());
    for r in &got {
        let n = r["url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".html");
        assert_eq!(r["title"], format!("Page {n}"));
        assert_eq!(r["status"], 200);
        assert!(r["error"].is_null());
    }
    // One page missing: exit 1, and the row says why.
    let missing = format!("{base}/site/99999.html");
    let out = conlab(&["fetch", "-q", "--model", "threads", &pages[0], &missing]);
    assert_eq!(out.status.code(), Some(1));
    let got = rows(&out.stdout);
    let bad = got.iter().find(|r| r["url"] == missing.as_str()).unwrap();
    assert_eq!(
        (bad["status"].as_u64(), bad["error"].as_str()),
        (Some(404), Some("http_status"))
    );
    // CSV, with a header; --select takes every link's target as a JSON list.
    let out = conlab(&[
        "fetch", "-q", "--format", "csv", "--select", "a@href", &pages[2],
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("url,final_url,status,title,bytes,")
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains(r#""[""/site/15.html"",""/site/31.html"",""/site/3.html""]""#),
        "{row}"
    );
}

#[test]
fn urls_are_read_from_stdin_and_a_summary_goes_to_stderr() {
    let server = start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["fetch", "-i", "-", "-c", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for n in 0..50 {
            writeln!(stdin, "http://{}/site/{n}.html", server.local_addr()).unwrap();
        }
        writeln!(stdin, "# a comment, and a blank line\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(rows(&out.stdout).len(), 50);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("fetch: 50 pages") && summary.contains("ok 50"),
        "{summary}"
    );
}

#[test]
fn what_cannot_run_is_refused_by_name() {
    for (args, says) in [
        (vec!["fetch"], "nothing to fetch"),
        (
            vec!["fetch", "--same-host", "http://127.0.0.1:9/"],
            "--same-host is for a crawl",
        ),
        (
            vec!["fetch", "--depth", "3", "http://127.0.0.1:9/"],
            "--depth is for a crawl",
        ),
        (
            vec!["fetch", "-i", "/nonexistent/urls.txt"],
            "/nonexistent/urls.txt",
        ),
        (
            vec![
                "fetch",
                "-o",
                "/nonexistent/dir/rows.jsonl",
                "http://127.0.0.1:9/",
            ],
            "/nonexistent/dir",
        ),
        (
            vec!["fetch", "-c", "0", "http://127.0.0.1:9/"],
            "concurrency",
        ),
        (
            vec!["fetch", "--select", "a[[[", "http://127.0.0.1:9/"],
            "--select",
        ),
        (
            vec!["fetch", "--max-body", "lots", "http://127.0.0.1:9/"],
            "bad size",
        ),
        (
            vec!["fetch", "--rate", "0", "http://127.0.0.1:9/"],
            "--rate",
        ),
        (vec!["fetch", "--crawl", "nope"], "--crawl nope"),
        (
            vec![
                "fetch",
                "--crawl",
                "http://127.0.0.1:9/",
                "--resume",
                "x.jsonl",
            ],
            "frontier",
        ),
    ] {
        let out = conlab(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn resume_skips_exactly_what_the_file_has_and_a_stop_leaves_only_whole_rows() {
    let server = start();
    let dir = Scratch::new("fetch-resume");
    let list = dir.path("urls.txt");
    let all: Vec<String> = (0..300)
        .map(|n| format!("http://{}/site/{n}.html?ms=20", server.local_addr()))
        .collect();
    std::fs::write(&list, all.join("\n") + "\n").unwrap();
    let out_file = dir.path("rows.jsonl");
    // Stopped by SIGINT part way: exit 130, whole rows only.
    let child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["fetch", "-q", "-c", "5", "-i"])
        .arg(&list)
        .arg("--resume")
        .arg(&out_file)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    // SAFETY: kill(2) on the child's pid, which has not been reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130));
    let first = std::fs::read(&out_file).unwrap();
    assert!(first.ends_with(b"\n"));
    let first_rows = rows(&first);
    assert!(
        !first_rows.is_empty() && first_rows.len() < 300,
        "{}",
        first_rows.len()
    );
    // A crash mid-write: half a row at the end, which resume cuts.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&out_file)
        .unwrap();
    f.write_all(br#"{"url":"http://half"#).unwrap();
    drop(f);
    let out = conlab(&[
        "fetch",
        "-q",
        "-c",
        "20",
        "-i",
        list.to_str().unwrap(),
        "--resume",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all_rows = rows(&std::fs::read(&out_file).unwrap());
    assert_eq!(all_rows.len(), 300, "each URL exactly once");
    assert_eq!(urls_of(&all_rows), all.iter().cloned().collect());
    // Nothing left: a third run fetches nothing.
    let out = conlab(&[
        "fetch",
        "-i",
        list.to_str().unwrap(),
        "--resume",
        out_file.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("fetch: 0 pages"));
    assert_eq!(rows(&std::fs::read(&out_file).unwrap()).len(), 300);
}

#[test]
fn a_finished_row_reaches_the_file_while_the_run_goes_on() {
    let server = start();
    let dir = Scratch::new("fetch-flush");
    let out = dir.path("rows.jsonl");
    let fast = format!("http://{}/site/1.html", server.local_addr());
    let slow = format!("http://{}/site/2.html?ms=2500", server.local_addr());
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["fetch", "-q", "-c", "2", &fast, &slow, "-o"])
        .arg(&out)
        .spawn()
        .unwrap();
    // Waits for the fast row, bounded: it must come while the slow page is still pending.
    let mut seen = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        seen = std::fs::read_to_string(&out).map_or(0, |t| t.lines().count());
        if seen > 0 {
            break;
        }
    }
    assert_eq!(seen, 1, "the first row is in the file before the run ends");
    assert!(child.try_wait().unwrap().is_none(), "the run had ended");
    // SAFETY: kill(2) on the child's pid, which has not been reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    assert_eq!(rows(&std::fs::read(&out).unwrap()).len(), 1);
}

#[test]
fn html_writes_the_summary_as_a_page() {
    let server = start();
    let dir = Scratch::new("fetch-html");
    let page = dir.path("fetch.html");
    let ok = format!("http://{}/site/1.html", server.local_addr());
    let missing = format!("http://{}/site/99999.html", server.local_addr());
    let out = conlab(&[
        "fetch",
        "-q",
        &ok,
        &missing,
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("Rows by final status"));
    assert!(
        html.contains("<title>404: 1</title>") && html.contains("<title>http_status: 1</title>")
    );
    assert!(
        html.contains("conlab.fetch-summary/1"),
        "the summary's JSON is embedded"
    );
    let out = conlab(&["fetch", &ok, "--html", "/nonexistent/f.html"]);
    assert_eq!(out.status.code(), Some(2));
}
