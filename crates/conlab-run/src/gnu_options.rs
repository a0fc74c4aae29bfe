//! GNU parallel 20221122's options as data, and what to say about a word on the command line
//! that is no option of conlab run: GNU's option that conlab does not have (named, with
//! what it does), a prefix GNU's Getopt::Long would take for a whole option (conlab wants it
//! spelt out), or neither. The CLI turns its parser's error into a [`classify`] call.

use std::fmt;

/// What an unknown command-line word is, for the error that refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// GNU parallel's option, which conlab run does not support.
    NotSupported {
        /// The spelling given.
        name: &'static str,
        /// What it does in GNU parallel.
        what: &'static str,
    },
    /// A prefix GNU reads as this one option.
    Prefix {
        /// The prefix given.
        given: String,
        /// The option GNU would read.
        option: &'static str,
        /// conlab run has that option (under its whole name).
        supported: bool,
    },
    /// A prefix of several GNU options.
    Ambiguous {
        /// The prefix given.
        given: String,
        /// The options it starts.
        options: Vec<&'static str>,
    },
    /// Neither GNU's nor conlab's.
    Neither {
        /// The word given.
        given: String,
        /// A near spelling of one of conlab's options.
        near: Option<String>,
    },
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::NotSupported { name, what } => write!(
                f,
                "{name} is GNU parallel's \"{what}\"; conlab run does not support it \
                 (docs/run.md lists what it supports)"
            ),
            Unknown::Prefix {
                given,
                option,
                supported: true,
            } => write!(
                f,
                "{given}: GNU parallel reads this prefix as {option}; conlab run takes options \
                 spelt out only: write {option}"
            ),
            Unknown::Prefix { given, option, .. } => write!(
                f,
                "{given}: GNU parallel reads this prefix as {option}; conlab run takes options \
                 spelt out only, and does not support {option}"
            ),
            Unknown::Ambiguous { given, options } => write!(
                f,
                "{given} is short for several options ({}); spell the one you mean out",
                options.join(", ")
            ),
            Unknown::Neither {
                given,
                near: Some(near),
            } => write!(
                f,
                "unknown option {given} (did you mean {near}?); see conlab run --help"
            ),
            Unknown::Neither { given, near: None } => write!(
                f,
                "unknown option {given}: neither conlab run nor GNU parallel has it; see conlab \
                 run --help"
            ),
        }
    }
}

