//! `conlab fetch`: a concurrent scraper (the job of aiohttp scripts and scrapy). URLs from
//! the command line, a file or stdin (streamed), or a crawl; one JSONL or CSV row per URL,
//! failures included; a summary on stderr. The engine is `conlab_http::fetch`; this module
//! reads the input, writes the rows, and resumes from a file it wrote before.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use conlab_http::client::{ClientOptions, Wants};
use conlab_http::extract::{Extract, Pick};
use conlab_http::fetch::{
    self, Feed, FetchConfig, FetchError, FetchModel, FetchSummary, Row, rows,
};
use conlab_http::frontier::{Frontier, normalise};

use super::output::{HtmlFile, duration, usage};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  conlab fetch https://example.org/ https://example.com/        titles, as JSON lines
  conlab fetch -i urls.txt -c 200 --per-host 8 -o rows.jsonl    a list, 8 at a time per host
  seq 1000 | sed 's|^|http://127.0.0.1:8080/site/|; s|$|.html|' | conlab fetch -i -
  conlab fetch --crawl http://127.0.0.1:8080/site/0.html --depth 3 --same-host
  conlab fetch -i urls.txt --select 'a@href' --format csv       every link's target, CSV
  conlab fetch -i urls.txt --resume rows.jsonl                  go on after a stop
  conlab fetch -i urls.txt --model threads -c 50                the lecture's threads

Each URL gives one row: url, final_url, status, title (or values, with --select), bytes,
latency_ms, attempts, redirects, truncated, error, detail. A URL that fails (not a URL, DNS,
refused, timeout, TLS, 4xx/5xx, not HTML, a body that does not decode) is a row whose
`error` names the kind, never a stop of the run. Rows are written as they finish.

Exit status: 0 when every row is without error, 1 when some failed, 2 for a bad command
line, 130 after Ctrl-C (every finished row written, none half-written).")]
pub(crate) struct Args {
    /// URLs to fetch (http:// or https://).
    urls: Vec<String>,

    /// Read URLs from FILE, one per line (`-`: standard input); read as they are needed.
    #[arg(short = 'i', long, value_name = "FILE")]
    input: Option<String>,

    /// Crawl from this page, following its links (each page fetched once).
    #[arg(long, value_name = "URL", conflicts_with_all = ["urls", "input"])]
    crawl: Option<String>,

    /// Crawl: follow links this many steps from the start [default: 2].
    #[arg(long, value_name = "N")]
    depth: Option<u32>,

    /// Crawl: keep to the start page's host.
    #[arg(long)]
    same_host: bool,

    /// Crawl: visit at most this many pages.
    #[arg(long, value_name = "N")]
    max_pages: Option<u64>,

    /// The architecture: async (tasks on an event loop, aiohttp's) or threads (a blocking
    /// thread per request, the lecture's threads + requests).
    #[arg(long, default_value = "async", value_parser = ["async", "threads"])]
    model: String,

    /// Requests in flight at most.
    #[arg(short = 'c', long, default_value_t = 100)]
    concurrency: usize,

    /// Requests in flight per host (host:port) at most.
    #[arg(long, value_name = "N")]
    per_host: Option<usize>,

    /// Start at most this many requests per second, in all.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,

    /// Start at most this many requests per second to each host.
    #[arg(long, value_name = "R")]
    host_rate: Option<f64>,

    /// The most one request may take, connect included (30s, 500ms).
    #[arg(long, default_value = "30s")]
    timeout: String,

    /// The most a connect (and TLS handshake) may take.
    #[arg(long, default_value = "10s")]
    connect_timeout: String,

    /// Tries again after a connect failure, a 429 or a 5xx, this many times, backing off
    /// exponentially with jitter and waiting at least what Retry-After asks.
    #[arg(long, default_value_t = 2)]
    retries: u32,

    /// The longest wait before a retry; a Retry-After asking for more ends the URL.
    #[arg(long, default_value = "60s")]
    max_retry_wait: String,

    /// Redirects followed per URL (a loop is an error whatever the count).
    #[arg(long, default_value_t = 10)]
    max_redirects: u32,

    /// Read at most this much of a body (16M, 512K, 1G); the row is flagged truncated.
    #[arg(long, default_value = "16M")]
    max_body: String,

