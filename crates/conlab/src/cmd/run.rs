//! `conlab run`: GNU parallel's job, with GNU parallel's syntax. Parses the options, the
//! command words and the `:::` sources (as bytes), installs the Ctrl-C handling, and renders;
//! the reading, quoting and scheduling live in `conlab-run`.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use conlab_exec::{Model, available_cores};
use conlab_run::input::{self, InputOptions, Trim};
use conlab_run::template::Strings;
use conlab_run::{
    Halt, Options, Output, Resume, Separators, Shell, Stop, Template, TemplateOptions, Value,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::output::duration;

pub(crate) const AFTER_HELP: &str = "\
Input sources (after the command; several give every combination, the first varying slowest):
  ::: a b c         the values a, b, c
  :::: FILE         one value per line of FILE (- for stdin)
  :::+ / ::::+      pair with the source before instead of combining (--link: all of them)
  (none)            one value per line of standard input
  (no command)      each value is a command line: conlab run ::: 'echo a' 'ls | wc -l'

Replacement strings: {} {.} {/} {//} {/.} {#} (job number) {%} (slot) {1} {2} {-1} ... {1.}
{2/} ...; other braces are left alone. Without any, the values are appended. Values are
shell-quoted. Lines run under your shell, as GNU parallel's do ($PARALLEL_SHELL, else the
shell you started conlab from, else $SHELL); a line with no shell syntax is executed
directly, which costs half as much. Jobs see PARALLEL_SEQ, PARALLEL_JOBSLOT, PARALLEL_PID.

Examples:
  conlab run -j8 gzip {} ::: *.log
  find . -name '*.txt' -print0 | conlab run -0 -k wc -l
  conlab run -j+1 --joblog jobs.tsv --resume ./render.sh {} ::: scenes/*
  conlab run --timeout 10s --retries 3 --halt soon,fail=5 curl -sfO {} :::: urls.txt
  conlab run -I ,, mv ,, ,,.bak ::: a b
  find . -name '*.o' | conlab run -X rm      # as many files per rm as fit, spread over -j
  conlab run --task primes --model processes ::: 400000 500000 600000

Exit status: 0 all jobs succeeded; 1-100 that many jobs failed; 101 more than 100 failed;
with --halt: fail=1 the failing job's status, fail=N% the percentage failed; 128+N after
signal N (130 for Ctrl-C); 255 on any other error (a bad option, an unreadable input).
Ctrl-C: no new job starts, running jobs get --termseq (their whole process group: TERM,
TERM, TERM, then KILL within 0.4 s by default); the joblog keeps every finished job, so --resume runs exactly the rest.
Options GNU parallel has and conlab run does not are refused by name (see docs/run.md).";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP, args_override_self = true)]
pub(crate) struct Args {
    /// Jobs at once: N, +N or -N (the cores plus or minus N), N% of the cores, or 0 (as many
    /// as the jobs need, up to 256).
    #[arg(
        short = 'j',
        long = "jobs",
        visible_alias = "max-procs",
        alias = "maxprocs",
        short_alias = 'P',
        value_name = "N",
        allow_hyphen_values = true
    )]
    jobs: Option<String>,

    /// Print output in input order (like map), not completion order (like as_completed).
    #[arg(short = 'k', long = "keep-order", alias = "keeporder")]
    keep_order: bool,

    /// Undo an earlier -k.
    #[arg(
        long = "no-keep-order",
        aliases = ["nokeeporder", "nok", "no-k"],
        overrides_with = "keep_order"
    )]
    no_keep_order: bool,

    /// Group each job's output (the default).
    #[arg(long, conflicts_with_all = ["line_buffer", "ungroup"])]
    group: bool,

    /// Print output a line at a time as it comes, instead of each job's output at once.
    #[arg(
        long = "line-buffer",
        visible_alias = "lb",
        aliases = ["line-buffered", "linebuffer", "linebuffered"]
    )]
    line_buffer: bool,

    /// Prefix each output line with the job's arguments and a tab.
    #[arg(long)]
    tag: bool,

    /// Give each job up to N inputs at once ({} is all of them, {1} {2} ... each); 0: none.
    #[arg(short = 'n', long = "max-args", alias = "maxargs", value_name = "N")]
    max_args: Option<usize>,

    /// Like -n, and a word holding {} is repeated once per input (x{}y: xay xby); -N0: none.
    #[arg(
        short = 'N',
        long = "max-replace-args",
        alias = "maxreplaceargs",
        value_name = "N"
    )]
    max_replace_args: Option<usize>,

    /// As many inputs on each line as fit (GNU's length rules), a word holding {} repeated
    /// per input (x{}y: xay xby); at the end of the input the rest is spread over the slots.
    #[arg(short = 'X')]
    context_fill: bool,

    /// As -X, but {} is all the inputs, space-separated (x{}y: xa by).
    #[arg(short = 'm')]
    multiple: bool,

    /// As -m, without spreading the last inputs over the slots (xargs's way).
    #[arg(long)]
    xargs: bool,

    /// Lines no longer than N bytes (GNU's estimate; only lower than the machine's limit;
    /// 0: no limit of its own).
    #[arg(short = 's', long = "max-chars", alias = "maxchars", value_name = "N", value_parser = max_chars)]
    max_chars: Option<usize>,

    /// Accepted for xargs and GNU parallel scripts: a line too long is always an error.
    #[arg(short = 'x', long = "exit")]
    exit: bool,

    /// Prefix each output line with STR (replacement strings allowed) and a tab.
    #[arg(long, alias = "tag-string", value_name = "STR")]
    tagstring: Option<OsString>,

    /// Let jobs write straight to the terminal: output is not grouped per job.
    #[arg(short = 'u', long, conflicts_with = "line_buffer")]
    ungroup: bool,

    /// Save each job's stdout in a file of the temporary directory and print its name.
    #[arg(long, aliases = ["output-as-files", "outputasfiles"])]
    files: bool,

    /// Run the jobs at this niceness.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    nice: Option<i32>,

    /// Accepted for GNU parallel scripts: a local job already has the whole environment.
    #[arg(long, value_name = "VAR")]
    env: Vec<OsString>,

    /// Where to run: only `:` (this machine) is supported.
    #[arg(short = 'S', long = "sshlogin", value_name = ":")]
    sshlogin: Vec<String>,

    /// `:`: the first value of each input source names its columns: {name}.
    #[arg(long, value_name = ":")]
    header: Option<String>,

    /// Cut standard input (or -a FILE) into blocks of whole lines; each block is one job's
    /// standard input.
    #[arg(long, alias = "spreadstdin")]
    pipe: bool,

    /// Like --pipe for a seekable file given with -a: each job reads its own part.
    #[arg(long = "pipe-part", visible_alias = "pipepart")]
    pipe_part: bool,

    /// With --pipe: bytes per block (k m g: powers of 1000; K M G: of 1024) [default: 1M;
    /// --pipe-part: the file's size / jobs / 10].
    #[arg(
        long,
        visible_alias = "blocksize",
        alias = "block-size",
        value_name = "SIZE"
    )]
    block: Option<String>,

    /// With --pipe: what ends a record [default: \n].
    #[arg(long, value_name = "STR")]
    recend: Option<String>,

    /// GNU's sem: wait for a free slot of the semaphore --id (-j slots, default 1), start
    /// the command in the background holding it, and return.
    #[arg(long)]
    semaphore: bool,

    /// With --semaphore: the semaphore's name [default: the terminal's name].
    #[arg(
        long,
        aliases = ["semaphore-name", "semaphorename"],
        value_name = "ID"
    )]
    id: Option<String>,

    /// With --semaphore: run the command in the foreground and exit with its status.
    #[arg(long)]
    fg: bool,

    /// With --semaphore: wait until every command of the semaphore has finished.
    #[arg(long)]
    wait: bool,

    /// With --semaphore: give up after SECS seconds without a free slot (exit 1).
    #[arg(
        long,
        visible_alias = "st",
        alias = "semaphore-timeout",
        value_name = "SECS"
    )]
    semaphoretimeout: Option<String>,

    /// Print each job's command line on standard output before its output.
    #[arg(short = 'v')]
    verbose: bool,

    /// Do not print the command lines (the default; undoes -v).
    #[arg(long, overrides_with = "verbose")]
    silent: bool,

    /// Print each job's command line on standard error as it starts.
    #[arg(short = 't', long = "verbose")]
    trace: bool,

    /// Input values end with NUL, not newline (for find -print0).
    #[arg(short = '0', long = "null")]
    null: bool,

    /// Input values end with DELIM (\n, \t, \r and the octal \ddd and \d, as GNU reads them).
    #[arg(short = 'd', long = "delimiter", value_name = "DELIM")]
    delimiter: Option<String>,

    /// A value equal to EOF ends its input source.
    #[arg(short = 'E', value_name = "EOF")]
    eof: Option<OsString>,

    /// As -E (GNU's deprecated -e); without a value, no end-of-file string.
    #[arg(
        short = 'e',
        long = "eof",
        value_name = "EOF",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with = "eof"
    )]
    eof_optional: Option<OsString>,

    /// Skip input values that are empty or only white space.
    #[arg(short = 'r', long = "no-run-if-empty", alias = "norunifempty")]
    no_run_if_empty: bool,

    /// Trim white space from values: n (none), l, r, lr (the default with --colsep).
    #[arg(long, value_name = "n|l|r|lr")]
    trim: Option<String>,

    /// Split each input line into columns {1} {2} ... at this regular expression.
    #[arg(short = 'C', long, alias = "col-sep", value_name = "REGEX")]
    colsep: Option<String>,

    /// Pair the input sources instead of combining them (shorter ones are reused).
    #[arg(long, visible_alias = "xapply")]
    link: bool,

    /// Read values from FILE, like `:::: FILE` (repeatable).
    #[arg(short = 'a', long = "arg-file", alias = "argfile", value_name = "FILE")]
    arg_file: Vec<PathBuf>,

    /// Use SEP instead of ::: to start a source of values.
    #[arg(long = "arg-sep", alias = "argsep", value_name = "SEP")]
    arg_sep: Option<OsString>,

    /// Use SEP instead of :::: to start a source of files.
    #[arg(long = "arg-file-sep", alias = "argfilesep", value_name = "SEP")]
    arg_file_sep: Option<OsString>,

    /// Use STR instead of {} (and {N} forms are not made for it unless it starts with {).
    #[arg(short = 'I', value_name = "STR")]
    replace: Option<OsString>,

    /// As -I, and without a value -I {} (GNU's deprecated -i).
    #[arg(
        short = 'i',
        long = "replace",
        value_name = "STR",
        num_args = 0..=1,
        default_missing_value = "{}",
        conflicts_with = "replace"
    )]
    replace_optional: Option<OsString>,

    /// Use STR instead of {.}.
    #[arg(long = "extensionreplace", visible_alias = "er", value_name = "STR")]
    extension_replace: Option<OsString>,

    /// Use STR instead of {/}.
    #[arg(long = "basenamereplace", visible_alias = "bnr", value_name = "STR")]
    basename_replace: Option<OsString>,

    /// Use STR instead of {//}.
    #[arg(long = "dirnamereplace", visible_alias = "dnr", value_name = "STR")]
    dirname_replace: Option<OsString>,

    /// Use STR instead of {/.}.
    #[arg(
        long = "basenameextensionreplace",
        visible_alias = "bner",
        value_name = "STR"
    )]
    basename_extension_replace: Option<OsString>,

    /// Use STR instead of {#}.
    #[arg(long = "seqreplace", value_name = "STR")]
    seq_replace: Option<OsString>,

    /// Use STR instead of {%}.
    #[arg(long = "slotreplace", value_name = "STR")]
    slot_replace: Option<OsString>,

    /// Quote the command's words instead of the values (run it as given, without a shell's
    /// reading of it).
    #[arg(short = 'q', long = "quote")]
    quote: bool,

    /// Print each job's command line shell-quoted (once per --shellquote) instead of running it.
    #[arg(
        long,
        aliases = ["shell-quote", "shell_quote"],
        action = clap::ArgAction::Count
    )]
    shellquote: u8,

    /// Log every finished job to FILE, in GNU parallel's format (- for standard output).
    #[arg(long, alias = "jl", value_name = "FILE")]
    joblog: Option<PathBuf>,

    /// With --joblog: skip the jobs it lists.
    #[arg(long)]
    resume: bool,

    /// With --joblog: skip the jobs it lists as succeeded; rerun failed ones.
    #[arg(long = "resume-failed", alias = "resumefailed")]
    resume_failed: bool,

    /// Try a failing job up to N times in all (0: until it succeeds), as GNU counts.
    #[arg(long, value_name = "N", default_value_t = 1)]
    retries: u32,

    /// Kill a job (its whole process group) that runs longer: 30, 1.5s, 200ms, 2m, or N%
    /// of the median run time of the jobs so far.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,

    /// Stop jobs with SIGTERM, then SIGKILL after DURATION (instead of --termseq).
    #[arg(long, value_name = "DURATION", conflicts_with = "termseq")]
    grace: Option<String>,

    /// The signals that stop a job and the milliseconds between them
    /// [default: TERM,200,TERM,100,TERM,50,KILL,25, as GNU parallel].
    #[arg(long, visible_alias = "term-seq", value_name = "SEQ")]
    termseq: Option<String>,

    /// Stop early: now|soon,fail|success|done=N or N% (e.g. now,fail=1), or never.
    #[arg(
        long,
        visible_alias = "halt-on-error",
        alias = "haltonerror",
        value_name = "POLICY",
        allow_hyphen_values = true
    )]
    halt: Option<String>,

    /// Print the commands that would run, run nothing.
    #[arg(long = "dry-run", aliases = ["dryrun", "dr"])]
    dry_run: bool,

    /// A progress bar on stderr.
    #[arg(long)]
    bar: bool,

    /// Save the output in files instead of printing it: NAME/1/VALUE/{stdout,stderr,seq};
    /// with replacement strings NAME, NAME.err, NAME.seq per job; NAME.csv or .tsv: a table.
    #[arg(
        long,
        aliases = ["result", "res"],
        value_name = "NAME",
        allow_hyphen_values = true
    )]
    results: Option<PathBuf>,

    /// Print conlab's version and the GNU parallel release whose behaviour it follows.
    #[arg(short = 'V', long)]
    version: bool,

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

    /// Accepted for GNU parallel scripts: conlab run always follows GNU parallel.
    #[arg(long, hide = true)]
    gnu: bool,

    /// Ignore GNU parallel's profiles and $PARALLEL (conlab does not read them).
    #[arg(long)]
    plain: bool,

    /// Accepted for GNU parallel scripts; does nothing.
    #[arg(
        long = "will-cite",
        aliases = ["willcite", "nn", "nonotice", "no-notice"],
        hide = true
    )]
    will_cite: bool,

    /// The command, then the input sources.
    #[arg(trailing_var_arg = true, value_name = "COMMAND [:::|:::: ...]")]
    rest: Vec<OsString>,
}

/// The message for a GNU parallel option clap did not know: what it is and that conlab run
/// does not have it. `None` when the word is no GNU option (clap's own message stands).
pub(crate) fn refusal(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(word)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let suggestion = match error.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        Some(ContextValue::Strings(v)) => v.first().map(String::as_str),
        _ => None,
    };
    Some(conlab_run::gnu_options::classify(word, suggestion).to_string())
}

/// `-s`: a number with GNU's size suffixes (k 1000, K 1024, ...).
fn max_chars(text: &str) -> Result<usize, String> {
    if text.trim().parse::<f64>() == Ok(0.0) {
        return Ok(0);
    }
    conlab_run::pipe::parse_size(text)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| format!("`{text}` is no size (a number, with k M G or K M G)"))
}

fn bytes(s: &Option<OsString>) -> Option<Value> {
    s.as_ref().map(|s| s.as_bytes().to_vec())
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    if args.version {
        println!(
            "conlab run {} (follows GNU parallel 20221122; not GNU parallel)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !args.plain {
        conlab_run::profiles::refuse()?;
    }
    if args.semaphore {
        return semaphore(args);
    }
    for (given, flag) in [
        (args.fg, "--fg"),
        (args.wait, "--wait"),
        (args.id.is_some(), "--id"),
    ] {
        if given {
            bail!("{flag} applies to --semaphore");
        }
    }
    let words: Vec<Value> = args.rest.iter().map(|w| w.clone().into_vec()).collect();
    let defaults = Separators::default();
    let seps = Separators {
        args: bytes(&args.arg_sep).unwrap_or(defaults.args),
        files: bytes(&args.arg_file_sep).unwrap_or(defaults.files),
    };
    let (command, sources) = input::split_command_line(&words, &args.arg_file, &seps);
    if let Some(login) = args
        .sshlogin
        .iter()
        .flat_map(|s| s.split(','))
        .find(|l| *l != ":")
    {
        bail!(
            "-S {login}: remote execution is not supported by conlab run; -S : (this machine) is"
        );
    }
    let header = match args.header.as_deref() {
        None => false,
        Some(":") => true,
        Some(other) => bail!("--header {other}: only --header : (the first line) is supported"),
    };
    let delimiter = match (&args.delimiter, args.null) {
        (Some(d), _) => Some(input::unescape(d)),
        (None, true) => Some(vec![0]),
        (None, false) => None,
    };
    if delimiter.as_ref().is_some_and(Vec::is_empty) {
        bail!("-d takes a delimiter of at least one character");
    }
    let colsep = args
        .colsep
        .as_deref()
        .map(regex::bytes::Regex::new)
        .transpose()
        .context("bad --colsep regular expression")?;
    let trim = match args.trim.as_deref() {
        // GNU: lr is the default with --colsep.
        None if args.colsep.is_some() => Trim::Both,
        None | Some("n") => Trim::None,
        Some("l") => Trim::Left,
        Some("r") => Trim::Right,
        Some("lr" | "rl") => Trim::Both,
        Some(other) => bail!("bad --trim `{other}`: use n, l, r or lr"),
    };
    let warn: input::Warn = Arc::new(|message: &str| {
        let _ = writeln!(std::io::stderr(), "conlab: Warning: {message}");
    });
    let input_options = InputOptions {
        delimiter,
        colsep,
        // GNU tests the string for truth: '' and 0 are no end-of-file string.
        eof: bytes(&args.eof)
            .or_else(|| bytes(&args.eof_optional))
            .filter(|e| !e.is_empty() && e != b"0"),
        skip_blank: args.no_run_if_empty,
        trim,
        link: args.link,
        header,
        warn: Some(warn),
    };
    // Jobs, not inputs: -n N takes N inputs a job; -X and -m as many as fit (unknown here).
    let total = input::known_total(&sources, &input_options)
        .filter(|_| !(args.context_fill || args.multiple || args.xargs))
        .map(|inputs| match args.max_replace_args.or(args.max_args) {
            Some(n) if n > 1 => inputs.div_ceil(n as u64),
            _ => inputs,
        });
    let piped = args.pipe || args.pipe_part;
    let (names, rows) = if piped {
        let jobs = args.jobs.as_deref().map_or(Ok(available_cores()), |j| {
            conlab_run::slots(j, available_cores())
        });
        let settings = conlab_run::pipe::Settings {
            part: args.pipe_part,
            block: args.block.clone(),
            recend: args.recend.clone(),
            records: args.max_replace_args.or(args.max_args),
            jobs: jobs.unwrap_or(1),
        };
        (Vec::new(), conlab_run::pipe::rows(&sources, &settings)?)
    } else {
        input::rows_with_header(&sources, &input_options)?
    };
    let max_args = if piped {
        None
    } else {
        args.max_replace_args.or(args.max_args)
    };
    let cores = available_cores();
    let (jobs, jobs_file) = match args.jobs.as_deref() {
        Some(spec) => match conlab_run::slots(spec, cores) {
            Err(conlab_run::SlotsError::File(_)) => {
                let file = PathBuf::from(spec);
                (conlab_run::slots_from_file(&file, cores)?, Some(file))
            }
            other => (other?, None),
        },
        None => (cores, None),
    };
    if let Some(kind) = &args.task {
        if !command.is_empty() {
            bail!(
                "--task runs a built-in workload: give values after :::, not a command ({})",
                String::from_utf8_lossy(&command.join(&b' '))
            );
        }
        let rows = input::group(rows, max_args.unwrap_or(1));
        return run_task(kind, args.model, jobs, args.keep_order, rows);
    }
    let resume = match (args.resume, args.resume_failed) {
        (_, true) => Resume::Failed,
        (true, false) => Resume::Unfinished,
        _ => Resume::No,
    };
    if resume != Resume::No && args.joblog.as_ref().is_none_or(|p| p.as_os_str() == "-") {
        bail!("--resume and --resume-failed need --joblog FILE (the log of the earlier run)");
    }
    let defaults = Strings::default();
    let strings = Strings {
        // GNU: `-i`/`--replace` with '' or 0 is `{}` (it tests the value for truth).
        whole: bytes(&args.replace)
            .or_else(|| bytes(&args.replace_optional).filter(|r| !r.is_empty() && r != b"0"))
            .unwrap_or(defaults.whole),
        no_extension: bytes(&args.extension_replace).unwrap_or(defaults.no_extension),
        basename: bytes(&args.basename_replace).unwrap_or(defaults.basename),
        dirname: bytes(&args.dirname_replace).unwrap_or(defaults.dirname),
        basename_no_extension: bytes(&args.basename_extension_replace)
            .unwrap_or(defaults.basename_no_extension),
        seq: bytes(&args.seq_replace).unwrap_or(defaults.seq),
        slot: bytes(&args.slot_replace).unwrap_or(defaults.slot),
    };
    // GNU's context replace (-X, -N) holds for every template, --tagstring's too.
    let context = (args.max_replace_args.is_some() || args.context_fill) && !piped;
    let results_template = args
        .results
        .as_ref()
        .map(|name| {
            Template::parse(
                &[name.as_os_str().as_bytes().to_vec()],
                &TemplateOptions {
                    strings: strings.clone(),
                    names: names.clone(),
                    raw: true,
                    context,
                    ..TemplateOptions::default()
                },
            )
        })
        .transpose()?;
    let results = args
        .results
        .as_ref()
        .zip(results_template.clone())
        .map(|(name, template)| {
            let width = if args.colsep.is_some() {
                usize::MAX
            } else {
                sources.len().max(1)
            };
            conlab_run::results::Results::from_name(name, template, names.clone(), width)
        });
    let tagstring = args
        .tagstring
        .as_ref()
        .map(|t| {
            Template::parse(
                &[t.as_bytes().to_vec()],
                &TemplateOptions {
                    strings: strings.clone(),
                    names: names.clone(),
                    raw: true,
                    context,
                    ..TemplateOptions::default()
                },
            )
        })
        .transpose()?;
    let template = Template::parse(
        &command,
        &TemplateOptions {
            strings,
            quote_all: args.quote,
            context,
            names,
            // --pipe: the block is the input, nothing is appended.
            no_append: piped,
            raw: false,
            shell_quote: args.shellquote,
        },
    )?;
    let shell = Shell::detect()?;
    let rows = if piped {
        rows
    } else {
        let filling = args.context_fill || args.multiple || args.xargs;
        let mut model = template.length_model();
        for other in [&tagstring, &results_template].into_iter().flatten() {
            model.count_also(other);
        }
        // GNU's --tag is `--tagstring {}`, and --bar counts `{}`: both once.
        if args.bar || args.tag {
            model.count_whole();
        }
        let fill = conlab_run::fill::Fill {
            model,
            // GNU: -n0 with -X/-m packs as many as fit (and inserts none of them).
            max_records: max_args.filter(|&n| n > 0 || !filling).or(if filling {
                None
            } else {
                Some(1)
            }),
            spread_over: (args.context_fill || args.multiple).then_some(jobs),
            max_chars: args.max_chars.filter(|&s| s > 0),
            read_ahead: filling,
        };
        if fill.max_chars.is_some() {
            let usable = fill.usable();
            if usable.max_chars_ignored {
                eprintln!(
                    "conlab: Warning: Value for option -s should be < {}.",
                    usable.length
                );
            }
        }
        fill.lines(rows)
    };
    let options = Options {
        jobs,
        keep_order: args.keep_order,
        line_buffer: args.line_buffer,
        tag: args.tag,
        verbose: args.verbose,
        trace: args.trace,
        timeout: args
            .timeout
            .as_deref()
            .map(|t| match t.strip_suffix('%') {
                Some(_) => conlab_run::Timeout::percent(t).map_err(anyhow::Error::msg),
                None => duration(t).map(conlab_run::Timeout::After),
            })
            .transpose()?,
        tagstring,
        ungroup: args.ungroup,
        files: args.files,
        nice: args.nice,
        jobs_file,
        pipe: match (args.pipe_part, sources.first().map(|s| &s.source)) {
            (true, Some(input::Source::File(path))) => Some(conlab_run::Pipe::Part(path.clone())),
            _ if piped => Some(conlab_run::Pipe::Blocks),
            _ => None,
        },
        retries: args.retries,
        halt: args.halt.as_deref().map(Halt::parse).transpose()?.flatten(),
        delay: args.delay.as_deref().map(duration).transpose()?,
        dry_run: args.dry_run,
        results,
        joblog: args.joblog.clone(),
        resume,
        term_seq: match (&args.grace, &args.termseq) {
            (Some(grace), _) => conlab_run::runner::grace_term_seq(duration(grace)?),
            (None, Some(seq)) => conlab_run::runner::parse_term_seq(seq)?,
            (None, None) => conlab_run::runner::default_term_seq(),
        },
        no_args: max_args == Some(0),
    };
    let stop = Arc::new(Stop::default());
    install_signal_handlers(&stop)?;
    let bar = progress_bar(args.bar, total);
    let on_progress = |done: u64| bar.set_position(done);
    let output = Output {
        stdout: Box::new(std::io::stdout()),
        stderr: Box::new(std::io::stderr()),
    };
    let summary = conlab_run::run(
        &template,
        &shell,
        rows,
        &options,
        output,
        &stop,
        Some(&on_progress),
    )?;
    bar.finish_and_clear();
    if let Some(refused) = summary.slots_refused {
        eprintln!(
            "conlab: Warning: the OS refused {refused} of the {jobs} job slots asked for; ran with fewer"
        );
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// `--semaphore`: one command under a counting semaphore shared with other invocations.
fn semaphore(args: &Args) -> Result<ExitCode> {
    let id = args
        .id
        .clone()
        .unwrap_or_else(conlab_run::semaphore::default_id);
    let slots = match args.jobs.as_deref() {
        Some(spec) => conlab_run::slots(spec, available_cores())?,
        None => 1,
    };
    let sem = conlab_run::semaphore::Semaphore::new(&id, slots);
    if args.wait {
        sem.wait_all()?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.rest.is_empty() {
        bail!("--semaphore needs a command (or --wait)");
    }
    let seps = Separators::default();
    if let Some(sep) = args.rest.iter().find(|w| {
        let w = w.as_bytes();
        [&seps.args[..], &seps.files[..]].iter().any(|s| {
            w.strip_prefix(*s)
                .is_some_and(|rest| rest.is_empty() || rest == b"+")
        })
    }) {
        bail!(
            "--semaphore runs one command: input sources ({}) are not supported with it \
             (GNU's sem ignores them)",
            sep.to_string_lossy()
        );
    }
    let timeout = args.semaphoretimeout.as_deref().map(duration).transpose()?;
    let slot = match sem.acquire(timeout) {
        Ok(slot) => slot,
        Err(conlab_run::semaphore::SemaphoreError::Timeout(_)) => {
            eprintln!("conlab: semaphore {id}: no slot was free within --semaphoretimeout");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let line: Vec<u8> = args
        .rest
        .iter()
        .map(|w| w.as_bytes())
        .collect::<Vec<_>>()
        .join(&b' ');
    let shell = Shell::detect()?;
    let mut command = std::process::Command::new(shell.path());
    command.arg("-c").arg(std::ffi::OsStr::from_bytes(&line));
    Ok(match sem.run(slot, command, args.fg)? {
        Some(status) => ExitCode::from(status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        }) as u8),
        None => ExitCode::SUCCESS,
    })
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
    let out = &mut std::io::stdout().lock();
    let failed =
        conlab_run::task::run_tasks(kind, model, jobs, keep_order, rows, |r| match r.outcome {
            Ok(checksum) => writeln!(out, "{checksum}"),
            Err(e) => writeln!(std::io::stderr(), "conlab: {kind}:{}: {e}", r.value),
        })?;
    Ok(ExitCode::from(failed.min(101) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_plain_seconds_or_units() {
        assert_eq!(duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
    }
}