/// What `word` (as typed: `--rpl`, `--rpl=x`, `-Dx`) is. `suggestion` is the parser's
/// nearest option, kept only when it is a spelling or two away (parsers suggest hidden
/// aliases from far off: `--nn` for `--nonexist`).
pub fn classify(word: &str, suggestion: Option<&str>) -> Unknown {
    let spelling = word.split('=').next().unwrap_or(word);
    // `-Xabc`: GNU's bundling reads the first letter.
    let spelling = match spelling.strip_prefix('-') {
        Some(rest) if !rest.starts_with('-') && rest.len() > 1 => &spelling[..2],
        _ => spelling,
    };
    if let Some(&(name, what)) = NOT_SUPPORTED.iter().find(|(name, _)| *name == spelling) {
        return Unknown::NotSupported { name, what };
    }
    if spelling.starts_with("--") {
        let mut options: Vec<&'static str> = GNU_LONG
            .iter()
            .filter(|(long, _)| long.starts_with(spelling))
            .map(|(_, main)| *main)
            .collect();
        options.dedup();
        match options.as_slice() {
            [] => {}
            [option] => {
                return Unknown::Prefix {
                    given: spelling.to_string(),
                    option,
                    supported: !NOT_SUPPORTED.iter().any(|(name, _)| name == option),
                };
            }
            _ => {
                return Unknown::Ambiguous {
                    given: spelling.to_string(),
                    options,
                };
            }
        }
    }
    Unknown::Neither {
        given: spelling.to_string(),
        near: suggestion
            .filter(|s| edit_distance(s, spelling) <= 2.max(spelling.len() / 5))
            .map(str::to_string),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Each spelling (as typed, with its dashes) and what the option does in GNU parallel.
pub const NOT_SUPPORTED: &[(&str, &str)] = &[
    (
        "--debug",
        "Print debug info for the given areas [undocumented in man]",
    ),
    (
        "-D",
        "Print debug info for the given areas [undocumented in man]",
    ),
    (
        "--sql",
        "[obsolete/retired: errors in GNU] old name of --sql-master",
    ),
    ("--sql-master", "Submit jobs via an SQL table (DBURL)"),
    ("--sqlmaster", "Submit jobs via an SQL table (DBURL)"),
    ("--sql-worker", "Execute jobs from an SQL table (DBURL)"),
    ("--sqlworker", "Execute jobs from an SQL table (DBURL)"),
    ("--sql-and-worker", "--sql-master DBURL --sql-worker DBURL"),
    ("--sqlandworker", "--sql-master DBURL --sql-worker DBURL"),
    (
        "--retry-failed",
        "Retry all failed jobs in the joblog (ignores the command line args)",
    ),
    (
        "--retryfailed",
        "Retry all failed jobs in the joblog (ignores the command line args)",
    ),
    ("-g", "[retired: errors in GNU, use --group]"),
    (
        "--latest-line",
        "Print only the latest line of each job (alpha)",
    ),
    (
        "--latestline",
        "Print only the latest line of each job (alpha)",
    ),
    ("--ll", "Print only the latest line of each job (alpha)"),
    ("--tmux", "Run each job in a tmux window (beta)"),
    ("--tmux-pane", "Run jobs in tmux panes of one window (beta)"),
    ("--tmuxpane", "Run jobs in tmux panes of one window (beta)"),
    ("--parens", "Use another string instead of {==}"),
    (
        "--rpl",
        "Define a replacement string (tag + perl expression)",
    ),
    ("--plus", "Add more replacement strings ({+/} {##} ...)"),
    ("--ssh-delay", "Delay starting the next ssh by a duration"),
    ("--sshdelay", "Delay starting the next ssh by a duration"),
    ("--load", "Only start jobs if the load is below max-load"),
    ("--noswap", "Do not start jobs if the computer is swapping"),
    (
        "--max-line-length-allowed",
        "Print the max command line length and exit (alpha)",
    ),
    (
        "--maxlinelengthallowed",
        "Print the max command line length and exit (alpha)",
    ),
    (
        "--number-of-cpus",
        "[obsolete] Print number of physical CPUs",
    ),
    ("--numberofcpus", "[obsolete] Print number of physical CPUs"),
    (
        "--number-of-sockets",
        "Print number of CPU sockets and exit",
    ),
    ("--numberofsockets", "Print number of CPU sockets and exit"),
    (
        "--number-of-cores",
        "Print number of physical CPU cores and exit",
    ),
    (
        "--numberofcores",
        "Print number of physical CPU cores and exit",
    ),
    (
        "--number-of-threads",
        "Print number of hyperthreaded cores and exit",
    ),
    (
        "--numberofthreads",
        "Print number of hyperthreaded cores and exit",
    ),
    (
        "--use-sockets-instead-of-threads",
        "Count CPU sockets as the CPU count",
    ),
    (
        "--usesocketsinsteadofthreads",
        "Count CPU sockets as the CPU count",
    ),
    (
        "--use-cores-instead-of-threads",
        "Count physical cores as the CPU count",
    ),
    (
        "--usecoresinsteadofthreads",
        "Count physical cores as the CPU count",
    ),
    (
        "--use-cpus-instead-of-cores",
        "[obsolete] Misleading alias of --use-sockets-instead-of-threads",
    ),
    (
        "--usecpusinsteadofcores",
        "[obsolete] Misleading alias of --use-sockets-instead-of-threads",
    ),
    ("--ctag", "[obsolete: use --color --tag] Colour tag"),
    (
        "--ctag-string",
        "[obsolete: use --color --tagstring] Colour tagstring",
    ),
    (
        "--ctagstring",
        "[obsolete: use --color --tagstring] Colour tagstring",
    ),
    ("--color", "Colour the output (beta)"),
    ("--colour", "Colour the output (beta)"),
    (
        "--color-failed",
        "Colour the output of failed jobs red (beta)",
    ),
    (
        "--colour-failed",
        "Colour the output of failed jobs red (beta)",
    ),
    (
        "--colorfailed",
        "Colour the output of failed jobs red (beta)",
    ),
    (
        "--colourfailed",
        "Colour the output of failed jobs red (beta)",
    ),
    (
        "--color-fail",
        "Colour the output of failed jobs red (beta)",
    ),
    (
        "--colour-fail",
        "Colour the output of failed jobs red (beta)",
    ),
    ("--colorfail", "Colour the output of failed jobs red (beta)"),
    (
        "--colourfail",
        "Colour the output of failed jobs red (beta)",
    ),
    ("--cf", "Colour the output of failed jobs red (beta)"),
    ("--onall", "Run all jobs on all computers of --sshlogin"),
    ("--nonall", "--onall with no arguments"),
    ("--filter-hosts", "Remove down hosts (alpha)"),
    ("--filterhosts", "Remove down hosts (alpha)"),
    ("--filter-host", "Remove down hosts (alpha)"),
    ("--sshloginfile", "File with sshlogins"),
    ("--slf", "File with sshlogins"),
    ("--controlmaster", "Use ssh's ControlMaster for faster ssh"),
    ("-M", "Use ssh's ControlMaster for faster ssh"),
    ("--ssh", "Use this command instead of ssh"),
    ("--transfer-file", "Transfer file to the remote computers"),
    ("--transferfile", "Transfer file to the remote computers"),
    ("--transfer-files", "Transfer file to the remote computers"),
    ("--transferfiles", "Transfer file to the remote computers"),
    ("--tf", "Transfer file to the remote computers"),
    ("--return", "Transfer files back from remote computers"),
    ("--trc", "--transfer --return filename --cleanup"),
    ("--transfer", "Transfer the input files to remote computers"),
    ("--cleanup", "Remove transferred files"),
    (
        "--basefile",
        "Transfer a file to each sshlogin before the first job",
    ),
    (
        "--bf",
        "Transfer a file to each sshlogin before the first job",
    ),
    (
        "--template",
        "Copy file with replacement strings replaced to repl",
    ),
    (
        "--tmpl",
        "Copy file with replacement strings replaced to repl",
    ),
    ("-B", "[retired: errors in GNU, use --bf]"),
    ("--ctrl-c", "[retired: errors in GNU]"),
    ("--ctrlc", "[retired: errors in GNU]"),
    ("--no-ctrl-c", "[retired: errors in GNU]"),
    ("--no-ctrlc", "[retired: errors in GNU]"),
    ("--noctrlc", "[retired: errors in GNU]"),
    ("--work-dir", "Run jobs in this directory"),
    ("--workdir", "Run jobs in this directory"),
    ("--wd", "Run jobs in this directory"),
    ("-W", "[retired: errors in GNU, use --wd]"),
    ("--rsync-opts", "Options to pass on to rsync"),
    ("--rsyncopts", "Options to pass on to rsync"),
    ("--tmpdir", "Directory for temporary files"),
    ("--tempdir", "Directory for temporary files"),
    (
        "--use-compress-program",
        "Program to compress temporary files",
    ),
    ("--compress-program", "Program to compress temporary files"),
    (
        "--usecompressprogram",
        "Program to compress temporary files",
    ),
    ("--compressprogram", "Program to compress temporary files"),
    (
        "--use-decompress-program",
        "Program to decompress temporary files",
    ),
    (
        "--decompress-program",
        "Program to decompress temporary files",
    ),
    (
        "--usedecompressprogram",
        "Program to decompress temporary files",
    ),
    (
        "--decompressprogram",
        "Program to decompress temporary files",
    ),
    ("--compress", "Compress temporary files"),
    ("--open-tty", "Open the terminal tty for each job"),
    ("-o", "Open the terminal tty for each job"),
    ("--tty", "Open the terminal tty (implies -j1)"),
    ("-T", "[retired: errors in GNU, use --tty]"),
    ("-H", "[retired: errors in GNU, use --halt]"),
    ("--progress", "Show progress of computations"),
    ("--eta", "Show the estimated seconds before finishing"),
    (
        "--total-jobs",
        "Set the total number of jobs (for --eta/--bar) (alpha)",
    ),
    (
        "--totaljobs",
        "Set the total number of jobs (for --eta/--bar) (alpha)",
    ),
    (
        "--total",
        "Set the total number of jobs (for --eta/--bar) (alpha)",
    ),
    ("--shuf", "Shuffle the jobs"),
    (
        "--recordenv",
        "Record the environment in ~/.parallel/ignored_vars",
    ),
    (
        "--record-env",
        "Record the environment in ~/.parallel/ignored_vars",
    ),
    (
        "--session",
        "Record names in the environment (env_parallel only)",
    ),
    ("--profile", "Read options from profile profilename"),
    ("-J", "Read options from profile profilename"),
    ("--tollef", "[retired: errors in GNU unless --gnu]"),
    (
        "--linkinputsource",
        "Link/unlink the Nth input source (internal, set by :::+) [undocumented]",
    ),
    (
        "--xapplyinputsource",
        "Link/unlink the Nth input source (internal, set by :::+) [undocumented]",
    ),
    ("--limit", "Dynamic job limit from a command"),
    ("--memfree", "Only start a job if this much memory is free"),
    ("--memsuspend", "Suspend jobs when less memory is available"),
    (
        "--process-slot-var",
        "Set this variable to the job slot number",
    ),
    (
        "--processslotvar",
        "Set this variable to the job slot number",
    ),
    ("--csv", "Treat input as CSV (alpha)"),
    (
        "-L",
        "--pipe: records of recsize lines; else lines per command",
    ),
    (
        "--max-lines",
        "[deprecated: use -L] Like -L; value optional (default 1)",
    ),
    (
        "--maxlines",
        "[deprecated: use -L] Like -L; value optional (default 1)",
    ),
    (
        "-l",
        "[deprecated: use -L] Like -L; value optional (default 1)",
    ),
    ("--interactive", "Ask the user before running each job"),
    ("-p", "Ask the user before running each job"),
    ("--min-version", "Exit 0 if the version is >= the given one"),
    ("--minversion", "Exit 0 if the version is >= the given one"),
    ("--show-limits", "Display the limits given by the OS"),
    ("--showlimits", "Display the limits given by the OS"),
    ("--bg", "[sem mode] Run the command in the background"),
    (
        "--shebang",
        "Use GNU parallel as a #! interpreter (must be the first argument)",
    ),
    (
        "--hashbang",
        "Use GNU parallel as a #! interpreter (must be the first argument)",
    ),
    (
        "--_pipe-means-argfiles",
        "[internal] set when --shebang-wrap re-execs itself",
    ),
    ("-Y", "[retired: errors in GNU, use --shebang]"),
    ("-U", "[retired: errors in GNU, use --er]"),
    ("--skip-first-line", "Do not use the first line of input"),
    ("--skipfirstline", "Do not use the first line of input"),
    (
        "--bug",
        "[internal] Die with a test bug report (testing) [undocumented]",
    ),
    (
        "--round-robin",
        "--pipe: distribute blocks round robin to n jobs",
    ),
    (
        "--roundrobin",
        "--pipe: distribute blocks round robin to n jobs",
    ),
    ("--round", "--pipe: distribute blocks round robin to n jobs"),
    ("--recstart", "--pipe: string/regexp a record starts with"),
    ("--regexp", "Interpret --recstart/--recend as regexps"),
    ("--regex", "Interpret --recstart/--recend as regexps"),
    ("--remove-rec-sep", "Remove the record separators"),
    ("--removerecsep", "Remove the record separators"),
    ("--rrs", "Remove the record separators"),
    ("--block-timeout", "--pipe: timeout for reading a block"),
    ("--blocktimeout", "--pipe: timeout for reading a block"),
    ("--bt", "--pipe: timeout for reading a block"),
    ("--cat", "Put the input in a temporary file ({})"),
    ("--fifo", "Put the input in a temporary fifo ({})"),
    ("--tee", "Pipe all data to all jobs"),
    ("--shard", "Shard input to jobs by a column/expression"),
    ("--bin", "Bin input to jobs by a column/expression"),
    ("--group-by", "--pipe: group input by a column value"),
    ("--groupby", "--pipe: group input by a column value"),
    ("--hgrp", "Enable hostgroups on arguments"),
    ("--hostgrp", "Enable hostgroups on arguments"),
    ("--hostgroup", "Enable hostgroups on arguments"),
    ("--hostgroups", "Enable hostgroups on arguments"),
    ("--embed", "Print GNU parallel embedded in a shell script"),
    ("--filter", "Only run jobs where the perl filter is true"),
    ("--_parset", "[internal] Generate shell code for parset"),
    (
        "--shell-completion",
        "Print shell completion code (bash/zsh)",
    ),
    (
        "--shellcompletion",
        "Print shell completion code (bash/zsh)",
    ),
    (
        "--_test",
        "[internal] parameter for testing optimal values [undocumented]",
    ),
];

/// Every long spelling of GNU parallel 20221122 with its option's main name: Getopt::Long
/// takes any unique prefix of these, so a prefix conlab refuses can be named for what GNU
/// would make of it.
pub const GNU_LONG: &[(&str, &str)] = &[
    ("--_parset", "--_parset"),
    ("--_pipe-means-argfiles", "--_pipe-means-argfiles"),
    ("--_test", "--_test"),
    ("--arg-file", "--arg-file"),
    ("--arg-file-sep", "--arg-file-sep"),
    ("--arg-sep", "--arg-sep"),
    ("--argfile", "--arg-file"),
    ("--argfilesep", "--arg-file-sep"),
    ("--argsep", "--arg-sep"),
    ("--bar", "--bar"),
    ("--basefile", "--basefile"),
    ("--basenameextensionreplace", "--basenameextensionreplace"),
    ("--basenamereplace", "--basenamereplace"),
    ("--bf", "--basefile"),
    ("--bg", "--bg"),
    ("--bin", "--bin"),
    ("--block", "--block-size"),
    ("--block-size", "--block-size"),
    ("--block-timeout", "--block-timeout"),
    ("--blocksize", "--block-size"),
    ("--blocktimeout", "--block-timeout"),
    ("--bner", "--basenameextensionreplace"),
    ("--bnr", "--basenamereplace"),
    ("--bt", "--block-timeout"),
    ("--bug", "--bug"),
    ("--cat", "--cat"),
    ("--cf", "--color-failed"),
    ("--cleanup", "--cleanup"),
    ("--col-sep", "--col-sep"),
    ("--color", "--color"),
    ("--color-fail", "--color-failed"),
    ("--color-failed", "--color-failed"),
    ("--colorfail", "--color-failed"),
    ("--colorfailed", "--color-failed"),
    ("--colour", "--color"),
    ("--colour-fail", "--color-failed"),
    ("--colour-failed", "--color-failed"),
    ("--colourfail", "--color-failed"),
    ("--colourfailed", "--color-failed"),
    ("--colsep", "--col-sep"),
    ("--compress", "--compress"),
    ("--compress-program", "--use-compress-program"),
    ("--compressprogram", "--use-compress-program"),
    ("--controlmaster", "--controlmaster"),
    ("--csv", "--csv"),
    ("--ctag", "--ctag"),
    ("--ctag-string", "--ctag-string"),
    ("--ctagstring", "--ctag-string"),
    ("--ctrl-c", "--ctrl-c"),
    ("--ctrlc", "--ctrl-c"),
    ("--debug", "--debug"),
    ("--decompress-program", "--use-decompress-program"),
    ("--decompressprogram", "--use-decompress-program"),
    ("--delay", "--delay"),
    ("--delimiter", "--delimiter"),
    ("--dirnamereplace", "--dirnamereplace"),
    ("--dnr", "--dirnamereplace"),
    ("--dr", "--dry-run"),
    ("--dry-run", "--dry-run"),
    ("--dryrun", "--dry-run"),
    ("--embed", "--embed"),
    ("--env", "--env"),
    ("--eof", "--eof"),
    ("--er", "--extensionreplace"),
    ("--eta", "--eta"),
    ("--exit", "--exit"),
    ("--extensionreplace", "--extensionreplace"),
    ("--fg", "--fg"),
    ("--fifo", "--fifo"),
    ("--files", "--output-as-files"),
    ("--filter", "--filter"),
    ("--filter-host", "--filter-hosts"),
    ("--filter-hosts", "--filter-hosts"),
    ("--filterhosts", "--filter-hosts"),
    ("--gnu", "--gnu"),
    ("--group", "--group"),
    ("--group-by", "--group-by"),
    ("--groupby", "--group-by"),
    ("--halt", "--halt-on-error"),
    ("--halt-on-error", "--halt-on-error"),
    ("--haltonerror", "--halt-on-error"),
    ("--hashbang", "--shebang"),
    ("--header", "--header"),
    ("--help", "--help"),
    ("--hgrp", "--hgrp"),
    ("--hostgroup", "--hgrp"),
    ("--hostgroups", "--hgrp"),
    ("--hostgrp", "--hgrp"),
    ("--id", "--semaphore-name"),
    ("--interactive", "--interactive"),
    ("--jl", "--joblog"),
    ("--joblog", "--joblog"),
    ("--jobs", "--jobs"),
    ("--keep-order", "--keep-order"),
    ("--keeporder", "--keep-order"),
    ("--latest-line", "--latest-line"),
    ("--latestline", "--latest-line"),
    ("--lb", "--line-buffer"),
    ("--limit", "--limit"),
    ("--line-buffer", "--line-buffer"),
    ("--line-buffered", "--line-buffer"),
    ("--linebuffer", "--line-buffer"),
    ("--linebuffered", "--line-buffer"),
    ("--link", "--link"),
    ("--linkinputsource", "--linkinputsource"),
    ("--ll", "--latest-line"),
    ("--load", "--load"),
    ("--max-args", "--max-args"),
    ("--max-chars", "--max-chars"),
    ("--max-line-length-allowed", "--max-line-length-allowed"),
    ("--max-lines", "--max-lines"),
    ("--max-procs", "--max-procs"),
    ("--max-replace-args", "--max-replace-args"),
    ("--maxargs", "--max-args"),
    ("--maxchars", "--max-chars"),
    ("--maxlinelengthallowed", "--max-line-length-allowed"),
    ("--maxlines", "--max-lines"),
    ("--maxprocs", "--max-procs"),
    ("--maxreplaceargs", "--max-replace-args"),
    ("--memfree", "--memfree"),
    ("--memsuspend", "--memsuspend"),
    ("--min-version", "--min-version"),
    ("--minversion", "--min-version"),
    ("--nice", "--nice"),
    ("--nn", "--will-cite"),
    ("--no-ctrl-c", "--no-ctrl-c"),
    ("--no-ctrlc", "--no-ctrl-c"),
    ("--no-k", "--no-keep-order"),
    ("--no-keep-order", "--no-keep-order"),
    ("--no-notice", "--will-cite"),
    ("--no-run-if-empty", "--no-run-if-empty"),
    ("--noctrlc", "--no-ctrl-c"),
    ("--nok", "--no-keep-order"),
    ("--nokeeporder", "--no-keep-order"),
    ("--nonall", "--nonall"),
    ("--nonotice", "--will-cite"),
    ("--norunifempty", "--no-run-if-empty"),
    ("--noswap", "--noswap"),
    ("--null", "--null"),
    ("--number-of-cores", "--number-of-cores"),
    ("--number-of-cpus", "--number-of-cpus"),
    ("--number-of-sockets", "--number-of-sockets"),
    ("--number-of-threads", "--number-of-threads"),
    ("--numberofcores", "--number-of-cores"),
    ("--numberofcpus", "--number-of-cpus"),
    ("--numberofsockets", "--number-of-sockets"),
    ("--numberofthreads", "--number-of-threads"),
    ("--onall", "--onall"),
    ("--open-tty", "--open-tty"),
    ("--output-as-files", "--output-as-files"),
    ("--outputasfiles", "--output-as-files"),
    ("--parens", "--parens"),
    ("--pipe", "--pipe"),
    ("--pipe-part", "--pipe-part"),
    ("--pipepart", "--pipe-part"),
    ("--plain", "--plain"),
    ("--plus", "--plus"),
    ("--process-slot-var", "--process-slot-var"),
    ("--processslotvar", "--process-slot-var"),
    ("--profile", "--profile"),
    ("--progress", "--progress"),
    ("--quote", "--quote"),
    ("--recend", "--recend"),
    ("--record-env", "--recordenv"),
    ("--recordenv", "--recordenv"),
    ("--recstart", "--recstart"),
    ("--regex", "--regexp"),
    ("--regexp", "--regexp"),
    ("--remove-rec-sep", "--remove-rec-sep"),
    ("--removerecsep", "--remove-rec-sep"),
    ("--replace", "--replace"),
    ("--res", "--results"),
    ("--result", "--results"),
    ("--results", "--results"),
    ("--resume", "--resume"),
    ("--resume-failed", "--resume-failed"),
    ("--resumefailed", "--resume-failed"),
    ("--retries", "--retries"),
    ("--retry-failed", "--retry-failed"),
    ("--retryfailed", "--retry-failed"),
    ("--return", "--return"),
    ("--round", "--round-robin"),
    ("--round-robin", "--round-robin"),
    ("--roundrobin", "--round-robin"),
    ("--rpl", "--rpl"),
    ("--rrs", "--remove-rec-sep"),
    ("--rsync-opts", "--rsync-opts"),
    ("--rsyncopts", "--rsync-opts"),
    ("--semaphore", "--semaphore"),
    ("--semaphore-name", "--semaphore-name"),
    ("--semaphore-timeout", "--semaphore-timeout"),
    ("--semaphorename", "--semaphore-name"),
    ("--semaphoretimeout", "--semaphore-timeout"),
    ("--seqreplace", "--seqreplace"),
    ("--session", "--session"),
    ("--shard", "--shard"),
    ("--shebang", "--shebang"),
    ("--shebang-wrap", "--shebang-wrap"),
    ("--shell-completion", "--shell-completion"),
    ("--shell-quote", "--shell-quote"),
    ("--shell_quote", "--shell-quote"),
    ("--shellcompletion", "--shell-completion"),
    ("--shellquote", "--shell-quote"),
    ("--show-limits", "--show-limits"),
    ("--showlimits", "--show-limits"),
    ("--shuf", "--shuf"),
    ("--silent", "--silent"),
    ("--skip-first-line", "--skip-first-line"),
    ("--skipfirstline", "--skip-first-line"),
    ("--slf", "--sshloginfile"),
    ("--slotreplace", "--slotreplace"),
    ("--spreadstdin", "--pipe"),
    ("--sql", "--sql"),
    ("--sql-and-worker", "--sql-and-worker"),
    ("--sql-master", "--sql-master"),
    ("--sql-worker", "--sql-worker"),
    ("--sqlandworker", "--sql-and-worker"),
    ("--sqlmaster", "--sql-master"),
    ("--sqlworker", "--sql-worker"),
    ("--ssh", "--ssh"),
    ("--ssh-delay", "--ssh-delay"),
    ("--sshdelay", "--ssh-delay"),
    ("--sshlogin", "--sshlogin"),
    ("--sshloginfile", "--sshloginfile"),
    ("--st", "--semaphore-timeout"),
    ("--tag", "--tag"),
    ("--tag-string", "--tag-string"),
    ("--tagstring", "--tag-string"),
    ("--tee", "--tee"),
    ("--tempdir", "--tmpdir"),
    ("--template", "--template"),
    ("--term-seq", "--term-seq"),
    ("--termseq", "--term-seq"),
    ("--tf", "--transfer-file"),
    ("--timeout", "--timeout"),
    ("--tmpdir", "--tmpdir"),
    ("--tmpl", "--template"),
    ("--tmux", "--tmux"),
    ("--tmux-pane", "--tmux-pane"),
    ("--tmuxpane", "--tmux-pane"),
    ("--tollef", "--tollef"),
    ("--total", "--total-jobs"),
    ("--total-jobs", "--total-jobs"),
    ("--totaljobs", "--total-jobs"),
    ("--transfer", "--transfer"),
    ("--transfer-file", "--transfer-file"),
    ("--transfer-files", "--transfer-file"),
    ("--transferfile", "--transfer-file"),
    ("--transferfiles", "--transfer-file"),
    ("--trc", "--trc"),
    ("--trim", "--trim"),
    ("--tty", "--tty"),
    ("--ungroup", "--ungroup"),
    ("--use-compress-program", "--use-compress-program"),
    (
        "--use-cores-instead-of-threads",
        "--use-cores-instead-of-threads",
    ),
    ("--use-cpus-instead-of-cores", "--use-cpus-instead-of-cores"),
    ("--use-decompress-program", "--use-decompress-program"),
    (
        "--use-sockets-instead-of-threads",
        "--use-sockets-instead-of-threads",
    ),
    ("--usecompressprogram", "--use-compress-program"),
    (
        "--usecoresinsteadofthreads",
        "--use-cores-instead-of-threads",
    ),
    ("--usecpusinsteadofcores", "--use-cpus-instead-of-cores"),
    ("--usedecompressprogram", "--use-decompress-program"),
    (
        "--usesocketsinsteadofthreads",
        "--use-sockets-instead-of-threads",
    ),
    ("--verbose", "--verbose"),
    ("--version", "--version"),
    ("--wait", "--wait"),
    ("--wd", "--work-dir"),
    ("--will-cite", "--will-cite"),
    ("--willcite", "--will-cite"),
    ("--work-dir", "--work-dir"),
    ("--workdir", "--work-dir"),
    ("--xapply", "--link"),
    ("--xapplyinputsource", "--linkinputsource"),
    ("--xargs", "--xargs"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_unknown_word_is_told_apart() {
        assert!(matches!(
            classify("--rpl=x", None),
            Unknown::NotSupported { name: "--rpl", .. }
        ));
        assert!(matches!(
            classify("-Dinit", None),
            Unknown::NotSupported { name: "-D", .. }
        ));
        assert_eq!(
            classify("--keep", Some("--keep-order")),
            Unknown::Prefix {
                given: "--keep".into(),
                option: "--keep-order",
                supported: true
            }
        );
        assert!(matches!(classify("--ta", None), Unknown::Ambiguous { .. }));
        assert_eq!(
            classify("--nonexist", Some("--nn")),
            Unknown::Neither {
                given: "--nonexist".into(),
                near: None
            }
        );
        assert_eq!(
            classify("--zzz-ordr", Some("--zzz-order")),
            Unknown::Neither {
                given: "--zzz-ordr".into(),
                near: Some("--zzz-order".into())
            }
        );
    }
}
