//! The report of `conlab bench`: one row per (model, workers), the workload classified from
//! the serial run, and the lecture's rule of thumb set beside the model that actually won.
//!
//! The JSON shape is versioned by `schema` (`conlab.bench/1`) and documented in
//! `docs/json-schema.md`.

use serde::Serialize;

use crate::export::Tabular;
use crate::latency::Percentiles;
use crate::report::{self, Cell, Column, Table, Tone};

/// The schema id of [`BenchReport`]'s JSON.
pub const BENCH_SCHEMA: &str = "conlab.bench/1";

/// Everything `conlab bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `conlab.bench/1`.
    pub schema: &'static str,
    /// The workload's spec string.
    pub workload: String,
    /// Tasks per batch.
    pub tasks: u64,
    /// Measured runs per row (the row is the median run).
    pub runs: u32,
    /// Unmeasured runs before them.
    pub warmup: u32,
    /// Cores of the machine.
    pub cores: usize,
    /// One row per (model, workers, gil).
    pub results: Vec<BenchRow>,
    /// What kind of work this is.
    pub classification: Classification,
    /// The lecture's advice and what won.
    pub recommendation: Recommendation,
}

/// One (model, workers) row: its median run, and the spread of the runs.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// `serial`, `threads`, `processes`, `async` or `rayon`.
    pub model: String,
    /// Workers.
    pub workers: usize,
    /// Run under the emulated GIL.
    pub gil: bool,
    /// Wall time of the median run, in seconds.
    pub wall_s: f64,
    /// Fastest run's wall time.
    pub wall_s_min: f64,
    /// Slowest run's wall time.
    pub wall_s_max: f64,
    /// Tasks completed per second in the median run.
    pub throughput_per_s: f64,
    /// Task latency (submission to completion), microseconds.
    pub latency_us: Percentiles,
    /// Service time (start to end of the work), microseconds.
    pub service_us: Percentiles,
    /// CPU of the process tree / wall / cores, percent.
    pub cpu_percent: f64,
    /// Peak RSS of the process tree.
    pub peak_rss_bytes: u64,
    /// Serial's wall time / this row's.
    pub speedup: f64,
    /// Speedup / workers.
    pub efficiency: f64,
    /// Failed tasks.
    pub errors: u64,
    /// Every task's answer equals serial's.
    pub checksum_ok: bool,
}

impl BenchRow {
    /// `threads x2 --gil`.
    pub fn label(&self) -> String {
        format!(
            "{} x{}{}",
            self.model,
            self.workers,
            if self.gil { " --gil" } else { "" }
        )
    }
}

/// What kind of work the serial run showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// The CPU was busy most of the wall time.
    CpuBound,
    /// The task mostly waited.
    IoBound,
    /// In between.
    Mixed,
}

/// The serial run, read.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Classification {
    /// The verdict.
    pub kind: Bound,
    /// Serial CPU time / serial wall time.
    pub cpu_per_wall: f64,
    /// Mean service time of a task, microseconds.
    pub mean_service_us: f64,
}

/// A task that waits this long or more is "slow I/O" in the lecture's rule of thumb.
pub const SLOW_IO_US: f64 = 1_000.0;

/// Classifies from the serial run: CPU-bound when the CPU was busy >= 70% of the wall time,
/// I/O-bound when <= 30%.
pub fn classify(serial_cpu_s: f64, serial_wall_s: f64, mean_service_us: f64) -> Classification {
    let cpu_per_wall = if serial_wall_s > 0.0 {
        serial_cpu_s / serial_wall_s
    } else {
        0.0
    };
    let kind = if cpu_per_wall >= 0.7 {
        Bound::CpuBound
    } else if cpu_per_wall <= 0.3 {
        Bound::IoBound
    } else {
        Bound::Mixed
    };
    Classification {
        kind,
        cpu_per_wall,
        mean_service_us,
    }
}

/// The lecture's rule of thumb beside the measured winner.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// The model the lecture's rule picks.
    pub rule_of_thumb: String,
    /// The rule, as it applies.
    pub reason: String,
    /// The fastest correct row (`rayon x2`), if any row was correct.
    pub winner: Option<String>,
    /// Whether the winner's model is the rule's.
    pub agree: bool,
    /// What to make of a disagreement.
    pub note: String,
}

/// Applies the rule of thumb and finds the winner: the highest throughput among rows with no
/// errors and correct checksums (fewer workers on a tie).
pub fn recommend(class: &Classification, rows: &[BenchRow]) -> Recommendation {
    let (rule, reason) = match class.kind {
        Bound::CpuBound => ("processes", "CPU-bound -> processes (parallel workers)"),
        Bound::IoBound if class.mean_service_us >= SLOW_IO_US => {
            ("async", "I/O-bound, slow I/O -> an async event loop")
        }
        Bound::IoBound => ("threads", "I/O-bound, fast I/O -> threads"),
        Bound::Mixed => (
            "threads",
            "mixed CPU and waiting -> threads (measure: no rule fits)",
        ),
    };
    let winner = rows
        .iter()
        .filter(|r| r.errors == 0 && r.checksum_ok)
        .max_by(|a, b| {
            a.throughput_per_s
                .total_cmp(&b.throughput_per_s)
                .then(b.workers.cmp(&a.workers))
        });
    let agree = winner.is_some_and(|w| w.model == rule);
    let note = match winner {
        None => "no model finished without errors".to_string(),
        Some(_) if agree => "the measurement agrees with the lecture".to_string(),
        Some(w)
            if class.kind == Bound::CpuBound && (w.model == "threads" || w.model == "rayon") =>
        {
            format!(
                "{} won: Rust threads have no GIL, so for CPU-bound work they run in parallel like \
             processes, without the cost of crossing a process boundary (run with --gil to see \
             what CPython's lock does to them)",
                w.label()
            )
        }
        Some(w) => format!(
            "{} won against the rule of thumb: on this machine and this workload, measure rather \
             than follow folklore",
            w.label()
        ),
    };
    Recommendation {
        rule_of_thumb: rule.to_string(),
        reason: reason.to_string(),
        winner: winner.map(BenchRow::label),
        agree,
        note,
    }
}

