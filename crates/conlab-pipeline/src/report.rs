//! What a pipeline run measured: per stage (items, busy time, utilisation, the queue before
//! it, the wait in that queue, Little's law checked against the measurement) and overall
//! (throughput, latency percentiles), and the bottleneck named by evidence.

use conlab_measure::export::Tabular;
use conlab_measure::report::{self as cells, Cell, Column, Table, Tone};
use serde::{Deserialize, Serialize};

/// The schema id of [`Report`]'s JSON.
pub const SCHEMA: &str = "conlab.pipeline/1";

/// One stage's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// Its workers.
    pub workers: usize,
    /// Items its workers finished.
    pub items: u64,
    /// Time its workers spent on items, summed over the workers, in seconds.
    pub busy_s: f64,
    /// busy / (wall x workers): 1 is a stage that never waited.
    pub utilisation: f64,
    /// The queue before the stage: its capacity in items.
    pub queue_capacity: usize,
    /// Mean items in that queue, sampled.
    pub queue_mean: f64,
    /// Most items seen in that queue.
    pub queue_max: usize,
    /// Mean time an item waited in that queue, in milliseconds.
    pub wait_ms: f64,
    /// Little's law for that queue: L = lambda W.
    pub little: Little,
}

/// Little's law for one queue: the mean length measured by sampling, against the arrival
/// rate times the mean wait, both measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Little {
    /// L, the sampled mean length.
    pub l_sampled: f64,
    /// lambda, the items per second that passed the queue.
    pub lambda_per_s: f64,
    /// W, the mean wait in seconds.
    pub w_s: f64,
    /// lambda x W.
    pub l_predicted: f64,
}

impl Little {
    /// True when the sampled length and lambda x W agree within `tolerance` (relative), or
    /// both are below half an item (a queue that stays empty: sampling cannot tell more).
    pub fn holds(&self, tolerance: f64) -> bool {
        if self.l_sampled < 0.5 && self.l_predicted < 0.5 {
            return true;
        }
        let larger = self.l_sampled.max(self.l_predicted);
        (self.l_sampled - self.l_predicted).abs() <= tolerance * larger
    }
}

/// The stage that limits the pipeline, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    /// The stage's name.
    pub stage: String,
    /// The evidence, in words with the figures.
    pub evidence: String,
    /// True when the queues showed it (full before, empty after); false when only the
    /// utilisation did.
    pub by_queues: bool,
}

/// Latency of items from entering the pipeline to leaving it, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The slowest item.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// The item and stage that stopped a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("stage {stage}, item {item}: {message}")]
pub struct Failure {
    /// The stage's name.
    pub stage: String,
    /// The item's sequence number, from 0.
    pub item: u64,
    /// The error, or the panic's message.
    pub message: String,
}

/// A pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// `threads` or `async`.
    pub model: String,
    /// Cores the run was allowed (`--cores`), or all of them.
    pub cores: usize,
    /// Items handed between stages at once.
    pub batch: usize,
    /// Results leave in input order.
    pub ordered: bool,
    /// Items that entered.
    pub items_in: u64,
    /// Items that left the last stage (and reached the sink).
    pub items_out: u64,
    /// Wall time, in seconds.
    pub wall_s: f64,
    /// items_out / wall.
    pub throughput_per_s: f64,
    /// Item latency.
    pub latency: Latency,
    /// Mean time from a batch's first item to the batch's hand-off at the source, in
    /// milliseconds: the most an item waited for its batch to fill, which latency includes.
    pub batch_fill_ms: f64,
    /// Per stage, in order.
    pub stages: Vec<StageReport>,
    /// The queue before the sink: mean and most items in it.
    pub sink_queue_mean: f64,
    /// The bottleneck, when any stage was busy.
    pub bottleneck: Option<Bottleneck>,
    /// What stopped the run early, if anything.
    pub failure: Option<Failure>,
    /// The run was cancelled.
    pub cancelled: bool,
}

/// A queue is "full" for the bottleneck rule above this share of its capacity, "empty"
/// below it.
const FULL: f64 = 0.5;

/// Flink's back-pressure rule: the bottleneck is the busiest stage whose input queue is full
/// while its output queue is empty. Without such a stage, the busiest stage is named, and
/// the evidence says the queues did not show it.
pub fn bottleneck(
    stages: &[StageReport],
    sink_queue_mean: f64,
    sink_capacity: usize,
) -> Option<Bottleneck> {
    let fill = |mean: f64, cap: usize| mean / cap.max(1) as f64;
    let mut best: Option<(usize, bool)> = None;
    for (i, s) in stages.iter().enumerate() {
        let input = fill(s.queue_mean, s.queue_capacity);
        let output = match stages.get(i + 1) {
            Some(next) => fill(next.queue_mean, next.queue_capacity),
            None => fill(sink_queue_mean, sink_capacity),
        };
        let by_queues = input >= FULL && output < FULL;
        let better = match best {
            None => true,
            Some((b, b_queues)) => {
                (by_queues && !b_queues)
                    || (by_queues == b_queues && s.utilisation > stages[b].utilisation)
            }
        };
        if better {
            best = Some((i, by_queues));
        }
    }
    let (i, by_queues) = best?;
    let s = &stages[i];
    if s.busy_s == 0.0 {
        return None;
    }
    let output = match stages.get(i + 1) {
        Some(next) => fill(next.queue_mean, next.queue_capacity),
        None => fill(sink_queue_mean, sink_capacity),
    };
    let evidence = if by_queues {
        format!(
            "utilisation {:.0}%, its input queue {:.0}% full, its output queue {:.0}% full",
            s.utilisation * 100.0,
            fill(s.queue_mean, s.queue_capacity) * 100.0,
            output * 100.0
        )
    } else {
        format!(
            "the highest utilisation ({:.0}%); no queue filled before one stage and emptied \
             after it, so the queues do not confirm it",
            s.utilisation * 100.0
        )
    };
    Some(Bottleneck {
        stage: s.name.clone(),
        evidence,
        by_queues,
    })
}

