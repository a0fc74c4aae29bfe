//! The scheduler: up to `-j` slots, each a thread that starts one job at a time in its own
//! process group; output grouped per job (or streamed by line); `-k` order; joblog, retries,
//! halt, timeouts and interruption.
//!
//! Slots are started as jobs need them, never more than there are jobs: `-j 100000` over
//! three inputs starts three. Jobs are handed over a small channel, so the input is read only
//! as fast as slots free up. A job's output is read from its pipes as it comes (both at once,
//! so neither can fill and stall it) into a [`Spool`]: memory up to a bound, then a file.
//! With `--line-buffer`, whole lines are written as they come, a read's worth in one write;
//! with `-k` too, only the oldest unfinished job streams and the others wait their turn.
//!
//! A watchdog thread enforces timeouts and stops: it sends SIGTERM to a job's whole process
//! group (so a shell and the grandchildren it started all go), then SIGKILL after a grace
//! period. A job killed because the run was interrupted (or halted `now`) is *not* written
//! to the joblog: it did not finish, so `--resume` runs it again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use conlab_exec::lock;

use crate::halt::{Halt, When};
use crate::input::{InputError, Row};
use crate::joblog::{self, Entry, JobLog};
use crate::results::{Record, Results};
use crate::shell::Shell;
use crate::spool::Spool;
use crate::template::{Prepared, Template, Value};

/// What `--resume` / `--resume-failed` skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resume {
    /// Run everything.
    #[default]
    No,
    /// Skip every job the joblog lists.
    Unfinished,
    /// Skip the jobs the joblog lists as succeeded; run failed and unlisted ones.
    Failed,
}

/// How to run the jobs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Slots: jobs running at once.
    pub jobs: usize,
    /// Print output in input order (`-k`), not completion order.
    pub keep_order: bool,
    /// Print lines as they come instead of each job's output at once.
    pub line_buffer: bool,
    /// Prefix each output line with the job's arguments and a tab.
    pub tag: bool,
    /// Print each job's command line on standard output before its output (`-v`).
    pub verbose: bool,
    /// Print each job's command line on standard error as it starts (`-t`).
    pub trace: bool,
    /// Kill a job that runs longer.
    pub timeout: Option<Timeout>,
    /// `--tagstring`: the tag, from this template (a tab follows it); overrides `tag`.
    pub tagstring: Option<Template>,
    /// `-u`: jobs write straight to this process's stdout and stderr, nothing captured.
    pub ungroup: bool,
    /// `--files`: each job's stdout goes to a file in the temporary directory, whose name is
    /// printed instead.
    pub files: bool,
    /// `--nice N`: jobs run at this niceness.
    pub nice: Option<i32>,
    /// `-j FILE`: the slot count is re-read from this file as jobs finish.
    pub jobs_file: Option<PathBuf>,
    /// `--pipe` / `--pipe-part`: each row is a block for the job's stdin, not arguments.
    pub pipe: Option<Pipe>,
    /// Tries per job, GNU's way: 1 is one try; 0 tries until the job succeeds.
    pub retries: u32,
    /// Stop early.
    pub halt: Option<Halt>,
    /// Wait this long between job starts.
    pub delay: Option<Duration>,
    /// Print the commands instead of running them.
    pub dry_run: bool,
    /// `--results`: save each job's output in files instead of printing it.
    pub results: Option<Results>,
    /// Log each finished job here (GNU parallel's format); `-` is standard output.
    pub joblog: Option<PathBuf>,
    /// Skip jobs an earlier joblog lists.
    pub resume: Resume,
    /// The signals that stop a job, each followed by the wait before the next
    /// (GNU's `--termseq`; its default TERM,200,TERM,100,TERM,50,KILL,25).
    pub term_seq: Vec<(i32, Duration)>,
    /// `-n0`: each input makes a job with no argument on its command line.
    pub no_args: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 1,
            keep_order: false,
            line_buffer: false,
            tag: false,
            verbose: false,
            trace: false,
            timeout: None,
            tagstring: None,
            ungroup: false,
            files: false,
            nice: None,
            jobs_file: None,
            pipe: None,
            retries: 1,
            halt: None,
            delay: None,
            dry_run: false,
            results: None,
            joblog: None,
            resume: Resume::No,
            term_seq: default_term_seq(),
            no_args: false,
        }
    }
}

/// GNU parallel's default `--termseq`: TERM, 200 ms, TERM, 100 ms, TERM, 50 ms, KILL, 25 ms.
pub fn default_term_seq() -> Vec<(i32, Duration)> {
    [
        (libc::SIGTERM, 200),
        (libc::SIGTERM, 100),
        (libc::SIGTERM, 50),
        (libc::SIGKILL, 25),
    ]
    .into_iter()
    .map(|(s, ms)| (s, Duration::from_millis(ms)))
    .collect()
}

/// `--grace D`: SIGTERM, then SIGKILL after D.
pub fn grace_term_seq(grace: Duration) -> Vec<(i32, Duration)> {
    vec![(libc::SIGTERM, grace), (libc::SIGKILL, Duration::ZERO)]
}

/// A `--termseq` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad --termseq `{0}`: signals and milliseconds in turn, e.g. TERM,200,TERM,100,KILL,25")]
pub struct TermSeqError(pub String);

/// Parses `--termseq SIG,MS,SIG,MS,...` (names with or without `SIG`, or numbers).
pub fn parse_term_seq(text: &str) -> Result<Vec<(i32, Duration)>, TermSeqError> {
    let err = || TermSeqError(text.to_string());
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    parts
        .chunks(2)
        .map(|pair| {
            let name = pair[0].trim_start_matches("SIG");
            let signal = match name {
                "TERM" => libc::SIGTERM,
                "KILL" => libc::SIGKILL,
                "INT" => libc::SIGINT,
                "HUP" => libc::SIGHUP,
                "QUIT" => libc::SIGQUIT,
                "USR1" => libc::SIGUSR1,
                "USR2" => libc::SIGUSR2,
                n => n
                    .parse()
                    .ok()
                    .filter(|s| (1..=64).contains(s))
                    .ok_or_else(err)?,
            };
            let wait = match pair.get(1) {
                Some(ms) => Duration::from_millis(ms.parse().map_err(|_| err())?),
                None => Duration::ZERO,
            };
            Ok((signal, wait))
        })
        .collect()
}

