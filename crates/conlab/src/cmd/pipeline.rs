//! `conlab pipeline`: Pike's gophers as a runnable pipeline (`conlab-pipeline`): stages from
//! `--stages`, one of the lecture's designs, or all of them side by side.

use std::io::Write;
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
    Gzip(GzipArgs),
}

/// gzip's level flags and -l: the last one given counts, as in gzip.
const LEVEL_FLAGS: [&str; 10] = [
    "level", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9",
];

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output is one standard gzip member per input, which gunzip (and zcat, pigz -d) restores byte
for byte. Each file is written under a temporary name and renamed when complete: a failure or
Ctrl-C leaves no partial file under the final name. Several files, or a directory, go through
one pipeline as a stream of files. gzip's and pigz's -1 ... -9, -c, -k, -r and -f mean what
they mean there; unlike gzip, the input is always kept.

Examples:
  conlab pipeline gzip big.log                  writes big.log.gz (big.log is kept)
  conlab pipeline gzip -9 -p 2 big.log -c       to standard output
  tar c dir | conlab pipeline gzip - -o dir.tar.gz
  conlab pipeline gzip logs/                    every file of logs/ to FILE.gz beside it
  conlab pipeline gzip logs/ -o logs-gz/        every file of logs/ to logs-gz/FILE.gz
  conlab pipeline gzip --stats big.log          and the pipeline's figures")]
struct GzipArgs {
    /// Files or directories to compress (- for standard input).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<std::path::PathBuf>,

    /// Where to write: a file (- for standard output) for one input, a directory for a
    /// directory [default: INPUT.gz beside each input, as gzip and gzip -r].
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<std::path::PathBuf>,

    /// Write to standard output (-o -).
    #[arg(
        short = 'c',
        long = "stdout",
        alias = "to-stdout",
        conflicts_with = "output"
    )]
    stdout: bool,

    /// Compression level, 0 (store) to 9 (smallest); or -1 ... -9, as gzip.
    #[arg(short = 'l', long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9),
          overrides_with_all = LEVEL_FLAGS)]
    level: u32,

    #[arg(short = '1', long = "fast", hide = true, overrides_with_all = LEVEL_FLAGS)]
    l1: bool,
    #[arg(short = '2', hide = true, overrides_with_all = LEVEL_FLAGS)]
    l2: bool,
    #[arg(short = '3', hide = true, overrides_with_all = LEVEL_FLAGS)]
    l3: bool,
    #[arg(short = '4', hide = true, overrides_with_all = LEVEL_FLAGS)]
    l4: bool,
    #[arg(short = '5', hide = true, overrides_with_all = LEVEL_FLAGS)]
    l5: bool,
    #[arg(short = '6', hide = true, overrides_with_all = LEVEL_FLAGS)]
    l6: bool,
    #[arg(short = '7', hide = true, overrides_with_all = LEVEL_FLAGS)]
    l7: bool,
    #[arg(short = '8', hide = true, overrides_with_all = LEVEL_FLAGS)]
    l8: bool,
    #[arg(short = '9', long = "best", hide = true, overrides_with_all = LEVEL_FLAGS)]
    l9: bool,

    /// Compressors [default: the cores].
    #[arg(short = 'p', long = "processes", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    processes: Option<u16>,

    /// Block size: a number is KiB, as pigz's -b (128 is 128K); or a size such as 1M; at
    /// least 32K.
    #[arg(
        short = 'b',
        long = "blocksize",
        alias = "block",
        default_value = "128",
        value_name = "SIZE"
    )]
    block: String,

    /// Keep the input (always: accepted for gzip's and pigz's command lines).
    #[arg(short = 'k', long = "keep")]
    keep: bool,

    /// Compress the files under each directory (always: accepted for gzip -r).
    #[arg(short = 'r', long = "recursive")]
    recursive: bool,

    /// Not supported: conlab pipeline gzip only compresses.
    #[arg(short = 'd', long = "decompress", alias = "uncompress", hide = true)]
    decompress: bool,

    /// Overwrite outputs that already exist (without it they are refused, as gzip refuses
    /// them).
    #[arg(short = 'f', long)]
    force: bool,

    /// Print the pipeline's figures (per stage) on standard error.
    #[arg(long)]
    stats: bool,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    if let Some(Action::Gzip(gzip)) = &args.action {
        return run_gzip(gzip);
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

/// `conlab pipeline gzip`.
fn run_gzip(args: &GzipArgs) -> Result<ExitCode> {
    if args.decompress {
        return Err(usage(
            "-d: conlab pipeline gzip only compresses; decompress with gunzip or pigz -d \
             (its output is standard gzip)"
                .to_string(),
        ));
    }
    // pigz's -b counts KiB; a size with a unit is read as everywhere else in conlab.
    let block = if args.block.bytes().all(|b| b.is_ascii_digit()) {
        args.block
            .parse::<u64>()
            .ok()
            .and_then(|k| k.checked_mul(1024))
    } else {
        conlab_run::pipe::parse_size(&args.block)
    }
    .filter(|&b| (32 * 1024..=1 << 30).contains(&b))
    .ok_or_else(|| {
        usage(format!(
            "-b {}: a block of 32K to 1G (a number is KiB, as pigz's: 128, 1024; or 1M)",
            args.block
        ))
    })?;
    let digits = [
        args.l1, args.l2, args.l3, args.l4, args.l5, args.l6, args.l7, args.l8, args.l9,
    ];
    let level = digits
        .iter()
        .position(|&set| set)
        .map_or(args.level, |i| i as u32 + 1);
    let options = conlab_pipeline::gzip::GzipOptions {
        level,
        workers: args.processes.map_or_else(cores::allowed, usize::from),
        block: usize::try_from(block).unwrap_or(usize::MAX),
    };
    let stdout = std::path::PathBuf::from("-");
    let output = if args.stdout {
        Some(stdout.as_path())
    } else {
        args.output.as_deref()
    };
    let cancel = ctrl_c()?;
    use conlab_pipeline::gzip::GzipError;
    let jobs =
        conlab_pipeline::gzip::plan(&args.inputs, output, args.force).map_err(|e| match e {
            GzipError::OneOutputForSeveral(_) => usage(e.to_string()),
            other => anyhow::Error::new(other),
        })?;
    let started = std::time::Instant::now();
    let summary = match conlab_pipeline::gzip::compress_jobs(&jobs, options, &cancel) {
        Ok(summary) => summary,
        Err(e @ GzipError::Cancelled(_)) => {
            eprintln!("conlab: {e}");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    if args.stats {
        let table = conlab_measure::export::render(
            &summary.report,
            conlab_measure::export::Format::Terminal,
            false,
        )?;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&table);
        let wall = started.elapsed().as_secs_f64();
        let _ = writeln!(
            err,
            "{} {}, {} -> {} bytes ({:.1}%), {:.2} s, {:.0} MB/s in",
            jobs.len(),
            if jobs.len() == 1 { "file" } else { "files" },
            summary.bytes_in,
            summary.bytes_out,
            100.0 * summary.bytes_out as f64 / summary.bytes_in.max(1) as f64,
            wall,
            summary.bytes_in as f64 / 1e6 / wall.max(1e-9)
        );
    }
    Ok(ExitCode::SUCCESS)
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
