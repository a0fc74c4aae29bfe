//! The scheduler: `-j` slots, each a thread that starts one job at a time in its own process
//! group; output grouped per job (or streamed by line); `-k` order; joblog, retries, halt,
//! timeouts and interruption.
//!
//! Jobs are handed to the slots over a rendezvous channel, so the input is read only as fast
//! as slots free up: memory stays flat however many inputs stream in. A watchdog thread
//! enforces timeouts and stops: it sends SIGTERM to a job's whole process group (so a
//! `sh -c` and the grandchildren it started all go), then SIGKILL after a grace period.
//!
//! A job killed because the run was interrupted (or halted `now`) is *not* written to the
//! joblog: it did not finish, so `--resume` runs it again. Everything that finished is
//! logged, one flushed line per job, the moment it finishes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use conlab_exec::lock;

use crate::halt::{Count, Halt, When};
use crate::input::{InputError, Row};
use crate::joblog::{self, Entry, JobLog};
use crate::template::{Prepared, Template};

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
    /// Print each job's command line before its output (`-v`).
    pub verbose: bool,
    /// Kill a job that runs longer.
    pub timeout: Option<Duration>,
    /// Run a failing job up to this many times in all (1: no retry).
    pub retries: u32,
    /// Stop early.
    pub halt: Option<Halt>,
    /// Wait this long between job starts.
    pub delay: Option<Duration>,
    /// Print the commands instead of running them.
    pub dry_run: bool,
    /// Save each job's stdout and stderr under `DIR/SEQ/`.
    pub results: Option<PathBuf>,
    /// Log each finished job here (GNU parallel's format).
    pub joblog: Option<PathBuf>,
    /// Skip jobs an earlier joblog lists.
    pub resume: Resume,
    /// Between SIGTERM and SIGKILL when a job is stopped.
    pub grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 1,
            keep_order: false,
            line_buffer: false,
            tag: false,
            verbose: false,
            timeout: None,
            retries: 1,
            halt: None,
            delay: None,
            dry_run: false,
            results: None,
            joblog: None,
            resume: Resume::No,
            grace: Duration::from_secs(2),
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
    /// The halt policy fired; the exit value of the job that made it fire.
    pub halted: Option<i32>,
    /// The signal that interrupted the run.
    pub interrupted: Option<i32>,
}

impl Summary {
    /// GNU parallel's exit status: 0 all succeeded; 1-100 the number of failed jobs; 101
    /// more than 100 failed; with `--halt ...,fail`, the failing job's exit status; 128+N
    /// after signal N.
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
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exitval: i32,
    signal: i32,
    timed_out: bool,
    /// Killed because the run stopped: not a result, not logged.
    stopped: bool,
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

/// A job's captured stdout and stderr; `None` for a job that printed nothing to deliver
/// (skipped, stopped, or already streamed).
type Captured = Option<(Vec<u8>, Vec<u8>)>;

#[derive(Default)]
struct Orderer {
    next: u64,
    pending: BTreeMap<u64, Captured>,
}

struct Shared<'a> {
    template: &'a Template,
    options: &'a Options,
    output: Mutex<Output>,
    output_failed: Mutex<Option<io::Error>>,
    joblog: Option<Mutex<JobLog>>,
    joblog_failed: Mutex<Option<io::Error>>,
    counters: Mutex<Counters>,
    running: Mutex<HashMap<usize, Running>>,
    order: Mutex<Orderer>,
    stop: &'a Stop,
    /// No new job starts (halt, interrupt, or a closed output).
    stopping: AtomicBool,
    /// Running jobs are to be killed (halt now, interrupt).
    kill_all: AtomicBool,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Programs already found on PATH: searching it again for every job costs one failed
    /// `execve` per PATH entry before the right one (8 here, ~10% of a `true` job).
    resolved: Mutex<HashMap<String, Option<PathBuf>>>,
}

