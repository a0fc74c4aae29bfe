//! The pipeline and its two runners: OS threads (crossbeam bounded channels) and tasks on
//! tokio's event loop (tokio bounded channels), with the same queues, batching, ordering,
//! errors and measurements.
//!
//! Items travel in batches (`batch` items, one channel send each): a cross-core wake-up costs
//! ~40-70 us on this machine (`conlab probe`), so a send per item would make the hand-off the
//! bottleneck of any stage faster than that. A queue's capacity is counted in items and held
//! as `capacity / batch` batches. Memory stays bounded: a full queue blocks its producer, and
//! with `ordered` the source takes a permit per item that the sink gives back only when the
//! item leaves in order, so the reordering buffer never holds more than the pipeline does.
//!
//! An error (or a panic) in stage K stops the source and stages up to K, which drop what they
//! still receive; stages after K finish the items already past K; the report names the item
//! and the stage.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::{self, Failure, Latency, Little, Report, StageReport};
use crate::stage::{Stage, Work};

/// The concurrency model a pipeline runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Model {
    /// A thread per worker.
    Threads,
    /// A task per worker on tokio's event loop (spin work blocks it, as in asyncio).
    Async,
}

impl Model {
    /// `threads` or `async`.
    pub fn name(self) -> &'static str {
        match self {
            Model::Threads => "threads",
            Model::Async => "async",
        }
    }
}

/// A cancellation handle: once set, the source stops and the pipeline drains.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle over `flag` (a signal handler's flag: Ctrl-C cancels).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Cancel {
        Cancel(flag)
    }

    /// Asks the pipeline to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Stages joined by bounded queues.
#[derive(Debug, Clone)]
pub struct Pipeline<T> {
    stages: Vec<Stage<T>>,
    queue: usize,
    batch: usize,
    ordered: bool,
    sample_every: Duration,
}

