//! The `conlab` command: run, measure and use every concurrency model of the lecture.
//!
//! This crate holds no algorithm of its own: it parses the command line (clap), wires the
//! library crates together and renders what they return. One module per command under
//! `cmd/`. The binary doubles as the process pool's worker: started with `CONLAB_WORKER`
//! set, it serves tasks instead of parsing arguments (see `conlab_exec::processes`).

mod cmd;

use std::io;
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

Examples:
  conlab tour                 run every experiment of the lecture, a few seconds each
  conlab tour --only primes   just the prime sums under every model
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
    if let Some(code) = conlab_exec::processes::serve_if_worker(&conlab_work::registry()) {
        return code;
    }
    let cli = Cli::parse();
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
            eprintln!("conlab: {err:#}");
            ExitCode::from(1)
        }
    }
}
