//! Latency recording: an HdrHistogram in microseconds, 3 significant digits, so memory is
//! fixed however many samples arrive, and percentiles are exact to 0.1%.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency recorded exactly: one hour. Longer ones are clamped to it.
const MAX_US: u64 = 3_600_000_000;

/// Records durations and summarises them.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder (1 us to 1 h, 3 significant digits).
    pub fn new() -> Self {
        LatencyRecorder {
            histogram: Histogram::new_with_bounds(1, MAX_US, 3)
                .expect("constant bounds are valid for an HdrHistogram"),
        }
    }

    /// Records one duration (sub-microsecond ones count as 1 us).
    pub fn record(&mut self, duration: Duration) {
        let us = u64::try_from(duration.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.histogram.saturating_record(us);
    }

    /// Adds every sample of `other` (histograms merge exactly).
    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value at quantile `q` (0.0 to 1.0), in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.histogram.is_empty() {
            0
        } else {
            self.histogram.value_at_quantile(q)
        }
    }

    /// The standard deviation, in microseconds.
    pub fn stdev(&self) -> f64 {
        if self.histogram.is_empty() {
            0.0
        } else {
            self.histogram.stdev()
        }
    }

    /// p50, p90, p99, p99.9, max and mean, in microseconds.
    pub fn percentiles(&self) -> Percentiles {
        let h = &self.histogram;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// A latency summary in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_thousand() {
        let mut r = LatencyRecorder::new();
        for us in 1..=1000 {
            r.record(Duration::from_micros(us));
        }
        let p = r.percentiles();
        assert_eq!(r.count(), 1000);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (500, 900, 990, 1000));
        assert!((p.mean - 500.5).abs() < 0.5);
    }

    #[test]
    fn merging_adds_samples_and_empty_is_zero() {
        assert_eq!(LatencyRecorder::new().percentiles(), Percentiles::default());
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(3));
        a.merge(&b);
        assert_eq!(a.count(), 2);
        // 3 significant digits: 3000 us is reported within 0.1%.
        assert!((2997..=3003).contains(&a.percentiles().max));
    }
}