/// Why a pipeline cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// No stages.
    #[error("a pipeline needs at least one stage")]
    NoStages,
    /// The event loop or a thread could not be started.
    #[error("starting the pipeline's {what}")]
    Start {
        /// What could not start.
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl PipelineError {
    /// The error of `what` (a thread, the event loop) not starting, for `map_err`.
    fn start(what: &'static str) -> impl FnOnce(std::io::Error) -> PipelineError {
        move |source| PipelineError::Start { what, source }
    }
}

type Item<T> = (u64, T);

/// Items handed over together. Their latency runs from `born`, when the batch's first item
/// entered: one clock read per batch, not two per item (a clock read costs more than a
/// no-op stage's hand-off here), at the price of counting the later items' wait for the
/// batch to fill from its start.
struct Batch<T> {
    items: Vec<Item<T>>,
    born: Instant,
    sent: Instant,
}

/// Counters one queue keeps (its length for sampling, the waits of what passed it).
#[derive(Default)]
struct QueueStats {
    /// Items in the queue: counted after a send succeeds and after a receive, so a reader
    /// may see one batch per consumer more than the channel holds, never a batch blocked in
    /// a send.
    len: AtomicI64,
    passed: AtomicU64,
    wait_ns: AtomicU64,
    samples: AtomicU64,
    sampled_sum: AtomicU64,
    max: AtomicUsize,
}

impl QueueStats {
    fn sent(&self, n: usize) {
        let now = self.len.fetch_add(n as i64, Ordering::SeqCst) + n as i64;
        self.max.fetch_max(now.max(0) as usize, Ordering::Relaxed);
    }

    fn received<T>(&self, batch: &Batch<T>) {
        let n = batch.items.len();
        self.len.fetch_sub(n as i64, Ordering::SeqCst);
        self.passed.fetch_add(n as u64, Ordering::Relaxed);
        let waited = batch.sent.elapsed().as_nanos() as u64;
        self.wait_ns
            .fetch_add(waited.saturating_mul(n as u64), Ordering::Relaxed);
    }

    fn sample(&self) {
        let len = self.len.load(Ordering::SeqCst).max(0) as u64;
        self.samples.fetch_add(1, Ordering::Relaxed);
        self.sampled_sum.fetch_add(len, Ordering::Relaxed);
    }

    fn mean(&self) -> f64 {
        let samples = self.samples.load(Ordering::Relaxed);
        if samples == 0 {
            return 0.0;
        }
        self.sampled_sum.load(Ordering::Relaxed) as f64 / samples as f64
    }
}

/// What the runners share.
struct Shared<T> {
    stages: Vec<Stage<T>>,
    queues: Vec<QueueStats>,
    busy_ns: Vec<AtomicU64>,
    done: Vec<AtomicU64>,
    /// Stages up to this index drop what they receive (`usize::MAX`: none).
    stop_through: AtomicUsize,
    failure: Mutex<Option<Failure>>,
    cancel: Cancel,
    items_in: AtomicU64,
    /// Time from a batch's first item to its send, summed, and the batches.
    fill_ns: AtomicU64,
    batches: AtomicU64,
}

impl<T> Shared<T> {
    fn new(stages: Vec<Stage<T>>, cancel: Cancel) -> Shared<T> {
        let n = stages.len();
        Shared {
            queues: (0..=n).map(|_| QueueStats::default()).collect(),
            busy_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            done: (0..n).map(|_| AtomicU64::new(0)).collect(),
            stop_through: AtomicUsize::new(usize::MAX),
            failure: Mutex::new(None),
            cancel,
            items_in: AtomicU64::new(0),
            fill_ns: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            stages,
        }
    }

    fn filled(&self, waited: Duration) {
        self.fill_ns
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    fn source_stopped(&self) -> bool {
        self.cancel.is_set() || self.stop_through.load(Ordering::SeqCst) != usize::MAX
    }

    fn dropping(&self, stage: usize) -> bool {
        let through = self.stop_through.load(Ordering::SeqCst);
        through != usize::MAX && stage <= through
    }

    fn fail(&self, stage: usize, item: u64, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some(Failure {
                stage: self.stages[stage].name.clone(),
                item,
                message,
            });
            self.stop_through.store(stage, Ordering::SeqCst);
        }
    }

    /// Runs stage `i`'s function on one item; `None` when it failed. Timing and counting
    /// are per batch ([`Shared::record`]): a clock read and a shared counter per item would
    /// cost more than a no-op stage.
    fn apply(&self, i: usize, seq: u64, item: T) -> Option<T> {
        let result = match &self.stages[i].work {
            Work::Func(f) => call(f.as_ref(), seq, item),
            Work::Load(w) => w.run(seq).map(|_| item),
        };
        self.finish(i, seq, result)
    }

    /// A batch of stage `i` took from `began` to now and finished `done` items.
    fn record(&self, i: usize, began: Instant, done: usize) {
        self.busy_ns[i].fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.done[i].fetch_add(done as u64, Ordering::Relaxed);
    }

    fn finish(&self, i: usize, seq: u64, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(item) => Some(item),
            Err(message) => {
                self.fail(i, seq, message);
                None
            }
        }
    }
}

/// A stage function on one item; a panic is that item's error.
fn call<T>(
    f: &(dyn Fn(u64, T) -> Result<T, String> + Send + Sync),
    seq: u64,
    item: T,
) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(|| f(seq, item)))
        .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&panic))))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".into())
}

/// Puts results back in input order; gives back each emitted item's permit.
struct Reorder<T> {
    next: u64,
    held: BTreeMap<u64, T>,
}

impl<T> Reorder<T> {
    fn new() -> Self {
        Reorder {
            next: 0,
            held: BTreeMap::new(),
        }
    }

