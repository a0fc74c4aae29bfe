//! The report of `conlab bench`: one row per (model, workers), the workload classified from
//! the serial run, and the lecture's rule of thumb set beside the model that actually won.
//!
//! The JSON shape is versioned by `schema` ([`BENCH_SCHEMA`]) and documented in
//! `docs/json-schema.md`.

use conlab_measure::Percentiles;
use conlab_measure::export::Tabular;
use conlab_measure::report::{self, Cell, Column, Table, Tone};
use serde::Serialize;

use super::rule::{Classification, Recommendation};

/// The schema id of [`BenchReport`]'s JSON.
pub const BENCH_SCHEMA: &str = "conlab.bench/2";

/// Everything `conlab bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// [`BENCH_SCHEMA`].
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
    /// CPU of the process tree / wall / cores, percent; `None` when the counters gave more
    /// than the whole machine (a run too short for worker processes' 10 ms clock ticks):
    /// noise, not a figure.
    pub cpu_percent: Option<f64>,
    /// Peak RSS of the process tree.
    pub peak_rss_bytes: u64,
    /// Serial's wall time / this row's.
    pub speedup: f64,
    /// Speedup / workers.
    pub efficiency: f64,
    /// Failed tasks.
    pub errors: u64,
    /// The first failed task and why it failed.
    pub first_error: Option<String>,
    /// Every task's answer equals serial's.
    pub checksum_ok: bool,
}

impl BenchReport {
    /// The benchmark as a self-contained HTML page (`bench --html`): speedup over serial by
    /// workers for each model with the ideal line, throughput and peak memory per row, the
    /// rule of thumb beside the winner, and this report's JSON.
    pub fn html(&self) -> String {
        use conlab_measure::html::{Bars, Chart, Line, Page};
        let mut page = Page::new(&format!("conlab bench {}", self.workload));
        page.paragraph(&format!(
            "{} tasks per row, {} runs (median), {} cores. The workload is {} (serial CPU/wall \
             {:.2}, mean service time {:.0} us). The lecture's rule of thumb: {} ({}). Measured \
             winner: {}{}.",
            self.tasks,
            self.runs,
            self.cores,
            self.classification.kind.words(),
            self.classification.cpu_per_wall,
            self.classification.mean_service_us,
            self.recommendation.rule_of_thumb,
            self.recommendation.reason,
            self.recommendation.winner.as_deref().unwrap_or("none"),
            if self.recommendation.agree {
                " (agrees)"
            } else {
                ""
            },
        ));
        let name = |r: &BenchRow| {
            if r.gil {
                format!("{} --gil", r.model)
            } else {
                r.model.clone()
            }
        };
        let mut models: Vec<String> = Vec::new();
        for r in &self.results {
            if !models.contains(&name(r)) {
                models.push(name(r));
            }
        }
        let mut lines: Vec<Line> = models
            .iter()
            .map(|m| Line {
                name: m.clone(),
                points: self
                    .results
                    .iter()
                    .filter(|r| &name(r) == m)
                    .map(|r| [r.workers as f64, r.speedup])
                    .collect(),
                reference: false,
            })
            .collect();
        let most = self.results.iter().map(|r| r.workers).max().unwrap_or(1);
        lines.push(Line {
            name: "ideal (speedup = workers)".into(),
            points: vec![[1.0, 1.0], [most as f64, most as f64]],
            reference: true,
        });
        page.chart(&Chart {
            title: "Speedup over serial by workers".into(),
            x_label: "workers".into(),
            y_label: "speedup over serial (x)".into(),
            lines,
            log_y: false,
        });
        let row = |r: &BenchRow| format!("{} x{}", name(r), r.workers);
        page.bars(&Bars {
            title: "Throughput".into(),
            value_label: "tasks per second".into(),
            bars: self
                .results
                .iter()
                .map(|r| (row(r), r.throughput_per_s))
                .collect(),
        });
        page.bars(&Bars {
            title: "Peak memory of the process tree".into(),
            value_label: "MiB".into(),
            bars: self
                .results
                .iter()
                .map(|r| (row(r), r.peak_rss_bytes as f64 / (1 << 20) as f64))
                .collect(),
        });
        page.finish(&serde_json::to_string_pretty(self).unwrap_or_default())
    }

    /// One sentence per row that did not finish with serial's answers (failed tasks, or
    /// different answers); empty when every row did.
    pub fn failures(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| r.errors > 0 || !r.checksum_ok)
            .map(|row| match &row.first_error {
                Some(error) => format!(
                    "{} of {} tasks failed under {}; the first: {error}",
                    row.errors,
                    self.tasks,
                    row.label()
                ),
                None => format!("the answers under {} differ from serial's", row.label()),
            })
            .collect()
    }
}

impl BenchRow {
    /// `threads x2 --gil`.
    pub fn label(&self) -> String {
        label(&self.model, self.workers, self.gil)
    }
}

/// A row's name: `threads x2 --gil`.
pub fn label(model: &str, workers: usize, gil: bool) -> String {
    format!("{model} x{workers}{}", if gil { " --gil" } else { "" })
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
                    r.cpu_percent
                        .map_or_else(|| Cell::text("noise"), |p| report::fixed(p, 0, "%")),
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
        let kind = c.kind.words();
        let service = if self.results.first().is_some_and(|r| r.errors < self.tasks) {
            format!(
                "mean service time {}",
                report::seconds(c.mean_service_us / 1e6).shown
            )
        } else {
            "no serial task finished".to_string()
        };
        let mut notes = vec![
            String::new(),
            format!(
                "workload: {kind} (serial CPU/wall = {:.2}, {service})",
                c.cpu_per_wall
            ),
            format!("lecture's rule of thumb: {}", rec.reason),
            format!(
                "measured winner: {} ({})",
                rec.winner.as_deref().unwrap_or("none"),
                if rec.agree { "agrees" } else { "disagrees" }
            ),
            rec.note.clone(),
        ];
        if self.results.iter().any(|r| r.cpu_percent.is_none()) {
            notes.push(
                "CPU noise: the run was too short for the CPU counters (worker processes are \
                 counted in 10 ms clock ticks); give it more --tasks"
                    .into(),
            );
        }
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.errors > 0)
            .map(BenchRow::label)
            .collect();
        if !failed.is_empty() {
            notes.push(format!("WARNING: tasks failed under {}", failed.join(", ")));
        }
        if self.results.iter().any(|r| r.errors == 0 && !r.checksum_ok) {
            notes.push("WARNING: some model's answers differ from serial's".into());
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
