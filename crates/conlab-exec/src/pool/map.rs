//! `Executor::map`: results in input order with a bounded window of tasks in flight.
//!
//! The window is what keeps memory flat: at most `window` tasks (or chunks) are submitted
//! ahead of the one being waited on, so mapping over ten million inputs holds a few dozen
//! handles, never ten million.

use std::collections::VecDeque;
use std::fmt;

use super::{BatchResult, Executor, Runs};
use crate::error::Error;
use crate::handle::TaskHandle;
use crate::task::Task;

/// The iterator [`Executor::map`] returns: each task's result, in input order.
pub struct Map<'a, E, J: Task, I> {
    pool: &'a E,
    tasks: I,
    chunk_size: usize,
    window: usize,
    in_flight: VecDeque<(usize, TaskHandle<BatchResult<J::Output>>)>,
    ready: std::vec::IntoIter<Result<J::Output, Error>>,
}

impl<E, J: Task, I> fmt::Debug for Map<'_, E, J, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("chunk_size", &self.chunk_size)
            .field("window", &self.window)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<'a, E, J, I> Map<'a, E, J, I>
where
    E: Executor + Runs<J>,
    J: Task,
    I: Iterator<Item = J>,
{
    pub(crate) fn new(pool: &'a E, tasks: I, chunk_size: usize) -> Self {
        Map {
            pool,
            tasks,
            chunk_size: chunk_size.max(1),
            // Enough chunks to keep every worker busy while the next one is waited on.
            window: (pool.workers() * 4).max(4),
            in_flight: VecDeque::new(),
            ready: Vec::new().into_iter(),
        }
    }

    /// Sets how many units of work may be in flight ahead of the one being waited on.
    pub fn window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    fn refill(&mut self) {
        while self.in_flight.len() < self.window {
            let chunk: Vec<J> = self.tasks.by_ref().take(self.chunk_size).collect();
            if chunk.is_empty() {
                return;
            }
            let len = chunk.len();
            match self.pool.submit_batch(chunk) {
                Ok(handle) => self.in_flight.push_back((len, handle)),
                Err(refused) => {
                    let n = refused.0.len();
                    let closed = (0..n).map(|_| Err(Error::Closed)).collect();
                    self.in_flight.push_back((n, TaskHandle::ready(Ok(closed))));
                    return;
                }
            }
        }
    }
}

impl<E, J, I> Iterator for Map<'_, E, J, I>
where
    E: Executor + Runs<J>,
    J: Task,
    I: Iterator<Item = J>,
{
    type Item = Result<J::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.ready.next() {
                return Some(r);
            }
            self.refill();
            let (len, handle) = self.in_flight.pop_front()?;
            self.ready = match handle.wait() {
                Ok(results) => results.into_iter(),
                // The whole chunk failed together (its worker process died, say): every task
                // in it reports that error, so the output still has one item per input.
                Err(e) => (0..len)
                    .map(|_| Err(e.clone()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            };
        }
    }
}
