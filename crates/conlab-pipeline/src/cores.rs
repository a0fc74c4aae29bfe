//! CPU affinity: running a pipeline on fewer cores than the machine has (`--cores 1` shows
//! the lecture's point that a concurrent design stays correct with no parallelism at all).

use std::io;

/// The cores this thread may run on.
pub fn allowed() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` with this thread (and every thread it starts meanwhile) allowed only the first
/// `cores` of the cores it may use now; restores the mask afterwards.
pub fn with_cores<R>(cores: usize, f: impl FnOnce() -> R) -> io::Result<R> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set, and sched_getaffinity fills
    // it for this thread (pid 0) with its size given. Exercised by the --cores test.
    let mut before: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut before) }
        != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an empty set to fill.
    let mut narrowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let mut kept = 0;
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: cpu < CPU_SETSIZE, the set's size.
        if kept < cores && unsafe { libc::CPU_ISSET(cpu, &before) } {
            // SAFETY: as above.
            unsafe { libc::CPU_SET(cpu, &mut narrowed) };
            kept += 1;
        }
    }
    if kept < cores {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--cores {cores}: this process may use only {kept} cores"),
        ));
    }
    let set = |mask: &libc::cpu_set_t| {
        // SAFETY: a valid set of the given size, for this thread.
        if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), mask) } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    set(&narrowed)?;
    let result = f();
    set(&before)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_is_one_core_and_the_mask_comes_back() {
        let all = allowed();
        let inside = with_cores(1, allowed).unwrap();
        assert_eq!(inside, 1);
        // A thread started inside inherits the mask.
        let child = with_cores(1, || std::thread::spawn(allowed).join().unwrap()).unwrap();
        assert_eq!(child, 1);
        assert_eq!(allowed(), all);
        assert!(with_cores(all + 1, || ()).is_err());
    }
}