/// Runs one job per row of `rows`.
pub fn run(
    template: &Template,
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
    let skip: HashSet<u64> = match (&options.joblog, options.resume) {
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
    let joblog = match &options.joblog {
        Some(path) if !options.dry_run => {
            let log = JobLog::open(path, options.resume != Resume::No)
                .map_err(|e| joblog_error(e, path))?;
            Some(Mutex::new(log))
        }
        _ => None,
    };
    let shared = Shared {
        template,
        options,
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
        progress,
        resolved: Mutex::new(HashMap::new()),
    };
    let mut skipped = 0;
    let mut input_error = None;
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Room for one job per slot: a slot that finishes takes its next job at once instead of
        // waking the dispatcher (a cross-core wake costs ~35 us here); memory stays flat.
        let (tx, rx) = crossbeam_channel::bounded::<(u64, Vec<String>)>(options.jobs.max(1));
        let slots: Vec<_> = (1..=options.jobs.max(1))
            .map(|slot| {
                let (rx, shared) = (rx.clone(), &shared);
                scope.spawn(move || {
                    for (seq, args) in rx.iter() {
                        shared.run_job(seq, &args, slot);
                    }
                })
            })
            .collect();
        drop(rx);
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
                let line = format!("{}\n", template.prepare(&args, seq, 1).line());
                shared.write(line.as_bytes(), b"");
                continue;
            }
            if let Some(delay) = options.delay.filter(|_| !first) {
                shared.sleep(delay);
            }
            first = false;
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
    Ok(Summary {
        started: c.started,
        succeeded: c.succeeded,
        failed: c.failed,
        skipped,
        halted: c.halted,
        interrupted: stop.signal(),
    })
}

