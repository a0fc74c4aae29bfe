//! `conlab probe`: what the machine's concurrency primitives cost, side by side
//! (`conlab_lecture::probe`), with `perf bench sched pipe`'s figure beside ours when perf is
//! installed.

use std::process::ExitCode;

use anyhow::Result;
use conlab_lecture::probe::{ProbeReport, Scale};

use super::output::{ExportArgs, emit};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  conlab probe                 every probe (a few seconds)
  conlab probe --quick         a tenth of the repetitions
  conlab probe --json -        the figures as JSON on standard output")]
pub(crate) struct Args {
    /// A tenth of the repetitions: faster, noisier.
    #[arg(long)]
    quick: bool,

    #[command(flatten)]
    export: ExportArgs,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let exports = args.export.open()?;
    let scale = if args.quick {
        Scale::QUICK
    } else {
        Scale::FULL
    };
    emit(&ProbeReport::measure(scale), exports)?;
    Ok(ExitCode::SUCCESS)
}
