//! Runs a batch of one workload's tasks under one model and measures it with conlab-measure's
//! definitions: wall time of the batch, per-task latency (submission to completion, queueing
//! included) and service time (the work alone), CPU and peak RSS of the process tree, errors,
//! and a checksum of every task's answer in task order, to compare with serial's.
//!
//! Under `async`, tasks run as futures ([`Job::run_timed_async`]): waits yield to the loop,
//! CPU work blocks it. Under every other model they run as plain tasks.

use std::time::{Duration, Instant};

use conlab_exec::processes::WorkerProgram;
use conlab_exec::{Error, Executor, Model, Pool, PoolOptions, ReturnWhen, TaskHandle, wait};
use conlab_measure::{LatencyRecorder, Usage};

use crate::workload::{Done, Job, Workload};

/// How to run one batch.
#[derive(Debug, Clone)]
pub struct RunConfig {
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
    /// The first failure's message.
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
    config: &RunConfig,
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
    let mut submitted_at = Vec::with_capacity(config.tasks as usize);
    let mut handles: Vec<TaskHandle<Result<Done, String>>> =
        Vec::with_capacity(config.tasks as usize);
    for index in 0..config.tasks {
        let job = Job {
            workload: workload.clone(),
            index,
        };
        submitted_at.push(Instant::now());
        let handle = match &pool {
            Pool::Async(event_loop) => event_loop
                .submit_future(async move { job.run_timed_async().await })
                .map_err(|_| Error::Closed)?,
            other => other.submit(job).map_err(|_| Error::Closed)?,
        };
        handles.push(handle);
    }
    let mut latency = LatencyRecorder::new();
    let mut service = LatencyRecorder::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut checksum: u64 = 0xcbf2_9ce4_8422_2325;
    let mut last_done = start;
    for (i, handle) in handles.into_iter().enumerate() {
        wait(std::slice::from_ref(&handle), ReturnWhen::All, None);
        let done_at = handle.completed_at().unwrap_or_else(Instant::now);
        last_done = last_done.max(done_at);
        latency.record(done_at.saturating_duration_since(submitted_at[i]));
        let value = match handle.wait() {
            Ok(Ok(done)) => {
                service.record(Duration::from_nanos(done.service_ns));
                done.checksum
            }
            Ok(Err(message)) => {
                errors += 1;
                first_error.get_or_insert(message);
                0
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                0
            }
        };
        for byte in value.to_le_bytes() {
            checksum = (checksum ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        progress(i as u64 + 1);
    }
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
