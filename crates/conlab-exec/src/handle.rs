//! [`TaskHandle`]: the future of `concurrent.futures`, and the one-shot slot behind it.
//!
//! A slot is written once by whoever finishes the task (a worker thread, a process pool's
//! reader, an event loop) and read once by whoever holds the handle. It is deliberately
//! lighter than a `Mutex` + `Condvar` pair per task: the state is an atomic the waiter can
//! poll without a lock, the value and the one waiter sit behind an uncontended `Mutex`, and a
//! blocked waiter is woken with `unpark` rather than a condition variable broadcast.
//!
//! Waiting spins for a bounded time before it parks. Here waking a parked thread on the other
//! core costs about 35 us each way (a 72 us pipe round trip), which caps a pool that parks at
//! once near 14k submit-then-wait round trips per second; spinning for up to
//! [`SPIN_BUDGET`] catches a result that is about to arrive, and after that the waiter parks
//! and costs nothing.
//!
//! States: `QUEUED -> RUNNING -> DONE`, or `QUEUED -> CANCELLED -> DONE` when [`cancel`]
//! wins the race against the worker's start. Only the side that wins the compare-exchange
//! out of `QUEUED` may complete the slot through that path, so a cancelled task never runs
//! and a started task can no longer be cancelled, as in Python.
//!
//! [`cancel`]: TaskHandle::cancel

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::deadlock::{Monitor, MonitorId};
use crate::error::Error;
use std::cell::UnsafeCell;
use std::sync::Arc;

#[cfg(not(conlab_loom))]
use crate::sync::lock;
#[cfg(conlab_loom)]
use crate::sync::lock_model as lock;
use crate::sync::{AtomicU8, Mutex, Ordering, thread};
use crate::task::{Task, TaskId};

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;
const DONE: u8 = 3;

/// How long a waiter (or an idle worker) polls before it parks. 100 us is longer than a
/// cross-core wake (~35 us here), so a result that is on its way is caught without a
/// syscall, and short enough that an idle pool stops burning CPU within a millisecond.
pub const SPIN_BUDGET: Duration = Duration::from_micros(100);

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Submitted, waiting for a worker: it can still be cancelled.
    Queued,
    /// A worker has started it.
    Running,
    /// It has a result (a value or an error, including `Cancelled`).
    Done,
}

enum Waiter {
    Nobody,
    Thread(thread::Thread),
    Task(Waker),
    /// `as_completed` / `wait` on many handles: send this handle's index when it completes.
    Notify(Sender<usize>, usize),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Nobody => {}
            Waiter::Thread(t) => t.unpark(),
            Waiter::Task(w) => w.wake(),
            // The receiver may be gone (an abandoned `as_completed`): nobody to tell.
            Waiter::Notify(tx, index) => {
                let _ = tx.send(index);
            }
        }
    }
}

struct Inner<T> {
    result: Option<Result<T, Error>>,
    waiter: Waiter,
    /// When the result arrived: a task's latency is measured to here, not to whenever its
    /// submitter got round to looking.
    completed_at: Option<Instant>,
}

/// The shared, write-once cell between a task's runner and its [`TaskHandle`].
pub(crate) struct Slot<T> {
    id: TaskId,
    state: AtomicU8,
    inner: Mutex<Inner<T>>,
    /// The deadlock monitor of the pool whose workers run this task.
    monitor: MonitorId,
}

/// Anything that holds a task's slot: a bare [`Slot`], or a [`TaskCell`] that also holds the
/// task itself, so a queued task costs one allocation.
pub(crate) trait AsSlot<T>: Send + Sync {
    fn slot(&self) -> &Slot<T>;
}

impl<T: Send> AsSlot<T> for Slot<T> {
    fn slot(&self) -> &Slot<T> {
        self
    }
}

