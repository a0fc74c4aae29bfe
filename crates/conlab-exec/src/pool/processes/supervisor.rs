//! The supervisor thread of one worker slot: starts the worker process, feeds it task frames
//! up to a window sized from its measured service time, and when it dies fails the task it
//! was running, re-sends the ones behind it, and starts a replacement (README.md, "Failure
//! rules").

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};

use super::completion::Pending;
use super::reader::{Link, read_replies};
use super::worker::WORKER_ENV;
use super::{Outgoing, Shared};
use crate::error::Error;
use crate::sync::lock;

/// How long a new worker may take to say hello before the pool gives up on it.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// How much work (by the measured service time) a supervisor keeps queued in one worker's
/// pipe. Pipelining only pays for short tasks: 64 no-op tasks hide the ~70 us pipe round
/// trip, while 64 tasks of 16 ms each would sit in one worker's pipe as another worker idles
/// (the first version did exactly that: 1.23x instead of 1.9x on the lecture's prime sums).
pub(super) const QUEUED_WORK_NS: u64 = 1_000_000;

/// What a worker's reader thread tells its supervisor.
pub(super) enum Event {
    Hello {
        generation: u64,
        result: Result<(), String>,
    },
    /// Replies arrived while the supervisor waited for room in the window.
    Credit,
    /// The worker's stdout closed: it exited or was killed.
    Died { generation: u64 },
}

pub(super) type InFlight = Arc<Mutex<VecDeque<Pending>>>;

/// What became of a worker after an event.
enum Fate {
    /// It lives on: keep feeding it.
    Alive,
    /// It died and its running task was failed; `replacement` is the new worker, or `None`
    /// when none could be started (then tasks fail with the reason until one can).
    Died { replacement: Option<Worker> },
}

/// One live worker process.
struct Worker {
    process: Child,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
    generation: u64,
    sent: u64,
}

/// Owns one worker slot: starts the process, feeds it, replaces it when it dies.
pub(super) struct Supervisor {
    shared: Arc<Shared>,
    index: usize,
    in_flight: InFlight,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    credit_wanted: Arc<AtomicBool>,
    /// The worker's recent service time per task, in ns (0: not measured yet).
    service_ns: Arc<AtomicU64>,
    generation: u64,
    resend: VecDeque<Pending>,
    /// Why workers cannot be started, once starting one has failed: tasks fail with it.
    broken: Option<String>,
}

impl Supervisor {
    pub(super) fn run(shared: Arc<Shared>, index: usize, ready: Sender<Result<(), Error>>) {
        let (events_tx, events) = crossbeam_channel::unbounded();
        let mut s = Supervisor {
            shared,
            index,
            in_flight: Arc::new(Mutex::new(VecDeque::new())),
            events_tx,
            events,
            credit_wanted: Arc::new(AtomicBool::new(false)),
            service_ns: Arc::new(AtomicU64::new(0)),
            generation: 0,
            resend: VecDeque::new(),
            broken: None,
        };
        let worker = match s.start() {
            Ok(w) => {
                let _ = ready.send(Ok(()));
                Some(w)
            }
            Err(e) => {
                let _ = ready.send(Err(Error::Worker(e.clone())));
                s.broken = Some(e);
                None
            }
        };
        s.serve(worker);
    }

