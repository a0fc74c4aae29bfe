//! The scraper (`conlab fetch`): many URLs, each fetched, its title (or what a CSS selector
//! picks) taken out with a streaming HTML parser, and one [`Row`] per URL, failures
//! included, under either of the lecture's two models:
//!
//! - **async**: tasks on a tokio runtime sharing one client and its connection pool
//!   (asyncio + aiohttp's `gather`);
//! - **threads**: one OS thread per concurrent request, each with a blocking client (the
//!   lecture's threads + `requests`).
//!
//! Both read pages with the same [`crate::client::page`] reader and take their jobs from
//! the same [`schedule`], which alone decides what starts when (per-host limits, rates,
//! retries, redirects, the crawl's frontier), so the models differ in architecture only:
//! their rows are the same. Rows reach the caller in the order they finish, on the caller's
//! thread, so it alone writes them.

pub mod rows;
mod schedule;

pub use schedule::Feed;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use conlab_measure::LatencyRecorder;
use serde::{Deserialize, Serialize};

use crate::client::blocking::BlockingClient;
use crate::client::nonblocking::AsyncClient;
use crate::client::{ClientOptions, ErrorKind, Failure, Page, Wants};
use crate::extract::Pick;
use crate::load::LatencySummary;
use schedule::{Job, Limits, Schedule, Take};

/// The architecture that runs the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FetchModel {
    /// Tasks on an event loop.
    Async,
    /// A blocking thread per concurrent request.
    Threads,
}

impl FetchModel {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FetchModel::Async => "async",
            FetchModel::Threads => "threads",
        }
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The architecture.
    pub model: FetchModel,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests in flight per host (`host:port`) at most.
    pub per_host: Option<usize>,
    /// Requests started per second, in all.
    pub rate: Option<f64>,
    /// Requests started per second, per host.
    pub host_rate: Option<f64>,
    /// Further tries after a connect failure, a 429 or a 5xx.
    pub retries: u32,
    /// The first retry's back-off; it doubles with each retry, with jitter.
    pub backoff: Duration,
    /// The longest wait before a retry; a `Retry-After` asking for more ends the URL.
    pub max_retry_wait: Duration,
    /// Redirects followed per URL.
    pub max_redirects: u32,
    /// What to take from each page.
    pub wants: Wants,
    /// Timeouts and the pool.
    pub client: ClientOptions,
    /// How https servers are checked.
    pub tls: crate::tls::TlsOptions,
    /// Obey each host's robots.txt (RFC 9309), read before its first page.
    pub robots: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            model: FetchModel::Async,
            concurrency: 100,
            per_host: None,
            rate: None,
            host_rate: None,
            retries: 2,
            backoff: Duration::from_millis(250),
            max_retry_wait: Duration::from_secs(60),
            max_redirects: 10,
            wants: Wants::default(),
            client: ClientOptions::default(),
            tls: crate::tls::TlsOptions::default(),
            robots: false,
        }
    }
}

/// A fetch that cannot run as asked.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A count that must be at least one.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A rate that is not one.
    #[error("{0} must be a positive number of requests per second")]
    Rate(&'static str),
    /// TLS that cannot be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// More connections than descriptors.
    #[error(
        "a concurrency of {concurrency} needs as many file descriptors, and this process may \
         open {limit} (ulimit -n): raise the limit or lower -c"
    )]
    Descriptors {
        /// Asked for.
        concurrency: usize,
        /// The hard limit.
        limit: u64,
    },
    /// A worker thread could not be started.
    #[error("could not start a worker thread: {0}")]
    Start(std::io::Error),
}

/// The schema id of [`FetchSummary`].
pub const SUMMARY_SCHEMA: &str = "conlab.fetch-summary/1";

/// One URL's outcome: a line of JSONL or CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The URL as given (as normalised, in a crawl).
    pub url: String,
    /// Where it ended, after redirects.
    pub final_url: Option<String>,
    /// The last response's status.
    pub status: Option<u16>,
    /// The page's title (with the default pick).
    pub title: Option<String>,
    /// What `--select` found (with a selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Body bytes read, as sent (a page read up to its title only is not read to its end).
    pub bytes: u64,
    /// Time spent in its requests (not waiting for a retry), in milliseconds.
    pub latency_ms: f64,
    /// Requests made: 1, plus one per retry and per redirect.
    pub attempts: u32,
    /// Redirects followed.
    pub redirects: u32,
    /// The body was cut at `--max-body`.
    pub truncated: bool,
    /// Its depth in a crawl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// The kind of failure, if it failed ([`ErrorKind::as_str`]).
    pub error: Option<String>,
    /// The failure in words.
    pub detail: Option<String>,
}

