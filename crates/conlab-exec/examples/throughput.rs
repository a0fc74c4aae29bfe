//! Executor overhead on no-op tasks, printed as JSON for `bench/executors.py`, which runs
//! Python's executors on the same tasks in the same run and prints the ratios.
//!
//! `cargo run --release -p conlab-exec --example throughput [-- SCALE]` (SCALE multiplies
//! the task counts; 1 by default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use conlab_exec::processes::{Registry, serve_if_worker};
use conlab_exec::{AsyncPool, Executor, ProcessPool, RemoteTask, Task, ThreadPool};
use serde::{Deserialize, Serialize};

/// As in the `conlab` binary: glibc's malloc spends 20-45% of submit time on frees from
/// other threads and consolidation here (perf); see docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Serialize, Deserialize)]
struct Noop(u64);
impl Task for Noop {
    type Output = u64;
    fn run(self) -> u64 {
        self.0
    }
}
impl RemoteTask for Noop {
    const NAME: &'static str = "bench.noop";
}

/// Runs `f` `runs` times and returns the median rate in items per second.
fn median_rate(runs: usize, items: usize, mut f: impl FnMut()) -> f64 {
    let mut rates: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            items as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    // SAFETY: `getrusage` writes into the zeroed struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn main() -> std::process::ExitCode {
    let mut registry = Registry::new();
    registry.register::<Noop>();
    if let Some(code) = serve_if_worker(&registry) {
        return code;
    }
    let scale: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // An optional second argument picks one group: threads, processes or async.
    let only = std::env::args().nth(2).unwrap_or_default();
    let wanted = |group: &str| only.is_empty() || only == group;
    let workers = 2;
    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: f64| {
        eprintln!("{k:>36}: {v:>14.0}");
        out.insert(k.into(), serde_json::json!(v));
    };

    if wanted("threads") {
        // Threads: submit N no-op closures, then wait for every result.
        let threads = ThreadPool::new(workers);
        let n = 1_000_000 * scale;
        put(
            "threads_submit_wait_per_s",
            median_rate(5, n, || {
                let handles: Vec<_> = (0..n as u64)
                    .map(|i| threads.submit(move || i).unwrap())
                    .collect();
                for h in handles {
                    h.wait().unwrap();
                }
            }),
        );
        // One at a time: submit, wait, next (latency, not throughput).
        let m = 100_000 * scale;
        put(
            "threads_round_trips_per_s",
            median_rate(5, m, || {
                for i in 0..m as u64 {
                    threads.submit(move || i).unwrap().wait().unwrap();
                }
            }),
        );
        // CPU burnt by the idle pool right after the queue empties (spin, then park).
        let before = cpu_seconds();
        std::thread::sleep(Duration::from_millis(200));
        put(
            "threads_idle_cpu_percent",
            (cpu_seconds() - before) / 0.2 * 100.0,
        );
        // map over 10M no-op items, chunked, constant memory.
        let items = 10_000_000 * scale;
        put(
            "threads_map_items_per_s",
            median_rate(3, items, || {
                let sum: u64 = threads
                    .map_chunked((0..items as u64).map(|i| move || i), 4096)
                    .map(Result::unwrap)
                    .sum();
                assert_eq!(sum, (0..items as u64).sum::<u64>());
            }),
        );
        drop(threads);
    }

    if wanted("processes") {
        // Processes: chunk size 1, every task its own frame; then map with chunks.
        let processes = ProcessPool::builder()
            .workers(workers)
            .build()
            .expect("process pool");
        let n = 200_000 * scale;
        put(
            "processes_submit_wait_per_s",
            median_rate(5, n, || {
                let handles: Vec<_> = (0..n as u64)
                    .map(|i| processes.submit(Noop(i)).unwrap())
                    .collect();
                for h in handles {
                    h.wait().unwrap();
                }
            }),
        );
        let items = 10_000_000 * scale;
        put(
            "processes_map_items_per_s",
            median_rate(3, items, || {
                let count = processes
                    .map_chunked((0..items as u64).map(Noop), 65_536)
                    .map(Result::unwrap)
                    .count();
                assert_eq!(count, items);
            }),
        );
        drop(processes);
    }

    if wanted("async") {
        // Async: spawn N futures from inside the loop and await them all; bare tokio alongside.
        let pool = Arc::new(AsyncPool::new(1).expect("event loop"));
        let n = 1_000_000 * scale;
        put(
            "async_spawn_join_per_s",
            median_rate(5, n, || {
                let inner = pool.clone();
                pool.run(async move {
                    let handles: Vec<_> = (0..n as u64)
                        .map(|i| inner.submit_future(async move { i }).unwrap())
                        .collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                })
                .unwrap();
            }),
        );
        put(
            "tokio_bare_spawn_join_per_s",
            median_rate(5, n, || {
                pool.run(async move {
                    let handles: Vec<_> = (0..n as u64)
                        .map(|i| tokio::spawn(async move { i }))
                        .collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                })
                .unwrap();
            }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
    std::process::ExitCode::SUCCESS
}
