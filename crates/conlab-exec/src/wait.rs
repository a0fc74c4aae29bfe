//! Waiting on many handles at once: [`as_completed`] (results in completion order) and
//! [`wait`] (return when all, the first, or the first failing one is done), as in
//! `concurrent.futures`.
//!
//! Both work the same way: every handle is told to send its index down one channel when it
//! completes, so the caller sleeps in one `recv` instead of polling N handles.

use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::error::Error;
use crate::handle::TaskHandle;

/// The iterator [`as_completed`] returns: `(index in the input, result)` as each task
/// finishes.
pub struct AsCompleted<T> {
    handles: Vec<Option<TaskHandle<T>>>,
    done: Receiver<usize>,
    remaining: usize,
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// Yields each handle's result as soon as it completes, with its index in `handles`, so a
/// result can be matched to its input (the lecture's `future_to_url`).
///
/// ```
/// use conlab_exec::{as_completed, Executor, ThreadPool};
/// let pool = ThreadPool::new(2);
/// let urls: [&'static str; 3] = ["a", "b", "c"];
/// let handles = urls.into_iter().map(|u| pool.submit(move || u.len()).unwrap()).collect();
/// for (i, result) in as_completed(handles) {
///     println!("{} page is {} bytes", urls[i], result.unwrap());
/// }
/// ```
pub fn as_completed<T: Send + 'static>(handles: Vec<TaskHandle<T>>) -> AsCompleted<T> {
    let (tx, rx) = crossbeam_channel::unbounded();
    for (index, h) in handles.iter().enumerate() {
        h.slot().notify(&tx, index);
    }
    AsCompleted {
        remaining: handles.len(),
        handles: handles.into_iter().map(Some).collect(),
        done: rx,
    }
}

impl<T: Send + 'static> Iterator for AsCompleted<T> {
    type Item = (usize, Result<T, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // The handles keep their senders alive until each has sent, so this cannot hang on a
        // disconnected channel while results are outstanding.
        let index = self.done.recv().ok()?;
        let handle = self.handles.get_mut(index)?.take()?;
        self.remaining -= 1;
        let result = handle
            .slot()
            .take()
            .unwrap_or(Err(Error::Timeout(Duration::ZERO)));
        Some((index, result))
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        for h in self.handles.iter().flatten() {
            h.slot().forget_waiter();
        }
    }
}

/// When [`wait`] returns, as Python's `return_when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// When every task is done (`ALL_COMPLETED`).
    All,
    /// When any task is done (`FIRST_COMPLETED`).
    FirstCompleted,
    /// When any task fails, or all are done (`FIRST_EXCEPTION`).
    FirstError,
}

/// What [`wait`] saw: indices into the handles, split as Python's `(done, not_done)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WaitOutcome {
    /// Handles that are done, in the order they completed (already-done ones first).
    pub done: Vec<usize>,
    /// Handles still queued or running.
    pub pending: Vec<usize>,
}

/// Waits until `return_when` holds for `handles`, or `timeout` passes; the handles stay
/// with the caller, so results are then taken with [`TaskHandle::wait`].
///
/// ```
/// use conlab_exec::{wait, Executor, ReturnWhen, ThreadPool};
/// let pool = ThreadPool::new(2);
/// let handles: Vec<_> = (0..4).map(|i| pool.submit(move || i).unwrap()).collect();
/// let outcome = wait(&handles, ReturnWhen::All, None);
/// assert_eq!(outcome.done.len(), 4);
/// assert!(outcome.pending.is_empty());
/// ```
pub fn wait<T: Send + 'static>(
    handles: &[TaskHandle<T>],
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> WaitOutcome {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let (tx, rx) = crossbeam_channel::unbounded();
    for (index, h) in handles.iter().enumerate() {
        h.slot().notify(&tx, index);
    }
    drop(tx);
    let mut done = Vec::new();
    let mut seen = vec![false; handles.len()];
    let satisfied = |done: &[usize]| match return_when {
        ReturnWhen::All => done.len() == handles.len(),
        ReturnWhen::FirstCompleted => !done.is_empty() || handles.is_empty(),
        ReturnWhen::FirstError => {
            done.len() == handles.len() || done.iter().any(|&i| handles[i].slot().is_err())
        }
    };
    while !satisfied(&done) {
        let index = match deadline {
            None => crate::gil::allow_threads(|| rx.recv().ok()),
            Some(d) => crate::gil::allow_threads(|| rx.recv_deadline(d)).ok(),
        };
        let Some(index) = index else { break };
        if !std::mem::replace(&mut seen[index], true) {
            done.push(index);
        }
    }
    for h in handles {
        h.slot().forget_waiter();
    }
    // Tasks that finished after the loop stopped listening are done too.
    for (i, h) in handles.iter().enumerate() {
        if !seen[i] && h.is_done() {
            seen[i] = true;
            done.push(i);
        }
    }
    let pending = (0..handles.len()).filter(|&i| !seen[i]).collect();
    WaitOutcome { done, pending }
}
