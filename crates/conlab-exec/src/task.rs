//! What a pool runs: [`Task`] (any `FnOnce() -> T` closure, or a type of yours) and
//! [`RemoteTask`] (a task that can cross a process boundary because it serialises).
//!
//! The lecture: "ProcessPoolExecutor ... means that only picklable objects can be executed and
//! returned". Here that is a trait bound, so a closure sent to the process pool is a compile
//! error rather than a runtime `PicklingError`:
//!
//! ```compile_fail
//! use conlab_exec::{Executor, ProcessPool};
//! fn send_closure(pool: &ProcessPool) {
//!     // error: the closure is not `RemoteTask` (it cannot be serialised)
//!     let _ = pool.submit(|| 40 + 2);
//! }
//! ```
//!
//! And a task that is not `Send` cannot go to any pool's worker threads:
//!
//! ```compile_fail
//! use conlab_exec::{Executor, ThreadPool};
//! use std::rc::Rc;
//! fn send_rc(pool: &ThreadPool) {
//!     let shared = Rc::new(1);
//!     let _ = pool.submit(move || *shared + 1); // error: `Rc` is not `Send`
//! }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A unit of work a pool can run once.
///
/// Implemented for every `FnOnce() -> T + Send + 'static` closure; implement it for your own
/// types to make them [`RemoteTask`]s.
pub trait Task: Send + 'static {
    /// What the task produces.
    type Output: Send + 'static;
    /// Runs the task to completion on the calling thread.
    fn run(self) -> Self::Output;
}

impl<F, T> Task for F
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;
    fn run(self) -> T {
        self()
    }
}

/// A value that can cross a process boundary: serde both ways, owned, sendable.
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}

/// A task that can run in another process: it serialises, its output serialises, and it has a
/// stable name under which worker processes find it (see
/// [`Registry`](crate::processes::Registry)).
///
/// ```
/// use conlab_exec::{RemoteTask, Task};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Double(u64);
/// impl Task for Double {
///     type Output = u64;
///     fn run(self) -> u64 { self.0 * 2 }
/// }
/// impl RemoteTask for Double {
///     const NAME: &'static str = "example.double";
/// }
/// assert_eq!(Double(21).run(), 42);
/// ```
pub trait RemoteTask: Task<Output: Wire> + Wire {
    /// The name the worker registry knows this task by; unique per binary.
    const NAME: &'static str;
}

/// A task's identity within its pool, in submission order (`#1` is the first task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
