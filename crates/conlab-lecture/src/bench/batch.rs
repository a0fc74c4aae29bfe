//! Runs a batch of one workload's tasks under one model and measures it with conlab-measure's
//! definitions: wall time of the batch, per-task latency (submission to completion, queueing
//! included) and service time (the work alone), CPU and peak RSS of the process tree, errors,
//! and a checksum of every task's answer in task order, to compare with serial's.
//!
//! Under `async`, tasks run as futures ([`Job::run_timed_async`]): waits yield to the loop,
//! CPU work blocks it. Under every other model they run as plain tasks.
//!
//! Tasks stream: at most [`IN_FLIGHT`] are submitted and not yet collected, so a batch of a
//! hundred million tasks holds as much memory as one of a hundred thousand.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use conlab_exec::processes::WorkerProgram;
use conlab_exec::{Error, Executor, Model, Pool, PoolOptions, ReturnWhen, TaskHandle, wait};
use conlab_measure::{LatencyRecorder, Usage};
use conlab_work::{Done, Job, Workload};

/// Tasks submitted and not yet collected, at most. Far more than any pool's queue holds
/// (1024 per worker), so a pool is never starved by the batch's bookkeeping; a handle and
/// its submission time take about a hundred bytes, so this is a few megabytes at most.
pub const IN_FLIGHT: usize = 65_536;

/// How to run one batch.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// The model.
    pub model: Model,
    /// Workers (ignored by `serial`).
    pub workers: usize,
    /// `threads` only: under the emulated GIL.
    pub gil: bool,
    /// Tasks in the batch.
    pub tasks: u64,
    /// `processes` only: the worker executable (default: this one).
    pub worker_program: Option<WorkerProgram>,
}

/// What one batch measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// From the first submission to the last completion.
    pub wall: Duration,
    /// CPU time of the process tree during the batch.
    pub cpu: Duration,
    /// Peak RSS of the process tree at the end of the batch.
    pub peak_rss_bytes: u64,
    /// Per-task latency: submission to completion.
    pub latency: LatencyRecorder,
    /// Per-task service time: start to end of the work.
    pub service: LatencyRecorder,
    /// Tasks that failed.
    pub errors: u64,
    /// The first failure: which task, and why.
    pub first_error: Option<String>,
    /// FNV-1a of every task's checksum in task order (failed tasks count as 0).
    pub checksum: u64,
    /// Workers the pool actually had.
    pub workers: usize,
}

/// Runs `config.tasks` tasks of `workload` under `config.model`; `progress` is called with
/// the number of tasks done so far.
pub fn run(
    workload: &Workload,
    config: &BatchConfig,
    mut progress: impl FnMut(u64),
) -> Result<Measurement, Error> {
    let workers = if config.model == Model::Serial {
        1
    } else {
        config.workers.max(1)
    };
    let pool = Pool::new(
        config.model,
        PoolOptions {
            workers: Some(workers),
            gil: config.gil && config.model == Model::Threads,
            worker_program: config.worker_program.clone(),
            ..PoolOptions::default()
        },
    )?;
    conlab_measure::usage::reset_peak();
    let before = Usage::now();
    let start = Instant::now();
    let mut collector = Collector::new(start);
    let mut in_flight: VecDeque<(Instant, TaskHandle<Result<Done, String>>)> = VecDeque::new();
    for index in 0..config.tasks {
        if in_flight.len() >= IN_FLIGHT
            && let Some((submitted, handle)) = in_flight.pop_front()
        {
            collector.collect(submitted, handle);
            progress(collector.done);
        }
        let job = Job {
            workload: workload.clone(),
            index,
        };
        let submitted = Instant::now();
        let handle = match &pool {
            Pool::Async(event_loop) => event_loop
                .submit_future(async move { job.run_timed_async().await })
                .map_err(|_| Error::Closed)?,
            other => other.submit(job).map_err(|_| Error::Closed)?,
        };
        in_flight.push_back((submitted, handle));
    }
    for (submitted, handle) in in_flight {
        collector.collect(submitted, handle);
        progress(collector.done);
    }
    let Collector {
        latency,
        service,
        errors,
        first_error,
        checksum,
        last_done,
        ..
    } = collector;
    let after = Usage::now();
    let workers = pool.workers();
    pool.shutdown(true, false);
    Ok(Measurement {
        wall: last_done.duration_since(start),
        cpu: after.cpu_since(&before),
        peak_rss_bytes: after.peak_rss_bytes,
        latency,
        service,
        errors,
        first_error,
        checksum,
        workers,
    })
}

/// Collects finished tasks in task order: their latency, service time, answer and errors.
struct Collector {
    latency: LatencyRecorder,
    service: LatencyRecorder,
    errors: u64,
    first_error: Option<String>,
    checksum: u64,
    last_done: Instant,
    done: u64,
}

impl Collector {
    fn new(start: Instant) -> Self {
        Collector {
            latency: LatencyRecorder::new(),
            service: LatencyRecorder::new(),
            errors: 0,
            first_error: None,
            // FNV-1a's offset basis.
            checksum: 0xcbf2_9ce4_8422_2325,
            last_done: start,
            done: 0,
        }
    }

    /// Waits for the next task in order (submitted at `submitted`) and records it.
    fn collect(&mut self, submitted: Instant, handle: TaskHandle<Result<Done, String>>) {
        let index = self.done;
        wait(std::slice::from_ref(&handle), ReturnWhen::All, None);
        let done_at = handle.completed_at().unwrap_or_else(Instant::now);
        self.last_done = self.last_done.max(done_at);
        self.latency
            .record(done_at.saturating_duration_since(submitted));
        let value = match handle.wait() {
            Ok(Ok(done)) => {
                self.service.record(Duration::from_nanos(done.service_ns));
                done.checksum
            }
            // Numbered as the pool numbers its tasks (#1 first), which its own errors use.
            Ok(Err(message)) => self.fail(format!("task #{}: {message}", index + 1)),
            Err(e) => self.fail(e.to_string()),
        };
        for byte in value.to_le_bytes() {
            self.checksum = (self.checksum ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.done += 1;
    }

    /// Counts a failed task; its answer counts as 0 in the checksum.
    fn fail(&mut self, message: String) -> u64 {
        self.errors += 1;
        self.first_error.get_or_insert(message);
        0
    }
}
