//! The other half of the GIL story: a thread that sleeps or waits on I/O releases the GIL,
//! so threads still speed up waiting, even under CPython's lock.

use std::time::Duration;

use conlab_exec::Model;
use conlab_work::Workload;

use super::{Context, Experiment};
use crate::Error;
use crate::bench::batch::{self, BatchConfig};
use crate::finding::{Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "gil-io",
    title: "The GIL is released while a thread waits",
    claim: Claim {
        quote: "Whenever a thread begins sleeping or awaiting network I/O, there is a chance \
                for another thread to take the GIL and execute some Python code",
        slide: "GIL (cooperative multitasking)",
        figure: "I/O bound, fast I/O, limited number of connections => multi threading",
    },
    load_limit: LoadLimit::TIMING,
    measure,
};

/// Threads in the pool: four sleepers can overlap four waits, whatever the core count.
const THREADS: usize = 4;

/// Below this, the GIL was held across the waits: 4 threads waiting together give 4x, and
/// 2.5x leaves each of the 16 waits a millisecond of wake-up and hand-off delay; a GIL held
/// across a sleep would give 1x.
pub const MIN_SPEEDUP: f64 = 2.5;

/// What was measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waits {
    /// The serial wall time, seconds.
    pub serial_s: f64,
    /// The wall time of the threads under the GIL, seconds.
    pub gil_threads_s: f64,
    /// Failed tasks.
    pub errors: u64,
}

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let tasks = context.budget.pick(16, 8);
    let workload = Workload::parse("sleep:10ms")?;
    let run = |model, workers, gil| {
        batch::run(
            &workload,
            &BatchConfig {
                model,
                workers,
                gil,
                tasks,
                worker_program: None,
            },
            |_| (),
        )
    };
    let serial = run(Model::Serial, 1, false)?;
    let gil = run(Model::Threads, THREADS, true)?;
    let waits = Waits {
        serial_s: serial.wall.as_secs_f64(),
        gil_threads_s: gil.wall.as_secs_f64(),
        errors: serial.errors + gil.errors,
    };
    let speedup = conlab_measure::speedup(serial.wall, gil.wall);
    Ok(Outcome {
        setup: format!("{tasks} x sleep:10ms, serially and on {THREADS} threads under the GIL"),
        details: vec![format!(
            "serial {:.0} ms, {THREADS} threads under the GIL {:.0} ms",
            waits.serial_s * 1e3,
            waits.gil_threads_s * 1e3
        )],
        measured: format!("threads --gil {speedup:.2}x faster than serial on waits"),
        figures: vec![
            Figure::new("serial_s", waits.serial_s, "s"),
            Figure::new("gil_threads_s", waits.gil_threads_s, "s"),
            Figure::new("gil_threads_speedup", speedup, "x"),
        ],
        series: vec![Series::speedup(
            "threads --gil",
            vec![[1.0, 1.0], [THREADS as f64, speedup]],
        )],
        verdict: judge(&waits),
    })
}

/// Held when the threads under the GIL beat serial by more than [`MIN_SPEEDUP`] with no
/// failed task.
pub fn judge(w: &Waits) -> Verdict {
    let speedup = conlab_measure::speedup(
        Duration::from_secs_f64(w.serial_s),
        Duration::from_secs_f64(w.gil_threads_s),
    );
    if w.errors > 0 {
        Verdict::not_held(format!("{} sleeps failed", w.errors))
    } else if speedup > MIN_SPEEDUP {
        Verdict::held(format!(
            "{THREADS} threads under the GIL waited together: {speedup:.2}x (above {MIN_SPEEDUP}x)"
        ))
    } else {
        Verdict::not_held(format!(
            "{speedup:.2}x with {THREADS} threads, not above {MIN_SPEEDUP}x: the waits did not \
             overlap, as if the GIL were held across a sleep"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_waits_hold_and_serialised_ones_do_not() {
        let overlap = Waits {
            serial_s: 0.165,
            gil_threads_s: 0.042,
            errors: 0,
        };
        assert!(judge(&overlap).is_held());
        let held_gil = Waits {
            gil_threads_s: 0.160,
            ..overlap
        };
        assert!(judge(&held_gil).reason().contains("did not overlap"));
        let failed = Waits {
            errors: 1,
            ..overlap
        };
        assert!(!judge(&failed).is_held());
    }
}
