//! `fetch` against a server on loopback that misbehaves on purpose, one path per fault:
//! every failure is a row of its kind, both models give the same rows, retries back off,
//! per-host limits hold by the server's own count, a crawl visits each page once, and a
//! stop cuts what is in flight without losing what was finished.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conlab_http::extract::Pick;
use conlab_http::fetch::{self, Feed, FetchConfig, FetchModel, FetchSummary, Row};
use conlab_http::frontier::{Frontier, normalise};

/// What the server saw.
#[derive(Default)]
struct Seen {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Requests by path, with the time of each.
    hits: Mutex<HashMap<String, Vec<Instant>>>,
    /// robots.txt answers 503.
    robots_down: AtomicBool,
}

struct TestServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
    }
}

impl TestServer {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self, path: &str) -> Vec<Instant> {
        self.seen
            .hits
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

fn page(n: u64) -> Vec<u8> {
    let body = format!(
        "<html><head><title>Page {n}</title></head><body><a href=\"/page/{}\">a</a> <a href='{}#x'>b</a></body></html>",
        (n + 1) % 20,
        (n * 2) % 20
    );
    respond(
        "200 OK",
        "Content-Type: text/html; charset=utf-8\r\n",
        body.as_bytes(),
    )
}

fn respond(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A server on 127.0.0.1, a thread per connection, keep-alive.
fn server() -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (Arc::clone(&seen), Arc::clone(&stop));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if st.load(Ordering::Acquire) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let (s, st) = (Arc::clone(&s), Arc::clone(&st));
            std::thread::spawn(move || serve(conn, &s, &st));
        }
    });
    TestServer { addr, seen, stop }
}

fn serve(mut conn: TcpStream, seen: &Seen, stop: &AtomicBool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end + 4);
        let target = head.split(' ').nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let hits = {
            let mut all = seen.hits.lock().unwrap();
            let v = all.entry(path.to_string()).or_default();
            v.push(Instant::now());
            v.len() as u64
        };
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.peak.fetch_max(now, Ordering::SeqCst);
        let reply: Option<Vec<u8>> = match path {
            p if p.starts_with("/page/") => match p[6..].parse() {
                Ok(n) => Some(page(n)),
                Err(_) => Some(respond("404 Not Found", "", b"")),
            },
            p if p.starts_with("/slow/") => {
                std::thread::sleep(Duration::from_millis(param("ms").unwrap_or(50)));
                Some(page(1))
            }
            p if p.starts_with("/redirect/") => match p[10..].parse::<u64>().unwrap_or(0) {
                0 => Some(page(0)),
                n => Some(respond("302 Found", &format!("Location: {}\r\n", n - 1), b"")),
            },
            "/loop/a" => Some(respond("301 Moved", "Location: /loop/b\r\n", b"")),
            "/loop/b" => Some(respond("308 Moved", "Location: a\r\n", b"")),
            p if p.starts_with("/flaky/") => {
                if hits <= param("fail").unwrap_or(1) {
                    Some(respond("503 Busy", "Retry-After: 0\r\n", b"busy"))
                } else {
                    Some(page(7))
                }
            }
            "/limited" => Some(respond("429 Too Many", "Retry-After: 3600\r\n", b"")),
            "/robots.txt" if seen.robots_down.load(Ordering::Acquire) => {
                Some(respond("503 Busy", "", b""))
            }
            "/robots.txt" => Some(respond(
                "200 OK",
                "Content-Type: text/plain\r\n",
                b"User-agent: *\nDisallow: /private\n",
            )),
            p if p.starts_with("/private/") => Some(page(9)),
            "/entities" => Some(respond("200 OK", "", b"<title>A &amp; B&nbsp;&#233;</title>")),
            "/flood" => {
                let mut r = b"HTTP/1.1 100 \r\n\r\n".repeat(500);
                r.extend(page(2));
                Some(r)
            }
            "/stray" => {
                // The answer, then bytes nobody asked for on the same connection.
                if conn.write_all(&page(5)).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(150));
                Some(respond("200 OK", "", b"<title>INJECTED</title>"))
            }
            "/missing" => Some(respond("404 Not Found", "", b"no")),
            "/image" => Some(respond("200 OK", "Content-Type: image/png\r\n", b"\x89PNG")),
            "/latin1" => Some(respond(
                "200 OK",
                "Content-Type: text/html; charset=iso-8859-1\r\n",
                b"<title>Caf\xe9</title>",
            )),
            "/garbage-html" => Some(respond(
                "200 OK",
                "Content-Type: text/html\r\n",
                &(0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>(),
            )),
            "/gzip" => {
                use flate2::write::GzEncoder;
                let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(b"<title>Zipped</title>").unwrap();
                Some(respond("200 OK", "Content-Encoding: gzip\r\n", &gz.finish().unwrap()))
            }
            "/bad-gzip" => Some(respond("200 OK", "Content-Encoding: gzip\r\n", b"<title>x</title>")),
            "/chunked" => Some(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n<title>\r\n7\r\nChunked\r\n8\r\n</title>\r\n0\r\n\r\n".to_vec(),
            ),
            "/http10" => {
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n<title>Old</title>");
                None
            }
            "/early-close" => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<p>");
                None
            }
            "/no-answer" => None,
            "/garbage" => {
                let _ = conn.write_all(b"\x00\x01not http at all\r\n\r\n");
                None
            }
            "/stall" => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<html><p>");
                for _ in 0..50 {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                None
            }
            "/huge" => {
                // A gigabyte announced; sent until the client goes away.
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000000000\r\n\r\n<title>Huge</title>",
                );
                let filler = vec![b'x'; 64 * 1024];
                let started = Instant::now();
                while conn.write_all(&filler).is_ok() && started.elapsed() < Duration::from_secs(20) {}
                None
            }
            _ => Some(respond("404 Not Found", "", b"")),
        };
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        match reply {
            Some(r) => {
                if conn.write_all(&r).is_err() {
                    return;
                }
            }
            None => return,
        }
    }
}

