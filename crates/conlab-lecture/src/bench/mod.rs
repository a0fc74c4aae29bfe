//! The bench harness (`conlab bench WORKLOAD`): one workload under every model and a sweep
//! of worker counts, each row measured the same way ([`batch`]), the median of several runs
//! with their spread, speedup and efficiency against serial, and the lecture's rule of thumb
//! ([`rule`]) beside the model that actually won ([`report`]).

pub mod batch;
pub mod report;
pub mod rule;

use std::time::Duration;

use conlab_exec::Model;
use conlab_exec::processes::WorkerProgram;
use conlab_measure::usage::cpu_percent;
use conlab_work::Workload;

pub use report::{BENCH_SCHEMA, BenchReport, BenchRow};
pub use rule::{Bound, Classification, Recommendation, SLOW_IO_US, classify, recommend};

use crate::Error;
use batch::{BatchConfig, Measurement};

/// The most tasks one batch may have: a hundred thousand times the default, and more than a
/// minute of the cheapest workload. Anything larger is a typo or a number that cannot finish.
pub const MAX_TASKS: u64 = 1_000_000_000;

/// The most measured (or warm-up) runs per row.
pub const MAX_RUNS: u32 = 10_000;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The workload.
    pub workload: Workload,
    /// Tasks per batch.
    pub tasks: u64,
    /// Models to run besides serial, which always runs first: it is the baseline.
    pub models: Vec<Model>,
    /// Worker counts to sweep.
    pub jobs: Vec<usize>,
    /// Also run the thread pool under the emulated GIL.
    pub gil: bool,
    /// Unmeasured batches before the measured ones, per row.
    pub warmup: u32,
    /// Measured batches per row.
    pub runs: u32,
    /// `processes`: the worker program (default: this executable).
    pub worker_program: Option<WorkerProgram>,
}

impl BenchConfig {
    /// Refuses what cannot run, naming the option and the limit.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |option: &'static str, problem: String| Err(Error::Config { option, problem });
        if self.tasks == 0 || self.tasks > MAX_TASKS {
            return bad(
                "--tasks",
                format!(
                    "{} is not between 1 and {MAX_TASKS} tasks per batch",
                    self.tasks
                ),
            );
        }
        if self.runs == 0 || self.runs > MAX_RUNS || self.warmup > MAX_RUNS {
            return bad(
                "--runs",
                format!(
                    "--runs {} --warmup {}: runs must be 1 to {MAX_RUNS}, warm-ups 0 to {MAX_RUNS}",
                    self.runs, self.warmup
                ),
            );
        }
        if let Some(&n) = self.jobs.iter().find(|&&n| n == 0 || n > 4096) {
            return bad(
                "-j",
                format!("{n} workers: a row takes 1 to 4096 workers, e.g. -j 1,2,4"),
            );
        }
        if self.jobs.is_empty() {
            return bad("-j", "no worker count given".into());
        }
        if self.gil && !self.models.contains(&Model::Threads) {
            return bad(
                "--gil",
                "adds thread-pool rows under the GIL, and --models has no threads".into(),
            );
        }
        if let Workload::Sleep { nanos } = self.workload {
            let serial_s = nanos as f64 / 1e9 * self.tasks as f64;
            if serial_s > 24.0 * 3600.0 {
                return bad(
                    "--tasks",
                    format!(
                        "{} tasks of {} take {:.0} hours in the serial row alone: at most a day",
                        self.tasks,
                        self.workload,
                        serial_s / 3600.0
                    ),
                );
            }
        }
        Ok(())
    }

    /// The rows to measure: serial first, then each model at each worker count (and the
    /// thread pool again under the GIL when asked).
    pub fn plans(&self) -> Vec<Plan> {
        let mut plans = vec![Plan {
            model: Model::Serial,
            workers: 1,
            gil: false,
        }];
        // A model or a count given twice is one row.
        let mut models: Vec<Model> = Vec::new();
        for &m in self.models.iter().filter(|&&m| m != Model::Serial) {
            if !models.contains(&m) {
                models.push(m);
            }
        }
        let mut jobs: Vec<usize> = Vec::new();
        for &j in &self.jobs {
            if !jobs.contains(&j) {
                jobs.push(j);
            }
        }
        for &model in &models {
            for &workers in &jobs {
                plans.push(Plan {
                    model,
                    workers,
                    gil: false,
                });
                if self.gil && model == Model::Threads {
                    plans.push(Plan {
                        model,
                        workers,
                        gil: true,
                    });
                }
            }
        }
        plans
    }

    /// Tasks run in all, warm-ups included (for a progress bar).
    pub fn total_tasks(&self) -> u64 {
        let batches = u64::from(self.warmup + self.runs) * self.plans().len() as u64;
        batches.saturating_mul(self.tasks)
    }
}

/// One row to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The model.
    pub model: Model,
    /// Its workers.
    pub workers: usize,
    /// Under the emulated GIL.
    pub gil: bool,
}

impl Plan {
    /// `threads x2 --gil`.
    pub fn label(&self) -> String {
        report::label(self.model.name(), self.workers, self.gil)
    }
}

/// Where a bench run is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The row being measured.
    pub plan: &'a Plan,
    /// Tasks done so far in the whole run.
    pub done: u64,
}

