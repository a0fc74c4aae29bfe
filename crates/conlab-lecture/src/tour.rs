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

impl TourReport {
    /// The tour as one self-contained HTML page: each claim as the lecture makes it, its
    /// verdict and why, what ran, a chart of each finding's series (one per pair of axes)
    /// with its data underneath, and the report's JSON (`json`, as `--json` writes it).
    pub fn html(&self, json: &str) -> String {
        use conlab_measure::html::{Chart, Line, Page, escape};
        let mut page = Page::new("conlab tour: the lecture's claims, measured here");
        page.paragraph(&format!(
            "{} {} cores, {} workers per pool, {:?} budget.",
            self.summary(),
            self.cores,
            self.workers,
            self.budget
        ));
        for f in &self.findings {
            let verdict = &f.outcome.verdict;
            let class = match verdict {
                Verdict::Held { .. } => "held",
                Verdict::NotHeld { .. } => "not-held",
                Verdict::CannotShow { .. } => "cannot-show",
            };
            page.raw(&format!(
                "<section id=\"{}\"><h2>{}</h2><blockquote>\u{201c}{}\u{201d} <cite>({})</cite></blockquote>\
                 <p class=\"verdict {class}\">{}: {}</p><p><strong>Set-up:</strong> {}</p>\
                 <p><strong>Lecture:</strong> {}<br><strong>Measured:</strong> {}</p>",
                escape(f.name),
                escape(f.title),
                escape(f.claim.quote),
                escape(f.claim.slide),
                escape(verdict.word()),
                escape(verdict.reason()),
                escape(&f.outcome.setup),
                escape(f.claim.figure),
                escape(&f.outcome.measured),
            ));
            // One chart per pair of axes, in the order the series come.
            let mut axes: Vec<(crate::finding::Axis, crate::finding::Axis)> = Vec::new();
            for s in &f.outcome.series {
                if !axes.contains(&(s.x, s.y)) {
                    axes.push((s.x, s.y));
                }
            }
            let label = |a: crate::finding::Axis| {
                if a.unit.is_empty() {
                    a.label.to_string()
                } else {
                    format!("{} ({})", a.label, a.unit)
                }
            };
            for (x, y) in axes {
                let lines = f
                    .outcome
                    .series
                    .iter()
                    .filter(|s| s.x == x && s.y == y)
                    .map(|s| Line {
                        name: s.name.clone(),
                        points: s.points.clone(),
                        reference: ["ideal", "Little", "theory"]
                            .iter()
                            .any(|w| s.name.contains(w)),
                    })
                    .collect();
                page.chart(&Chart {
                    title: format!("{}: {} by {}", f.title, y.label, x.label),
                    x_label: label(x),
                    y_label: label(y),
                    lines,
                    log_y: false,
                });
            }
            if !f.outcome.details.is_empty() {
                page.raw(&format!(
                    "<details><summary>Details</summary><pre>{}</pre></details>",
                    escape(&f.outcome.details.join("\n"))
                ));
            }
            page.raw("</section>");
        }
        page.finish(json)
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
    use super::*;
    use crate::finding::{Axis, Claim, Finding, Outcome, Series};

    #[test]
    fn the_tour_page_shows_each_claim_its_verdict_and_its_chart() {
        let mut report = TourReport::new(2, 2, Budget::Quick);
        report.push(Finding {
            name: "scrape",
            title: "Many slow pages",
            claim: Claim {
                quote: "I/O bound, slow I/O, many connections -> asyncio",
                slide: "asyncio",
                figure: "the rule of thumb",
            },
            outcome: Outcome {
                setup: "pages of 50 ms".into(),
                details: vec!["threads at 20: 343 pages/s".into()],
                measured: "2.3x".into(),
                figures: Vec::new(),
                series: ["threads", "async", "Little's law"]
                    .iter()
                    .map(|n| Series {
                        name: n.to_string(),
                        x: Axis {
                            label: "connections",
                            unit: "",
                        },
                        y: Axis {
                            label: "pages per second",
                            unit: "pages/s",
                        },
                        points: vec![[20.0, 300.0], [1000.0, 9000.0]],
                    })
                    .collect(),
                verdict: Verdict::held("2.3x, at least 1.2x"),
            },
            machine: None,
            wall_s: 1.0,
        });
        let html = report.html("{}");
        assert!(html.contains("<p class=\"verdict held\">held: 2.3x, at least 1.2x</p>"));
        assert!(html.contains("I/O bound, slow I/O, many connections -&gt; asyncio"));
        assert_eq!(
            html.matches("<svg").count(),
            1,
            "one chart for one pair of axes"
        );
        assert_eq!(html.matches("class=\"series s").count(), 2);
        assert_eq!(html.matches("class=\"series reference\"").count(), 1);
        assert!(html.contains("pages per second (pages/s)"));
        assert!(html.contains("1 of 1 claims held"));
    }

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
            conlab_http::fetch::SUMMARY_SCHEMA,
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