impl Tabular for BenchReport {
    fn tables(&self) -> Vec<Table> {
        let best = self.recommendation.winner.clone();
        let rows = self
            .results
            .iter()
            .map(|r| {
                let won = best.as_deref() == Some(r.label().as_str());
                vec![
                    Cell::text(r.label()).tone(if won { Tone::Good } else { Tone::Plain }),
                    report::seconds(r.wall_s),
                    report::rate(r.throughput_per_s),
                    report::seconds(r.latency_us.p50 as f64 / 1e6),
                    report::seconds(r.latency_us.p99 as f64 / 1e6),
                    report::fixed(r.cpu_percent, 0, "%"),
                    report::bytes(r.peak_rss_bytes),
                    report::fixed(r.speedup, 2, "x"),
                    report::fixed(r.efficiency * 100.0, 0, "%"),
                    report::count(r.errors).tone(if r.errors > 0 || !r.checksum_ok {
                        Tone::Bad
                    } else {
                        Tone::Plain
                    }),
                ]
            })
            .collect();
        let c = &self.classification;
        let rec = &self.recommendation;
        let kind = match c.kind {
            Bound::CpuBound => "CPU-bound",
            Bound::IoBound => "I/O-bound",
            Bound::Mixed => "mixed",
        };
        let mut notes = vec![
            String::new(),
            format!(
                "workload: {kind} (serial CPU/wall = {:.2}, mean service time {})",
                c.cpu_per_wall,
                report::seconds(c.mean_service_us / 1e6).shown
            ),
            format!("lecture's rule of thumb: {}", rec.reason),
            format!(
                "measured winner: {} ({})",
                rec.winner.as_deref().unwrap_or("none"),
                if rec.agree { "agrees" } else { "disagrees" }
            ),
            rec.note.clone(),
        ];
        if self.results.iter().any(|r| !r.checksum_ok) {
            notes.push("WARNING: some model's answers differ from serial's (see errors)".into());
        }
        vec![Table {
            title: Some(format!(
                "{} x {} tasks, median of {} run(s), {} cores",
                self.workload, self.tasks, self.runs, self.cores
            )),
            columns: vec![
                Column::text("model"),
                Column::number("wall"),
                Column::number("throughput"),
                Column::number("p50"),
                Column::number("p99"),
                Column::number("CPU"),
                Column::number("peak RSS"),
                Column::number("speedup"),
                Column::number("efficiency"),
                Column::number("errors"),
            ],
            rows,
            notes,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, workers: usize, throughput: f64) -> BenchRow {
        BenchRow {
            model: model.into(),
            workers,
            gil: false,
            wall_s: 1.0 / throughput,
            wall_s_min: 1.0 / throughput,
            wall_s_max: 1.0 / throughput,
            throughput_per_s: throughput,
            latency_us: Percentiles::default(),
            service_us: Percentiles::default(),
            cpu_percent: 50.0,
            peak_rss_bytes: 1 << 20,
            speedup: 1.0,
            efficiency: 1.0,
            errors: 0,
            checksum_ok: true,
        }
    }

    #[test]
    fn busy_serial_runs_are_cpu_bound_and_idle_ones_io_bound() {
        assert_eq!(classify(0.98, 1.0, 20_000.0).kind, Bound::CpuBound);
        assert_eq!(classify(0.01, 1.0, 10_000.0).kind, Bound::IoBound);
        assert_eq!(classify(0.5, 1.0, 100.0).kind, Bound::Mixed);
        assert_eq!(classify(1.0, 0.0, 0.0).kind, Bound::IoBound);
    }

    #[test]
    fn the_rule_of_thumb_follows_the_lecture() {
        let rows = [
            row("serial", 1, 10.0),
            row("processes", 2, 19.0),
            row("async", 1, 10.0),
        ];
        let cpu = recommend(&classify(0.99, 1.0, 5_000.0), &rows);
        assert_eq!((cpu.rule_of_thumb.as_str(), cpu.agree), ("processes", true));
        let slow_io = recommend(&classify(0.01, 1.0, 10_000.0), &rows);
        assert_eq!(slow_io.rule_of_thumb, "async");
        assert!(!slow_io.agree);
        let fast_io = recommend(&classify(0.01, 1.0, 200.0), &rows);
        assert_eq!(fast_io.rule_of_thumb, "threads");
    }

    #[test]
    fn a_row_with_errors_or_wrong_answers_cannot_win() {
        let mut broken = row("threads", 2, 100.0);
        broken.checksum_ok = false;
        let rows = [row("serial", 1, 10.0), broken, row("rayon", 2, 19.0)];
        let r = recommend(&classify(0.99, 1.0, 5_000.0), &rows);
        assert_eq!(r.winner.as_deref(), Some("rayon x2"));
        assert!(r.note.contains("no GIL"), "{}", r.note);
    }

    #[test]
    fn ties_go_to_fewer_workers() {
        let rows = [row("threads", 4, 10.0), row("threads", 2, 10.0)];
        let r = recommend(&classify(0.01, 1.0, 200.0), &rows);
        assert_eq!(r.winner.as_deref(), Some("threads x2"));
    }
}
