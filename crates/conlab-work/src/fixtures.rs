//! Test fixtures (the `fixtures` feature): tasks that exist to test the pools, not to teach
//! the lecture. A no-op for measuring overhead, tasks that misbehave on purpose (panic, print
//! to stdout), and tasks that let a test see inside a worker process (its pid, a FIFO it
//! blocks on until the test lets go, a file it appends to so that runs can be counted).
//!
//! They are registered with worker processes only when the feature is on, which the
//! workspace's tests turn on through their dev-dependencies: a release build of `conlab`
//! cannot be asked to run them.

use conlab_exec::{RemoteTask, Task, gil};
use serde::{Deserialize, Serialize};

/// Returns its input: the cost of a task with no work in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noop(pub u64);
impl Task for Noop {
    type Output = u64;
    fn run(self) -> u64 {
        self.0
    }
}
remote!(Noop, "conlab.noop");

/// Panics with this message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Panic(pub String);
impl Task for Panic {
    type Output = ();
    fn run(self) {
        panic!("{}", self.0);
    }
}
remote!(Panic, "conlab.panic");

/// Prints its text to stdout (as the lecture's `doubler` does) and returns its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Print(pub String);
impl Task for Print {
    type Output = usize;
    fn run(self) -> usize {
        println!("{}", self.0);
        self.0.len()
    }
}
remote!(Print, "conlab.print");

/// Returns the id of the process that ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pid;
impl Task for Pid {
    type Output = u32;
    fn run(self) -> u32 {
        std::process::id()
    }
}
remote!(Pid, "conlab.pid");

/// Blocks until someone opens this FIFO for writing and closes it, then returns its path's
/// length: a barrier a test can release from outside, in any process, without sleeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitFifo(pub std::path::PathBuf);
impl Task for WaitFifo {
    type Output = bool;
    fn run(self) -> bool {
        use std::io::Read;
        gil::allow_threads(|| {
            std::fs::File::open(&self.0)
                .and_then(|mut f| f.read_to_end(&mut Vec::new()))
                .is_ok()
        })
    }
}
remote!(WaitFifo, "conlab.wait-fifo");

/// Appends `line` and a newline to the file at `path` (O_APPEND, one write): lets a test count
/// how many times each task really ran, across processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendLine(pub std::path::PathBuf, pub String);
impl Task for AppendLine {
    type Output = String;
    fn run(self) -> String {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .and_then(|mut f| f.write_all(format!("{}\n", self.1).as_bytes()));
        match written {
            Ok(()) => self.1,
            Err(e) => panic!("appending to {}: {e}", self.0.display()),
        }
    }
}
remote!(AppendLine, "conlab.append-line");