impl<T> Slot<T> {
    pub(crate) fn new(id: TaskId, monitor: MonitorId) -> Self {
        Slot {
            id,
            state: AtomicU8::new(QUEUED),
            inner: Mutex::new(Inner {
                result: None,
                waiter: Waiter::Nobody,
                completed_at: None,
            }),
            monitor,
        }
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// Claims the task for running; false when it was cancelled first (do not run it).
    pub(crate) fn try_start(&self) -> bool {
        // AcqRel: pairs with `cancel`'s exchange so exactly one of the two wins.
        self.state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Claims a queued task for cancellation; the caller must then `complete` it.
    pub(crate) fn try_cancel(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(crate) fn complete(&self, result: Result<T, Error>) {
        let waiter = {
            let now = Instant::now();
            let mut inner = lock(&self.inner);
            inner.result = Some(result);
            inner.completed_at = Some(now);
            // Release under the lock: a waiter that sees DONE finds the result when it locks.
            self.state.store(DONE, Ordering::Release);
            mem::replace(&mut inner.waiter, Waiter::Nobody)
        };
        waiter.wake();
    }

    pub(crate) fn state(&self) -> TaskState {
        match self.state.load(Ordering::Acquire) {
            QUEUED => TaskState::Queued,
            RUNNING | CANCELLED => TaskState::Running,
            _ => TaskState::Done,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Takes the result if there is one, else leaves `waiter` to be woken when there is.
    fn take_or_register(&self, waiter: impl FnOnce() -> Waiter) -> Option<Result<T, Error>> {
        let mut inner = lock(&self.inner);
        match inner.result.take() {
            Some(r) => Some(r),
            None => {
                inner.waiter = waiter();
                None
            }
        }
    }

    /// Blocks until the task is done or `deadline` passes (then `None`).
    fn take_blocking(&self, deadline: Option<Instant>) -> Option<Result<T, Error>> {
        spin_until(|| self.is_done(), SPIN_BUDGET);
        loop {
            let me = thread::current();
            if let Some(r) = self.take_or_register(|| Waiter::Thread(me)) {
                return Some(r);
            }
            while !self.is_done() {
                match deadline {
                    None => thread::park(),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            let mut inner = lock(&self.inner);
                            inner.waiter = Waiter::Nobody;
                            return inner.result.take();
                        }
                        park_timeout(d - now);
                    }
                }
            }
        }
    }

    /// Registers for `as_completed`: sends `index` now if done, else when it completes.
    pub(crate) fn notify(&self, tx: &Sender<usize>, index: usize) {
        let mut inner = lock(&self.inner);
        if inner.result.is_some() {
            let _ = tx.send(index);
        } else {
            inner.waiter = Waiter::Notify(tx.clone(), index);
        }
    }

    pub(crate) fn forget_waiter(&self) {
        lock(&self.inner).waiter = Waiter::Nobody;
    }

    pub(crate) fn completed_at(&self) -> Option<Instant> {
        lock(&self.inner).completed_at
    }

    pub(crate) fn is_err(&self) -> bool {
        matches!(lock(&self.inner).result, Some(Err(_)))
    }

    pub(crate) fn take(&self) -> Option<Result<T, Error>> {
        lock(&self.inner).result.take()
    }
}

#[cfg(not(conlab_loom))]
fn park_timeout(d: Duration) {
    std::thread::park_timeout(d);
}

#[cfg(conlab_loom)]
fn park_timeout(_: Duration) {
    thread::yield_now();
}

/// Polls `done` until it is true or `budget` has passed: a few pause instructions first, then
/// yielding the core (on 2 cores a spinning waiter must not starve the worker it waits for).
pub(crate) fn spin_until(mut done: impl FnMut() -> bool, budget: Duration) -> bool {
    if cfg!(conlab_loom) {
        // Under the model checker every extra poll multiplies the interleavings to explore.
        return done();
    }
    // Exponential back-off between polls (1, 2, 4 ... 64 pause instructions): each poll reads
    // a cache line the other side is writing, so polling less often steals it less often.
    for step in 0..7 {
        if done() {
            return true;
        }
        for _ in 0..1 << step {
            std::hint::spin_loop();
        }
    }
    let start = Instant::now();
    loop {
        for _ in 0..16 {
            if done() {
                return true;
            }
            std::thread::yield_now();
        }
        if start.elapsed() >= budget {
            return done();
        }
    }
}

/// A task that has been submitted: wait for its result, poll it, or cancel it while queued.
///
/// The `concurrent.futures.Future` of the lecture, in Rust terms: `done()` is
/// [`is_done`](Self::is_done), `result()` is [`wait`](Self::wait) (it takes the handle, because
/// the value moves out), `result(timeout)` is [`wait_timeout`](Self::wait_timeout). A handle is
/// also a `std::future::Future`, so async code can `.await` it.
///
/// ```
/// use conlab_exec::{Executor, ThreadPool};
/// let pool = ThreadPool::new(2);
/// let handle = pool.submit(|| "hello").unwrap();
/// assert_eq!(handle.wait().unwrap(), "hello");
/// ```
pub struct TaskHandle<T> {
    cell: Arc<dyn AsSlot<T>>,
}

impl<T: Send + 'static> TaskHandle<T> {
    /// A handle that is already done with `result`.
    pub(crate) fn ready(result: Result<T, Error>) -> Self {
        let slot = Slot::new(TaskId(0), MonitorId::NONE);
        slot.complete(result);
        TaskHandle {
            cell: Arc::new(slot),
        }
    }
}

impl<T> TaskHandle<T> {
    pub(crate) fn slot(&self) -> &Slot<T> {
        self.cell.slot()
    }

    /// The task's id in its pool.
    pub fn id(&self) -> TaskId {
        self.slot().id
    }

    /// True once the task has a result (a value, a panic, a crash, or a cancellation).
    pub fn is_done(&self) -> bool {
        self.slot().is_done()
    }

    /// When the task's result arrived (`None` while it has none): the end of its latency.
    pub fn completed_at(&self) -> Option<Instant> {
        self.slot().completed_at()
    }

    /// Where the task is: queued, running or done.
    pub fn state(&self) -> TaskState {
        self.slot().state()
    }

    /// Cancels the task if it is still queued, and returns whether it did; a running or
    /// finished task cannot be cancelled (as in Python). A cancelled task's result is
    /// [`Error::Cancelled`].
    pub fn cancel(&self) -> bool {
        let slot = self.slot();
        if slot.try_cancel() {
            slot.complete(Err(Error::Cancelled { task: slot.id }));
            true
        } else {
            false
        }
    }
}

impl<T: Send + 'static> TaskHandle<T> {
    /// Blocks until the task is done and returns its result.
    ///
    /// Called from a worker of the same pool while every worker is blocked the same way, it
    /// returns [`Error::Deadlock`] instead of hanging (the lecture's `wait_on_a`/`wait_on_b`).
    pub fn wait(self) -> Result<T, Error> {
        let _blocked = if self.slot().is_done() {
            None
        } else {
            let slot = self.slot();
            Monitor::block_on(slot.monitor, slot.id, || {
                let cell = self.cell.clone();
                Box::new(move || cell.slot().is_done())
            })?
        };
        // A blocked wait releases the GIL, as `Future.result()` does in CPython.
        crate::gil::allow_threads(|| self.wait_slot(None))
            .expect("a wait without a deadline returns only with a result")
    }

    /// Waits at most `timeout`: `Ok(result)` when the task finished in time, `Err(self)`
    /// (the handle, still usable) when it did not.
    ///
    /// ```
    /// # use conlab_exec::{Executor, ThreadPool};
    /// # use std::time::Duration;
    /// let pool = ThreadPool::new(1);
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let blocked = pool.submit(move || gate.recv().unwrap()).unwrap();
    /// let blocked = blocked.wait_timeout(Duration::from_millis(1)).unwrap_err(); // not yet
    /// release.send(()).unwrap();
    /// assert!(blocked.wait_timeout(Duration::from_secs(10)).unwrap().is_ok());
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<T, Error>, Self> {
        let deadline = Instant::now().checked_add(timeout);
        match crate::gil::allow_threads(|| self.wait_slot(deadline)) {
            Some(r) => Ok(r),
            None => Err(self),
        }
    }

    fn wait_slot(&self, deadline: Option<Instant>) -> Option<Result<T, Error>> {
        self.slot().take_blocking(deadline)
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.slot().id)
            .field("state", &self.slot().state())
            .finish()
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self
            .slot()
            .take_or_register(|| Waiter::Task(cx.waker().clone()))
        {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

/// Creates a queued task's slot and the handle that reads it.
pub(crate) fn new_task<T: Send + 'static>(
    id: TaskId,
    monitor: MonitorId,
) -> (Arc<Slot<T>>, TaskHandle<T>) {
    let slot = Arc::new(Slot::new(id, monitor));
    (slot.clone(), TaskHandle { cell: slot })
}

/// A queued task and its slot in one allocation: the queue holds one `Arc` of it, the handle
/// the other. One allocation per task instead of two, freed by whoever lets go last (usually
/// the submitter, after `wait`), so the submitting thread's allocator cache is not drained by
/// frees on worker threads (see docs/benchmarks.md for the figures).
pub(crate) struct TaskCell<J: Task> {
    slot: Slot<J::Output>,
    /// Taken exactly once, by the thread that moves the slot out of `QUEUED` to run it (or to
    /// give it back); see the `Sync` impl.
    task: UnsafeCell<Option<J>>,
}

// SAFETY: `task` is only touched by the one thread that wins the slot's compare-exchange out
// of `QUEUED` (`run` through `try_start`, `take_back` through `try_cancel`: at most one of
// them succeeds per slot), or by `Drop`, which has the cell to itself. Every other access
// goes through `slot`, which is `Sync` on its own (an atomic and a mutex). Exercised by the
// `loom_task_cell_runs_or_gives_back_once` model and every thread-pool test.
unsafe impl<J: Task> Sync for TaskCell<J> {}

impl<J: Task> AsSlot<J::Output> for TaskCell<J> {
    fn slot(&self) -> &Slot<J::Output> {
        &self.slot
    }
}

impl<J: Task> TaskCell<J> {
    /// A queued task and the handle that will read its result.
    pub(crate) fn new(
        id: TaskId,
        monitor: MonitorId,
        task: J,
    ) -> (Arc<Self>, TaskHandle<J::Output>) {
        let cell = Arc::new(TaskCell {
            slot: Slot::new(id, monitor),
            task: UnsafeCell::new(Some(task)),
        });
        (cell.clone(), TaskHandle { cell })
    }

    /// Runs the task on this thread unless it was cancelled while queued.
    pub(crate) fn run(&self) {
        if self.slot.try_start() {
            // SAFETY: we won QUEUED -> RUNNING, so no other thread touches `task` (see `Sync`).
            let task = unsafe { (*self.task.get()).take() };
            if let Some(task) = task {
                run_task(task, &self.slot);
            }
        }
    }

    /// Drops the task unrun if it is still queued: its handle reports `ShutDown`.
    pub(crate) fn abandon(&self) {
        if self.slot.try_cancel() {
            self.slot
                .complete(Err(Error::ShutDown { task: self.slot.id }));
        }
    }

    /// Takes the task back out if it is still queued (a refused `try_submit`).
    pub(crate) fn take_back(&self) -> Option<J> {
        if self.slot.try_cancel() {
            // SAFETY: we won QUEUED -> CANCELLED, so no other thread touches `task`.
            unsafe { (*self.task.get()).take() }
        } else {
            None
        }
    }
}

/// Runs a claimed task on this thread and completes its slot; a panic becomes the task's
/// [`Error::TaskPanicked`], so the worker survives it.
pub(crate) fn run_task<J: Task>(job: J, slot: &Slot<J::Output>) {
    let id = slot.id;
    let result = Monitor::running(id, || catch(id, || job.run()));
    slot.complete(result);
}

/// Runs `f`, turning a panic into [`Error::TaskPanicked`] for task `id`.
pub(crate) fn catch<T>(id: TaskId, f: impl FnOnce() -> T) -> Result<T, Error> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Error::TaskPanicked {
        task: id,
        message: panic_message(payload.as_ref()),
    })
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

#[cfg(all(test, not(conlab_loom)))]
mod tests {
    use super::*;

