//! Starting a process pool: which program its workers run, and the settings a
//! [`ProcessPoolBuilder`] collects before [`build`](ProcessPoolBuilder::build) starts one
//! supervisor per worker and waits for every worker's hello.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::supervisor::Supervisor;
use super::{ProcessPool, Shared};
use crate::error::Error;
use crate::pool::Gate;

/// The program a pool starts as its workers: by default this executable, with no arguments.
#[derive(Debug, Clone)]
pub struct WorkerProgram {
    pub(super) program: PathBuf,
    pub(super) args: Vec<OsString>,
}

impl WorkerProgram {
    /// Workers run `program` (which must call [`serve_if_worker`] at the top of `main`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        WorkerProgram {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Adds an argument to the worker's command line.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// This executable.
    pub fn current_exe() -> Result<Self, Error> {
        std::env::current_exe()
            .map(Self::new)
            .map_err(|e| Error::Worker(format!("finding this executable to start workers: {e}")))
    }
}

/// Settings for a [`ProcessPool`].
#[derive(Debug, Clone)]
pub struct ProcessPoolBuilder {
    workers: usize,
    queue_capacity: Option<usize>,
    program: Option<WorkerProgram>,
    max_tasks_per_child: Option<u64>,
    window: usize,
}

impl ProcessPoolBuilder {
    /// One worker per core, this executable as the worker, a window of 64.
    pub(super) fn with_defaults() -> Self {
        ProcessPoolBuilder {
            workers: crate::available_cores(),
            queue_capacity: None,
            program: None,
            max_tasks_per_child: None,
            window: 64,
        }
    }

    /// How many worker processes (default: one per core).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Tasks queued in the parent before `submit` blocks (default: 1024 per worker).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = Some(n.max(1));
        self
    }

    /// The worker program (default: this executable).
    pub fn program(mut self, program: WorkerProgram) -> Self {
        self.program = Some(program);
        self
    }

    /// Replace a worker after it has run `n` tasks (Python's `maxtasksperchild`).
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// At most this many unanswered tasks are sent ahead to one worker (default 64). The
    /// window actually used adapts to the tasks: as many as make ~1 ms of work by their
    /// measured service time, so short tasks are pipelined and long ones are not stranded
    /// behind each other in one worker's pipe.
    pub fn window(mut self, n: usize) -> Self {
        self.window = n.max(1);
        self
    }

    /// Starts the workers and waits until each has said hello.
    pub fn build(self) -> Result<ProcessPool, Error> {
        let program = match self.program {
            Some(p) => p,
            None => WorkerProgram::current_exe()?,
        };
        let capacity = self.queue_capacity.unwrap_or(1024 * self.workers);
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        let shared = Arc::new(Shared {
            sender,
            receiver,
            gate: Gate::default(),
            next_id: AtomicU64::new(0),
            program,
            max_tasks_per_child: self.max_tasks_per_child,
            window: self.window,
            pids: Mutex::new(vec![0; self.workers]),
            crashes: AtomicU64::new(0),
            spawned: AtomicU64::new(0),
        });
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        let supervisors: Vec<_> = (0..self.workers)
            .map(|index| {
                let (shared, ready) = (shared.clone(), ready_tx.clone());
                std::thread::Builder::new()
                    .name(format!("conlab-proc-{index}"))
                    .spawn(move || Supervisor::run(shared, index, ready))
                    .map_err(|e| Error::Worker(format!("starting a supervisor thread: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let pool = ProcessPool {
            shared,
            supervisors: Mutex::new(supervisors),
            workers: self.workers,
        };
        for _ in 0..self.workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Worker("a supervisor thread died".into())),
            }
        }
        Ok(pool)
    }
}
