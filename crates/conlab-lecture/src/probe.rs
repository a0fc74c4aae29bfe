//! The machine's costs, measured: what a thread, a process, a context switch, an async task,
//! a channel hop, a lock and an atomic cost here. These are the numbers behind the lecture's
//! "threads have a relatively small overhead; processes have considerable overhead" and
//! "`+=` is not atomic".
//!
//! Each probe repeats its operation enough times to take a few tens of milliseconds, three
//! times, and reports the median cost per operation. [`ProbeReport`] is what `conlab probe`
//! prints and writes as JSON ([`PROBE_SCHEMA`]).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use conlab_measure::Tabular;
use conlab_measure::report::{self, Cell, Column, Table};
use serde::Serialize;

/// The schema id of [`ProbeReport`]'s JSON.
pub const PROBE_SCHEMA: &str = "conlab.probe/1";

/// Everything `conlab probe` measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// [`PROBE_SCHEMA`].
    pub schema: &'static str,
    /// Cores this process may use.
    pub cores: usize,
    /// One per primitive, in the lecture's order.
    pub probes: Vec<Probe>,
}

impl ProbeReport {
    /// Measures every probe, and `perf bench sched pipe` beside them when perf is installed.
    pub fn measure(scale: Scale) -> Self {
        let mut probes = run_all(scale);
        probes.extend(perf_sched_pipe(scale));
        ProbeReport {
            schema: PROBE_SCHEMA,
            cores: conlab_exec::available_cores(),
            probes,
        }
    }

    /// The cost of the probe called `name`, in nanoseconds.
    pub fn ns(&self, name: &str) -> Option<f64> {
        self.probes
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.per_op_ns)
    }
}

impl Tabular for ProbeReport {
    fn tables(&self) -> Vec<Table> {
        vec![Table {
            title: Some(format!(
                "What things cost on this machine ({} cores)",
                self.cores
            )),
            columns: vec![
                Column::text("primitive"),
                Column::number("per_op_s"),
                Column::number("ops"),
                Column::text("how"),
            ],
            rows: self
                .probes
                .iter()
                .map(|p| {
                    vec![
                        Cell::text(p.name.clone()),
                        report::seconds(p.per_op_ns / 1e9),
                        report::count(p.ops),
                        Cell::text(p.note.clone()),
                    ]
                })
                .collect(),
            notes: Vec::new(),
        }]
    }
}

/// One measured primitive.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Short name: `thread spawn+join`.
    pub name: String,
    /// Median cost of one operation, in nanoseconds.
    pub per_op_ns: f64,
    /// Operations per measured repetition.
    pub ops: u64,
    /// What the number means, or what else was observed.
    pub note: String,
    /// For the counter probes: increments that were lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_updates: Option<u64>,
}

/// How many repetitions each probe makes, as a share of the full count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Scale of every repetition count (1.0 = full).
    pub scale: f64,
}

impl Scale {
    /// Full-length probes (about 3 s in all on 2 cores).
    pub const FULL: Scale = Scale { scale: 1.0 };
    /// A tenth of that: `conlab probe --quick` and the tour.
    pub const QUICK: Scale = Scale { scale: 0.1 };
    /// A fiftieth: the tour's quick budget and tests.
    pub const TINY: Scale = Scale { scale: 0.02 };

    fn n(&self, full: u64) -> u64 {
        ((full as f64 * self.scale) as u64).max(10)
    }
}

/// Runs `op(n)` (which performs n operations) three times; the median ns per operation.
fn median_ns(n: u64, mut op: impl FnMut(u64)) -> f64 {
    let samples: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            op(n);
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    conlab_measure::median(&samples)
}

fn probe(name: &str, ops: u64, per_op_ns: f64, note: impl Into<String>) -> Probe {
    Probe {
        name: name.to_string(),
        per_op_ns,
        ops,
        note: note.into(),
        lost_updates: None,
    }
}

/// Every probe, in the lecture's order: threads and processes, switching, async, sharing.
pub fn run_all(budget: Scale) -> Vec<Probe> {
    let mut out = vec![thread_spawn(budget)];
    out.extend(process_spawn(budget));
    out.push(thread_switch(budget));
    out.extend(process_switch(budget));
    out.push(async_spawn(budget));
    out.push(async_switch(budget));
    out.push(channel_hop(budget));
    out.push(mutex_uncontended(budget));
    out.push(mutex_contended(budget));
    out.push(atomic_increment(budget));
    out.push(racy_increment(budget));
    out
}

/// Thread spawn + join.
pub fn thread_spawn(b: Scale) -> Probe {
    let n = b.n(2_000);
    let ns = median_ns(n, |n| {
        for _ in 0..n {
            std::thread::spawn(|| ()).join().ok();
        }
    });
    probe("thread spawn+join", n, ns, "std::thread::spawn, then join")
}

