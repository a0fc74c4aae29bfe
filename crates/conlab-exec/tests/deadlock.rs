//! The lecture's two hangs are reported as `Error::Deadlock`, and waits that can make
//! progress are never refused.

use std::sync::{Arc, Barrier, Mutex};

use conlab_exec::{Error, Executor, RayonPool, TaskHandle, ThreadPool};

#[test]
fn a_one_worker_pool_waiting_on_its_own_submission_reports_a_deadlock() {
    // The lecture's `wait_on_future`: `executor.submit(pow, 5, 2).result()` inside the pool.
    let pool = Arc::new(ThreadPool::new(1));
    let inner = pool.clone();
    let outer = pool
        .submit(move || inner.submit(|| 5u64.pow(2)).unwrap().wait())
        .unwrap();
    match outer.wait().unwrap() {
        Err(Error::Deadlock { reason, .. }) => assert!(reason.contains("1 workers"), "{reason}"),
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

type Shared = Arc<Mutex<Option<TaskHandle<u64>>>>;

/// Two tasks that each wait on the other, on a pool of `workers`.
fn wait_on_each_other<E: Executor + conlab_exec::Runs<Box<dyn FnOnce() -> u64 + Send>>>(
    pool: &E,
) -> Vec<Error> {
    let (a_slot, b_slot): (Shared, Shared) = Default::default();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(Barrier::new(3));
    let task = |other: &Shared, value: u64| -> Box<dyn FnOnce() -> u64 + Send> {
        let (other, ready, refused) = (other.clone(), ready.clone(), refused.clone());
        Box::new(move || {
            ready.wait();
            let handle = other.lock().unwrap().take().unwrap();
            if let Err(e) = handle.wait() {
                refused.lock().unwrap().push(e);
            }
            value
        })
    };
    let a = pool.submit(task(&b_slot, 5)).unwrap();
    let b = pool.submit(task(&a_slot, 6)).unwrap();
    *a_slot.lock().unwrap() = Some(a);
    *b_slot.lock().unwrap() = Some(b);
    ready.wait();
    pool.shutdown(true, false);
    std::mem::take(&mut *refused.lock().unwrap())
}

#[test]
fn two_tasks_waiting_on_each_other_report_a_cycle() {
    for workers in [2, 4] {
        let pool = ThreadPool::new(workers);
        let refused = wait_on_each_other(&pool);
        assert_eq!(refused.len(), 1, "exactly one wait is refused: {refused:?}");
        assert!(matches!(&refused[0], Error::Deadlock { reason, .. } if reason.contains("cycle")));
    }
}

#[test]
fn rayon_reports_the_same_cycle() {
    let pool = RayonPool::new(2).unwrap();
    let refused = wait_on_each_other(&pool);
    assert_eq!(refused.len(), 1, "{refused:?}");
}

#[test]
fn waiting_on_a_queued_task_is_fine_while_a_worker_is_free() {
    let pool = Arc::new(ThreadPool::new(2));
    let inner = pool.clone();
    let outer = pool
        .submit(move || inner.submit(|| 7u64).unwrap().wait())
        .unwrap();
    assert_eq!(outer.wait().unwrap(), Ok(7));
}

#[test]
fn a_chain_of_waits_that_ends_in_free_work_completes() {
    // Task 1 waits on task 2, which waits on task 3: with 3 workers all of them can run.
    let pool = Arc::new(ThreadPool::new(3));
    let p = pool.clone();
    let outer = pool
        .submit(move || {
            let q = p.clone();
            p.submit(move || q.submit(|| 3u64).unwrap().wait().unwrap() + 2)
                .unwrap()
                .wait()
        })
        .unwrap();
    assert_eq!(outer.wait().unwrap(), Ok(5));
}

#[test]
fn waits_from_outside_the_pool_are_never_refused() {
    let pool = ThreadPool::new(1);
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let busy = pool.submit(move || gate.recv().unwrap()).unwrap();
    let queued = pool.submit(|| 1u8).unwrap();
    release.send(()).unwrap();
    assert_eq!(queued.wait(), Ok(1));
    busy.wait().unwrap();
}
