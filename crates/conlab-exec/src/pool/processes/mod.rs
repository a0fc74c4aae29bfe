//! `processes`: a fixed pool of worker processes, the lecture's `multiprocessing.Pool` and
//! `ProcessPoolExecutor`. Blocking: the pool's own threads block on pipes; tasks run in other
//! processes, so they may do anything, including crash.
//!
//! A worker is this very executable started again with [`WORKER_ENV`] set; its `main` calls
//! [`serve_if_worker`] first and becomes a task server on its stdin/stdout. Only
//! [`RemoteTask`]s can be submitted: they and their outputs cross the pipe serialised
//! (postcard), as Python pickles. See `README.md` beside this file for the protocol and the
//! failure rules; in short:
//!
//! - Each worker has a supervisor thread that writes many task frames per `write` (up to a
//!   window of unanswered tasks) and a reader thread that completes handles as replies arrive
//!   in order. Pipelining is what makes one-task-at-a-time submission fast.
//! - A worker killed mid-task (SIGKILL, a segfault, `exit()`) fails exactly the task it was
//!   running with [`Error::WorkerCrashed`]; the tasks queued behind it in its pipe had not
//!   started, so they are re-sent to a fresh worker. None is lost, none runs twice.
//! - `max_tasks_per_child` retires a worker after that many tasks (Python's
//!   `maxtasksperchild`): it finishes what it has, exits cleanly, and is replaced.

mod protocol;
mod worker;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, select};

pub use worker::{Registry, WORKER_ENV, serve, serve_if_worker};

use super::{BatchResult, Executor, Gate, Runs};
use crate::error::{Error, SubmitError, TrySubmitError};
use crate::handle::{Slot, TaskHandle, new_task};
use crate::model::Model;
use crate::task::{RemoteTask, TaskId, Wire};

/// How long a new worker may take to say hello before the pool gives up on it.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// How much work (by the measured service time) a supervisor keeps queued in one worker's
/// pipe. Pipelining only pays for short tasks: 64 no-op tasks hide the ~70 us pipe round
/// trip, while 64 tasks of 16 ms each would sit in one worker's pipe as another worker idles
/// (the first version did exactly that: 1.23x instead of 1.9x on the lecture's prime sums).
const QUEUED_WORK_NS: u64 = 1_000_000;

/// The program a pool starts as its workers: by default this executable, with no arguments.
#[derive(Debug, Clone)]
pub struct WorkerProgram {
    program: PathBuf,
    args: Vec<OsString>,
}

impl WorkerProgram {
    /// Workers run `program` (which must call [`serve_if_worker`] at the top of `main`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        WorkerProgram {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Adds an argument to the worker's command line.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// This executable.
    pub fn current_exe() -> Result<Self, Error> {
        std::env::current_exe()
            .map(Self::new)
            .map_err(|e| Error::Worker(format!("finding this executable to start workers: {e}")))
    }
}

/// Settings for a [`ProcessPool`].
#[derive(Debug, Clone)]
pub struct ProcessPoolBuilder {
    workers: usize,
    queue_capacity: Option<usize>,
    program: Option<WorkerProgram>,
    max_tasks_per_child: Option<u64>,
    window: usize,
}

impl ProcessPoolBuilder {
    /// How many worker processes (default: one per core).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Tasks queued in the parent before `submit` blocks (default: 1024 per worker).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = Some(n.max(1));
        self
    }

    /// The worker program (default: this executable).
    pub fn program(mut self, program: WorkerProgram) -> Self {
        self.program = Some(program);
        self
    }

    /// Replace a worker after it has run `n` tasks (Python's `maxtasksperchild`).
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// At most this many unanswered tasks are sent ahead to one worker (default 64). The
    /// window actually used adapts to the tasks: as many as make ~1 ms of work by their
    /// measured service time, so short tasks are pipelined and long ones are not stranded
    /// behind each other in one worker's pipe.
    pub fn window(mut self, n: usize) -> Self {
        self.window = n.max(1);
        self
    }

    /// Starts the workers and waits until each has said hello.
    pub fn build(self) -> Result<ProcessPool, Error> {
        let program = match self.program {
            Some(p) => p,
            None => WorkerProgram::current_exe()?,
        };
        let capacity = self.queue_capacity.unwrap_or(1024 * self.workers);
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        let shared = Arc::new(Shared {
            sender,
            receiver,
            gate: Gate::default(),
            next_id: AtomicU64::new(0),
            program,
            max_tasks_per_child: self.max_tasks_per_child,
            window: self.window,
            pids: Mutex::new(vec![0; self.workers]),
            crashes: AtomicU64::new(0),
            spawned: AtomicU64::new(0),
        });
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        let supervisors: Vec<_> = (0..self.workers)
            .map(|index| {
                let (shared, ready) = (shared.clone(), ready_tx.clone());
                std::thread::Builder::new()
                    .name(format!("conlab-proc-{index}"))
                    .spawn(move || Supervisor::run(shared, index, ready))
                    .map_err(|e| Error::Worker(format!("starting a supervisor thread: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let pool = ProcessPool {
            shared,
            supervisors: Mutex::new(supervisors),
            workers: self.workers,
        };
        for _ in 0..self.workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Worker("a supervisor thread died".into())),
            }
        }
        Ok(pool)
    }
}

