//! `conlab tour`: the lecture's experiments, run on this machine, each printed as the
//! lecture's claim, what was measured, and whether the claim held.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use conlab_exec::{
    Error, Executor, Model, Pool, PoolOptions, ProcessPool, TaskHandle, ThreadPool, available_cores,
};
use conlab_work::diagnostic::{Crash, Double};
use conlab_work::primes::{LECTURE_PRIMES, LECTURE_SUMS};
use conlab_work::{IsPrime, Primes};

/// The experiments, in the lecture's order.
const EXPERIMENTS: [&str; 5] = ["kettle", "primes", "is-prime", "deadlock", "crash"];

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  conlab tour                      every experiment (about 2 s on 2 cores)
  conlab tour --only primes        the prime sums under serial, threads, threads --gil,
                                   processes, async and rayon
  conlab tour --only kettle,crash  two experiments")]
pub(crate) struct Args {
    /// Run only these experiments (comma-separated): kettle, primes, is-prime, deadlock, crash.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(EXPERIMENTS))]
    only: Vec<String>,

    /// Workers for each pool (default: one per core).
    #[arg(short = 'j', long)]
    workers: Option<usize>,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let out = &mut io::stdout().lock();
    let workers = args.workers.unwrap_or_else(available_cores).max(1);
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    writeln!(
        out,
        "conlab tour: the lecture's experiments on this machine ({} cores, {workers} workers per pool)\n",
        available_cores()
    )?;
    let mut held = Vec::new();
    if wanted("kettle") {
        held.push(kettle(out)?);
    }
    if wanted("primes") {
        held.push(primes(out, workers)?);
    }
    if wanted("is-prime") {
        held.push(is_prime(out, workers)?);
    }
    if wanted("deadlock") {
        held.push(deadlock(out)?);
    }
    if wanted("crash") {
        held.push(crash(out, workers)?);
    }
    let ok = held.iter().filter(|h| **h).count();
    writeln!(out, "{ok} of {} claims held on this machine.", held.len())?;
    Ok(ExitCode::SUCCESS)
}

fn verdict(held: bool) -> &'static str {
    if held { "held" } else { "DID NOT HOLD" }
}

/// The kettle (asyncio minitask 7): 3 units of boiling and 2 of cleaning cups, one after the
/// other, then overlapped on one event loop. One unit is 100 ms here (1 s in the lecture).
fn kettle(out: &mut impl Write) -> Result<bool> {
    const UNIT: Duration = Duration::from_millis(100);
    writeln!(
        out,
        "== The kettle (asyncio): waiting overlaps on one thread"
    )?;
    writeln!(
        out,
        "   lecture: sequential 5.00 s, concurrent 3.00 s (1 unit = 1 s; here 1 unit = 0.1 s)"
    )?;
    let pool = conlab_exec::AsyncPool::new(1).context("starting the event loop")?;
    // An async block, so the timer is created on the loop, where tokio's clock lives.
    let perform = |units: u32| async move { tokio::time::sleep(UNIT * units).await };
    let start = Instant::now();
    pool.run(async move {
        perform(3).await; // boiling kettle
        perform(2).await; // cleaning cups
    })?;
    let sequential = start.elapsed();
    let start = Instant::now();
    let kettle = pool.submit_future(perform(3)).map_err(|_| Error::Closed)?;
    let cups = pool.submit_future(perform(2)).map_err(|_| Error::Closed)?;
    cups.wait()?;
    kettle.wait()?;
    let concurrent = start.elapsed();
    let held = concurrent < sequential.mul_f64(0.7);
    writeln!(
        out,
        "   measured: sequential {:.2} s, concurrent {:.2} s ({:.2}x) -> {}\n",
        sequential.as_secs_f64(),
        concurrent.as_secs_f64(),
        sequential.as_secs_f64() / concurrent.as_secs_f64(),
        verdict(held)
    )?;
    Ok(held)
}

struct Row {
    label: String,
    workers: usize,
    wall: Duration,
    sums: Vec<u64>,
    errors: usize,
}

