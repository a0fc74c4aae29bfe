//! `conlab load URL`: an HTTP load generator with wrk's flags (closed loop) and wrk2's
//! `--rate` (open loop, coordinated omission corrected); prints like wrk, `--json` for
//! scripts. The engine is `conlab_http::load`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use conlab_http::load::{self, ConfigError, LoadConfig, LoadReport, Target};

use super::output::{HtmlFile, duration, json_only, usage};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  conlab load -c 50 -t 1 -d 10s http://127.0.0.1:8080/hello        closed loop, like wrk
  conlab load -c 50 --rate 20000 -d 30s http://127.0.0.1:8080/hello  open loop, like wrk2
  conlab load -n 100000 --pipeline 16 http://127.0.0.1:8080/hello   pipelined
  conlab load -d 5s --json - http://127.0.0.1:8080/sleep?ms=10       JSON on stdout
  conlab load -d 5s --cacert ca.pem https://localhost:8443/          HTTPS, a CA of your own
  conlab load -d 5s --rate 5000 --html load.html http://127.0.0.1:8080/  and a page of it

Exit status: 0 when every response was 2xx and there were no errors, 1 otherwise, 2 for a
bad command line.")]
pub(crate) struct Args {
    /// The URL: http://HOST[:PORT][/PATH] or https://... (TLS: rustls; HTTP/1.1 by ALPN).
    url: String,

    /// Connections to keep open.
    #[arg(short = 'c', long, default_value_t = 10)]
    connections: usize,

    /// Event-loop threads.
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,

    /// Run for this long (10s, 1m); the default when -n is not given is 10s.
    #[arg(short = 'd', long)]
    duration: Option<String>,

    /// Stop after this many requests.
    #[arg(short = 'n', long)]
    requests: Option<u64>,

    /// Open loop: this many requests per second in all (latency from the intended send time).
    #[arg(short = 'R', long)]
    rate: Option<f64>,

    /// Requests in flight per connection, sent in one write.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,

    /// A response slower than this counts as a timeout error.
    #[arg(long, default_value = "2s")]
    timeout: String,

    /// Extra header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,

    /// The method.
    #[arg(short = 'm', long, default_value = "GET")]
    method: String,

    /// A request body.
    #[arg(long)]
    body: Option<String>,

    /// Write the results as JSON to FILE (`-`: stdout, instead of the text).
    #[arg(long, value_name = "FILE")]
    json: Option<String>,

    /// Write the results as a self-contained HTML page to FILE: the latency percentile
    /// curve (corrected and uncorrected, for --rate), statuses, errors, the JSON.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,

    /// https: trust the CA certificates in this PEM file too (as curl's --cacert).
    #[arg(long, value_name = "FILE")]
    cacert: Option<std::path::PathBuf>,