    #[test]
    fn cancel_wins_only_while_queued() {
        let (slot, handle) = new_task::<u32>(TaskId(1), MonitorId::NONE);
        assert!(handle.cancel());
        assert!(!slot.try_start(), "a cancelled task must not start");
        assert_eq!(handle.wait(), Err(Error::Cancelled { task: TaskId(1) }));

        let (slot, handle) = new_task::<u32>(TaskId(2), MonitorId::NONE);
        assert!(slot.try_start());
        assert!(!handle.cancel(), "a running task cannot be cancelled");
        slot.complete(Ok(7));
        assert_eq!(handle.wait(), Ok(7));
    }

    #[test]
    fn wait_timeout_gives_the_handle_back_then_the_result() {
        let (slot, handle) = new_task::<&str>(TaskId(3), MonitorId::NONE);
        let handle = handle.wait_timeout(Duration::from_millis(1)).unwrap_err();
        assert_eq!(handle.state(), TaskState::Queued);
        slot.complete(Ok("late"));
        assert_eq!(handle.wait_timeout(Duration::ZERO).unwrap(), Ok("late"));
    }

    #[test]
    fn a_panic_becomes_the_tasks_error() {
        let (slot, handle) = new_task::<u8>(TaskId(4), MonitorId::NONE);
        assert!(slot.try_start());
        run_task(|| -> u8 { panic!("boom") }, &slot);
        match handle.wait() {
            Err(Error::TaskPanicked { task, message }) => {
                assert_eq!(task, TaskId(4));
                assert_eq!(message, "boom");
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
    }

    #[test]
    fn a_waiter_on_another_thread_is_woken() {
        let (slot, handle) = new_task::<u64>(TaskId(5), MonitorId::NONE);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            ready_tx.send(()).unwrap();
            handle.wait()
        });
        ready_rx.recv().unwrap();
        slot.complete(Ok(99));
        assert_eq!(waiter.join().unwrap(), Ok(99));
    }
}

#[cfg(all(test, conlab_loom))]
mod loom_tests {
    //! Every interleaving of the slot's two sides: `RUSTFLAGS="--cfg conlab_loom"
    //! cargo test -p conlab-exec --lib loom`.
    use super::*;