/// Runs every plan and returns the report; `progress` is told as tasks finish.
pub fn run(
    config: &BenchConfig,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<BenchReport, Error> {
    config.validate()?;
    let cores = conlab_exec::available_cores();
    let mut rows = Vec::new();
    let mut serial: Option<Measurement> = None;
    let mut done = 0u64;
    for plan in &config.plans() {
        let batch = BatchConfig {
            model: plan.model,
            workers: plan.workers,
            gil: plan.gil,
            tasks: config.tasks,
            worker_program: config.worker_program.clone(),
        };
        let mut measured = Vec::new();
        for run in 0..config.warmup + config.runs {
            let before = done;
            let m = batch::run(&config.workload, &batch, |n| {
                progress(Progress {
                    plan,
                    done: before + n,
                });
            })
            .map_err(|source| Error::Row {
                row: plan.label(),
                source,
            })?;
            done = before + config.tasks;
            if run >= config.warmup {
                measured.push(m);
            }
        }
        measured.sort_by_key(|m| m.wall);
        let (fastest, slowest) = (measured[0].wall, measured[measured.len() - 1].wall);
        let median = measured.swap_remove(measured.len() / 2);
        let baseline = serial.get_or_insert_with(|| median.clone());
        rows.push(row(plan, &median, (fastest, slowest), baseline, cores));
    }
    let serial = serial.ok_or(Error::Config {
        option: "--models",
        problem: "the serial baseline did not run".into(),
    })?;
    let classification = classify(
        serial.cpu.as_secs_f64(),
        serial.wall.as_secs_f64(),
        serial.service.percentiles().mean,
    );
    let recommendation = recommend(&classification, &rows);
    Ok(BenchReport {
        schema: BENCH_SCHEMA,
        workload: config.workload.to_string(),
        tasks: config.tasks,
        runs: config.runs,
        warmup: config.warmup,
        cores,
        results: rows,
        classification,
        recommendation,
    })
}

fn row(
    plan: &Plan,
    m: &Measurement,
    (fastest, slowest): (Duration, Duration),
    serial: &Measurement,
    cores: usize,
) -> BenchRow {
    let speedup = conlab_measure::speedup(serial.wall, m.wall);
    let cpu = cpu_percent(m.cpu, m.wall, cores);
    BenchRow {
        model: plan.model.to_string(),
        workers: m.workers,
        gil: plan.gil,
        wall_s: m.wall.as_secs_f64(),
        wall_s_min: fastest.as_secs_f64(),
        wall_s_max: slowest.as_secs_f64(),
        throughput_per_s: conlab_measure::throughput(m.latency.count() - m.errors, m.wall),
        latency_us: m.latency.percentiles(),
        service_us: m.service.percentiles(),
        // More CPU than the machine has is the counters' granularity showing, not a figure.
        cpu_percent: (cpu <= 100.0).then_some(cpu),
        peak_rss_bytes: m.peak_rss_bytes,
        speedup,
        efficiency: conlab_measure::efficiency(speedup, m.workers),
        errors: m.errors,
        first_error: m.first_error.clone(),
        checksum_ok: m.errors == 0 && m.checksum == serial.checksum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tasks: u64) -> BenchConfig {
        BenchConfig {
            workload: Workload::parse("sleep:1ms").unwrap(),
            tasks,
            models: vec![Model::Serial, Model::Threads, Model::Async],
            jobs: vec![1, 2],
            gil: true,
            warmup: 0,
            runs: 1,
            worker_program: None,
        }
    }

    #[test]
    fn plans_run_serial_once_first_then_each_model_at_each_count() {
        let labels: Vec<String> = config(4).plans().iter().map(Plan::label).collect();
        assert_eq!(
            labels,
            [
                "serial x1",
                "threads x1",
                "threads x1 --gil",
                "threads x2",
                "threads x2 --gil",
                "async x1",
                "async x2"
            ]
        );
    }

    #[test]
    fn a_model_or_count_given_twice_is_one_row() {
        let twice = BenchConfig {
            models: vec![Model::Threads, Model::Threads, Model::Serial],
            jobs: vec![2, 2, 1, 2],
            gil: false,
            ..config(4)
        };
        let labels: Vec<String> = twice.plans().iter().map(Plan::label).collect();
        assert_eq!(labels, ["serial x1", "threads x2", "threads x1"]);
    }

    #[test]
    fn what_cannot_run_is_refused_with_the_option_named() {
        for (c, option) in [
            (config(0), "--tasks"),
            (config(u64::MAX), "--tasks"),
            (
                BenchConfig {
                    jobs: vec![0],
                    ..config(4)
                },
                "-j",
            ),
            (
                BenchConfig {
                    runs: 0,
                    ..config(4)
                },
                "--runs",
            ),
            (
                BenchConfig {
                    models: vec![Model::Async],
                    ..config(4)
                },
                "--gil",
            ),
            (config(100_000_000), "--tasks"),
        ] {
            let e = c.validate().unwrap_err();
            assert!(e.to_string().starts_with(option), "{e}");
        }
        let most = BenchConfig {
            workload: Workload::parse("primes:10").unwrap(),
            ..config(MAX_TASKS)
        };
        assert!(most.validate().is_ok());
        assert_eq!(
            config(u64::MAX).total_tasks(),
            u64::MAX,
            "saturates, never wraps"
        );
    }

    #[test]
    fn a_bench_of_threads_and_async_reports_every_row_with_serials_answers() {
        let report = run(&config(6), |_| ()).unwrap();
        assert_eq!(report.results.len(), 7);
        assert!(
            report
                .results
                .iter()
                .all(|r| r.checksum_ok && r.errors == 0)
        );
        assert_eq!(report.results[0].speedup, 1.0);
        assert!(report.recommendation.winner.is_some());
    }
}
