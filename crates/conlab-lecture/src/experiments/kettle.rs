//! The kettle (asyncio, minitask 7): boil the kettle (3 units) and clean the cups (2 units)
//! one after the other, then as two tasks on one event loop. Waiting overlaps on one thread:
//! 5 units become 3, with no second thread and no second core.

use std::time::{Duration, Instant};

use conlab_exec::{AsyncPool, Error as ExecError};

use super::{Context, Experiment, near};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "kettle",
    title: "The kettle (asyncio): waiting overlaps on one thread",
    claim: Claim {
        quote: "make the tasks in main run concurrently: the water is put on, the cups are \
                washed meanwhile, the water boils",
        slide: "asyncio, minitask 7 (translated from the Czech)",
        figure: "sequential: Executed in 5.00 seconds; concurrent: Executed in 3.00 seconds",
    },
    load_limit: LoadLimit::TIMING,
    measure,
};

/// One unit of the lecture's task durations (1 s there): long beside a timer's slack and a
/// wake-up (tens of microseconds), short enough for the tour.
fn unit(context: &Context<'_>) -> Duration {
    context
        .budget
        .pick(Duration::from_millis(100), Duration::from_millis(20))
}

/// How far each time may be from its ideal (5 and 3 units): a sleep overshoots by its timer
/// slack and one wake-up, under 1% of a unit here; 15% still tells 3 from 5 apart.
const TOLERANCE: f64 = 0.15;

/// The two runs, in units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kettle {
    /// `await kettle; await cups`.
    pub sequential_units: f64,
    /// Both as tasks, awaited together.
    pub concurrent_units: f64,
}

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let unit = unit(context);
    let pool = AsyncPool::new(1)?;
    // An async block, so that the timer is created on the loop, where tokio's clock lives.
    let perform = move |units: u32| async move { tokio::time::sleep(unit * units).await };
    let start = Instant::now();
    pool.run(async move {
        perform(3).await; // boiling kettle
        perform(2).await; // cleaning cups
    })?;
    let sequential = start.elapsed();
    let start = Instant::now();
    let kettle = pool
        .submit_future(perform(3))
        .map_err(|_| ExecError::Closed)?;
    let cups = pool
        .submit_future(perform(2))
        .map_err(|_| ExecError::Closed)?;
    cups.wait()?;
    kettle.wait()?;
    let concurrent = start.elapsed();
    let units = |d: Duration| d.as_secs_f64() / unit.as_secs_f64();
    let kettle = Kettle {
        sequential_units: units(sequential),
        concurrent_units: units(concurrent),
    };
    let point = |x: f64, y: f64| [x, y * unit.as_secs_f64()];
    Ok(Outcome {
        setup: format!(
            "one event loop, one thread; 1 unit = {} ms (1 s in the lecture)",
            unit.as_millis()
        ),
        details: Vec::new(),
        measured: format!(
            "sequential {:.2} units, concurrent {:.2} units ({:.2}x)",
            kettle.sequential_units,
            kettle.concurrent_units,
            kettle.sequential_units / kettle.concurrent_units
        ),
        figures: vec![
            Figure::new("sequential_s", sequential.as_secs_f64(), "s"),
            Figure::new("concurrent_s", concurrent.as_secs_f64(), "s"),
            Figure::new("unit_s", unit.as_secs_f64(), "s"),
        ],
        series: vec![Series {
            name: "wall time".into(),
            x: Axis {
                label: "design (0 sequential, 1 concurrent)",
                unit: "",
            },
            y: Axis {
                label: "wall time",
                unit: "s",
            },
            points: vec![
                point(0.0, kettle.sequential_units),
                point(1.0, kettle.concurrent_units),
            ],
        }],
        verdict: judge(&kettle),
    })
}

/// Held when the sequential run takes 5 units and the concurrent one 3, each within
/// [`TOLERANCE`].
pub fn judge(k: &Kettle) -> Verdict {
    let (seq, conc) = (k.sequential_units, k.concurrent_units);
    if near(seq, 5.0, TOLERANCE) && near(conc, 3.0, TOLERANCE) {
        Verdict::held(format!(
            "{seq:.2} and {conc:.2} units, each within {:.0}% of the lecture's 5 and 3",
            TOLERANCE * 100.0
        ))
    } else {
        Verdict::not_held(format!(
            "{seq:.2} and {conc:.2} units, against 5 and 3 (within {:.0}%): {}",
            TOLERANCE * 100.0,
            if conc >= seq * 0.9 {
                "the two waits did not overlap"
            } else {
                "the timers ran late"
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_then_three_units_hold_and_no_overlap_does_not() {
        let held = Kettle {
            sequential_units: 5.02,
            concurrent_units: 3.01,
        };
        assert!(judge(&held).is_held());
        let serial = Kettle {
            sequential_units: 5.0,
            concurrent_units: 5.0,
        };
        let verdict = judge(&serial);
        assert!(!verdict.is_held());
        assert!(verdict.reason().contains("did not overlap"), "{verdict:?}");
        let late = Kettle {
            sequential_units: 6.5,
            concurrent_units: 3.9,
        };
        assert!(judge(&late).reason().contains("late"));
    }
}
