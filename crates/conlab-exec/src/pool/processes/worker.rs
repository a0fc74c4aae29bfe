//! The worker side of the process pool: the loop a re-executed binary runs instead of its
//! `main`, and the [`Registry`] of task kinds it can run.
//!
//! A binary that uses a process pool calls [`serve_if_worker`] first thing in `main`. In the
//! parent it returns `None` at once; in a worker (started with [`WORKER_ENV`] set) it serves
//! tasks from stdin until the pool closes the pipe, then returns the exit code for `main`.
//!
//! Each reply is written with its own `write` before the next task starts. Batching replies
//! would save syscalls, but a worker killed mid-task would then take finished-but-unsent
//! results with it, and the pool could no longer tell which tasks ran: exactly-once beats a
//! microsecond. Requests, on the other hand, arrive many per `read`.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use super::protocol::{self, kind_of};
use crate::handle::panic_message;
use crate::task::RemoteTask;

/// Set in a worker process's environment by the pool that starts it, to the pool's pid.
pub const WORKER_ENV: &str = "CONLAB_WORKER";

enum Failure {
    Panicked(String),
    Unrunnable(String),
}

type Runner = fn(&[u8], bool) -> Result<Vec<u8>, Failure>;

/// The task kinds a worker binary can run, by [`RemoteTask::NAME`].
///
/// ```
/// use conlab_exec::processes::Registry;
/// use conlab_exec::{RemoteTask, Task};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Double(u64);
/// # impl Task for Double { type Output = u64; fn run(self) -> u64 { self.0 * 2 } }
/// # impl RemoteTask for Double { const NAME: &'static str = "doc.double"; }
/// let mut registry = Registry::new();
/// registry.register::<Double>();
/// assert!(registry.knows("doc.double"));
/// ```
#[derive(Default)]
pub struct Registry {
    runners: HashMap<u64, (&'static str, Runner)>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.runners.values().map(|(n, _)| *n).collect();
        names.sort_unstable();
        f.debug_struct("Registry").field("tasks", &names).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets workers run tasks of type `J`.
    pub fn register<J: RemoteTask>(&mut self) -> &mut Self {
        self.runners
            .insert(kind_of(J::NAME), (J::NAME, run_remote::<J>));
        self
    }

    /// True when tasks named `name` are registered.
    pub fn knows(&self, name: &str) -> bool {
        self.runners.contains_key(&kind_of(name))
    }
}

fn run_remote<J: RemoteTask>(payload: &[u8], batch: bool) -> Result<Vec<u8>, Failure> {
    let undecodable = |e: postcard::Error| {
        Failure::Unrunnable(format!("could not decode a `{}` task: {e}", J::NAME))
    };
    let unencodable = |e: postcard::Error| {
        Failure::Unrunnable(format!("could not encode the output of `{}`: {e}", J::NAME))
    };
    if batch {
        let tasks: Vec<J> = postcard::from_bytes(payload).map_err(undecodable)?;
        let results: Vec<Result<J::Output, String>> = tasks
            .into_iter()
            .map(|t| {
                catch_unwind(AssertUnwindSafe(|| t.run())).map_err(|p| panic_message(p.as_ref()))
            })
            .collect();
        postcard::to_stdvec(&results).map_err(unencodable)
    } else {
        let task: J = postcard::from_bytes(payload).map_err(undecodable)?;
        let output = catch_unwind(AssertUnwindSafe(|| task.run()))
            .map_err(|p| Failure::Panicked(panic_message(p.as_ref())))?;
        postcard::to_stdvec(&output).map_err(unencodable)
    }
}

/// Serves tasks from `input` to `output` until `input` ends.
///
/// This is the whole worker loop; [`serve_if_worker`] calls it on the process's pipes. It is
/// public so the protocol can be tested, or run over other streams.
pub fn serve(registry: &Registry, input: impl io::Read, mut output: impl Write) -> io::Result<()> {
    output.write_all(protocol::HELLO)?;
    output.flush()?;
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut body = Vec::new();
    let mut reply = Vec::with_capacity(256);
    while protocol::read_frame(&mut input, &mut body)? {
        if body.len() < protocol::REQUEST_HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "short request frame",
            ));
        }
        let id = protocol::u64_at(&body, 0);
        let kind = protocol::u64_at(&body, 8);
        let batch = body[16] & protocol::BATCH != 0;
        let payload = &body[protocol::REQUEST_HEADER..];
        let outcome = match registry.runners.get(&kind) {
            Some((_, run)) => run(payload, batch),
            None => Err(Failure::Unrunnable(format!(
                "this worker binary does not register the task kind {kind:#x}: \
                 call `Registry::register` for it before `serve_if_worker`"
            ))),
        };
        reply.clear();
        let (status, bytes) = match outcome {
            Ok(bytes) => (protocol::OK, bytes),
            Err(Failure::Panicked(m)) => (protocol::PANICKED, m.into_bytes()),
            Err(Failure::Unrunnable(m)) => (protocol::UNRUNNABLE, m.into_bytes()),
        };
        let start = protocol::begin_reply(&mut reply, id, status);
        reply.extend_from_slice(&bytes);
        protocol::finish(&mut reply, start);
        // One write per reply, before the next task starts: see the module docs.
        output.write_all(&reply)?;
        output.flush()?;
    }
    Ok(())
}

/// Call first thing in `main`: in a worker process, serves tasks and returns the code `main`
/// should exit with; in any other process, returns `None` at once.
///
/// ```no_run
/// use conlab_exec::processes::{serve_if_worker, Registry};
/// fn main() -> std::process::ExitCode {
///     let mut registry = Registry::new();
///     // registry.register::<MyTask>();
///     if let Some(code) = serve_if_worker(&registry) {
///         return code;
///     }
///     // ... the program proper, which may start ProcessPools ...
///     std::process::ExitCode::SUCCESS
/// }
/// ```
pub fn serve_if_worker(registry: &Registry) -> Option<ExitCode> {
    // The pool sets the variable to its own pid: a process it did not start itself (a task's
    // `sh -c 'conlab ...'` inherits the environment) is not a worker and runs normally.
    let parent: u32 = std::env::var(WORKER_ENV).ok()?.parse().ok()?;
    if parent != std::os::unix::process::parent_id() {
        return None;
    }
    let Ok(protocol_out) = take_stdout() else {
        return Some(ExitCode::from(70));
    };
    let stdin = io::stdin().lock();
    match serve(registry, stdin, protocol_out) {
        Ok(()) => Some(ExitCode::SUCCESS),
        // The pool went away mid-frame (it was killed): nothing left to serve.
        Err(_) => Some(ExitCode::from(74)),
    }
}

/// Moves the protocol to a private copy of stdout and points fd 1 at stderr, so a task that
/// prints (the lecture's `doubler` does) cannot corrupt the reply stream.
fn take_stdout() -> io::Result<File> {
    use std::os::fd::FromRawFd;
    io::stdout().flush()?;
    // SAFETY: `dup` has no memory-safety preconditions; we check its result.
    let copy = unsafe { libc::dup(libc::STDOUT_FILENO) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is a fresh descriptor that nothing else owns; the `File` takes it over.
    let protocol_out = unsafe { File::from_raw_fd(copy) };
    // SAFETY: `dup2` on two open descriptors; fd 1 is re-pointed, never closed under Rust's
    // `Stdout`, which keeps writing to "fd 1" and now reaches stderr. Exercised by the
    // `a_task_that_prints_does_not_corrupt_replies` test in crates/conlab.
    if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(protocol_out)
}
