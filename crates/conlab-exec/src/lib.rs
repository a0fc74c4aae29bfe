//! # conlab-exec: the lecture's concurrency models behind one futures API
//!
//! The lecture compares ways to run work: one thing after another (`serial`), a pool of OS
//! threads fed by a queue (`threads`, optionally under an emulated GIL so CPython's behaviour
//! can be reproduced), a pool of worker processes that only accepts picklable — here,
//! serialisable — work (`processes`), an event loop of coroutines (`async`), and, beyond the
//! lecture, work stealing (`rayon`). This crate implements each of them and puts them behind
//! Python's `concurrent.futures` surface:
//!
//! | Python | conlab-exec |
//! |---|---|
//! | `executor.submit(fn)` | [`Executor::submit`] → [`TaskHandle`] |
//! | `future.done()`, `.result()`, `.result(timeout)`, `.cancel()` | [`TaskHandle::is_done`], [`wait`](TaskHandle::wait), [`wait_timeout`](TaskHandle::wait_timeout), [`cancel`](TaskHandle::cancel) |
//! | `executor.map(fn, xs, chunksize=n)` | [`Executor::map`], [`Executor::map_chunked`] |
//! | `as_completed(fs)`, `wait(fs, return_when=...)` | [`as_completed`], [`wait()`] with [`ReturnWhen`] |
//! | `executor.shutdown(wait, cancel_futures)` | [`Executor::shutdown`] |
//!
//! and adds what Python leaves out: a worker process killed mid-task fails only that task
//! ([`Error::WorkerCrashed`]); a pool whose workers all wait on each other reports
//! [`Error::Deadlock`] instead of hanging; a task that cannot cross a process boundary is a
//! compile error, not a runtime `PicklingError`.
//!
//! ```
//! use conlab_exec::{as_completed, Executor, ThreadPool};
//!
//! let pool = ThreadPool::new(3);
//! let handles: Vec<_> = [3u64, 1, 2]
//!     .into_iter()
//!     .map(|n| pool.submit(move || n * 10).unwrap())
//!     .collect();
//! let mut results: Vec<u64> = as_completed(handles).map(|(_, r)| r.unwrap()).collect();
//! results.sort();
//! assert_eq!(results, [10, 20, 30]);
//! ```
//!
//! This crate knows nothing of workloads, HTTP or output: it never prints and never exits.

mod deadlock;
mod error;
pub mod gil;
mod handle;
mod model;
mod orphans;
mod pool;
mod sync;
mod task;
mod wait;

pub use error::{Error, SubmitError, TrySubmitError};
pub use handle::{SPIN_BUDGET, TaskHandle, TaskState};
pub use model::{Model, ParseModelError};
pub use orphans::die_with_parent;
pub use pool::processes::{self, ProcessPool};
pub use pool::{
    AsyncPool, BatchResult, Executor, Map, Pool, PoolOptions, RayonPool, Runs, SerialPool,
    ThreadPool, available_cores, default_workers,
};
pub use sync::lock;
pub use task::{RemoteTask, Task, TaskId, Wire};
pub use wait::{AsCompleted, ReturnWhen, WaitOutcome, as_completed, wait};
