//! `threads`: a fixed pool of OS threads fed by one bounded MPMC queue (crossbeam-channel),
//! the lecture's `Queue` + `threading.Thread` workers and `ThreadPoolExecutor`. Blocking:
//! workers block on the queue and tasks may block freely (that is what threads are for).
//!
//! `submit` waits when the queue is full, so a fast producer cannot bury a slow pool in
//! memory (backpressure); `try_submit` gives the task back instead. An idle worker polls the
//! queue for [`SPIN_BUDGET`](crate::SPIN_BUDGET) before it parks, so a task submitted right
//! after another is picked up without a cross-core wake-up (~35 us here), and an idle pool
//! burns no CPU a millisecond later.
//!
//! With a GIL ([`ThreadPool::with_gil`]), each task runs holding the pool's [`Gil`]: CPU-bound
//! tasks then take turns, as they do in CPython.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use crossbeam_utils::CachePadded;

use super::{Batch, BatchResult, Executor, Gate, Runs};
use crate::deadlock::Monitor;
use crate::error::{SubmitError, TrySubmitError};
use crate::gil::Gil;
use crate::handle::{SPIN_BUDGET, TaskCell, TaskHandle, spin_until};
use crate::model::Model;
use crate::sync::lock;
use crate::task::{Task, TaskId};

/// A queued task, type-erased so one queue carries every task type.
pub(crate) trait Job: Send + Sync {
    /// Runs the task unless it was cancelled while queued.
    fn run(&self);
    /// Drops the task unrun: its handle reports `ShutDown`.
    fn abandon(&self);
}

impl<J: Task> Job for TaskCell<J> {
    fn run(&self) {
        TaskCell::run(self);
    }
    fn abandon(&self) {
        TaskCell::abandon(self);
    }
}

enum Message {
    Run(Arc<dyn Job>),
    Stop,
}

struct Shared {
    sender: Sender<Message>,
    receiver: Receiver<Message>,
    monitor: Arc<Monitor>,
    gil: Option<Arc<Gil>>,
    /// Written on every submit; on a cache line of its own so that the workers, which read
    /// the fields above on every task, do not have their line stolen each time (measured:
    /// see docs/benchmarks.md).
    submit: CachePadded<Submit>,
}

#[derive(Default)]
struct Submit {
    gate: Gate,
    next_id: AtomicU64,
}

/// A fixed pool of OS threads, optionally under an emulated GIL.
///
/// ```
/// use conlab_exec::{Executor, ThreadPool};
/// let pool = ThreadPool::new(4);
/// let handles: Vec<_> = (0..8u64).map(|i| pool.submit(move || i * 2).unwrap()).collect();
/// let sum: u64 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
/// assert_eq!(sum, 56);
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers)
            .field("gil", &self.shared.gil.is_some())
            .field("queued", &self.shared.receiver.len())
            .finish()
    }
}

impl ThreadPool {
    /// `workers` threads, a queue of 1024 tasks per worker, no GIL.
    ///
    /// # Panics
    /// When the OS refuses to start a thread, as `std::thread::spawn` does; use
    /// [`try_build`](Self::try_build) to get an error instead.
    pub fn new(workers: usize) -> Self {
        Self::build(workers, 1024 * workers.max(1), false)
    }

    /// `workers` threads that run tasks under one emulated GIL (see [`crate::gil`]).
    ///
    /// # Panics
    /// When the OS refuses to start a thread (see [`try_build`](Self::try_build)).
    pub fn with_gil(workers: usize) -> Self {
        Self::build(workers, 1024 * workers.max(1), true)
    }