/// A pool of worker processes.
///
/// ```no_run
/// use conlab_exec::{Executor, ProcessPool, RemoteTask, Task};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Double(u64);
/// # impl Task for Double { type Output = u64; fn run(self) -> u64 { self.0 * 2 } }
/// # impl RemoteTask for Double { const NAME: &'static str = "doc.double"; }
/// // `main` must call `serve_if_worker` with `Double` registered first.
/// let pool = ProcessPool::builder().workers(3).build()?;
/// let doubled: Vec<u64> = pool.map([5, 10, 20].map(Double)).map(Result::unwrap).collect();
/// assert_eq!(doubled, [10, 20, 40]);
/// # Ok::<(), conlab_exec::Error>(())
/// ```
pub struct ProcessPool {
    shared: Arc<Shared>,
    supervisors: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("workers", &self.workers)
            .field("pids", &self.worker_pids())
            .field("crashes", &self.crashes())
            .finish()
    }
}

impl ProcessPool {
    /// Settings with the defaults: one worker per core, this executable as the worker.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder {
            workers: crate::available_cores(),
            queue_capacity: None,
            program: None,
            max_tasks_per_child: None,
            window: 64,
        }
    }

    /// The current worker processes' ids (0 for a worker being replaced).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.shared.pids).clone()
    }

    /// Workers that died mid-task since the pool started.
    pub fn crashes(&self) -> u64 {
        self.shared.crashes.load(Ordering::Relaxed)
    }

    /// Worker processes started, including the first ones and replacements.
    pub fn spawned(&self) -> u64 {
        self.shared.spawned.load(Ordering::Relaxed)
    }

    fn queue(&self, pending: Pending, block: bool) -> Result<(), Pending> {
        let outgoing = Outgoing::Task(pending);
        let refused = if block {
            self.shared.sender.send(outgoing).err().map(|e| e.0)
        } else {
            match self.shared.sender.try_send(outgoing) {
                Ok(()) => None,
                Err(TrySendError::Full(o) | TrySendError::Disconnected(o)) => Some(o),
            }
        };
        match refused {
            Some(Outgoing::Task(p)) => Err(p),
            _ => Ok(()),
        }
    }

    fn next_id(&self) -> TaskId {
        TaskId(self.shared.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl Executor for ProcessPool {
    fn model(&self) -> Model {
        Model::Processes
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        if self.shared.gate.close() {
            if cancel_pending {
                while let Ok(outgoing) = self.shared.receiver.try_recv() {
                    if let Outgoing::Task(p) = outgoing {
                        p.abandon();
                    }
                }
            }
            for _ in 0..self.workers {
                let _ = self.shared.sender.send(Outgoing::Stop);
            }
        }
        if wait {
            let supervisors = std::mem::take(&mut *lock(&self.supervisors));
            for s in supervisors {
                let _ = s.join();
            }
        }
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

/// The kind id of a task type, computed once per type at compile time.
trait Kind {
    const KIND: u64;
}

impl<J: RemoteTask> Kind for J {
    const KIND: u64 = protocol::kind_of(J::NAME);
}

fn encode<T: serde::Serialize>(
    id: TaskId,
    kind: u64,
    flags: u8,
    value: &T,
) -> Result<Vec<u8>, Error> {
    let mut frame = Vec::with_capacity(64);
    let start = protocol::begin_request(&mut frame, id.0, kind, flags);
    let mut frame = postcard::to_extend(value, frame).map_err(|e| Error::Remote {
        task: id,
        message: format!("could not serialise the task: {e}"),
    })?;
    protocol::finish(&mut frame, start);
    Ok(frame)
}

impl<J: RemoteTask> Runs<J> for ProcessPool {
    fn submit_task(
        &self,
        task: J,
        block: bool,
    ) -> Result<TaskHandle<J::Output>, TrySubmitError<J>> {
        let Some(_pass) = self.shared.gate.enter() else {
            return Err(TrySubmitError::ShutDown(task));
        };
        let id = self.next_id();
        let frame = match encode(id, J::KIND, 0, &task) {
            Ok(frame) => frame,
            Err(e) => return Ok(TaskHandle::ready(Err(e))),
        };
        let (slot, handle) = new_task(id, None);
        let pending = Pending::new(id, frame, Single(slot));
        match self.queue(pending, block) {
            Ok(()) => Ok(handle),
            Err(_) => Err(TrySubmitError::Full(task)),
        }
    }

    fn submit_batch(
        &self,
        tasks: Vec<J>,
    ) -> Result<TaskHandle<BatchResult<J::Output>>, SubmitError<Vec<J>>> {
        let Some(_pass) = self.shared.gate.enter() else {
            return Err(SubmitError(tasks));
        };
        let id = self.next_id();
        let frame = match encode(id, J::KIND, protocol::BATCH, &tasks) {
            Ok(frame) => frame,
            Err(e) => return Ok(TaskHandle::ready(Err(e))),
        };
        let (slot, handle) = new_task(id, None);
        match self.queue(Pending::new(id, frame, Batched(slot)), true) {
            Ok(()) => Ok(handle),
            Err(_) => Err(SubmitError(tasks)),
        }
    }
}

/// Completes a task's handle from a worker's reply; type-erased so one queue carries all.
trait Completion: Send {
    fn try_start(&self) -> bool;
    fn try_abandon(&self) -> bool;
    fn complete(self: Box<Self>, status: u8, payload: &[u8]);
    fn fail(self: Box<Self>, error: Error);
}

struct Single<T>(Arc<Slot<T>>);
struct Batched<T>(Arc<Slot<BatchResult<T>>>);

fn reply_error(task: TaskId, status: u8, payload: &[u8]) -> Error {
    let message = String::from_utf8_lossy(payload).into_owned();
    if status == protocol::PANICKED {
        Error::TaskPanicked { task, message }
    } else {
        Error::Remote { task, message }
    }
}

fn undecodable(task: TaskId, e: postcard::Error) -> Error {
    Error::Remote {
        task,
        message: format!("could not decode the task's output: {e}"),
    }
}

impl<T: Wire> Completion for Single<T> {
    fn try_start(&self) -> bool {
        self.0.try_start()
    }
    fn try_abandon(&self) -> bool {
        self.0.try_cancel()
    }
    fn complete(self: Box<Self>, status: u8, payload: &[u8]) {
        let task = self.0.id();
        let result = if status == protocol::OK {
            postcard::from_bytes(payload).map_err(|e| undecodable(task, e))
        } else {
            Err(reply_error(task, status, payload))
        };
        self.0.complete(result);
    }
    fn fail(self: Box<Self>, error: Error) {
        self.0.complete(Err(error));
    }
}

impl<T: Wire> Completion for Batched<T> {
    fn try_start(&self) -> bool {
        self.0.try_start()
    }
    fn try_abandon(&self) -> bool {
        self.0.try_cancel()
    }
    fn complete(self: Box<Self>, status: u8, payload: &[u8]) {
        let task = self.0.id();
        let result = if status == protocol::OK {
            postcard::from_bytes::<Vec<Result<T, String>>>(payload)
                .map(|results| {
                    results
                        .into_iter()
                        .map(|r| r.map_err(|message| Error::TaskPanicked { task, message }))
                        .collect()
                })
                .map_err(|e| undecodable(task, e))
        } else {
            Err(reply_error(task, status, payload))
        };
        self.0.complete(result);
    }
    fn fail(self: Box<Self>, error: Error) {
        self.0.complete(Err(error));
    }
}

/// A task on its way to a worker: its frame (kept until answered, to resend after a crash)
/// and how to complete its handle.
struct Pending {
    id: TaskId,
    frame: Vec<u8>,
    /// Already claimed (sent once, its worker died before starting it): resend as is.
    claimed: bool,
    completion: Box<dyn Completion>,
}

impl Pending {
    fn new(id: TaskId, frame: Vec<u8>, completion: impl Completion + 'static) -> Self {
        Pending {
            id,
            frame,
            claimed: false,
            completion: Box::new(completion),
        }
    }

    fn abandon(self) {
        if self.completion.try_abandon() {
            let task = self.id;
            self.completion.fail(Error::ShutDown { task });
        }
    }
}

enum Outgoing {
    Task(Pending),
    Stop,
}

struct Shared {
    sender: Sender<Outgoing>,
    receiver: Receiver<Outgoing>,
    gate: Gate,
    next_id: AtomicU64,
    program: WorkerProgram,
    max_tasks_per_child: Option<u64>,
    window: usize,
    pids: Mutex<Vec<u32>>,
    crashes: AtomicU64,
    spawned: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a worker's reader thread tells its supervisor.
enum Event {
    Hello {
        generation: u64,
        result: Result<(), String>,
    },
    /// Replies arrived while the supervisor waited for room in the window.
    Credit,
    /// The worker's stdout closed: it exited or was killed.
    Died { generation: u64 },
}

type InFlight = Arc<Mutex<VecDeque<Pending>>>;

/// One live worker process.
struct Worker {
    process: Child,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
    generation: u64,
    sent: u64,
}

/// Owns one worker slot: starts the process, feeds it, replaces it when it dies.
struct Supervisor {
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
    fn run(shared: Arc<Shared>, index: usize, ready: Sender<Result<(), Error>>) {
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
        let mut process = Command::new(&program.program)
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
            if stopping || w.sent >= max {
                if in_flight > 0 {
                    self.credit_wanted.store(true, Ordering::Release);
                    if lock(&self.in_flight).is_empty() {
                        continue;
                    }
                    if let Some(restarted) = self.on_event(w) {
                        worker = restarted;
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
                if let Some(restarted) = self.on_event(w) {
                    worker = restarted;
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
            if taken == 0 && buf.is_empty() {
                select! {
                    recv(self.shared.receiver) -> msg => match msg {
                        Ok(Outgoing::Task(p)) => taken += self.send(w, p, &mut buf),
                        Ok(Outgoing::Stop) | Err(_) => { stopping = true; continue; }
                    },
                    recv(self.events) -> event => {
                        if let Ok(event) = event && let Some(restarted) = self.handle(w, event) {
                            worker = restarted;
                        }
                        continue;
                    }
                }
            }
            while taken < room {
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
                    if let Some(restarted) = self.wait_for_death(w) {
                        worker = restarted;
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

    /// Blocks for one event and handles it; `Some` when the worker was replaced.
    fn on_event(&mut self, w: &mut Worker) -> Option<Option<Worker>> {
        let event = self.events.recv().ok()?;
        self.handle(w, event)
    }

    fn handle(&mut self, w: &mut Worker, event: Event) -> Option<Option<Worker>> {
        match event {
            Event::Died { generation } if generation == w.generation => Some(self.crashed(w)),
            _ => None,
        }
    }

    fn wait_for_death(&mut self, w: &mut Worker) -> Option<Option<Worker>> {
        loop {
            match self.events.recv() {
                Ok(Event::Died { generation }) if generation == w.generation => {
                    return Some(self.crashed(w));
                }
                Ok(_) => continue,
                Err(_) => return None,
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

/// What a reader thread shares with its supervisor.
struct Link {
    generation: u64,
    in_flight: InFlight,
    events: Sender<Event>,
    credit_wanted: Arc<AtomicBool>,
    service_ns: Arc<AtomicU64>,
}

fn read_replies(stdout: ChildStdout, link: &Link) {
    let generation = link.generation;
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut hello = [0u8; 8];
    let result = match reader.read_exact(&mut hello) {
        Ok(()) if &hello == protocol::HELLO => Ok(()),
        Ok(()) => Err(format!(
            "it wrote {:?} instead of a hello",
            String::from_utf8_lossy(&hello)
        )),
        Err(e) => Err(format!("reading its hello: {e}")),
    };
    let said_hello = result.is_ok();
    let _ = link.events.send(Event::Hello { generation, result });
    let mut body = Vec::new();
    // When the previous reply came, if the worker had more queued: the gap to the next reply
    // is then one task's service time (plus its share of the pipe), which sizes the window.
    let mut busy_since: Option<Instant> = None;
    while said_hello && matches!(protocol::read_frame(&mut reader, &mut body), Ok(true)) {
        if body.len() < protocol::REPLY_HEADER {
            break;
        }
        let id = protocol::u64_at(&body, 0);
        let (front, more_queued) = {
            let mut in_flight = lock(&link.in_flight);
            let front = in_flight.pop_front();
            (front, !in_flight.is_empty())
        };
        let now = Instant::now();
        if let Some(since) = busy_since {
            let sample = now
                .duration_since(since)
                .as_nanos()
                .min(u128::from(u64::MAX)) as u64;
            let old = link.service_ns.load(Ordering::Relaxed);
            let ewma = if old == 0 {
                sample
            } else {
                (old * 7 + sample) / 8
            };
            link.service_ns.store(ewma.max(1), Ordering::Relaxed);
        } else if link.service_ns.load(Ordering::Relaxed) == 0 {
            // The first reply: no gap to measure yet, but the task finished, so allow a
            // second one in the pipe.
            link.service_ns.store(QUEUED_WORK_NS / 2, Ordering::Relaxed);
        }
        busy_since = more_queued.then_some(now);
        match front {
            Some(p) if p.id.0 == id => {
                p.completion
                    .complete(body[8], &body[protocol::REPLY_HEADER..]);
            }
            Some(p) => {
                let task = p.id;
                p.completion.fail(Error::Worker(format!(
                    "protocol error: expected the reply to task {task}, got one for #{id}"
                )));
                break;
            }
            None => break,
        }
        if reader.buffer().is_empty() && link.credit_wanted.swap(false, Ordering::AcqRel) {
            let _ = link.events.send(Event::Credit);
        }
    }
    let _ = link.events.send(Event::Died { generation });
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
