//! `conlab run`: GNU parallel's job, with GNU parallel's syntax. Parses the options, the
//! command words and the `:::` sources, installs the Ctrl-C handling, and renders; the
//! scheduling lives in `conlab-run`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use conlab_exec::{Executor, Model, Pool, PoolOptions, available_cores};
use conlab_run::input::{self, InputOptions, Source, SourceSpec};
use conlab_run::{Halt, Options, Output, Resume, Stop, Template};
use conlab_work::{Job, Workload};
use indicatif::{ProgressBar, ProgressStyle};

use super::output::duration;

pub(crate) const AFTER_HELP: &str = "\
Input sources (after the command; several give every combination, the first varying slowest):
  ::: a b c         the values a, b, c
  :::: FILE         one value per line of FILE (- for stdin)
  :::+ / ::::+      pair with the source before instead of combining
  (none)            one value per line of standard input

Replacement strings: {} {.} {/} {//} {/.} {#} (job number) {%} (slot) {1} {2} ... {1.} {2/} ...
Without any, the values are appended. Lines with shell syntax run with sh -c; others are
executed directly (faster).

Examples:
  conlab run -j8 gzip {} ::: *.log
  find . -name '*.txt' -print0 | conlab run -0 -k wc -l
  conlab run --joblog jobs.tsv --resume -j4 ./render.sh {} ::: scenes/*
  conlab run --timeout 10s --retries 3 --halt soon,fail=5 curl -sfO {} :::: urls.txt
  conlab run --task primes --model processes ::: 400000 500000 600000

Exit status: 0 all jobs succeeded; 1-100 that many jobs failed; 101 more than 100 failed;
with --halt ...,fail=N the failing job's status; 128+N after signal N (130 for Ctrl-C);
255 on any other error (a bad option, an unreadable input, a bad joblog).
Ctrl-C: no new job starts, running jobs get SIGTERM (their whole process group), SIGKILL
after --grace; the joblog keeps every finished job, so --resume runs exactly the rest.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP, args_override_self = true)]
pub(crate) struct Args {
    /// Jobs at once: N, N% of the cores, or 0 for as many as possible (256).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<String>,

    /// Print output in input order (like map), not completion order (like as_completed).
    #[arg(short = 'k', long = "keep-order")]
    keep_order: bool,

    /// Print output a line at a time as it comes, instead of each job's output at once.
    #[arg(long = "line-buffer", visible_alias = "lb")]
    line_buffer: bool,

    /// Prefix each output line with the job's arguments and a tab.
    #[arg(long)]
    tag: bool,

    /// Give each job up to N inputs at once ({} is all of them, {1} {2} ... each).
    #[arg(short = 'n', long = "max-args", value_name = "N", default_value_t = 1)]
    max_args: usize,

    /// Print each job's command line before its output.
    #[arg(short = 'v', long)]
    verbose: bool,

    /// Input values end with NUL, not newline (for find -print0).
    #[arg(short = '0', long = "null")]
    null: bool,

    /// Split each input line into columns {1} {2} ... at this regular expression.
    #[arg(short = 'C', long, value_name = "REGEX")]
    colsep: Option<String>,

    /// Read values from FILE, like `:::: FILE` (repeatable).
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    arg_file: Vec<PathBuf>,

    /// Log every finished job to FILE, in GNU parallel's format.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,

    /// With --joblog: skip the jobs it lists.
    #[arg(long)]
    resume: bool,

    /// With --joblog: skip the jobs it lists as succeeded; rerun failed ones.
    #[arg(long = "resume-failed")]
    resume_failed: bool,

    /// Run a failing job up to N times in all.
    #[arg(long, value_name = "N", default_value_t = 1)]
    retries: u32,

    /// Kill a job (its whole process group) that runs longer: 30, 1.5s, 200ms, 2m.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,

    /// Between SIGTERM and SIGKILL when jobs are stopped.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    grace: String,

    /// Stop early: now|soon,fail|success|done=N or N% (e.g. now,fail=1), or never.
    #[arg(long, value_name = "POLICY")]
    halt: Option<String>,

    /// Print the commands that would run, run nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,

    /// A progress bar on stderr.
    #[arg(long)]
    bar: bool,

    /// Save each job's stdout and stderr under DIR/SEQ/.
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,

    /// Wait this long between job starts.
    #[arg(long, value_name = "DURATION")]
    delay: Option<String>,

    /// Run a built-in workload on each value instead of a command (primes, is-prime,
    /// matmul, spin, sleep): no process is spawned per job.
    #[arg(long, value_name = "KIND")]
    task: Option<String>,

    /// With --task: the model to run it under.
    #[arg(long, value_name = "MODEL", default_value = "threads")]
    model: Model,

    /// Accepted for GNU parallel scripts; does nothing.
    #[arg(long = "will-cite", hide = true)]
    will_cite: bool,

    /// The command, then the input sources.
    #[arg(trailing_var_arg = true, value_name = "COMMAND [:::|:::: ...]")]
    rest: Vec<String>,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let (command, sources) = input::split_command_line(&args.rest, &args.arg_file)?;
    let colsep = args
        .colsep
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("bad --colsep regular expression")?;
    let rows = input::group(
        input::rows(
            &sources,
            &InputOptions {
                null: args.null,
                colsep,
            },
        )?,
        args.max_args,
    );
    let jobs = match args.jobs.as_deref() {
        Some(spec) => conlab_run::slots(spec, available_cores())?,
        None => available_cores(),
    };
    if let Some(kind) = &args.task {
        if !command.is_empty() {
            bail!(
                "--task runs a built-in workload: give values after :::, not a command ({})",
                command.join(" ")
            );
        }
        return run_task(kind, args.model, jobs, args.keep_order, rows);
    }
    let resume = match (args.resume, args.resume_failed) {
        (_, true) => Resume::Failed,
        (true, false) => Resume::Unfinished,
        _ => Resume::No,
    };
    if resume != Resume::No && args.joblog.is_none() {
        bail!("--resume and --resume-failed need --joblog FILE (the log of the earlier run)");
    }
    let options = Options {
        jobs,
        keep_order: args.keep_order,
        line_buffer: args.line_buffer,
        tag: args.tag,
        verbose: args.verbose,
        timeout: args.timeout.as_deref().map(duration).transpose()?,
        retries: args.retries.max(1),
        halt: args.halt.as_deref().map(Halt::parse).transpose()?.flatten(),
        delay: args.delay.as_deref().map(duration).transpose()?,
        dry_run: args.dry_run,
        results: args.results.clone(),
        joblog: args.joblog.clone(),
        resume,
        grace: duration(&args.grace)?,
    };
    let stop = Arc::new(Stop::default());
    install_signal_handlers(&stop)?;
    let bar = progress_bar(args.bar, known_total(&sources));
    let on_progress = |done: u64| bar.set_position(done);
    let output = Output {
        stdout: Box::new(std::io::stdout()),
        stderr: Box::new(std::io::stderr()),
    };
    let summary = conlab_run::run(
        &Template::parse(&command),
        rows,
        &options,
        output,
        &stop,
        Some(&on_progress),
    )?;
    bar.finish_and_clear();
    Ok(ExitCode::from(summary.exit_code()))
}

/// SIGINT and SIGTERM stop the run (see `conlab_run::runner`); a third one exits at once.
fn install_signal_handlers(stop: &Arc<Stop>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing the Ctrl-C handler")?;
    let stop = stop.clone();
    std::thread::spawn(move || {
        for (count, signal) in signals.forever().enumerate() {
            stop.request(signal);
            if count >= 2 {
                std::process::exit(128 + signal);
            }
        }
    });
    Ok(())
}

/// The number of jobs, when every source is `:::` values (files and stdin are streamed).
fn known_total(sources: &[SourceSpec]) -> Option<u64> {
    let mut total: u64 = 1;
    let mut group: Option<u64> = None;
    for spec in sources {
        let Source::Args(values) = &spec.source else {
            return None;
        };
        let len = values.len() as u64;
        group = Some(match group {
            Some(g) if spec.linked => g.min(len),
            Some(g) => {
                total = total.saturating_mul(g);
                len
            }
            None => len,
        });
    }
    group.map(|g| total.saturating_mul(g))
}

fn progress_bar(wanted: bool, total: Option<u64>) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::new(n),
            "{spinner} [{bar:30}] {pos}/{len} jobs, {per_sec}, eta {eta}",
        ),
        None => (
            ProgressBar::no_length(),
            "{spinner} {pos} jobs done, {per_sec}, {elapsed}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `--task KIND`: each value becomes the workload `KIND:VALUE`, run on a conlab pool.
fn run_task(
    kind: &str,
    model: Model,
    jobs: usize,
    keep_order: bool,
    rows: Box<dyn Iterator<Item = conlab_run::input::Row> + Send>,
) -> Result<ExitCode> {
    use std::io::Write;
    let pool = Pool::new(
        model,
        PoolOptions {
            workers: Some(jobs),
            ..PoolOptions::default()
        },
    )?;
    let mut failed = 0u64;
    let out = &mut std::io::stdout().lock();
    let mut handles = Vec::new();
    let mut labels = Vec::new();
    for row in rows {
        let value = row?.join(" ");
        let workload = Workload::parse(&format!("{kind}:{value}"))?;
        let job = Job {
            workload,
            index: handles.len() as u64,
        };
        let handle = match &pool {
            Pool::Async(event_loop) => event_loop
                .submit_future(async move { job.run_timed_async().await })
                .map_err(|_| conlab_exec::Error::Closed)?,
            other => other.submit(job).map_err(|_| conlab_exec::Error::Closed)?,
        };
        handles.push(handle);
        labels.push(value);
    }
    let mut emit = |i: usize,
                    result: Result<Result<conlab_work::Done, String>, conlab_exec::Error>|
     -> Result<()> {
        match result {
            Ok(Ok(done)) => writeln!(out, "{}", done.checksum)?,
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("conlab: {kind}:{}: {e}", labels[i]);
            }
            Err(e) => {
                failed += 1;
                eprintln!("conlab: {kind}:{}: {e}", labels[i]);
            }
        }
        Ok(())
    };
    if keep_order {
        for (i, h) in handles.into_iter().enumerate() {
            emit(i, h.wait())?;
        }
    } else {
        for (i, result) in conlab_exec::as_completed(handles) {
            emit(i, result)?;
        }
    }
    pool.shutdown(true, false);
    Ok(ExitCode::from(failed.min(101) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_job_count_is_known_for_value_sources_only() {
        let split = input::split_command_line;
        let (_, sources) = split(&words("echo ::: a b c ::: 1 2 :::+ x"), &[]).unwrap();
        assert_eq!(known_total(&sources), Some(3));
        let (_, sources) = split(&words("echo ::: a b :::: f"), &[]).unwrap();
        assert_eq!(known_total(&sources), None);
        assert_eq!(known_total(&[]), None);
    }

    #[test]
    fn durations_take_plain_seconds_or_units() {
        assert_eq!(duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
    }
}
