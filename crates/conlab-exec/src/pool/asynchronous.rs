//! `async`: a tokio event loop, the lecture's asyncio. One worker is one loop on one thread
//! (`current_thread`, exactly asyncio's model); more workers are tokio's multi-threaded
//! scheduler. Non-blocking: futures submitted with [`AsyncPool::submit_future`] yield at every
//! `.await`, so thousands of slow I/O waits share one thread.
//!
//! A plain closure submitted here runs *on the loop* and blocks it until it returns — that is
//! the lecture's lesson about CPU work in asyncio, reproduced, not hidden. Send CPU work to
//! the blocking pool with [`AsyncPool::submit_blocking`] (asyncio's `run_in_executor`).

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use super::{Batch, BatchResult, Executor, Gate, Runs};
use crate::deadlock::MonitorId;
use crate::error::{Error, SubmitError, TrySubmitError};
use crate::handle::{Slot, TaskHandle, new_task, panic_message, run_task};
use crate::model::Model;
use crate::sync::lock;
use crate::task::{Task, TaskId};
use std::sync::Arc;

/// A tokio runtime on its own thread(s), with the conlab futures API.
///
/// ```
/// use conlab_exec::AsyncPool;
/// use std::time::{Duration, Instant};
/// let pool = AsyncPool::new(1).unwrap();
/// let start = Instant::now();
/// // The lecture's kettle: two waits overlap on one thread.
/// let kettle = pool.submit_future(async { tokio::time::sleep(Duration::from_millis(30)).await; "kettle" }).unwrap();
/// let cups = pool.submit_future(async { tokio::time::sleep(Duration::from_millis(20)).await; "cups" }).unwrap();
/// assert_eq!((kettle.wait().unwrap(), cups.wait().unwrap()), ("kettle", "cups"));
/// assert!(start.elapsed() < Duration::from_millis(45));
/// ```
pub struct AsyncPool {
    handle: Handle,
    workers: usize,
    gate: Gate,
    next_id: AtomicU64,
    /// Set by `shutdown(_, cancel_pending: true)`: tasks not yet started are dropped.
    cancel_pending: std::sync::Arc<AtomicBool>,
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    driver: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for AsyncPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPool")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl AsyncPool {
    /// An event loop with `workers` threads (1: a single-threaded loop, like asyncio).
    pub fn new(workers: usize) -> Result<Self, Error> {
        let workers = workers.max(1);
        let mut builder = if workers == 1 {
            Builder::new_current_thread()
        } else {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(workers);
            b
        };
        let runtime = builder
            .enable_all()
            .thread_name("conlab-async")
            .build()
            .map_err(|e| Error::Worker(format!("starting the tokio runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        // The driver thread owns the runtime and, for a current-thread loop, is the loop.
        let driver = std::thread::Builder::new()
            .name("conlab-async-loop".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| Error::Worker(format!("starting the event-loop thread: {e}")))?;
        Ok(AsyncPool {
            handle,
            workers,
            gate: Gate::default(),
            next_id: AtomicU64::new(0),
            cancel_pending: std::sync::Arc::new(AtomicBool::new(false)),
            stop: std::sync::Mutex::new(Some(stop)),
            driver: std::sync::Mutex::new(Some(driver)),
        })
    }

    /// The runtime's handle, for code that wants tokio directly.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    fn next_id(&self) -> TaskId {
        TaskId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Spawns `future` on the loop (asyncio's `create_task`); a panic inside it becomes the
    /// task's error.
    pub fn submit_future<F>(&self, future: F) -> Result<TaskHandle<F::Output>, SubmitError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(_pass) = self.gate.enter() else {
            return Err(SubmitError(future));
        };
        let (slot, handle) = new_task(self.next_id(), MonitorId::NONE);
        self.handle
            .spawn(Guarded::new(slot, self.cancel_pending.clone(), future));
        Ok(handle)
    }

    /// Runs `task` on tokio's blocking pool (asyncio's `loop.run_in_executor`): the loop stays
    /// free.
    pub fn submit_blocking<J: Task>(
        &self,
        task: J,
    ) -> Result<TaskHandle<J::Output>, SubmitError<J>> {
        let Some(_pass) = self.gate.enter() else {
            return Err(SubmitError(task));
        };
        let (slot, handle) = new_task(self.next_id(), MonitorId::NONE);
        self.handle.spawn_blocking(move || {
            if slot.try_start() {
                run_task(task, &slot);
            }
        });
        Ok(handle)
    }

    /// Runs `future` on the loop and waits for it (asyncio's `run`).
    pub fn run<F>(&self, future: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.submit_future(future)
            .map_err(|_| Error::Closed)?
            .wait()
    }
}

/// A submitted future with its slot: completes the slot when the future finishes, panics, or
/// is dropped unfinished (the runtime shut down), so no handle waits forever.
struct Guarded<F: Future> {
    slot: Option<Arc<Slot<F::Output>>>,
    started: bool,
    cancel_pending: std::sync::Arc<AtomicBool>,
    future: F,
}

impl<F: Future> Guarded<F> {
    fn new(
        slot: Arc<Slot<F::Output>>,
        cancel_pending: std::sync::Arc<AtomicBool>,
        future: F,
    ) -> Self {
        Guarded {
            slot: Some(slot),
            started: false,
            cancel_pending,
            future,
        }
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self` and
        // `Guarded` has no `Unpin` impl that would allow it; `slot` is not pinned and is only
        // taken, never projected. Exercised by every async-pool test.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(slot) = this.slot.as_ref() else {
            return Poll::Ready(());
        };
        if !this.started {
            if this.cancel_pending.load(Ordering::Acquire) && slot.try_cancel() {
                let task = slot.id();
                slot.complete(Err(Error::ShutDown { task }));
                this.slot = None;
                return Poll::Ready(());
            }
            if !slot.try_start() {
                // Cancelled while queued: the canceller completed the slot.
                this.slot = None;
                return Poll::Ready(());
            }
            this.started = true;
        }
        // SAFETY: as above; `this.future` stays where it is.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                if let Some(slot) = this.slot.take() {
                    slot.complete(Ok(value));
                }
                Poll::Ready(())
            }
            Err(payload) => {
                if let Some(slot) = this.slot.take() {
                    let task = slot.id();
                    slot.complete(Err(Error::TaskPanicked {
                        task,
                        message: panic_message(payload.as_ref()),
                    }));
                }
                Poll::Ready(())
            }
        }
    }
}

impl<F: Future> Drop for Guarded<F> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let task = slot.id();
            slot.complete(Err(Error::ShutDown { task }));
        }
    }
}

impl Executor for AsyncPool {
    fn model(&self) -> Model {
        Model::Async
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        self.gate.close();
        if cancel_pending {
            self.cancel_pending.store(true, Ordering::Release);
        }
        if wait {
            // Let every spawned task finish before the loop stops.
            let metrics = self.handle.metrics();
            let mut pause = Duration::from_micros(10);
            while metrics.num_alive_tasks() > 0 && Handle::try_current().is_err() {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
        }
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        if wait {
            let driver = lock(&self.driver).take();
            if let Some(driver) = driver
                && driver.thread().id() != std::thread::current().id()
            {
                let _ = driver.join();
            }
        }
    }
}

impl Drop for AsyncPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl<J: Task> Runs<J> for AsyncPool {
    /// The closure runs on the event loop and blocks it while it runs (the lesson).
    fn submit_task(
        &self,
        task: J,
        _block: bool,
    ) -> Result<TaskHandle<J::Output>, TrySubmitError<J>> {
        let Some(_pass) = self.gate.enter() else {
            return Err(TrySubmitError::ShutDown(task));
        };
        let (slot, handle) = new_task(self.next_id(), MonitorId::NONE);
        self.handle.spawn(Guarded::new(
            slot,
            self.cancel_pending.clone(),
            async move { task.run() },
        ));
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
