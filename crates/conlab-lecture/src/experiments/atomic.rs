//! `+=` is not atomic: `n += 1` is a load, an add and a store (`LOAD_GLOBAL`, `BINARY_OP`,
//! `STORE_GLOBAL`), and another thread can store in between, whose update is then lost.
//!
//! Lost updates need the threads to run *at the same time*. Released by a blocking barrier,
//! one thread may well finish a short count before the other wakes (a cross-core wake-up is
//! tens of microseconds here), and nothing is lost although nothing is atomic. So the threads
//! meet at a spinning barrier (neither parks), then increment for a fixed window of wall
//! time, counting their own attempts. Each notes its span and the CPU time it used in it:
//! the span the threads shared, less the time either spent off its core, is a lower bound of
//! the time they really ran at once (two spans that overlap on a busy machine may have taken
//! turns on one core). Beside the racy counter, `fetch_add` and a mutex run the same way and
//! must lose nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Context, Experiment};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;
use conlab_measure::usage::thread_cpu_time;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "atomic",
    title: "+= is not atomic",
    claim: Claim {
        quote: "+= seems simpler than sort(), but += is not atomic!",
        slide: "Atomic operations (dis.dis(foo): LOAD_GLOBAL, BINARY_OP +=, STORE_GLOBAL)",
        figure: "no figure: updates are lost when threads interleave",
    },
    // The overlap is measured, and judged on, directly: a busy machine shows up as threads
    // that did not run together, which the verdict reports as such.
    load_limit: LoadLimit::Never,
    measure,
};

/// The lecture's two threads.
const THREADS: usize = 2;

/// Below this much time provably running at once, a count with no lost update says nothing:
/// the threads may have taken turns. A millisecond at once is hundreds of thousands of
/// interleaved increments, where a single lost update would show.
pub const MIN_TOGETHER: Duration = Duration::from_millis(1);

/// One counter's run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Count {
    /// Increments the threads made.
    pub attempts: u64,
    /// Increments missing from the counter.
    pub lost: u64,
    /// The share of the run when all threads were provably on a core at once (0 to 1).
    pub overlap: f64,
    /// How long they provably ran at once.
    pub together: Duration,
}

/// The three counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counters {
    /// `n = n + 1` as a load and a store.
    pub racy: Count,
    /// `fetch_add`.
    pub atomic: Count,
    /// `*lock += 1`.
    pub mutex: Count,
    /// Cores this process may use.
    pub cores: usize,
}

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let window = context
        .budget
        .pick(Duration::from_millis(20), Duration::from_millis(5));
    let counters = Counters {
        racy: count(window, Arc::new(AtomicU64::new(0)), |n, racy| {
            for _ in 0..n {
                // LOAD, ADD, STORE: another thread can store between the two.
                let v = racy.load(Ordering::Relaxed);
                racy.store(v + 1, Ordering::Relaxed);
            }
        }),
        atomic: count(window, Arc::new(AtomicU64::new(0)), |n, atomic| {
            for _ in 0..n {
                // Relaxed: only the total matters, read after the threads are joined.
                atomic.fetch_add(1, Ordering::Relaxed);
            }
        }),
        mutex: count(window, Arc::new(Mutex::new(0u64)), |n, mutex| {
            for _ in 0..n {
                *conlab_exec::lock(mutex) += 1;
            }
        }),
        cores: context.cores,
    };
    let line = |name: &str, c: &Count| {
        format!(
            "{name}: {} of {} updates lost ({:.1}%), threads at once {:.1} ms ({:.0}% of the run)",
            c.lost,
            c.attempts,
            percent(c),
            c.together.as_secs_f64() * 1e3,
            c.overlap * 100.0
        )
    };
    let series = |name: &str, c: &Count| Series {
        name: name.into(),
        x: Axis {
            label: "threads",
            unit: "",
        },
        y: Axis {
            label: "updates lost",
            unit: "%",
        },
        points: vec![[THREADS as f64, percent(c)]],
    };
    let c = &counters;
    Ok(Outcome {
        setup: format!(
            "{THREADS} threads released together by a spinning barrier, each incrementing one \
             shared counter for {} ms",
            window.as_millis()
        ),
        details: vec![
            line("n += 1   ", &c.racy),
            line("fetch_add", &c.atomic),
            line("mutex    ", &c.mutex),
        ],
        measured: format!(
            "{} of {} updates lost by n += 1 ({:.1}%), {} by fetch_add, {} under a mutex",
            c.racy.lost,
            c.racy.attempts,
            percent(&c.racy),
            c.atomic.lost,
            c.mutex.lost
        ),
        figures: vec![
            Figure::new("racy_lost", c.racy.lost as f64, "count"),
            Figure::new("racy_attempts", c.racy.attempts as f64, "count"),
            Figure::new("racy_overlap", c.racy.overlap * 100.0, "%"),
            Figure::new("atomic_lost", c.atomic.lost as f64, "count"),
            Figure::new("mutex_lost", c.mutex.lost as f64, "count"),
        ],
        series: vec![
            series("n += 1", &c.racy),
            series("fetch_add", &c.atomic),
            series("mutex", &c.mutex),
        ],
        verdict: judge(&counters),
    })
}

