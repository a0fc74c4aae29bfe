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

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output is one standard gzip member per input, which gunzip (and zcat, pigz -d) restores byte
for byte. Each file is written under a temporary name and renamed when complete: a failure or
Ctrl-C leaves no partial file under the final name.

Examples:
  conlab pipeline gzip big.log                  writes big.log.gz (big.log is kept)
  conlab pipeline gzip -p 2 -l 9 big.log -o -   to standard output
  tar c dir | conlab pipeline gzip - -o dir.tar.gz
  conlab pipeline gzip logs/ -o logs-gz/        every file of logs/ to logs-gz/FILE.gz
  conlab pipeline gzip --stats big.log          and the pipeline's figures")]
struct GzipArgs {
    /// Files or directories to compress (- for standard input).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<std::path::PathBuf>,

    /// Where to write: a file (- for standard output) for one input, a directory for a
    /// directory [default: INPUT.gz beside each input].
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<std::path::PathBuf>,

    /// Compression level, 0 (store) to 9 (smallest).
    #[arg(short = 'l', long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    level: u32,

    /// Compressors [default: the cores].
    #[arg(short = 'p', long = "processes", value_name = "N")]
    processes: Option<usize>,

    /// Bytes per block (pigz's -b), at least 32K.
    #[arg(short = 'b', long, default_value = "128K", value_name = "SIZE")]
    block: String,

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
    let block = conlab_run::pipe::parse_size(&args.block)
        .filter(|&b| b >= 32 * 1024)
        .ok_or_else(|| {
            usage(format!(
                "-b {}: a size of at least 32K (e.g. 128K, 1M)",
                args.block
            ))
        })?;
    let options = conlab_pipeline::gzip::GzipOptions {
        level: args.level,
        workers: args.processes.unwrap_or_else(cores::allowed).max(1),
        block: usize::try_from(block).unwrap_or(usize::MAX),
    };
    let cancel = ctrl_c()?;
    use conlab_pipeline::gzip::GzipError;
    let jobs =
        conlab_pipeline::gzip::plan(&args.inputs, args.output.as_deref()).map_err(|e| match e {
            GzipError::DirectoryNeedsOutput(_) | GzipError::OneOutputForSeveral(_) => {
                usage(e.to_string())
            }
            other => anyhow::Error::new(other),
        })?;
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    let started = std::time::Instant::now();
    for (input, output) in &jobs {
        let reader: Box<dyn std::io::Read + Send> = if input.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(input)
                    .with_context(|| format!("opening {}", input.display()))?,
            )
        };
        let summary = match output {
            None => {
                let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
                conlab_pipeline::gzip::compress(reader, out, options, &cancel)
                    .with_context(|| format!("compressing {}", input.display()))?
            }
            Some(path) => {
                match conlab_pipeline::gzip::compress_to_file(reader, path, options, &cancel) {
                    Ok(summary) => summary,
                    Err(conlab_pipeline::gzip::GzipError::Cancelled) => {
                        eprintln!("conlab: cancelled; {} not written", path.display());
                        return Ok(ExitCode::from(130));
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "compressing {} to {}",
                            input.display(),
                            path.display()
                        )));
                    }
                }
            }
        };
        bytes_in += summary.bytes_in;
        bytes_out += summary.bytes_out;
        if args.stats {
            let table = conlab_measure::export::render(
                &summary.report,
                conlab_measure::export::Format::Terminal,
                false,
            )?;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}:", input.display());
            let _ = err.write_all(&table);
        }
    }
    if args.stats {
        let wall = started.elapsed().as_secs_f64();
        eprintln!(
            "{} files, {} -> {} bytes ({:.1}%), {:.2} s, {:.0} MB/s in",
            jobs.len(),
            bytes_in,
            bytes_out,
            100.0 * bytes_out as f64 / bytes_in.max(1) as f64,
            wall,
            bytes_in as f64 / 1e6 / wall.max(1e-9)
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