    /// https: accept any certificate (curl's -k; wrk never checks). The handshake is still
    /// checked and the traffic still encrypted.
    #[arg(short = 'k', long)]
    insecure: bool,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let target = Target::parse(&args.url)?;
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| usage(format!("bad header `{h}`: write \"Name: value\"")))
        })
        .collect::<Result<Vec<_>>>()?;
    let run_for = match (&args.duration, args.requests) {
        (Some(d), _) => Some(duration(d)?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let config = LoadConfig {
        target,
        connections: args.connections,
        threads: args.threads,
        duration: run_for,
        requests: args.requests,
        rate: args.rate,
        pipeline: args.pipeline,
        timeout: duration(&args.timeout)?,
        method: args.method.clone(),
        headers,
        body: args.body.clone().map(String::into_bytes),
        tls: conlab_http::tls::TlsOptions {
            ca_file: args.cacert.clone(),
            insecure: args.insecure,
        },
    };
    config
        .validate()
        .map_err(|e| usage(format!("{}: {e}", flag(&e))))?;
    let exports = json_only(args.json.as_ref())?;
    let html = HtmlFile::open(args.html.as_ref())?;
    let text = !exports.uses_stdout();
    if text {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Running {} test @ {}\n  {} threads and {} connections{}",
            run_for.map_or_else(
                || format!("{} requests", args.requests.unwrap_or(0)),
                |d| format!("{d:?}")
            ),
            args.url,
            args.threads.min(args.connections),
            args.connections,
            args.rate
                .map_or(String::new(), |r| format!(", {r} requests/s (open loop)")),
        )
        .and_then(|()| out.flush())
        .context("writing standard output")?;
    }
    let live = text && std::io::stderr().is_terminal();
    // Ctrl-C (or SIGTERM) ends the run and prints what was measured until then, as wrk does.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing the Ctrl-C handler")?;
    let result = load::run(config.clone(), |progress| {
        let stopper = progress.clone();
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                stopper.interrupt();
            }
        });
        if live {
            std::thread::spawn(move || {
                // Elapsed, total and the rate over the last quarter second: enough to see a
                // server stall or a run that will not end, on one line that is rewritten.
                let started = std::time::Instant::now();
                let (mut last, mut last_at) = (0, started);
                loop {
                    std::thread::sleep(Duration::from_millis(250));
                    let (done, now) = (progress.done(), std::time::Instant::now());
                    eprint!(
                        "\r\x1b[K  {:>6.1}s  {done} responses  {:.0} req/s now",
                        now.duration_since(started).as_secs_f64(),
                        conlab_measure::throughput(done - last, now.duration_since(last_at))
                    );
                    (last, last_at) = (done, now);
                }
            });
        }
    });
    if live {
        eprint!("\r\x1b[K");
    }
    let report = LoadReport::new(&args.url, &config, &result);
    if text {
        print_like_wrk(&report).context("writing standard output")?;
    }
    exports.write(&report).context("writing the JSON report")?;
    if let Some(page) = html {
        page.write(&report.html())?;
    }
    match report.failure() {
        None => Ok(ExitCode::SUCCESS),
        // Exit 1 says something went wrong; this says what.
        Some(why) => {
            eprintln!("conlab: {why}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The flag a load setting comes from, to name it in the error.
fn flag(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::Zero("connections") | ConfigError::Descriptors { .. } => "-c",
        ConfigError::Zero("threads") => "-t",
        ConfigError::Zero("the number of requests") => "-n",
        ConfigError::Zero(_) | ConfigError::PipelineTooDeep(_) => "--pipeline",
        ConfigError::NoTime => "-d",
        ConfigError::NoTimeout => "--timeout",
        ConfigError::Rate => "--rate",
        ConfigError::Tls(_) => "--cacert",
        ConfigError::Method(_) => "-m",
        ConfigError::Header(_) | ConfigError::Framing(_) => "-H",
    }
}

fn ms(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.2}us")
    }
}

fn print_like_wrk(r: &LoadReport) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let l = &r.latency_us;
    writeln!(out, "  Thread Stats   Avg      Stdev     Max")?;
    writeln!(
        out,
        "    Latency   {:>8}  {:>8}  {:>8}",
        ms(l.mean),
        ms(l.stdev),
        ms(l.max as f64)
    )?;
    writeln!(
        out,
        "  Latency Distribution{}",
        if r.rate.is_some() {
            " (corrected: from the intended send time)"
        } else {
            ""
        }
    )?;
    for (name, v) in [
        ("50%", l.p50),
        ("75%", l.p75),
        ("90%", l.p90),
        ("99%", l.p99),
        ("99.9%", l.p999),
        ("99.99%", l.p9999),
    ] {
        writeln!(out, "   {name:>6}  {:>9}", ms(v as f64))?;
    }
    if let Some(u) = &r.uncorrected_latency_us {
        writeln!(
            out,
            "  Uncorrected (from the actual send): 50% {}  99% {}  max {}",
            ms(u.p50 as f64),
            ms(u.p99 as f64),
            ms(u.max as f64)
        )?;
    }
    writeln!(
        out,
        "  {} requests in {:.2}s, {:.2}MB read",
        r.requests,
        r.duration_s,
        r.bytes_per_s * r.duration_s / 1e6
    )?;
    let statuses: Vec<String> = r.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    writeln!(out, "  Status codes: {}", statuses.join(", "))?;
    if !r.errors.is_empty() {
        let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "  Socket errors: {}", errors.join(", "))?;
        if let Some(first) = &r.first_error {
            writeln!(out, "  First error: {first}")?;
        }
    }
    if r.successes != r.requests {
        writeln!(out, "  Non-2xx responses: {}", r.requests - r.successes)?;
    }
    writeln!(
        out,
        "Requests/sec: {:>10.2}  (2xx: {:.2})",
        r.requests_per_s, r.successes_per_s
    )?;
    writeln!(out, "Transfer/sec: {:>10.2}MB", r.bytes_per_s / 1e6)?;
    Ok(())
}
