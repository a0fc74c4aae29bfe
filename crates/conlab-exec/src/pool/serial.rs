//! `serial`: one thread, no pool at all. A task runs inside `submit`, on the caller's thread,
//! so every handle is done as soon as it exists. This is the baseline every speedup in
//! conlab is measured against. Blocking: yes, by definition.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Batch, BatchResult, Executor, Gate, Runs};
use crate::deadlock::MonitorId;
use crate::error::{SubmitError, TrySubmitError};
use crate::handle::{TaskHandle, new_task, run_task};
use crate::model::Model;
use crate::task::{Task, TaskId};

/// Runs each task at once, in the submitting thread.
///
/// ```
/// use conlab_exec::{Executor, SerialPool};
/// let pool = SerialPool::new();
/// let h = pool.submit(|| 6 * 7).unwrap();
/// assert!(h.is_done());
/// assert_eq!(h.wait().unwrap(), 42);
/// ```
#[derive(Debug, Default)]
pub struct SerialPool {
    gate: Gate,
    next_id: AtomicU64,
}

impl SerialPool {
    /// A serial "pool".
    pub fn new() -> Self {
        Self::default()
    }

    fn next_id(&self) -> TaskId {
        TaskId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl Executor for SerialPool {
    fn model(&self) -> Model {
        Model::Serial
    }
    fn workers(&self) -> usize {
        1
    }
    fn shutdown(&self, _wait: bool, _cancel_pending: bool) {
        self.gate.close();
    }
}

impl<J: Task> Runs<J> for SerialPool {
    fn submit_task(
        &self,
        task: J,
        _block: bool,
    ) -> Result<TaskHandle<J::Output>, TrySubmitError<J>> {
        let Some(_pass) = self.gate.enter() else {
            return Err(TrySubmitError::ShutDown(task));
        };
        let (slot, handle) = new_task(self.next_id(), MonitorId::NONE);
        if slot.try_start() {
            run_task(task, &slot);
        }
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