fn percent(c: &Count) -> f64 {
    if c.attempts == 0 {
        0.0
    } else {
        c.lost as f64 / c.attempts as f64 * 100.0
    }
}

/// A shared counter the threads increment, read once they have stopped.
trait Counter: Send + Sync + 'static {
    fn total(&self) -> u64;
}

impl Counter for AtomicU64 {
    fn total(&self) -> u64 {
        self.load(Ordering::SeqCst)
    }
}

impl Counter for Mutex<u64> {
    fn total(&self) -> u64 {
        *conlab_exec::lock(self)
    }
}

/// Runs `increment(n, counter)` (n increments of the shared counter) on [`THREADS`] threads
/// for `window` after they meet, and counts what the counter lost.
fn count<C: Counter>(window: Duration, counter: Arc<C>, increment: fn(u64, &C)) -> Count {
    let arrived = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (counter, arrived, stop) = (counter.clone(), arrived.clone(), stop.clone());
            std::thread::spawn(move || {
                arrived.fetch_add(1, Ordering::SeqCst);
                let mut spins = 0u32;
                while arrived.load(Ordering::SeqCst) < THREADS {
                    // Spin rather than park: a parked thread wakes tens of microseconds late.
                    // Yield now and then, so that one core still lets the other thread in.
                    spins += 1;
                    if spins.is_multiple_of(1024) {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
                let (started, cpu_before) = (Instant::now(), thread_cpu_time());
                let mut attempts = 0u64;
                // At least one batch each, however late a thread is scheduled.
                loop {
                    increment(1024, &counter);
                    attempts += 1024;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                let off_core = started
                    .elapsed()
                    .saturating_sub(thread_cpu_time().saturating_sub(cpu_before));
                Span {
                    started,
                    ended: Instant::now(),
                    off_core,
                    attempts,
                }
            })
        })
        .collect();
    while arrived.load(Ordering::SeqCst) < THREADS {
        std::thread::yield_now();
    }
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let spans: Vec<Span> = threads.into_iter().filter_map(|t| t.join().ok()).collect();
    if spans.len() < THREADS {
        // A thread that panicked took its count with it: nothing can be said of the counter.
        return Count {
            attempts: 0,
            lost: 0,
            overlap: 0.0,
            together: Duration::ZERO,
        };
    }
    let attempts: u64 = spans.iter().map(|s| s.attempts).sum();
    let (first_start, last_start) = bounds(spans.iter().map(|s| s.started));
    let (first_end, last_end) = bounds(spans.iter().map(|s| s.ended));
    // Within the shared span, each thread was off its core for at most its whole time off.
    let off_core: Duration = spans.iter().map(|s| s.off_core).sum();
    let together = first_end
        .saturating_duration_since(last_start)
        .saturating_sub(off_core);
    let whole = last_end.saturating_duration_since(first_start);
    Count {
        attempts,
        lost: attempts.saturating_sub(counter.total()),
        overlap: if whole.is_zero() {
            0.0
        } else {
            together.as_secs_f64() / whole.as_secs_f64()
        },
        together,
    }
}

/// One thread's run: when it started and ended, how long it was off its core meanwhile, and
/// how many increments it made.
struct Span {
    started: Instant,
    ended: Instant,
    off_core: Duration,
    attempts: u64,
}

/// The earliest and the latest of some instants (now and now, for none).
fn bounds(mut instants: impl Iterator<Item = Instant>) -> (Instant, Instant) {
    let Some(first) = instants.next() else {
        let now = Instant::now();
        return (now, now);
    };
    instants.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t)))
}

