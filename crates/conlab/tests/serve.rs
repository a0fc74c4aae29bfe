//! Every server model, with real clients: raw sockets (pipelining, adversarial requests,
//! slowloris), curl, and Python's http.client. Servers bind 127.0.0.1:0 and are stopped by
//! the test; every loop here is bounded.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use conlab_http::Site;
use conlab_http::server::{self, Server, ServerConfig, ServerModel};

fn start(model: ServerModel, reuseport: bool) -> (Server, Arc<Site>) {
    start_with(model, reuseport, Duration::from_secs(5))
}

fn start_with(model: ServerModel, reuseport: bool, idle: Duration) -> (Server, Arc<Site>) {
    let listener = server::bind("127.0.0.1:0".parse().unwrap(), reuseport).unwrap();
    let site = Arc::new(Site::new(None, conlab_work::sum_primes, model.name()));
    let config = ServerConfig {
        model,
        workers: 2,
        reuseport,
        idle_timeout: idle,
        header_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    (Server::start(listener, site.clone(), config).unwrap(), site)
}

const MODELS: [(ServerModel, bool); 4] = [
    (ServerModel::Threadpool, false),
    (ServerModel::ThreadPerConn, false),
    (ServerModel::Event, false),
    (ServerModel::Event, true),
];

/// Sends `raw`, reads until the server closes (bounded by a 10 s read timeout).
fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn pipelined_keep_alive_requests_get_every_answer_in_order() {
    for (model, reuseport) in MODELS {
        let (server, site) = start(model, reuseport);
        let raw = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nHEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /cpu?n=1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let text = exchange(server.local_addr(), raw);
        assert_eq!(
            text.matches("HTTP/1.1 200 OK").count(),
            3,
            "{model}: {text}"
        );
        assert_eq!(
            text.matches("Hello, World!").count(),
            1,
            "{model}: HEAD sends no body: {text}"
        );
        assert!(text.ends_with("76127"), "{model}: {text}");
        for header in ["Server: conlab", "Date: ", "Content-Length: 13"] {
            assert!(text.contains(header), "{model} lacks {header}");
        }
        assert_eq!(site.requests(), 3);
        server.shutdown();
    }
}

#[test]
fn requests_split_anywhere_and_answers_larger_than_a_socket_buffer_arrive_whole() {
    let root = std::env::temp_dir().join(format!("conlab-big-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    // 16 MiB: far more than a socket buffer, so the server's writes are partial and it must
    // wait for the client to read (the event loop's writable path).
    let big: Vec<u8> = (0..16 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    for (model, reuseport) in MODELS {
        let listener = server::bind("127.0.0.1:0".parse().unwrap(), reuseport).unwrap();
        let site = Arc::new(Site::new(
            Some(root.clone()),
            conlab_work::sum_primes,
            model.name(),
        ));
        let config = ServerConfig {
            model,
            workers: 2,
            reuseport,
            ..ServerConfig::default()
        };
        let server = Server::start(listener, site, config).unwrap();
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        // Three pipelined requests, the second with a chunked body, sent a few bytes at a
        // time so that every request is split across reads somewhere.
        let raw: &[u8] = b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n\
POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
GET /sleep?ms=20 HTTP/1.1\r\nHost: x\r\n\r\n\
GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        for piece in raw.chunks(7) {
            s.write_all(piece).unwrap();
            s.flush().unwrap();
        }
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&out[..head_end]);
        assert!(head.starts_with("HTTP/1.1 200 "), "{model}: {head}");
        assert!(head.contains("Content-Length: 16777216"), "{model}: {head}");
        assert!(
            out[head_end..head_end + big.len()] == big[..],
            "{model}: the body arrived damaged"
        );
        let rest = String::from_utf8_lossy(&out[head_end + big.len()..]);
        let statuses: Vec<&str> = rest
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &rest[i + 9..i + 12])
            .collect();
        assert_eq!(statuses, ["405", "200", "200"], "{model}: {rest}");
        assert!(
            rest.find("slept 20 ms").unwrap() < rest.find("Hello, World!").unwrap(),
            "{model}: answers out of order: {rest}"
        );
        server.shutdown();
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_deep_pipeline_and_a_large_body_are_answered_whole_and_in_order() {
    // A /sleep first, so that the rest (1.3 MB of pipelined requests) piles up in the socket
    // while the server waits: then it takes more reads than the event loop gives one
    // connection per turn, and is read over several turns of the loop.
    const DEPTH: usize = 40_000;
    let mut raw = b"GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    raw.extend_from_slice(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n");
    raw.extend(std::iter::repeat_n(b'b', 900_000));
    for _ in 0..DEPTH {
        raw.extend_from_slice(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    raw.extend_from_slice(b"GET /cpu?n=1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let raw = Arc::new(raw);
    for (model, reuseport) in MODELS {
        let (server, site) = start(model, reuseport);
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut writer = s.try_clone().unwrap();
        let raw = raw.clone();
        // Written from a thread while this one reads: neither side's buffers can deadlock.
        let sender = std::thread::spawn(move || writer.write_all(&raw));
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        sender.join().unwrap().unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 "), "{model}");
        assert!(text.contains("slept 300 ms"), "{model}");
        assert_eq!(text.matches("HTTP/1.1 405 ").count(), 1, "{model}");
        assert_eq!(text.matches("Hello, World!").count(), DEPTH, "{model}");
        assert!(
            text.ends_with("76127"),
            "{model}: the last answer is the last request's"
        );
        assert_eq!(site.requests() as usize, DEPTH + 3, "{model}");
        server.shutdown();
    }
}

/// The codec's adversarial corpus (30+ cases) and the site's own refusals.
fn adversarial_cases() -> Vec<(String, Vec<u8>, u16)> {
    let mut cases: Vec<(String, Vec<u8>, u16)> = conlab_http::codec::adversarial_requests()
        .into_iter()
        .map(|c| (c.name.to_string(), c.raw, c.status))
        .collect();
    for (name, raw, status) in [
        (
            "DELETE",
            &b"DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
            405,
        ),
        (
            "no such page",
            b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            404,
        ),
        (
            "bad /cpu",
            b"GET /cpu?n=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            "escape the root",
            b"GET /static/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            404,
        ),
    ] {
        cases.push((name.to_string(), raw.to_vec(), status));
    }
    cases
}

/// Every adversarial case on its own connection: the right status, then the server still
/// answers a plain request.
fn assert_refuses_and_lives(addr: SocketAddr, model: &str) {
    for (name, raw, status) in adversarial_cases() {
        let text = exchange(addr, &raw);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{model}, {name}: expected {status}, got {text:?}"
        );
    }
    let alive = exchange(addr, b"GET /hello HTTP/1.0\r\n\r\n");
    assert!(alive.contains("Hello, World!"), "{model} stopped serving");
}

#[test]
fn adversarial_requests_get_their_status_and_the_server_lives_on() {
    assert!(adversarial_cases().len() >= 30);
    for (model, reuseport) in MODELS {
        let (server, _) = start(model, reuseport);
        assert_refuses_and_lives(server.local_addr(), model.name());
        server.shutdown();
    }
    // prefork: its workers are processes; none may die or hang on any case.
    let (mut parent, _lines, addr, _) = serve_command(&["--model", "prefork", "--workers", "2"]);
    let tree = |pid: u32| {
        let mut pids = conlab_measure::usage::process_tree(pid);
        pids.sort_unstable();
        pids
    };
    let workers = tree(parent.id());
    assert_refuses_and_lives(addr, "prefork");
    assert_eq!(
        tree(parent.id()),
        workers,
        "a prefork worker died or was replaced"
    );
    stop_gracefully(&mut parent);
}

#[test]
fn a_slow_client_gets_408_instead_of_pinning_a_worker() {
    for (model, reuseport) in MODELS {
        let (server, _) = start(model, reuseport);
        let started = std::time::Instant::now();
        let text = exchange(
            server.local_addr(),
            b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow",
        );
        assert!(text.starts_with("HTTP/1.1 408 "), "{model}: {text:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{model}");
        server.shutdown();
    }
}

#[test]
fn curl_and_python_http_client_are_answered() {
    for (model, reuseport) in MODELS {
        let (server, site) = start(model, reuseport);
        let url = format!("http://{}/site/3.html", server.local_addr());
        let curl = Command::new("curl")
            .args(["-s", "-f", &url])
            .output()
            .expect("curl is installed");
        assert!(
            String::from_utf8_lossy(&curl.stdout).contains("<title>Page 3</title>"),
            "{model}"
        );
        let script = format!(
            "import http.client\nc = http.client.HTTPConnection('127.0.0.1', {})\n\
             for p in ['/hello', '/sleep?ms=5', '/hello']:\n    c.request('GET', p)\n    r = c.getresponse()\n    print(r.status, r.read().decode())\n",
            server.local_addr().port()
        );
        let py = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 is installed");
        let text = String::from_utf8_lossy(&py.stdout);
        assert_eq!(
            text.matches("200 Hello, World!").count(),
            2,
            "{model}: {text} {}",
            String::from_utf8_lossy(&py.stderr)
        );
        assert!(text.contains("200 slept 5 ms"), "{model}: {text}");
        assert_eq!(site.requests(), 4, "{model}: /stats counts what was served");
        server.shutdown();
    }
}

#[test]
fn shutdown_finishes_the_request_in_flight() {
    for (model, reuseport) in MODELS {
        let (server, site) = start(model, reuseport);
        let addr = server.local_addr();
        let client = std::thread::spawn(move || {
            exchange(addr, b"GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
        });
        // Wait until the server is handling it (polling a counter, bounded to 10 s).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while site.started() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{model}: the request never arrived"
            );
            std::thread::yield_now();
        }
        server.shutdown();
        let text = client.join().unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 ") && text.contains("slept 300 ms"),
            "{model}: {text:?}"
        );
        assert!(
            text.contains("Connection: close"),
            "{model}: the server says it is closing"
        );
    }
}

#[test]
fn shutdown_ends_idle_keep_alive_connections_at_once() {
    for (model, reuseport) in MODELS {
        // An idle timeout far beyond the test's bounds: only shutdown can end this connection.
        let (server, _) = start_with(model, reuseport, Duration::from_secs(600));
        let mut idle = TcpStream::connect(server.local_addr()).unwrap();
        idle.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = idle.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 "), "{model}");
        let stopper = std::thread::spawn(move || server.shutdown());
        // The server closes the idle connection: end of file, not the 20 s read timeout.
        let end = idle.read(&mut buf);
        assert!(matches!(end, Ok(0)), "{model}: {end:?}");
        stopper.join().unwrap();
    }
}

type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// Starts `conlab serve ARGS --bind 127.0.0.1:0` and reads the address from its banner.
fn serve_command(args: &[&str]) -> (std::process::Child, Lines, SocketAddr, String) {
    serve_command_limited(args, None)
}

/// As [`serve_command`], with at most `files` open file descriptors in the server.
fn serve_command_limited(
    args: &[&str],
    files: Option<u64>,
) -> (std::process::Child, Lines, SocketAddr, String) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_conlab"));
    command
        .arg("serve")
        .args(args)
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped());
    if let Some(files) = files {
        // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: files,
                    rlim_max: files,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let addr = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"));
    (child, lines, addr, banner)
}

#[test]
fn the_serve_command_prints_its_port_and_stops_cleanly_on_sigterm() {
    let (mut child, mut lines, addr, _) =
        serve_command(&["--model", "threadpool", "--workers", "2"]);
    assert!(exchange(addr, b"GET /hello HTTP/1.0\r\n\r\n").contains("Hello, World!"));
    stop_gracefully(&mut child);
    let last = lines.next().unwrap().unwrap();
    assert!(last.contains("stopped after 1 requests"), "{last}");
}

#[test]
fn prefork_serves_from_several_processes_and_stops_them_all() {
    let (mut parent, lines, addr, banner) =
        serve_command(&["--model", "prefork", "--workers", "3"]);
    assert!(
        banner.contains("prefork") && banner.contains("3 worker processes"),
        "{banner}"
    );
    let text = exchange(
        addr,
        b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /cpu?n=1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        text.contains("Hello, World!") && text.ends_with("76127"),
        "{text}"
    );
    let refused = exchange(addr, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 505 "), "{refused}");
    let children = |pid: u32| conlab_measure::usage::process_tree(pid).len() - 1;
    assert_eq!(children(parent.id()), 3, "three worker processes");
    // Every worker answers: keep connections open on all three at once.
    let open: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for mut s in &open {
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).contains("200 OK"),
            "a worker did not answer"
        );
    }
    drop(open);
    // The workers count into one shared block: /stats is the whole server's, whichever
    // worker answers it (2 + 1 + 3 requests so far, all from different connections).
    let stats = stats(addr);
    assert_eq!(stats["requests"], 6, "{stats}");
    assert_eq!(stats["status"]["505"], 1, "{stats}");
    assert_eq!(stats["connections"], 6, "{stats}");
    let pid = parent.id();
    stop_gracefully(&mut parent);
    assert_eq!(children(pid), 0, "no worker process outlives the server");
    let last = lines.map_while(Result::ok).last().unwrap_or_default();
    assert!(last.contains("after 7 requests"), "{last}");
}

/// SIGTERM to a `conlab serve` child; it must stop cleanly (exit 0).
fn stop_gracefully(child: &mut std::process::Child) {
    // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(
        child.wait().unwrap().success(),
        "conlab serve did not stop cleanly"
    );
}