/// What a run did, as the summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FetchSummary {
    /// [`SUMMARY_SCHEMA`].
    pub schema: &'static str,
    /// The model.
    pub model: FetchModel,
    /// Concurrency.
    pub concurrency: usize,
    /// Rows written.
    pub rows: u64,
    /// Rows without an error.
    pub ok: u64,
    /// Rows by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Rows by final status.
    pub status: BTreeMap<u16, u64>,
    /// Retries made.
    pub retries: u64,
    /// Redirects followed.
    pub redirects: u64,
    /// Body bytes read.
    pub bytes: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Rows per second.
    pub pages_per_s: f64,
    /// Latency of the rows with a response, microseconds.
    pub latency: LatencySummary,
    /// Ended by Ctrl-C: requests in flight then were cut and have no row.
    pub interrupted: bool,
}

impl FetchSummary {
    /// The run as a self-contained HTML page (`fetch --html`): rows by status and by error
    /// kind, the latency percentiles, and this summary's JSON.
    pub fn html(&self) -> String {
        use conlab_measure::html::{Bars, Page};
        let mut page = Page::new("conlab fetch");
        page.paragraph(&format!(
            "{} pages in {:.2} s ({:.0} pages/s), --model {} -c {}: {} without error, {} retries, {} redirects, {:.2} MB of bodies{}.",
            self.rows,
            self.elapsed_s,
            self.pages_per_s,
            self.model.name(),
            self.concurrency,
            self.ok,
            self.retries,
            self.redirects,
            self.bytes as f64 / 1e6,
            if self.interrupted { "; interrupted" } else { "" }
        ));
        let count = |m: &mut dyn Iterator<Item = (String, u64)>| {
            m.map(|(k, v)| (k, v as f64)).collect::<Vec<_>>()
        };
        page.bars(&Bars {
            title: "Rows by final status".into(),
            value_label: "rows".into(),
            bars: count(&mut self.status.iter().map(|(k, v)| (k.to_string(), *v))),
        });
        let mut kinds = vec![("none (ok)".to_string(), self.ok)];
        kinds.extend(self.errors.iter().map(|(k, v)| (k.clone(), *v)));
        page.bars(&Bars {
            title: "Rows by error".into(),
            value_label: "rows".into(),
            bars: count(&mut kinds.into_iter()),
        });
        let l = &self.latency;
        page.bars(&Bars {
            title: "Latency of the rows with a response".into(),
            value_label: "milliseconds".into(),
            bars: [
                ("p50", l.p50),
                ("p75", l.p75),
                ("p90", l.p90),
                ("p99", l.p99),
                ("p99.9", l.p999),
                ("max", l.max),
            ]
            .iter()
            .map(|(k, us)| (k.to_string(), *us as f64 / 1000.0))
            .collect(),
        });
        page.finish(&serde_json::to_string_pretty(self).unwrap_or_default())
    }
}

/// Tallies rows into a [`FetchSummary`].
#[derive(Debug)]
struct Tally {
    rows: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    status: BTreeMap<u16, u64>,
    retries: u64,
    redirects: u64,
    bytes: u64,
    latency: LatencyRecorder,
}

impl Tally {
    fn add(&mut self, row: &Row) {
        self.rows += 1;
        match &row.error {
            None => self.ok += 1,
            Some(kind) => *self.errors.entry(kind.clone()).or_default() += 1,
        }
        if let Some(s) = row.status {
            *self.status.entry(s).or_default() += 1;
            self.latency
                .record(Duration::from_secs_f64(row.latency_ms / 1000.0));
        }
        self.retries += u64::from(row.attempts.saturating_sub(1 + row.redirects));
        self.redirects += u64::from(row.redirects);
        self.bytes += row.bytes;
    }
}

/// A run in progress: how far it is, and a way to stop it.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Shared>);

impl Progress {
    /// Rows written so far.
    pub fn done(&self) -> u64 {
        self.0.rows.load(Ordering::Relaxed)
    }

    /// Requests in flight, and jobs waiting (queued for their host, or a retry).
    pub fn pending(&self) -> (usize, usize) {
        let s = self.0.schedule();
        (s.in_flight(), s.waiting())
    }