fn config(model: FetchModel) -> FetchConfig {
    let mut c = FetchConfig {
        model,
        concurrency: 8,
        backoff: Duration::from_millis(40),
        ..FetchConfig::default()
    };
    c.client.timeout = Duration::from_secs(1);
    c.client.connect_timeout = Duration::from_secs(1);
    c.wants.max_body = 1 << 20;
    c
}

fn list(urls: &[String]) -> Feed {
    Feed::Urls(Box::new(Vec::from(urls).into_iter()))
}

fn run(config: FetchConfig, feed: Feed) -> (Vec<Row>, FetchSummary) {
    let mut rows = Vec::new();
    let summary = fetch::run(config, feed, |_| {}, |r| rows.push(r.clone())).unwrap();
    rows.sort_by(|a, b| a.url.cmp(&b.url));
    (rows, summary)
}

/// A name that cannot resolve, and is refused before any query leaves the machine (a label
/// of more than 63 bytes): no DNS traffic off loopback.
fn unresolvable() -> String {
    format!("http://{}.test/", "a".repeat(64))
}

/// A port nothing listens on.
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/")
}

#[test]
fn every_failure_is_a_row_of_its_kind_and_both_models_give_the_same_rows() {
    let s = server();
    let cases: Vec<(String, Option<&str>)> = vec![
        (s.url("/page/3"), None),
        (s.url("/chunked"), None),
        (s.url("/gzip"), None),
        (s.url("/latin1"), None),
        (s.url("/http10"), None),
        (s.url("/redirect/3"), None),
        (s.url("/garbage-html"), None),
        (s.url("/missing"), Some("http_status")),
        (s.url("/image"), Some("not_html")),
        (s.url("/bad-gzip"), Some("decode")),
        (s.url("/early-close"), Some("closed")),
        (s.url("/no-answer"), Some("closed")),
        (s.url("/garbage"), Some("parse")),
        (s.url("/stall"), Some("timeout")),
        (s.url("/loop/a"), Some("redirect_loop")),
        (closed_port(), Some("refused")),
        (unresolvable(), Some("dns")),
        ("ftp://example.org/".to_string(), Some("invalid_url")),
        ("not a url".to_string(), Some("invalid_url")),
    ];
    let urls: Vec<String> = cases.iter().map(|(u, _)| u.clone()).collect();
    let mut by_model = Vec::new();
    for model in [FetchModel::Async, FetchModel::Threads] {
        let (rows, summary) = run(config(model), list(&urls));
        assert_eq!(rows.len(), cases.len(), "{model:?}: one row per URL");
        let kinds: HashMap<&str, Option<&str>> = rows
            .iter()
            .map(|r| (r.url.as_str(), r.error.as_deref()))
            .collect();
        for (url, kind) in &cases {
            assert_eq!(kinds[url.as_str()], *kind, "{model:?} {url}");
        }
        let titles: HashMap<&str, Option<&str>> = rows
            .iter()
            .map(|r| (r.url.as_str(), r.title.as_deref()))
            .collect();
        assert_eq!(titles[s.url("/page/3").as_str()], Some("Page 3"));
        assert_eq!(titles[s.url("/chunked").as_str()], Some("Chunked"));
        assert_eq!(titles[s.url("/gzip").as_str()], Some("Zipped"));
        assert_eq!(titles[s.url("/latin1").as_str()], Some("Caf\u{e9}"));
        assert_eq!(titles[s.url("/http10").as_str()], Some("Old"));
        assert_eq!(titles[s.url("/redirect/3").as_str()], Some("Page 0"));
        let redirected = rows.iter().find(|r| r.url == s.url("/redirect/3")).unwrap();
        assert_eq!((redirected.redirects, redirected.attempts), (3, 4));
        assert_eq!(
            redirected.final_url.as_deref(),
            Some(s.url("/redirect/0").as_str())
        );
        assert_eq!(summary.rows, cases.len() as u64);
        assert_eq!(
            summary.ok,
            cases.iter().filter(|(_, k)| k.is_none()).count() as u64
        );
        // Rows without their timings: what each model found must be the same.
        let bare: Vec<Row> = rows
            .into_iter()
            .map(|mut r| {
                r.latency_ms = 0.0;
                // Refused connects are retried: the number of tries is the same, their
                // wording too.
                r
            })
            .collect();
        by_model.push(bare);
    }
    assert_eq!(by_model[0], by_model[1], "async and threads rows differ");
}

