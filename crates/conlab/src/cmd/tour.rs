//! `conlab tour`: runs the lecture's experiments (`conlab_lecture::experiments`) and prints
//! each finding as the lecture's claim, its figure beside the measured one, and the verdict;
//! `--json` writes them all as `conlab.tour/2`.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::builder::{PossibleValue, PossibleValuesParser};
use conlab_exec::available_cores;
use conlab_lecture::experiments::{Budget, Context, EXPERIMENTS};
use conlab_lecture::{Finding, TourReport, Verdict};

use super::output::{HtmlFile, color, json_only, serve_launcher};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Every experiment prints the lecture's claim, the lecture's figure beside the one measured
here, and a verdict: held, DID NOT HOLD, or cannot be shown now (one core for a claim about
parallelism, or other programs using the CPU while a timing was taken).

Examples:
  conlab tour                      every experiment (about 8 s on 2 cores)
  conlab tour --only primes,web    the GIL and Apache vs nginx
  conlab tour --json tour.json     also write every finding as JSON (conlab.tour/2)
  conlab tour --html tour.html     and as a page to open in a browser
  conlab tour --peers              Apache httpd and nginx beside conlab's servers

Exit status: 0 when the tour ran (whatever the verdicts), 1 when an experiment could not
run, 2 for a bad command line.")]
pub(crate) struct Args {
    /// Run only these experiments, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = experiment_names())]
    only: Vec<String>,

    /// Workers for each pool, 1 to 64 (default: one per core; more than 64 on a tour would
    /// measure the pools' start-up rather than the claims).
    #[arg(short = 'j', long, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: Option<u16>,

    /// The smallest runs that still exercise every experiment: a first look, noisier.
    #[arg(long)]
    quick: bool,

    /// Also run Apache httpd (prefork) and nginx in the web experiment, where installed.
    #[arg(long)]
    peers: bool,

    /// Also write the findings as JSON to FILE (`-` for standard output instead of text).
    #[arg(long, value_name = "FILE")]
    json: Option<String>,

    /// Also write the tour as one self-contained HTML page to FILE: each claim, its verdict
    /// and its chart with the data underneath; no script, nothing fetched.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
}

/// `--only`'s values, each with its experiment's title for `--help`.
fn experiment_names() -> PossibleValuesParser {
    PossibleValuesParser::new(
        EXPERIMENTS
            .iter()
            .map(|e| PossibleValue::new(e.name).help(e.title)),
    )
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let exports = json_only(args.json.as_ref())?;
    let html = HtmlFile::open(args.html.as_ref())?;
    let text = !exports.uses_stdout();
    let out = &mut io::stdout().lock();
    let cores = available_cores();
    let workers = args.workers.map_or(cores, usize::from);
    let budget = if args.quick {
        Budget::Quick
    } else {
        Budget::Full
    };
    let launcher = serve_launcher()?;
    let context = Context {
        workers,
        cores,
        budget,
        servers: &launcher,
        peers: args.peers,
    };
    if text {
        writeln!(
            out,
            "conlab tour: the lecture's experiments on this machine ({cores} cores, {workers} \
             workers per pool)\n"
        )?;
    }
    let mut report = TourReport::new(cores, workers, budget);
    let mut failed = Vec::new();
    for experiment in EXPERIMENTS
        .iter()
        .filter(|e| args.only.is_empty() || args.only.iter().any(|o| o == e.name))
    {
        // One experiment that cannot run is reported as such; the others still run.
        let finding = experiment.run(&context).unwrap_or_else(|e| {
            failed.push(experiment.name);
            experiment.could_not_run(&e)
        });
        if text {
            print_finding(out, &finding)?;
        }
        report.push(finding);
    }
    if text {
        writeln!(out, "{}", report.summary())?;
    }
    exports.write(&report).context("writing the tour's JSON")?;
    if let Some(page) = html {
        page.write(&report.html(&serde_json::to_string_pretty(&report)?))?;
    }
    if !failed.is_empty() {
        eprintln!("conlab: could not run {}", failed.join(", "));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_finding(out: &mut impl Write, f: &Finding) -> Result<()> {
    let o = &f.outcome;
    writeln!(out, "== {}", f.title)?;
    writeln!(out, "   \"{}\" ({})", f.claim.quote, f.claim.slide)?;
    writeln!(out, "   set-up: {}", o.setup)?;
    for line in &o.details {
        writeln!(out, "   {line}")?;
    }
    writeln!(out, "   lecture:  {}", f.claim.figure)?;
    writeln!(out, "   measured: {}", o.measured)?;
    let (open, close) = match (&o.verdict, color()) {
        (Verdict::Held { .. }, true) => ("\x1b[32m", "\x1b[0m"),
        (Verdict::NotHeld { .. }, true) => ("\x1b[31m", "\x1b[0m"),
        (Verdict::CannotShow { .. }, true) => ("\x1b[33m", "\x1b[0m"),
        (_, false) => ("", ""),
    };
    writeln!(
        out,
        "   -> {open}{}{close}: {}\n",
        o.verdict.word(),
        o.verdict.reason()
    )?;
    Ok(())
}
