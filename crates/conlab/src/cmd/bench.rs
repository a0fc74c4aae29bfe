//! `conlab bench WORKLOAD`: one workload under every model and a sweep of worker counts
//! (`conlab_lecture::bench`), a progress bar while it runs, the table and the exports after;
//! `conlab bench http`: the server architectures (`conlab_lecture::servers`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use conlab_exec::{Model, available_cores};
use conlab_lecture::bench::{self, BenchConfig, MAX_RUNS, MAX_TASKS};
use conlab_lecture::servers::{self, Contender, ServersReport};
use conlab_work::Workload;
use indicatif::{ProgressBar, ProgressStyle};

use super::output::{ExportArgs, emit, serve_launcher, usage};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Workloads:
  primes:N  is-prime:N  matmul:N  spin:DURATION  sleep:DURATION  copy:DIR  cmd:'LINE'

  http      the server architectures instead: conlab serve under each --servers model,
            loaded at each --connections count (Apache vs nginx, reproduced)

Examples:
  conlab bench primes:600000 --tasks 12            CPU-bound: the lecture's prime sums
  conlab bench sleep:10ms --tasks 200 -j 1,4,16    I/O-bound: the kettle, a worker sweep
  conlab bench spin:200us --gil --json out.json    what CPython's GIL does to threads
  conlab bench 'cmd:gzip -c /etc/services >/dev/null' --models serial,threads,async
  conlab bench http --connections 50,100,1000 --duration 3s

Export files are written when the run succeeds; an interrupted or failed run leaves an
existing file as it was.

Exit status: 0 when every row finished with serial's answers (bench http: every cell got
answers, all of them 2xx; timeouts of clients a server never got to are its architecture's
result, shown in the errors column), 1 otherwise, 2 for a bad command line.")]
pub(crate) struct Args {
    /// The workload spec (see Workloads below).
    workload: String,

    /// Tasks per batch (1 to 1,000,000,000).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=MAX_TASKS))]
    tasks: u64,

    /// Models to run, comma-separated (serial always runs: it is the baseline).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "serial,threads,processes,async,rayon"
    )]
    models: Vec<Model>,

    /// Worker counts to sweep, comma-separated (default: the number of cores).
    #[arg(short = 'j', long = "jobs", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    jobs: Vec<u16>,

    /// Also run the thread pool under an emulated GIL (CPython's behaviour).
    #[arg(long)]
    gil: bool,

    /// Unmeasured batches before the measured ones, per row.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RUNS)))]
    warmup: u32,

    /// Measured batches per row; the row shows the median and the spread.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RUNS)))]
    runs: u32,

    /// `bench http`: the server models to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "prefork,threadpool,thread-per-conn,event"
    )]
    servers: Vec<conlab_http::ServerModel>,

    /// `bench http`: connection counts to load each server with.
    #[arg(long, value_delimiter = ',', default_value = "50,100,1000",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: Vec<u32>,

    /// `bench http`: how long each (server, connections) cell runs.
    #[arg(long, default_value = "2s")]
    duration: String,

    /// `bench http`: the path to request.
    #[arg(long, default_value = "/hello")]
    path: String,

    #[command(flatten)]
    export: ExportArgs,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    if args.workload == "http" {
        return http(args);
    }
    let config = BenchConfig {
        workload: Workload::parse(&args.workload)?,
        tasks: args.tasks,
        models: args.models.clone(),
        jobs: if args.jobs.is_empty() {
            vec![available_cores()]
        } else {
            args.jobs.iter().map(|&j| usize::from(j)).collect()
        },
        gil: args.gil,
        warmup: args.warmup,
        runs: args.runs,
        worker_program: None,
    };
    config.validate()?;
    let exports = args.export.open()?;
    let bar = progress_bar(config.total_tasks());
    let report = bench::run(&config, |p| {
        bar.set_message(p.plan.label());
        bar.set_position(p.done);
    })
    .with_context(|| format!("benchmarking {}", args.workload));
    bar.finish_and_clear();
    let report = report?;
    emit(&report, exports)?;
    let failed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.errors > 0 || !r.checksum_ok)
        .collect();
    for row in &failed {
        match &row.first_error {
            Some(error) => eprintln!(
                "conlab: {} of {} tasks failed under {}; the first: {error}",
                row.errors,
                report.tasks,
                row.label()
            ),
            None => eprintln!(
                "conlab: the answers under {} differ from serial's",
                row.label()
            ),
        }
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A progress bar on stderr, only when stderr is a terminal.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg:<22} [{bar:30}] {pos}/{len} tasks, eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `conlab bench http`: each server model in its own process, loaded at each connection count.
fn http(args: &Args) -> Result<ExitCode> {
    let duration = super::output::duration(&args.duration)?;
    if duration.is_zero() || duration > Duration::from_secs(3600) {
        return Err(usage(format!(
            "--duration {}: each cell runs for more than 0 s and at most an hour",
            args.duration
        )));
    }
    if args.servers.is_empty() {
        return Err(usage("--servers takes at least one model"));
    }
    if !args.path.starts_with('/') {
        return Err(usage(format!(
            "--path {}: a path starts with `/`, e.g. /hello",
            args.path
        )));
    }
    let exports = args.export.open()?;
    let launcher = serve_launcher()?;
    let contenders: Vec<Contender> = args
        .servers
        .iter()
        .map(|&model| Contender::Conlab {
            model,
            workers: None,
        })
        .collect();
    let levels: Vec<usize> = args.connections.iter().map(|&c| c as usize).collect();
    let results = servers::compare(&launcher, &contenders, &levels, duration, &args.path)?;
    let report = ServersReport {
        schema: servers::BENCH_HTTP_SCHEMA,
        path: args.path.clone(),
        duration_s: duration.as_secs_f64(),
        results,
    };
    emit(&report, exports)?;
    for bad in report.results.iter().filter(|r| !r.clean()) {
        eprintln!(
            "conlab: {} at {} connections: {} non-2xx responses, {:.0} requests/s",
            bad.server, bad.connections, bad.non_2xx, bad.requests_per_s
        );
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
