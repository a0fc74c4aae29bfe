//! `conlab run --task KIND`: each input value becomes the built-in workload `KIND:VALUE`, run
//! on one of conlab's pools instead of a process per job. The same inputs as a command run;
//! the results go to a callback in input order (`-k`) or as they complete.

use conlab_exec::{Executor, Model, Pool, PoolOptions};
use conlab_work::{Job, Workload};

use crate::input::{InputError, Row};

/// Why a task run could not go on (a task's own failure is a result, not this).
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Reading the inputs failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// `KIND:VALUE` is not a workload.
    #[error(transparent)]
    Spec(#[from] conlab_work::SpecError),
    /// The pool could not start or refused a task.
    #[error(transparent)]
    Pool(#[from] conlab_exec::Error),
    /// The callback failed (output closed).
    #[error("writing output")]
    Output(#[source] std::io::Error),
}

/// One task's result: its input value and the workload's checksum, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResult {
    /// The input value (the row's values joined with spaces).
    pub value: String,
    /// The checksum, or the failure.
    pub outcome: Result<u64, String>,
}

/// Runs `KIND:VALUE` for every row under `model` with `jobs` workers and hands each result to
/// `emit`; returns how many failed.
pub fn run_tasks(
    kind: &str,
    model: Model,
    jobs: usize,
    keep_order: bool,
    rows: impl Iterator<Item = Row>,
    mut emit: impl FnMut(TaskResult) -> std::io::Result<()>,
) -> Result<u64, TaskError> {
    let pool = Pool::new(
        model,
        PoolOptions {
            workers: Some(jobs),
            ..PoolOptions::default()
        },
    )?;
    let mut handles = Vec::new();
    let mut values = Vec::new();
    for row in rows {
        let value = row?
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let workload = Workload::parse(&format!("{kind}:{value}"))?;
        let job = Job {
            workload,
            index: handles.len() as u64,
        };
        let handle = match &pool {
            Pool::Async(event_loop) => event_loop
                .submit_future(async move { job.run_timed_async().await })
                .map_err(|_| conlab_exec::Error::Closed)?,
            other => other.submit(job).map_err(|_| conlab_exec::Error::Closed)?,
        };
        handles.push(handle);
        values.push(value);
    }
    let mut failed = 0u64;
    let mut deliver = |i: usize, result: Result<Result<conlab_work::Done, String>, _>| {
        let outcome = match result {
            Ok(Ok(done)) => Ok(done.checksum),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(conlab_exec::Error::to_string(&e)),
        };
        failed += u64::from(outcome.is_err());
        emit(TaskResult {
            value: std::mem::take(&mut values[i]),
            outcome,
        })
        .map_err(TaskError::Output)
    };
    if keep_order {
        for (i, h) in handles.into_iter().enumerate() {
            deliver(i, h.wait())?;
        }
    } else {
        for (i, result) in conlab_exec::as_completed(handles) {
            deliver(i, result)?;
        }
    }
    pool.shutdown(true, false);
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_run_and_failures_are_counted_in_order() {
        let rows = ["10", "x", "20"].map(|v| Ok(vec![v.as_bytes().to_vec()]));
        let mut seen = Vec::new();
        let failed = run_tasks("primes", Model::Threads, 2, true, rows.into_iter(), |r| {
            seen.push(r);
            Ok(())
        });
        // `primes:x` is not a workload: the run stops before any task starts.
        assert!(matches!(failed, Err(TaskError::Spec(_))));
        let rows = ["10", "20"].map(|v| Ok(vec![v.as_bytes().to_vec()]));
        let failed = run_tasks("primes", Model::Threads, 2, true, rows.into_iter(), |r| {
            seen.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(failed, 0);
        assert_eq!(
            seen.iter().map(|r| r.outcome.clone()).collect::<Vec<_>>(),
            [Ok(17), Ok(77)]
        );
    }
}
