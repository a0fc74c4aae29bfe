//! The lecture's two programs that hang ("Nothing is happening, why?"): a one-worker pool
//! whose task waits on a task it submitted to the same pool (`wait_on_future`), and two tasks
//! that wait on each other (`wait_on_a` / `wait_on_b`). Python hangs; conlab's pool sees the
//! wait-for cycle and the wait returns `Error::Deadlock` instead.

use std::sync::{Arc, Barrier, Mutex};

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

/// What the two programs did on conlab's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reports {
    /// `wait_on_future`'s refusal, if its wait was refused as a deadlock.
    pub wait_on_future: Option<String>,
    /// The refusals among `wait_on_a` / `wait_on_b` (one of the two waits closes the cycle).
    pub wait_on_each_other: Vec<String>,
}

fn measure(_: &Context<'_>) -> Result<Outcome, Error> {
    let reports = Reports {
        wait_on_future: wait_on_future()?,
        wait_on_each_other: wait_on_each_other()?,
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
/// the task submits `pow(5, 2)` to the same pool and waits for it.
fn wait_on_future() -> Result<Option<String>, Error> {
    let pool = Arc::new(ThreadPool::new(1));
    let inner = pool.clone();
    let outer = pool.submit(move || inner.submit(|| 5u64.pow(2)).map(TaskHandle::wait))?;
    Ok(match outer.wait()? {
        Ok(Err(e @ ExecError::Deadlock { .. })) => Some(e.to_string()),
        _ => None,
    })
}

/// `a = executor.submit(wait_on_b); b = executor.submit(wait_on_a)` on two workers.
fn wait_on_each_other() -> Result<Vec<String>, Error> {
    let pool = ThreadPool::new(2);
    type Slot = Arc<Mutex<Option<TaskHandle<u64>>>>;
    let (a_slot, b_slot): (Slot, Slot) = Default::default();
    let refusals = Arc::new(Mutex::new(Vec::new()));
    // Both tasks running and both handles stored: the lecture's `time.sleep(5)`, made exact.
    let ready = Arc::new(Barrier::new(3));
    let waits_on = |other: &Slot, value: u64| {
        let (other, ready, refusals) = (other.clone(), ready.clone(), refusals.clone());
        move || -> u64 {
            ready.wait();
            let handle = lock(&other).take();
            if let Some(Err(e @ ExecError::Deadlock { .. })) = handle.map(TaskHandle::wait) {
                lock(&refusals).push(e.to_string());
            }
            value
        }
    };
    let a = pool.submit(waits_on(&b_slot, 5))?; // wait_on_b
    let b = pool.submit(waits_on(&a_slot, 6))?; // wait_on_a
    *lock(&a_slot) = Some(a);
    *lock(&b_slot) = Some(b);
    ready.wait();
    pool.shutdown(true, false);
    Ok(std::mem::take(&mut *lock(&refusals)))
}

/// Held when `wait_on_future`'s wait is refused and exactly one of the two waits on each
/// other is (the second closes the cycle; the first then gets its answer).
pub fn judge(r: &Reports) -> Verdict {
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
        let reports = Reports {
            wait_on_future: wait_on_future().unwrap(),
            wait_on_each_other: wait_on_each_other().unwrap(),
        };
        assert!(judge(&reports).is_held(), "{reports:?}");
    }

    #[test]
    fn a_missing_report_does_not_hold() {
        let r = Reports {
            wait_on_future: None,
            wait_on_each_other: vec!["deadlock".into()],
        };
        assert!(judge(&r).reason().contains("not reported"));
        let r = Reports {
            wait_on_future: Some("deadlock".into()),
            wait_on_each_other: vec![],
        };
        assert!(!judge(&r).is_held());
    }
}