/// Where `--pipe` blocks come from: a row holds the block itself, or (`--pipe-part`) its
/// offset and length in the file, as decimal numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pipe {
    /// The row's one value is the block.
    Blocks,
    /// The row is `[offset, length]` in this file.
    Part(PathBuf),
}

/// A job's standard input with `--pipe`.
enum Feed<'a> {
    Bytes(&'a [u8]),
    Range(std::fs::File, u64, u64),
}

/// `--timeout`: a fixed time, or a share of the median run time of the jobs so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timeout {
    /// Kill a job that runs longer than this.
    After(Duration),
    /// `--timeout N%`: longer than N% of the median run time of the finished jobs.
    MedianPercent(f64),
}

impl Timeout {
    /// `--timeout N%`.
    pub fn percent(text: &str) -> Result<Timeout, String> {
        match text.strip_suffix('%').map(str::parse::<f64>) {
            Some(Ok(p)) if p.is_finite() && p > 0.0 => Ok(Timeout::MedianPercent(p)),
            _ => Err(format!(
                "bad --timeout `{text}`: a percentage is a positive number, e.g. 200%"
            )),
        }
    }
}

/// Where output goes; the library writes nothing else anywhere (except that `-u` lets the
/// jobs write to the process's own stdout and stderr).
pub struct Output {
    /// The jobs' standard output.
    pub stdout: Box<dyn Write + Send>,
    /// The jobs' standard error and conlab's warnings about jobs.
    pub stderr: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output")
    }
}

/// Set from a signal handler to stop the run: the signal's number.
#[derive(Debug, Default)]
pub struct Stop(AtomicI32);

impl Stop {
    /// Asks the run to stop because of `signal`.
    pub fn request(&self, signal: i32) {
        self.0.store(signal, Ordering::SeqCst);
    }