/// The server's `/stats`, parsed.
fn stats(addr: SocketAddr) -> serde_json::Value {
    let text = exchange(
        addr,
        b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    serde_json::from_str(&text[text.find('{').expect("a JSON body")..]).unwrap()
}

/// Open descriptors of process `pid`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    const LIMIT: u64 = 48;
    for args in [
        ["--model", "event", "--workers", "2"],
        ["--model", "threadpool", "--workers", "100"],
        ["--model", "thread-per-conn", "--workers", "1"],
    ] {
        let (mut child, _, addr, _) = serve_command_limited(&args, Some(LIMIT));
        // More connections than the server has descriptors for: accept fails with EMFILE
        // and the rest wait in the backlog.
        let held: Vec<TcpStream> = (0..LIMIT + 20)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while open_files(child.id()) < LIMIT as usize {
            assert!(
                std::time::Instant::now() < deadline,
                "{args:?}: the server never reached its descriptor limit ({} open)",
                open_files(child.id())
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?}: died at EMFILE"
        );
        drop(held);
        // Descriptors come back as the held connections end; the server serves again.
        let text = exchange(
            addr,
            b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(text.ends_with("Hello, World!"), "{args:?}: {text:?}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?}: died after EMFILE"
        );
        stop_gracefully(&mut child);
    }
}

/// Opens a connection that sends half a request head and stops: a slowloris.
fn slowloris(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    s
}

/// Whether the server has sent anything on `s` yet (without waiting).
fn answered(s: &TcpStream) -> Option<String> {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let seen = s.peek(&mut buf).ok().filter(|n| *n > 0);
    s.set_nonblocking(false).unwrap();
    seen.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn a_slowloris_pins_every_prefork_worker_but_not_an_event_loop() {
    // prefork, 2 workers, 2 slow clients: each worker is stuck with one until the header
    // timeout answers it 408; a normal request waits for that.
    let (mut parent, _, addr, _) = serve_command(&[
        "--model",
        "prefork",
        "--workers",
        "2",
        "--header-timeout-s",
        "1",
    ]);
    let slow = [slowloris(addr), slowloris(addr)];
    let text = exchange(
        addr,
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(text.ends_with("Hello, World!"), "{text:?}");
    let freed: Vec<String> = slow.iter().filter_map(answered).collect();
    assert!(
        freed.iter().any(|t| t.starts_with("HTTP/1.1 408 ")),
        "the normal request was served before any slow client let go of a worker: {freed:?}"
    );
    stop_gracefully(&mut parent);

    // event, one loop, 50 slow clients: the loop serves the normal request while every slow
    // client is still waiting for its 408.
    let (mut parent, _, addr, _) = serve_command(&[
        "--model",
        "event",
        "--workers",
        "1",
        "--header-timeout-s",
        "30",
    ]);
    let slow: Vec<TcpStream> = (0..50).map(|_| slowloris(addr)).collect();
    let text = exchange(
        addr,
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(text.ends_with("Hello, World!"), "{text:?}");
    assert!(
        slow.iter().all(|s| answered(s).is_none()),
        "a slow client was answered before its header timeout"
    );
    stop_gracefully(&mut parent);
}

#[test]
fn prefork_answers_curl_python_and_load_and_its_stats_count_every_request() {
    let (mut parent, _lines, addr, _) = serve_command(&["--model", "prefork", "--workers", "3"]);
    let url = format!("http://{addr}/site/3.html");
    let curl = Command::new("curl")
        .args(["-s", "-f", &url])
        .output()
        .expect("curl is installed");
    assert!(String::from_utf8_lossy(&curl.stdout).contains("<title>Page 3</title>"));
    let script = format!(
        "import http.client\nc = http.client.HTTPConnection('127.0.0.1', {})\n\
         for p in ['/hello', '/hello']:\n    c.request('GET', p)\n    r = c.getresponse()\n    print(r.status, r.read().decode())\n",
        addr.port()
    );
    let py = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 is installed");
    assert_eq!(
        String::from_utf8_lossy(&py.stdout)
            .matches("200 Hello, World!")
            .count(),
        2
    );
    let load = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["load", "-n", "300", "-c", "6", "--json", "-"])
        .arg(format!("http://{addr}/hello"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&load.stdout).unwrap();
    assert_eq!(report["requests"], 300, "{report}");
    // The workers' shared counters: 1 (curl) + 2 (Python) + 300 (load), whichever of the
    // three processes served each.
    let stats = stats(addr);
    assert_eq!(stats["requests"], 303, "{stats}");
    assert_eq!(stats["status"]["200"], 303, "{stats}");
    stop_gracefully(&mut parent);
}

#[test]
fn ready_json_says_where_every_prefork_worker_listens_and_leaves_stdout_json() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args([
            "serve",
            "--model",
            "prefork",
            "--workers",
            "3",
            "--ready-json",
        ])
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let ready = conlab_http::Ready::parse(&line).unwrap_or_else(|| panic!("{line:?}"));
    assert_eq!((ready.model.as_str(), ready.workers), ("prefork", 3));
    assert_eq!(ready.pid, child.id());
    // Every worker is up when the line is printed: the tree has them all.
    assert_eq!(conlab_measure::usage::process_tree(child.id()).len(), 4);
    assert!(exchange(ready.addr, b"GET /hello HTTP/1.0\r\n\r\n").contains("Hello, World!"));
    stop_gracefully(&mut child);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "only the ready line on stdout");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("stopped 3 worker processes after 1 requests"),
        "{stderr}"
    );
}
