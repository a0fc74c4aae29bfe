//! The process pool's promises, tested against real worker processes (the `conlab` binary):
//! a killed worker fails exactly its task and is replaced, nothing else is lost or run twice,
//! workers are recycled, printing tasks cannot corrupt the protocol, and a bad worker program
//! is reported at once.

mod common;

use common::{Scratch, sorted_lines, worker_program};
use conlab_exec::processes::WorkerProgram;
use conlab_exec::{Error, Executor, ProcessPool, RemoteTask, Task, TaskState};
use conlab_lecture::experiments::crash::Crash;
use conlab_work::fixtures::{AppendLine, Pid, Print, WaitFifo};
use conlab_work::{Double, SleepMs};
use serde::{Deserialize, Serialize};

fn pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .workers(workers)
        .program(worker_program())
        .build()
        .expect("starting a process pool")
}

#[test]
fn a_task_that_kills_its_worker_fails_alone_and_nothing_runs_twice() {
    let scratch = Scratch::new("crash");
    let log = scratch.path("ran.log");
    let pool = pool(2);
    let mut handles = Vec::new();
    for i in 0..120 {
        handles.push(
            pool.submit(AppendLine(log.clone(), format!("{i:03}")))
                .unwrap(),
        );
        if i % 40 == 20 {
            // Mid-batch: tasks are queued in the dying worker's pipe behind it.
            let crash = pool.submit(Crash(libc::SIGKILL)).unwrap();
            match crash.wait() {
                Err(Error::WorkerCrashed { cause, .. }) => {
                    assert!(cause.contains("SIGKILL"), "{cause}")
                }
                other => panic!("expected WorkerCrashed, got {other:?}"),
            }
        }
    }
    for h in handles {
        assert!(h.wait().is_ok(), "every other task succeeds");
    }
    let expected: Vec<String> = (0..120).map(|i| format!("{i:03}")).collect();
    assert_eq!(sorted_lines(&log), expected, "each task ran exactly once");
    assert_eq!(pool.crashes(), 3);
    assert_eq!(pool.spawned(), 2 + 3, "each dead worker was replaced once");
}

#[test]
fn a_worker_killed_from_outside_fails_its_running_task() {
    let pool = pool(1);
    let long = pool.submit(SleepMs(60_000)).unwrap();
    let queued: Vec<_> = (0..5).map(|i| pool.submit(Double(i)).unwrap()).collect();
    common::until_running(std::slice::from_ref(&long));
    let pid = pool.worker_pids()[0];
    assert_ne!(pid, 0);
    // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    match long.wait() {
        Err(Error::WorkerCrashed {
            pid: died, cause, ..
        }) => {
            assert_eq!(died, pid);
            assert!(cause.contains("signal 9"), "{cause}");
        }
        other => panic!("expected WorkerCrashed, got {other:?}"),
    }
    let doubled: Vec<i64> = queued.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(doubled, [0, 2, 4, 6, 8]);
    assert_ne!(
        pool.worker_pids()[0],
        pid,
        "a new worker replaced the dead one"
    );
}

#[test]
fn a_worker_that_aborts_is_reported_by_cause() {
    // (Not SIGSEGV: Rust's own SIGSEGV handler ignores a raised one that is not a fault.)
    let pool = pool(1);
    match pool.submit(Crash(libc::SIGABRT)).unwrap().wait() {
        Err(Error::WorkerCrashed { cause, .. }) => assert!(cause.contains("SIGABRT"), "{cause}"),
        other => panic!("expected WorkerCrashed, got {other:?}"),
    }
    assert_eq!(pool.submit(Double(4)).unwrap().wait(), Ok(8));
}

#[test]
fn a_crash_inside_a_chunk_fails_every_item_of_that_chunk_only() {
    let pool = pool(1);
    let before = pool.submit(Double(1)).unwrap();
    let chunk = pool.map_chunked([Crash(libc::SIGKILL), Crash(0)], 2);
    let results: Vec<_> = chunk.collect();
    assert_eq!(
        results.len(),
        2,
        "one result per input even when the chunk died"
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::WorkerCrashed { .. })))
    );
    assert_eq!(before.wait(), Ok(2));
    assert_eq!(pool.submit(Double(2)).unwrap().wait(), Ok(4));
}