    /// Take what this CSS selector matches instead of the title: its text, or an
    /// attribute with `SELECTOR@attr` (`a@href`).
    #[arg(long, value_name = "CSS")]
    select: Option<String>,

    /// Rows as JSON lines or CSV.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
    format: String,

    /// Write the rows to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Append the rows to FILE, skipping the URLs it already has a row for (a run stopped
    /// by Ctrl-C or a crash goes on where it was).
    #[arg(long, value_name = "FILE", conflicts_with = "output")]
    resume: Option<PathBuf>,

    /// Show a progress line on stderr.
    #[arg(long)]
    bar: bool,

    /// No summary on stderr.
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Write the summary as JSON to FILE (`-`: standard error).
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,

    /// Write the summary as a self-contained HTML page to FILE: rows by status and by
    /// error, latency percentiles, the summary's JSON.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,

    /// The User-Agent header.
    #[arg(long, value_name = "TEXT")]
    user_agent: Option<String>,

    /// Obey each host's robots.txt (RFC 9309): read before the host's first page; its
    /// Disallow rules make rows with error `robots`, its Crawl-delay spaces the host's
    /// requests. A robots.txt that fails with a 5xx or no answer disallows the host.
    #[arg(long)]
    robots: bool,

    /// https: trust the CA certificates in this PEM file too.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,

    /// https: accept any certificate.
    #[arg(short = 'k', long)]
    insecure: bool,
}

/// A size: bytes, or with K, M, G (powers of 1024).
fn size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => {
            return Err(usage(format!(
                "bad size `{text}`: a number, with K, M or G"
            )));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            usage(format!(
                "bad size `{text}`: a positive number, with K, M or G"
            ))
        })
}

fn config(args: &Args, crawl: bool) -> Result<FetchConfig> {
    let pick = match &args.select {
        None => Pick::Title,
        Some(css) => {
            let pick = Pick::parse(css);
            Extract::new(&pick, None).map_err(|e| usage(e.to_string()))?;
            pick
        }
    };
    let mut client = ClientOptions {
        timeout: duration(&args.timeout)?,
        connect_timeout: duration(&args.connect_timeout)?,
        ..ClientOptions::default()
    };
    if client.timeout.is_zero() || client.connect_timeout.is_zero() {
        return Err(usage("--timeout and --connect-timeout must be more than 0"));
    }
    if let Some(ua) = &args.user_agent {
        if ua.contains(['\r', '\n']) {
            return Err(usage("--user-agent must be one line"));
        }
        client.user_agent = ua.clone();
    }
    client.idle_per_origin = args.per_host.unwrap_or(args.concurrency).clamp(1, 64);
    Ok(FetchConfig {
        model: if args.model == "threads" {
            FetchModel::Threads
        } else {
            FetchModel::Async
        },
        concurrency: args.concurrency,
        per_host: args.per_host,
        rate: args.rate,
        host_rate: args.host_rate,
        retries: args.retries,
        max_retry_wait: duration(&args.max_retry_wait)?,
        max_redirects: args.max_redirects,
        wants: Wants {
            pick,
            links: crawl,
            max_body: size(&args.max_body)?,
            keep_body: false,
        },
        client,
        tls: conlab_http::tls::TlsOptions {
            ca_file: args.cacert.clone(),
            insecure: args.insecure,
        },
        robots: args.robots,
        ..FetchConfig::default()
    })
}

/// Where rows go.
enum Rows {
    Jsonl(Box<dyn Write + Send>),
    Csv(Box<csv::Writer<Box<dyn Write + Send>>>),
}

impl Rows {
    fn write(&mut self, row: &Row) -> std::io::Result<()> {
        match self {
            Rows::Jsonl(out) => {
                let mut line = serde_json::to_vec(row).map_err(std::io::Error::other)?;
                line.push(b'\n');
                out.write_all(&line)
            }
            Rows::Csv(out) => out
                .write_record(rows::csv_record(row))
                .map_err(std::io::Error::other),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Rows::Jsonl(out) => out.flush(),
            Rows::Csv(out) => out.flush(),
        }
    }
}

