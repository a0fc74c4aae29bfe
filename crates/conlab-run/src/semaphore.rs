//! `--semaphore` (GNU's `sem`): a counting semaphore shared by separate invocations, so a
//! shell loop can run at most N commands at once: `conlab run --semaphore -j2 CMD` waits for
//! a free slot of its id, starts CMD in the background holding that slot and returns;
//! `--fg` runs CMD in the foreground and returns its status; `--wait` waits until every slot
//! of the id is free.
//!
//! A slot is a file, `$TMPDIR/conlab-sem-UID/ID/slot-K`, held with `flock(2)`. The lock
//! belongs to the open file, which the command inherits: it is released when the command
//! (and whatever it started with the file still open) exits, even if it is killed, so a
//! crash never leaves a slot taken.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// Why the semaphore could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SemaphoreError {
    /// The slot files could not be made or locked.
    #[error("semaphore {id}")]
    Io {
        /// The semaphore's id.
        id: String,
        /// What the OS said.
        source: io::Error,
    },
    /// `--semaphoretimeout` passed with every slot taken.
    #[error("semaphore {0}: no slot was free within the --semaphoretimeout")]
    Timeout(String),
}

/// GNU's default semaphore id: the name of the terminal on standard input, else `default`.
pub fn default_id() -> String {
    std::fs::read_link("/proc/self/fd/0")
        .ok()
        .filter(|p| p.starts_with("/dev/pts") || p.starts_with("/dev/tty"))
        .map_or_else(|| "default".to_string(), |p| p.display().to_string())
}

/// One semaphore: an id and how many slots it has.
#[derive(Debug, Clone)]
pub struct Semaphore {
    id: String,
    slots: usize,
    dir: PathBuf,
}

impl Semaphore {
    /// The semaphore `id` with `slots` slots (GNU's default id is the terminal's name).
    pub fn new(id: &str, slots: usize) -> Semaphore {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Semaphore {
            id: id.to_string(),
            slots: slots.max(1),
            dir: std::env::temp_dir()
                .join(format!("conlab-sem-{uid}"))
                .join(safe),
        }
    }

    fn io(&self, source: io::Error) -> SemaphoreError {
        SemaphoreError::Io {
            id: self.id.clone(),
            source,
        }
    }

    fn slot_file(&self, k: usize) -> Result<File, SemaphoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.dir.join(format!("slot-{k}")))
            .map_err(|e| self.io(e))
    }

    /// Waits for a free slot (at most `timeout`) and returns it, locked.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<File, SemaphoreError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            for k in 1..=self.slots {
                let file = self.slot_file(k)?;
                if lock(&file, false).map_err(|e| self.io(e))? {
                    return Ok(file);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SemaphoreError::Timeout(self.id.clone()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `--wait`: returns once no slot of this id is held.
    pub fn wait_all(&self) -> Result<(), SemaphoreError> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let file = File::open(entry.path()).map_err(|e| self.io(e))?;
            lock(&file, true).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// Starts `command` holding `slot`: in the background (the slot goes with it), or in
    /// the foreground, waiting for its exit status.
    pub fn run(
        &self,
        slot: File,
        mut command: Command,
        foreground: bool,
    ) -> Result<Option<ExitStatus>, SemaphoreError> {
        if foreground {
            let status = command.status().map_err(|e| self.io(e))?;
            drop(slot);
            return Ok(Some(status));
        }
        // The lock lives as long as an open copy of the file: the command inherits one.
        let fd = slot.as_raw_fd();
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // fcntl(2), which is async-signal-safe, on a descriptor the child inherited.
        // Exercised by the semaphore test in tests/run.rs.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.spawn().map_err(|e| self.io(e))?;
        Ok(None)
    }
}

/// `flock`: exclusive; `wait` blocks until it is free, otherwise false when it is held.
fn lock(file: &File, wait: bool) -> io::Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a descriptor this File owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            if wait {
                // --wait only looks: let the slot go at once.
                // SAFETY: as above.
                unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            }
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(false),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semaphore_hands_out_its_slots_and_no_more() {
        let sem = Semaphore::new(&format!("test-{}", std::process::id()), 2);
        let a = sem.acquire(None).unwrap();
        let b = sem.acquire(None).unwrap();
        assert!(matches!(
            sem.acquire(Some(Duration::from_millis(50))),
            Err(SemaphoreError::Timeout(_))
        ));
        drop(a);
        let c = sem.acquire(Some(Duration::from_secs(5))).unwrap();
        drop((b, c));
        sem.wait_all().unwrap();
        let _ = std::fs::remove_dir_all(&sem.dir);
    }
}
