//! The synchronisation primitives the hand-written parts use, swapped for loom's under
//! `--cfg conlab_loom` so that the model checker explores every interleaving of them; and
//! [`lock`], the one place a poisoned lock is recovered.

#[cfg(conlab_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(conlab_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(conlab_loom)]
pub(crate) use loom::thread;

#[cfg(not(conlab_loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(conlab_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(not(conlab_loom))]
pub(crate) use std::thread;

/// Locks `mutex`, carrying on if a thread panicked while holding it.
///
/// Poisoning protects invariants that a panic could leave half-updated. Every lock in conlab
/// guards state whose invariants hold between statements (a queue, a map of open
/// connections, a task's result slot), and a task's panic is caught before it can unwind
/// through a held guard, so the data behind a poisoned lock is still consistent: refusing it
/// would turn one task's panic into a second, unrelated failure.
///
/// ```
/// let counter = std::sync::Mutex::new(0);
/// *conlab_exec::lock(&counter) += 1;
/// assert_eq!(*conlab_exec::lock(&counter), 1);
/// ```
pub fn lock<T: ?Sized>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `condvar.wait_timeout(guard, timeout)`, recovering a poisoned lock as [`lock`] does;
/// true when the wait timed out.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &std::sync::Condvar,
    guard: std::sync::MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> (std::sync::MutexGuard<'a, T>, bool) {
    let (guard, result) = condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    (guard, result.timed_out())
}

/// [`lock`] for loom's mutex: under the model checker a panic ends the model, so no guard
/// is ever found poisoned.
#[cfg(conlab_loom)]
pub(crate) fn lock_model<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
