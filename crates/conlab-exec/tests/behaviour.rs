//! Behaviour of the in-process pools beyond the shared conformance suite (which lives in
//! crates/conlab/tests, where worker processes are available): backpressure, timeouts, the
//! GIL, async futures, and exactly-once as a property.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use conlab_exec::{
    AsyncPool, Error, Executor, RayonPool, SerialPool, TaskState, ThreadPool, TrySubmitError,
    as_completed, gil,
};
use proptest::prelude::*;

#[test]
fn try_submit_gives_the_task_back_when_the_queue_is_full() {
    let pool = ThreadPool::build(1, 1, false);
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let busy = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap()
        })
        .unwrap();
    started.recv().unwrap();
    let queued = pool.try_submit(|| 1).unwrap();
    match pool.try_submit(|| 2) {
        Err(TrySubmitError::Full(task)) => assert_eq!(task(), 2, "the task came back intact"),
        other => panic!("expected Full, got {other:?}"),
    }
    release.send(()).unwrap();
    busy.wait().unwrap();
    assert_eq!(queued.wait(), Ok(1));
}

#[test]
fn wait_timeout_returns_the_handle_then_the_result() {
    let pool = ThreadPool::new(1);
    let (release, gate) = std::sync::mpsc::channel::<u8>();
    let h = pool.submit(move || gate.recv().unwrap()).unwrap();
    let h = h.wait_timeout(Duration::from_millis(5)).unwrap_err();
    release.send(9).unwrap();
    assert_eq!(h.wait_timeout(Duration::from_secs(30)).unwrap(), Ok(9));
}

#[test]
fn under_the_gil_blocking_waits_still_overlap() {
    // Both tasks must be inside `allow_threads` at once to pass the barrier: if the GIL were
    // not released around the blocking call, the second task could never arrive.
    let pool = ThreadPool::with_gil(2);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            pool.submit(move || gil::allow_threads(|| b.wait().is_leader()))
                .unwrap()
        })
        .collect();
    let leaders = handles
        .into_iter()
        .map(|h| {
            h.wait_timeout(Duration::from_secs(30))
                .expect("GIL blocked a sleeper")
        })
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(leaders, 1);
}

#[test]
fn under_the_gil_cpu_bound_tasks_never_run_at_once() {
    let pool = ThreadPool::with_gil(4);
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (inside, most) = (inside.clone(), most.clone());
            pool.submit(move || {
                for _ in 0..5_000 {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    gil::checkpoint();
                }
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 1);
    assert!(pool.gil().is_some());
}

#[test]
fn async_futures_overlap_on_one_loop_and_can_be_cancelled_while_queued() {
    let pool = AsyncPool::new(1).unwrap();
    // Two futures that each wait for the other's message: only an interleaving loop finishes.
    let (a_tx, a_rx) = tokio::sync::oneshot::channel::<u8>();
    let (b_tx, b_rx) = tokio::sync::oneshot::channel::<u8>();
    let a = pool
        .submit_future(async move {
            a_tx.send(1).unwrap();
            b_rx.await.unwrap()
        })
        .unwrap();
    let b = pool
        .submit_future(async move {
            let got = a_rx.await.unwrap();
            b_tx.send(2).unwrap();
            got
        })
        .unwrap();
    assert_eq!((a.wait(), b.wait()), (Ok(2), Ok(1)));

    // A blocking closure holds the loop, so a future behind it stays queued.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let blocker = pool.submit(move || gate.recv().unwrap()).unwrap();
    let behind = pool.submit_future(async { 5 }).unwrap();
    assert_eq!(behind.state(), TaskState::Queued);
    assert!(behind.cancel());
    release.send(()).unwrap();
    blocker.wait().unwrap();
    assert!(matches!(behind.wait(), Err(Error::Cancelled { .. })));
}

#[test]
fn a_panicking_future_fails_its_task_only() {
    let pool = AsyncPool::new(2).unwrap();
    let bad = pool.submit_future(async { panic!("bad future") }).unwrap();
    let good = pool.submit_future(async { 3 }).unwrap();
    assert!(matches!(
        bad.wait(),
        Err::<(), _>(Error::TaskPanicked { .. })
    ));
    assert_eq!(good.wait(), Ok(3));
}

#[test]
fn handles_can_be_awaited_from_async_code() {
    let threads = ThreadPool::new(2);
    let pool = AsyncPool::new(1).unwrap();
    let on_threads = threads.submit(|| 40).unwrap();
    let sum = pool
        .run(async move { on_threads.await.unwrap() + 2 })
        .unwrap();
    assert_eq!(sum, 42);
}

fn counted<E: Executor + conlab_exec::Runs<Box<dyn FnOnce() -> usize + Send>>>(
    pool: &E,
    n: usize,
    cancel_some: bool,
) {
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let counts = counts.clone();
            let task: Box<dyn FnOnce() -> usize + Send> = Box::new(move || {
                counts[i].fetch_add(1, Ordering::SeqCst);
                i
            });
            pool.submit(task).unwrap()
        })
        .collect();
    let cancelled: Vec<bool> = handles
        .iter()
        .enumerate()
        .map(|(i, h)| cancel_some && i % 3 == 0 && h.cancel())
        .collect();
    let mut seen = vec![0; n];
    for (i, r) in as_completed(handles) {
        match r {
            Ok(v) => {
                assert_eq!(v, i);
                seen[i] += 1;
            }
            Err(Error::Cancelled { .. }) => assert!(cancelled[i]),
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    for i in 0..n {
        let ran = counts[i].load(Ordering::SeqCst);
        assert_eq!(ran, usize::from(!cancelled[i]), "task {i} ran {ran} times");
        assert_eq!(seen[i], ran);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_task_completes_exactly_once(n in 0usize..200, workers in 1usize..6, cancel in any::<bool>()) {
        counted(&SerialPool::new(), n, cancel);
        counted(&ThreadPool::new(workers), n, cancel);
        counted(&RayonPool::new(workers).unwrap(), n, cancel);
        counted(&AsyncPool::new(workers).unwrap(), n, cancel);
    }

    #[test]
    fn map_keeps_input_order(items in proptest::collection::vec(any::<u32>(), 0..500), chunk in 1usize..40, workers in 1usize..5) {
        let pool = ThreadPool::new(workers);
        let out: Vec<u32> = pool.map_chunked(items.iter().map(|&x| move || x), chunk).map(Result::unwrap).collect();
        prop_assert_eq!(&out, &items);
        let rayon = RayonPool::new(workers).unwrap();
        let out: Vec<u32> = rayon.map(items.iter().map(|&x| move || x)).map(Result::unwrap).collect();
        prop_assert_eq!(&out, &items);
    }
}

#[test]
fn map_over_many_items_holds_only_a_window() {
    // Ten million inputs would not fit as handles; the window keeps memory flat. We check the
    // count of tasks alive at once through a gauge, not memory.
    let pool = ThreadPool::new(2);
    let alive = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let inputs = (0..200_000u64).map(|i| {
        let (alive, most) = (alive.clone(), most.clone());
        let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        move || {
            alive.fetch_sub(1, Ordering::SeqCst);
            i
        }
    });
    let sum: u64 = pool.map_chunked(inputs, 256).map(Result::unwrap).sum();
    assert_eq!(sum, (0..200_000u64).sum());
    assert!(
        most.load(Ordering::SeqCst) <= 256 * 9,
        "at most window x chunk tasks alive"
    );
}