#[test]
fn retries_back_off_and_honour_retry_after_and_give_up_when_it_asks_too_much() {
    let s = server();
    for model in [FetchModel::Async, FetchModel::Threads] {
        let flaky = format!("/flaky/{model:?}");
        let hopeless = format!("/flaky/{model:?}-hopeless");
        let urls = vec![
            s.url(&format!("{flaky}?fail=2")),
            s.url(&format!("{hopeless}?fail=99")),
            s.url("/limited"),
        ];
        let (rows, summary) = run(config(model), list(&urls));
        let by: HashMap<String, &Row> = rows.iter().map(|r| (r.url.clone(), r)).collect();
        let ok = by[&urls[0]];
        assert_eq!(
            (ok.status, ok.attempts, ok.error.as_deref()),
            (Some(200), 3, None)
        );
        assert_eq!(ok.title.as_deref(), Some("Page 7"));
        let hits = s.hits(&flaky);
        assert_eq!(hits.len(), 3);
        // The back-off doubles from 40 ms, half of it fixed: at least 20 ms, then 40 ms.
        assert!(
            hits[1] - hits[0] >= Duration::from_millis(20),
            "{:?}",
            hits[1] - hits[0]
        );
        assert!(
            hits[2] - hits[1] >= Duration::from_millis(40),
            "{:?}",
            hits[2] - hits[1]
        );
        let bad = by[&urls[1]];
        assert_eq!(
            (bad.status, bad.attempts, bad.error.as_deref()),
            (Some(503), 3, Some("http_status"))
        );
        // Retry-After: 3600 is more than the longest wait: one try, and the row says why.
        let limited = by[&urls[2]];
        assert_eq!((limited.status, limited.attempts), (Some(429), 1));
        assert!(
            limited
                .detail
                .as_deref()
                .unwrap()
                .contains("Retry-After: 3600")
        );
        assert_eq!(summary.retries, 4);
    }
}

