//! The report of `conlab load` ([`LOAD_SCHEMA`]): what a run measured, in wrk's terms, as the
//! JSON `--json` writes and the text the CLI prints are both made from.

use std::collections::BTreeMap;

use conlab_measure::LatencyRecorder;
use serde::Serialize;

use super::{LoadConfig, LoadResult};

/// The schema id of [`LoadReport`].
pub const LOAD_SCHEMA: &str = "conlab.load/1";

/// A latency distribution in microseconds, with wrk's percentiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Median.
    pub p50: u64,
    /// 75th percentile.
    pub p75: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Slowest.
    pub max: u64,
}

impl LatencySummary {
    /// The percentiles as points of an HdrHistogram-style curve: x in nines (1 is 90%, 2 is
    /// 99%, 3 is 99.9%), y in milliseconds.
    pub fn curve(&self) -> Vec<[f64; 2]> {
        [
            (0.5, self.p50),
            (0.75, self.p75),
            (0.9, self.p90),
            (0.99, self.p99),
            (0.999, self.p999),
            (0.9999, self.p9999),
        ]
        .iter()
        .map(|(q, us)| [-(1.0_f64 - q).log10(), *us as f64 / 1000.0])
        .collect()
    }

    /// The summary of a recorder.
    pub fn of(r: &LatencyRecorder) -> Self {
        let p = r.percentiles();
        LatencySummary {
            mean: p.mean,
            stdev: r.stdev(),
            p50: p.p50,
            p75: r.quantile(0.75),
            p90: p.p90,
            p99: p.p99,
            p999: p.p999,
            p9999: r.quantile(0.9999),
            max: p.max,
        }
    }
}

/// Everything one `conlab load` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// [`LOAD_SCHEMA`].
    pub schema: &'static str,
    /// The URL loaded.
    pub url: String,
    /// Connections kept open.
    pub connections: usize,
    /// Event-loop threads.
    pub threads: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Open loop: requests per second asked for.
    pub rate: Option<f64>,
    /// Responses, of any status.
    pub requests: u64,
    /// 2xx responses.
    pub successes: u64,
    /// Wall time of the run.
    pub duration_s: f64,
    /// `requests` per second.
    pub requests_per_s: f64,
    /// `successes` per second.
    pub successes_per_s: f64,
    /// Response bytes per second.
    pub bytes_per_s: f64,
    /// Latency (corrected, from the intended send time, in open-loop runs).
    pub latency_us: LatencySummary,
    /// Open loop only: latency from the actual send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncorrected_latency_us: Option<LatencySummary>,
    /// Responses by status code.
    pub status: BTreeMap<String, u64>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Why the first connect failed, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Ended early (Ctrl-C): the figures are those of the run until then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

impl LoadReport {
    /// The run as a self-contained HTML page (`load --html`): the latency percentile curve
    /// on a log axis (corrected and uncorrected side by side for an open loop), responses by
    /// status, errors by kind, and this report's JSON.
    pub fn html(&self) -> String {
        use conlab_measure::html::{Bars, Chart, Line, Page};
        let mut page = Page::new(&format!("conlab load {}", self.url));
        page.paragraph(&format!(
            "{} requests in {:.2} s: {:.0} requests/s ({:.0} 2xx/s), {} connections on {} threads{}{}.",
            self.requests,
            self.duration_s,
            self.requests_per_s,
            self.successes_per_s,
            self.connections,
            self.threads,
            self.rate.map_or(String::new(), |r| format!(", open loop at {r} requests/s")),
            if self.interrupted { "; interrupted" } else { "" }
        ));
        let mut lines = vec![Line {
            name: if self.rate.is_some() {
                "corrected (from the intended send)".into()
            } else {
                "latency".into()
            },
            points: self.latency_us.curve(),
            reference: false,
        }];
        if let Some(u) = &self.uncorrected_latency_us {
            lines.push(Line {
                name: "uncorrected (from the actual send)".into(),
                points: u.curve(),
                reference: false,
            });
        }
        page.chart(&Chart {
            title: "Latency by percentile".into(),
            x_label: "percentile, in nines (1 = 90%, 2 = 99%, 3 = 99.9%, 4 = 99.99%)".into(),
            y_label: "latency (ms)".into(),
            lines,
            log_y: true,
        });
        let bars =
            |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
        page.bars(&Bars {
            title: "Responses by status".into(),
            value_label: "responses".into(),
            bars: bars(&self.status),
        });
        if !self.errors.is_empty() {
            page.bars(&Bars {
                title: "Errors by kind".into(),
                value_label: "errors".into(),
                bars: bars(&self.errors),
            });
        }
        page.finish(&serde_json::to_string_pretty(self).unwrap_or_default())
    }

    /// The report of a run of `config` on `url`.
    pub fn new(url: &str, config: &LoadConfig, r: &LoadResult) -> Self {
        let per_s = |n: u64| conlab_measure::throughput(n, r.duration);
        LoadReport {
            schema: LOAD_SCHEMA,
            url: url.to_string(),
            connections: config.connections,
            threads: config.threads.clamp(1, config.connections.max(1)),
            pipeline: config.pipeline,
            rate: config.rate,
            requests: r.requests,
            successes: r.successes,
            duration_s: r.duration.as_secs_f64(),
            requests_per_s: per_s(r.requests),
            successes_per_s: per_s(r.successes),
            bytes_per_s: per_s(r.bytes),
            latency_us: LatencySummary::of(&r.latency),
            uncorrected_latency_us: r.uncorrected.as_ref().map(LatencySummary::of),
            status: r.status.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            errors: r
                .errors
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            first_error: r.first_error.clone(),
            interrupted: r.interrupted,
        }
    }

    /// True when there was at least one response, every one 2xx, and no error.
    pub fn clean(&self) -> bool {
        self.errors.is_empty() && self.successes == self.requests && self.requests > 0
    }

    /// What went wrong, in one sentence; `None` for a [clean](Self::clean) run.
    pub fn failure(&self) -> Option<String> {
        if self.clean() {
            return None;
        }
        let errors: u64 = self.errors.values().sum();
        Some(if self.requests == 0 {
            format!(
                "no responses in {:.2} s{}",
                self.duration_s,
                self.first_error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" ({e})"))
            )
        } else {
            format!(
                "{} responses were not 2xx and {errors} requests failed",
                self.requests - self.successes
            )
        })
    }
}

impl conlab_measure::Tabular for LoadReport {
    /// `conlab load` prints wrk's layout itself; this report has no table form.
    fn tables(&self) -> Vec<conlab_measure::Table> {
        Vec::new()
    }
}
