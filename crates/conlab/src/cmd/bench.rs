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

use super::output::{ExportArgs, HtmlFile, emit, serve_launcher, usage};

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

Export files are written when the run completes (failed tasks included: the report says
which); a run that is interrupted or cannot complete leaves an existing file as it was.

Exit status: 0 when every row finished with serial's answers (bench http: every cell got
answers, all of them 2xx; timeouts of clients a server never got to are its architecture's
result, shown in the errors column), 1 otherwise, 2 for a bad command line.")]
pub(crate) struct Args {
    /// The workload spec (see Workloads below).
    workload: String,

    /// Tasks per batch, 1 to 1,000,000,000 [default: 32].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_TASKS))]
    tasks: Option<u64>,

    /// Models to run, comma-separated (serial always runs: it is the baseline)
    /// [default: serial,threads,processes,async,rayon].
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<Model>>,

    /// Worker counts to sweep, comma-separated (default: the number of cores).
    #[arg(short = 'j', long = "jobs", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    jobs: Vec<u16>,

    /// Also run the thread pool under an emulated GIL (CPython's behaviour).
    #[arg(long)]
    gil: bool,

    /// Unmeasured batches before the measured ones, per row [default: 0].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RUNS)))]
    warmup: Option<u32>,

    /// Measured batches per row; the row shows the median and the spread [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RUNS)))]
    runs: Option<u32>,

    /// `bench http`: the server models to compare
    /// [default: prefork,threadpool,thread-per-conn,event].
    #[arg(long, value_delimiter = ',')]
    servers: Option<Vec<conlab_http::ServerModel>>,

    /// `bench http`: connection counts to load each server with [default: 50,100,1000].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: Option<Vec<u32>>,

    /// `bench http`: how long each (server, connections) cell runs [default: 2s].
    #[arg(long)]
    duration: Option<String>,

    /// `bench http`: the path to request [default: /hello].
    #[arg(long)]
    path: Option<String>,

    /// Also write the results as a self-contained HTML page to FILE: speedup by workers per
    /// model with the ideal line, throughput and memory per row (not for `bench http` yet).
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,

    #[command(flatten)]
    export: ExportArgs,
}

/// Refuses flags of the other kind of bench: a setting that would be silently ignored.
fn check_applicable(args: &Args) -> Result<()> {
    let http = args.workload == "http";
    let workload_flags = [
        ("--tasks", args.tasks.is_some()),
        ("--models", args.models.is_some()),
        ("-j", !args.jobs.is_empty()),
        ("--gil", args.gil),
        ("--warmup", args.warmup.is_some()),
        ("--runs", args.runs.is_some()),
    ];
    let http_flags = [
        ("--servers", args.servers.is_some()),
        ("--connections", args.connections.is_some()),
        ("--duration", args.duration.is_some()),
        ("--path", args.path.is_some()),
    ];
    if http && args.html.is_some() {
        return Err(usage(
            "--html is not supported by `bench http` yet (only by `bench WORKLOAD`): use --json",
        ));
    }
    if http && let Some((flag, _)) = workload_flags.iter().find(|(_, given)| *given) {
        return Err(usage(format!(
            "{flag} does not apply to `bench http`, which runs servers, not tasks (its \
             settings: --servers, --connections, --duration, --path)"
        )));
    }
    if !http && let Some((flag, _)) = http_flags.iter().find(|(_, given)| *given) {
        return Err(usage(format!(
            "{flag} applies to `conlab bench http` only, not to a workload"
        )));
    }
    Ok(())
}

/// `items` without repeats, in their first order.
fn unique<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut seen = Vec::new();
    for &item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    check_applicable(args)?;
    if args.workload == "http" {
        return http(args);
    }
    let config = BenchConfig {
        workload: Workload::parse(&args.workload)?,
        tasks: args.tasks.unwrap_or(32),
        models: args.models.clone().unwrap_or_else(|| {
            vec![
                Model::Serial,
                Model::Threads,
                Model::Processes,
                Model::Async,
                Model::Rayon,
            ]
        }),
        jobs: if args.jobs.is_empty() {
            vec![available_cores()]
        } else {
            args.jobs.iter().map(|&j| usize::from(j)).collect()
        },
        gil: args.gil,
        warmup: args.warmup.unwrap_or(0),
        runs: args.runs.unwrap_or(3),
        worker_program: None,
    };
    config.validate().map_err(|e| usage(e.to_string()))?;
    let exports = args.export.open()?;
    let html = HtmlFile::open(args.html.as_ref())?;
    let bar = progress_bar(config.total_tasks());
    let report = bench::run(&config, |p| {
        bar.set_message(p.plan.label());
        bar.set_position(p.done);
    })
    .with_context(|| format!("benchmarking {}", args.workload));
    bar.finish_and_clear();
    let report = report?;
    emit(&report, exports)?;
    if let Some(page) = html {
        page.write(&report.html())?;
    }
    let failures = report.failures();
    for failure in &failures {
        eprintln!("conlab: {failure}");
    }
    Ok(if failures.is_empty() {
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
    let duration_text = args.duration.as_deref().unwrap_or("2s");
    let duration = super::output::duration(duration_text)?;
    if duration.is_zero() || duration > Duration::from_secs(3600) {
        return Err(usage(format!(
            "--duration {duration_text}: each cell runs for more than 0 s and at most an hour"
        )));
    }
    use conlab_http::ServerModel;
    let servers = unique(args.servers.as_deref().unwrap_or(&[
        ServerModel::Prefork,
        ServerModel::Threadpool,
        ServerModel::ThreadPerConn,
        ServerModel::Event,
    ]));
    if servers.is_empty() {
        return Err(usage("--servers takes at least one model"));
    }
    let path = args.path.clone().unwrap_or_else(|| "/hello".into());
    if !path.starts_with('/') {
        return Err(usage(format!(
            "--path {path}: a path starts with `/`, e.g. /hello"
        )));
    }
    let levels: Vec<usize> = unique(args.connections.as_deref().unwrap_or(&[50, 100, 1000]))
        .into_iter()
        .map(|c| c as usize)
        .collect();
    servers::check(&levels, duration, &path).map_err(|e| usage(e.to_string()))?;
    let exports = args.export.open()?;
    let launcher = serve_launcher()?;
    let contenders: Vec<Contender> = servers
        .iter()
        .map(|&model| Contender::Conlab {
            model,
            workers: None,
        })
        .collect();
    let results = servers::compare(&launcher, &contenders, &levels, duration, &path)?;
    let report = ServersReport {
        schema: servers::BENCH_HTTP_SCHEMA,
        path,
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