#[test]
fn the_per_host_limit_is_never_exceeded_by_the_servers_own_count() {
    for model in [FetchModel::Async, FetchModel::Threads] {
        let urls_of = |s: &TestServer| -> Vec<String> {
            (0..24)
                .map(|i| s.url(&format!("/slow/{i}?ms=40")))
                .collect()
        };
        let s = server();
        let mut c = config(model);
        c.concurrency = 12;
        c.per_host = Some(3);
        let (rows, _) = run(c.clone(), list(&urls_of(&s)));
        assert!(rows.iter().all(|r| r.error.is_none()));
        let peak = s.seen.peak.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&peak),
            "{model:?}: peak {peak} in flight with --per-host 3"
        );
        // Without the limit the same run does go past it: the count can see a breach.
        let s = server();
        c.per_host = None;
        run(c, list(&urls_of(&s)));
        assert!(s.seen.peak.load(Ordering::SeqCst) > 3, "{model:?}");
    }
}

#[test]
fn a_crawl_visits_each_page_once_to_its_depth() {
    for model in [FetchModel::Async, FetchModel::Threads] {
        let s = server();
        let start = normalise(&s.url("/page/0")).unwrap();
        let feed = Feed::Crawl(Frontier::new(start, 50, true, None));
        let mut c = config(model);
        c.wants.links = true;
        let (rows, _) = run(c, feed);
        // The pages link n -> n+1 and n -> 2n (mod 20): all 20 are reachable from 0.
        assert_eq!(rows.len(), 20, "{model:?}");
        assert!(rows.iter().all(|r| r.error.is_none() && r.depth.is_some()));
        for n in 0..20 {
            assert_eq!(s.hits(&format!("/page/{n}")).len(), 1, "{model:?} page {n}");
        }
        // Depth 1: the start and its two links (1 and 0 again: itself, not fetched twice).
        let s = server();
        let start = normalise(&s.url("/page/3")).unwrap();
        let mut c = config(model);
        c.wants.links = true;
        let (rows, _) = run(c, Feed::Crawl(Frontier::new(start, 1, true, None)));
        let depths: BTreeMap<String, u32> = rows
            .iter()
            .map(|r| (r.url.clone(), r.depth.unwrap()))
            .collect();
        let want: BTreeMap<String, u32> = [("/page/3", 0), ("/page/4", 1), ("/page/6", 1)]
            .iter()
            .map(|(p, d)| (s.url(p), *d))
            .collect();
        assert_eq!(depths, want, "{model:?}");
    }
}

#[test]
fn a_huge_body_is_left_after_the_title_or_cut_at_max_body() {
    let s = server();
    for model in [FetchModel::Async, FetchModel::Threads] {
        let (rows, _) = run(config(model), list(&[s.url("/huge")]));
        assert_eq!(rows[0].title.as_deref(), Some("Huge"));
        assert!(rows[0].bytes < 1 << 20, "{}", rows[0].bytes);
        let mut c = config(model);
        c.wants.pick = Pick::parse("p");
        c.wants.max_body = 256 * 1024;
        let (rows, _) = run(c, list(&[s.url("/huge")]));
        assert!(
            rows[0].truncated && rows[0].error.is_none(),
            "{:?}",
            rows[0]
        );
        assert!(rows[0].bytes < 1 << 20, "{}", rows[0].bytes);
    }
}