fn run_primes(model: Model, gil: bool, workers: usize, inputs: &[u64]) -> Result<Row> {
    let options = PoolOptions {
        workers: Some(if model == Model::Serial || model == Model::Async {
            1
        } else {
            workers
        }),
        gil,
        ..PoolOptions::default()
    };
    let pool = Pool::new(model, options).with_context(|| format!("starting a {model} pool"))?;
    let start = Instant::now();
    let results: Vec<_> = pool.map(inputs.iter().map(|&n| Primes(n))).collect();
    let wall = start.elapsed();
    let errors = results.iter().filter(|r| r.is_err()).count();
    let sums = results.into_iter().filter_map(Result::ok).collect();
    Ok(Row {
        label: if gil {
            format!("{model} --gil")
        } else {
            model.to_string()
        },
        workers: pool.workers(),
        wall,
        sums,
        errors,
    })
}

/// The lecture's prime sums (400000, 500000, 600000) under every model: the GIL experiment.
fn primes(out: &mut impl Write, workers: usize) -> Result<bool> {
    writeln!(out, "== Sum of primes under every model: CPU-bound work")?;
    writeln!(
        out,
        "   lecture: [6458901531, 9914236195, 14071826345]; threads do not speed up CPU-bound \
         Python (the GIL), processes do; CPU work blocks an event loop"
    )?;
    // The lecture's three inputs, four times over, so each run is long enough to time.
    let inputs: Vec<u64> = LECTURE_SUMS.iter().copied().cycle().take(12).collect();
    let runs = [
        (Model::Serial, false),
        (Model::Threads, false),
        (Model::Threads, true),
        (Model::Processes, false),
        (Model::Async, false),
        (Model::Rayon, false),
    ];
    let rows = runs
        .iter()
        .map(|&(model, gil)| run_primes(model, gil, workers, &inputs))
        .collect::<Result<Vec<_>>>()?;
    let serial = &rows[0];
    writeln!(
        out,
        "   {:<14} {:>7} {:>9} {:>8}  results",
        "model", "workers", "wall", "speedup"
    )?;
    let mut all_agree = true;
    for row in &rows {
        let agree = row.errors == 0 && row.sums == serial.sums;
        all_agree &= agree;
        writeln!(
            out,
            "   {:<14} {:>7} {:>7.1}ms {:>7.2}x  {}",
            row.label,
            row.workers,
            row.wall.as_secs_f64() * 1e3,
            serial.wall.as_secs_f64() / row.wall.as_secs_f64(),
            if agree {
                "agree with serial".to_string()
            } else {
                format!("DIFFER ({} errors)", row.errors)
            }
        )?;
    }
    let speedup = |label: &str| {
        rows.iter()
            .find(|r| r.label == label)
            .map_or(0.0, |r| serial.wall.as_secs_f64() / r.wall.as_secs_f64())
    };
    let mut first: Vec<u64> = serial.sums.iter().take(3).copied().collect();
    first.sort_unstable();
    let parallel = workers > 1 && available_cores() > 1;
    let held = all_agree
        && first == [6_458_901_531, 9_914_236_195, 14_071_826_345]
        && speedup("threads --gil") < 1.15
        && speedup("async") < 1.15
        && (!parallel || speedup("processes") > 1.3);
    writeln!(
        out,
        "   measured: sums {first:?}; threads --gil {:.2}x, processes {:.2}x, async {:.2}x -> {}\n",
        speedup("threads --gil"),
        speedup("processes"),
        speedup("async"),
        verdict(held)
    )?;
    Ok(held)
}

/// `pr.py`: ProcessPoolExecutor.map over the lecture's PRIMES list.
fn is_prime(out: &mut impl Write, workers: usize) -> Result<bool> {
    writeln!(
        out,
        "== is_prime with a process pool (ProcessPoolExecutor.map)"
    )?;
    writeln!(
        out,
        "   lecture: five primes, then 1099726899285419 is prime: False"
    )?;
    let pool = ProcessPool::builder()
        .workers(workers)
        .build()
        .context("starting the process pool")?;
    let start = Instant::now();
    let verdicts: Vec<bool> = pool
        .map(LECTURE_PRIMES.map(IsPrime))
        .collect::<Result<_, _>>()?;
    let wall = start.elapsed();
    for (n, prime) in LECTURE_PRIMES.iter().zip(&verdicts) {
        writeln!(
            out,
            "   {n} is prime: {}",
            if *prime { "True" } else { "False" }
        )?;
    }
    let held = verdicts == [true, true, true, true, true, false];
    writeln!(
        out,
        "   measured: {:.1} ms on {workers} worker processes -> {}\n",
        wall.as_secs_f64() * 1e3,
        verdict(held)
    )?;
    Ok(held)
}

