//! An emulation of CPython's Global Interpreter Lock, so the lecture's "threads do not speed
//! up CPU-bound Python, but they do speed up I/O-bound Python" can be reproduced and measured.
//!
//! A [`Gil`] belongs to one thread pool (`ThreadPool::with_gil`); its workers hold it while a
//! task "runs Python" and give it up in exactly the places CPython does (see `README.md`
//! beside this file for the mapping to `Python/ceval_gil.c`):
//!
//! - **blocking waits** release it: a task calls [`allow_threads`] around I/O (or [`sleep`]),
//!   as CPython's `Py_BEGIN_ALLOW_THREADS` does around `read()` or `time.sleep()`;
//! - **forced switching**: a thread that has waited [`SWITCH_INTERVAL`] (5 ms, CPython's
//!   `sys.getswitchinterval()`) for the lock sets a drop request; the holder sees it at its
//!   next [`checkpoint`] (CPython's eval-breaker check between bytecodes), releases the lock
//!   and waits until another thread has taken it, so it cannot grab it straight back.
//!
//! CPU-bound tasks must call [`checkpoint`] in their loops (conlab's workloads do); a task that
//! never does behaves like a C extension that never releases the GIL. Outside a GIL pool all
//! three functions cost one thread-local read and do nothing.
//!
//! This is the one piece of global-ish state in conlab, on purpose: it exists to show why one
//! lock around everything hurts.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::sync::{lock, wait_timeout};

/// CPython's default switch interval (`sys.getswitchinterval()` is 0.005).
pub const SWITCH_INTERVAL: Duration = Duration::from_millis(5);

thread_local! {
    static HELD: RefCell<Option<Arc<Gil>>> = const { RefCell::new(None) };
}

struct State {
    locked: bool,
    /// Incremented on every take; a waiter that times out only asks for a drop if the same
    /// holder still has it (CPython's `gil->switch_number`).
    switch_number: u64,
}

/// One global interpreter lock, shared by the workers of one pool.
pub struct Gil {
    state: Mutex<State>,
    /// Signalled when the lock is released (CPython's `gil->cond`).
    released: Condvar,
    /// Signalled when the lock is taken (CPython's `gil->switch_cond`, FORCE_SWITCHING).
    taken: Condvar,
    /// Set by a waiter that timed out; read by the holder at each checkpoint. Relaxed is
    /// enough: it is a hint, and the hand-off itself synchronises through `state`.
    drop_request: AtomicBool,
    interval: Duration,
    forced_switches: AtomicU64,
}

impl fmt::Debug for Gil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gil")
            .field("interval", &self.interval)
            .field("forced_switches", &self.forced_switches())
            .finish_non_exhaustive()
    }
}

impl Gil {
    /// A GIL with CPython's 5 ms switch interval.
    pub fn new() -> Arc<Self> {
        Self::with_interval(SWITCH_INTERVAL)
    }

    /// A GIL with another switch interval (`sys.setswitchinterval`).
    pub fn with_interval(interval: Duration) -> Arc<Self> {
        Arc::new(Gil {
            state: Mutex::new(State {
                locked: false,
                switch_number: 0,
            }),
            released: Condvar::new(),
            taken: Condvar::new(),
            drop_request: AtomicBool::new(false),
            interval,
            forced_switches: AtomicU64::new(0),
        })
    }

