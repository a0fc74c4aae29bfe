//! The load generator (`conlab load`): wrk's closed loop and wrk2's open loop, on event
//! loops.
//!
//! - **Closed loop**: `connections` connections, each sending its next request (or batch of
//!   `pipeline` requests) as soon as the previous answer arrives, for a duration or a
//!   number of requests. Throughput is whatever the server sustains.
//! - **Open loop** (`rate`): requests are *scheduled* at a constant total rate, spread over
//!   the connections. When the server stalls, a closed loop stops sending and so never
//!   measures the requests that would have queued up (coordinated omission). Here a
//!   request's latency is measured from the time it *should* have been sent: the corrected
//!   latency. The uncorrected one (from the actual send) is reported beside it, so the gap
//!   is visible.
//!
//! Each of `threads` OS threads runs a current-thread tokio loop with its share of the
//! connections; requests are serialised once; responses are parsed with httparse; latencies
//! go to HdrHistograms (fixed memory however long the run), merged at the end.
//! [`report`] turns a run into `conlab load`'s report.

mod report;

use crate::client::framing::{self, Body, Head};

pub use report::{LOAD_SCHEMA, LatencySummary, LoadReport};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conlab_measure::LatencyRecorder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where to send requests: an `http://` or `https://host:port/path` URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https`: TLS, to a server named `name`.
    pub tls: bool,
    /// The host alone: the name TLS asks the server's certificate for.
    pub name: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// The `Host` header.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// A URL that is not `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad URL `{url}`: {why}")]
pub struct UrlError {
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub why: String,
}

impl Target {
    /// Parses `http[s]://host:port/path?query`; an IPv6 host goes in brackets
    /// (`[::1]:8080`).
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let err = |why: &str| UrlError {
            url: url.to_string(),
            why: why.to_string(),
        };
        let form = "expected http://HOST[:PORT][/PATH] or https://...";
        let (tls, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            _ => return Err(err(form)),
        };
        // A fragment is the client's own: it is never sent.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (host, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if host.is_empty() || host.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
            return Err(err(form));
        }
        let (name, port) = match host.strip_prefix('[') {
            Some(bracketed) => {
                let (address, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| err("an IPv6 address needs its closing `]`"))?;
                let port = match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if after.is_empty() => None,
                    None => return Err(err(form)),
                };
                (format!("[{address}]"), port)
            }
            None => match host.rsplit_once(':') {
                Some((name, port)) => (name.to_string(), Some(port)),
                None => (host.to_string(), None),
            },
        };
        if name.is_empty() || (name.contains(':') && !name.starts_with('[')) {
            return Err(err("an IPv6 host goes in brackets: http://[::1]:8080/"));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(err(&format!(
                        "the port `{p}` is not a number from 1 to 65535"
                    )));
                }
                Ok(n) => n,
            },
        };
        Ok(Target {
            tls,
            name: name.clone(),
            authority: format!("{name}:{port}"),
            host: host.to_string(),
            path,
        })
    }
}

/// A load that cannot run as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A count that must be at least one: connections, threads, pipeline, requests.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// Deeper pipelines than the sockets can hold.
    #[error(
        "a pipeline of {0}: at most {MAX_PIPELINE} requests in flight per connection (deeper, \
         both sockets' buffers fill before the first answer is read)"
    )]
    PipelineTooDeep(usize),
    /// No time to run in.
    #[error("a run of 0 s sends nothing: give it a duration, or a number of requests")]
    NoTime,
    /// A timeout that every response would exceed.
    #[error("the response timeout must be more than 0")]
    NoTimeout,
    /// A rate that is not one.
    #[error("the rate must be a positive number of requests per second")]
    Rate,
    /// A method that is not an HTTP token.
    #[error("`{0}` is not an HTTP method: letters, digits and !#$%&'*+-.^_`|~ only")]
    Method(String),
    /// A header that would break the request (a bad name, a line break in the value).
    #[error("bad header {0:?}: a name of letters, digits and -, and a value on one line")]
    Header(String),
    /// A header the generator writes itself.
    #[error("{0}: the generator sets the body's framing itself, from the body it is given")]
    Framing(String),
    /// TLS that cannot be set up (a CA file that cannot be read).
    #[error("{0}")]
    Tls(String),
    /// More connections than this process may open descriptors.
    #[error(
        "{connections} connections need as many file descriptors, and this process may open \
         {limit} (ulimit -n): raise the limit or use fewer connections"
    )]
    Descriptors {
        /// Connections asked for.
        connections: usize,
        /// The most this process may open (its hard limit).
        limit: u64,
    },
}