impl Tabular for Report {
    fn tables(&self) -> Vec<Table> {
        let rows = self
            .stages
            .iter()
            .map(|s| {
                let little = if s.little.holds(0.25) {
                    Cell::text("holds")
                } else {
                    Cell::text(format!(
                        "L {:.1} vs lambda W {:.1}",
                        s.little.l_sampled, s.little.l_predicted
                    ))
                    .tone(Tone::Bad)
                };
                vec![
                    Cell::text(s.name.clone()),
                    cells::count(s.workers as u64),
                    cells::count(s.items),
                    Cell::number(s.utilisation, format!("{:.0}%", s.utilisation * 100.0)),
                    Cell::number(
                        s.queue_mean,
                        format!("{:.1} / {}", s.queue_mean, s.queue_capacity),
                    ),
                    cells::count(s.queue_max as u64),
                    cells::seconds(s.wait_ms / 1e3),
                    little,
                ]
            })
            .collect();
        let mut notes = vec![format!(
            "{} items in, {} out in {:.2} s: {:.0} items/s; latency p50 {:.2} ms, p99 {:.2} ms, \
             max {:.2} ms ({} model, {} cores, batches of {}{}).",
            self.items_in,
            self.items_out,
            self.wall_s,
            self.throughput_per_s,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            self.model,
            self.cores,
            self.batch,
            if self.ordered { ", in order" } else { "" }
        )];
        if self.batch > 1 {
            notes.push(format!(
                "Batching: a batch's first item waited {:.3} ms on average for it to fill (latency counts from there).",
                self.batch_fill_ms
            ));
        }
        if let Some(b) = &self.bottleneck {
            notes.push(format!("Bottleneck: {} ({}).", b.stage, b.evidence));
        }
        if let Some(f) = &self.failure {
            notes.push(format!("Stopped: {f}."));
        }
        if self.cancelled {
            notes.push("Cancelled: the items already inside were drained.".into());
        }
        vec![Table {
            title: Some("Pipeline, stage by stage".into()),
            columns: vec![
                Column::text("stage"),
                Column::number("workers"),
                Column::number("items"),
                Column::number("utilisation"),
                Column::number("queue_mean"),
                Column::number("queue_max"),
                Column::number("wait_s"),
                Column::text("little_law"),
            ],
            rows,
            notes,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, utilisation: f64, queue_mean: f64) -> StageReport {
        StageReport {
            name: name.into(),
            workers: 1,
            items: 10,
            busy_s: utilisation,
            utilisation,
            queue_capacity: 10,
            queue_mean,
            queue_max: 10,
            wait_ms: 0.0,
            little: Little {
                l_sampled: 0.0,
                lambda_per_s: 0.0,
                w_s: 0.0,
                l_predicted: 0.0,
            },
        }
    }

    #[test]
    fn the_bottleneck_is_full_before_and_empty_after() {
        // b is the busiest with a full input and an empty output.
        let stages = [
            stage("a", 0.5, 9.0),
            stage("b", 0.99, 9.0),
            stage("c", 0.3, 0.1),
        ];
        let b = bottleneck(&stages, 0.0, 10).unwrap();
        assert_eq!(b.stage, "b");
        assert!(b.by_queues, "{}", b.evidence);
        // Busy c, but its input never filled: the queue rule picks b even though c is busier.
        let stages = [
            stage("a", 0.5, 9.0),
            stage("b", 0.6, 9.0),
            stage("c", 0.9, 0.1),
        ];
        assert_eq!(bottleneck(&stages, 0.0, 10).unwrap().stage, "b");
        // No queue evidence at all: the busiest, and the evidence says so.
        let stages = [stage("a", 0.2, 0.0), stage("b", 0.7, 0.0)];
        let b = bottleneck(&stages, 0.0, 10).unwrap();
        assert_eq!(b.stage, "b");
        assert!(!b.by_queues && b.evidence.contains("do not confirm"));
    }

    #[test]
    fn littles_law_tolerates_only_the_given_error() {
        let l = Little {
            l_sampled: 10.0,
            lambda_per_s: 100.0,
            w_s: 0.09,
            l_predicted: 9.0,
        };
        assert!(l.holds(0.15));
        assert!(!l.holds(0.05));
    }
}
