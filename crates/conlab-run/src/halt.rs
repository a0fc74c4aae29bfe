//! `--halt`: when to stop early, in GNU parallel's syntax: `now,fail=1`, `soon,fail=3`,
//! `now,success=1`, `soon,done=10%`, or the old `never` / `1` (soon,fail=1) / `2`
//! (now,fail=1).

use std::fmt;
use std::str::FromStr;

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

/// How many: a number of jobs, or a percentage of the jobs started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// This many jobs.
    Jobs(u64),
    /// This percentage of the jobs started so far.
    Percent(f64),
}

/// A halt policy; `None` runs everything.
#[derive(Debug, Clone, Copy, PartialEq)]
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
        let fail_one = |when| {
            Some(Halt {
                when,
                count: Count::Fail,
                threshold: Threshold::Jobs(1),
            })
        };
        match s.trim() {
            "never" | "0" => return Ok(None),
            "1" => return Ok(fail_one(When::Soon)),
            "2" => return Ok(fail_one(When::Now)),
            _ => {}
        }
        let (when, rule) = s.split_once(',').ok_or_else(err)?;
        let when = match when.trim() {
            "now" => When::Now,
            "soon" => When::Soon,
            _ => return Err(err()),
        };
        let (count, n) = rule.split_once('=').ok_or_else(err)?;
        let count = match count.trim() {
            "fail" => Count::Fail,
            "success" => Count::Success,
            "done" => Count::Done,
            _ => return Err(err()),
        };
        let n = n.trim();
        let threshold = match n.strip_suffix('%') {
            Some(p) => Threshold::Percent(
                p.parse()
                    .ok()
                    .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
                    .ok_or_else(err)?,
            ),
            None => Threshold::Jobs(n.parse().ok().filter(|n| *n >= 1).ok_or_else(err)?),
        };
        Ok(Some(Halt {
            when,
            count,
            threshold,
        }))
    }

    /// True when `counted` jobs of `started` meet the threshold.
    pub fn reached(&self, counted: u64, started: u64) -> bool {
        match self.threshold {
            Threshold::Jobs(n) => counted >= n,
            Threshold::Percent(p) => started > 0 && counted as f64 * 100.0 / started as f64 >= p,
        }
    }
}

impl FromStr for When {
    type Err = HaltError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "now" => Ok(When::Now),
            "soon" => Ok(When::Soon),
            _ => Err(HaltError(s.to_string())),
        }
    }
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
        let h = Halt::parse("now,fail=1").unwrap().unwrap();
        assert_eq!(
            (h.when, h.count, h.threshold),
            (When::Now, Count::Fail, Threshold::Jobs(1))
        );
        assert_eq!(
            Halt::parse("soon,fail=10%").unwrap().unwrap().to_string(),
            "soon,fail=10%"
        );
        assert_eq!(Halt::parse("2").unwrap().unwrap().to_string(), "now,fail=1");
        for bad in [
            "later,fail=1",
            "now,fail=0",
            "now,oops=1",
            "now",
            "now,fail=150%",
        ] {
            assert!(Halt::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thresholds() {
        let h = Halt::parse("soon,fail=50%").unwrap().unwrap();
        assert!(!h.reached(1, 3));
        assert!(h.reached(2, 4));
    }
}