/// The client's TLS: HTTP/1.1 offered by ALPN (the load is HTTP/1.1's framing).
fn tls_client(
    options: &crate::tls::TlsOptions,
) -> Result<crate::tls::TlsClient, crate::tls::TlsError> {
    crate::tls::TlsClient::new(options, &[b"http/1.1"])
}

/// The deepest pipeline: 1024 requests of a few dozen bytes each, and their answers, fit in
/// a loopback socket's buffers.
pub const MAX_PIPELINE: usize = 1024;

/// RFC 9110's `tchar`: what a method or a header name may be made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl LoadConfig {
    /// A load of `target` with wrk's defaults: 10 connections on one thread, one request in
    /// flight each, GET, a 2 s response timeout, no end (set `duration` or `requests`).
    pub fn new(target: Target) -> LoadConfig {
        LoadConfig {
            target,
            connections: 10,
            threads: 1,
            duration: None,
            requests: None,
            rate: None,
            pipeline: 1,
            timeout: Duration::from_secs(2),
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            tls: crate::tls::TlsOptions::default(),
        }
    }

    /// Refuses a configuration that cannot run (it changes nothing: [`run`] raises the
    /// descriptor limit to what the connections need).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (what, n) in [
            ("connections", self.connections),
            ("threads", self.threads),
            ("the pipeline", self.pipeline),
        ] {
            if n == 0 {
                return Err(ConfigError::Zero(what));
            }
        }
        if self.requests == Some(0) {
            return Err(ConfigError::Zero("the number of requests"));
        }
        if self.pipeline > MAX_PIPELINE {
            return Err(ConfigError::PipelineTooDeep(self.pipeline));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::NoTime);
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::NoTimeout);
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(ConfigError::Rate);
        }
        if !is_token(&self.method) {
            return Err(ConfigError::Method(self.method.clone()));
        }
        if let Some((k, v)) = self
            .headers
            .iter()
            .find(|(k, v)| !is_token(k) || v.contains(['\r', '\n']))
        {
            return Err(ConfigError::Header(format!("{k}: {v}")));
        }
        if let Some((k, _)) = self.headers.iter().find(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        }) {
            return Err(ConfigError::Framing(k.clone()));
        }
        if self.target.tls {
            tls_client(&self.tls).map_err(|e| ConfigError::Tls(e.to_string()))?;
        }
        let limit = descriptor_limits().1;
        if (self.connections as u64) + 64 > limit {
            return Err(ConfigError::Descriptors {
                connections: self.connections,
                limit,
            });
        }
        Ok(())
    }
}

/// This process's soft and hard limits on open descriptors (unlimited where unknown).
pub(crate) fn descriptor_limits() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the one struct we own. Exercised by
    // `a_load_needs_a_descriptor_per_connection`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return (u64::MAX, u64::MAX);
    }
    (limit.rlim_cur, limit.rlim_max)
}

/// Raises this process's soft limit on open descriptors towards `wanted`, as far as the hard
/// limit allows (a connection is a descriptor; the default soft limit is often 1024).
pub(crate) fn raise_descriptor_limit(wanted: u64) {
    let (soft, hard) = descriptor_limits();
    if soft >= wanted {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.min(hard),
        rlim_max: hard,
    };
    // SAFETY: `setrlimit` reads the one struct we own.
    unsafe {
        libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
    }
}

