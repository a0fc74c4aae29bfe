//! `conlab pipeline gzip`: pigz's structure on `conlab-pipeline`, with gzip's command line
//! and gzip's manners: what it cannot compress is named and the rest is compressed, a
//! terminal never gets compressed bytes, and a signal or a reader that goes away ends it at
//! once with nothing partial left under a final name.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use conlab_pipeline::gzip::{GzipError, GzipOptions, Unfinished};
use conlab_pipeline::{Cancel, cores};

use super::output::usage;

/// gzip's level flags and --level: the last one given counts, as in gzip.
const LEVEL_FLAGS: [&str; 10] = [
    "level", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9",
];

#[derive(Debug, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "\
Output is one standard gzip member per input, which gunzip (and zcat, pigz -d) restores byte
for byte. Each file is written under a temporary name and linked under its own when complete,
with its input's permissions and times: a failure or a signal leaves no partial file under the
final name, and an output already there is left alone without -f. Several files, or a
directory, go through one pipeline as a stream of files; one that cannot be read is named and
the others are compressed (exit 1, or 2 when only gzip's warnings: outputs already there,
links to directories, FIFOs).
gzip's and pigz's -1 ... -9, --fast, --best, -c, -k, -r and -f mean what they mean there, and
with no INPUT standard input is compressed to standard output; unlike gzip, the input is
always kept.

Examples:
  conlab pipeline gzip big.log                  writes big.log.gz (big.log is kept)
  conlab pipeline gzip -9 -p 2 big.log -c       to standard output
  tar c dir | conlab pipeline gzip > dir.tar.gz
  conlab pipeline gzip logs/                    every file of logs/ to FILE.gz beside it
  conlab pipeline gzip logs/ -o logs-gz/        every file of logs/ to logs-gz/FILE.gz
  conlab pipeline gzip --stats big.log          and the pipeline's figures"
)]
pub(crate) struct GzipArgs {
    /// Files or directories to compress [default: - (standard input)].
    #[arg(value_name = "INPUT", value_parser = clap::builder::OsStringValueParser::new())]
    inputs: Vec<std::ffi::OsString>,

    /// Where to write: a file (- for standard output) for one input, a directory (DIR/, or
    /// one that exists) for several or for a directory [default: INPUT.gz beside each
    /// input, as gzip and gzip -r].
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,

    /// Write to standard output (-o -).
    #[arg(
        short = 'c',
        long = "stdout",
        alias = "to-stdout",
        conflicts_with = "output"
    )]
    stdout: bool,

    /// Compression level, 0 (store) to 9 (slowest); or -1 ... -9, as gzip. (zlib-rs's 9 is
    /// not always smaller than its 8.) -l takes a level only: gzip's and pigz's -l
    /// (--list, no value) is refused.
    #[arg(short = 'l', long, default_value_t = 6, value_parser = level_value,
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

    /// Compressors [default: the cores; at most 256 are started].
    #[arg(short = 'p', long = "processes", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    processes: Option<u16>,

    /// Block size: a number is KiB, as pigz's -b (128 is 128K); or a size with a unit (1M,
    /// 512k: binary either way); 32K to 1G.
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

    /// Overwrite outputs that already exist, follow symbolic links, compress names ending in
    /// .gz, and write to a terminal (without it each is refused, as gzip refuses it).
    #[arg(short = 'f', long)]
    force: bool,

    /// Print the pipeline's figures (per stage) on standard error.
    #[arg(long)]
    stats: bool,

    /// Not supported: conlab pipeline gzip only compresses.
    #[arg(short = 'd', long = "decompress", alias = "uncompress", hide = true)]
    decompress: bool,

    /// Not supported: gzip's and pigz's --list.
    #[arg(long = "list", hide = true)]
    list: bool,
}

/// `conlab pipeline gzip`.
pub(crate) fn run(args: &GzipArgs) -> Result<ExitCode> {
    if args.decompress {
        return Err(usage(
            "-d: conlab pipeline gzip only compresses; decompress with gunzip or pigz -d \
             (its output is standard gzip)"
                .to_string(),
        ));
    }
    if args.list {
        return Err(usage(
            "--list: gzip's and pigz's --list is not supported; list with gzip -l. The \
             level is -l N, or -1 ... -9"
                .to_string(),
        ));
    }
    let options = GzipOptions {
        level: level(args),
        workers: args.processes.map_or_else(cores::allowed, usize::from),
        block: block_size(&args.block)?,
    };
    let dash = PathBuf::from("-");
    let output = if args.stdout {
        Some(dash.as_path())
    } else {
        args.output.as_deref()
    };
    // An empty name is one input that cannot be read, as in gzip; the others go on.
    let inputs: Vec<PathBuf> = if args.inputs.is_empty() {
        vec![dash.clone()]
    } else {
        args.inputs.iter().map(PathBuf::from).collect()
    };
    if inputs.iter().any(|i| i.as_os_str() == "-") {
        not_closed(0, "input")?;
    }
    let plan = conlab_pipeline::gzip::plan(&inputs, output, args.force).map_err(|e| match e {
        GzipError::OneOutputForSeveral(_) => usage(e.to_string()),
        other => anyhow::Error::new(other),
    })?;
    if plan.jobs.iter().any(|j| j.output.is_none()) {
        standard_output_usable(args.force)?;
    }
    for skipped in &plan.skipped {
        say(&format!("conlab: {}", chain(skipped)));
    }
    let cancel = Cancel::default();
    let unfinished = Unfinished::default();
    let caught = on_signals(&cancel, &unfinished)?;
    let started = std::time::Instant::now();
    let summary = match conlab_pipeline::gzip::compress_jobs(
        &plan.jobs,
        args.force,
        options,
        &cancel,
        &unfinished,
    ) {
        Ok(summary) => summary,
        Err(e @ GzipError::Cancelled(_)) => {
            say(&format!("conlab: {e}"));
            let signal = caught.load(Ordering::SeqCst);
            return Ok(ExitCode::from(128 + signal.clamp(1, 127) as u8));
        }
        Err(e) => return Err(e.into()),
    };
    for failure in &summary.failures {
        say(&format!("conlab: {}", chain(failure)));
    }
    let status = conlab_pipeline::gzip::exit_status(plan.skipped.iter().chain(&summary.failures));
    if args.stats {
        stats(&summary, plan.jobs.len(), started.elapsed());
    }
    Ok(ExitCode::from(status))
}

