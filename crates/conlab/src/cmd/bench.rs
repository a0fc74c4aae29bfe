//! `conlab bench WORKLOAD`: run one workload under every model (and a sweep of worker
//! counts), measure each the same way, and say which model the lecture's rule of thumb picks
//! and which one actually won.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use conlab_exec::{Model, available_cores};
use conlab_measure::bench::{BENCH_SCHEMA, BenchReport, BenchRow, classify, recommend};
use conlab_measure::usage::cpu_percent;
use conlab_work::Workload;
use conlab_work::runner::{self, Measurement, RunConfig};
use indicatif::{ProgressBar, ProgressStyle};

use super::output::{ExportArgs, emit};

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

Exit status: 0 when every row finished with serial's answers, 1 otherwise.")]
pub(crate) struct Args {
    /// The workload spec (see Workloads below).
    workload: String,

    /// Tasks per batch.
    #[arg(long, default_value_t = 32)]
    tasks: u64,

    /// Models to run, comma-separated (serial always runs: it is the baseline).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "serial,threads,processes,async,rayon"
    )]
    models: Vec<Model>,

    /// Worker counts to sweep, comma-separated (default: the number of cores).
    #[arg(short = 'j', long = "jobs", value_delimiter = ',')]
    jobs: Vec<usize>,

    /// Also run the thread pool under an emulated GIL (CPython's behaviour).
    #[arg(long)]
    gil: bool,

    /// Unmeasured batches before the measured ones, per row.
    #[arg(long, default_value_t = 0)]
    warmup: u32,

    /// Measured batches per row; the row shows the median and the spread.
    #[arg(long, default_value_t = 3)]
    runs: u32,

    /// `bench http`: the server models to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "prefork,threadpool,thread-per-conn,event"
    )]
    servers: Vec<conlab_http::ServerModel>,

    /// `bench http`: connection counts to load each server with.
    #[arg(long, value_delimiter = ',', default_value = "50,100,1000")]
    connections: Vec<usize>,

    /// `bench http`: how long each (server, connections) cell runs.
    #[arg(long, default_value = "2s")]
    duration: String,

    /// `bench http`: the path to request.
    #[arg(long, default_value = "/hello")]
    path: String,

    #[command(flatten)]
    export: ExportArgs,
}

/// One row to measure.
struct Plan {
    model: Model,
    workers: usize,
    gil: bool,
}

