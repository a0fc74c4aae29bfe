//! Latency and throughput are independent: the lecture's 8 service stations, run.
//!
//! Each station is a worker of a `conlab-pipeline` stage that spends one unit (a sleep: a
//! station is busy, not computing, so 8 of them fit on 2 cores) per job. In a row, the
//! stations are 8 stages of one worker and every job visits each; side by side, they are
//! one stage of 8 workers and a job visits whichever is free.
//!
//! Figures are in units of the stations' *measured* service time (a sleep of 5 ms takes a
//! little longer on a VM), so what is compared with the lecture is the shape: 1 and 8, 8
//! and 1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conlab_pipeline::{Cancel, Model, Pipeline, Stage};

use super::{Context, Experiment, near};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "stations",
    title: "Latency and throughput are independent (8 service stations)",
    claim: Claim {
        quote: "If each job must go through each station, the throughput can be 1 job per \
                unit time, while the latency is 8. If each job needs only 1 service station \
                and any service station will do, the throughput can be 8 jobs per unit time, \
                and the latency is 1",
        slide: "Latency and Throughput are independent",
        figure: "in a row: throughput 1, latency 8; side by side: throughput 8, latency 1",
    },
    load_limit: LoadLimit::TIMING,
    measure,
};

/// The lecture's 8 stations.
const STATIONS: usize = 8;

/// How far each figure may be from the lecture's: every hand-off costs a thread wake-up
/// (tens of microseconds here, about 1% of a 5 ms unit) and a pipeline fills and drains at
/// its ends; 25% leaves room for both and still tells 1 from 8 apart by a factor of six.
const TOLERANCE: f64 = 0.25;

/// What one arrangement of stations measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stations {
    /// Jobs that went through.
    pub jobs: u64,
    /// Station visits in all: jobs x stations in a row, one per job side by side.
    pub visits: u64,
    /// Jobs finished per unit, from the first job's entry to the last one's exit.
    pub throughput_per_unit: f64,
    /// Median time a job spent in the system, in units.
    pub latency_units: f64,
}

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let unit = Duration::from_millis(5);
    let jobs = context.budget.pick(48, 24);
    let row = pipeline(STATIONS, jobs, unit)?;
    let side = parallel(STATIONS, jobs, unit)?;
    let line = |name: &str, s: &Stations| {
        format!(
            "{name}: throughput {:.2} jobs/unit, latency {:.2} units",
            s.throughput_per_unit, s.latency_units
        )
    };
    let series = |name: &'static str, pick: fn(&Stations) -> f64, unit: &'static str| Series {
        name: name.into(),
        x: Axis {
            label: "arrangement (0 in a row, 1 side by side)",
            unit: "",
        },
        y: Axis { label: name, unit },
        points: vec![[0.0, pick(&row)], [1.0, pick(&side)]],
    };
    Ok(Outcome {
        setup: format!(
            "{jobs} jobs through {STATIONS} station threads; 1 unit = a station's measured \
             service time (a {} ms sleep)",
            unit.as_millis()
        ),
        details: vec![line("in a row    ", &row), line("side by side", &side)],
        measured: format!(
            "in a row throughput {:.2}, latency {:.2}; side by side throughput {:.2}, latency {:.2}",
            row.throughput_per_unit,
            row.latency_units,
            side.throughput_per_unit,
            side.latency_units
        ),
        figures: vec![
            Figure::new(
                "row_throughput_per_unit",
                row.throughput_per_unit,
                "jobs/unit",
            ),
            Figure::new("row_latency_units", row.latency_units, "units"),
            Figure::new(
                "side_throughput_per_unit",
                side.throughput_per_unit,
                "jobs/unit",
            ),
            Figure::new("side_latency_units", side.latency_units, "units"),
        ],
        series: vec![
            series("throughput", |s| s.throughput_per_unit, "jobs/unit"),
            series("latency", |s| s.latency_units, "units"),
        ],
        verdict: judge(&row, &side),
    })
}

/// The best throughputs `jobs` jobs can show through [`STATIONS`] stations, per unit: the
/// lecture's 1 and 8 are the steady state, and a finite run also fills and drains a pipeline
/// (the first job leaves after 8 units) and may leave the last round of stations part empty.
pub fn ideal_throughputs(jobs: u64) -> (f64, f64) {
    let stations = STATIONS as u64;
    let row = jobs as f64 / (jobs + stations - 1) as f64;
    let side = jobs as f64 / jobs.div_ceil(stations).max(1) as f64;
    (row, side)
}

/// Held when all four figures are within [`TOLERANCE`] of the lecture's: latencies 8 and 1,
/// throughputs 1 and 8 as a run of this many jobs can show them ([`ideal_throughputs`]).
pub fn judge(row: &Stations, side: &Stations) -> Verdict {
    let (row_ideal, side_ideal) = ideal_throughputs(row.jobs);
    let checks = [
        ("in a row, throughput", row.throughput_per_unit, row_ideal),
        ("in a row, latency", row.latency_units, STATIONS as f64),
        (
            "side by side, throughput",
            side.throughput_per_unit,
            side_ideal,
        ),
        ("side by side, latency", side.latency_units, 1.0),
    ];
    let off: Vec<String> = checks
        .iter()
        .filter(|(_, value, target)| !near(*value, *target, TOLERANCE))
        .map(|(what, value, target)| format!("{what} {value:.2} (ideal {target:.2})"))
        .collect();
    if off.is_empty() {
        Verdict::held(format!(
            "all four within {:.0}% of the lecture's 1, 8, 8, 1 (for {} jobs the throughputs \
             can reach {row_ideal:.2} and {side_ideal:.2}): the same stations give low latency \
             or high throughput, depending only on how jobs visit them",
            TOLERANCE * 100.0,
            row.jobs
        ))
    } else {
        Verdict::not_held(format!(
            "more than {:.0}% off: {}",
            TOLERANCE * 100.0,
            off.join(", ")
        ))
    }
}

