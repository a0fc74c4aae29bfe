//! The one executor abstraction ([`Executor`]), the capability to run a kind of task
//! ([`Runs`]), and [`Pool`], which picks any of the five models at run time.
//!
//! Each model lives in its own file behind the same two traits, as crossbeam-channel keeps one
//! file per flavour: `serial.rs`, `threads.rs`, `processes/`, `asynchronous.rs`, `rayon.rs`.
//! What a pool can run is a trait bound, checked at compile time: every pool runs
//! [`RemoteTask`]s; every pool but the process pool runs any closure.

mod asynchronous;
mod gate;
mod map;
pub mod processes;
mod rayon;
mod serial;
mod threads;

use std::fmt;

pub use asynchronous::AsyncPool;
pub(crate) use gate::Gate;
pub use map::Map;
use processes::ProcessPool;
pub use rayon::RayonPool;
pub use serial::SerialPool;
pub use threads::ThreadPool;

use crate::error::{Error, SubmitError, TrySubmitError};
use crate::handle::TaskHandle;
use crate::model::Model;
use crate::task::{RemoteTask, Task};

/// The results of a batch: one per task, in order, each its own success or error.
pub type BatchResult<T> = Vec<Result<T, Error>>;

/// A pool's ability to run tasks of type `J`.
///
/// Implemented by every pool for the task types its model can carry. You call the methods of
/// [`Executor`]; this trait is the bound that makes `pool.submit(closure)` on a process pool a
/// compile error.
pub trait Runs<J: Task> {
    /// Queues `task`. With `block`, waits for room in a full queue; without, gives it back.
    fn submit_task(&self, task: J, block: bool)
    -> Result<TaskHandle<J::Output>, TrySubmitError<J>>;

    /// Queues `tasks` as one unit of work (one queue hop, one message to a process) whose
    /// result holds each task's own result. This is what makes `map_chunked` cheap.
    fn submit_batch(
        &self,
        tasks: Vec<J>,
    ) -> Result<TaskHandle<BatchResult<J::Output>>, SubmitError<Vec<J>>>;
}

/// The `concurrent.futures.Executor` of the lecture: submit tasks, get handles, map over
/// inputs, shut down.
///
/// ```
/// use conlab_exec::{Executor, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let squares: Vec<u64> = pool
///     .map((1..=4u64).map(|n| move || n * n))
///     .map(|r| r.unwrap())
///     .collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// pool.shutdown(true, false);
/// ```
pub trait Executor {
    /// The model this pool implements.
    fn model(&self) -> Model;

    /// How many workers run tasks at once.
    fn workers(&self) -> usize;

    /// Stops accepting tasks. With `cancel_pending`, queued tasks are dropped (their handles
    /// return [`Error::ShutDown`]); otherwise they still run. With `wait`, returns once every
    /// worker has stopped. Calling it again is harmless; dropping a pool is
    /// `shutdown(true, false)`, so no accepted task is lost.
    fn shutdown(&self, wait: bool, cancel_pending: bool);

    /// Queues `task` and returns its handle, waiting for room when the queue is full
    /// (backpressure). A shut-down pool gives the task back.
    fn submit<J: Task>(&self, task: J) -> Result<TaskHandle<J::Output>, SubmitError<J>>
    where
        Self: Runs<J>,
    {
        self.submit_task(task, true)
            .map_err(|e| SubmitError(e.into_inner()))
    }

    /// Queues `task` only if there is room now; otherwise gives it back.
    fn try_submit<J: Task>(&self, task: J) -> Result<TaskHandle<J::Output>, TrySubmitError<J>>
    where
        Self: Runs<J>,
    {
        self.submit_task(task, false)
    }

    /// Runs every task and yields the results in input order, like `Executor.map`. Tasks are
    /// submitted lazily with a bounded look-ahead, so an input of ten million items never sits
    /// in memory.
    fn map<J, I>(&self, tasks: I) -> Map<'_, Self, J, I::IntoIter>
    where
        J: Task,
        I: IntoIterator<Item = J>,
        Self: Runs<J> + Sized,
    {
        Map::new(self, tasks.into_iter(), 1)
    }

    /// Like [`map`](Self::map), sending `chunk_size` tasks per unit of work (Python's
    /// `chunksize`): far fewer queue hops or pipe messages for small tasks.
    fn map_chunked<J, I>(&self, tasks: I, chunk_size: usize) -> Map<'_, Self, J, I::IntoIter>
    where
        J: Task,
        I: IntoIterator<Item = J>,
        Self: Runs<J> + Sized,
    {
        Map::new(self, tasks.into_iter(), chunk_size)
    }
}