impl Shared<'_> {
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && self.stop.signal().is_none() {
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
        }
    }

    fn run_job(&self, seq: u64, args: &[String], slot: usize) {
        if self.stopping.load(Ordering::SeqCst) || self.stop.signal().is_some() {
            self.deliver(seq, None);
            return;
        }
        let prepared = self.template.prepare(args, seq, slot);
        lock(&self.counters).started += 1;
        let tag = self.options.tag.then(|| format!("{}\t", args.join(" ")));
        if self.options.verbose && self.options.line_buffer {
            self.write(format!("{prepared}\n").as_bytes(), b"");
        }
        let mut attempt = 0;
        let finished = loop {
            attempt += 1;
            let f = self.execute(&prepared, slot, tag.as_deref());
            let ok = f.exitval == 0 && f.signal == 0 && !f.timed_out;
            if ok
                || f.stopped
                || attempt >= self.options.retries.max(1)
                || self.stopping.load(Ordering::SeqCst)
            {
                break f;
            }
        };
        self.finish(seq, &prepared, tag.as_deref(), finished);
    }

    fn finish(&self, seq: u64, prepared: &Prepared, tag: Option<&str>, f: Finished) {
        if f.stopped {
            // Killed by the stop: not a result. Its output so far is dropped, as is its line.
            self.deliver(seq, None);
            return;
        }
        let mut stderr = f.stderr;
        if f.timed_out {
            let timeout = self.options.timeout.unwrap_or_default();
            stderr.extend_from_slice(
                format!(
                    "conlab: job {seq} killed after its --timeout of {timeout:?}: {prepared}\n"
                )
                .as_bytes(),
            );
        }
        let mut stdout = Vec::new();
        if self.options.verbose && !self.options.line_buffer {
            stdout.extend_from_slice(format!("{prepared}\n").as_bytes());
        }
        stdout.extend_from_slice(&tagged(&f.stdout, tag));
        let stderr = tagged(&stderr, tag);
        if let Some(dir) = &self.options.results {
            let dir = dir.join(seq.to_string());
            let _ = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("stdout"), &f.stdout))
                .and_then(|()| std::fs::write(dir.join("stderr"), &stderr));
        }
        if let Some(log) = &self.joblog {
            let entry = Entry {
                seq,
                start: f.start,
                runtime: f.runtime,
                received: (f.stdout.len() + stderr.len()) as u64,
                exitval: f.exitval,
                signal: f.signal,
                command: prepared.line(),
            };
            if let Err(e) = lock(log).record(&entry) {
                lock(&self.joblog_failed).get_or_insert(e);
                self.stopping.store(true, Ordering::SeqCst);
            }
        }
        self.deliver(seq, Some((stdout, stderr)));
        let ok = f.exitval == 0 && f.signal == 0 && !f.timed_out;
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
        if let Some(halt) = self.options.halt
            && c.halted.is_none()
        {
            let (counted, fired_by) = match halt.count {
                Count::Fail => (c.failed, !ok),
                Count::Success => (c.succeeded, ok),
                Count::Done => (done, true),
            };
            if fired_by && halt.reached(counted, c.started) {
                c.halted = Some(if halt.count == Count::Fail {
                    f.exitval.max(1)
                } else {
                    0
                });
                self.stopping.store(true, Ordering::SeqCst);
                if halt.when == When::Now {
                    self.kill_all.store(true, Ordering::SeqCst);
                }
                drop(c);
                // GNU parallel's wording, which scripts may look for.
                let what = if ok { "succeeded" } else { "failed" };
                let why = format!("conlab: This job {what}:\n{prepared}\n");
                self.write(b"", why.as_bytes());
            }
        }
    }

    fn execute(&self, prepared: &Prepared, slot: usize, tag: Option<&str>) -> Finished {
        let mut command = match prepared {
            Prepared::Exec(words) => {
                let mut c = match self.resolve(&words[0]) {
                    Some(path) => {
                        let mut c = Command::new(path);
                        c.arg0(&words[0]);
                        c
                    }
                    None => Command::new(&words[0]),
                };
                c.args(&words[1..]);
                c
            }
            Prepared::Shell(line) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(line);
                c
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout or Ctrl-C reaches everything the job started.
            .process_group(0);
        let start = SystemTime::now();
        let began = Instant::now();
        let spawned = match (command.spawn(), prepared) {
            // Not a program on PATH: let `sh` say so (exit 127), as GNU parallel's would.
            (Err(e), Prepared::Exec(_)) if e.kind() == io::ErrorKind::NotFound => {
                return self.execute(&Prepared::Shell(prepared.line()), slot, tag);
            }
            (spawned, _) => spawned,
        };
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let program = match prepared {
                    Prepared::Exec(words) => words[0].clone(),
                    Prepared::Shell(_) => "sh".into(),
                };
                let (code, what) = match e.kind() {
                    io::ErrorKind::NotFound => (127, "command not found".to_string()),
                    io::ErrorKind::PermissionDenied => (126, "permission denied".to_string()),
                    _ => (126, e.to_string()),
                };
                return Finished {
                    start,
                    runtime: began.elapsed(),
                    stdout: Vec::new(),
                    stderr: format!("conlab: {program}: {what}\n").into_bytes(),
                    exitval: code,
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
        let waited = if self.options.line_buffer {
            self.stream(child, tag)
        } else {
            child
                .wait_with_output()
                .map(|o| (o.status, o.stdout, o.stderr))
        };
        let running = lock(&self.running).remove(&slot);
        let timed_out = running.as_ref().is_some_and(|r| r.timed_out);
        let stopped = !timed_out && running.as_ref().is_some_and(|r| r.term_sent.is_some());
        let (status, stdout, stderr) = match waited {
            Ok(v) => v,
            Err(e) => (
                std::process::ExitStatus::from_raw(1 << 8),
                Vec::new(),
                format!("conlab: waiting for the job: {e}\n").into_bytes(),
            ),
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

    /// The full path of `program` on PATH, searched once per program name.
    fn resolve(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            return None;
        }
        let mut cache = lock(&self.resolved);
        if let Some(found) = cache.get(program) {
            return found.clone();
        }
        use std::os::unix::fs::PermissionsExt;
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| {
                    candidate
                        .metadata()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
        });
        cache.insert(program.to_string(), found.clone());
        found
    }

    /// `--line-buffer`: copy whole lines to the output as they arrive; stderr on a helper
    /// thread so that neither pipe can fill up and stall the job.
    fn stream(
        &self,
        mut child: Child,
        tag: Option<&str>,
    ) -> io::Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return child.wait().map(|s| (s, Vec::new(), Vec::new()));
        };
        let copy = |pipe: Box<dyn Read + Send>, to_stderr: bool| -> Vec<u8> {
            let mut all = Vec::new();
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let shown = tagged(&line, tag);
                if to_stderr {
                    self.write(b"", &shown)
                } else {
                    self.write(&shown, b"")
                }
                all.append(&mut line);
            }
            all
        };
        let (stdout, stderr) = std::thread::scope(|s| {
            let errs = s.spawn(|| copy(Box::new(err), true));
            let outs = copy(Box::new(out), false);
            (outs, errs.join().unwrap_or_default())
        });
        child.wait().map(|status| (status, stdout, stderr))
    }

    /// Hands a finished job's output to the terminal: at once, or in input order with `-k`.
    fn deliver(&self, seq: u64, output: Captured) {
        let streamed = self.options.line_buffer;
        if !self.options.keep_order {
            if let Some((out, err)) = output.filter(|_| !streamed) {
                self.write(&out, &err);
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
            order.next += 1;
            if let Some((out, err)) = ready.filter(|_| !streamed) {
                self.write(&out, &err);
            }
        }
    }

    /// Writes one job's output in one piece, so jobs never interleave mid-line.
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
        if let Err(e) = result {
            lock(&self.output_failed).get_or_insert(e);
            self.stopping.store(true, Ordering::SeqCst);
            self.kill_all.store(true, Ordering::SeqCst);
        }
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

/// `--tag`: each line prefixed.
fn tagged(bytes: &[u8], tag: Option<&str>) -> Vec<u8> {
    let Some(tag) = tag else {
        return bytes.to_vec();
    };
    let mut out = Vec::with_capacity(bytes.len() + 16);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(line);
    }
    out
}
