//! The submission gate: lets submitters in until shutdown, and lets shutdown wait for the
//! submitters already inside, so that no task slips into a queue after the workers were told
//! to stop (it would never run, and its handle would wait forever).

use std::sync::atomic::{AtomicUsize, Ordering};

const CLOSED: usize = 1 << (usize::BITS - 1);

/// A counter of submitters inside, with a closed bit.
#[derive(Debug, Default)]
pub(crate) struct Gate(AtomicUsize);

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
            std::thread::yield_now();
        }
        before & CLOSED == 0
    }
}

#[cfg(test)]
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