/// Process spawn + wait (`true`); `None` where `true` cannot be run.
pub fn process_spawn(b: Scale) -> Option<Probe> {
    Command::new("true").status().ok()?;
    let n = b.n(300);
    let ns = median_ns(n, |n| {
        for _ in 0..n {
            let _ = Command::new("true").status();
        }
    });
    Some(probe(
        "process spawn+wait",
        n,
        ns,
        "fork/exec of `true`, then waitpid",
    ))
}

/// A one-byte round trip between two threads over two pipes; the note gives the per-switch
/// cost (half a round trip).
pub fn thread_switch(b: Scale) -> Probe {
    let n = b.n(20_000);
    let ns = median_ns(n, |n| {
        let (Ok((mut a_rx, mut a_tx)), Ok((mut b_rx, mut b_tx))) =
            (std::io::pipe(), std::io::pipe())
        else {
            return;
        };
        let echo = std::thread::spawn(move || {
            let mut byte = [0u8];
            for _ in 0..n {
                if a_rx.read_exact(&mut byte).is_err() || b_tx.write_all(&byte).is_err() {
                    return;
                }
            }
        });
        let mut byte = [7u8];
        for _ in 0..n {
            if a_tx.write_all(&byte).is_err() || b_rx.read_exact(&mut byte).is_err() {
                break;
            }
        }
        let _ = echo.join();
    });
    probe(
        "context switch, threads",
        n,
        ns / 2.0,
        format!(
            "pipe ping-pong between two threads: {:.1} us per round trip",
            ns / 1e3
        ),
    )
}

/// The same round trip with another process (`cat` echoing its stdin).
pub fn process_switch(b: Scale) -> Option<Probe> {
    let n = b.n(20_000);
    let mut failed = false;
    let ns = median_ns(n, |n| {
        let Ok(mut child) = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            failed = true;
            return;
        };
        let (Some(mut to), Some(mut from)) = (child.stdin.take(), child.stdout.take()) else {
            failed = true;
            return;
        };
        let mut byte = [7u8];
        for _ in 0..n {
            if to.write_all(&byte).is_err() || from.read_exact(&mut byte).is_err() {
                failed = true;
                break;
            }
        }
        drop(to);
        let _ = child.wait();
    });
    (!failed).then(|| {
        probe(
            "context switch, processes",
            n,
            ns / 2.0,
            format!(
                "pipe ping-pong with a `cat` process: {:.1} us per round trip",
                ns / 1e3
            ),
        )
    })
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().build().ok()
}

/// Spawning a task on a single-threaded tokio loop and awaiting it.
pub fn async_spawn(b: Scale) -> Probe {
    let n = b.n(200_000);
    let ns = runtime().map_or(f64::NAN, |rt| {
        median_ns(n, |n| {
            rt.block_on(async move {
                let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
                for h in handles {
                    let _ = h.await;
                }
            });
        })
    });
    probe(
        "async task spawn+join",
        n,
        ns,
        "tokio current-thread loop: spawn, then await",
    )
}

/// Two tasks on one loop handing a token back and forth: a switch without the kernel.
pub fn async_switch(b: Scale) -> Probe {
    let n = b.n(200_000);
    let ns = runtime().map_or(f64::NAN, |rt| {
        median_ns(n, |n| {
            rt.block_on(async move {
                let (to_b, mut at_b) = tokio::sync::mpsc::channel::<u64>(1);
                let (to_a, mut at_a) = tokio::sync::mpsc::channel::<u64>(1);
                let echo = tokio::spawn(async move {
                    while let Some(v) = at_b.recv().await {
                        if to_a.send(v).await.is_err() {
                            break;
                        }
                    }
                });
                for i in 0..n {
                    if to_b.send(i).await.is_err() || at_a.recv().await.is_none() {
                        break;
                    }
                }
                drop(to_b);
                let _ = echo.await;
            });
        })
    });
    probe(
        "context switch, async tasks",
        n,
        ns / 2.0,
        "two tasks on one loop passing a token (half a round trip)",
    )
}

/// Messages streamed from one thread to another over a bounded crossbeam channel.
pub fn channel_hop(b: Scale) -> Probe {
    let n = b.n(2_000_000);
    let ns = median_ns(n, |n| {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
        let sink = std::thread::spawn(move || rx.iter().fold(0u64, u64::wrapping_add));
        for i in 0..n {
            if tx.send(i).is_err() {
                break;
            }
        }
        drop(tx);
        let _ = sink.join();
    });
    probe(
        "channel hop",
        n,
        ns,
        "one message, thread to thread (crossbeam bounded, streaming)",
    )
}

/// Lock + unlock with nobody else wanting the lock.
pub fn mutex_uncontended(b: Scale) -> Probe {
    let n = b.n(10_000_000);
    let m = Mutex::new(0u64);
    let ns = median_ns(n, |n| {
        for _ in 0..n {
            if let Ok(mut g) = m.lock() {
                *g += 1;
            }
        }
    });
    probe(
        "mutex, uncontended",
        n,
        ns,
        "std::sync::Mutex lock, += 1, unlock; one thread",
    )
}