    /// Stops the run (Ctrl-C): no request starts any more; those in flight are cut, and
    /// their URLs get no row.
    pub fn interrupt(&self) {
        self.0.stop.store(true, Ordering::Release);
        self.0.wake();
        self.0.cancel_open();
    }
}

/// What the workers share.
struct Shared {
    config: FetchConfig,
    schedule: Mutex<Schedule>,
    /// Threads wait here for a job.
    ready: Condvar,
    /// Tasks wait here for a job.
    notify: tokio::sync::Notify,
    stop: AtomicBool,
    rows: AtomicU64,
    /// Threads model: the sockets of requests in flight, shut down on interrupt so that no
    /// thread stays blocked in a read.
    open: Arc<crate::client::blocking::OpenSockets>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        // The schedule is bookkeeping only; a worker that panicked left it consistent.
        self.schedule.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Wakes every waiting worker: the run is over, or stopped.
    fn wake(&self) {
        self.ready.notify_all();
        self.notify.notify_waiters();
    }

    /// Wakes one waiting worker: a request ended, so one more may start (any worker can take
    /// any job). Waking all of them had 500 threads fight for the lock after every page.
    fn wake_one(&self) {
        self.ready.notify_one();
        self.notify.notify_one();
    }

    fn cancel_open(&self) {
        self.open.shut_all();
    }

    /// The back-off before try `tries + 1`: doubling from `backoff`, with jitter (half
    /// fixed, half random, so retries of many URLs spread out), at least what `Retry-After`
    /// asks. `None` when the server asks for more than `max_retry_wait`.
    fn backoff(&self, tries: u32, retry_after: Option<&str>) -> Option<Duration> {
        let base = self
            .config
            .backoff
            .saturating_mul(1 << tries.saturating_sub(1).min(16))
            .min(self.config.max_retry_wait);
        let jittered = base / 2 + base.mul_f64(fastrand::f64() / 2.0);
        let asked = retry_after.and_then(parse_retry_after);
        match asked {
            Some(asked) if asked > self.config.max_retry_wait => None,
            Some(asked) => Some(jittered.max(asked)),
            None => Some(jittered),
        }
    }

    /// Settles a finished request: the row it ends with, or `None` when the job goes on (a
    /// redirect, a retry).
    fn settle(&self, mut job: Job, result: Result<Page, Failure>, took: Duration) -> Option<Row> {
        job.spent += took;
        job.attempts += 1;
        job.tries += 1;
        let mut s = self.schedule();
        s.finished(&job.host);
        let retry = match &result {
            Ok(page) if page.status == 429 || (500..600).contains(&page.status) => {
                Some(page.retry_after.as_deref())
            }
            Err(f) if f.kind.retryable() => Some(None),
            _ => None,
        };
        if let Some(retry_after) = retry
            && job.tries <= self.config.retries
            && !self.stopped()
            && let Some(wait) = self.backoff(job.tries, retry_after)
        {
            s.again(job, Some(Instant::now() + wait));
            return None;
        }
        let page = match result {
            Err(failure) => return Some(row(&job, None, Some(failure))),
            Ok(page) => page,
        };
        if matches!(page.status, 301 | 302 | 303 | 307 | 308)
            && let Some(location) = &page.location
        {
            let failure = match crate::frontier::join(&job.url, location) {
                None => Some(Failure::new(
                    ErrorKind::InvalidUrl,
                    format!("a redirect to `{location}`, which is not an http(s) URL"),
                )),
                Some(next) if job.chain.iter().any(|c| c == next.as_str()) => Some(Failure::new(
                    ErrorKind::RedirectLoop,
                    format!("redirected back to {next}"),
                )),
                Some(_) if job.redirects >= self.config.max_redirects => Some(Failure::new(
                    ErrorKind::TooManyRedirects,
                    format!("more than {} redirects", self.config.max_redirects),
                )),
                Some(next) => {
                    s.visit(&next);
                    if job.redirect(next) {
                        s.again(job, None);
                        return None;
                    }
                    Some(Failure::new(ErrorKind::InvalidUrl, "a redirect to no host"))
                }
            };
            return Some(row(&job, Some(page), failure));
        }
        if !page.links.is_empty() {
            s.links(&job.url, job.depth, &page.links);
            // New pages to visit: every idle worker may have one.
            self.wake();
        }
        let failure = if page.status >= 400 {
            Some(Failure::new(
                ErrorKind::Status,
                match &page.retry_after {
                    Some(after) => format!("{} (Retry-After: {after})", page.status),
                    None => page.status.to_string(),
                },
            ))
        } else {
            page.not_html
                .as_ref()
                .map(|ct| Failure::new(ErrorKind::NotHtml, format!("Content-Type: {ct}")))
        };
        Some(row(&job, Some(page), failure))
    }
}