    /// Takes `seq`; calls `emit` for every item now in order.
    fn push(&mut self, seq: u64, item: T, mut emit: impl FnMut(u64, T)) {
        self.held.insert(seq, item);
        while let Some(item) = self.held.remove(&self.next) {
            emit(self.next, item);
            self.next += 1;
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline of these stages, with queues of 64 items, batches of 1, unordered.
    pub fn new(stages: Vec<Stage<T>>) -> Pipeline<T> {
        Pipeline {
            stages,
            queue: 64,
            batch: 1,
            ordered: false,
            sample_every: Duration::from_millis(1),
        }
    }

    /// Items each queue holds (the staging pile's size); at least one batch.
    pub fn queue(mut self, items: usize) -> Self {
        self.queue = items.max(1);
        self
    }

    /// Items handed from stage to stage at once.
    pub fn batch(mut self, items: usize) -> Self {
        self.batch = items.max(1);
        self
    }

    /// Results leave in input order.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// How often queue lengths are sampled.
    pub fn sample_every(mut self, every: Duration) -> Self {
        self.sample_every = every.max(Duration::from_micros(50));
        self
    }

    /// The stages.
    pub fn stages(&self) -> &[Stage<T>] {
        &self.stages
    }

    fn batches_per_queue(&self) -> usize {
        self.queue.div_ceil(self.batch).max(1)
    }

    /// Items the pipeline can hold at once: the permits an ordered run hands out.
    fn in_flight(&self) -> usize {
        let queues = (self.stages.len() + 1) * self.batches_per_queue() * self.batch;
        let workers: usize = self.stages.iter().map(|s| s.workers).sum();
        queues + (workers + 2) * self.batch
    }

    /// Runs `items` through the stages under `model`; `sink` gets each result (in input order
    /// when ordered). The report says what was measured and what stopped the run, if
    /// anything.
    pub fn run<I, S>(
        &self,
        items: I,
        model: Model,
        cancel: &Cancel,
        sink: S,
    ) -> Result<Report, PipelineError>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send,
        S: FnMut(u64, T) + Send,
    {
        if self.stages.is_empty() {
            return Err(PipelineError::NoStages);
        }
        let shared = Arc::new(Shared::new(self.stages.clone(), cancel.clone()));
        let sampling = AtomicBool::new(true);
        let began = Instant::now();
        let histogram = std::thread::scope(|scope| {
            // Without a sampler thread (none could start) the queues are only counted at
            // each hand-off.
            let sampler = std::thread::Builder::new()
                .spawn_scoped(scope, || {
                    while sampling.load(Ordering::SeqCst) {
                        for q in &shared.queues {
                            q.sample();
                        }
                        std::thread::sleep(self.sample_every);
                    }
                })
                .ok();
            let result = match model {
                Model::Threads => self.run_threads(&shared, items.into_iter(), sink),
                Model::Async => self.run_async(&shared, items.into_iter(), sink),
            };
            sampling.store(false, Ordering::SeqCst);
            if let Some(sampler) = sampler {
                let _ = sampler.join();
            }
            result
        })?;
        Ok(self.report(&shared, model, began.elapsed(), &histogram))
    }

    fn run_threads<I, S>(
        &self,
        shared: &Arc<Shared<T>>,
        items: I,
        mut sink: S,
    ) -> Result<Histogram<u64>, PipelineError>
    where
        I: Iterator<Item = T> + Send,
        S: FnMut(u64, T) + Send,
    {
        let n = self.stages.len();
        let cap = self.batches_per_queue();
        let channels: Vec<_> = (0..=n)
            .map(|_| crossbeam_channel::bounded::<Batch<T>>(cap))
            .collect();
        let (permit_tx, permit_rx) = crossbeam_channel::bounded::<()>(self.in_flight());
        if self.ordered {
            for _ in 0..self.in_flight() {
                let _ = permit_tx.send(());
            }
        }
        let batch = self.batch;
        let ordered = self.ordered;
        let mut histogram = latency_histogram();
        let mut not_started: Option<std::io::Error> = None;
        let stop = &shared.stop_through;
        std::thread::scope(|scope| {
            // The source.
            {
                let tx = channels[0].0.clone();
                let permits = permit_rx.clone();
                let shared = Arc::clone(shared);
                spawn_in(scope, &mut not_started, stop, n, move || {
                    let mut pending: Vec<Item<T>> = Vec::with_capacity(batch);
                    let mut born = Instant::now();
                    for (seq, item) in (0u64..).zip(items) {
                        if ordered {
                            loop {
                                if shared.source_stopped() {
                                    return;
                                }
                                if permits.recv_timeout(Duration::from_millis(5)).is_ok() {
                                    break;
                                }
                            }
                        }
                        if shared.source_stopped() {
                            return;
                        }
                        if pending.is_empty() {
                            born = Instant::now();
                        }
                        pending.push((seq, item));
                        shared.items_in.fetch_add(1, Ordering::Relaxed);
                        if pending.len() == batch {
                            send_batch(&shared, &tx, &mut pending, born);
                        }
                    }
                    if !pending.is_empty() {
                        send_batch(&shared, &tx, &mut pending, born);
                    }
                });
            }
            // The stages.
            for i in 0..n {
                for _ in 0..self.stages[i].workers {
                    let rx = channels[i].1.clone();
                    let tx = channels[i + 1].0.clone();
                    let permits = permit_tx.clone();
                    let shared = Arc::clone(shared);
                    spawn_in(scope, &mut not_started, stop, n, move || {
                        precise_timers();
                        while let Ok(input) = rx.recv() {
                            shared.queues[i].received(&input);
                            let began = Instant::now();
                            let dropping = shared.dropping(i);
                            // In place: collecting from the batch's own iterator reuses
                            // its allocation.
                            let out: Vec<Item<T>> = input
                                .items
                                .into_iter()
                                .filter_map(|(seq, item)| {
                                    let done = if dropping || shared.dropping(i) {
                                        None
                                    } else {
                                        shared.apply(i, seq, item)
                                    };
                                    if done.is_none() {
                                        give_back(ordered, &permits);
                                    }
                                    done.map(|item| (seq, item))
                                })
                                .collect();
                            shared.record(i, began, out.len());
                            if !out.is_empty() {
                                let n = out.len();
                                let batch = Batch {
                                    items: out,
                                    born: input.born,
                                    sent: Instant::now(),
                                };
                                if tx.send(batch).is_err() {
                                    return;
                                }
                                shared.queues[i + 1].sent(n);
                            }
                        }
                    });
                }
            }
            let sink_rx = channels[n].1.clone();
            drop(channels);
            drop(permit_rx);
            // The sink, on this thread.
            let mut reorder = ordered.then(Reorder::new);
            while let Ok(input) = sink_rx.recv() {
                let give_back = || give_back(true, &permit_tx);
                deliver(
                    &shared.queues[n],
                    input,
                    &mut histogram,
                    reorder.as_mut(),
                    &mut sink,
                    give_back,
                );
            }
        });
        not_started.map_or(Ok(histogram), |e| Err(PipelineError::start("threads")(e)))
    }

    fn run_async<I, S>(
        &self,
        shared: &Arc<Shared<T>>,
        items: I,
        mut sink: S,
    ) -> Result<Histogram<u64>, PipelineError>
    where
        I: Iterator<Item = T> + Send,
        S: FnMut(u64, T) + Send,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(crate::cores::allowed())
            .on_thread_start(precise_timers)
            .enable_time()
            .build()
            .map_err(PipelineError::start("event loop"))?;
        let n = self.stages.len();
        let cap = self.batches_per_queue();
        let batch = self.batch;
        let ordered = self.ordered;
        let permits = Arc::new(tokio::sync::Semaphore::new(if ordered {
            self.in_flight()
        } else {
            tokio::sync::Semaphore::MAX_PERMITS
        }));
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..=n {
            let (tx, rx) = tokio::sync::mpsc::channel::<Batch<T>>(cap);
            senders.push(tx);
            receivers.push(Arc::new(tokio::sync::Mutex::new(rx)));
        }
        // The source reads the iterator on a thread of its own (it may block), and hands
        // items to the loop through the first queue.
        let source_tx = senders[0].clone();
        let mut histogram = latency_histogram();
        let mut not_started: Option<std::io::Error> = None;
        let stop = &shared.stop_through;
        std::thread::scope(|scope| {
            {
                let shared = Arc::clone(shared);
                let permits = Arc::clone(&permits);
                let handle = runtime.handle().clone();
                spawn_in(scope, &mut not_started, stop, n, move || {
                    let mut pending: Vec<Item<T>> = Vec::with_capacity(batch);
                    let mut born = Instant::now();
                    for (seq, item) in (0u64..).zip(items) {
                        if shared.source_stopped() {
                            return;
                        }
                        // A permit, checking for a stop meanwhile: after a failure the
                        // items behind the failed one never give theirs back.
                        if ordered {
                            loop {
                                if shared.source_stopped() {
                                    return;
                                }
                                let wait = async {
                                    tokio::time::timeout(
                                        Duration::from_millis(5),
                                        permits.acquire(),
                                    )
                                    .await
                                };
                                match handle.block_on(wait) {
                                    Ok(Ok(p)) => {
                                        p.forget();
                                        break;
                                    }
                                    Ok(Err(_)) => return,
                                    Err(_) => {}
                                }
                            }
                        }
                        if pending.is_empty() {
                            born = Instant::now();
                        }
                        pending.push((seq, item));
                        shared.items_in.fetch_add(1, Ordering::Relaxed);
                        if pending.len() == batch
                            && !send_batch_async(&handle, &shared, &source_tx, &mut pending, born)
                        {
                            return;
                        }
                    }
                    if !pending.is_empty() {
                        send_batch_async(&handle, &shared, &source_tx, &mut pending, born);
                    }
                });
            }
            let mut tasks = Vec::new();
            for i in 0..n {
                for _ in 0..self.stages[i].workers {
                    let rx = Arc::clone(&receivers[i]);
                    let tx = senders[i + 1].clone();
                    let shared = Arc::clone(shared);
                    let permits = Arc::clone(&permits);
                    tasks.push(runtime.spawn(async move {
                        loop {
                            let input = rx.lock().await.recv().await;
                            let Some(input) = input else { break };
                            shared.queues[i].received(&input);
                            let mut out = Vec::with_capacity(input.items.len());
                            let began = Instant::now();
                            for (seq, item) in input.items {
                                if shared.dropping(i) {
                                    if ordered {
                                        permits.add_permits(1);
                                    }
                                    continue;
                                }
                                let result = match &shared.stages[i].work {
                                    Work::Func(f) => call(f.as_ref(), seq, item),
                                    Work::Load(w) => w.run_async(seq).await.map(|_| item),
                                };
                                match shared.finish(i, seq, result) {
                                    Some(item) => out.push((seq, item)),
                                    None if ordered => permits.add_permits(1),
                                    None => {}
                                }
                            }
                            shared.record(i, began, out.len());
                            if !out.is_empty() {
                                let n = out.len();
                                let batch = Batch {
                                    items: out,
                                    born: input.born,
                                    sent: Instant::now(),
                                };
                                if tx.send(batch).await.is_err() {
                                    break;
                                }
                                shared.queues[i + 1].sent(n);
                            }
                        }
                    }));
                }
            }
            drop(senders);
            let sink_rx = Arc::clone(&receivers[n]);
            drop(receivers);
            let shared = Arc::clone(shared);
            let permits = Arc::clone(&permits);
            runtime.block_on(async {
                let mut rx = sink_rx.lock().await;
                let mut reorder = ordered.then(Reorder::new);
                while let Some(input) = rx.recv().await {
                    let give_back = || permits.add_permits(1);
                    deliver(
                        &shared.queues[n],
                        input,
                        &mut histogram,
                        reorder.as_mut(),
                        &mut sink,
                        give_back,
                    );
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
            // A source blocked on a permit after a failure: let it see the stop.
            permits.close();
        });
        not_started.map_or(Ok(histogram), |e| {
            Err(PipelineError::start("source thread")(e))
        })
    }

    fn report(
        &self,
        shared: &Shared<T>,
        model: Model,
        wall: Duration,
        histogram: &Histogram<u64>,
    ) -> Report {
        let wall_s = wall.as_secs_f64().max(1e-9);
        let capacity = self.batches_per_queue() * self.batch;
        let stages: Vec<StageReport> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let q = &shared.queues[i];
                let passed = q.passed.load(Ordering::Relaxed);
                let w_s = if passed == 0 {
                    0.0
                } else {
                    q.wait_ns.load(Ordering::Relaxed) as f64 / passed as f64 / 1e9
                };
                let lambda = passed as f64 / wall_s;
                let busy_s = shared.busy_ns[i].load(Ordering::Relaxed) as f64 / 1e9;
                StageReport {
                    name: s.name.clone(),
                    workers: s.workers,
                    items: shared.done[i].load(Ordering::Relaxed),
                    busy_s,
                    utilisation: busy_s / (wall_s * s.workers as f64),
                    queue_capacity: capacity,
                    queue_mean: q.mean(),
                    queue_max: q.max.load(Ordering::Relaxed),
                    wait_ms: w_s * 1e3,
                    little: Little {
                        l_sampled: q.mean(),
                        lambda_per_s: lambda,
                        w_s,
                        l_predicted: lambda * w_s,
                    },
                }
            })
            .collect();
        let n = self.stages.len();
        let sink_queue_mean = shared.queues[n].mean();
        let items_out = shared.queues[n].passed.load(Ordering::Relaxed);
        let items_in = shared.items_in.load(Ordering::Relaxed);
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
        Report {
            schema: report::SCHEMA.into(),
            model: model.name().into(),
            cores: crate::cores::allowed(),
            batch: self.batch,
            ordered: self.ordered,
            items_in,
            items_out,
            wall_s,
            throughput_per_s: items_out as f64 / wall_s,
            latency: Latency {
                p50_ms: ms(0.5),
                p90_ms: ms(0.9),
                p99_ms: ms(0.99),
                max_ms: histogram.max() as f64 / 1e3,
                mean_ms: histogram.mean() / 1e3,
            },
            batch_fill_ms: match shared.batches.load(Ordering::Relaxed) {
                0 => 0.0,
                batches => shared.fill_ns.load(Ordering::Relaxed) as f64 / batches as f64 / 1e6,
            },
            bottleneck: report::bottleneck(&stages, sink_queue_mean, capacity),
            stages,
            sink_queue_mean,
            failure: shared
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            cancelled: shared.cancel.is_set(),
        }
    }
}

/// The sink's side of the last queue: each item's latency, then the item to `sink`, in
/// order when `reorder` is given (each emitted item gives its permit back).
fn deliver<T>(
    queue: &QueueStats,
    input: Batch<T>,
    histogram: &mut Histogram<u64>,
    mut reorder: Option<&mut Reorder<T>>,
    sink: &mut impl FnMut(u64, T),
    mut give_back: impl FnMut(),
) {
    queue.received(&input);
    let micros = input.born.elapsed().as_micros().max(1) as u64;
    let _ = histogram.record_n(micros, input.items.len() as u64);
    for (seq, item) in input.items {
        match reorder.as_deref_mut() {
            Some(reorder) => reorder.push(seq, item, |seq, item| {
                sink(seq, item);
                give_back();
            }),
            None => sink(seq, item),
        }
    }
}

/// Starts `f` on a thread of `scope`, unless one could not start before; a thread that
/// cannot start (a process limit) stops every stage (`stop` through the last, `n`), so what
/// started drains and ends and the run is an error, not a panic.
fn spawn_in<'scope, F>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    not_started: &mut Option<std::io::Error>,
    stop: &AtomicUsize,
    n: usize,
    f: F,
) where
    F: FnOnce() + Send + 'scope,
{
    if not_started.is_some() {
        return;
    }
    if let Err(e) = std::thread::Builder::new().spawn_scoped(scope, f) {
        stop.store(n, Ordering::SeqCst);
        *not_started = Some(e);
    }
}

/// Asks the kernel to wake this thread's sleeps on time rather than up to 50 us late (the
/// default timer slack, which lets it batch wake-ups): a gopher's `sleep:2ms` is its work,
/// and every microsecond it oversleeps is throughput the design is charged for. Best
/// effort: a kernel that refuses leaves the default.
fn precise_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument (nanoseconds; 1 is the least,
    // 0 would mean "the default") and changes only this thread's timer slack; no memory is
    // passed. Exercised by `stage_threads_sleep_with_the_least_timer_slack`.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

fn latency_histogram() -> Histogram<u64> {
    // Microseconds, 1 us to an hour, 3 significant figures.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn give_back(ordered: bool, permits: &crossbeam_channel::Sender<()>) {
    if ordered {
        let _ = permits.try_send(());
    }
}

fn send_batch<T>(
    shared: &Shared<T>,
    tx: &crossbeam_channel::Sender<Batch<T>>,
    pending: &mut Vec<Item<T>>,
    born: Instant,
) {
    let now = Instant::now();
    shared.filled(now.duration_since(born));
    let items = std::mem::take(pending);
    let n = items.len();
    if tx
        .send(Batch {
            items,
            born,
            sent: now,
        })
        .is_ok()
    {
        shared.queues[0].sent(n);
    }
}

fn send_batch_async<T>(
    handle: &tokio::runtime::Handle,
    shared: &Shared<T>,
    tx: &tokio::sync::mpsc::Sender<Batch<T>>,
    pending: &mut Vec<Item<T>>,
    born: Instant,
) -> bool {
    let now = Instant::now();
    shared.filled(now.duration_since(born));
    let items = std::mem::take(pending);
    let n = items.len();
    let sent = handle
        .block_on(tx.send(Batch {
            items,
            born,
            sent: now,
        }))
        .is_ok();
    if sent {
        shared.queues[0].sent(n);
    }
    sent
}