/// `-l`'s value: a level, 0 to 9. Anything else is most likely gzip's `-l FILE.gz`
/// (--list), which is named as such rather than read as a bad number.
fn level_value(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n <= 9 => Ok(n),
        Ok(_) => Err(format!("{text} is not a level: gzip levels are 0 to 9")),
        Err(_) => Err(format!(
            "-l takes a level from 0 to 9; gzip's and pigz's -l (--list, which would read \
             {text}) is not supported: list with gzip -l"
        )),
    }
}

/// The last level flag given, or --level.
fn level(args: &GzipArgs) -> u32 {
    let digits = [
        args.l1, args.l2, args.l3, args.l4, args.l5, args.l6, args.l7, args.l8, args.l9,
    ];
    digits
        .iter()
        .position(|&set| set)
        .map_or(args.level, |i| i as u32 + 1)
}

/// pigz's -b, read by the library; a usage error that says what it takes.
fn block_size(text: &str) -> Result<usize> {
    conlab_pipeline::gzip::parse_block_size(text).ok_or_else(|| {
        usage(format!(
            "-b {text}: a block of 32K to 1G (a number is KiB, as pigz's: 128, 1024; or 1M)"
        ))
    })
}

/// A standard descriptor that was closed when conlab started: Rust's runtime puts
/// /dev/null, opened for reading and writing, in its place before main, where a shell's
/// `< /dev/null` or `> /dev/null` opens it one way only. gzip says "Bad file descriptor";
/// compressing nothing, or into nothing, would be a silent success.
fn not_closed(fd: i32, what: &str) -> Result<()> {
    // SAFETY: F_GETFL reads the descriptor's status flags and changes nothing.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    let read_write = flags >= 0 && flags & libc::O_ACCMODE == libc::O_RDWR;
    let null = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|target| target == std::path::Path::new("/dev/null"));
    if read_write && null {
        anyhow::bail!("standard {what} is closed (Bad file descriptor)");
    }
    Ok(())
}

/// gzip's rules for standard output: not closed, and never compressed bytes on a terminal
/// without -f.
fn standard_output_usable(force: bool) -> Result<()> {
    not_closed(1, "output")?;
    if !force && std::io::stdout().is_terminal() {
        anyhow::bail!(
            "compressed data not written to a terminal (as gzip says: -f forces it, or \
             redirect: > FILE.gz)"
        );
    }
    Ok(())
}

/// Signals end the run as they end gzip's: SIGINT, SIGTERM and SIGHUP stop the pipeline,
/// which drains in a moment; if it cannot within 200 ms (a read or a write blocked on a
/// pipe), the file
/// being written is removed here and the process exits with 128 + the signal. A reader
/// that goes away ends it by SIGPIPE, as gzip, and a file-size limit is a write error
/// (EFBIG) rather than a kill that would leave the temporary file.
fn on_signals(cancel: &Cancel, unfinished: &Unfinished) -> Result<Arc<AtomicI32>> {
    // SAFETY: setting dispositions to SIG_DFL and SIG_IGN installs no handler code; done
    // before any thread of this command writes. Exercised by the SIGPIPE and ulimit -f
    // tests.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing the signal handlers")?;
    let caught = Arc::new(AtomicI32::new(0));
    let (cancel, unfinished, seen) = (cancel.clone(), unfinished.clone(), Arc::clone(&caught));
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            seen.store(signal, Ordering::SeqCst);
            cancel.cancel();
            std::thread::sleep(Duration::from_millis(200));
            let lost = unfinished.abandon();
            say(&format!("conlab: {}", GzipError::Cancelled(lost)));
            std::process::exit(128 + signal);
        }
    });
    Ok(caught)
}

/// An error and its causes on one line, as `{:#}` prints an anyhow chain.
fn chain(e: &GzipError) -> String {
    anyhow::Chain::new(e)
        .map(|cause| cause.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// A line on standard error that may fail (a full or closed stderr) without stopping.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn stats(summary: &conlab_pipeline::gzip::GzipSummary, files: usize, wall: Duration) {
    if let Ok(table) = conlab_measure::export::render(
        &summary.report,
        conlab_measure::export::Format::Terminal,
        false,
    ) {
        let _ = std::io::stderr().write_all(&table);
    }
    let wall = wall.as_secs_f64();
    say(&format!(
        "{files} {}, {} -> {} bytes ({:.1}%), {:.2} s, {:.0} MB/s in",
        if files == 1 { "file" } else { "files" },
        summary.bytes_in,
        summary.bytes_out,
        100.0 * summary.bytes_out as f64 / summary.bytes_in.max(1) as f64,
        wall,
        summary.bytes_in as f64 / 1e6 / wall.max(1e-9)
    ));
}
