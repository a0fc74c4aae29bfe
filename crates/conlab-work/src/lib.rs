//! # conlab-work: the lecture's workloads as tasks every model can run
//!
//! Each workload is a [`RemoteTask`]: a small serialisable value whose `run` does the work, so
//! the same task runs serially, on threads, in worker processes, on the event loop or under
//! rayon, and every model's answer can be checked against serial's.
//!
//! The CPU-bound ones are the lecture's own algorithms, kept exactly (trial division, not a
//! sieve: the point is the same work in Python and Rust), and call
//! [`gil::checkpoint`](conlab_exec::gil::checkpoint) in their loops so that under `threads
//! --gil` they hand the emulated GIL over as CPython's eval loop would.
//!
//! [`diagnostic`] holds tasks that misbehave on purpose (crash their process, panic, print),
//! for tests and for the tour's "a worker dies" demonstration.

pub mod diagnostic;
pub mod primes;
pub mod probe;
pub mod runner;
pub mod stations;
pub mod workload;

use conlab_exec::processes::Registry;

pub use primes::{IsPrime, Primes, is_prime_6k, is_prime_odd, sum_primes};
pub use workload::{Done, Job, SpecError, Workload};

/// Every task kind this crate defines, for [`serve_if_worker`](conlab_exec::processes::serve_if_worker).
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register::<Primes>()
        .register::<IsPrime>()
        .register::<diagnostic::Double>()
        .register::<diagnostic::Noop>()
        .register::<diagnostic::SleepMs>()
        .register::<diagnostic::Crash>()
        .register::<diagnostic::Panic>()
        .register::<diagnostic::Print>()
        .register::<diagnostic::Pid>()
        .register::<diagnostic::WaitFifo>()
        .register::<diagnostic::AppendLine>()
        .register::<workload::Job>();
    r
}
