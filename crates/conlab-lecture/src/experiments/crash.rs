//! Processes have their own address space: a worker process killed mid-task takes only that
//! task with it. The pool fails it with the worker's cause of death, starts a replacement,
//! and every other task still gets its answer (the lecture's `doubler`).

use conlab_exec::{Error as ExecError, Executor, ProcessPool, RemoteTask, Task};
use conlab_work::Double;
use serde::{Deserialize, Serialize};

use super::{Context, Experiment};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "crash",
    title: "A worker process dies mid-task",
    claim: Claim {
        quote: "processes have their own address space; changes to the parent process do \
                not affect child processes",
        slide: "Process vs. Thread",
        figure: "no figure: a crash stays in its process",
    },
    load_limit: LoadLimit::Never,
    measure,
};

/// Sends this signal to its own process (`9` is SIGKILL): a worker that dies mid-task. In a
/// thread pool this would end the whole program, which is the lecture's point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash(pub i32);

impl Task for Crash {
    type Output = ();
    fn run(self) {
        // SAFETY: `raise` has no memory-safety preconditions. Exercised by this experiment
        // and by the process-pool crash tests in crates/conlab/tests/processes.rs.
        unsafe {
            libc::raise(self.0);
        }
    }
}

impl RemoteTask for Crash {
    const NAME: &'static str = "conlab.crash";
}

/// What the pool did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aftermath {
    /// The killed task's error, if it failed as a crash.
    pub crash: Option<String>,
    /// The other tasks' answers (or errors), in submission order.
    pub others: Vec<Result<i64, String>>,
    /// Workers that died mid-task.
    pub crashes: u64,
    /// Worker processes started, replacements included.
    pub spawned: u64,
}

/// The doubler's inputs: the lecture's five, and two more submitted after the crash.
const BEFORE: [i64; 5] = [5, 10, 15, 20, 25];
const AFTER: [i64; 2] = [30, 35];

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let pool = ProcessPool::builder().workers(context.workers).build()?;
    let before: Vec<_> = BEFORE
        .into_iter()
        .map(|n| pool.submit(Double(n)))
        .collect::<Result<_, _>>()?;
    let killed = pool.submit(Crash(libc::SIGKILL))?;
    let after: Vec<_> = AFTER
        .into_iter()
        .map(|n| pool.submit(Double(n)))
        .collect::<Result<_, _>>()?;
    let crash = match killed.wait() {
        Err(e @ ExecError::WorkerCrashed { .. }) => Some(e.to_string()),
        _ => None,
    };
    let others: Vec<Result<i64, String>> = before
        .into_iter()
        .chain(after)
        .map(|h| h.wait().map_err(|e| e.to_string()))
        .collect();
    let aftermath = Aftermath {
        crash,
        others,
        crashes: pool.crashes(),
        spawned: pool.spawned(),
    };
    let mut details: Vec<String> = aftermath.crash.iter().cloned().collect();
    let answers: Vec<String> = aftermath
        .others
        .iter()
        .map(|r| match r {
            Ok(n) => n.to_string(),
            Err(e) => format!("error ({e})"),
        })
        .collect();
    details.push(format!("the other tasks: [{}]", answers.join(", ")));
    Ok(Outcome {
        setup: format!(
            "{} doublers and one task that SIGKILLs its worker, on {} worker processes",
            BEFORE.len() + AFTER.len(),
            context.workers
        ),
        details,
        measured: format!(
            "{} task failed, {} succeeded, {} worker processes started in all",
            u8::from(aftermath.crash.is_some()) as usize
                + aftermath.others.iter().filter(|r| r.is_err()).count(),
            succeeded(&aftermath),
            aftermath.spawned
        ),
        figures: vec![
            Figure::new("succeeded", succeeded(&aftermath) as f64, "count"),
            Figure::new("crashes", aftermath.crashes as f64, "count"),
            Figure::new("spawned", aftermath.spawned as f64, "count"),
        ],
        series: vec![Series {
            name: "tasks".into(),
            x: Axis {
                label: "outcome (0 failed, 1 succeeded)",
                unit: "",
            },
            y: Axis {
                label: "tasks",
                unit: "",
            },
            points: vec![
                [0.0, f64::from(u8::from(aftermath.crash.is_some()))],
                [1.0, succeeded(&aftermath) as f64],
            ],
        }],
        verdict: judge(&aftermath),
    })
}

/// The other tasks that got an answer.
fn succeeded(a: &Aftermath) -> usize {
    a.others.iter().filter(|r| r.is_ok()).count()
}

/// Held when the killed task failed as a crash, exactly one worker died, and every other task
/// got its doubled answer.
pub fn judge(a: &Aftermath) -> Verdict {
    let expected: Vec<Result<i64, String>> =
        BEFORE.iter().chain(&AFTER).map(|n| Ok(n * 2)).collect();
    match (&a.crash, a.crashes) {
        (Some(_), 1) if a.others == expected => Verdict::held(format!(
            "only the killed task failed; the other {} answered, and the pool replaced its \
             worker",
            a.others.len()
        )),
        (None, _) => Verdict::not_held("the killed task did not fail as a crash"),
        _ => Verdict::not_held(format!(
            "{} workers died and the others answered {:?} (expected {expected:?})",
            a.crashes, a.others
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aftermath(others: Vec<i64>, crashes: u64) -> Aftermath {
        Aftermath {
            crash: Some("worker process 9 died".into()),
            others: others.into_iter().map(Ok).collect(),
            crashes,
            spawned: 3,
        }
    }

    #[test]
    fn one_crash_and_every_other_answer_holds() {
        assert!(judge(&aftermath(vec![10, 20, 30, 40, 50, 60, 70], 1)).is_held());
        assert!(!judge(&aftermath(vec![10, 20, 30, 40, 50, 60], 1)).is_held());
        assert!(!judge(&aftermath(vec![10, 20, 30, 40, 50, 60, 70], 2)).is_held());
        let mut lost = aftermath(vec![10, 20, 30, 40, 50, 60, 70], 1);
        lost.others[2] = Err("worker process 9 died".into());
        assert!(!judge(&lost).is_held());
        let silent = Aftermath {
            crash: None,
            ..aftermath(vec![10, 20, 30, 40, 50, 60, 70], 0)
        };
        assert!(judge(&silent).reason().contains("did not fail"));
    }
}
