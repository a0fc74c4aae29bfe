//! `rayon`: rayon's work-stealing pool. Each worker keeps its own deque and steals from the
//! others when it runs dry, so uneven tasks balance themselves without a central queue; data
//! parallelism (`par_iter`) runs inside it through [`RayonPool::install`]. Blocking: tasks
//! should not block (a blocked rayon worker steals nothing), but waits are tracked for
//! deadlocks as in the thread pool.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Batch, BatchResult, Executor, Gate, Runs};
use crate::deadlock::Monitor;
use crate::error::{Error, SubmitError, TrySubmitError};
use crate::handle::{TaskCell, TaskHandle};
use crate::model::Model;
use crate::task::{Task, TaskId};

/// A rayon thread pool with the conlab futures API on top.
///
/// ```
/// use conlab_exec::{Executor, RayonPool};
/// use rayon::prelude::*;
/// let pool = RayonPool::new(2).unwrap();
/// assert_eq!(pool.submit(|| 1 + 1).unwrap().wait().unwrap(), 2);
/// let total: u64 = pool.install(|| (1..=100u64).into_par_iter().sum());
/// assert_eq!(total, 5050);
/// ```
pub struct RayonPool {
    pool: rayon::ThreadPool,
    workers: usize,
    gate: Gate,
    next_id: AtomicU64,
    monitor: Arc<Monitor>,
    /// Tasks spawned and not yet finished: rayon has no queue to inspect, so shutdown waits
    /// on this count.
    outstanding: Arc<AtomicUsize>,
    cancel_pending: Arc<AtomicBool>,
}

impl fmt::Debug for RayonPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RayonPool")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl RayonPool {
    /// A work-stealing pool of `workers` threads.
    pub fn new(workers: usize) -> Result<Self, Error> {
        let workers = workers.max(1);
        let monitor = Monitor::new(workers);
        let for_threads = monitor.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("conlab-rayon-{i}"))
            .start_handler(move |_| for_threads.enter_worker())
            .build()
            .map_err(|e| Error::Worker(format!("starting rayon threads: {e}")))?;
        Ok(RayonPool {
            pool,
            workers,
            gate: Gate::default(),
            next_id: AtomicU64::new(0),
            monitor,
            outstanding: Arc::new(AtomicUsize::new(0)),
            cancel_pending: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Runs `f` inside the pool, so rayon's parallel iterators in it use these threads.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

impl Executor for RayonPool {
    fn model(&self) -> Model {
        Model::Rayon
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        self.gate.close();
        if cancel_pending {
            self.cancel_pending.store(true, Ordering::Release);
        }
        if wait && rayon::current_thread_index().is_none() {
            let mut pause = Duration::from_micros(10);
            while self.outstanding.load(Ordering::Acquire) > 0 {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
        }
    }
}

impl Drop for RayonPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl<J: Task> Runs<J> for RayonPool {
    fn submit_task(
        &self,
        task: J,
        _block: bool,
    ) -> Result<TaskHandle<J::Output>, TrySubmitError<J>> {
        let Some(_pass) = self.gate.enter() else {
            return Err(TrySubmitError::ShutDown(task));
        };
        let id = TaskId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let (job, handle) = TaskCell::new(id, self.monitor.id(), task);
        let outstanding = self.outstanding.clone();
        let cancel = self.cancel_pending.clone();
        outstanding.fetch_add(1, Ordering::AcqRel);
        self.pool.spawn(move || {
            if cancel.load(Ordering::Acquire) {
                job.abandon();
            } else {
                job.run();
            }
            outstanding.fetch_sub(1, Ordering::AcqRel);
        });
        Ok(handle)
    }

    fn submit_batch(
        &self,
        tasks: Vec<J>,
    ) -> Result<TaskHandle<BatchResult<J::Output>>, SubmitError<Vec<J>>> {
        self.submit_task(Batch(tasks), true)
            .map_err(|e| SubmitError(e.into_inner().0))
    }
}
