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

//!
//! The code follows the README's parts: [`builder`] starts the pool, one [`supervisor`]
//! thread per worker feeds it and replaces it when it dies, one [`reader`] thread per worker
//! takes its replies, and [`completion`] turns a reply (or a crash) into a task's result.

mod builder;
mod completion;
mod protocol;
mod reader;
mod supervisor;
mod worker;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

pub use builder::{ProcessPoolBuilder, WorkerProgram};
pub use worker::{Registry, WORKER_ENV, serve, serve_if_worker};

use super::{BatchResult, Executor, Gate, Runs};
use crate::deadlock::MonitorId;
use crate::error::{Error, SubmitError, TrySubmitError};
use crate::handle::{TaskHandle, new_task};
use crate::model::Model;
use crate::sync::lock;
use crate::task::{RemoteTask, TaskId};
use completion::{Batched, Pending, Single};

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
        ProcessPoolBuilder::with_defaults()
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

    /// Messages waiting in the shared queue: tasks no supervisor has taken yet, and after
    /// `shutdown` the supervisors' stop messages.
    pub fn queued(&self) -> usize {
        self.shared.receiver.len()
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
        let (slot, handle) = new_task(id, MonitorId::NONE);
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
        let (slot, handle) = new_task(id, MonitorId::NONE);
        match self.queue(Pending::new(id, frame, Batched(slot)), true) {
            Ok(()) => Ok(handle),
            Err(_) => Err(SubmitError(tasks)),
        }
    }
}

/// A message on the pool's shared queue: a task for whichever supervisor takes it, or one
/// supervisor's signal to stop.
enum Outgoing {
    Task(Pending),
    Stop,
}

/// What the pool's handle and its supervisors share.
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
