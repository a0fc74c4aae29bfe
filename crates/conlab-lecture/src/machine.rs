//! How much of the machine other programs took while an experiment ran.
//!
//! A claim about speed measured while something else used the cores is a finding about that
//! moment, not about the lecture: a 2-worker speedup on a machine whose other core is taken
//! by a compiler says nothing of processes vs threads. So the tour samples the whole
//! machine's busy time (`/proc/stat`) and its own process tree's CPU time (this process, its
//! live and reaped children: pool workers, servers) before and after each experiment; the
//! difference is what others used. Past an experiment's stated limit, its timing verdict
//! becomes "cannot be shown now" (see [`LoadLimit`]).

use std::time::Instant;

use conlab_measure::{MachineCpu, Usage};
use serde::Serialize;

use crate::finding::Verdict;

/// The machine during one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineShare {
    /// CPU time others used, as a percentage of all the CPU time there was (every core, the
    /// whole wall time): 50% on 2 cores is one core taken.
    pub others_percent: f64,
    /// CPU time of this process tree.
    pub own_cpu_s: f64,
    /// CPU time the whole machine was busy.
    pub machine_busy_s: f64,
    /// All the CPU time there was: cores x wall time, as the kernel counted it.
    pub machine_total_s: f64,
}

impl MachineShare {
    /// The share of the machine others took, from the machine's busy and total time and this
    /// process tree's time over the same span.
    pub fn from_times(machine_busy_s: f64, machine_total_s: f64, own_cpu_s: f64) -> Self {
        let others = (machine_busy_s - own_cpu_s).max(0.0);
        MachineShare {
            others_percent: if machine_total_s > 0.0 {
                (others / machine_total_s * 100.0).min(100.0)
            } else {
                0.0
            },
            own_cpu_s,
            machine_busy_s,
            machine_total_s,
        }
    }
}

/// A snapshot to measure from.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    machine: Option<MachineCpu>,
    own: Usage,
    started: Instant,
}

impl Sampler {
    /// Takes the first snapshot.
    pub fn start() -> Sampler {
        Sampler {
            machine: MachineCpu::now(),
            own: Usage::now(),
            started: Instant::now(),
        }
    }

    /// The wall time since [`start`](Self::start), in seconds.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The share others took since the first snapshot; `None` where `/proc/stat` is not
    /// readable.
    pub fn finish(&self) -> Option<MachineShare> {
        let machine = MachineCpu::now()?.since(&self.machine?);
        let own = Usage::now().cpu_since(&self.own);
        Some(MachineShare::from_times(
            machine.busy.as_secs_f64(),
            machine.total.as_secs_f64(),
            own.as_secs_f64(),
        ))
    }
}

/// The least CPU time (all cores) a share is judged on: `/proc/stat` counts in 10 ms ticks,
/// so under 0.2 s a single tick is 5% of the sample.
pub const MIN_SAMPLE_S: f64 = 0.2;

/// How much others may take of the machine before an experiment's verdict means nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadLimit {
    /// The verdict is about correctness (the right sums, a deadlock reported): no load can
    /// change it, so it always stands.
    Never,
    /// The verdict rests on timings: above `max_others_percent`, it is replaced by "cannot
    /// be shown now".
    Above {
        /// The limit, in percent of the machine.
        max_others_percent: f64,
        /// Why the limit is where it is.
        why: &'static str,
    },
}

impl LoadLimit {
    /// The limit of most timing claims: a quarter of the machine. On 2 cores that is half a
    /// core taken, which already costs a 2-worker speedup a quarter of its gain; beyond it
    /// a speedup claim would be judged on the other program's appetite.
    pub const TIMING: LoadLimit = LoadLimit::Above {
        max_others_percent: 25.0,
        why: "a quarter of the machine: on 2 cores, half a core taken costs a 2-worker \
              speedup a quarter of its gain",
    };

    /// `verdict`, or "cannot be shown now" when the machine was busier than this limit
    /// allows (whatever the verdict was: a claim held on a busy machine is no more a finding
    /// about the lecture than one that failed there).
    pub fn judged(&self, verdict: Verdict, machine: Option<&MachineShare>) -> Verdict {
        match machine.and_then(|m| self.exceeded(m)) {
            Some(reason) => Verdict::cannot_show(reason),
            None => verdict,
        }
    }

    /// Whether `share` is past the limit, and if so the reason to give instead of a verdict.
    /// A share taken over less than [`MIN_SAMPLE_S`] of CPU time is a few clock ticks, too
    /// coarse to set a verdict aside on.
    pub fn exceeded(&self, share: &MachineShare) -> Option<String> {
        if share.machine_total_s < MIN_SAMPLE_S {
            return None;
        }
        match *self {
            LoadLimit::Never => None,
            LoadLimit::Above {
                max_others_percent, ..
            } if share.others_percent > max_others_percent => Some(format!(
                "{:.0}% of the CPU was used by other programs while this ran (the limit for a \
                 timing claim is {max_others_percent:.0}%); run the tour again on a quieter \
                 machine",
                share.others_percent
            )),
            LoadLimit::Above { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_are_what_the_machine_did_beyond_this_tree() {
        // 2 cores for 1 s: 2 CPU-seconds in all; busy 1.5, of which we used 0.5.
        let share = MachineShare::from_times(1.5, 2.0, 0.5);
        assert!((share.others_percent - 50.0).abs() < 1e-9);
        // Our own precise count may exceed the kernel's sampled busy time: never negative.
        assert_eq!(MachineShare::from_times(0.4, 2.0, 0.5).others_percent, 0.0);
        assert_eq!(MachineShare::from_times(0.0, 0.0, 0.0).others_percent, 0.0);
    }

    #[test]
    fn a_timing_claim_is_not_judged_past_its_limit_and_a_correctness_claim_always_is() {
        let busy = MachineShare::from_times(1.8, 2.0, 0.6);
        let quiet = MachineShare::from_times(0.7, 2.0, 0.6);
        let reason = LoadLimit::TIMING.exceeded(&busy).unwrap();
        assert!(
            reason.starts_with("60% of the CPU was used by other programs"),
            "{reason}"
        );
        assert_eq!(LoadLimit::TIMING.exceeded(&quiet), None);
        assert_eq!(LoadLimit::Never.exceeded(&busy), None);
        // Two ticks busy out of ten are no evidence of anything.
        let short = MachineShare::from_times(0.09, 0.1, 0.0);
        assert_eq!(LoadLimit::TIMING.exceeded(&short), None);
    }

    #[test]
    fn on_a_busy_machine_no_timing_verdict_stands_either_way() {
        let busy = MachineShare::from_times(1.8, 2.0, 0.6);
        for verdict in [Verdict::held("fast"), Verdict::not_held("slow")] {
            let judged = LoadLimit::TIMING.judged(verdict, Some(&busy));
            assert!(matches!(judged, Verdict::CannotShow { .. }), "{judged:?}");
            assert!(judged.reason().contains("60% of the CPU"));
        }
        assert!(
            LoadLimit::Never
                .judged(Verdict::held("right"), Some(&busy))
                .is_held()
        );
        assert!(
            LoadLimit::TIMING
                .judged(Verdict::held("fast"), None)
                .is_held()
        );
    }

    #[test]
    fn a_sample_of_this_machine_is_a_share() {
        let sampler = Sampler::start();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        if let Some(share) = sampler.finish() {
            assert!((0.0..=100.0).contains(&share.others_percent), "{share:?}");
        }
    }
}