/// The URLs `file` already has rows for. A last line cut short (a crash mid-write) is
/// removed from the file, so what is appended starts on a line of its own.
fn already_done(file: &Path, csv: bool) -> Result<HashSet<String>> {
    let mut f = match OpenOptions::new().read(true).write(true).open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(usage(format!("--resume {}: {e}", file.display()))),
    };
    let mut text = Vec::new();
    f.read_to_end(&mut text)
        .with_context(|| format!("reading --resume {}", file.display()))?;
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < text.len() {
        f.set_len(whole as u64)
            .with_context(|| format!("cutting the half-written last row of {}", file.display()))?;
        text.truncate(whole);
    }
    rows::urls_in(&text, csv).map_err(|e| {
        usage(format!(
            "--resume {}: {e}; resume needs a file that `conlab fetch --format {}` wrote",
            file.display(),
            if csv { "csv" } else { "jsonl" }
        ))
    })
}

/// The input's URLs, read as they are asked for: the arguments, then the file's lines
/// (blank lines and `#` comments skipped), without those `skip` holds.
fn url_feed(args: &Args, skip: HashSet<String>) -> Result<Feed> {
    let reader: Option<Box<dyn BufRead + Send>> = match args.input.as_deref() {
        None => None,
        Some("-") => Some(Box::new(BufReader::new(std::io::stdin()))),
        Some(path) => Some(Box::new(BufReader::new(
            File::open(path).map_err(|e| usage(format!("-i {path}: {e}")))?,
        ))),
    };
    if args.urls.is_empty() && reader.is_none() {
        return Err(usage(
            "nothing to fetch: give URLs, -i FILE (or -i - for standard input), or --crawl URL",
        ));
    }
    let lines = reader.into_iter().flat_map(|r| {
        r.split(b'\n')
            .map_while(Result::ok)
            .map(|l| String::from_utf8_lossy(&l).trim().to_string())
    });
    let urls = args
        .urls
        .clone()
        .into_iter()
        .map(|u| u.trim().to_string())
        .chain(lines)
        .filter(move |u| !u.is_empty() && !u.starts_with('#') && !skip.contains(u));
    Ok(Feed::Urls(Box::new(urls)))
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let csv = args.format == "csv";
    let crawl = args.crawl.is_some();
    if !crawl {
        for (flag, given) in [
            ("--depth", args.depth.is_some()),
            ("--same-host", args.same_host),
            ("--max-pages", args.max_pages.is_some()),
        ] {
            if given {
                return Err(usage(format!(
                    "{flag} is for a crawl: give --crawl START too"
                )));
            }
        }
    }
    let config = config(args, crawl)?;
    fetch::validate(&config).map_err(|e| usage(refusal(&e)))?;
    let out_path = args.resume.as_ref().or(args.output.as_ref());
    let skip = match &args.resume {
        Some(file) if crawl => {
            return Err(usage(format!(
                "--resume {} with --crawl: a crawl's frontier is not saved, so it cannot go on \
                 where it stopped; start the crawl again",
                file.display()
            )));
        }
        Some(file) => already_done(file, csv)?,
        None => HashSet::new(),
    };
    let feed = match &args.crawl {
        Some(start) => {
            let url = normalise(start).ok_or_else(|| {
                usage(format!(
                    "--crawl {start}: not an absolute http:// or https:// URL"
                ))
            })?;
            Feed::Crawl(Frontier::new(
                url,
                args.depth.unwrap_or(2),
                args.same_host,
                args.max_pages,
            ))
        }
        None => url_feed(args, skip)?,
    };
    let html = HtmlFile::open(args.html.as_ref())?;
    let (sink, fresh): (Box<dyn Write + Send>, bool) = match out_path {
        None => (Box::new(std::io::stdout()), true),
        Some(path) => {
            let mut options = OpenOptions::new();
            options.create(true);
            if args.resume.is_some() {
                options.append(true);
            } else {
                options.write(true).truncate(true);
            }
            let file = options
                .open(path)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            let fresh = file.metadata().map_or(true, |m| m.len() == 0);
            (Box::new(file), fresh)
        }
    };
    let sink: Box<dyn Write + Send> = Box::new(std::io::BufWriter::with_capacity(64 * 1024, sink));
    let rows = if csv {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(sink);
        if fresh {
            w.write_record(rows::CSV_COLUMNS)
                .context("writing the CSV header")?;
        }
        Rows::Csv(Box::new(w))
    } else {
        Rows::Jsonl(sink)
    };
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing the Ctrl-C handler")?;
    let bar = (args.bar || std::env::var_os("CONLAB_BAR").is_some())
        .then(|| progress_bar(args.urls.len(), args.input.is_none() && !crawl));
    let progress = std::cell::OnceCell::new();
    let mut written: Result<(), std::io::Error> = Ok(());
    // A row is one write into the buffer, so nothing is half-written when the run stops; a
    // thread flushes the buffer every 100 ms, so a crash (or SIGKILL) loses at most the last
    // moments of rows, whatever the pace of the run (resume cuts a half-written last line).
    let rows = std::sync::Mutex::new(rows);
    let lock = || rows.lock().unwrap_or_else(|p| p.into_inner());
    let finished = std::sync::atomic::AtomicBool::new(false);
    let summary = std::thread::scope(|scope| {
        let flusher = scope.spawn(|| {
            while !finished.load(std::sync::atomic::Ordering::Acquire) {
                std::thread::park_timeout(Duration::from_millis(100));
                let _ = lock().flush();
            }
        });
        let summary = fetch::run(
            config,
            feed,
            |p| {
                let stopper = p.clone();
                std::thread::spawn(move || {
                    if signals.forever().next().is_some() {
                        stopper.interrupt();
                    }
                });
                let _ = progress.set(p);
            },
            |row| {
                if written.is_err() {
                    return;
                }
                written = lock().write(row);
                if written.is_err()
                    && let Some(p) = progress.get()
                {
                    p.interrupt();
                }
                if let Some(bar) = &bar {
                    bar.inc(1);
                    if let Some(p) = progress.get() {
                        let (flying, waiting) = p.pending();
                        bar.set_message(format!("{flying} in flight, {waiting} waiting"));
                    }
                }
            },
        );
        finished.store(true, std::sync::atomic::Ordering::Release);
        flusher.thread().unpark();
        summary
    })
    .map_err(|e| usage(refusal(&e)))?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    written
        .and_then(|()| lock().flush())
        .context("writing the rows")?;
    if let Some(path) = &args.summary_json {
        let json = serde_json::to_string_pretty(&summary)?;
        if path.as_os_str() == "-" {
            eprintln!("{json}");
        } else {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(page) = html {
        page.write(&summary.html())?;
    }
    if !args.quiet {
        print_summary(&summary).context("writing the summary")?;
    }
    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else if summary.ok == summary.rows {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn progress_bar(known: usize, exact: bool) -> indicatif::ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    };
    let bar = if exact {
        let bar = indicatif::ProgressBar::with_draw_target(Some(known as u64), target);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} pages  {per_sec}  eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        let bar = indicatif::ProgressBar::with_draw_target(None, target);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} pages  {per_sec}  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A refusal in the words of the flag it comes from.
fn refusal(e: &FetchError) -> String {
    match e {
        FetchError::Tls(_) => format!("--cacert: {e}"),
        FetchError::Descriptors { .. } => format!("-c: {e}"),
        _ => e.to_string(),
    }
}

fn ms(us: u64) -> String {
    format!("{:.1}ms", us as f64 / 1000.0)
}

fn print_summary(s: &FetchSummary) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "fetch: {} pages in {:.2}s ({:.0} pages/s), --model {} -c {}{}",
        s.rows,
        s.elapsed_s,
        s.pages_per_s,
        s.model.name(),
        s.concurrency,
        if s.interrupted {
            ", interrupted: requests in flight were cut and have no row"
        } else {
            ""
        }
    )?;
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(
        err,
        "  ok {}{}",
        s.ok,
        if errors.is_empty() {
            String::new()
        } else {
            format!(", errors: {}", errors.join(", "))
        }
    )?;
    if !s.status.is_empty() {
        let status: Vec<String> = s.status.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(err, "  status: {}", status.join(", "))?;
        let l = &s.latency;
        writeln!(
            err,
            "  latency: p50 {}  p90 {}  p99 {}  max {}",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max)
        )?;
    }
    writeln!(
        err,
        "  retries {}, redirects {}, {:.2} MB of bodies read",
        s.retries,
        s.redirects,
        s.bytes as f64 / 1e6
    )
}