#[test]
fn a_stop_cuts_what_is_in_flight_and_keeps_what_was_finished() {
    let s = server();
    for model in [FetchModel::Async, FetchModel::Threads] {
        let urls: Vec<String> = (0..200)
            .map(|i| s.url(&format!("/slow/{i}?ms=150")))
            .collect();
        let mut c = config(model);
        c.concurrency = 10;
        let started = Instant::now();
        let mut rows = Vec::new();
        let summary = fetch::run(
            c,
            list(&urls),
            |p| {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(400));
                    p.interrupt();
                });
            },
            |r| rows.push(r.clone()),
        )
        .unwrap();
        assert!(summary.interrupted);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(
            !rows.is_empty() && rows.len() < 100,
            "{model:?}: {} rows",
            rows.len()
        );
        assert!(
            rows.iter().all(|r| r.error.is_none()),
            "{model:?}: a cut request got a row"
        );
    }
}

#[test]
fn a_kept_connection_with_stray_bytes_is_not_reused_and_a_stall_on_one_is_one_timeout() {
    let s = server();
    for model in [FetchModel::Async, FetchModel::Threads] {
        let mut c = config(model);
        c.concurrency = 1;
        // Two starts a second: the stray bytes have come by the second request.
        c.rate = Some(2.0);
        let (rows, _) = run(c.clone(), list(&[s.url("/stray"), s.url("/page/1")]));
        let titles: Vec<Option<&str>> = rows.iter().map(|r| r.title.as_deref()).collect();
        assert_eq!(titles, [Some("Page 1"), Some("Page 5")], "{model:?}");
        c.rate = None;
        let (rows, _) = run(c, list(&[s.url("/page/2"), s.url("/stall")]));
        let stalled = rows.iter().find(|r| r.url.ends_with("/stall")).unwrap();
        assert_eq!(
            (stalled.error.as_deref(), stalled.attempts),
            (Some("timeout"), 1),
            "{model:?}"
        );
    }
}

#[test]
fn robots_txt_refuses_what_it_disallows_and_odd_pages_read_right() {
    let s = server();
    for model in [FetchModel::Async, FetchModel::Threads] {
        let mut c = config(model);
        c.robots = true;
        let urls = [
            s.url("/page/1"),
            s.url("/private/1"),
            s.url("/entities"),
            s.url("/flood"),
        ];
        let (rows, _) = run(c, list(&urls));
        let by: HashMap<&str, &Row> = rows.iter().map(|r| (r.url.as_str(), r)).collect();
        assert_eq!(
            by[urls[0].as_str()].title.as_deref(),
            Some("Page 1"),
            "{model:?}"
        );
        let refused = by[urls[1].as_str()];
        assert_eq!(
            (refused.error.as_deref(), refused.attempts),
            (Some("robots"), 0)
        );
        assert!(
            s.hits("/private/1").is_empty(),
            "{model:?}: a disallowed page was fetched"
        );
        assert_eq!(
            by[urls[2].as_str()].title.as_deref(),
            Some("A & B\u{a0}\u{e9}")
        );
        // A flood of 100 Continue: an error row, not a crash of the thread.
        assert_eq!(
            by[urls[3].as_str()].error.as_deref(),
            Some("parse"),
            "{model:?}"
        );
    }
    assert_eq!(s.hits("/robots.txt").len(), 2, "once per run");
    // robots.txt that cannot be read: every page refused, and the row says why.
    let down = server();
    down.seen.robots_down.store(true, Ordering::Release);
    let mut c = config(FetchModel::Async);
    c.robots = true;
    c.retries = 0;
    let (rows, _) = run(c, list(&[down.url("/page/1")]));
    assert_eq!(rows[0].error.as_deref(), Some("robots"));
    assert!(
        rows[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("could not be read"),
        "{:?}",
        rows[0]
    );
    assert!(down.hits("/page/1").is_empty());
}
