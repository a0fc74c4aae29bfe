//! One behavioural suite for every executor: each test below runs for every model with one,
//! two and many workers (as ripgrep's `rgtest!` builds a case per test), so a new model is
//! tested the day it appears.

mod common;

use common::{Scratch, pool, release, sorted_lines, until_running};
use conlab_exec::{
    Error, Executor, Model, ReturnWhen, SubmitError, TaskHandle, as_completed, wait,
};
use conlab_work::Double;
use conlab_work::fixtures::{AppendLine, Noop, Panic, WaitFifo};

macro_rules! for_every_pool {
    ($($test:ident),* $(,)?) => {
        for_every_pool!(@pools [$($test),*]
            serial: Serial 1,
            threads_1: Threads 1, threads_2: Threads 2, threads_8: Threads 8,
            processes_1: Processes 1, processes_2: Processes 2, processes_4: Processes 4,
            async_1: Async 1, async_2: Async 2, async_4: Async 4,
            rayon_1: Rayon 1, rayon_2: Rayon 2, rayon_8: Rayon 8);
    };
    (@pools $tests:tt $($module:ident: $model:ident $workers:literal),*) => {
        $(mod $module {
            for_every_pool!(@tests $tests $model $workers);
        })*
    };
    (@tests [$($test:ident),*] $model:ident $workers:literal) => {
        $(#[test]
        fn $test() {
            super::$test(conlab_exec::Model::$model, $workers);
        })*
    };
}

for_every_pool!(
    submit_returns_each_result,
    map_preserves_input_order,
    map_chunked_preserves_input_order,
    as_completed_yields_each_handle_once,
    a_panic_fails_only_its_task,
    wait_returns_when_asked,
    every_task_runs_exactly_once,
    shutdown_runs_what_was_queued,
    submit_after_shutdown_gives_the_task_back,
    cancel_succeeds_only_while_queued,
    shutdown_with_cancel_drops_only_queued_tasks,
);

fn submit_returns_each_result(model: Model, workers: usize) {
    let pool = pool(model, workers);
    let handles: Vec<_> = (0..50).map(|i| pool.submit(Double(i)).unwrap()).collect();
    for (i, h) in (0..50).zip(handles) {
        assert_eq!(h.wait(), Ok(i * 2));
    }
}

fn map_preserves_input_order(model: Model, workers: usize) {
    let pool = pool(model, workers);
    let out: Vec<u64> = pool.map((0..300).map(Noop)).map(Result::unwrap).collect();
    assert_eq!(out, (0..300).collect::<Vec<_>>());
}

fn map_chunked_preserves_input_order(model: Model, workers: usize) {
    let pool = pool(model, workers);
    let out: Vec<u64> = pool
        .map_chunked((0..1000).map(Noop), 7)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..1000).collect::<Vec<_>>());
}

fn as_completed_yields_each_handle_once(model: Model, workers: usize) {
    let pool = pool(model, workers);
    let handles: Vec<_> = (0..40).map(|i| pool.submit(Noop(i * 3)).unwrap()).collect();
    let mut seen: Vec<(usize, u64)> = as_completed(handles)
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    seen.sort();
    let expected: Vec<(usize, u64)> = (0..40).map(|i| (i as usize, i * 3)).collect();
    assert_eq!(seen, expected);
}

fn a_panic_fails_only_its_task(model: Model, workers: usize) {
    let pool = pool(model, workers);
    let before = pool.submit(Noop(1)).unwrap();
    let bad = pool.submit(Panic("boom".into())).unwrap();
    let after = pool.submit(Noop(2)).unwrap();
    match bad.wait() {
        Err(Error::TaskPanicked { message, .. }) => assert_eq!(message, "boom"),
        other => panic!("expected the task's panic, got {other:?}"),
    }
    assert_eq!(before.wait(), Ok(1));
    assert_eq!(after.wait(), Ok(2));
    // The pool survived: a batch with a panic inside fails only that item.
    let out: Vec<Result<u64, Error>> = pool.map_chunked((0..5).map(Noop), 5).collect();
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(pool.submit(Double(21)).unwrap().wait(), Ok(42));
}

fn wait_returns_when_asked(model: Model, workers: usize) {
    let pool = pool(model, workers);
    let handles = vec![
        pool.submit(Double(1)).unwrap(),
        pool.submit(Double(2)).unwrap(),
    ];
    let first = wait(&handles, ReturnWhen::FirstCompleted, None);
    assert!(!first.done.is_empty());
    let all = wait(&handles, ReturnWhen::All, None);
    let mut done = all.done.clone();
    done.sort();
    assert_eq!(done, [0, 1]);
    assert!(all.pending.is_empty());

    let failing: Vec<TaskHandle<()>> = vec![pool.submit(Panic("first".into())).unwrap()];
    let outcome = wait(&failing, ReturnWhen::FirstError, None);
    assert_eq!(outcome.done, [0]);
}