/// Every thread (one per core, at least 2) increments one shared counter under one lock.
pub fn mutex_contended(b: Scale) -> Probe {
    let threads = conlab_exec::available_cores().max(2) as u64;
    let n = b.n(2_000_000);
    let per_thread = n / threads;
    let m = Arc::new(Mutex::new(0u64));
    let ns = median_ns(per_thread * threads, |_| {
        hammer(threads, |_| {
            let m = m.clone();
            move || {
                for _ in 0..per_thread {
                    if let Ok(mut g) = m.lock() {
                        *g += 1;
                    }
                }
            }
        });
    });
    probe(
        "mutex, contended",
        per_thread * threads,
        ns,
        format!("{threads} threads incrementing one counter under one lock"),
    )
}

/// Runs `make(i)` on `threads` threads released together by a barrier.
fn hammer<F: FnOnce() + Send + 'static>(threads: u64, make: impl Fn(u64) -> F) {
    let start = Arc::new(Barrier::new(threads as usize));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (work, start) = (make(i), start.clone());
            std::thread::spawn(move || {
                start.wait();
                work();
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// Every thread (one per core, at least 2) applies `increment` to one shared counter;
/// returns (threads, total increments, median ns per increment, updates lost in the last run).
fn count_from_threads(b: Scale, increment: fn(&AtomicU64)) -> (u64, u64, f64, u64) {
    let threads = conlab_exec::available_cores().max(2) as u64;
    let per_thread = b.n(2_000_000) / threads;
    let total = per_thread * threads;
    let counter = Arc::new(AtomicU64::new(0));
    let mut lost = 0;
    let ns = median_ns(total, |_| {
        counter.store(0, Ordering::SeqCst);
        hammer(threads, |_| {
            let c = counter.clone();
            move || {
                for _ in 0..per_thread {
                    increment(&c);
                }
            }
        });
        lost = total - counter.load(Ordering::SeqCst);
    });
    (threads, total, ns, lost)
}

/// `fetch_add` from every thread: never loses an update.
pub fn atomic_increment(b: Scale) -> Probe {
    let (threads, total, ns, lost) = count_from_threads(b, |c| {
        // Relaxed: only the count matters, read after the threads are joined.
        c.fetch_add(1, Ordering::Relaxed);
    });
    Probe {
        lost_updates: Some(lost),
        ..probe(
            "atomic increment",
            total,
            ns,
            format!("{threads} threads, fetch_add: {lost} updates lost"),
        )
    }
}

/// The lecture's `n += 1` from several threads: a load, then a store, with no lock. Done on an
/// atomic (each access is atomic, the pair is not), so it is the race without undefined
/// behaviour; the note counts the updates that were lost.
pub fn racy_increment(b: Scale) -> Probe {
    let (threads, total, ns, lost) = count_from_threads(b, |c| {
        // LOAD_GLOBAL, BINARY_OP +=, STORE_GLOBAL: another thread can store in between, and
        // its update is overwritten.
        let n = c.load(Ordering::Relaxed);
        c.store(n + 1, Ordering::Relaxed);
    });
    Probe {
        lost_updates: Some(lost),
        ..probe(
            "racy n += 1",
            total,
            ns,
            format!(
                "{threads} threads, load then store: {lost} of {total} updates lost ({:.1}%)",
                lost as f64 / total as f64 * 100.0
            ),
        )
    }
}

/// `perf bench sched pipe`'s figure in microseconds per round trip, when perf is installed.
pub fn perf_sched_pipe(b: Scale) -> Option<Probe> {
    let loops = b.n(50_000);
    let out = Command::new("perf")
        .args(["bench", "sched", "pipe", "-l", &loops.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let usecs: f64 = text
        .lines()
        .find(|l| l.contains("usecs/op"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(probe(
        "perf bench sched pipe",
        loops,
        usecs * 1e3 / 2.0,
        format!("perf's own ping-pong between two processes: {usecs:.1} us per round trip"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atomic_loses_nothing_and_every_probe_reports_a_cost() {
        let probes = run_all(Scale { scale: 0.01 });
        assert!(probes.len() >= 9);
        for p in &probes {
            assert!(p.per_op_ns.is_finite() && p.per_op_ns > 0.0, "{p:?}");
        }
        let atomic = probes
            .iter()
            .find(|p| p.name == "atomic increment")
            .unwrap();
        assert!(atomic.note.contains(": 0 updates lost"), "{}", atomic.note);
        let racy = probes.iter().find(|p| p.name == "racy n += 1").unwrap();
        assert!(racy.note.contains("updates lost"), "{}", racy.note);
    }
}