fn plans(args: &Args, jobs: &[usize]) -> Vec<Plan> {
    let mut plans = vec![Plan {
        model: Model::Serial,
        workers: 1,
        gil: false,
    }];
    for &model in &args.models {
        if model == Model::Serial {
            continue;
        }
        for &workers in jobs {
            plans.push(Plan {
                model,
                workers,
                gil: false,
            });
            if args.gil && model == Model::Threads {
                plans.push(Plan {
                    model,
                    workers,
                    gil: true,
                });
            }
        }
    }
    plans
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    if args.workload == "http" {
        return http(args);
    }
    let workload = Workload::parse(&args.workload)?;
    if args.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let jobs: Vec<usize> = if args.jobs.is_empty() {
        vec![available_cores()]
    } else {
        args.jobs.clone()
    };
    if jobs.contains(&0) {
        bail!("-j takes worker counts of at least 1, e.g. -j 1,2,4");
    }
    let mut exports = args.export.open()?;
    let plans = plans(args, &jobs);
    let batches = u64::from(args.warmup + args.runs) * plans.len() as u64;
    let bar = progress_bar(batches * args.tasks);

    let mut rows = Vec::new();
    let mut serial: Option<(Measurement, f64)> = None;
    for plan in &plans {
        let config = RunConfig {
            model: plan.model,
            workers: plan.workers,
            gil: plan.gil,
            tasks: args.tasks,
            worker_program: None,
        };
        let label = format!(
            "{} x{}{}",
            plan.model,
            plan.workers,
            if plan.gil { " --gil" } else { "" }
        );
        bar.set_message(label.clone());
        let mut measured = Vec::new();
        for run in 0..args.warmup + args.runs {
            let done_before = bar.position();
            let m = runner::run(&workload, &config, |n| bar.set_position(done_before + n))
                .with_context(|| format!("running {} under {label}", args.workload))?;
            if run >= args.warmup {
                measured.push(m);
            }
        }
        measured.sort_by_key(|m| m.wall);
        let (min, max) = (measured[0].wall, measured[measured.len() - 1].wall);
        let median = measured.swap_remove(measured.len() / 2);
        let serial_ref = serial.get_or_insert_with(|| (median.clone(), median.wall.as_secs_f64()));
        rows.push(row(plan, &median, min, max, serial_ref));
    }
    bar.finish_and_clear();

    let (serial_m, _) = serial.context("the serial baseline did not run")?;
    let classification = classify(
        serial_m.cpu.as_secs_f64(),
        serial_m.wall.as_secs_f64(),
        serial_m.service.percentiles().mean,
    );
    let recommendation = recommend(&classification, &rows);
    let all_ok = rows.iter().all(|r| r.errors == 0 && r.checksum_ok);
    let first_error = rows.iter().find(|r| r.errors > 0).map(BenchRow::label);
    let report = BenchReport {
        schema: BENCH_SCHEMA,
        workload: workload.to_string(),
        tasks: args.tasks,
        runs: args.runs,
        warmup: args.warmup,
        cores: available_cores(),
        results: rows,
        classification,
        recommendation,
    };
    emit(&report, &mut exports)?;
    if let Some(label) = first_error {
        eprintln!(
            "conlab: tasks failed under {label}; first error: {}",
            serial_m
                .first_error
                .as_deref()
                .unwrap_or("see the errors column")
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn row(
    plan: &Plan,
    m: &Measurement,
    min: Duration,
    max: Duration,
    serial: &(Measurement, f64),
) -> BenchRow {
    let wall_s = m.wall.as_secs_f64();
    let speedup = if wall_s > 0.0 { serial.1 / wall_s } else { 0.0 };
    BenchRow {
        model: plan.model.to_string(),
        workers: m.workers,
        gil: plan.gil,
        wall_s,
        wall_s_min: min.as_secs_f64(),
        wall_s_max: max.as_secs_f64(),
        throughput_per_s: if wall_s > 0.0 {
            (m.latency.count() - m.errors) as f64 / wall_s
        } else {
            0.0
        },
        latency_us: m.latency.percentiles(),
        service_us: m.service.percentiles(),
        cpu_percent: cpu_percent(m.cpu, m.wall, available_cores()),
        peak_rss_bytes: m.peak_rss_bytes,
        speedup,
        efficiency: speedup / m.workers.max(1) as f64,
        errors: m.errors,
        checksum_ok: m.errors == 0 && m.checksum == serial.0.checksum,
    }
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

/// The report of `conlab bench http`.
#[derive(Debug, serde::Serialize)]
struct HttpReport {
    schema: &'static str,
    path: String,
    duration_s: f64,
    results: Vec<conlab_http::compare::CompareRow>,
}

impl conlab_measure::Tabular for HttpReport {
    fn tables(&self) -> Vec<conlab_measure::Table> {
        use conlab_measure::report::{self, Cell, Column, Tone};
        vec![conlab_measure::Table {
            title: Some(format!("GET {} for {:.1} s per cell, one server process per model", self.path, self.duration_s)),
            columns: vec![
                Column::text("server"),
                Column::number("connections"),
                Column::number("throughput"),
                Column::number("p50"),
                Column::number("p99"),
                Column::number("max"),
                Column::number("errors"),
                Column::number("server CPU"),
                Column::number("server PSS"),
            ],
            rows: self
                .results
                .iter()
                .map(|r| {
                    vec![
                        Cell::text(r.model.clone()),
                        report::count(r.connections as u64),
                        report::rate(r.requests_per_s),
                        report::seconds(r.p50_us as f64 / 1e6),
                        report::seconds(r.p99_us as f64 / 1e6),
                        report::seconds(r.max_us as f64 / 1e6),
                        report::count(r.errors).tone(if r.errors > 0 { Tone::Bad } else { Tone::Plain }),
                        report::fixed(r.server_cpu_percent, 0, "%"),
                        report::bytes(r.server_pss_bytes),
                    ]
                })
                .collect(),
            notes: vec![
                String::new(),
                "lecture: nginx (event) copes with about four times the requests of Apache (a process or thread per connection)".into(),
            ],
        }]
    }
}

/// `conlab bench http`: each server model in its own process, loaded at each connection count.
fn http(args: &Args) -> Result<ExitCode> {
    let duration = super::output::duration(&args.duration)?;
    if args.connections.contains(&0) || args.servers.is_empty() {
        bail!("--connections takes counts of at least 1, --servers at least one model");
    }
    let mut exports = args.export.open()?;
    let program =
        std::env::current_exe().context("finding this executable to start the servers")?;
    let results = conlab_http::compare::compare(
        &program,
        &args.servers,
        None,
        &args.connections,
        duration,
        &args.path,
    )?;
    let report = HttpReport {
        schema: "conlab.bench-http/1",
        path: args.path.clone(),
        duration_s: duration.as_secs_f64(),
        results,
    };
    emit(&report, &mut exports)?;
    Ok(ExitCode::SUCCESS)
}
