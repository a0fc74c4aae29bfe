//! The errors a task, a wait or a submission can end in, in the user's terms.
//!
//! One enum for the crate (STYLE.md "Errors"): a task that panicked, was cancelled, lost its
//! worker process, or a wait that would never return because of a deadlock. A submission that
//! cannot be accepted gives the task back ([`SubmitError`]), as crossbeam's `SendError` does,
//! so nothing the caller owned is lost.

use std::fmt;
use std::time::Duration;

use crate::task::TaskId;

/// Why a task did not produce its value, or why a wait returned without one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task panicked; the pool caught it and keeps working.
    #[error("task {task} panicked: {message}")]
    TaskPanicked {
        /// The task that panicked.
        task: TaskId,
        /// The panic's message, when it was a string.
        message: String,
    },
    /// The task was cancelled while it was still queued, so it never ran.
    #[error("task {task} was cancelled before it started")]
    Cancelled {
        /// The cancelled task.
        task: TaskId,
    },
    /// The worker process running the task died (killed by a signal or exited) mid-task.
    /// The worker was replaced; no other task was lost.
    #[error("task {task}: worker process {pid} died while running it ({cause})")]
    WorkerCrashed {
        /// The task that was running when the worker died.
        task: TaskId,
        /// The worker's process id.
        pid: u32,
        /// How it died: `killed by signal 9 (SIGKILL)`, `exited with status 3`.
        cause: String,
    },
    /// Every worker of the pool is blocked waiting on tasks that can only run on the same
    /// workers (or the waits form a cycle): the wait would never return.
    #[error(
        "deadlock: task {waiter} waits on task {awaited}, but {reason}; \
         do not wait on a pool's tasks from inside that pool, or give it more workers"
    )]
    Deadlock {
        /// The task whose wait was refused.
        waiter: TaskId,
        /// The task it waited on.
        awaited: TaskId,
        /// What closes the cycle, e.g. `every one of the pool's 1 workers is blocked ...`.
        reason: String,
    },
    /// The task was still queued when the pool shut down without running pending tasks.
    #[error("task {task} was dropped: the pool shut down before it ran")]
    ShutDown {
        /// The task that never ran.
        task: TaskId,
    },
    /// A worker process could not run the task: it could not decode it, or the worker binary
    /// does not register its kind.
    #[error("task {task}: the worker process could not run it: {message}")]
    Remote {
        /// The task that failed.
        task: TaskId,
        /// What the worker said.
        message: String,
    },
    /// The worker process could not be started or spoke nonsense; the pool cannot make progress.
    #[error("worker process failure: {0}")]
    Worker(String),
    /// The pool was shut down before this task could be submitted.
    #[error("the pool is shut down and accepts no more tasks")]
    Closed,
    /// A bounded wait ran out of time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

impl Error {
    /// The task this error is about, when there is one.
    pub fn task(&self) -> Option<TaskId> {
        match self {
            Error::TaskPanicked { task, .. }
            | Error::Cancelled { task }
            | Error::WorkerCrashed { task, .. }
            | Error::ShutDown { task }
            | Error::Remote { task, .. } => Some(*task),
            Error::Deadlock { waiter, .. } => Some(*waiter),
            Error::Worker(_) | Error::Closed | Error::Timeout(_) => None,
        }
    }
}

/// A submission the pool refused because it is shut down; the task is given back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SubmitError<T>(pub T);

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubmitError(..)")
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool is shut down and accepts no more tasks")
    }
}

impl<T> std::error::Error for SubmitError<T> {}

/// Why [`try_submit`](crate::Executor::try_submit) did not take the task; it is given back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySubmitError<T> {
    /// The queue is full: submit later, or use the blocking `submit` for backpressure.
    Full(T),
    /// The pool is shut down.
    ShutDown(T),
}

impl<T> TrySubmitError<T> {
    /// The task that was not taken.
    pub fn into_inner(self) -> T {
        match self {
            TrySubmitError::Full(t) | TrySubmitError::ShutDown(t) => t,
        }
    }
}

impl<T> fmt::Debug for TrySubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for TrySubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("the pool's queue is full"),
            TrySubmitError::ShutDown(_) => {
                f.write_str("the pool is shut down and accepts no more tasks")
            }
        }
    }
}

impl<T> std::error::Error for TrySubmitError<T> {}

impl<T> From<SubmitError<T>> for TrySubmitError<T> {
    fn from(e: SubmitError<T>) -> Self {
        TrySubmitError::ShutDown(e.0)
    }
}
