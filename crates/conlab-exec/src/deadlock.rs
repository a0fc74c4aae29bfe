//! Deadlock detection for pools whose workers block: the lecture's two hangs, reported.
//!
//! The lecture shows two programs that hang forever: a one-worker pool whose task waits on a
//! task it submitted to the same pool (`wait_on_future`), and two tasks that wait on each other
//! (`wait_on_a` / `wait_on_b`). Python hangs; conlab's wait returns [`Error::Deadlock`].
//!
//! Each pool with blocking workers (threads, rayon) owns a [`Monitor`]: the *wait-for graph*
//! of its workers. A worker that starts an untimed wait on a task of its own pool records the
//! edge `my task -> awaited task` before it parks, and removes it when the wait returns. The
//! wait is refused (and so the edge never added) when adding it would close one of two shapes:
//!
//! 1. **A cycle**: following `awaited -> whatever awaited waits on -> ...` comes back to the
//!    waiter. Every task on the cycle is running on a worker that is parked waiting on the
//!    next one: none can finish.
//! 2. **A full house**: every worker of the pool is now parked on a task of the pool that is
//!    not done. A queued task needs a free worker and there is none; a running one is on a
//!    parked worker. Nothing can move.
//!
//! Both checks read only the graph and the awaited tasks' "done" flags under the monitor's
//! lock, so they cannot see a false deadlock: a task on a parked worker cannot complete, and a
//! task that completed is seen as done. Waits with a timeout are never refused (they end by
//! themselves), and waits on another pool's tasks are not tracked (that pool's workers may
//! still be free). The check costs nothing on the fast path: only a wait that is about to park
//! on a worker thread takes the lock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::sync::lock;
use crate::task::TaskId;

thread_local! {
    /// The monitor of the pool this thread is a worker of.
    static WORKER_OF: RefCell<Option<Arc<Monitor>>> = const { RefCell::new(None) };
    /// The task this worker thread is running right now.
    static CURRENT_TASK: Cell<Option<TaskId>> = const { Cell::new(None) };
}

/// Whether an awaited task is done yet: the one thing the monitor needs to know of a task
/// besides its id, so that it can be told without knowing what a task handle is.
pub(crate) type DoneProbe = Box<dyn Fn() -> bool + Send>;

struct Edge {
    awaited: TaskId,
    awaited_done: DoneProbe,
}

/// Which pool's monitor a task belongs to: the monitor's address, or [`MonitorId::NONE`] for
/// pools whose workers never block on each other (serial, async, processes). An address
/// rather than an `Arc`: no reference count to bump per task, and a monitor lives as long as
/// its pool, whose tasks are all done before it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MonitorId(usize);

impl MonitorId {
    /// No monitor: waits on such a task are never tracked.
    pub(crate) const NONE: MonitorId = MonitorId(0);
}

/// The wait-for graph of one pool's workers.
pub(crate) struct Monitor {
    workers: usize,
    edges: Mutex<HashMap<TaskId, Edge>>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// Removes a worker's edge when its wait returns.
#[derive(Debug)]
pub(crate) struct Blocked {
    monitor: Arc<Monitor>,
    waiter: TaskId,
}

impl Drop for Blocked {
    fn drop(&mut self) {
        self.monitor.edges().remove(&self.waiter);
    }
}

/// The task the calling worker thread is running, if it is running one.
pub(crate) fn current_task() -> Option<TaskId> {
    CURRENT_TASK.with(Cell::get)
}

impl Monitor {
    /// A monitor for a pool of `workers` threads.
    pub(crate) fn new(workers: usize) -> Arc<Self> {
        Arc::new(Monitor {
            workers,
            edges: Mutex::new(HashMap::new()),
        })
    }

    fn edges(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Edge>> {
        lock(&self.edges)
    }

    /// The id the pool's tasks carry, so that a wait on one can find this monitor.
    pub(crate) fn id(self: &Arc<Self>) -> MonitorId {
        MonitorId(Arc::as_ptr(self) as usize)
    }

    /// Marks the calling thread as one of this pool's workers, for as long as it lives.
    pub(crate) fn enter_worker(self: &Arc<Self>) {
        WORKER_OF.with(|w| *w.borrow_mut() = Some(self.clone()));
    }

    /// Runs `f` as task `id` on this worker, so that waits inside it are attributed to it.
    pub(crate) fn running<T>(id: TaskId, f: impl FnOnce() -> T) -> T {
        let outer = CURRENT_TASK.with(|c| c.replace(Some(id)));
        let out = f();
        CURRENT_TASK.with(|c| c.set(outer));
        out
    }

    /// Called by a wait that is about to block on task `awaited` of the pool `owner`:
    /// records the edge, or refuses the wait with [`Error::Deadlock`] if it would never
    /// return. `None` when the wait is not one this monitor tracks (not on a worker, or
    /// another pool's task).
    pub(crate) fn block_on(
        owner: MonitorId,
        awaited: TaskId,
        awaited_done: impl FnOnce() -> DoneProbe,
    ) -> Result<Option<Blocked>, Error> {
        if owner == MonitorId::NONE {
            return Ok(None);
        }
        let Some(monitor) =
            WORKER_OF.with(|w| w.borrow().as_ref().filter(|m| m.id() == owner).cloned())
        else {
            return Ok(None);
        };
        let Some(waiter) = CURRENT_TASK.with(Cell::get) else {
            return Ok(None);
        };
        let mut edges = monitor.edges();
        edges.insert(
            waiter,
            Edge {
                awaited,
                awaited_done: awaited_done(),
            },
        );
        if let Some(reason) = monitor.deadlock(&edges, waiter) {
            edges.remove(&waiter);
            return Err(Error::Deadlock {
                waiter,
                awaited,
                reason,
            });
        }
        drop(edges);
        Ok(Some(Blocked { monitor, waiter }))
    }

    /// Why the graph, with `waiter`'s new edge, can never make progress, if it cannot.
    fn deadlock(&self, edges: &HashMap<TaskId, Edge>, waiter: TaskId) -> Option<String> {
        let mut path = vec![waiter];
        let mut at = waiter;
        while let Some(edge) = edges.get(&at) {
            if (edge.awaited_done)() {
                break;
            }
            if edge.awaited == waiter {
                let cycle: Vec<String> = path.iter().map(|t| t.to_string()).collect();
                return Some(format!(
                    "the waits form a cycle ({} -> {waiter}): each waits on the next",
                    cycle.join(" -> ")
                ));
            }
            if path.len() > edges.len() {
                break;
            }
            at = edge.awaited;
            path.push(at);
        }
        let all_parked = edges.len() >= self.workers && edges.values().all(|e| !(e.awaited_done)());
        all_parked.then(|| {
            format!(
                "every one of the pool's {} workers is blocked waiting on a task of the same \
                 pool, so no worker is left to run it",
                self.workers
            )
        })
    }
}
