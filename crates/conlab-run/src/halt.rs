//! `--halt`: when to stop early, and the exit status that follows, exactly as GNU parallel
//! 20221122 computes them (its `parse_halt`, `should_we_halt` and `halt`): `now,fail=1`,
//! `soon,fail=3`, `now,success=1`, `soon,done=10%`, the old `0` (never), `1` (soon,fail=1),
//! `2` (now,fail=1), `-1` (soon,success=1), `-2` (now,success=1), and `N%` (soon,fail=N%).
//!
//! A percentage is of all the jobs (GNU counts them before starting any). Exit status, as
//! GNU's man page gives it: `fail=1` (or `done=1`) the status of the job that made it halt
//! (128+N for signal N); another count: the number of failed jobs (101 above 100); a
//! percentage: the percentage of jobs that failed, rounded up; `success`: 0.

use std::fmt;

/// Stop at once (killing running jobs) or after the running jobs finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Kill running jobs and stop.
    Now,
    /// Start no new job; let running ones finish.
    Soon,
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Failed jobs.
    Fail,
    /// Succeeded jobs.
    Success,
    /// Finished jobs.
    Done,
}

/// How many: a number of jobs, or a percentage of all the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// This many jobs.
    Jobs(u64),
    /// This percentage of all the jobs.
    Percent(u64),
}

/// A halt policy; `None` runs everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halt {
    /// Now or soon.
    pub when: When,
    /// What is counted.
    pub count: Count,
    /// When to stop.
    pub threshold: Threshold,
}

/// A `--halt` value that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad --halt `{0}`: use now|soon,fail|success|done=N or N% (e.g. now,fail=1, soon,fail=10%), or never"
)]
pub struct HaltError(pub String);

impl Halt {
    /// Parses a `--halt` value; `never` is `Ok(None)`.
    pub fn parse(s: &str) -> Result<Option<Halt>, HaltError> {
        let err = || HaltError(s.to_string());
        let expanded = match s {
            "0" => "never".to_string(),
            "1" => "soon,fail=1".into(),
            "2" => "now,fail=1".into(),
            "-1" => "soon,success=1".into(),
            "-2" => "now,success=1".into(),
            p if p
                .strip_suffix('%')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
            {
                format!("soon,fail={p}")
            }
            other => other.to_string(),
        };
        let mut parts = expanded.split([',', '=']);
        let when = match parts.next() {
            Some("never") => return Ok(None),
            Some("now") => When::Now,
            Some("soon") => When::Soon,
            _ => return Err(err()),
        };
        let count = match parts.next() {
            Some("fail") => Count::Fail,
            Some("success") => Count::Success,
            Some("done") => Count::Done,
            _ => return Err(err()),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let threshold = match parts.next() {
            Some(p) if p.strip_suffix('%').is_some_and(digits) => {
                Threshold::Percent(p[..p.len() - 1].parse().map_err(|_| err())?)
            }
            Some(n) if digits(n) => Threshold::Jobs(n.parse().map_err(|_| err())?),
            _ => return Err(err()),
        };
        Ok(Some(Halt {
            when,
            count,
            threshold,
        }))
    }

    /// True when the threshold is a percentage of all jobs: they must be counted first.
    pub fn needs_total(&self) -> bool {
        matches!(self.threshold, Threshold::Percent(_))
    }

    /// GNU's status line for a finished job this policy counts ("failed", "succeeded",
    /// "finished"), or `None` when it does not count it.
    pub fn announces(&self, ok: bool) -> Option<&'static str> {
        match (self.count, ok) {
            (Count::Fail, false) => Some("failed"),
            (Count::Success, true) => Some("succeeded"),
            (Count::Done, _) => Some("finished"),
            _ => None,
        }
    }

    /// True when, after a job this policy counts, `counted` jobs of `total` meet it.
    pub fn reached(&self, counted: u64, total: u64) -> bool {
        match self.threshold {
            Threshold::Jobs(n) => counted >= n,
            Threshold::Percent(p) => counted as f64 >= total as f64 * p as f64 / 100.0,
        }
    }

    /// The exit status when the policy fires on a job that exited with `status` (`128+N`
    /// after signal N), with `failed` of `total` jobs failed so far.
    pub fn exit_when_fired(&self, status: i32, failed: u64, total: u64) -> i32 {
        match (self.count, self.threshold) {
            // GNU leaves the status undefined for a count of 0: exit 0.
            (Count::Success, _) | (_, Threshold::Jobs(0)) => 0,
            (_, Threshold::Jobs(1)) => status,
            (_, Threshold::Percent(_)) => percent(failed, total),
            (_, Threshold::Jobs(_)) => failed.min(101) as i32,
        }
    }

    /// The exit status of a run the policy never stopped.
    pub fn exit_at_end(&self, failed: u64, started: u64) -> i32 {
        match self.threshold {
            Threshold::Percent(_) => percent(failed, started),
            Threshold::Jobs(0) => 0,
            Threshold::Jobs(_) => failed.min(101) as i32,
        }
    }
}

fn percent(failed: u64, of: u64) -> i32 {
    (failed as f64 * 100.0 / of.max(1) as f64).ceil().min(255.0) as i32
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = if self.when == When::Now {
            "now"
        } else {
            "soon"
        };
        let count = match self.count {
            Count::Fail => "fail",
            Count::Success => "success",
            Count::Done => "done",
        };
        match self.threshold {
            Threshold::Jobs(n) => write!(f, "{when},{count}={n}"),
            Threshold::Percent(p) => write!(f, "{when},{count}={p}%"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_parallels_halt_forms_parse() {
        assert_eq!(Halt::parse("never"), Ok(None));
        assert_eq!(Halt::parse("0"), Ok(None));
        let h = Halt::parse("now,fail=1").unwrap().unwrap();
        assert_eq!(
            (h.when, h.count, h.threshold),
            (When::Now, Count::Fail, Threshold::Jobs(1))
        );
        for (given, read) in [
            ("soon,fail=10%", "soon,fail=10%"),
            ("2", "now,fail=1"),
            ("1", "soon,fail=1"),
            ("-1", "soon,success=1"),
            ("-2", "now,success=1"),
            ("20%", "soon,fail=20%"),
            ("now,done=3", "now,done=3"),
        ] {
            assert_eq!(Halt::parse(given).unwrap().unwrap().to_string(), read);
        }
        for bad in [
            "later,fail=1",
            "now,oops=1",
            "now",
            "now,fail=1.5%",
            "now,fail=x",
            "3",
        ] {
            assert!(Halt::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thresholds_and_exit_statuses_follow_gnu() {
        let h = Halt::parse("soon,fail=20%").unwrap().unwrap();
        assert!(!h.reached(1, 10));
        assert!(h.reached(2, 10));
        // parallel -j1 --halt soon,fail=20% 'exit {}' ::: 0 1 0 0 0 0 0 0 0 2 -> 20
        assert_eq!(h.exit_when_fired(2, 2, 10), 20);
        let h = Halt::parse("now,fail=1").unwrap().unwrap();
        assert_eq!(h.exit_when_fired(3, 1, 10), 3);
        let h = Halt::parse("now,fail=2").unwrap().unwrap();
        assert_eq!(h.exit_when_fired(7, 2, 10), 2);
        let h = Halt::parse("now,success=2").unwrap().unwrap();
        assert_eq!(h.exit_when_fired(0, 5, 10), 0);
        assert_eq!(h.announces(true), Some("succeeded"));
        assert_eq!(h.announces(false), None);
        let h = Halt::parse("soon,fail=50%").unwrap().unwrap();
        assert_eq!(h.exit_at_end(1, 10), 10);
    }
}