/// How to load a server.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The target.
    pub target: Target,
    /// Open connections.
    pub connections: usize,
    /// Event-loop threads.
    pub threads: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many responses.
    pub requests: Option<u64>,
    /// Open loop: this many requests per second in all.
    pub rate: Option<f64>,
    /// Requests in flight per connection (sent in one write).
    pub pipeline: usize,
    /// A response slower than this is a timeout error.
    pub timeout: Duration,
    /// The method.
    pub method: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// A request body.
    pub body: Option<Vec<u8>>,
    /// How `https` targets are checked.
    pub tls: crate::tls::TlsOptions,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Responses received (any status).
    pub requests: u64,
    /// Responses with a 2xx status.
    pub successes: u64,
    /// Wall time of the run.
    pub duration: Duration,
    /// Response bytes read (headers and bodies).
    pub bytes: u64,
    /// Latency: from the intended send time in open-loop runs, from the send otherwise.
    pub latency: LatencyRecorder,
    /// Open loop only: latency from the actual send.
    pub uncorrected: Option<LatencyRecorder>,
    /// Responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Errors by kind: connect, read, write, timeout, parse.
    pub errors: BTreeMap<&'static str, u64>,
    /// Connections (clients) that got at least one answer within the run's duration. Fewer
    /// than `connections` when the server serves a fixed number at a time: a prefork server
    /// or a thread pool with fewer workers than clients leaves the rest waiting in its
    /// accept queue (until the end of the run, when closing connections frees its workers).
    pub connections_answered: u64,
    /// What the first failed connect said (`connect: Connection refused (os error 111)`).
    pub first_error: Option<String>,
    /// Ended early by [`Progress::interrupt`] (Ctrl-C).
    pub interrupted: bool,
}

