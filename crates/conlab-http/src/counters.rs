//! The counters behind `/stats`, and where they live: on the heap for the models that run in
//! one process, or in one shared memory page set that every prefork worker maps, so that
//! `/stats` answers for the whole server whichever process serves it (Apache keeps its
//! scoreboard the same way).
//!
//! The block is plain atomics at fixed offsets; atomics on a `MAP_SHARED` mapping are
//! coherent across processes as they are across threads.

use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// Status codes counted one by one: 100 to 599.
pub const STATUSES: usize = 500;

/// A server's counters.
#[derive(Debug)]
#[repr(C)]
pub struct Counters {
    /// Responses sent.
    pub requests: AtomicU64,
    /// Requests whose handling has begun.
    pub started: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Prefork: worker processes that have started and are about to accept.
    pub workers_ready: AtomicU64,
    /// Responses by status, index `status - 100`.
    pub statuses: [AtomicU64; STATUSES],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            requests: AtomicU64::new(0),
            started: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            workers_ready: AtomicU64::new(0),
            statuses: [const { AtomicU64::new(0) }; STATUSES],
        }
    }
}

/// Where a [`Site`](crate::Site)'s counters live.
#[derive(Debug)]
pub enum CounterStore {
    /// This process only.
    Local(Box<Counters>),
    /// A shared mapping (prefork): every process that maps the same file sees the same block.
    Shared(SharedCounters),
}

impl Default for CounterStore {
    fn default() -> Self {
        CounterStore::Local(Box::default())
    }
}

impl Deref for CounterStore {
    type Target = Counters;
    fn deref(&self) -> &Counters {
        match self {
            CounterStore::Local(c) => c,
            CounterStore::Shared(s) => s,
        }
    }
}

/// [`Counters`] in a `MAP_SHARED` mapping of a memory file, which child processes inherit as
/// a descriptor and map again.
#[derive(Debug)]
pub struct SharedCounters {
    block: NonNull<Counters>,
    file: OwnedFd,
}

// SAFETY: the mapping holds only atomics, which may be used from any thread; the pointer stays
// valid until Drop unmaps it, and nothing hands out a mutable reference to it.
unsafe impl Send for SharedCounters {}
// SAFETY: as above: shared access goes through atomics only.
unsafe impl Sync for SharedCounters {}

impl SharedCounters {
    /// A fresh, zeroed block in a new memory file (`memfd_create`).
    ///
    /// # Errors
    /// When the kernel refuses the memory file or the mapping.
    pub fn create() -> io::Result<SharedCounters> {
        // SAFETY: the name is a NUL-terminated constant; memfd_create has no other
        // preconditions. The fd it returns is ours alone, so OwnedFd may own it.
        let file = unsafe {
            let fd = libc::memfd_create(c"conlab-stats".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        let size = libc::off_t::try_from(std::mem::size_of::<Counters>())
            .map_err(|_| io::Error::other("counter block too large"))?;
        // SAFETY: ftruncate on a descriptor we own; the new bytes read as zero, which is a
        // valid `Counters` (every field is an AtomicU64).
        if unsafe { libc::ftruncate(file.as_raw_fd(), size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(file)
    }

    /// Maps the block another process created, from the descriptor `fd` it left us.
    ///
    /// # Errors
    /// When `fd` is not a memory file of the right size.
    ///
    /// # Safety
    /// `fd` must be an open descriptor that this process may own from now on (nothing else
    /// will close it), as a descriptor inherited from the parent at a fixed number is.
    pub unsafe fn inherit(fd: RawFd) -> io::Result<SharedCounters> {
        // SAFETY: fstat only fills the struct it is given.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                return Err(io::Error::last_os_error());
            }
            if (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not the prefork parent's counter file",
                ));
            }
            st.st_size
        };
        if usize::try_from(size).ok() != Some(std::mem::size_of::<Counters>()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the counter file has the wrong size (another conlab version?)",
            ));
        }
        // SAFETY: the caller hands the descriptor over to us.
        Self::map(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn map(file: OwnedFd) -> io::Result<SharedCounters> {
        // SAFETY: a fresh shared mapping of a file at least size_of::<Counters>() long; the
        // kernel picks the (page-aligned, so suitably aligned) address. Zeroed or written
        // only through atomics, its bytes are always a valid `Counters`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Counters>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let block = NonNull::new(ptr.cast::<Counters>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedCounters { block, file })
    }

    /// The memory file, to hand to a child process.
    pub fn file(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl Deref for SharedCounters {
    type Target = Counters;
    fn deref(&self) -> &Counters {
        // SAFETY: mapped in `map`, unmapped only in Drop; see the Send/Sync notes.
        unsafe { self.block.as_ref() }
    }
}

impl Drop for SharedCounters {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of this size; no reference to it outlives self.
        unsafe {
            libc::munmap(self.block.as_ptr().cast(), std::mem::size_of::<Counters>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_one_file_see_each_others_counts() {
        let first = SharedCounters::create().unwrap();
        // SAFETY: a duplicate descriptor that only `second` owns.
        let second = unsafe { SharedCounters::inherit(libc::dup(first.file())).unwrap() };
        first.requests.fetch_add(2, Ordering::Relaxed);
        second.statuses[100].fetch_add(1, Ordering::Relaxed);
        assert_eq!(second.requests.load(Ordering::Relaxed), 2);
        assert_eq!(first.statuses[100].load(Ordering::Relaxed), 1);
        assert_eq!(first.connections.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_descriptor_that_is_not_a_counter_file_is_refused() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: the duplicate is handed over; on error it is closed by nobody, which in a
        // test is a leaked descriptor, not a hazard.
        let fd = unsafe { libc::dup(a.as_raw_fd()) };
        assert!(unsafe { SharedCounters::inherit(fd) }.is_err());
    }
}