    #[test]
    fn loom_complete_races_wait() {
        loom::model(|| {
            let (slot, handle) = new_task::<u32>(TaskId(1), MonitorId::NONE);
            let t = loom::thread::spawn(move || {
                assert!(slot.try_start());
                slot.complete(Ok(5));
            });
            assert_eq!(handle.slot().take_blocking(None), Some(Ok(5)));
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_task_cell_runs_or_gives_back_once() {
        loom::model(|| {
            let (cell, handle) = TaskCell::new(TaskId(1), MonitorId::NONE, || 5u32);
            let worker = cell.clone();
            let t = loom::thread::spawn(move || worker.run());
            let back = cell.take_back();
            t.join().unwrap();
            match back {
                // Given back before it ran: the worker saw it cancelled and left it alone.
                Some(task) => assert_eq!(task(), 5),
                None => assert_eq!(handle.slot().take_blocking(None), Some(Ok(5))),
            }
        });
    }

    #[test]
    fn loom_cancel_races_start() {
        loom::model(|| {
            let (slot, handle) = new_task::<u32>(TaskId(1), MonitorId::NONE);
            let t = loom::thread::spawn(move || {
                if slot.try_start() {
                    slot.complete(Ok(5));
                    true
                } else {
                    false
                }
            });
            let cancelled = handle.cancel();
            let ran = t.join().unwrap();
            assert_ne!(cancelled, ran, "exactly one of cancel and start wins");
            let r = handle.slot().take_blocking(None).unwrap();
            assert_eq!(r.is_ok(), ran);
        });
    }
}