    /// The signal that stopped the run, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading the inputs failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The joblog could not be read or written.
    #[error("joblog {path}")]
    JobLog {
        /// The joblog's path.
        path: String,
        /// What the OS said.
        source: io::Error,
    },
    /// `--results DIR` cannot be written.
    #[error("--results {path}: cannot save output there")]
    Results {
        /// The directory.
        path: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The OS refused to start even one job slot.
    #[error("starting a job slot (a thread)")]
    Slot(#[source] io::Error),
    /// Writing output failed (a closed pipe: `conlab run ... | head`).
    #[error("writing output")]
    Output(#[source] io::Error),
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Jobs started.
    pub started: u64,
    /// Jobs that exited 0.
    pub succeeded: u64,
    /// Jobs that failed (after their retries), timed out or could not start.
    pub failed: u64,
    /// Jobs skipped because an earlier joblog lists them.
    pub skipped: u64,
    /// The exit status `--halt` decided (when it fired, or at the end of a run with one).
    pub halted: Option<i32>,
    /// The signal that interrupted the run.
    pub interrupted: Option<i32>,
    /// Slots the OS would not start (`-j` above what it allows): the run used fewer.
    pub slots_refused: Option<usize>,
}

impl Summary {
    /// GNU parallel's exit status: 0 all succeeded; 1-100 the number of failed jobs; 101
    /// more than 100 failed; with `--halt`, the status it gives; 128+N after signal N.
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted {
            return (128 + signal).clamp(0, 255) as u8;
        }
        if let Some(status) = self.halted {
            // Perl's exit(): the status modulo 256 (-1 is 255).
            return status.rem_euclid(256) as u8;
        }
        self.failed.min(101) as u8
    }
}

/// One finished attempt.
struct Finished {
    start: SystemTime,
    runtime: Duration,
    stdout: Spool,
    stderr: Spool,
    /// Bytes the job wrote to stdout (the joblog's Receive).
    received: u64,
    exitval: i32,
    signal: i32,
    timed_out: bool,
    /// Killed because the run stopped: not a result, not logged.
    stopped: bool,
}

impl Finished {
    fn ok(&self) -> bool {
        self.exitval == 0 && self.signal == 0 && !self.timed_out
    }
}

struct Running {
    pgid: i32,
    began: Instant,
    /// When the first stopping signal went.
    term_sent: Option<Instant>,
    /// Signals of the term sequence sent, and when the next is due.
    signals_sent: usize,
    next_signal: Option<Instant>,
    timed_out: bool,
}

#[derive(Default)]
struct Counters {
    started: u64,
    succeeded: u64,
    failed: u64,
    halted: Option<i32>,
}

/// A job's captured stdout and stderr; `None` for a job with nothing to deliver (skipped,
/// stopped, or already streamed).
type Captured = Option<(Spool, Spool)>;

#[derive(Default)]
struct Orderer {
    next: u64,
    pending: BTreeMap<u64, Captured>,
    /// With `-k`, joblog lines wait for their job's turn, as GNU writes them.
    log_lines: BTreeMap<u64, Entry>,
}

enum Log {
    File(Mutex<JobLog>),
    Stdout,
}

struct Shared<'a> {
    template: &'a Template,
    shell: &'a Shell,
    options: &'a Options,
    total: Option<u64>,
    output: Mutex<Output>,
    output_failed: Mutex<Option<io::Error>>,
    joblog: Option<Log>,
    joblog_failed: Mutex<Option<io::Error>>,
    counters: Mutex<Counters>,
    running: Mutex<HashMap<usize, Running>>,
    order: Mutex<Orderer>,
    stop: &'a Stop,
    /// No new job starts (halt, interrupt, or a closed output).
    stopping: AtomicBool,
    /// Running jobs are to be killed (halt now, interrupt).
    kill_all: AtomicBool,
    /// No more output at all: GNU's `wait_and_exit(255)` kills the jobs without printing.
    mute: AtomicBool,
    /// Slots waiting for a job: a new slot is started only when none is.
    idle: AtomicUsize,
    /// Jobs handed to the channel and not yet taken by a slot.
    queued: AtomicUsize,
    /// Jobs running, with `-j FILE` (its limit is enforced per job, not per slot).
    active: Mutex<usize>,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Programs already found on PATH: searching it again for every job costs one failed
    /// `execve` per PATH entry before the right one (8 here, ~10% of a `true` job).
    resolved: Mutex<HashMap<Value, Option<PathBuf>>>,
    /// `$PARALLEL_PID`.
    pid: String,
    /// Run times of the finished jobs, for `--timeout N%`; the median of them, in seconds.
    runtimes: Mutex<(Vec<f64>, Option<f64>)>,
    /// A `--results` table's header, written before its first row: whether it was, and it.
    table_header: Mutex<(bool, Option<Vec<u8>>)>,
    /// Slots allowed now (`-j FILE` changes it as jobs finish).
    limit: AtomicUsize,
    limit_changed: std::sync::Condvar,
}

/// Runs one job per row of `rows`, each line run by `shell` when it needs one.
pub fn run(
    template: &Template,
    shell: &Shell,
    rows: impl Iterator<Item = Row>,
    options: &Options,
    output: Output,
    stop: &Stop,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<Summary, RunError> {
    let joblog_error = |source, path: &PathBuf| RunError::JobLog {
        path: path.display().to_string(),
        source,
    };
    let file_log = options.joblog.as_ref().filter(|p| p.as_os_str() != "-");
    let skip: HashSet<u64> = match (file_log, options.resume) {
        (Some(path), Resume::Unfinished) => joblog::read(path)
            .map_err(|e| joblog_error(e, path))?
            .into_keys()
            .collect(),
        (Some(path), Resume::Failed) => joblog::read(path)
            .map_err(|e| joblog_error(e, path))?
            .into_iter()
            .filter(|(_, (exit, signal))| *exit == 0 && *signal == 0)
            .map(|(seq, _)| seq)
            .collect(),
        _ => HashSet::new(),
    };
    if let Some(results) = options.results.as_ref().filter(|_| !options.dry_run) {
        if let Some(dir) = results.root() {
            check_results_dir(&dir.to_path_buf())?;
        }
        if let Results::Table { path, .. } = results
            && path.as_os_str() != "-"
        {
            std::fs::File::create(path).map_err(|source| RunError::Results {
                path: path.display().to_string(),
                source,
            })?;
        }
    }
    let joblog = match &options.joblog {
        _ if options.dry_run => None,
        Some(path) if path.as_os_str() == "-" => Some(Log::Stdout),
        Some(path) => {
            let log = JobLog::open(path, options.resume != Resume::No)
                .map_err(|e| joblog_error(e, path))?;
            Some(Log::File(Mutex::new(log)))
        }
        None => None,
    };
    // A percentage of all jobs needs them all counted first, as GNU does.
    let mut rows: Box<dyn Iterator<Item = Row>> = Box::new(rows);
    let mut total = None;
    if options.halt.is_some_and(|h| h.needs_total()) {
        let all: Vec<Row> = rows.collect();
        total = Some(all.len() as u64);
        rows = Box::new(all.into_iter());
    }
    let shared = Shared {
        template,
        shell,
        options,
        total,
        output: Mutex::new(output),
        output_failed: Mutex::new(None),
        joblog,
        joblog_failed: Mutex::new(None),
        counters: Mutex::new(Counters::default()),
        running: Mutex::new(HashMap::new()),
        order: Mutex::new(Orderer {
            next: 1,
            ..Orderer::default()
        }),
        stop,
        stopping: AtomicBool::new(false),
        kill_all: AtomicBool::new(false),
        mute: AtomicBool::new(false),
        idle: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        active: Mutex::new(0),
        progress,
        resolved: Mutex::new(HashMap::new()),
        pid: std::process::id().to_string(),
        runtimes: Mutex::new((Vec::new(), None)),
        table_header: Mutex::new((false, None)),
        limit: AtomicUsize::new(options.jobs.max(1)),
        limit_changed: std::sync::Condvar::new(),
    };
    if matches!(shared.joblog, Some(Log::Stdout)) {
        shared.write(&joblog::header(), b"");
    }
    let mut skipped = 0;
    let mut input_error = None;
    let mut slot_error = None;
    let mut slots_refused = None;
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded::<(u64, Vec<Value>)>(1);
        let mut slots = Vec::new();
        let watchdog = scope.spawn(|| shared.watch(&finished));
        let mut first = true;
        for (seq, row) in (1u64..).zip(rows) {
            if shared.stop.signal().is_some() || shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            let args = match row {
                Ok(args) => args,
                Err(e) => {
                    if matches!(e, InputError::TooLong { .. }) {
                        // GNU exits at once there, killing the running jobs unprinted.
                        shared.mute.store(true, Ordering::SeqCst);
                        shared.stopping.store(true, Ordering::SeqCst);
                        shared.kill_all.store(true, Ordering::SeqCst);
                    }
                    input_error = Some(e);
                    break;
                }
            };
            if skip.contains(&seq) {
                skipped += 1;
                shared.deliver(seq, None);
                continue;
            }
            if options.dry_run {
                let mut command = template.line(shared.job_args(&args), seq, 1);
                command.push(b'\n');
                let mut line = shared.tag_for(&args, seq, 1).unwrap_or_default();
                line.extend_from_slice(&command);
                // GNU: `-t` still shows each line (untagged) on stderr, first.
                if options.trace {
                    shared.write(b"", &command);
                }
                shared.write(&line, b"");
                continue;
            }
            if let Some(delay) = options.delay.filter(|_| !first) {
                shared.sleep(delay);
            }
            first = false;
            // A new slot when no idle one is left for this job (idle slots may be about to
            // take the jobs already queued): never a job waiting while a slot is allowed.
            if shared.idle.load(Ordering::SeqCst) <= shared.queued.load(Ordering::SeqCst)
                && slots.len() < shared.limit.load(Ordering::SeqCst)
                && slots_refused.is_none()
            {
                let slot = slots.len() + 1;
                let (rx, shared) = (rx.clone(), &shared);
                let spawned = std::thread::Builder::new()
                    .name(format!("slot-{slot}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        loop {
                            shared.idle.fetch_add(1, Ordering::SeqCst);
                            let job = rx.recv();
                            shared.idle.fetch_sub(1, Ordering::SeqCst);
                            let Ok((seq, args)) = job else { break };
                            shared.queued.fetch_sub(1, Ordering::SeqCst);
                            shared.wait_for_turn();
                            shared.run_job(seq, &args, slot);
                            shared.turn_done();
                        }
                    });
                match spawned {
                    Ok(handle) => slots.push(handle),
                    Err(e) if slots.is_empty() => {
                        slot_error = Some(e);
                        break;
                    }
                    // The OS allows no more threads: run with the slots there are.
                    Err(_) => slots_refused = Some(options.jobs.saturating_sub(slots.len())),
                }
            }
            shared.queued.fetch_add(1, Ordering::SeqCst);
            if tx.send((seq, args)).is_err() {
                break;
            }
        }
        drop(tx);
        for slot in slots {
            let _ = slot.join();
        }
        finished.store(true, Ordering::SeqCst);
        let _ = watchdog.join();
    });
    if let Some(e) = slot_error {
        return Err(RunError::Slot(e));
    }
    if let Some(e) = input_error {
        return Err(e.into());
    }
    if let Some(e) = lock(&shared.joblog_failed).take() {
        let path = options.joblog.clone().unwrap_or_default();
        return Err(joblog_error(e, &path));
    }
    if let Some(e) = lock(&shared.output_failed).take() {
        return Err(RunError::Output(e));
    }
    let c = lock(&shared.counters);
    let halted = c.halted.or_else(|| {
        options
            .halt
            .map(|h| h.exit_at_end(c.failed, c.started.max(1)))
    });
    Ok(Summary {
        started: c.started,
        succeeded: c.succeeded,
        failed: c.failed,
        skipped,
        halted,
        interrupted: stop.signal(),
        slots_refused,
    })
}

