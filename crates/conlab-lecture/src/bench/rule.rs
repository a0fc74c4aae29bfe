//! The lecture's rule of thumb, applied to a measured workload: the serial run classifies
//! the work (CPU-bound, I/O-bound, mixed), the rule picks a model, and the fastest correct
//! row is set beside it.
//!
//! ```text
//! CPU bound                                  -> processes (parallel workers)
//! I/O bound, fast I/O, few connections       -> threads
//! I/O bound, slow I/O, many connections      -> an async event loop
//! ```

use serde::Serialize;

use super::report::BenchRow;

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
    /// The serial run was too short for the CPU counters to tell (under 10 ms, or more
    /// CPU than one thread can use): no rule applies.
    TooShort,
}

impl Bound {
    /// The kind in words, as the reports say it.
    pub fn words(self) -> &'static str {
        match self {
            Bound::CpuBound => "CPU-bound",
            Bound::IoBound => "I/O-bound",
            Bound::Mixed => "mixed",
            Bound::TooShort => "too short to classify",
        }
    }
}

/// Below this serial wall time, CPU counters (10 ms clock ticks for worker processes and
/// children) cannot classify a run.
pub const MIN_CLASSIFY_WALL_S: f64 = 0.010;

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
/// I/O-bound when <= 30%; too short to tell under [`MIN_CLASSIFY_WALL_S`], or when one thread
/// seems to have used more than 1.2 CPUs (impossible: the counters' granularity showing).
pub fn classify(serial_cpu_s: f64, serial_wall_s: f64, mean_service_us: f64) -> Classification {
    let cpu_per_wall = if serial_wall_s > 0.0 {
        serial_cpu_s / serial_wall_s
    } else {
        0.0
    };
    let kind = if serial_wall_s < MIN_CLASSIFY_WALL_S || cpu_per_wall > 1.2 {
        Bound::TooShort
    } else if cpu_per_wall >= 0.7 {
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
        Bound::TooShort => (
            "none",
            "the serial run was too short to classify the work: give it more --tasks",
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
    let rule_ran = rows.iter().any(|r| r.model == rule);
    let note = match winner {
        None => "no model finished without errors".to_string(),
        Some(w) if class.kind == Bound::TooShort => format!(
            "{} was fastest, but a run this short is no evidence for or against a rule",
            w.label()
        ),
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
        Some(w) if !rule_ran => format!(
            "{rule} did not run (it is not in --models), so nothing can be set beside the \
             rule of thumb; {} was the fastest of the models that ran",
            w.label()
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use conlab_measure::Percentiles;

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
            cpu_percent: Some(50.0),
            peak_rss_bytes: 1 << 20,
            speedup: 1.0,
            efficiency: 1.0,
            errors: 0,
            first_error: None,
            checksum_ok: true,
        }
    }

    #[test]
    fn busy_serial_runs_are_cpu_bound_and_idle_ones_io_bound() {
        assert_eq!(classify(0.98, 1.0, 20_000.0).kind, Bound::CpuBound);
        assert_eq!(classify(0.01, 1.0, 10_000.0).kind, Bound::IoBound);
        assert_eq!(classify(0.5, 1.0, 100.0).kind, Bound::Mixed);
        assert_eq!(classify(1.0, 0.0, 0.0).kind, Bound::TooShort);
        assert_eq!(
            classify(0.003, 0.004, 1.0).kind,
            Bound::TooShort,
            "4 ms is too short"
        );
        assert_eq!(
            classify(0.49, 0.01, 1.0).kind,
            Bound::TooShort,
            "48 CPUs from one thread"
        );
        let r = recommend(&classify(0.0, 0.001, 1.0), &[row("serial", 1, 10.0)]);
        assert_eq!((r.rule_of_thumb.as_str(), r.agree), ("none", false));
        assert!(r.note.contains("no evidence"), "{}", r.note);
        let only_serial = recommend(&classify(0.99, 1.0, 5_000.0), &[row("serial", 1, 10.0)]);
        assert!(
            only_serial.note.contains("processes did not run"),
            "{}",
            only_serial.note
        );
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
