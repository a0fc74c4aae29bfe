//! The lecture's two programs that hang ("Nothing is happening, why?"): a one-worker pool
//! whose task waits on a task it submitted to the same pool (`wait_on_future`), and two tasks
//! that wait on each other (`wait_on_a` / `wait_on_b`). Python hangs; conlab's pool sees the
//! wait-for cycle and the wait returns `Error::Deadlock` instead.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use conlab_exec::{Error as ExecError, Executor, TaskHandle, ThreadPool, lock};

use super::{Context, Experiment};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "deadlock",
    title: "Deadlocks (\"Nothing is happening, why?\")",
    claim: Claim {
        quote: "Nothing is happening, why? ... What is the problem over here?",
        slide: "concurrent.futures: wait_on_future; wait_on_a / wait_on_b",
        figure: "both programs hang forever",
    },
    load_limit: LoadLimit::Never,
    measure,
};

/// How long a program may take to be refused before the experiment calls it a hang.
const HANG: Duration = Duration::from_secs(10);

/// What the two programs did on conlab's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reports {
    /// A program that did not return within [`HANG`]: the deadlock was not detected.
    pub hung: Option<&'static str>,
    /// `wait_on_future`'s refusal, if its wait was refused as a deadlock.
    pub wait_on_future: Option<String>,
    /// The refusals among `wait_on_a` / `wait_on_b` (one of the two waits closes the cycle).
    pub wait_on_each_other: Vec<String>,
}

fn measure(_: &Context<'_>) -> Result<Outcome, Error> {
    let (wait_on_future, first_hung) = wait_on_future()?;
    let (wait_on_each_other, second_hung) = wait_on_each_other()?;
    let reports = Reports {
        hung: (first_hung.then_some("wait_on_future"))
            .or(second_hung.then_some("wait_on_a/wait_on_b")),
        wait_on_future,
        wait_on_each_other,
    };
    let mut details = Vec::new();
    if let Some(e) = &reports.wait_on_future {
        details.push(format!("wait_on_future: {e}"));
    }
    details.extend(
        reports
            .wait_on_each_other
            .iter()
            .map(|e| format!("wait_on_a/wait_on_b: {e}")),
    );
    let reported = usize::from(reports.wait_on_future.is_some())
        + usize::from(reports.wait_on_each_other.len() == 1);
    Ok(Outcome {
        setup: "the lecture's two programs on a 1-worker and a 2-worker thread pool".into(),
        details,
        measured: format!("{reported} of 2 deadlocks reported, no hang"),
        figures: vec![Figure::new("reported", reported as f64, "count")],
        series: vec![Series {
            name: "deadlocks reported".into(),
            x: Axis {
                label: "program (0 wait_on_future, 1 wait_on_a/b)",
                unit: "",
            },
            y: Axis {
                label: "reported (1) or not (0)",
                unit: "",
            },
            points: vec![
                [0.0, f64::from(u8::from(reports.wait_on_future.is_some()))],
                [
                    1.0,
                    f64::from(u8::from(reports.wait_on_each_other.len() == 1)),
                ],
            ],
        }],
        verdict: judge(&reports),
    })
}

/// `executor = ThreadPoolExecutor(max_workers=1); executor.submit(wait_on_future)`, where
/// the task submits `pow(5, 2)` to the same pool and waits for it. The refusal, if any, and
/// whether it hung instead.
fn wait_on_future() -> Result<(Option<String>, bool), Error> {
    let pool = Arc::new(ThreadPool::new(1));
    let inner = pool.clone();
    let outer = pool.submit(move || inner.submit(|| 5u64.pow(2)).map(TaskHandle::wait))?;
    match outer.wait_timeout(HANG) {
        Ok(result) => Ok((
            match result? {
                Ok(Err(e @ ExecError::Deadlock { .. })) => Some(e.to_string()),
                _ => None,
            },
            false,
        )),
        Err(_still_waiting) => {
            // Its worker is stuck for good: dropping the pool would wait for it forever.
            std::mem::forget(pool);
            Ok((None, true))
        }
    }
}

/// `a = executor.submit(wait_on_b); b = executor.submit(wait_on_a)` on two workers. The
/// refusals, and whether the programs hung instead.
fn wait_on_each_other() -> Result<(Vec<String>, bool), Error> {
    let pool = ThreadPool::new(2);
    type Slot = Arc<Mutex<Option<TaskHandle<u64>>>>;
    let (a_slot, b_slot): (Slot, Slot) = Default::default();
    let refusals = Arc::new(Mutex::new(Vec::new()));
    // Both tasks running and both handles stored: the lecture's `time.sleep(5)`, made exact.
    let ready = Arc::new(Barrier::new(3));
    let (finished, done) = crossbeam_channel::unbounded::<()>();
    let waits_on = |other: &Slot, value: u64| {
        let (other, ready, refusals) = (other.clone(), ready.clone(), refusals.clone());
        let finished = finished.clone();
        move || -> u64 {
            ready.wait();
            let handle = lock(&other).take();
            if let Some(Err(e @ ExecError::Deadlock { .. })) = handle.map(TaskHandle::wait) {
                lock(&refusals).push(e.to_string());
            }
            let _ = finished.send(());
            value
        }
    };
    let a = pool.submit(waits_on(&b_slot, 5))?; // wait_on_b
    let b = pool.submit(waits_on(&a_slot, 6))?; // wait_on_a
    *lock(&a_slot) = Some(a);
    *lock(&b_slot) = Some(b);
    ready.wait();
    let deadline = std::time::Instant::now() + HANG;
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done.recv_timeout(left).is_err() {
            // Both workers are stuck for good: dropping the pool would wait forever.
            std::mem::forget(pool);
            return Ok((std::mem::take(&mut *lock(&refusals)), true));
        }
    }
    pool.shutdown(true, false);
    Ok((std::mem::take(&mut *lock(&refusals)), false))
}

/// Held when `wait_on_future`'s wait is refused and exactly one of the two waits on each
/// other is (the second closes the cycle; the first then gets its answer).
pub fn judge(r: &Reports) -> Verdict {
    if let Some(program) = r.hung {
        return Verdict::not_held(format!(
            "{program} hung for {HANG:?}, as in Python: the deadlock was not detected"
        ));
    }
    match (&r.wait_on_future, r.wait_on_each_other.len()) {
        (Some(_), 1) => {
            Verdict::held("both hangs reported as deadlocks, and each program ran to its end")
        }
        (first, n) => Verdict::not_held(format!(
            "wait_on_future {}; wait_on_a/wait_on_b: {n} refusals (one expected)",
            if first.is_some() {
                "reported"
            } else {
                "not reported"
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_programs_report_their_deadlock() {
        let (wait_on_future, first) = wait_on_future().unwrap();
        let (wait_on_each_other, second) = wait_on_each_other().unwrap();
        assert!(!first && !second, "a program hung");
        let reports = Reports {
            hung: None,
            wait_on_future,
            wait_on_each_other,
        };
        assert!(judge(&reports).is_held(), "{reports:?}");
    }

    #[test]
    fn a_missing_report_does_not_hold() {
        let r = Reports {
            hung: None,
            wait_on_future: None,
            wait_on_each_other: vec!["deadlock".into()],
        };
        assert!(judge(&r).reason().contains("not reported"));
        let r = Reports {
            hung: None,
            wait_on_future: Some("deadlock".into()),
            wait_on_each_other: vec![],
        };
        assert!(!judge(&r).is_held());
        let hung = Reports {
            hung: Some("wait_on_future"),
            ..r
        };
        assert!(judge(&hung).reason().contains("hung"));
    }
}