/// `Retry-After` as a wait: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The row a job ends with.
fn row(job: &Job, page: Option<Page>, failure: Option<Failure>) -> Row {
    let (status, values, bytes, truncated) = match page {
        Some(p) => (Some(p.status), Some(p.values), p.bytes, p.truncated),
        None => (None, None, 0, false),
    };
    // Microseconds are the clock's worth: more digits would be noise.
    let latency_ms = (job.spent.as_secs_f64() * 1e6).round() / 1e3;
    Row {
        url: job.given.clone(),
        final_url: Some(job.url.as_str().to_string()),
        status,
        title: None,
        values,
        bytes,
        latency_ms,
        attempts: job.attempts,
        redirects: job.redirects,
        truncated,
        depth: None,
        error: failure.as_ref().map(|f| f.kind.as_str().to_string()),
        detail: failure.map(|f| f.detail),
    }
}

/// The row of an input that is not a URL.
fn invalid_row(given: String, failure: Failure) -> Row {
    Row {
        url: given,
        final_url: None,
        status: None,
        title: None,
        values: None,
        bytes: 0,
        latency_ms: 0.0,
        attempts: 0,
        redirects: 0,
        truncated: false,
        depth: None,
        error: Some(failure.kind.as_str().to_string()),
        detail: Some(failure.detail),
    }
}

/// Refuses a configuration that cannot run.
pub fn validate(config: &FetchConfig) -> Result<(), FetchError> {
    if config.concurrency == 0 {
        return Err(FetchError::Zero("the concurrency (-c)"));
    }
    if config.per_host == Some(0) {
        return Err(FetchError::Zero("--per-host"));
    }
    for (what, rate) in [("--rate", config.rate), ("--host-rate", config.host_rate)] {
        if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(FetchError::Rate(what));
        }
    }
    let limit = crate::load::descriptor_limits().1;
    if config.concurrency as u64 + 64 > limit {
        return Err(FetchError::Descriptors {
            concurrency: config.concurrency,
            limit,
        });
    }
    crate::tls::TlsClient::new(&config.tls, &[b"http/1.1"])?;
    Ok(())
}