/// Held when `n += 1` lost updates and `fetch_add` and the mutex lost none. Nothing lost by
/// threads that did not provably run at once for [`MIN_TOGETHER`] (or on one core) cannot
/// show the claim; nothing lost by threads that did is a contradiction of it.
pub fn judge(c: &Counters) -> Verdict {
    if c.atomic.lost > 0 || c.mutex.lost > 0 {
        return Verdict::not_held(format!(
            "fetch_add lost {} and the mutex {} updates: those must lose none",
            c.atomic.lost, c.mutex.lost
        ));
    }
    let r = &c.racy;
    if r.lost > 0 {
        let how = if r.together >= MIN_TOGETHER {
            format!(
                "while the threads ran at once for {:.1} ms",
                r.together.as_secs_f64() * 1e3
            )
        } else {
            "with the threads taking turns: a thread interrupted between its load and its store \
             overwrites what the other did meanwhile"
                .to_string()
        };
        return Verdict::held(format!(
            "n += 1 lost {} of {} updates ({:.1}%) {how}; fetch_add and the mutex lost none",
            r.lost,
            r.attempts,
            percent(r),
        ));
    }
    if c.cores < 2 || r.together < MIN_TOGETHER {
        return Verdict::cannot_show(format!(
            "the threads were not shown to run at once ({:.1} ms at most, on {} core(s)): \
             taking turns on a busy or one-core machine, a load and its store are rarely split",
            r.together.as_secs_f64() * 1e3,
            c.cores
        ));
    }
    Verdict::not_held(format!(
        "n += 1 lost nothing in {} increments although the threads ran at once for {:.1} ms",
        r.attempts,
        r.together.as_secs_f64() * 1e3
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(lost: u64, overlap: f64) -> Count {
        Count {
            attempts: 1_000_000,
            lost,
            overlap,
            together: Duration::from_secs_f64(0.020 * overlap),
        }
    }

    fn counters(racy: Count) -> Counters {
        Counters {
            racy,
            atomic: count(0, 0.95),
            mutex: count(0, 0.95),
            cores: 2,
        }
    }

    #[test]
    fn lost_updates_hold_and_none_lost_together_does_not() {
        assert!(judge(&counters(count(404_986, 0.95))).is_held());
        assert!(matches!(
            judge(&counters(count(0, 0.95))),
            Verdict::NotHeld { .. }
        ));
    }

    #[test]
    fn threads_that_took_turns_cannot_show_it() {
        assert!(matches!(
            judge(&counters(count(0, 0.02))),
            Verdict::CannotShow { .. }
        ));
        let one_core = Counters {
            cores: 1,
            ..counters(count(0, 0.9))
        };
        assert!(matches!(judge(&one_core), Verdict::CannotShow { .. }));
    }

    #[test]
    fn an_atomic_that_loses_updates_never_holds() {
        let mut c = counters(count(404_986, 0.95));
        c.atomic.lost = 3;
        assert!(!judge(&c).is_held());
    }

    #[test]
    fn every_thread_counts_its_attempts_and_the_atomic_loses_none() {
        let c = super::count(
            Duration::from_millis(5),
            Arc::new(AtomicU64::new(0)),
            |n, a| {
                for _ in 0..n {
                    a.fetch_add(1, Ordering::Relaxed);
                }
            },
        );
        assert!(c.attempts >= 2 * 1024, "{c:?}");
        assert_eq!(c.lost, 0, "{c:?}");
        assert!((0.0..=1.0).contains(&c.overlap), "{c:?}");
    }
}