impl Shared {
    fn interrupted_at(&self) -> Option<Instant> {
        *self
            .interrupted_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

struct Shared {
    config: LoadConfig,
    /// For `https` targets.
    tls: Option<crate::tls::TlsClient>,
    request: Vec<u8>,
    /// `request` repeated `pipeline` times: a batch of k is its first k requests, so no
    /// batch is ever built again.
    batch: Vec<u8>,
    /// Requests still to send in `-n` mode (decremented before sending).
    budget: AtomicU64,
    stop: AtomicBool,
    /// When the run was stopped from outside (Ctrl-C), for its length; connections then
    /// end where they wait.
    interrupted_at: std::sync::Mutex<Option<Instant>>,
    /// Responses received so far, for progress.
    done: AtomicU64,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    successes: u64,
    bytes: u64,
    latency: LatencyRecorder,
    uncorrected: LatencyRecorder,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    connections_answered: u64,
    /// The first error's message, to say why.
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.connections_answered += other.connections_answered;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.requests += other.requests;
        self.successes += other.successes;
        self.bytes += other.bytes;
        self.latency.merge(&other.latency);
        self.uncorrected.merge(&other.uncorrected);
        for (k, v) in other.status {
            *self.status.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// A handle on a running load, for progress.
#[derive(Clone)]
pub struct Progress(Arc<Shared>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("done", &self.done())
            .finish()
    }
}

impl Progress {
    /// Responses received so far.
    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    /// Ends the run now (Ctrl-C), as wrk ends it: what was measured so far is the result,
    /// and the run's length is the time until now.
    pub fn interrupt(&self) {
        let mut at = self
            .0
            .interrupted_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        at.get_or_insert_with(Instant::now);
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

fn serialise(config: &LoadConfig) -> Vec<u8> {
    let mut req = format!("{} {} HTTP/1.1\r\n", config.method, config.target.path);
    // A Host of the user's replaces the URL's, as with wrk and curl.
    if !config
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        req.push_str(&format!("Host: {}\r\n", config.target.host));
    }
    for (k, v) in &config.headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = &config.body {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(body) = &config.body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Runs the load; `on_start` gets a progress handle once the threads are running.
pub fn run(config: LoadConfig, on_start: impl FnOnce(Progress)) -> LoadResult {
    raise_descriptor_limit(config.connections as u64 + 64);
    let threads = config.threads.clamp(1, config.connections.max(1));
    let request = serialise(&config);
    // Checked by `validate`; a configuration that fails here fails every connect instead.
    let tls = config
        .target
        .tls
        .then(|| tls_client(&config.tls).ok())
        .flatten();
    let shared = Arc::new(Shared {
        tls,
        batch: request.repeat(config.pipeline.max(1)),
        request,
        budget: AtomicU64::new(config.requests.unwrap_or(u64::MAX)),
        stop: AtomicBool::new(false),
        interrupted_at: std::sync::Mutex::new(None),
        done: AtomicU64::new(0),
        config,
    });
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let shared = shared.clone();
            let connections = (shared.config.connections + threads - 1 - t) / threads;
            std::thread::spawn(move || run_thread(&shared, connections, t, threads, start))
        })
        .collect();
    on_start(Progress(shared.clone()));
    let mut total = Tally::default();
    for h in handles {
        if let Ok(t) = h.join() {
            total.merge(t);
        }
    }
    let interrupted_at = shared.interrupted_at();
    LoadResult {
        requests: total.requests,
        successes: total.successes,
        // A run with a duration lasts that long, as wrk's does; one of -n, until its end;
        // an interrupted one, until the interruption.
        duration: match interrupted_at {
            Some(at) => at.duration_since(start),
            None => shared.config.duration.unwrap_or_else(|| start.elapsed()),
        },
        interrupted: interrupted_at.is_some(),
        bytes: total.bytes,
        latency: total.latency,
        uncorrected: shared.config.rate.map(|_| total.uncorrected),
        status: total.status,
        errors: total.errors,
        connections_answered: total.connections_answered,
        first_error: total.first_error,
    }
}

fn run_thread(
    shared: &Arc<Shared>,
    connections: usize,
    thread: usize,
    threads: usize,
    start: Instant,
) -> Tally {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Tally::default();
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        // One tally for the thread's connections (they share its one event loop): two
        // HdrHistograms per connection were 2.3 GB at -c 5000.
        let tally = Rc::new(RefCell::new(Tally::default()));
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (shared, tally) = (shared.clone(), Rc::clone(&tally));
            // Spread open-loop start times over the connections so they do not fire together.
            let index = c * threads + thread;
            tasks.push(tokio::task::spawn_local(async move {
                connection(&shared, index, start, &tally).await;
            }));
        }
        // An interrupted run (Ctrl-C) ends every connection where it is waiting: what they
        // counted is in the tally already.
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let interrupted = Arc::clone(shared);
        let watcher = tokio::task::spawn_local(async move {
            while interrupted.interrupted_at().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for a in aborts {
                a.abort();
            }
        });
        for t in tasks {
            let _ = t.await;
        }
        watcher.abort();
        tally.take()
    })
}

/// Takes one request from the `-n` budget; false when it is spent or the run is over.
fn take(shared: &Shared, start: Instant) -> bool {
    if shared.stop.load(Ordering::Relaxed) {
        return false;
    }
    if shared.config.duration.is_some_and(|d| start.elapsed() >= d) {
        shared.stop.store(true, Ordering::Relaxed);
        return false;
    }
    shared
        .budget
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1))
        .is_ok()
}

async fn connection(shared: &Shared, index: usize, start: Instant, tally: &RefCell<Tally>) {
    connect_and_send(shared, index, start, tally, &mut false).await;
}

/// What waiting for more of a response gave.
enum Wait {
    /// Bytes arrived.
    More,
    /// The server closed the connection.
    Closed,
    /// The connection failed.
    Failed,
    /// The answer's timeout passed.
    TimedOut,
    /// The run's end passed.
    Over,
}

/// Reads more of a response into `buf` (its consumed front, `..*pos`, dropped first), until
/// bytes arrive, the answer's `give_up`, or the run's `end`. One timer per connection,
/// re-armed only when it fires before the answer is due: a `timeout()` around every read
/// put a timer-wheel insert and removal on every request.
async fn wait_for_more(
    stream: &mut crate::tls::Conn,
    buf: &mut Vec<u8>,
    pos: &mut usize,
    mut timer: std::pin::Pin<&mut tokio::time::Sleep>,
    give_up: Instant,
    end: Option<Instant>,
) -> Wait {
    buf.drain(..*pos);
    *pos = 0;
    buf.reserve(READ_SIZE);
    loop {
        let read = tokio::select! {
            biased;
            read = stream.read_buf(buf) => Some(read),
            () = &mut timer => None,
        };
        return match read {
            Some(Ok(0)) => Wait::Closed,
            Some(Ok(_)) => Wait::More,
            Some(Err(_)) => Wait::Failed,
            None if give_up > Instant::now() => {
                // The timer was set for an earlier request.
                timer.as_mut().reset(give_up.into());
                continue;
            }
            None if end.is_some_and(|e| Instant::now() >= e) => Wait::Over,
            None => Wait::TimedOut,
        };
    }
}