impl Shared<'_> {
    /// With `-j FILE`: a job starts only while fewer than its current limit run.
    fn wait_for_turn(&self) {
        if self.options.jobs_file.is_none() {
            return;
        }
        let mut active = lock(&self.active);
        while *active >= self.limit.load(Ordering::SeqCst) {
            active = self
                .limit_changed
                .wait(active)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *active += 1;
    }

    fn turn_done(&self) {
        if self.options.jobs_file.is_some() {
            *lock(&self.active) -= 1;
            self.limit_changed.notify_all();
        }
    }

    /// After a job: the median for `--timeout N%`, and `-j FILE` read again.
    fn job_finished(&self, runtime: Duration) {
        if matches!(self.options.timeout, Some(Timeout::MedianPercent(_))) {
            let mut runtimes = lock(&self.runtimes);
            runtimes.0.push(runtime.as_secs_f64());
            let mut sorted = runtimes.0.clone();
            sorted.sort_by(f64::total_cmp);
            runtimes.1 = Some(sorted[(sorted.len() - 1) / 2]);
        }
        if let Some(file) = &self.options.jobs_file
            && let Ok(n) = crate::slots::slots_from_file(file, conlab_exec::available_cores())
        {
            let _active = lock(&self.active);
            self.limit.store(n, Ordering::SeqCst);
            self.limit_changed.notify_all();
        }
    }

    /// `--files`: the job's stdout and stderr into files of their own (as GNU, only the
    /// stdout file's name is printed).
    fn to_file(&self, stdout: &mut Spool, stderr: &mut Spool) {
        let saved = (|| {
            let (path, mut file) = crate::spool::named_temp_file("par", ".par")?;
            stdout.drain_to(&mut file)?;
            let (_, mut file) = crate::spool::named_temp_file("par", ".par")?;
            stderr.drain_to(&mut file)?;
            Ok::<_, io::Error>(path)
        })();
        match saved {
            Ok(path) => {
                let mut name = path.into_os_string().into_vec();
                name.push(b'\n');
                self.push_or_fail(stdout, &name);
            }
            Err(e) => {
                let note = format!("conlab: --files: {e}\n");
                self.push_or_fail(stderr, note.as_bytes());
            }
        }
    }
}