/// How to build a [`Pool`]; every setting has a default that suits the model.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    /// Workers (threads, processes, event-loop threads). Default: the model's default.
    pub workers: Option<usize>,
    /// `threads` only: run tasks under an emulated GIL.
    pub gil: bool,
    /// Queue capacity before `submit` blocks. Default: 1024 per worker.
    pub queue_capacity: Option<usize>,
    /// `processes` only: how to start a worker (default: this executable).
    pub worker_program: Option<processes::WorkerProgram>,
    /// `processes` only: replace a worker after this many tasks.
    pub max_tasks_per_child: Option<u64>,
}

/// The number of cores this process may use (at least 1).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The default worker count of a model, as Python chooses it: `min(32, cores + 4)` threads
/// (I/O overlap), one process or rayon thread per core, one event loop.
pub fn default_workers(model: Model) -> usize {
    let cores = available_cores();
    match model {
        Model::Serial | Model::Async => 1,
        Model::Threads => (cores + 4).min(32),
        Model::Processes | Model::Rayon => cores,
    }
}

/// Any of the five models, chosen at run time (`--models serial,threads,...`). Runs
/// [`RemoteTask`]s, the tasks every model can carry.
pub enum Pool {
    /// See [`SerialPool`].
    Serial(SerialPool),
    /// See [`ThreadPool`].
    Threads(ThreadPool),
    /// See [`ProcessPool`].
    Processes(ProcessPool),
    /// See [`AsyncPool`].
    Async(AsyncPool),
    /// See [`RayonPool`].
    Rayon(RayonPool),
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("model", &self.model())
            .field("workers", &self.workers())
            .finish()
    }
}

impl Pool {
    /// Starts a pool of `model` (for `processes`, spawns the worker processes).
    pub fn new(model: Model, options: PoolOptions) -> Result<Pool, Error> {
        let workers = options
            .workers
            .unwrap_or_else(|| default_workers(model))
            .max(1);
        let capacity = options.queue_capacity.unwrap_or(1024 * workers).max(1);
        Ok(match model {
            Model::Serial => Pool::Serial(SerialPool::new()),
            Model::Threads => Pool::Threads(ThreadPool::try_build(workers, capacity, options.gil)?),
            Model::Processes => {
                let mut builder = ProcessPool::builder()
                    .workers(workers)
                    .queue_capacity(capacity);
                if let Some(program) = options.worker_program {
                    builder = builder.program(program);
                }
                if let Some(n) = options.max_tasks_per_child {
                    builder = builder.max_tasks_per_child(n);
                }
                Pool::Processes(builder.build()?)
            }
            Model::Async => Pool::Async(AsyncPool::new(workers)?),
            Model::Rayon => Pool::Rayon(RayonPool::new(workers)?),
        })
    }

    /// The GIL of a `threads` pool built with `gil: true`.
    pub fn gil(&self) -> Option<&std::sync::Arc<crate::gil::Gil>> {
        match self {
            Pool::Threads(p) => p.gil(),
            _ => None,
        }
    }
}

macro_rules! each_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Serial($p) => $body,
            Pool::Threads($p) => $body,
            Pool::Processes($p) => $body,
            Pool::Async($p) => $body,
            Pool::Rayon($p) => $body,
        }
    };
}

impl Executor for Pool {
    fn model(&self) -> Model {
        each_pool!(self, p => p.model())
    }
    fn workers(&self) -> usize {
        each_pool!(self, p => p.workers())
    }
    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        each_pool!(self, p => p.shutdown(wait, cancel_pending))
    }
}

impl<J: RemoteTask> Runs<J> for Pool {
    fn submit_task(
        &self,
        task: J,
        block: bool,
    ) -> Result<TaskHandle<J::Output>, TrySubmitError<J>> {
        each_pool!(self, p => p.submit_task(task, block))
    }
    fn submit_batch(
        &self,
        tasks: Vec<J>,
    ) -> Result<TaskHandle<BatchResult<J::Output>>, SubmitError<Vec<J>>> {
        each_pool!(self, p => p.submit_batch(tasks))
    }
}

/// Several tasks run as one unit of work on one worker; each task's panic is its own error
/// (reported under the batch's task id).
#[derive(Debug)]
pub(crate) struct Batch<J>(pub(crate) Vec<J>);

impl<J: Task> Task for Batch<J> {
    type Output = BatchResult<J::Output>;
    fn run(self) -> Self::Output {
        let id = crate::deadlock::current_task().unwrap_or(crate::task::TaskId(0));
        self.0
            .into_iter()
            .map(|t| crate::handle::catch(id, || t.run()))
            .collect()
    }
}
