//! The submission gate: lets submitters in until shutdown, and lets shutdown wait for the
//! submitters already inside, so that no task slips into a queue after the workers were told
//! to stop (it would never run, and its handle would wait forever).

use crate::sync::{AtomicUsize, Ordering, thread};

const CLOSED: usize = 1 << (usize::BITS - 1);

/// A counter of submitters inside, with a closed bit.
#[derive(Debug)]
pub(crate) struct Gate(AtomicUsize);

impl Default for Gate {
    fn default() -> Self {
        Gate(AtomicUsize::new(0))
    }
}

/// Held by a submitter while it queues a task.
#[derive(Debug)]
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        // Release: `close` reads the count with Acquire and must see the queued task.
        self.0.0.fetch_sub(1, Ordering::Release);
    }
}

impl Gate {
    /// Enters, unless the gate is closed.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        let before = self.0.fetch_add(1, Ordering::Acquire);
        let pass = Pass(self);
        (before & CLOSED == 0).then_some(pass)
    }

    /// Closes the gate and waits for the submitters inside to leave; true the first time.
    pub(crate) fn close(&self) -> bool {
        let before = self.0.fetch_or(CLOSED, Ordering::AcqRel);
        while self.0.load(Ordering::Acquire) & !CLOSED != 0 {
            thread::yield_now();
        }
        before & CLOSED == 0
    }
}

#[cfg(all(test, not(conlab_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_refuses_and_close_reports_the_first_time() {
        let gate = Gate::default();
        assert!(gate.enter().is_some());
        assert!(gate.close());
        assert!(gate.enter().is_none());
        assert!(!gate.close());
    }
}

#[cfg(all(test, conlab_loom))]
mod loom_tests {
    use super::*;
    use std::sync::Arc;

    /// Once `close` returns, every submitter that got in has finished queuing, and every
    /// later one is refused: nothing reaches the queue after shutdown sends its stops.
    #[test]
    fn loom_close_waits_for_submitters_inside() {
        loom::model(|| {
            let gate = Arc::new(Gate::default());
            let queued = Arc::new(AtomicUsize::new(0));
            let (g, q) = (gate.clone(), queued.clone());
            let submitter = loom::thread::spawn(move || match g.enter() {
                Some(_pass) => {
                    q.fetch_add(1, Ordering::SeqCst);
                    true
                }
                None => false,
            });
            gate.close();
            let queued_at_close = queued.load(Ordering::SeqCst);
            let got_in = submitter.join().unwrap();
            assert_eq!(queued_at_close, usize::from(got_in));
        });
    }
}
