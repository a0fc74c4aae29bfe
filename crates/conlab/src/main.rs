//! The `conlab` command: run, measure and use every concurrency model of the lecture.
//!
//! This crate holds no algorithm of its own: it parses the command line (clap), wires the
//! library crates together and renders what they return. One module per command under
//! `cmd/`. The binary doubles as the process pool's worker: started with `CONLAB_WORKER`
//! set, it serves tasks instead of parsing arguments (see `conlab_exec::processes`).

mod cmd;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

/// glibc's malloc spends 20-45% of a task's submit time on frees from other threads and on
/// consolidation here (perf); mimalloc halves the cost per task (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, as documented in `--help`.
const AFTER_HELP: &str = "\
Exit status:
  0  success
  1  an experiment or command failed (the message says which and why)
  2  the command line was wrong
  (conlab run follows GNU parallel instead: see conlab run --help)

Examples:
  conlab tour                 run every experiment of the lecture, a few seconds each
  conlab tour --only primes   just the prime sums under every model
  conlab bench sleep:10ms     which model fits this work, measured
  conlab run -j8 gzip {} ::: *.log
";

/// Run, measure and use every concurrency model: serial, threads, processes, async, rayon.
#[derive(Debug, Parser)]
#[command(name = "conlab", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    // In a process-pool worker this serves tasks and never reaches the CLI.
    if let Some(code) = conlab_exec::processes::serve_if_worker(&conlab_lecture::registry()) {
        return code;
    }
    // `conlab run` exits 255 on errors, as GNU parallel does; the other commands use 1 and 2.
    let is_run = std::env::args_os().nth(1).is_some_and(|a| a == "run");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if is_run && e.use_stderr() => {
            match cmd::run::refusal(&e) {
                Some(message) => eprintln!("conlab: {message}"),
                None => {
                    let _ = e.print();
                }
            }
            return ExitCode::from(255);
        }
        Err(e) => e.exit(),
    };
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            // `conlab tour | head` closes the pipe early: that is success, as in ripgrep.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<io::Error>())
                .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            // A full or closed stderr must not turn the error into a panic.
            let _ = writeln!(io::stderr(), "conlab: {err:#}");
            ExitCode::from(if is_run {
                255
            } else if cmd::is_usage(&err) {
                2
            } else {
                1
            })
        }
    }
}