/// Runs a fetch of `feed`: `on_start` gets its [`Progress`] before the first request, and
/// `on_row` every row, on this thread, in the order they finish.
pub fn run(
    config: FetchConfig,
    feed: Feed,
    on_start: impl FnOnce(Progress),
    mut on_row: impl FnMut(&Row),
) -> Result<FetchSummary, FetchError> {
    validate(&config)?;
    crate::load::raise_descriptor_limit(config.concurrency as u64 + 64);
    // The event loop offers HTTP/2 and takes it where a server chooses it (streams on one
    // connection); a blocking thread is one request on one connection: HTTP/1.1.
    let alpn: &[&[u8]] = match config.model {
        FetchModel::Async => &[b"h2", b"http/1.1"],
        FetchModel::Threads => &[b"http/1.1"],
    };
    let tls = crate::tls::TlsClient::new(&config.tls, alpn)?;
    let crawl = matches!(feed, Feed::Crawl(_));
    let title = config.wants.pick == Pick::Title;
    let limits = Limits {
        per_host: config.per_host,
        rate: config.rate,
        host_rate: config.host_rate,
        lookahead: (config.concurrency * 4).max(256),
        robots: config.robots,
    };
    let shared = Arc::new(Shared {
        schedule: Mutex::new(Schedule::new(feed, limits)),
        ready: Condvar::new(),
        notify: tokio::sync::Notify::new(),
        stop: AtomicBool::new(false),
        rows: AtomicU64::new(0),
        open: Arc::default(),
        config,
    });
    let mut tally = Tally {
        rows: 0,
        ok: 0,
        errors: BTreeMap::new(),
        status: BTreeMap::new(),
        retries: 0,
        redirects: 0,
        bytes: 0,
        latency: LatencyRecorder::new(),
    };
    // Bounded, so its slots are allocated once: an unbounded channel allocates a block on
    // whichever thread sends across a block's end, a fresh allocator page on each of 500
    // threads. A worker that finds it full waits for the writer: back-pressure.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Row, u32)>(4096);
    let start = Instant::now();
    on_start(Progress(Arc::clone(&shared)));
    let workers = match shared.config.model {
        FetchModel::Threads => threads(&shared, &tls, tx)?,
        FetchModel::Async => event_loop(&shared, tls, tx)?,
    };
    let mut deliver = |(mut row, depth): (Row, u32)| {
        if title {
            row.title = row.values.take().and_then(|v| v.into_iter().next());
        }
        if crawl {
            row.depth = Some(depth);
        }
        tally.add(&row);
        shared.rows.fetch_add(1, Ordering::Relaxed);
        on_row(&row);
    };
    // Rows come until every worker has dropped its sender, or the run is stopped: then the
    // rows already finished are written, and workers still in a connect are not waited for.
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(item) => deliver(item),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if shared.stopped() => {
                while let Ok(item) = rx.try_recv() {
                    deliver(item);
                }
                break;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    if !shared.stopped() {
        for w in workers {
            let _ = w.join();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(FetchSummary {
        schema: SUMMARY_SCHEMA,
        model: shared.config.model,
        concurrency: shared.config.concurrency,
        rows: tally.rows,
        ok: tally.ok,
        errors: tally.errors,
        status: tally.status,
        retries: tally.retries,
        redirects: tally.redirects,
        bytes: tally.bytes,
        elapsed_s: elapsed,
        pages_per_s: tally.rows as f64 / elapsed.max(1e-9),
        latency: LatencySummary::of(&tally.latency),
        interrupted: shared.stopped(),
    })
}

type RowSender = std::sync::mpsc::SyncSender<(Row, u32)>;

/// What a worker takes from the schedule.
enum Work {
    /// A page.
    Page(Job),
    /// A host's robots.txt: the host's key and the file's address.
    Robots(String, url::Url),
}

/// The most of a robots.txt read (RFC 9309 asks crawlers to read at least 500 KiB).
const ROBOTS_MAX: u64 = 512 * 1024;

/// The redirects a robots.txt is followed through (RFC 9309: at least five).
const ROBOTS_REDIRECTS: u32 = 5;

/// `text` with its percent-escapes in one form, as RFC 9309 (2.2.2) compares paths: an
/// escape of an unreserved character is that character (`%7E` is `~`), other escapes in
/// upper case (`%c3` is `%C3`), bytes beyond ASCII escaped.
pub(crate) fn one_form(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |c: u8| char::from(c).to_digit(16);
        if b == b'%'
            && let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            let c = (h * 16 + l) as u8;
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                out.push(char::from(c));
            } else {
                out.push_str(&format!("%{c:02X}"));
            }
            i += 3;
        } else if b.is_ascii() {
            out.push(char::from(b));
            i += 1;
        } else {
            out.push_str(&format!("%{b:02X}"));
            i += 1;
        }
    }
    out
}

