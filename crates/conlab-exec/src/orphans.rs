//! Children that do not outlive their parent: a worker process, a server started for a
//! measurement, or a command run as a task gets a signal from the kernel when the thread
//! that started it ends (`PR_SET_PDEATHSIG`), so that a Ctrl-C or a SIGKILL of the parent
//! leaves no orphan running its task or holding its port.

use std::process::Command;

/// Asks the kernel to send `signal` to the child `command` starts when the thread calling
/// `spawn` ends (normally the parent's main thread or a supervisor that lives as long as its
/// child: call it from a thread that outlives the child). The signal is sent at once if the
/// parent is already gone when the child starts.
pub fn die_with_parent(command: &mut Command, signal: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `getpid` before the fork, and in the child only `prctl`, `getppid` and
    // `kill`, which are async-signal-safe system calls touching no memory of ours. The
    // `getppid` check closes the race where the parent died between fork and `prctl`.
    // Exercised by `a_child_dies_with_the_thread_that_started_it`.
    let parent = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), signal);
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        let child = std::thread::spawn(|| {
            let mut command = Command::new("sleep");
            command.arg("30");
            die_with_parent(&mut command, libc::SIGKILL);
            command.spawn().unwrap()
        })
        .join()
        .unwrap();
        let mut child = child;
        // The starting thread is gone: the kernel has sent SIGKILL (or will, at once).
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
}
