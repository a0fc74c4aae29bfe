//! The derived figures every report shows, each defined once: throughput, speedup,
//! efficiency, and the median they are taken over. A report computes them through these functions, never inline, so that
//! `bench`, `load`, the server comparison and the tour cannot drift apart.

use std::time::Duration;

/// Completed actions per second of wall time: the lecture's throughput. 0 for an empty span
/// (nothing can be said of a rate over no time).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(conlab_measure::throughput(50, Duration::from_millis(500)), 100.0);
/// assert_eq!(conlab_measure::throughput(50, Duration::ZERO), 0.0);
/// ```
pub fn throughput(completed: u64, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        completed as f64 / wall.as_secs_f64()
    }
}

/// How many times faster than the baseline: baseline wall time / this wall time (0 when this
/// run took no measurable time).
pub fn speedup(baseline_wall: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        baseline_wall.as_secs_f64() / wall.as_secs_f64()
    }
}

/// The median of some figures: the middle one, or the mean of the two middle ones for an
/// even count (0 for none). NaNs sort last, as `f64::total_cmp` puts them.
///
/// ```
/// assert_eq!(conlab_measure::median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(conlab_measure::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// ```
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The share of the ideal speedup reached: speedup / workers (1.0 = every worker fully used).
pub fn efficiency(speedup: f64, workers: usize) -> f64 {
    speedup / workers.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speedup_and_efficiency_follow_their_definitions() {
        let s = speedup(Duration::from_millis(200), Duration::from_millis(100));
        assert!((s - 2.0).abs() < 1e-12);
        assert!((efficiency(s, 4) - 0.5).abs() < 1e-12);
        assert_eq!(speedup(Duration::from_secs(1), Duration::ZERO), 0.0);
        assert_eq!(efficiency(2.0, 0), 2.0);
    }
}
