//! `conlab probe`: what the machine's concurrency primitives cost, side by side, with
//! `perf bench sched pipe`'s figure beside ours when perf is installed.

use std::process::ExitCode;

use anyhow::Result;
use conlab_measure::Tabular;
use conlab_measure::report::{self, Cell, Column, Table};
use conlab_work::probe::{self, Budget, Probe};
use serde::Serialize;

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

/// The schema id of [`ProbeReport`]'s JSON.
pub(crate) const PROBE_SCHEMA: &str = "conlab.probe/1";

/// Everything `conlab probe` measured.
#[derive(Debug, Serialize)]
pub(crate) struct ProbeReport {
    schema: &'static str,
    cores: usize,
    probes: Vec<Probe>,
}

impl ProbeReport {
    /// Measures every probe.
    pub(crate) fn measure(budget: Budget) -> Self {
        let mut probes = probe::run_all(budget);
        probes.extend(probe::perf_sched_pipe(budget));
        ProbeReport {
            schema: PROBE_SCHEMA,
            cores: conlab_exec::available_cores(),
            probes,
        }
    }

    /// The cost of the probe called `name`, in nanoseconds.
    pub(crate) fn ns(&self, name: &str) -> Option<f64> {
        self.probes
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.per_op_ns)
    }
}

impl Tabular for ProbeReport {
    fn tables(&self) -> Vec<Table> {
        vec![Table {
            title: Some(format!(
                "What things cost on this machine ({} cores)",
                self.cores
            )),
            columns: vec![
                Column::text("primitive"),
                Column::number("per_op_s"),
                Column::number("ops"),
                Column::text("how"),
            ],
            rows: self
                .probes
                .iter()
                .map(|p| {
                    vec![
                        Cell::text(p.name.clone()),
                        report::seconds(p.per_op_ns / 1e9),
                        report::count(p.ops),
                        Cell::text(p.note.clone()),
                    ]
                })
                .collect(),
            notes: Vec::new(),
        }]
    }
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let mut exports = args.export.open()?;
    let budget = if args.quick {
        Budget::QUICK
    } else {
        Budget::FULL
    };
    emit(&ProbeReport::measure(budget), &mut exports)?;
    Ok(ExitCode::SUCCESS)
}
