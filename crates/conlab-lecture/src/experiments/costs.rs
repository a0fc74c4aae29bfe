//! Process vs thread, in microseconds: what it costs here to start a thread and a process,
//! and to switch between two threads, two processes and two tasks of one event loop (the
//! figures of `conlab probe`).

use super::{Context, Experiment};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;
use crate::probe::{ProbeReport, Scale};

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "costs",
    title: "What a thread, a process and a switch cost",
    claim: Claim {
        quote: "Threads have a relatively small overhead; processes have considerable \
                overhead. New threads are easily created; new processes require duplication \
                of the parent process",
        slide: "Process vs. Thread; Asyncio - motivation",
        figure: "no figures: \"small\" against \"considerable\"",
    },
    load_limit: LoadLimit::TIMING,
    measure,
};

/// "Considerable" against "relatively small", as a factor: a process must cost at least
/// this many threads to start, and a thread switch this many event-loop switches. Here the
/// factors are about 6x and 80x (docs/benchmarks.md); 3x is the least a reader would call
/// considerable.
pub const MIN_FACTOR: f64 = 3.0;

/// The costs, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Thread spawn + join.
    pub thread_spawn_ns: f64,
    /// Process spawn + wait.
    pub process_spawn_ns: f64,
    /// A switch between two threads.
    pub thread_switch_ns: f64,
    /// A switch between two processes.
    pub process_switch_ns: f64,
    /// A switch between two tasks of one event loop.
    pub async_switch_ns: f64,
}

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let scale = context.budget.pick(Scale::QUICK, Scale::TINY);
    let report = ProbeReport::measure(scale);
    let ns = |name| report.ns(name).unwrap_or(f64::NAN);
    let costs = Costs {
        thread_spawn_ns: ns("thread spawn+join"),
        process_spawn_ns: ns("process spawn+wait"),
        thread_switch_ns: ns("context switch, threads"),
        process_switch_ns: ns("context switch, processes"),
        async_switch_ns: ns("context switch, async tasks"),
    };
    let us = |v: f64| v / 1e3;
    // One bar per primitive, spawns and switches on one axis of microseconds.
    let bar = |name: &'static str, y: f64| Series {
        name: name.into(),
        x: Axis {
            label: "primitive",
            unit: "",
        },
        y: Axis {
            label: "cost",
            unit: "us",
        },
        points: vec![[0.0, us(y)]],
    };
    Ok(Outcome {
        setup: format!(
            "conlab probe's spawn and switch probes, {:.0}% of their repetitions",
            scale.scale * 100.0
        ),
        details: vec![
            format!(
                "spawn: thread {:.1} us, process {:.1} us",
                us(costs.thread_spawn_ns),
                us(costs.process_spawn_ns)
            ),
            format!(
                "switch: async task {:.2} us, thread {:.1} us, process {:.1} us",
                us(costs.async_switch_ns),
                us(costs.thread_switch_ns),
                us(costs.process_switch_ns)
            ),
        ],
        measured: format!(
            "a process costs {:.0}x a thread to start; a thread switch {:.0}x an async one",
            costs.process_spawn_ns / costs.thread_spawn_ns,
            costs.thread_switch_ns / costs.async_switch_ns
        ),
        figures: vec![
            Figure::new("thread_spawn_ns", costs.thread_spawn_ns, "ns"),
            Figure::new("process_spawn_ns", costs.process_spawn_ns, "ns"),
            Figure::new("thread_switch_ns", costs.thread_switch_ns, "ns"),
            Figure::new("process_switch_ns", costs.process_switch_ns, "ns"),
            Figure::new("async_switch_ns", costs.async_switch_ns, "ns"),
        ],
        series: vec![
            bar("thread spawn", costs.thread_spawn_ns),
            bar("process spawn", costs.process_spawn_ns),
            bar("thread switch", costs.thread_switch_ns),
            bar("process switch", costs.process_switch_ns),
            bar("async task switch", costs.async_switch_ns),
        ],
        verdict: judge(&costs),
    })
}

/// Held when a process costs more than [`MIN_FACTOR`] threads to start and a thread switch
/// more than [`MIN_FACTOR`] event-loop switches. A probe that could not run (no `true` or
/// `cat` to start) makes it "cannot be shown".
pub fn judge(c: &Costs) -> Verdict {
    let spawn = c.process_spawn_ns / c.thread_spawn_ns;
    let switch = c.thread_switch_ns / c.async_switch_ns;
    if !spawn.is_finite() || !switch.is_finite() {
        return Verdict::cannot_show(
            "a probe could not run here (it starts `true` and `cat` as child processes)",
        );
    }
    if spawn > MIN_FACTOR && switch > MIN_FACTOR {
        Verdict::held(format!(
            "a process start costs {spawn:.0} thread starts and a thread switch {switch:.0} \
             event-loop switches (the bar: {MIN_FACTOR}x)"
        ))
    } else {
        Verdict::not_held(format!(
            "a process start costs {spawn:.1} thread starts and a thread switch {switch:.1} \
             event-loop switches; the claim needs both above {MIN_FACTOR}x"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs(process_spawn_ns: f64, async_switch_ns: f64) -> Costs {
        Costs {
            thread_spawn_ns: 150_000.0,
            process_spawn_ns,
            thread_switch_ns: 17_000.0,
            process_switch_ns: 25_000.0,
            async_switch_ns,
        }
    }

    #[test]
    fn considerable_against_small_holds_and_equal_costs_do_not() {
        assert!(judge(&costs(950_000.0, 220.0)).is_held());
        assert!(matches!(
            judge(&costs(200_000.0, 220.0)),
            Verdict::NotHeld { .. }
        ));
        assert!(matches!(
            judge(&costs(f64::NAN, 220.0)),
            Verdict::CannotShow { .. }
        ));
    }
}
