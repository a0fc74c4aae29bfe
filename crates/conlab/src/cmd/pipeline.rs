//! `conlab pipeline`: Pike's gophers as a runnable pipeline (`conlab-pipeline`): stages from
//! `--stages`, one of the lecture's designs, or all of them side by side.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use conlab_pipeline::designs::{self, Effort};
use conlab_pipeline::{Cancel, Model, Pipeline, cores};

use super::output::{ExportArgs, duration, emit, usage};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Stages: NAME:WORKERS:WORK, comma-separated; WORK is a sleep (2ms, sleep:2ms: waiting, as on a
cart or on I/O) or a spin (spin:2ms: CPU work, calibrated). Each stage's workers take items
from the queue before it; a full queue blocks the stage that feeds it.

Designs (--design NAME, or --compare for all): one-gopher, more-gophers, more-carts,
double-everything, three-gophers, four-procedures, eight-gophers, staging-pile,
staging-parallel, sixteen-gophers. Each moves a cart in four procedures of --unit each.

Examples:
  conlab pipeline --stages 'load:1:2ms,move:2:4ms,unload:1:2ms,return:2:4ms' --items 500
  conlab pipeline --design four-procedures --cores 1     concurrent, not parallel: still correct
  conlab pipeline --compare --unit 1ms                   every design, speedup over one gopher
  conlab pipeline --compare --spin --cores 2             CPU work: cores cap the speedup
  conlab pipeline --stages 'parse:2:spin:50us,store:1:20us' --batch 32 --json -")]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Option<Action>,

    /// The stages: NAME:WORKERS:WORK,...
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["design", "compare"])]
    stages: Option<String>,

    /// One of the lecture's designs, by name.
    #[arg(long, value_name = "NAME", conflicts_with = "compare")]
    design: Option<String>,

    /// Every design side by side: throughput, theory, speedup over one gopher.
    #[arg(long)]
    compare: bool,

    /// Items through the pipeline (per design with --compare).
    #[arg(long, default_value_t = 200)]
    items: u64,

    /// Items each queue holds (the staging pile).
    #[arg(long, value_name = "K", default_value_t = 16)]
    queue: usize,

    /// Items handed between stages at once (less hand-off cost, more latency).
    #[arg(long, value_name = "B", default_value_t = 1)]
    batch: usize,

    /// Results leave in input order.
    #[arg(long)]
    ordered: bool,

    /// threads: a thread per worker; async: a task per worker on an event loop.
    #[arg(long, value_name = "MODEL", default_value = "threads", value_parser = ["threads", "async"])]
    model: String,

    /// Run on this many cores only (CPU affinity): 1 shows a concurrent design with no
    /// parallelism.
    #[arg(long, value_name = "C")]
    cores: Option<usize>,

    /// With --design and --compare: the time of one procedure.
    #[arg(long, value_name = "DURATION", default_value = "2ms")]
    unit: String,

    /// With --design and --compare: the gophers spin (CPU work) instead of sleeping.
    #[arg(long)]
    spin: bool,

    #[command(flatten)]
    export: ExportArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Parallel gzip, built as pigz is: a reader, N compressors, an in-order writer.
    Gzip(super::gzip::GzipArgs),
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    if let Some(Action::Gzip(gzip)) = &args.action {
        return super::gzip::run(gzip);
    }
    let exports = args.export.open()?;
    let model = match args.model.as_str() {
        "async" => Model::Async,
        _ => Model::Threads,
    };
    let unit = duration(&args.unit)?;
    if unit < Duration::from_micros(10) {
        return Err(usage(format!(
            "--unit {}: at least 10us (a shorter procedure measures the timer, not the design)",
            args.unit
        )));
    }
    let effort = if args.spin {
        Effort::Spin
    } else {
        Effort::Sleep
    };
    let cancel = ctrl_c()?;
    let work = || -> Result<ExitCode> {
        if args.compare {
            let all: Vec<&designs::Design> = designs::DESIGNS.iter().collect();
            let report = designs::compare(&all, unit, effort, args.items, model, args.queue)?;
            emit(&report, exports)?;
            return Ok(ExitCode::SUCCESS);
        }
        let stages = match (&args.stages, &args.design) {
            (Some(spec), _) => {
                conlab_pipeline::parse_stages::<()>(spec).map_err(|e| usage(e.to_string()))?
            }
            (None, Some(name)) => designs::find(name)
                .ok_or_else(|| {
                    usage(format!(
                        "--design {name}: no such design; the designs: {}",
                        designs::names()
                    ))
                })?
                .stages(unit, effort),
            (None, None) => {
                return Err(usage(
                    "give --stages SPEC, --design NAME or --compare (see conlab pipeline --help)",
                ));
            }
        };
        let pipeline = Pipeline::new(stages)
            .queue(args.queue)
            .batch(args.batch)
            .ordered(args.ordered);
        let report = pipeline.run(
            std::iter::repeat_n((), args.items as usize),
            model,
            &cancel,
            |_, ()| {},
        )?;
        let failed = report.failure.is_some();
        emit(&report, exports)?;
        Ok(if failed || report.cancelled {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    };
    match args.cores {
        Some(0) => Err(usage("--cores 0: at least one core")),
        Some(c) => cores::with_cores(c, work).map_err(|e| usage(e.to_string()))?,
        None => work(),
    }
}

/// A cancel handle that SIGINT and SIGTERM set: the pipeline drains and stops.
fn ctrl_c() -> Result<Cancel> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .context("installing the Ctrl-C handler")?;
    }
    Ok(Cancel::from_flag(flag))
}
