//! Helpers shared by the integration tests: pools whose worker processes are the `conlab`
//! binary under test, FIFO gates that hold a worker busy until the test lets go (in any
//! process, without sleeping), and scratch files.

#![allow(dead_code, unreachable_pub)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conlab_exec::processes::WorkerProgram;
use conlab_exec::{Model, Pool, PoolOptions, TaskHandle, TaskState};

/// Runs `conlab ARGS` (no colour) and returns what it did.
pub fn conlab(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running conlab")
}

/// Runs `conlab ARGS`, which must succeed, and parses its standard output as JSON.
pub fn json_of(args: &[&str]) -> serde_json::Value {
    let out = conlab(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// The `conlab` binary, which serves as the process pool's worker.
pub fn worker_program() -> WorkerProgram {
    WorkerProgram::new(env!("CARGO_BIN_EXE_conlab"))
}

/// A pool of `model` with `workers` workers.
pub fn pool(model: Model, workers: usize) -> Pool {
    Pool::new(
        model,
        PoolOptions {
            workers: Some(workers),
            worker_program: Some(worker_program()),
            ..PoolOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("starting a {model} pool of {workers}: {e}"))
}

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "conlab-test-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A new FIFO in this directory.
    pub fn fifo(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let c = CString::new(path.as_os_str().as_bytes()).expect("no NUL in a temp path");
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(
            rc,
            0,
            "mkfifo {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lets a `WaitFifo` task on `path` finish: opens the FIFO for writing (which waits for the
/// task to open it for reading) and closes it.
pub fn release(path: &Path) {
    drop(
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("opening a gate FIFO"),
    );
}

/// Lets a `WaitFifo` task on `path` finish if one is waiting there now; never blocks (a
/// gate nobody opened yet is left alone).
pub fn release_if_waiting(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
}

/// Waits (bounded, by polling, not sleeping) until every handle's task has started.
pub fn until_running<T>(handles: &[TaskHandle<T>]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while handles.iter().any(|h| h.state() == TaskState::Queued) {
        assert!(Instant::now() < deadline, "tasks did not start within 30 s");
        std::thread::yield_now();
    }
}

/// The lines of a file, sorted.
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}
