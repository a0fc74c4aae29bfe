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
//! - [`primes`]: `find_rand`'s prime sums and `pr.py`'s `is_prime`;
//! - [`workload`]: the spec strings of `conlab bench` (`primes:N`, `sleep:10ms`, ...);
//! - [`tasks`]: the lecture's `doubler` and `return_after_5_secs`;
//! - `fixtures` (feature `fixtures`, for tests only): tasks that misbehave or report on
//!   their worker on purpose.
//!
//! How the workloads are measured (the bench harness) is `conlab-lecture`'s; this crate only
//! does the work.

/// Implements [`RemoteTask`] under a name: the one line each serialisable task needs.
macro_rules! remote {
    ($ty:ty, $name:literal) => {
        impl RemoteTask for $ty {
            const NAME: &'static str = $name;
        }
    };
}

#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod primes;
pub mod tasks;
pub mod workload;

use conlab_exec::processes::Registry;

pub use primes::{IsPrime, Primes, is_prime_6k, is_prime_odd, sum_primes};
pub use tasks::{Double, SleepMs};
pub use workload::{Done, Job, SpecError, Workload};

/// Every task kind this crate defines, for
/// [`serve_if_worker`](conlab_exec::processes::serve_if_worker); the fixtures only when the
/// `fixtures` feature is on.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}

/// Adds this crate's task kinds to `registry` (a binary with tasks of its own adds them too).
pub fn register(registry: &mut Registry) {
    registry
        .register::<Primes>()
        .register::<IsPrime>()
        .register::<Double>()
        .register::<SleepMs>()
        .register::<Job>();
    #[cfg(feature = "fixtures")]
    registry
        .register::<fixtures::Noop>()
        .register::<fixtures::Panic>()
        .register::<fixtures::Print>()
        .register::<fixtures::Pid>()
        .register::<fixtures::WaitFifo>()
        .register::<fixtures::AppendLine>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_holds_the_workloads_and_fixtures_only_with_the_feature() {
        let r = registry();
        for name in ["conlab.primes", "conlab.workload", "conlab.double"] {
            assert!(r.knows(name), "{name}");
        }
        assert_eq!(r.knows("conlab.wait-fifo"), cfg!(feature = "fixtures"));
    }
}