    /// `workers` threads, a queue of `capacity` tasks, with or without a GIL.
    ///
    /// # Panics
    /// When the OS refuses to start a thread (see [`try_build`](Self::try_build)).
    pub fn build(workers: usize, capacity: usize, gil: bool) -> Self {
        match Self::try_build(workers, capacity, gil) {
            Ok(pool) => pool,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`build`](Self::build), but a thread the OS refuses to start is an error (the
    /// threads already started are stopped again).
    pub fn try_build(workers: usize, capacity: usize, gil: bool) -> Result<Self, crate::Error> {
        let workers = workers.max(1);
        let (sender, receiver) = crossbeam_channel::bounded(capacity.max(1));
        let shared = Arc::new(Shared {
            sender,
            receiver,
            monitor: Monitor::new(workers),
            gil: gil.then(Gil::new),
            submit: CachePadded::new(Submit::default()),
        });
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let for_thread = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("conlab-thread-{i}"))
                .spawn(move || work(&for_thread));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let started = ThreadPool {
                        shared,
                        threads: Mutex::new(threads),
                        workers: i,
                    };
                    started.shutdown(true, true);
                    return Err(crate::Error::Worker(format!(
                        "starting thread {} of {workers}: {e} (too many threads? lower the worker count)",
                        i + 1
                    )));
                }
            }
        }
        Ok(ThreadPool {
            shared,
            threads: Mutex::new(threads),
            workers,
        })
    }

    /// The pool's GIL, when it has one (its forced-switch count shows the contention).
    pub fn gil(&self) -> Option<&Arc<Gil>> {
        self.shared.gil.as_ref()
    }

    /// Tasks waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.receiver.len()
    }

    fn queue<J: Task>(
        &self,
        task: J,
        block: bool,
    ) -> Result<TaskHandle<J::Output>, TrySubmitError<J>> {
        let Some(_pass) = self.shared.submit.gate.enter() else {
            return Err(TrySubmitError::ShutDown(task));
        };
        let id = TaskId(self.shared.submit.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let (cell, handle) = TaskCell::new(id, self.shared.monitor.id(), task);
        if block {
            // The receiver lives in `shared`, so the channel cannot be disconnected.
            let _ = self.shared.sender.send(Message::Run(cell));
            return Ok(handle);
        }
        match self.shared.sender.try_send(Message::Run(cell.clone())) {
            Ok(()) => Ok(handle),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => match cell.take_back() {
                Some(task) => Err(TrySubmitError::Full(task)),
                None => unreachable!("a task that never reached the queue is still queued"),
            },
        }
    }
}

fn work(shared: &Shared) {
    shared.monitor.enter_worker();
    loop {
        let message = match shared.receiver.try_recv() {
            Ok(m) => m,
            Err(_) => {
                spin_until(|| !shared.receiver.is_empty(), SPIN_BUDGET);
                match shared.receiver.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                }
            }
        };
        match message {
            Message::Run(job) => match &shared.gil {
                None => job.run(),
                Some(gil) => gil.hold(|| job.run()),
            },
            Message::Stop => return,
        }
    }
}

impl Executor for ThreadPool {
    fn model(&self) -> Model {
        Model::Threads
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        if self.shared.submit.gate.close() {
            if cancel_pending {
                while let Ok(message) = self.shared.receiver.try_recv() {
                    if let Message::Run(job) = message {
                        job.abandon();
                    }
                }
            }
            // After every task already queued: FIFO, so pending tasks run before the stops.
            for _ in 0..self.workers {
                // Cannot fail: the receiver lives in `shared`.
                let _ = self.shared.sender.send(Message::Stop);
            }
        }
        if wait {
            let me = std::thread::current().id();
            let threads = std::mem::take(&mut *lock(&self.threads));
            for t in threads {
                // A task that drops its own pool must not join itself.
                if t.thread().id() != me {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl<J: Task> Runs<J> for ThreadPool {
    fn submit_task(
        &self,
        task: J,
        block: bool,
    ) -> Result<TaskHandle<J::Output>, TrySubmitError<J>> {
        self.queue(task, block)
    }

    fn submit_batch(
        &self,
        tasks: Vec<J>,
    ) -> Result<TaskHandle<BatchResult<J::Output>>, SubmitError<Vec<J>>> {
        self.queue(Batch(tasks), true)
            .map_err(|e| SubmitError(e.into_inner().0))
    }
}