/// Whether to stop trying to connect: with a duration, when it is over; with -n alone, after
/// a timeout's worth of connects (or handshakes) failing in a row, counted from the first.
fn stop_trying(
    failing_since: &mut Option<Instant>,
    end: Option<Instant>,
    timeout: Duration,
) -> bool {
    let since = *failing_since.get_or_insert_with(Instant::now);
    let given_up = end.is_none() && since.elapsed() >= timeout;
    given_up || end.is_some_and(|e| Instant::now() >= e)
}

/// A connection's read buffer grows by this much at a time (wrk's is 8 KiB): bodies are
/// streamed through it, never kept, so 5,000 connections cost tens of megabytes.
const READ_SIZE: usize = 8 * 1024;

/// One client's life: connect, send, read the answers, reconnect when the server closes.
/// With a duration, the run ends at `start + duration` exactly, as wrk's does: an answer
/// that arrives later is not counted (it would be the server's teardown, not its load).
async fn connect_and_send(
    shared: &Shared,
    index: usize,
    start: Instant,
    tally: &RefCell<Tally>,
    answered: &mut bool,
) {
    let config = &shared.config;
    let end = config.duration.map(|d| start + d);
    let head = config.method.eq_ignore_ascii_case("HEAD");
    let per_connection = config.rate.map(|r| r / config.connections.max(1) as f64);
    let interval = per_connection.map(|r| Duration::from_secs_f64(1.0 / r.max(1e-9)));
    // Open loop: the k-th request of this connection is due at first_due + k * interval.
    let first_due = start
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(index as f64 / config.connections.max(1) as f64)
        });
    let mut sent: u64 = 0;
    // When connects began failing in a row: with -n and no -d, a server that refuses every
    // connection must end the run after a timeout's worth of trying, not never.
    let mut failing_since: Option<Instant> = None;
    let error = |kind: &'static str, why: Option<String>| {
        let mut t = tally.borrow_mut();
        if let Some(why) = why {
            t.first_error.get_or_insert(why);
        }
        t.error(kind);
    };
    'reconnect: loop {
        if shared.stop.load(Ordering::Relaxed) || shared.budget.load(Ordering::Acquire) == 0 {
            return;
        }
        // A connect never outlasts the run: a SYN the server's full backlog dropped is
        // retried by the kernel for seconds.
        let left = end.map_or(config.timeout, |e| {
            e.saturating_duration_since(Instant::now())
        });
        let stream = match tokio::time::timeout(
            config.timeout.min(left),
            tokio::net::TcpStream::connect(&config.target.authority),
        )
        .await
        {
            Ok(Ok(s)) => s,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => format!("connect: {e}{}", crate::client::descriptor_hint(&e)),
                    _ => format!("connect: no answer within {:?}", config.timeout.min(left)),
                };
                error("connect", Some(why));
                if stop_trying(&mut failing_since, end, config.timeout) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue 'reconnect;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut stream = match (&config.target.tls, &shared.tls) {
            (false, _) => crate::tls::Conn::Plain(stream),
            (true, tls) => {
                let handshake = async {
                    match tls {
                        Some(tls) => tls.connect(stream, &config.target.name).await,
                        None => Err(std::io::Error::other("TLS could not be set up")),
                    }
                };
                match tokio::time::timeout(config.timeout, handshake).await {
                    Ok(Ok(conn)) => conn,
                    failed => {
                        let why = match failed {
                            Ok(Err(e)) => crate::tls::explain(&e),
                            _ => format!("tls: no handshake within {:?}", config.timeout),
                        };
                        error("tls", Some(why));
                        if stop_trying(&mut failing_since, end, config.timeout) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue 'reconnect;
                    }
                }
            }
        };
        failing_since = None;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
        let first_give_up = Instant::now() + config.timeout;
        let timer =
            tokio::time::sleep_until(end.map_or(first_give_up, |e| e.min(first_give_up)).into());
        tokio::pin!(timer);
        // Responses are taken from `buf[pos..]`; the consumed front is dropped once per
        // read, not once per response.
        let mut pos = 0;
        // Waits for more of the response: on bytes, goes on; otherwise leaves the run (its end
        // passed), or the connection (a timeout, a failure, or `$closed` when the server closed).
        macro_rules! more {
                ($reconnect:lifetime, $give_up:expr, $closed:block) => {
                    match wait_for_more(&mut stream, &mut buf, &mut pos, timer.as_mut(), $give_up, end).await {
                        Wait::More => {}
                        Wait::Over => return,
                        Wait::TimedOut => {
                            error("timeout", None);
                            continue $reconnect;
                        }
                        Wait::Failed => {
                            error("read", None);
                            continue $reconnect;
                        }
                        Wait::Closed => $closed,
                    }
                };
            }
        loop {
            // How many to send now: a pipeline's worth, as far as the budget allows.
            let mut batch = 0;
            while batch < config.pipeline.max(1) && take(shared, start) {
                batch += 1;
            }
            if batch == 0 {
                return;
            }
            let due = interval.map(|i| first_due + i.mul_f64(sent as f64));
            if let Some(due) = due {
                // A request due at or after the run's end is not sent: at a low rate the next
                // one can be seconds away, and -d is a promise.
                if end.is_some_and(|e| due >= e) {
                    return;
                }
                tokio::time::sleep_until(due.into()).await;
            }
            let sent_at = Instant::now();
            sent += batch as u64;
            // The answer is awaited until its timeout or the run's end, whichever is first.
            let give_up = end.map_or(sent_at + config.timeout, |e| {
                e.min(sent_at + config.timeout)
            });
            if stream
                .write_all(&shared.batch[..shared.request.len() * batch])
                .await
                .is_err()
            {
                error("write", None);
                continue 'reconnect;
            }
            for _ in 0..batch {
                // The head, once it is all there.
                let (status, mut bytes, close, mut body) = loop {
                    match framing::head(&buf[pos..], head) {
                        Head::Complete {
                            status,
                            len,
                            close,
                            body,
                        } => {
                            pos += len;
                            break (status, len as u64, close, body);
                        }
                        Head::Malformed(why) => {
                            error("parse", Some(format!("parse: {why}")));
                            continue 'reconnect;
                        }
                        Head::Partial => {}
                    }
                    more!('reconnect, give_up, {
                        error("read", None);
                        continue 'reconnect;
                    });
                };
                // The body, streamed: counted as it comes, never kept.
                let mut closed = false;
                loop {
                    match body.advance(&buf[pos..], |_| {}) {
                        Ok((used, done)) => {
                            pos += used;
                            bytes += used as u64;
                            if done {
                                break;
                            }
                        }
                        Err(why) => {
                            error("parse", Some(format!("parse: {why}")));
                            continue 'reconnect;
                        }
                    }
                    more!('reconnect, give_up, {
                        // The end of a body that runs until close is the response's end.
                        if body != Body::UntilClose {
                            error("read", None);
                            continue 'reconnect;
                        }
                        closed = true;
                        break;
                    });
                }
                if !count(shared, tally, answered, status, bytes, due, sent_at, end) {
                    return;
                }
                if close || closed {
                    continue 'reconnect;
                }
            }
        }
    }
}

