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
use std::os::unix::ffi::OsStrExt;
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
    pub timeout: Option<Duration>,
    /// Tries per job, GNU's way: 1 is one try; 0 tries until the job succeeds.
    pub retries: u32,
    /// Stop early.
    pub halt: Option<Halt>,
    /// Wait this long between job starts.
    pub delay: Option<Duration>,
    /// Print the commands instead of running them.
    pub dry_run: bool,
    /// Save each job's stdout and stderr under `DIR/SEQ/`.
    pub results: Option<PathBuf>,
    /// Log each finished job here (GNU parallel's format); `-` is standard output.
    pub joblog: Option<PathBuf>,
    /// Skip jobs an earlier joblog lists.
    pub resume: Resume,
    /// Between SIGTERM and SIGKILL when a job is stopped.
    pub grace: Duration,
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
            retries: 1,
            halt: None,
            delay: None,
            dry_run: false,
            results: None,
            joblog: None,
            resume: Resume::No,
            grace: Duration::from_secs(2),
            no_args: false,
        }
    }
}

/// Where output goes; the library writes nothing else anywhere.
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
            return status.clamp(0, 255) as u8;
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
    deadline: Option<Instant>,
    term_sent: Option<Instant>,
    kill_sent: bool,
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
    /// Slots waiting for a job: a new slot is started only when none is.
    idle: AtomicUsize,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Programs already found on PATH: searching it again for every job costs one failed
    /// `execve` per PATH entry before the right one (8 here, ~10% of a `true` job).
    resolved: Mutex<HashMap<Value, Option<PathBuf>>>,
    /// `$PARALLEL_PID`.
    pid: String,
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
    if let Some(dir) = options.results.as_ref().filter(|_| !options.dry_run) {
        check_results_dir(dir)?;
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
            pending: BTreeMap::new(),
        }),
        stop,
        stopping: AtomicBool::new(false),
        kill_all: AtomicBool::new(false),
        idle: AtomicUsize::new(0),
        progress,
        resolved: Mutex::new(HashMap::new()),
        pid: std::process::id().to_string(),
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
                let mut line = template.line(shared.job_args(&args), seq, 1);
                line.push(b'\n');
                shared.write(&line, b"");
                continue;
            }
            if let Some(delay) = options.delay.filter(|_| !first) {
                shared.sleep(delay);
            }
            first = false;
            if shared.idle.load(Ordering::SeqCst) == 0
                && slots.len() < options.jobs.max(1)
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
                            shared.run_job(seq, &args, slot);
                        }
                    });
                match spawned {
                    Ok(handle) => slots.push(handle),
                    Err(e) if slots.is_empty() => {
                        slot_error = Some(e);
                        break;
                    }
                    // The OS allows no more threads: run with the slots there are.
                    Err(_) => slots_refused = Some(options.jobs - slots.len()),
                }
            }
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

    fn job_args<'v>(&self, args: &'v [Value]) -> Option<&'v [Value]> {
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
        let tag = self.options.tag.then(|| {
            let mut tag = args.join(&b' ');
            tag.push(b'\t');
            tag
        });
        let mut attempt = 0u32;
        let finished = loop {
            attempt = attempt.saturating_add(1);
            if self.options.trace {
                let mut line = prepared.line().to_vec();
                line.push(b'\n');
                self.write(b"", &line);
            }
            let f = self.execute(&prepared, seq, slot, tag.as_deref());
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
        self.finish(seq, &prepared, finished);
    }

    fn finish(&self, seq: u64, prepared: &Prepared, mut f: Finished) {
        if f.stopped {
            // Killed by the stop: not a result. Its output so far is dropped, as is its line.
            self.deliver(seq, None);
            return;
        }
        if f.timed_out {
            let timeout = self.options.timeout.unwrap_or_default();
            let note = format!(
                "conlab: job {seq} killed after its --timeout of {timeout:?}: {prepared}\n"
            );
            self.push_or_fail(&mut f.stderr, note.as_bytes());
        }
        if let Some(dir) = &self.options.results {
            let dir = dir.join(seq.to_string());
            let saved = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("stdout"), f.stdout.to_vec()?))
                .and_then(|()| std::fs::write(dir.join("stderr"), f.stderr.to_vec()?));
            if let Err(e) = saved {
                let note = format!(
                    "conlab: job {seq}: saving --results in {}: {e}\n",
                    dir.display()
                );
                self.push_or_fail(&mut f.stderr, note.as_bytes());
            }
        }
        if let Some(log) = &self.joblog {
            let entry = Entry {
                seq,
                start: f.start,
                runtime: f.runtime,
                received: f.stdout.len() + f.stderr.len(),
                exitval: f.exitval,
                signal: f.signal,
                command: prepared.line().to_vec(),
            };
            match log {
                Log::Stdout => self.write(&joblog::line(&entry), b""),
                Log::File(file) => {
                    if let Err(e) = lock(file).record(&entry) {
                        lock(&self.joblog_failed).get_or_insert(e);
                        self.stopping.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
        let ok = f.ok();
        let status = if f.signal != 0 {
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

    fn push_or_fail(&self, spool: &mut Spool, data: &[u8]) {
        if self.options.line_buffer {
            self.write(b"", data);
        } else if let Err(e) = spool.push(data) {
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
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout or Ctrl-C reaches everything the job started.
            .process_group(0);
        command
    }

    fn execute(&self, prepared: &Prepared, seq: u64, slot: usize, tag: Option<&[u8]>) -> Finished {
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
                deadline: self.options.timeout.map(|t| began + t),
                term_sent: None,
                kill_sent: false,
                timed_out: false,
            },
        );
        let mut stdout = Spool::default();
        let mut stderr = Spool::default();
        if self.options.verbose {
            let mut line = prepared.line().to_vec();
            line.push(b'\n');
            if self.options.line_buffer {
                self.write(&line, b"");
            } else if let Err(e) = stdout.push(&line) {
                lock(&self.output_failed).get_or_insert(e);
            }
        }
        let captured = self.capture(&mut child, seq, tag, &mut stdout, &mut stderr);
        let waited = captured.and_then(|()| child.wait());
        let running = lock(&self.running).remove(&slot);
        let timed_out = running.as_ref().is_some_and(|r| r.timed_out);
        let stopped = !timed_out && running.as_ref().is_some_and(|r| r.term_sent.is_some());
        let status = match waited {
            Ok(status) => status,
            Err(e) => {
                let _ = stderr.push(format!("conlab: reading the job's output: {e}\n").as_bytes());
                let _ = child.kill();
                let _ = child.wait();
                std::process::ExitStatus::from_raw(1 << 8)
            }
        };
        Finished {
            start,
            runtime: began.elapsed(),
            stdout,
            stderr,
            exitval: status.code().unwrap_or(-1),
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
        seq: u64,
        tag: Option<&[u8]>,
        stdout: &mut Spool,
        stderr: &mut Spool,
    ) -> io::Result<()> {
        let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
            return Ok(());
        };
        let mut open = [true, true];
        let mut carry: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut at_line_start = [true, true];
        let mut buf = vec![0u8; 64 * 1024];
        let mut tagged = Vec::new();
        while open[0] || open[1] {
            let mut fds = [
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
            // SAFETY: `fds` is a valid array of two pollfd structs that lives across the
            // call; a negative fd is ignored by poll(2). Exercised by every run test.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for (i, fd) in fds.iter().enumerate() {
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
        Ok(())
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
            order.next += 1;
        }
    }

    /// One job's whole output: its command line first with `-v`, stdout, then stderr.
    fn write_job(&self, _seq: u64, (mut out, mut err): (Spool, Spool)) {
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
            for job in lock(&self.running).values_mut() {
                let overdue = job.deadline.is_some_and(|d| now >= d);
                if job.term_sent.is_none() && (kill_all || overdue) {
                    job.timed_out = overdue && !kill_all;
                    signal_group(job.pgid, libc::SIGTERM);
                    job.term_sent = Some(now);
                } else if let Some(sent) = job.term_sent
                    && !job.kill_sent
                    && now.duration_since(sent) >= self.options.grace
                {
                    signal_group(job.pgid, libc::SIGKILL);
                    job.kill_sent = true;
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
