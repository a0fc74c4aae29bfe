//! The lecture's small tasks for process pools: `doubler(number)` (the `multiprocessing`
//! and `Pool.map` examples) and `return_after_5_secs` (a sleep with the GIL released, the
//! `concurrent.futures` examples).

use std::time::Duration;

use conlab_exec::{RemoteTask, Task, gil};
use serde::{Deserialize, Serialize};

/// The lecture's `doubler(number)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Double(pub i64);
impl Task for Double {
    type Output = i64;
    fn run(self) -> i64 {
        self.0 * 2
    }
}
remote!(Double, "conlab.double");

/// Sleeps for this many milliseconds with the GIL released (`time.sleep`), returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SleepMs(pub u64);
impl Task for SleepMs {
    type Output = u64;
    fn run(self) -> u64 {
        gil::sleep(Duration::from_millis(self.0));
        self.0
    }
}
remote!(SleepMs, "conlab.sleep-ms");