/// Counts one response of `bytes` bytes; false when it came after the run's end (then it is
/// not counted and the connection stops).
#[allow(clippy::too_many_arguments)]
fn count(
    shared: &Shared,
    tally: &RefCell<Tally>,
    answered: &mut bool,
    status: u16,
    bytes: u64,
    due: Option<Instant>,
    sent_at: Instant,
    end: Option<Instant>,
) -> bool {
    let now = Instant::now();
    if end.is_some_and(|e| now > e) {
        return false;
    }
    let mut t = tally.borrow_mut();
    // Counted at the first answer (within the run, checked above), so an interrupted
    // connection that was answered still counts.
    if !std::mem::replace(answered, true) {
        t.connections_answered += 1;
    }
    t.requests += 1;
    t.bytes += bytes;
    if (200..300).contains(&status) {
        t.successes += 1;
    }
    *t.status.entry(status).or_default() += 1;
    t.latency.record(now.duration_since(due.unwrap_or(sent_at)));
    if due.is_some() {
        t.uncorrected.record(now.duration_since(sent_at));
    }
    shared.done.fetch_add(1, Ordering::Relaxed);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let t = Target::parse("http://127.0.0.1:8080/hello?x=1").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/hello?x=1")
        );
        assert_eq!(
            Target::parse("http://localhost").unwrap().authority,
            "localhost:80"
        );
        let tls = Target::parse("https://example.test/a").unwrap();
        assert!(tls.tls);
        assert_eq!(
            (tls.authority.as_str(), tls.name.as_str()),
            ("example.test:443", "example.test")
        );
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http:///x").is_err());
        let v6 = Target::parse("http://[::1]:8080/a").unwrap();
        assert_eq!(
            (v6.authority.as_str(), v6.path.as_str()),
            ("[::1]:8080", "/a")
        );
        assert_eq!(Target::parse("http://[::1]").unwrap().authority, "[::1]:80");
        assert_eq!(Target::parse("http://h:1/a#top").unwrap().path, "/a");
        for (bad, why) in [
            (
                "http://127.0.0.1:99999/",
                "`99999` is not a number from 1 to 65535",
            ),
            ("http://127.0.0.1:0/", "`0` is not"),
            ("http://[::1:80/", "closing `]`"),
            ("http://::1/", "brackets"),
        ] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    fn config() -> LoadConfig {
        LoadConfig {
            target: Target::parse("http://127.0.0.1:1/").unwrap(),
            connections: 2,
            threads: 1,
            duration: Some(Duration::from_secs(1)),
            requests: None,
            rate: None,
            pipeline: 1,
            timeout: Duration::from_secs(1),
            method: "GET".into(),
            headers: vec![("X-A".into(), "1".into())],
            body: None,
            tls: Default::default(),
        }
    }

    #[test]
    fn a_load_that_cannot_run_is_refused_before_it_starts() {
        assert_eq!(config().validate(), Ok(()));
        for (c, what) in [
            (
                LoadConfig {
                    connections: 0,
                    ..config()
                },
                "connections must be",
            ),
            (
                LoadConfig {
                    requests: Some(0),
                    ..config()
                },
                "number of requests must be",
            ),
            (
                LoadConfig {
                    pipeline: 100_000,
                    ..config()
                },
                "a pipeline of 100000",
            ),
            (
                LoadConfig {
                    duration: Some(Duration::ZERO),
                    ..config()
                },
                "0 s sends nothing",
            ),
            (
                LoadConfig {
                    timeout: Duration::ZERO,
                    ..config()
                },
                "timeout must be",
            ),
            (
                LoadConfig {
                    rate: Some(f64::NAN),
                    ..config()
                },
                "rate must be",
            ),
            (
                LoadConfig {
                    method: "GE T".into(),
                    ..config()
                },
                "not an HTTP method",
            ),
            (
                LoadConfig {
                    method: String::new(),
                    ..config()
                },
                "not an HTTP method",
            ),
            (
                LoadConfig {
                    headers: vec![("X-A".into(), "1\r\nX-Injected: 2".into())],
                    ..config()
                },
                "bad header",
            ),
            (
                LoadConfig {
                    headers: vec![("Content-Length".into(), "3".into())],
                    ..config()
                },
                "sets the body's framing",
            ),
        ] {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn a_load_needs_a_descriptor_per_connection() {
        let e = LoadConfig {
            connections: usize::MAX / 2,
            ..config()
        }
        .validate()
        .unwrap_err();
        assert!(matches!(e, ConfigError::Descriptors { .. }), "{e}");
        raise_descriptor_limit(64);
        assert!(descriptor_limits().0 >= 64);
    }
}
