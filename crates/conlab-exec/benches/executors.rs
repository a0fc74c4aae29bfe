//! Criterion: the cost of submitting a batch of no-op closures and waiting for them, per
//! model. `cargo bench -p conlab-exec --bench executors`. The side-by-side comparison with
//! Python is `bench/executors.py`; this bench tracks conlab against itself over time.

// `criterion_group!` generates a public function without a doc comment.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use conlab_exec::{AsyncPool, Executor, RayonPool, Runs, SerialPool, ThreadPool};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TASKS: u64 = 10_000;

type Noop = Box<dyn FnOnce() -> u64 + Send>;

fn submit_wait<E: Executor + Runs<Noop>>(pool: &E) -> u64 {
    let handles: Vec<_> = (0..TASKS)
        .map(|i| pool.submit(Box::new(move || i) as Noop).unwrap())
        .collect();
    handles.into_iter().map(|h| h.wait().unwrap()).sum()
}

fn executors(c: &mut Criterion) {
    let mut group = c.benchmark_group("submit_wait_10k");
    group.throughput(Throughput::Elements(TASKS));
    let serial = SerialPool::new();
    group.bench_function(BenchmarkId::new("serial", 1), |b| {
        b.iter(|| submit_wait(&serial))
    });
    let threads = ThreadPool::new(2);
    group.bench_function(BenchmarkId::new("threads", 2), |b| {
        b.iter(|| submit_wait(&threads))
    });
    let gil = ThreadPool::with_gil(2);
    group.bench_function(BenchmarkId::new("threads-gil", 2), |b| {
        b.iter(|| submit_wait(&gil))
    });
    let rayon = RayonPool::new(2).unwrap();
    group.bench_function(BenchmarkId::new("rayon", 2), |b| {
        b.iter(|| submit_wait(&rayon))
    });
    let event_loop = AsyncPool::new(1).unwrap();
    group.bench_function(BenchmarkId::new("async", 1), |b| {
        b.iter(|| submit_wait(&event_loop))
    });
    group.finish();
}

criterion_group!(benches, executors);
criterion_main!(benches);