/// The lecture's two hangs, reported instead: a one-worker pool waiting on its own
/// submission, and two tasks waiting on each other.
fn deadlock(out: &mut impl Write) -> Result<bool> {
    writeln!(out, "== Deadlocks (\"Nothing is happening, why?\")")?;
    writeln!(
        out,
        "   lecture: both programs hang forever; conlab reports them"
    )?;

    let pool = Arc::new(ThreadPool::new(1));
    let inner = pool.clone();
    let outer = pool.submit(move || inner.submit(|| 5u64.pow(2)).map(TaskHandle::wait))?;
    let first = outer.wait()?;
    let first_reported = matches!(first, Ok(Err(Error::Deadlock { .. })));
    if let Ok(Err(e)) = &first {
        writeln!(out, "   wait_on_future: {e}")?;
    }

    let pool = ThreadPool::new(2);
    type Slot = Arc<Mutex<Option<TaskHandle<u64>>>>;
    let (a_slot, b_slot): (Slot, Slot) = Default::default();
    let refusals = Arc::new(Mutex::new(Vec::new()));
    // Both tasks running and both handles stored: the lecture's `time.sleep(5)`, made exact.
    let ready = Arc::new(Barrier::new(3));
    let waits_on = |other: &Slot, value: u64| {
        let (other, ready, refusals) = (other.clone(), ready.clone(), refusals.clone());
        move || -> u64 {
            ready.wait();
            let handle = other.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(Err(e @ Error::Deadlock { .. })) = handle.map(TaskHandle::wait) {
                refusals
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string());
            }
            value
        }
    };
    let a = pool.submit(waits_on(&b_slot, 5))?; // wait_on_b
    let b = pool.submit(waits_on(&a_slot, 6))?; // wait_on_a
    *a_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(a);
    *b_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(b);
    ready.wait();
    pool.shutdown(true, false);
    let refusals = std::mem::take(&mut *refusals.lock().unwrap_or_else(|p| p.into_inner()));
    for e in &refusals {
        writeln!(out, "   wait_on_a/wait_on_b: {e}")?;
    }
    let second_reported = refusals.len() == 1;
    let held = first_reported && second_reported;
    writeln!(
        out,
        "   measured: both deadlocks reported, no hang -> {}\n",
        verdict(held)
    )?;
    Ok(held)
}

/// A worker process killed mid-task fails that task only.
fn crash(out: &mut impl Write, workers: usize) -> Result<bool> {
    writeln!(out, "== A worker process dies mid-task")?;
    writeln!(
        out,
        "   lecture: processes have their own address space; a crash stays in its process"
    )?;
    let pool = ProcessPool::builder()
        .workers(workers)
        .build()
        .context("starting the process pool")?;
    let doubles: Vec<_> = [5, 10, 15, 20, 25]
        .into_iter()
        .map(|n| pool.submit(Double(n)))
        .collect::<Result<_, _>>()?;
    let killed = pool.submit(Crash(libc_sigkill()))?;
    let more: Vec<_> = [30, 35]
        .into_iter()
        .map(|n| pool.submit(Double(n)))
        .collect::<Result<_, _>>()?;
    let crash = killed.wait();
    let results: Vec<i64> = doubles
        .into_iter()
        .chain(more)
        .map(TaskHandle::wait)
        .collect::<Result<_, _>>()?;
    if let Err(e) = &crash {
        writeln!(out, "   {e}")?;
    }
    writeln!(out, "   the other tasks: {results:?}")?;
    let held = matches!(crash, Err(Error::WorkerCrashed { .. }))
        && results == [10, 20, 30, 40, 50, 60, 70]
        && pool.crashes() == 1;
    writeln!(
        out,
        "   measured: 1 task failed, {} succeeded, {} worker processes started in all -> {}\n",
        results.len(),
        pool.spawned(),
        verdict(held)
    )?;
    Ok(held)
}

/// SIGKILL's number (9 on every Unix conlab runs on).
fn libc_sigkill() -> i32 {
    9
}
