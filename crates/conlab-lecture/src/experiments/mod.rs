//! The lecture's experiments, one module each, in the lecture's order, and the list of them
//! ([`EXPERIMENTS`]): the only place an experiment is named. `conlab tour`, its `--only`
//! and its `--help` all read this list.
//!
//! Every module has the same shape: the claim (quoted, with its slide), the set-up as
//! constants with the reason for each, a `measure` step that returns plain numbers, and a
//! `judge` step that turns those numbers into a [`Verdict`](crate::Verdict) against
//! thresholds stated beside it. `judge` never reads a clock, so each is tested on
//! fabricated measurements: held, not held, cannot be shown.

pub mod atomic;
pub mod costs;
pub mod crash;
pub mod deadlock;
pub mod gil_io;
pub mod gophers;
pub mod is_prime;
pub mod kettle;
pub mod primes;
pub mod scrape;
pub mod stations;
pub mod web;

use std::fmt;

use crate::Error;
use crate::finding::{Claim, Finding, Outcome, Verdict};
use crate::machine::{LoadLimit, Sampler};
use crate::servers::Launcher;

/// How much work each experiment does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    /// The tour as it is meant to run: big enough for every verdict (about 8 s on 2 cores).
    Full,
    /// The smallest runs that still exercise every experiment end to end (tests, a first
    /// look); figures are noisier.
    Quick,
}

impl Budget {
    /// `full` when this is the full budget, else `quick`: picks a set-up constant.
    pub fn pick<T>(self, full: T, quick: T) -> T {
        match self {
            Budget::Full => full,
            Budget::Quick => quick,
        }
    }
}

/// What every experiment is given.
pub struct Context<'a> {
    /// Workers for each pool (the lecture uses 2).
    pub workers: usize,
    /// Cores this process may use (its CPU affinity, as `taskset` sets it).
    pub cores: usize,
    /// How much work to do.
    pub budget: Budget,
    /// Starts the HTTP servers of the web experiment in their own processes.
    pub servers: &'a dyn Launcher,
    /// Also run the real Apache httpd and nginx where they are installed.
    pub peers: bool,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("workers", &self.workers)
            .field("cores", &self.cores)
            .field("budget", &self.budget)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

/// One experiment of the lecture.
#[derive(Debug, Clone, Copy)]
pub struct Experiment {
    /// Its name, as `--only` takes it.
    pub name: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// The lecture's claim it tests.
    pub claim: Claim,
    /// How much of the machine others may take before its verdict cannot be trusted.
    pub load_limit: LoadLimit,
    measure: fn(&Context<'_>) -> Result<Outcome, Error>,
}

impl Experiment {
    /// Runs the experiment and judges its claim, setting the verdict aside ("cannot be
    /// shown now") when other programs took more of the machine than the claim tolerates.
    pub fn run(&self, context: &Context<'_>) -> Result<Finding, Error> {
        let sampler = Sampler::start();
        let mut outcome = (self.measure)(context)?;
        // A figure a probe could not measure is left out, not written as NaN (JSON's null).
        outcome.figures.retain(|f| f.value.is_finite());
        for series in &mut outcome.series {
            series.points.retain(|p| p.iter().all(|v| v.is_finite()));
        }
        outcome.series.retain(|s| !s.points.is_empty());
        let wall_s = sampler.elapsed_s();
        let machine = sampler.finish();
        outcome.verdict = self.load_limit.judged(outcome.verdict, machine.as_ref());
        Ok(Finding {
            name: self.name,
            title: self.title,
            claim: self.claim,
            outcome,
            machine,
            wall_s,
        })
    }

    /// The finding of an experiment that could not run at all (a pool or a server that did
    /// not start): no figures, and a verdict that says why.
    pub fn could_not_run(&self, error: &Error) -> Finding {
        let why = error_chain(error);
        Finding {
            name: self.name,
            title: self.title,
            claim: self.claim,
            outcome: Outcome {
                setup: "did not run".into(),
                details: Vec::new(),
                measured: "nothing".into(),
                figures: Vec::new(),
                series: Vec::new(),
                verdict: Verdict::cannot_show(format!("the experiment could not run: {why}")),
            },
            machine: None,
            wall_s: 0.0,
        }
    }
}

/// An error and its causes, `: `-separated, as a user reads them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Every experiment, in the lecture's order.
pub const EXPERIMENTS: [Experiment; 12] = [
    stations::EXPERIMENT,
    gophers::EXPERIMENT,
    kettle::EXPERIMENT,
    primes::EXPERIMENT,
    gil_io::EXPERIMENT,
    is_prime::EXPERIMENT,
    costs::EXPERIMENT,
    atomic::EXPERIMENT,
    deadlock::EXPERIMENT,
    crash::EXPERIMENT,
    scrape::EXPERIMENT,
    web::EXPERIMENT,
];

/// The experiment called `name`.
pub fn find(name: &str) -> Option<&'static Experiment> {
    EXPERIMENTS.iter().find(|e| e.name == name)
}

/// Whether `value` is within `tolerance` (a fraction) of `target`.
pub(crate) fn near(value: f64, target: f64, tolerance: f64) -> bool {
    (value - target).abs() <= target.abs() * tolerance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_experiment_has_a_unique_name_and_is_found_by_it() {
        let mut names: Vec<_> = EXPERIMENTS.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EXPERIMENTS.len());
        for e in &EXPERIMENTS {
            assert_eq!(find(e.name).map(|f| f.title), Some(e.title));
            assert!(!e.claim.quote.is_empty() && !e.claim.slide.is_empty());
        }
        assert!(find("kettel").is_none());
    }

    #[test]
    fn near_is_a_relative_tolerance() {
        assert!(near(1.2, 1.0, 0.25) && !near(1.3, 1.0, 0.25) && near(7.0, 8.0, 0.25));
    }
}