fn every_task_runs_exactly_once(model: Model, workers: usize) {
    let scratch = Scratch::new("exactly-once");
    let log = scratch.path("ran.log");
    let pool = pool(model, workers);
    let submitted: Vec<_> = (0..100)
        .map(|i| {
            pool.submit(AppendLine(log.clone(), format!("s{i:03}")))
                .unwrap()
        })
        .collect();
    let mapped: Vec<String> = pool
        .map_chunked(
            (0..100).map(|i| AppendLine(log.clone(), format!("m{i:03}"))),
            9,
        )
        .map(Result::unwrap)
        .collect();
    for h in submitted {
        h.wait().unwrap();
    }
    assert_eq!(mapped.len(), 100);
    let mut expected: Vec<String> = (0..100)
        .map(|i| format!("s{i:03}"))
        .chain((0..100).map(|i| format!("m{i:03}")))
        .collect();
    expected.sort();
    assert_eq!(sorted_lines(&log), expected);
}

fn shutdown_runs_what_was_queued(model: Model, workers: usize) {
    let scratch = Scratch::new("shutdown");
    let log = scratch.path("ran.log");
    let pool = pool(model, workers);
    let handles: Vec<_> = (0..60)
        .map(|i| {
            pool.submit(AppendLine(log.clone(), format!("{i:02}")))
                .unwrap()
        })
        .collect();
    pool.shutdown(true, false);
    for h in handles {
        assert!(h.wait().is_ok());
    }
    assert_eq!(sorted_lines(&log).len(), 60);
}

fn submit_after_shutdown_gives_the_task_back(model: Model, workers: usize) {
    let pool = pool(model, workers);
    pool.shutdown(true, false);
    match pool.submit(Double(3)) {
        Err(SubmitError(task)) => assert_eq!(task, Double(3)),
        Ok(h) => panic!("a shut-down pool accepted a task: {h:?}"),
    }
    let results: Vec<_> = pool.map((0..3).map(Noop)).collect();
    assert_eq!(results, vec![Err(Error::Closed); 3]);
}

/// One task per worker, each blocked on its own FIFO until `release`: the pool's every worker
/// is busy, so whatever is submitted next stays queued.
struct Busy {
    _scratch: Scratch,
    gates: Vec<std::path::PathBuf>,
    tasks: Vec<TaskHandle<bool>>,
}

/// A test that fails while its workers are busy must not leave them blocked on their gates,
/// or dropping the pool (which waits for running tasks) would hang the test run instead of
/// failing it.
impl Drop for Busy {
    fn drop(&mut self) {
        for g in &self.gates {
            common::release_if_waiting(g);
        }
    }
}

impl Busy {
    fn every_worker(pool: &conlab_exec::Pool, workers: usize, name: &str) -> Busy {
        let scratch = Scratch::new(name);
        let gates: Vec<_> = (0..workers)
            .map(|i| scratch.fifo(&format!("gate{i}")))
            .collect();
        let tasks: Vec<_> = gates
            .iter()
            .map(|g| pool.submit(WaitFifo(g.clone())).unwrap())
            .collect();
        let busy = Busy {
            _scratch: scratch,
            gates,
            tasks,
        };
        // Built first, so that if its tasks never start, its drop still frees the workers.
        until_running(&busy.tasks);
        busy
    }

    /// Lets every busy task finish, and checks that each did.
    fn release(mut self) {
        for g in &self.gates {
            release(g);
        }
        for t in std::mem::take(&mut self.tasks) {
            assert_eq!(t.wait(), Ok(true), "running tasks finish");
        }
        self.gates.clear();
    }
}

fn cancel_succeeds_only_while_queued(model: Model, workers: usize) {
    let pool = pool(model, workers);
    if model == Model::Serial {
        // Serial runs a task inside `submit`: nothing is ever queued to cancel.
        let h = pool.submit(Noop(1)).unwrap();
        assert!(!h.cancel());
        assert_eq!(h.wait(), Ok(1));
        return;
    }
    let busy = Busy::every_worker(&pool, workers, "cancel");
    let queued = pool.submit(Noop(7)).unwrap();
    assert!(
        !busy.tasks[0].cancel(),
        "a running task cannot be cancelled"
    );
    assert!(queued.cancel(), "a queued task can be cancelled");
    assert!(!queued.cancel(), "cancelling twice succeeds once");
    assert!(matches!(queued.wait(), Err(Error::Cancelled { .. })));
    busy.release();
    // The pool goes on; a done task cannot be cancelled.
    let done = pool.submit(Noop(8)).unwrap();
    let done_id = done.id();
    let outcome = wait(std::slice::from_ref(&done), ReturnWhen::All, None);
    assert_eq!(outcome.done, [0], "task {done_id} finished");
    assert!(!done.cancel());
    assert_eq!(done.wait(), Ok(8));
}

fn shutdown_with_cancel_drops_only_queued_tasks(model: Model, workers: usize) {
    let pool = pool(model, workers);
    if model == Model::Serial {
        let h = pool.submit(Noop(1)).unwrap();
        pool.shutdown(true, true);
        assert_eq!(h.wait(), Ok(1));
        return;
    }
    let busy = Busy::every_worker(&pool, workers, "cancel-pending");
    let queued: Vec<_> = (0..5).map(|i| pool.submit(Noop(i)).unwrap()).collect();
    pool.shutdown(false, true);
    busy.release();
    for q in queued {
        assert!(
            matches!(q.wait(), Err(Error::ShutDown { .. })),
            "queued tasks are dropped"
        );
    }
    pool.shutdown(true, true);
}