/// A robots.txt with the paths of its rules in [`one_form`], as the URLs it is asked about.
fn robots_rules(txt: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(txt);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.split_once(':') {
            Some((key, value))
                if key.trim().eq_ignore_ascii_case("allow")
                    || key.trim().eq_ignore_ascii_case("disallow") =>
            {
                let (value, end) = match value.strip_suffix('\n') {
                    Some(v) => (v, "\n"),
                    None => (value, ""),
                };
                out.push_str(key);
                out.push(':');
                out.push_str(&one_form(value));
                out.push_str(end);
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// What reading robots.txt came to.
enum RobotsStep {
    /// Its rules (`None`: none, everything allowed).
    /// Its rules (`None`: none), and why every page is refused when it could not be read.
    Known(Option<texting_robots::Robot>, Option<String>),
    /// Fetch it again from here (a redirect).
    Follow(url::Url),
}

impl Shared {
    /// What fetching robots.txt gave, as RFC 9309 (2.3.1) reads it: a success's rules; a
    /// 4xx, no rules; a 5xx or no answer, everything disallowed (the site may be down);
    /// redirects followed up to five.
    fn robots_step(&self, url: &url::Url, hops: u32, result: Result<Page, Failure>) -> RobotsStep {
        let agent = self
            .config
            .client
            .user_agent
            .split(['/', ' '])
            .next()
            .unwrap_or("conlab")
            .to_string();
        let parse = |txt: &[u8]| texting_robots::Robot::new(&agent, &robots_rules(txt)).ok();
        match result {
            Ok(page) if (200..300).contains(&page.status) => {
                RobotsStep::Known(parse(&page.body), None)
            }
            Ok(page) if (300..400).contains(&page.status) && hops < ROBOTS_REDIRECTS => {
                match page.location.and_then(|l| crate::frontier::join(url, &l)) {
                    Some(next) => RobotsStep::Follow(next),
                    None => RobotsStep::Known(None, None),
                }
            }
            // More than five redirects, or a 4xx: "unavailable" (RFC 9309 2.3.1.2-3), no rules.
            Ok(page) if (300..500).contains(&page.status) => RobotsStep::Known(None, None),
            failed => {
                let why = match failed {
                    Ok(page) => format!("{} answered {}", url, page.status),
                    Err(f) => format!("{url}: {}", f.detail),
                };
                RobotsStep::Known(
                    parse(b"User-agent: *\nDisallow: /\n"),
                    Some(format!(
                        "robots.txt could not be read ({why}): RFC 9309 has every page of the \
                         host disallowed then"
                    )),
                )
            }
        }
    }

    fn robots_wants(&self) -> Wants {
        Wants {
            keep_body: true,
            max_body: ROBOTS_MAX,
            ..Wants::default()
        }
    }

    /// robots.txt for `host` is known.
    fn robots_known(&self, host: &str, robot: Option<texting_robots::Robot>, why: Option<String>) {
        self.schedule().robots_known(host, robot, why);
        // The host's waiting pages may all start now.
        self.wake();
    }
}

/// A row for the caller, unless the run was stopped and this one was cut by it.
fn send(shared: &Shared, tx: &RowSender, row: Row, depth: u32) {
    if shared.stopped() && row.error.is_some() {
        return;
    }
    let _ = tx.send((row, depth));
}

/// The threads model: `concurrency` threads, each taking a job, blocking on it, settling it.
fn threads(
    shared: &Arc<Shared>,
    tls: &crate::tls::TlsClient,
    tx: RowSender,
) -> Result<Vec<std::thread::JoinHandle<()>>, FetchError> {
    let mut handles = Vec::new();
    for i in 0..shared.config.concurrency {
        let worker = Arc::clone(shared);
        let tx = tx.clone();
        let mut client = BlockingClient::new(shared.config.client.clone(), Some(tls))
            .with_open_sockets(Arc::clone(&shared.open));
        let spawned = std::thread::Builder::new()
            .name(format!("fetch-{i}"))
            // Threads are the model's cost; they need little stack: the parser's state is
            // on the heap.
            .stack_size(256 * 1024)
            .spawn(move || {
                let shared = worker;
                while let Some(work) = next_blocking(&shared, &tx) {
                    let job = match work {
                        Work::Page(job) => job,
                        Work::Robots(host, mut url) => {
                            let wants = shared.robots_wants();
                            let mut hops = 0;
                            let robot = loop {
                                let result = client.get(&url, &wants);
                                match shared.robots_step(&url, hops, result) {
                                    RobotsStep::Known(robot, why) => break (robot, why),
                                    RobotsStep::Follow(next) => (url, hops) = (next, hops + 1),
                                }
                            };
                            shared.robots_known(&host, robot.0, robot.1);
                            continue;
                        }
                    };
                    let started = Instant::now();
                    let result = client.get(&job.url, &shared.config.wants);
                    let depth = job.depth;
                    let settled = shared.settle(job, result, started.elapsed());
                    shared.wake_one();
                    if let Some(row) = settled {
                        send(&shared, &tx, row, depth);
                    }
                }
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                Progress(Arc::clone(shared)).interrupt();
                return Err(FetchError::Start(e));
            }
        }
    }
    Ok(handles)
}

/// A thread's next job, waiting as long as the schedule says; `None` when there is none.
fn next_blocking(shared: &Shared, tx: &RowSender) -> Option<Work> {
    let mut s = shared.schedule();
    loop {
        if shared.stopped() {
            return None;
        }
        match s.take(Instant::now()) {
            Take::Job(job) => return Some(Work::Page(job)),
            Take::Robots(host, url) => return Some(Work::Robots(host, url)),
            Take::Invalid(given, failure) => {
                drop(s);
                send(shared, tx, invalid_row(given, failure), 0);
                s = shared.schedule();
            }
            Take::Refused(job, failure) => {
                drop(s);
                send(shared, tx, row(&job, None, Some(failure)), job.depth);
                s = shared.schedule();
            }
            Take::Done => {
                drop(s);
                shared.wake();
                return None;
            }
            Take::Wait(until) => {
                let wait = until.map_or(Duration::from_secs(1), |u| {
                    u.saturating_duration_since(Instant::now())
                });
                s = shared
                    .ready
                    .wait_timeout(s, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }
}

/// The async model: a tokio runtime on a thread of its own, `concurrency` tasks sharing one
/// client.
fn event_loop(
    shared: &Arc<Shared>,
    tls: crate::tls::TlsClient,
    tx: RowSender,
) -> Result<Vec<std::thread::JoinHandle<()>>, FetchError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(shared.config.concurrency);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(FetchError::Start)?;
    let shared = Arc::clone(shared);
    let handle = std::thread::Builder::new()
        .name("fetch-async".into())
        .spawn(move || {
            let client = Arc::new(AsyncClient::new(shared.config.client.clone(), Some(tls)));
            runtime.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..shared.config.concurrency {
                    let (shared, client, tx) =
                        (Arc::clone(&shared), Arc::clone(&client), tx.clone());
                    tasks.spawn(async move {
                        while let Some(work) = next_async(&shared, &tx).await {
                            let job = match work {
                                Work::Page(job) => job,
                                Work::Robots(host, mut url) => {
                                    let wants = shared.robots_wants();
                                    let mut hops = 0;
                                    let robot = loop {
                                        let result = client.get(&url, &wants).await;
                                        match shared.robots_step(&url, hops, result) {
                                            RobotsStep::Known(robot, why) => break (robot, why),
                                            RobotsStep::Follow(next) => {
                                                (url, hops) = (next, hops + 1)
                                            }
                                        }
                                    };
                                    shared.robots_known(&host, robot.0, robot.1);
                                    continue;
                                }
                            };
                            let started = Instant::now();
                            let result = client.get(&job.url, &shared.config.wants).await;
                            let depth = job.depth;
                            let settled = shared.settle(job, result, started.elapsed());
                            shared.wake_one();
                            if let Some(row) = settled {
                                send(&shared, &tx, row, depth);
                            }
                        }
                    });
                }
                drop(tx);
                // Ctrl-C: the tasks are dropped where they are, requests and all.
                let stopped = async {
                    while !shared.stopped() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                tokio::select! {
                    () = async { while tasks.join_next().await.is_some() {} } => {}
                    () = stopped => tasks.abort_all(),
                }
                while tasks.join_next().await.is_some() {}
            });
        })
        .map_err(FetchError::Start)?;
    Ok(vec![handle])
}

/// A task's next job, waiting as long as the schedule says; `None` when there is none.
async fn next_async(shared: &Shared, tx: &RowSender) -> Option<Work> {
    loop {
        if shared.stopped() {
            return None;
        }
        // Registered before the schedule is read, so a wake between the two is not lost.
        let notified = shared.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let take = shared.schedule().take(Instant::now());
        match take {
            Take::Job(job) => return Some(Work::Page(job)),
            Take::Robots(host, url) => return Some(Work::Robots(host, url)),
            Take::Invalid(given, failure) => send(shared, tx, invalid_row(given, failure), 0),
            Take::Refused(job, failure) => {
                send(shared, tx, row(&job, None, Some(failure)), job.depth);
            }
            Take::Done => {
                shared.wake();
                return None;
            }
            Take::Wait(until) => {
                let until = until.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep_until(until.into()) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_paths_and_urls_are_compared_in_one_form() {
        assert_eq!(
            one_form("/%7Ejoe/caf%c3%a9/%2F?q=\u{e9}"),
            "/~joe/caf%C3%A9/%2F?q=%C3%A9"
        );
        let rules = robots_rules(
            b"User-agent: *\nDisallow: /%7Ejoe/\nDisallow: /~ann/\nAllow: /caf%c3%a9\n",
        );
        let robot = texting_robots::Robot::new("conlab", &rules).unwrap();
        for (url, allowed) in [
            ("http://a/~joe/x", false),
            ("http://a/%7Ejoe/x", false),
            ("http://a/%7Eann/x", false),
            ("http://a/other", true),
        ] {
            assert_eq!(robot.allowed(&one_form(url)), allowed, "{url}");
        }
    }
}
