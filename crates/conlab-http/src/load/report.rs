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