/// A job, stamped when it enters its first station.
struct Job {
    entered: Option<Instant>,
}

/// `stations` stations in a row; every job visits each.
pub fn pipeline(stations: usize, jobs: u64, unit: Duration) -> Result<Stations, Error> {
    run(stations.max(1), 1, jobs, unit)
}

/// `stations` stations side by side; a job visits whichever is free.
pub fn parallel(stations: usize, jobs: u64, unit: Duration) -> Result<Stations, Error> {
    run(1, stations.max(1), jobs, unit)
}

/// `stages` stages of `workers` stations each, on `conlab-pipeline` (a thread per
/// station, batches of one, queues of one job: a job waits only for the station it needs).
/// Latency runs from a job's entry into its first station, as in the lecture's picture;
/// throughput from the first entry to the last exit.
fn run(stages: usize, workers: usize, jobs: u64, unit: Duration) -> Result<Stations, Error> {
    let served: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let stage = |i: usize| {
        let served = Arc::clone(&served);
        Stage::func(
            format!("station-{}", i + 1),
            workers,
            move |_, mut job: Job| {
                let start = Instant::now();
                if i == 0 {
                    job.entered = Some(start);
                }
                std::thread::sleep(unit);
                served
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(start.elapsed());
                Ok(job)
            },
        )
    };
    let pipeline = Pipeline::new((0..stages).map(stage).collect()).queue(1);
    let mut in_system = Vec::with_capacity(jobs as usize);
    let mut first_entry: Option<Instant> = None;
    let mut last_exit = Instant::now();
    let jobs_in = (0..jobs).map(|_| Job { entered: None });
    pipeline.run(
        jobs_in,
        Model::Threads,
        &Cancel::default(),
        |_, job: Job| {
            last_exit = Instant::now();
            if let Some(entered) = job.entered {
                first_entry = Some(first_entry.map_or(entered, |f| f.min(entered)));
                in_system.push(last_exit.duration_since(entered));
            }
        },
    )?;
    let mut served = std::mem::take(&mut *served.lock().unwrap_or_else(|e| e.into_inner()));
    served.sort_unstable();
    // The unit is what a station really took for a job (the median: one sleep that a busy
    // machine woke late must not stretch every other job's unit), not the sleep asked for.
    let unit_s = served
        .get(served.len() / 2)
        .map_or(0.0, Duration::as_secs_f64);
    in_system.sort_unstable();
    let span = first_entry.map_or(Duration::ZERO, |f| last_exit.duration_since(f));
    let units = |d: Duration| {
        if unit_s > 0.0 {
            d.as_secs_f64() / unit_s
        } else {
            0.0
        }
    };
    Ok(Stations {
        jobs,
        visits: served.len() as u64,
        throughput_per_unit: conlab_measure::throughput(jobs, span) * unit_s,
        latency_units: in_system
            .get(in_system.len() / 2)
            .map_or(0.0, |d| units(*d)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(throughput_per_unit: f64, latency_units: f64) -> Stations {
        Stations {
            jobs: 48,
            visits: 48,
            throughput_per_unit,
            latency_units,
        }
    }

    #[test]
    fn the_lectures_shape_holds_and_a_pipeline_that_is_not_one_does_not() {
        assert!(judge(&s(0.85, 8.4), &s(7.4, 1.05)).is_held());
        // 24 jobs can show at most 24/31 in a row: 0.74 is within a quarter of that.
        let short = |t, l| Stations {
            jobs: 24,
            visits: 24,
            throughput_per_unit: t,
            latency_units: l,
        };
        assert!(judge(&short(0.74, 8.2), &short(7.6, 1.0)).is_held());
        // "In a row" that behaved like side by side: the claim is contradicted.
        let verdict = judge(&s(7.9, 1.0), &s(7.4, 1.05));
        assert!(!verdict.is_held());
        assert!(
            verdict.reason().contains("in a row, throughput 7.90"),
            "{verdict:?}"
        );
    }

    #[test]
    fn in_a_row_every_job_visits_every_station_and_side_by_side_one() {
        let p = pipeline(3, 5, Duration::from_millis(1)).unwrap();
        let q = parallel(3, 5, Duration::from_millis(1)).unwrap();
        assert_eq!((p.jobs, p.visits), (5, 15), "{p:?}");
        assert_eq!((q.jobs, q.visits), (5, 5), "{q:?}");
        for s in [p, q] {
            assert!(
                s.latency_units > 0.0 && s.throughput_per_unit > 0.0,
                "{s:?}"
            );
        }
    }
}