#[test]
fn max_tasks_per_child_recycles_workers() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_tasks_per_child(3)
        .program(worker_program())
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..7)
        .map(|_| pool.submit(Pid).unwrap().wait().unwrap())
        .collect();
    let mut distinct = pids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "7 tasks, 3 per child: {pids:?}");
    assert!(
        pids.iter().all(|&p| p != std::process::id()),
        "tasks ran in other processes"
    );
    assert_eq!(pool.crashes(), 0);
}

#[test]
fn a_task_that_prints_does_not_corrupt_replies() {
    let pool = pool(2);
    let lengths: Vec<usize> = pool
        .map(["tango", "foxtrot", "10"].map(|s| Print(s.to_string())))
        .map(Result::unwrap)
        .collect();
    assert_eq!(lengths, [5, 7, 2]);
}

/// A task the `conlab` binary does not register.
#[derive(Debug, Serialize, Deserialize)]
struct Unknown;
impl Task for Unknown {
    type Output = u8;
    fn run(self) -> u8 {
        0
    }
}
impl RemoteTask for Unknown {
    const NAME: &'static str = "tests.unknown";
}

#[test]
fn an_unregistered_task_kind_is_an_error_not_a_crash() {
    let pool = pool(1);
    match pool.submit(Unknown).unwrap().wait() {
        Err(Error::Remote { message, .. }) => {
            assert!(message.contains("does not register"), "{message}")
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    assert_eq!(pool.submit(Double(5)).unwrap().wait(), Ok(10));
    assert_eq!(pool.crashes(), 0);
}

#[test]
fn a_program_that_is_not_a_worker_is_refused_at_build() {
    let err = ProcessPool::builder()
        .workers(1)
        .program(WorkerProgram::new("true"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("serve_if_worker"), "{err}");
    let err = ProcessPool::builder()
        .workers(1)
        .program(WorkerProgram::new("/nonexistent/conlab-worker"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("starting worker"), "{err}");
}

#[test]
fn tasks_are_marked_running_only_once_sent() {
    let pool = pool(1);
    let scratch = Scratch::new("states");
    let gate = scratch.fifo("gate");
    let busy = pool.submit(WaitFifo(gate.clone())).unwrap();
    common::until_running(std::slice::from_ref(&busy));
    let behind = pool.submit(Double(1)).unwrap();
    assert_eq!(behind.state(), TaskState::Queued);
    common::release(&gate);
    assert_eq!(busy.wait(), Ok(true));
    assert_eq!(behind.wait(), Ok(2));
}

#[test]
fn a_task_that_runs_conlab_does_not_turn_it_into_a_worker() {
    // The grandchild inherits CONLAB_WORKER but is not the pool's child: it must run as the
    // normal command line and print its version.
    let pool = pool(1);
    let line = format!("{} --version", env!("CARGO_BIN_EXE_conlab"));
    let job = conlab_work::Job {
        workload: conlab_work::Workload::parse(&format!("cmd:'{line} | grep -q conlab'")).unwrap(),
        index: 0,
    };
    let done = pool.submit(job).unwrap().wait().unwrap();
    assert!(done.is_ok(), "{done:?}");
}

#[test]
fn a_worker_killed_during_shutdown_leaves_no_task_behind_it_unrun() {
    let scratch = Scratch::new("shutdown-crash");
    let gate = scratch.fifo("gate");
    let pool = pool(1);
    // Many fast tasks at once, so the window opens beyond one task in the worker's pipe.
    let warm: Vec<_> = (0..300).map(|i| pool.submit(Double(i)).unwrap()).collect();
    for (i, h) in warm.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(2 * i as i64));
    }
    let blocked = pool.submit(WaitFifo(gate.clone())).unwrap();
    let behind: Vec<_> = (0..5).map(|i| pool.submit(Double(i)).unwrap()).collect();
    // All six in the worker's pipe (claimed), then the stop message taken by the supervisor.
    common::until_running(std::slice::from_ref(&blocked));
    common::until_running(&behind);
    pool.shutdown(false, false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pool.queued() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stop was never taken"
        );
        std::thread::yield_now();
    }
    // SAFETY: `kill` has no memory-safety preconditions; the pid is the pool's worker's.
    unsafe {
        libc::kill(pool.worker_pids()[0] as i32, libc::SIGKILL);
    }
    assert!(matches!(blocked.wait(), Err(Error::WorkerCrashed { .. })));
    for (i, h) in behind.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(2 * i as i64), "task {i} behind the crash");
    }
    pool.shutdown(true, false);
}