    /// How many times a holder was made to hand the lock over (drop requests honoured).
    pub fn forced_switches(&self) -> u64 {
        self.forced_switches.load(Ordering::Relaxed)
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `take_gil`: wait for the lock, asking the holder to drop it after each interval.
    fn take(&self) {
        let mut state = self.lock_state();
        while state.locked {
            let seen = state.switch_number;
            let (guard, timed_out) = wait_timeout(&self.released, state, self.interval);
            state = guard;
            if timed_out && state.locked && state.switch_number == seen {
                self.drop_request.store(true, Ordering::Relaxed);
            }
        }
        state.locked = true;
        state.switch_number += 1;
        self.drop_request.store(false, Ordering::Relaxed);
        self.taken.notify_all();
    }

    /// `drop_gil`: release; when asked to (`forced`), wait until someone else has taken it.
    fn drop_lock(&self, forced: bool) {
        let mut state = self.lock_state();
        state.locked = false;
        let number = state.switch_number;
        self.released.notify_one();
        if forced {
            self.forced_switches.fetch_add(1, Ordering::Relaxed);
            while state.switch_number == number {
                state = wait_timeout(&self.taken, state, self.interval).0;
                if !state.locked {
                    // Nobody took it after all (the waiter finished); go on.
                    break;
                }
            }
        }
    }

    /// Runs `f` holding this GIL on the calling thread (a worker's task boundary).
    pub(crate) fn hold<T>(self: &Arc<Self>, f: impl FnOnce() -> T) -> T {
        self.take();
        let outer = HELD.with(|h| h.replace(Some(self.clone())));
        let out = f();
        HELD.with(|h| *h.borrow_mut() = outer);
        self.drop_lock(false);
        out
    }
}

fn held() -> Option<Arc<Gil>> {
    HELD.with(|h| h.borrow().clone())
}

/// The eval-breaker check: if another thread has asked for the GIL, hand it over and wait to
/// get it back. Call it every few microseconds of CPU-bound work; outside a GIL pool it does
/// nothing.
#[inline]
pub fn checkpoint() {
    let asked = HELD.with(|h| {
        h.borrow()
            .as_ref()
            .is_some_and(|g| g.drop_request.load(Ordering::Relaxed))
    });
    if asked && let Some(gil) = held() {
        gil.drop_lock(true);
        gil.take();
    }
}

/// Runs `f` with the GIL released, as CPython does around blocking I/O
/// (`Py_BEGIN_ALLOW_THREADS`): other threads run Python meanwhile.
pub fn allow_threads<T>(f: impl FnOnce() -> T) -> T {
    match held() {
        None => f(),
        Some(gil) => {
            HELD.with(|h| *h.borrow_mut() = None);
            gil.drop_lock(false);
            let out = f();
            gil.take();
            HELD.with(|h| *h.borrow_mut() = Some(gil));
            out
        }
    }
}

/// `time.sleep`: sleeps with the GIL released.
pub fn sleep(duration: Duration) {
    allow_threads(|| std::thread::sleep(duration));
}

/// True when the calling thread holds a GIL (it runs inside a `--gil` pool's task).
pub fn is_held() -> bool {
    HELD.with(|h| h.borrow().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn only_one_thread_holds_the_gil_at_a_time() {
        let gil = Gil::with_interval(Duration::from_micros(200));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (gil, inside, max_inside) = (gil.clone(), inside.clone(), max_inside.clone());
                std::thread::spawn(move || {
                    gil.hold(|| {
                        for _ in 0..20_000 {
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            max_inside.fetch_max(now, Ordering::SeqCst);
                            inside.fetch_sub(1, Ordering::SeqCst);
                            checkpoint();
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(max_inside.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_waiting_thread_forces_a_hand_off() {
        let gil = Gil::with_interval(Duration::from_micros(100));
        let start = Arc::new(Barrier::new(2));
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let (gil, start, stop) = (gil.clone(), start.clone(), stop.clone());
            std::thread::spawn(move || {
                gil.hold(|| {
                    start.wait();
                    while !stop.load(Ordering::SeqCst) {
                        checkpoint();
                    }
                })
            })
        };
        start.wait();
        // Holding the GIL forever would starve us; the drop request gets us in.
        gil.hold(|| stop.store(true, Ordering::SeqCst));
        spinner.join().unwrap();
        assert!(gil.forced_switches() >= 1);
    }

    #[test]
    fn allow_threads_releases_and_retakes() {
        let gil = Gil::new();
        gil.hold(|| {
            assert!(is_held());
            allow_threads(|| {
                assert!(!is_held());
                // Another thread can take the GIL while we are "in I/O".
                let g = gil.clone();
                std::thread::spawn(move || g.hold(|| ())).join().unwrap();
            });
            assert!(is_held());
        });
        assert!(!is_held());
    }
}
