//! The report of `conlab tour`: every finding, and how many claims held, did not hold, or
//! could not be shown here. Its JSON is [`TOUR_SCHEMA`], documented in
//! `docs/json-schema.md`.

use serde::Serialize;

use crate::experiments::Budget;
use crate::finding::{Finding, Verdict};

/// The schema id of [`TourReport`]'s JSON. Version 2: a verdict with its reason replaced
/// the `held` flag, and findings carry their claim, series and the machine's load.
pub const TOUR_SCHEMA: &str = "conlab.tour/2";

/// Everything the tour found.
#[derive(Debug, Clone, Serialize)]
pub struct TourReport {
    /// [`TOUR_SCHEMA`].
    pub schema: &'static str,
    /// Cores this process may use.
    pub cores: usize,
    /// Workers per pool.
    pub workers: usize,
    /// How much work each experiment did.
    pub budget: Budget,
    /// One per experiment run, in the lecture's order.
    pub findings: Vec<Finding>,
    /// Claims that held.
    pub held: usize,
    /// Claims the measurement contradicted.
    pub not_held: usize,
    /// Claims this machine or moment could not test.
    pub cannot_show: usize,
}

impl TourReport {
    /// An empty report.
    pub fn new(cores: usize, workers: usize, budget: Budget) -> Self {
        TourReport {
            schema: TOUR_SCHEMA,
            cores,
            workers,
            budget,
            findings: Vec::new(),
            held: 0,
            not_held: 0,
            cannot_show: 0,
        }
    }

    /// Adds a finding and counts its verdict.
    pub fn push(&mut self, finding: Finding) {
        match finding.outcome.verdict {
            Verdict::Held { .. } => self.held += 1,
            Verdict::NotHeld { .. } => self.not_held += 1,
            Verdict::CannotShow { .. } => self.cannot_show += 1,
        }
        self.findings.push(finding);
    }

    /// `9 of 10 claims held on this machine; 1 could not be shown now.`
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} of {} claims held on this machine",
            self.held,
            self.findings.len()
        );
        if self.not_held > 0 {
            text.push_str(&format!("; {} did not hold", self.not_held));
        }
        if self.cannot_show > 0 {
            text.push_str(&format!("; {} could not be shown now", self.cannot_show));
        }
        text.push('.');
        text
    }
}

impl conlab_measure::Tabular for TourReport {
    fn tables(&self) -> Vec<conlab_measure::Table> {
        use conlab_measure::report::{Cell, Column, Table};
        vec![Table {
            title: Some("conlab tour".into()),
            columns: vec![
                Column::text("experiment"),
                Column::text("measured"),
                Column::text("verdict"),
            ],
            rows: self
                .findings
                .iter()
                .map(|f| {
                    vec![
                        Cell::text(f.name),
                        Cell::text(f.outcome.measured.clone()),
                        Cell::text(f.outcome.verdict.word()),
                    ]
                })
                .collect(),
            notes: vec![self.summary()],
        }]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_schema_id_is_documented() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/json-schema.md"
        ))
        .expect("docs/json-schema.md");
        for schema in [
            super::TOUR_SCHEMA,
            crate::bench::BENCH_SCHEMA,
            crate::servers::BENCH_HTTP_SCHEMA,
            crate::probe::PROBE_SCHEMA,
            conlab_http::load::LOAD_SCHEMA,
            conlab_http::site::STATS_SCHEMA,
            conlab_http::server::ready::READY_SCHEMA,
        ] {
            assert!(
                doc.contains(&format!("## `{schema}`")),
                "docs/json-schema.md has no section for {schema}"
            );
        }
    }
}