    fn start(&mut self) -> Result<Worker, String> {
        self.generation += 1;
        let generation = self.generation;
        let shared = self.shared.clone();
        let program = &shared.program;
        let mut command = Command::new(&program.program);
        // This supervisor thread lives as long as its worker: if the pool's process dies
        // (Ctrl-C, SIGKILL), the worker goes with it instead of finishing its task alone.
        crate::die_with_parent(&mut command, libc::SIGKILL);
        let mut process = command
            .args(&program.args)
            .env(WORKER_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting worker `{}`: {e}", program.program.display()))?;
        self.shared.spawned.fetch_add(1, Ordering::Relaxed);
        let stdin = process.stdin.take();
        let stdout = process.stdout.take();
        let reader = stdout.map(|out| {
            let link = Link {
                generation,
                in_flight: self.in_flight.clone(),
                events: self.events_tx.clone(),
                credit_wanted: self.credit_wanted.clone(),
                service_ns: self.service_ns.clone(),
            };
            std::thread::spawn(move || read_replies(out, &link))
        });
        let mut worker = Worker {
            process,
            stdin,
            reader,
            generation,
            sent: 0,
        };
        let hello = loop {
            match self.events.recv_timeout(HELLO_TIMEOUT) {
                Ok(Event::Hello {
                    generation: g,
                    result,
                }) if g == generation => break result,
                Ok(Event::Died { generation: g }) if g == generation => {
                    break Err("it exited before saying hello".into());
                }
                Ok(_) => continue,
                Err(_) => break Err(format!("it did not say hello within {HELLO_TIMEOUT:?}")),
            }
        };
        if let Err(why) = hello {
            let _ = worker.process.kill();
            self.reap(&mut worker);
            return Err(format!(
                "worker `{}` does not speak the conlab worker protocol ({why}); its `main` must \
                 call `conlab_exec::processes::serve_if_worker` first",
                program.program.display()
            ));
        }
        lock(&self.shared.pids)[self.index] = worker.process.id();
        Ok(worker)
    }

    /// Waits for the process and its reader thread.
    fn reap(&mut self, worker: &mut Worker) -> std::process::ExitStatus {
        worker.stdin = None;
        let status = worker
            .process
            .wait()
            .unwrap_or_else(|_| std::process::ExitStatus::from_raw(0));
        if let Some(reader) = worker.reader.take() {
            let _ = reader.join();
        }
        lock(&self.shared.pids)[self.index] = 0;
        status
    }

    /// How many tasks to keep in the worker's pipe: ~[`QUEUED_WORK_NS`] of work, at least
    /// one, at most the configured window.
    fn window(&self) -> usize {
        let service = self.service_ns.load(Ordering::Relaxed);
        if service == 0 {
            return 1;
        }
        ((QUEUED_WORK_NS / service) as usize).clamp(1, self.shared.window)
    }

    fn serve(mut self, mut worker: Option<Worker>) {
        let max = self.shared.max_tasks_per_child.unwrap_or(u64::MAX);
        let mut stopping = false;
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            let Some(w) = worker.as_mut() else {
                // No worker can be started: fail every task, keep draining until stopped.
                if !self.fail_while_broken() {
                    return;
                }
                worker = self.restart_after_broken();
                continue;
            };
            let in_flight = lock(&self.in_flight).len();
            let window = self.window();
            // Tasks a crash left to re-send are still this supervisor's to run, stopping or
            // not: shutdown runs what was queued.
            let retire = (stopping && self.resend.is_empty()) || w.sent >= max;
            if retire {
                if in_flight > 0 {
                    self.credit_wanted.store(true, Ordering::Release);
                    if lock(&self.in_flight).is_empty() {
                        continue;
                    }
                    if let Fate::Died { replacement } = self.on_event(w) {
                        worker = replacement;
                    }
                    continue;
                }
                let mut retired = worker.take().expect("checked above");
                retired.stdin = None;
                self.wait_for_exit(&mut retired);
                if stopping {
                    return;
                }
                worker = self.start_or_break();
                continue;
            }
            let room = window
                .saturating_sub(in_flight)
                .min((max - w.sent) as usize);
            if room == 0 {
                self.credit_wanted.store(true, Ordering::Release);
                if lock(&self.in_flight).len() < self.window() {
                    continue;
                }
                if let Fate::Died { replacement } = self.on_event(w) {
                    worker = replacement;
                }
                continue;
            }
            buf.clear();
            let mut taken = 0;
            while taken < room {
                let Some(p) = self.resend.pop_front() else {
                    break;
                };
                taken += self.send(w, p, &mut buf);
            }
            if taken == 0 && buf.is_empty() && stopping {
                // Only re-sends were left, and they were cancelled meanwhile: nothing to send,
                // and the queue is no longer ours to read (its next Stop is another's).
                continue;
            }
            if taken == 0 && buf.is_empty() {
                select! {
                    recv(self.shared.receiver) -> msg => match msg {
                        Ok(Outgoing::Task(p)) => taken += self.send(w, p, &mut buf),
                        Ok(Outgoing::Stop) | Err(_) => { stopping = true; continue; }
                    },
                    recv(self.events) -> event => {
                        if let Ok(event) = event
                            && let Fate::Died { replacement } = self.handle(w, event)
                        {
                            worker = replacement;
                        }
                        continue;
                    }
                }
            }
            while taken < room && !stopping {
                match self.shared.receiver.try_recv() {
                    Ok(Outgoing::Task(p)) => taken += self.send(w, p, &mut buf),
                    Ok(Outgoing::Stop) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if !buf.is_empty() {
                let written = w.stdin.as_mut().map(|s| s.write_all(&buf));
                if !matches!(written, Some(Ok(()))) {
                    // The worker is gone; its reader reports it and we resend from there.
                    if let Fate::Died { replacement } = self.wait_for_death(w) {
                        worker = replacement;
                    }
                }
            }
        }
    }

    /// Appends `p`'s frame to `buf` and records it in flight; 0 if it was cancelled.
    fn send(&self, w: &mut Worker, p: Pending, buf: &mut Vec<u8>) -> usize {
        if !p.claimed && !p.completion.try_start() {
            return 0;
        }
        buf.extend_from_slice(&p.frame);
        lock(&self.in_flight).push_back(Pending { claimed: true, ..p });
        w.sent += 1;
        1
    }

    /// Blocks for one event and handles it.
    fn on_event(&mut self, w: &mut Worker) -> Fate {
        match self.events.recv() {
            Ok(event) => self.handle(w, event),
            Err(_) => Fate::Alive,
        }
    }

    fn handle(&mut self, w: &mut Worker, event: Event) -> Fate {
        match event {
            Event::Died { generation } if generation == w.generation => Fate::Died {
                replacement: self.crashed(w),
            },
            _ => Fate::Alive,
        }
    }

    /// After a failed write: waits for the reader to report the worker's death.
    fn wait_for_death(&mut self, w: &mut Worker) -> Fate {
        loop {
            match self.events.recv() {
                Ok(Event::Died { generation }) if generation == w.generation => {
                    return Fate::Died {
                        replacement: self.crashed(w),
                    };
                }
                Ok(_) => continue,
                Err(_) => return Fate::Alive,
            }
        }
    }

    fn wait_for_exit(&mut self, w: &mut Worker) {
        // The reader sees end-of-stream once the worker has exited.
        let _ = self.wait_for_death_event(w.generation);
        self.reap(w);
    }

    fn wait_for_death_event(&self, generation: u64) -> bool {
        loop {
            match self.events.recv() {
                Ok(Event::Died { generation: g }) if g == generation => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The worker died: fail the task it was running, queue the rest for resending, start a
    /// replacement.
    fn crashed(&mut self, w: &mut Worker) -> Option<Worker> {
        let pid = w.process.id();
        let status = self.reap(w);
        let mut in_flight = lock(&self.in_flight);
        let running = in_flight.pop_front();
        for p in in_flight.drain(..).rev() {
            self.resend.push_front(p);
        }
        drop(in_flight);
        // Replace first, then report: once a task says its worker crashed, the pool has its
        // full strength again (or has said why it cannot).
        let replacement = self.start_or_break();
        if let Some(p) = running {
            self.shared.crashes.fetch_add(1, Ordering::Relaxed);
            let task = p.id;
            p.completion.fail(Error::WorkerCrashed {
                task,
                pid,
                cause: describe(status),
            });
        }
        replacement
    }

    fn start_or_break(&mut self) -> Option<Worker> {
        match self.start() {
            Ok(w) => Some(w),
            Err(e) => {
                self.broken = Some(e);
                None
            }
        }
    }

    /// Fails resend and queued tasks while no worker can start; false once stopped.
    fn fail_while_broken(&mut self) -> bool {
        let why = self.broken.clone().unwrap_or_default();
        for p in self.resend.drain(..) {
            p.completion.fail(Error::Worker(why.clone()));
        }
        match self.shared.receiver.recv() {
            Ok(Outgoing::Task(p)) => {
                if p.claimed || p.completion.try_start() {
                    p.completion.fail(Error::Worker(why));
                }
                true
            }
            Ok(Outgoing::Stop) | Err(_) => false,
        }
    }

    fn restart_after_broken(&mut self) -> Option<Worker> {
        let w = self.start().ok()?;
        self.broken = None;
        Some(w)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Nothing may be left waiting: whatever is still here never reached a worker.
        for p in self.resend.drain(..) {
            p.completion.fail(Error::Worker(
                "the pool stopped before re-sending it".into(),
            ));
        }
        for p in lock(&self.in_flight).drain(..) {
            p.completion.fail(Error::Worker(
                "the pool stopped with the task unanswered".into(),
            ));
        }
    }
}

/// `killed by signal 9 (SIGKILL)`, `exited with status 3`.
fn describe(status: std::process::ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGKILL => "SIGKILL",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGILL => "SIGILL",
            libc::SIGPIPE => "SIGPIPE",
            _ => "signal",
        };
        format!("killed by signal {signal} ({name})")
    } else {
        match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "ended for an unknown reason".to_string(),
        }
    }
}