/// `--results DIR` must be a directory we can write, found out before any job runs.
fn check_results_dir(dir: &PathBuf) -> Result<(), RunError> {
    let error = |source| RunError::Results {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    let probe = dir.join(format!(".conlab-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(error)?;
    std::fs::remove_file(&probe).map_err(error)
}

impl Shared<'_> {
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && self.stop.signal().is_none() {
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
        }
    }

    /// `--tag` / `--tagstring`: the prefix of this job's lines, tab included.
    fn tag_for(&self, args: &[Value], seq: u64, slot: usize) -> Option<Vec<u8>> {
        match &self.options.tagstring {
            Some(template) => Some(template.line(Some(args), seq, slot)),
            None => self.options.tag.then(|| args.join(&b' ')),
        }
        .map(|mut tag| {
            tag.push(b'\t');
            tag
        })
    }

    /// The values a job's command line sees: none for `-n0`; with `--pipe`, one empty
    /// value (GNU: `{}` is `''`), since the row is the block.
    fn job_args<'v>(&self, args: &'v [Value]) -> Option<&'v [Value]> {
        if self.options.pipe.is_some() {
            return Some(&[]);
        }
        (!self.options.no_args).then_some(args)
    }

    fn run_job(&self, seq: u64, args: &[Value], slot: usize) {
        if self.stopping.load(Ordering::SeqCst) || self.stop.signal().is_some() {
            self.deliver(seq, None);
            return;
        }
        let prepared = self
            .template
            .prepare(self.job_args(args), seq, slot, self.shell);
        lock(&self.counters).started += 1;
        let tag = if self.options.pipe.is_some() {
            self.tag_for(&[], seq, slot)
        } else {
            self.tag_for(args, seq, slot)
        };
        let mut attempt = 0u32;
        let finished = loop {
            attempt = attempt.saturating_add(1);
            if self.options.trace {
                let mut line = prepared.line().to_vec();
                line.push(b'\n');
                self.write(b"", &line);
            }
            let f = self.execute(&prepared, args, seq, slot, tag.as_deref());
            let retries = self.options.retries;
            if f.ok()
                || f.stopped
                || (retries != 0 && attempt >= retries)
                || self.stopping.load(Ordering::SeqCst)
                || self.stop.signal().is_some()
            {
                break f;
            }
        };
        self.finish(seq, args, slot, &prepared, finished);
    }

    fn finish(&self, seq: u64, args: &[Value], slot: usize, prepared: &Prepared, mut f: Finished) {
        if f.stopped {
            // Killed by the stop: not a result. Its output so far is dropped, as is its line.
            self.deliver(seq, None);
            return;
        }
        if f.timed_out {
            // GNU's wording, which scripts may look for.
            let note =
                format!("conlab: Warning: This job was killed because it timed out:\n{prepared}\n");
            self.write(b"", note.as_bytes());
        }
        if self.options.files {
            self.to_file(&mut f.stdout, &mut f.stderr);
        }
        if let Some(results) = &self.options.results {
            self.save_results(results, seq, args, slot, prepared, &mut f);
        }
        if let Some(log) = &self.joblog {
            let entry = Entry {
                seq,
                start: f.start,
                runtime: f.runtime,
                received: f.received,
                exitval: f.exitval,
                signal: f.signal,
                command: prepared.line().to_vec(),
            };
            match log {
                // After the job's output and in its order, as GNU prints it.
                Log::Stdout => self.push_or_fail(&mut f.stdout, &joblog::line(&entry)),
                Log::File(_) if self.options.keep_order => {
                    lock(&self.order).log_lines.insert(seq, entry);
                }
                Log::File(_) => self.record(&entry),
            }
        }
        self.job_finished(f.runtime);
        let ok = f.ok();
        // GNU: `exitstatus or signal + 128`; a timed-out job's status is -1 (exit 255).
        let status = if f.timed_out {
            -1
        } else if f.signal != 0 {
            128 + f.signal
        } else {
            f.exitval.max(i32::from(!ok))
        };
        // With --line-buffer the spools hold only what waited for this job's turn (-k).
        self.deliver(seq, Some((f.stdout, f.stderr)));
        let mut c = lock(&self.counters);
        if ok {
            c.succeeded += 1;
        } else {
            c.failed += 1;
        }
        let done = c.succeeded + c.failed;
        if let Some(p) = self.progress {
            p(done);
        }
        let Some(halt) = self.options.halt else {
            return;
        };
        if c.halted.is_some() {
            return;
        }
        let Some(what) = halt.announces(ok) else {
            return;
        };
        let counted = match halt.count {
            crate::halt::Count::Fail => c.failed,
            crate::halt::Count::Success => c.succeeded,
            crate::halt::Count::Done => done,
        };
        let total = self.total.unwrap_or(c.started);
        let mut notes = format!("conlab: This job {what}:\n{prepared}\n");
        if halt.reached(counted, total) {
            c.halted = Some(halt.exit_when_fired(status, c.failed, total));
            self.stopping.store(true, Ordering::SeqCst);
            let running = c.started - done;
            if halt.when == When::Now {
                self.kill_all.store(true, Ordering::SeqCst);
            } else if running > 0 {
                notes.push_str(&format!(
                    "conlab: Starting no more jobs. Waiting for {running} jobs to finish.\n"
                ));
            }
        }
        drop(c);
        self.write(b"", notes.as_bytes());
    }

    /// `--results`: the output goes to files (or a table row) instead of the terminal.
    fn save_results(
        &self,
        results: &Results,
        seq: u64,
        args: &[Value],
        slot: usize,
        prepared: &Prepared,
        f: &mut Finished,
    ) {
        let (stdout, stderr) = match (f.stdout.to_vec(), f.stderr.to_vec()) {
            (Ok(out), Ok(err)) => (out, err),
            (Err(e), _) | (_, Err(e)) => {
                lock(&self.output_failed).get_or_insert(e);
                return;
            }
        };
        let start = f
            .start
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let record = Record {
            seq,
            args,
            stdout: &stdout,
            stderr: &stderr,
            log_fields: vec![
                seq.to_string(),
                ":".into(),
                format!("{start:.3}"),
                format!("{:.3}", f.runtime.as_secs_f64()),
                "0".into(),
                f.received.to_string(),
                f.exitval.to_string(),
                f.signal.to_string(),
            ],
            command: prepared.line(),
        };
        f.stdout = Spool::default();
        f.stderr = Spool::default();
        if let Results::Table { .. } = results {
            let mut header = lock(&self.table_header);
            if !header.0 && header.1.is_none() {
                let full = results.table_row(&record, true);
                let end = full.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
                header.1 = Some(full[..end].to_vec());
            }
            drop(header);
            self.push_or_fail(&mut f.stdout, &results.table_row(&record, false));
        } else if let Err(e) = results.save(&record, slot) {
            let note = format!("conlab: job {seq}: saving --results: {e}\n");
            self.write(b"", note.as_bytes());
        }
    }

    /// Adds to a job's output; delivered with it (also with `--line-buffer`, where the spool
    /// holds what was not streamed).
    fn push_or_fail(&self, spool: &mut Spool, data: &[u8]) {
        if let Err(e) = spool.push(data) {
            lock(&self.output_failed).get_or_insert(e);
        }
    }

    /// The job's process: `program` with the words' arguments, or the shell with the line.
    fn command(
        &self,
        program: Option<&PathBuf>,
        prepared: &Prepared,
        seq: u64,
        slot: usize,
    ) -> Command {
        let mut command = match (program, prepared) {
            (Some(path), Prepared::Exec { words, .. }) => {
                let mut c = Command::new(path);
                c.arg0(OsStr::from_bytes(&words[0]));
                c.args(words[1..].iter().map(|w| OsStr::from_bytes(w)));
                c
            }
            _ => {
                let mut c = Command::new(self.shell.path());
                c.arg("-c").arg(OsStr::from_bytes(prepared.line()));
                c
            }
        };
        let tmp = std::env::temp_dir().join(format!("par{}-{seq}", self.pid));
        command
            .env("PARALLEL_SEQ", seq.to_string())
            .env("PARALLEL_JOBSLOT", slot.to_string())
            .env("PARALLEL_PID", &self.pid)
            .env("PARALLEL_TMP", tmp)
            .env("PARALLEL_SSHLOGIN", ":")
            .env("PARALLEL_SSHHOST", ":")
            .stdin(if self.options.pipe.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            // Its own process group: a timeout or Ctrl-C reaches everything the job started.
            .process_group(0);
        if self.options.ungroup {
            command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        if let Some(nice) = self.options.nice {
            // SAFETY: the closure runs in the child between fork and exec and calls only
            // setpriority(2), which is async-signal-safe and touches no memory of ours.
            // Exercised by the `--nice` case of tests/run.rs.
            unsafe {
                command.pre_exec(move || {
                    if libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        command
    }

    fn execute(
        &self,
        prepared: &Prepared,
        args: &[Value],
        seq: u64,
        slot: usize,
        tag: Option<&[u8]>,
    ) -> Finished {
        let start = SystemTime::now();
        let began = Instant::now();
        // A program not on PATH, or one the kernel will not execute (a script without `#!`):
        // the shell runs it, or says why not, with its own words and exit status.
        let program = match prepared {
            Prepared::Exec { words, .. } if words[0].contains(&b'/') => {
                Some(PathBuf::from(OsStr::from_bytes(&words[0])))
            }
            Prepared::Exec { words, .. } => self.resolve(&words[0]),
            Prepared::Shell(_) => None,
        };
        let spawned = match self.command(program.as_ref(), prepared, seq, slot).spawn() {
            Err(_) if program.is_some() => self.command(None, prepared, seq, slot).spawn(),
            spawned => spawned,
        };
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let mut stderr = Spool::default();
                let _ = stderr
                    .push(format!("conlab: {}: {e}\n", self.shell.path().display()).as_bytes());
                return Finished {
                    start,
                    runtime: began.elapsed(),
                    stdout: Spool::default(),
                    stderr,
                    received: 0,
                    exitval: if e.kind() == io::ErrorKind::NotFound {
                        127
                    } else {
                        126
                    },
                    signal: 0,
                    timed_out: false,
                    stopped: false,
                };
            }
        };
        lock(&self.running).insert(
            slot,
            Running {
                pgid: child.id() as i32,
                began,
                term_sent: None,
                signals_sent: 0,
                next_signal: None,
                timed_out: false,
            },
        );
        let mut stdout = Spool::default();
        let mut stderr = Spool::default();
        if self.options.verbose {
            let mut line = Vec::new();
            tag_into(&mut line, prepared.line(), tag, &mut true);
            line.push(b'\n');
            if self.options.line_buffer {
                self.write(&line, b"");
            } else if let Err(e) = stdout.push(&line) {
                lock(&self.output_failed).get_or_insert(e);
            }
        }
        let feed = match (&self.options.pipe, args) {
            (Some(Pipe::Blocks), [block]) => Some(Feed::Bytes(block)),
            (Some(Pipe::Part(path)), [offset, len]) => {
                let number = |v: &[u8]| std::str::from_utf8(v).ok()?.parse::<u64>().ok();
                match (std::fs::File::open(path), number(offset), number(len)) {
                    (Ok(file), Some(o), Some(l)) => Some(Feed::Range(file, o, l)),
                    _ => None,
                }
            }
            _ => None,
        };
        let captured = if self.options.ungroup {
            Ok(0)
        } else {
            self.capture(&mut child, feed, seq, tag, &mut stdout, &mut stderr)
        };
        let received = *captured.as_ref().unwrap_or(&0);
        let waited = captured.and_then(|_| child.wait());
        let running = lock(&self.running).remove(&slot);
        let timed_out = running.as_ref().is_some_and(|r| r.timed_out);
        let status = match waited {
            Ok(status) => status,
            Err(e) => {
                let _ = stderr.push(format!("conlab: reading the job's output: {e}\n").as_bytes());
                let _ = child.kill();
                let _ = child.wait();
                std::process::ExitStatus::from_raw(1 << 8)
            }
        };
        // A job the stop signalled is not a result, unless it had finished its work anyway
        // (exit 0): it may have exited just before the signal, and must then be logged, or
        // `--resume` would run it twice.
        let stopped = !timed_out
            && !status.success()
            && running.as_ref().is_some_and(|r| r.term_sent.is_some());
        Finished {
            start,
            runtime: began.elapsed(),
            stdout,
            stderr,
            received,
            // GNU's joblog: 0 and the signal for a killed job, -1 for one it timed out.
            exitval: if timed_out {
                -1
            } else {
                status.code().unwrap_or(0)
            },
            signal: status.signal().unwrap_or(0),
            timed_out,
            stopped,
        }
    }

    /// Reads both pipes until they close, with `poll`, so neither fills up and stalls the
    /// job. Grouped output goes to the spools; `--line-buffer` output is written as it comes.
    fn capture(
        &self,
        child: &mut Child,
        mut feed: Option<Feed<'_>>,
        seq: u64,
        tag: Option<&[u8]>,
        stdout: &mut Spool,
        stderr: &mut Spool,
    ) -> io::Result<u64> {
        let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
            return Ok(0);
        };
        let mut received = 0u64;
        let mut stdin = child.stdin.take().filter(|_| feed.is_some());
        if let Some(pipe) = &stdin {
            set_nonblocking(pipe.as_raw_fd())?;
            grow_pipe(pipe.as_raw_fd());
        }
        // What is read from the file for `--pipe-part` and not yet written.
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0usize;
        let mut open = [true, true];
        let mut carry: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut at_line_start = [true, true];
        let mut buf = vec![0u8; 64 * 1024];
        let mut tagged = Vec::new();
        while open[0] || open[1] || stdin.is_some() {
            let mut fds = [
                libc::pollfd {
                    fd: stdin.as_ref().map_or(-1, |p| p.as_raw_fd()),
                    events: libc::POLLOUT,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if open[0] { out.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if open[1] { err.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of three pollfd structs that lives across the
            // call; a negative fd is ignored by poll(2). Exercised by every run test.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[0].revents != 0
                && let (Some(pipe), Some(source)) = (stdin.as_mut(), feed.as_mut())
            {
                match feed_some(pipe, source, &mut pending, &mut fed) {
                    Ok(true) => {}
                    // All written, or the job closed its stdin (`head -1`): no more.
                    Ok(false) | Err(_) => stdin = None,
                }
            }
            for (i, fd) in fds[1..].iter().enumerate() {
                if !open[i] || fd.revents == 0 {
                    continue;
                }
                let n = if i == 0 {
                    out.read(&mut buf)
                } else {
                    err.read(&mut buf)
                };
                let n = match n {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    open[i] = false;
                    continue;
                }
                if i == 0 {
                    received += n as u64;
                }
                tagged.clear();
                tag_into(&mut tagged, &buf[..n], tag, &mut at_line_start[i]);
                if self.options.line_buffer {
                    let spool = if i == 0 { &mut *stdout } else { &mut *stderr };
                    self.stream(seq, i, &tagged, &mut carry[i], spool)?;
                } else if i == 0 {
                    stdout.push(&tagged)?;
                } else {
                    stderr.push(&tagged)?;
                }
            }
        }
        if self.options.line_buffer {
            // The last line without a newline, and whatever waited for this job's turn.
            self.stream_end(seq, &mut carry, stdout, stderr);
        }
        Ok(received)
    }

    /// `--line-buffer`: writes the whole lines of `data` (with what was carried from the last
    /// read) in one write, or keeps them for later when `-k` says it is not this job's turn.
    fn stream(
        &self,
        seq: u64,
        stream: usize,
        data: &[u8],
        carry: &mut Vec<u8>,
        spool: &mut Spool,
    ) -> io::Result<()> {
        if self.options.keep_order && lock(&self.order).next != seq {
            return spool.push(data);
        }
        carry.extend_from_slice(data);
        let Some(last) = carry.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        if !spool.is_empty() {
            let mut earlier = Vec::new();
            spool.drain_to(&mut earlier)?;
            self.write_stream(stream, &earlier);
        }
        self.write_stream(stream, &carry[..=last]);
        carry.drain(..=last);
        Ok(())
    }

    fn stream_end(
        &self,
        seq: u64,
        carry: &mut [Vec<u8>; 2],
        stdout: &mut Spool,
        stderr: &mut Spool,
    ) {
        for (i, spool) in [stdout, stderr].into_iter().enumerate() {
            let _ = spool.push(&std::mem::take(&mut carry[i]));
            if !self.options.keep_order || lock(&self.order).next == seq {
                let mut all = Vec::new();
                if spool.drain_to(&mut all).is_ok() {
                    self.write_stream(i, &all);
                }
            }
        }
    }

    fn write_stream(&self, stream: usize, data: &[u8]) {
        if stream == 0 {
            self.write(data, b"");
        } else {
            self.write(b"", data);
        }
    }

    /// The full path of `program` on PATH, searched once per program name.
    fn resolve(&self, program: &[u8]) -> Option<PathBuf> {
        if program.contains(&b'/') {
            return None;
        }
        let mut cache = lock(&self.resolved);
        if let Some(found) = cache.get(program) {
            return found.clone();
        }
        let found = crate::shell::which(program);
        cache.insert(program.to_vec(), found.clone());
        found
    }

    /// Hands a finished job's output to the terminal: at once, or in input order with `-k`.
    /// With `--line-buffer` the output was streamed; the turn still passes in order.
    fn deliver(&self, seq: u64, output: Captured) {
        if self.mute.load(Ordering::SeqCst) {
            return;
        }
        if !self.options.keep_order {
            if let Some(out) = output {
                self.write_job(seq, out);
            }
            return;
        }
        let mut order = lock(&self.order);
        order.pending.insert(seq, output);
        loop {
            let next = order.next;
            let Some(ready) = order.pending.remove(&next) else {
                break;
            };
            if let Some(out) = ready {
                self.write_job(next, out);
            }
            if let Some(entry) = order.log_lines.remove(&next) {
                self.record(&entry);
            }
            order.next += 1;
        }
    }

    /// Writes one joblog line to the file; a failure stops the run.
    fn record(&self, entry: &Entry) {
        if let Some(Log::File(file)) = &self.joblog
            && let Err(e) = lock(file).record(entry)
        {
            lock(&self.joblog_failed).get_or_insert(e);
            self.stopping.store(true, Ordering::SeqCst);
        }
    }

    /// One job's whole output: its command line first with `-v`, stdout, then stderr.
    fn write_job(&self, _seq: u64, (mut out, mut err): (Spool, Spool)) {
        if let Some(Results::Table { path, .. }) = &self.options.results
            && !out.is_empty()
        {
            let mut row = {
                let mut header = lock(&self.table_header);
                header.0 = true;
                header.1.take().unwrap_or_default()
            };
            if let Err(e) = out.drain_to(&mut row) {
                self.output_failed_with(e);
            }
            let written = if path.as_os_str() == "-" {
                lock(&self.output).stdout.write_all(&row)
            } else {
                crate::results::append(path, &row)
            };
            if let Err(e) = written {
                self.output_failed_with(e);
            }
        }
        let mut output = lock(&self.output);
        let result = (|| {
            if !out.is_empty() {
                out.drain_to(&mut output.stdout)?;
                output.stdout.flush()?;
            }
            if !err.is_empty() {
                err.drain_to(&mut output.stderr)?;
                output.stderr.flush()?;
            }
            Ok::<(), io::Error>(())
        })();
        drop(output);
        if let Err(e) = result {
            self.output_failed_with(e);
        }
    }

    /// Writes in one piece, so jobs never interleave mid-line.
    fn write(&self, out: &[u8], err: &[u8]) {
        let mut output = lock(&self.output);
        let result = (|| {
            if !out.is_empty() {
                output.stdout.write_all(out)?;
                output.stdout.flush()?;
            }
            if !err.is_empty() {
                output.stderr.write_all(err)?;
                output.stderr.flush()?;
            }
            Ok::<(), io::Error>(())
        })();
        drop(output);
        if let Err(e) = result {
            self.output_failed_with(e);
        }
    }

    fn output_failed_with(&self, e: io::Error) {
        lock(&self.output_failed).get_or_insert(e);
        self.stopping.store(true, Ordering::SeqCst);
        self.kill_all.store(true, Ordering::SeqCst);
    }

    /// The watchdog: timeouts, and stopping every running job when the run is stopped.
    fn watch(&self, finished: &AtomicBool) {
        while !finished.load(Ordering::SeqCst) {
            if self.stop.signal().is_some() {
                self.stopping.store(true, Ordering::SeqCst);
                self.kill_all.store(true, Ordering::SeqCst);
            }
            let kill_all = self.kill_all.load(Ordering::SeqCst);
            let now = Instant::now();
            let limit = match self.options.timeout {
                Some(Timeout::After(d)) => Some(d),
                Some(Timeout::MedianPercent(p)) => lock(&self.runtimes)
                    .1
                    .map(|median| Duration::from_secs_f64(median * p / 100.0)),
                None => None,
            };
            for job in lock(&self.running).values_mut() {
                let overdue = limit.is_some_and(|l| now.duration_since(job.began) >= l);
                let seq = &self.options.term_seq;
                if job.term_sent.is_none() && (kill_all || overdue) {
                    job.timed_out = overdue && !kill_all;
                    job.term_sent = Some(now);
                    job.next_signal = Some(now);
                }
                if let Some(due) = job.next_signal
                    && now >= due
                    && let Some(&(signal, wait)) = seq.get(job.signals_sent)
                {
                    signal_group(job.pgid, signal);
                    job.signals_sent += 1;
                    job.next_signal = Some(now + wait);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: `kill` has no memory-safety preconditions; a negative pid names the process
    // group the job leads (`process_group(0)`). Exercised by the timeout and interrupt tests.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Makes a pipe's writes return at once when it is full, so that feeding a job's stdin never
/// stops the reading of its output.
fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a file descriptor we own (the job's stdin pipe), with integer
    // arguments only. Exercised by the --pipe tests.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks for a 1 MiB pipe (Linux's default `pipe-max-size`) instead of 64 KiB: a job
/// reading a block then wakes a sixteenth as often. Best effort: a smaller limit keeps the
/// pipe as it is.
fn grow_pipe(fd: i32) {
    // SAFETY: fcntl on a pipe we own, with an integer argument; failure changes nothing.
    // Exercised by the --pipe and --pipe-part tests.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// Writes what the pipe takes now; false when everything is written.
fn feed_some(
    pipe: &mut std::process::ChildStdin,
    source: &mut Feed<'_>,
    pending: &mut Vec<u8>,
    fed: &mut usize,
) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    loop {
        let chunk: &[u8] = match source {
            Feed::Bytes(data) => &data[*fed..],
            // A buffer the copying fallback has not written out yet goes first.
            Feed::Range(..) if *fed < pending.len() => &pending[*fed..],
            Feed::Range(file, offset, len) => {
                if *len == 0 {
                    return Ok(false);
                }
                // splice(2): the kernel moves the file's pages into the pipe, no copy here.
                let mut off = i64::try_from(*offset).unwrap_or(i64::MAX);
                let want = usize::try_from(*len).unwrap_or(usize::MAX).min(1 << 20);
                // SAFETY: both descriptors are open for the call (the File and the child's
                // stdin pipe); `off` is a valid i64 the kernel updates. Exercised by the
                // --pipe-part cases of tests/run.rs.
                let moved = unsafe {
                    libc::splice(
                        file.as_raw_fd(),
                        &mut off,
                        pipe.as_raw_fd(),
                        std::ptr::null_mut(),
                        want,
                        libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                    )
                };
                match moved {
                    0 => return Ok(false),
                    n if n > 0 => {
                        *offset += n as u64;
                        *len -= n as u64;
                        continue;
                    }
                    _ => {
                        let e = io::Error::last_os_error();
                        match e.kind() {
                            io::ErrorKind::WouldBlock => return Ok(true),
                            io::ErrorKind::Interrupted => continue,
                            // A file system without splice: copy through a buffer.
                            _ if e.raw_os_error() == Some(libc::EINVAL) => {
                                if *fed == pending.len() {
                                    pending.resize(want.min(256 * 1024), 0);
                                    let n = file.read_at(pending, *offset)?;
                                    if n == 0 {
                                        return Ok(false);
                                    }
                                    pending.truncate(n);
                                    *offset += n as u64;
                                    *len -= n as u64;
                                    *fed = 0;
                                }
                                &pending[*fed..]
                            }
                            _ => return Err(e),
                        }
                    }
                }
            }
        };
        if chunk.is_empty() {
            return Ok(false);
        }
        match pipe.write(chunk) {
            Ok(n) => *fed += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `--tag`: `data` with each line prefixed; `at_line_start` carries over between reads.
fn tag_into(out: &mut Vec<u8>, data: &[u8], tag: Option<&[u8]>, at_line_start: &mut bool) {
    let Some(tag) = tag else {
        out.extend_from_slice(data);
        return;
    };
    for piece in data.split_inclusive(|&b| b == b'\n') {
        if *at_line_start {
            out.extend_from_slice(tag);
        }
        out.extend_from_slice(piece);
        *at_line_start = piece.ends_with(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_start_every_line_even_across_reads() {
        let mut out = Vec::new();
        let mut start = true;
        tag_into(&mut out, b"a\nb", Some(b"T\t"), &mut start);
        tag_into(&mut out, b"c\nd\n", Some(b"T\t"), &mut start);
        assert_eq!(out, b"T\ta\nT\tbc\nT\td\n");
    }
}
