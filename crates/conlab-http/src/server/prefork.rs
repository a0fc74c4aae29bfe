//! `prefork` (Apache's prefork MPM): N worker *processes* share one listening socket, each
//! serving one connection at a time. The parent binds, then starts this executable N times
//! with the socket as file descriptor 3 ([`LISTEN_FD`]); each child runs the blocking
//! connection loop on its main thread. A crash kills one worker's connection, not the server.
//!
//! The children count into one shared block ([`SharedCounters`], fd [`COUNTERS_FD`]), so
//! `/stats` answers for the whole server whichever worker serves it.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::counters::SharedCounters;

/// The descriptor a prefork child finds the listening socket on.
pub const LISTEN_FD: i32 = 3;

/// The descriptor a prefork child finds the shared counter block on.
pub const COUNTERS_FD: i32 = 4;

/// The worker processes of a prefork server.
#[derive(Debug)]
pub struct Prefork {
    children: Vec<Child>,
}

impl Prefork {
    /// Starts `workers` children as `program ARGS...`, each with `listener` as fd 3 and
    /// `counters` as fd 4.
    pub fn start(
        program: &Path,
        args: &[String],
        listener: &TcpListener,
        counters: &SharedCounters,
        workers: usize,
    ) -> io::Result<Prefork> {
        let (fd, counters_fd) = (listener.as_raw_fd(), counters.file());
        let mut children = Vec::with_capacity(workers);
        for _ in 0..workers.max(1) {
            let mut command = Command::new(program);
            command
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                // mimalloc commits and dirties its first arena eagerly: 6.5 MiB of private
                // memory in each of a hundred children (661 MiB of PSS for 100 workers
                // against Apache's 25). Committing on demand: 104 MiB for the hundred.
                .env("MIMALLOC_ARENA_EAGER_COMMIT", "0");
            // A worker outlives no parent: SIGKILL of the server must not leave 32 processes
            // listening on its port.
            conlab_exec::die_with_parent(&mut command, libc::SIGTERM);
            // SAFETY: between fork and exec only async-signal-safe calls are allowed; `fcntl`
            // and `dup2` are. Both sources are first copied above fd 10 (close-on-exec), so
            // that placing one at 3 cannot clobber the other when it happens to be 3 or 4;
            // then `dup2` puts them at 3 and 4 without FD_CLOEXEC, so the child inherits
            // them. Exercised by the prefork tests in crates/conlab/tests/serve.rs.
            unsafe {
                command.pre_exec(move || {
                    let listen = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                    let stats = libc::fcntl(counters_fd, libc::F_DUPFD_CLOEXEC, 10);
                    if listen < 0
                        || stats < 0
                        || libc::dup2(listen, LISTEN_FD) < 0
                        || libc::dup2(stats, COUNTERS_FD) < 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            match command.spawn() {
                Ok(child) => children.push(child),
                Err(e) => {
                    let mut started = Prefork { children };
                    started.stop();
                    return Err(e);
                }
            }
        }
        Ok(Prefork { children })
    }

    /// Waits until every child has said it is about to accept (through `counters`), so that
    /// a measurement that starts now does not count the children's start-up; fails if one
    /// exits first or they take longer than `timeout`. Returns `true` early, with the
    /// children still to be stopped, once `stop_asked` says so (a signal arrived).
    pub fn wait_ready(
        &mut self,
        counters: &SharedCounters,
        timeout: Duration,
        mut stop_asked: impl FnMut() -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        let want = self.children.len() as u64;
        // Relaxed: a count, read until it reaches the number of children; nothing else is
        // published through it.
        while counters.workers_ready.load(Ordering::Relaxed) < want {
            if stop_asked() {
                return Ok(true);
            }
            for child in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    return Err(io::Error::other(format!(
                        "worker process {} exited while starting ({status})",
                        child.id()
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "{} of {want} worker processes started within {timeout:?}",
                    counters.workers_ready.load(Ordering::Relaxed)
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(false)
    }

    /// The children's process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Asks every child to stop gracefully (SIGTERM) and waits for them.
    pub fn stop(&mut self) {
        for c in &self.children {
            // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child's.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
        }
        for mut c in self.children.drain(..) {
            let _ = c.wait();
        }
    }
}

impl Drop for Prefork {
    fn drop(&mut self) {
        self.stop();
    }
}

/// In a prefork child: the listening socket the parent left on fd 3.
///
/// # Errors
/// When fd 3 is not a listening socket (the process was not started by [`Prefork::start`]).
pub fn inherited_listener() -> io::Result<TcpListener> {
    // SAFETY: fstat on a descriptor number has no memory-safety preconditions; we only read
    // the struct it fills.
    let is_socket = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(LISTEN_FD, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    };
    if !is_socket {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fd 3 is not the prefork parent's listening socket",
        ));
    }
    // SAFETY: fd 3 is an open socket (checked above) that this process owns from now on; the
    // parent's copy is separate (dup2 made a new descriptor before exec).
    Ok(unsafe { TcpListener::from_raw_fd(LISTEN_FD) })
}

/// In a prefork child: the shared counter block the parent left on fd 4.
///
/// # Errors
/// When fd 4 is not a counter file (the process was not started by [`Prefork::start`]).
pub fn inherited_counters() -> io::Result<SharedCounters> {
    // SAFETY: fd 4 was placed by the parent for this process alone; nothing else here opens
    // or closes it (`inherit` checks that it is a counter file before using it).
    unsafe { SharedCounters::inherit(COUNTERS_FD) }
}
