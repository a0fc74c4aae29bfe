//! A stage: a name, a worker count and the work each worker does to one item, and the
//! `--stages` grammar that writes one (`load:1:2ms`, `move:2:spin:4ms`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conlab_work::Workload;

/// What a stage does to an item.
pub(crate) enum Work<T> {
    /// A function of the item's sequence number and the item.
    Func(Arc<dyn Fn(u64, T) -> Result<T, String> + Send + Sync>),
    /// A workload (`sleep:2ms`, `spin:2ms`) run once per item; the item passes unchanged.
    Load(Workload),
}

impl<T> Clone for Work<T> {
    fn clone(&self) -> Self {
        match self {
            Work::Func(f) => Work::Func(Arc::clone(f)),
            Work::Load(w) => Work::Load(w.clone()),
        }
    }
}

/// One stage of a pipeline.
pub struct Stage<T> {
    /// Its name, as reports show it.
    pub name: String,
    /// How many workers take items from its input queue.
    pub workers: usize,
    pub(crate) work: Work<T>,
}

impl<T> Clone for Stage<T> {
    fn clone(&self) -> Self {
        Stage {
            name: self.name.clone(),
            workers: self.workers,
            work: self.work.clone(),
        }
    }
}

impl<T> fmt::Debug for Stage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let work = match &self.work {
            Work::Func(_) => "fn".to_string(),
            Work::Load(w) => w.to_string(),
        };
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("workers", &self.workers)
            .field("work", &work)
            .finish()
    }
}

impl<T> Stage<T> {
    /// A stage whose workers apply `f` to each item (`Err` stops the pipeline and names the
    /// item; a panic is that item's error).
    pub fn func(
        name: impl Into<String>,
        workers: usize,
        f: impl Fn(u64, T) -> Result<T, String> + Send + Sync + 'static,
    ) -> Stage<T> {
        Stage {
            name: name.into(),
            workers: workers.max(1),
            work: Work::Func(Arc::new(f)),
        }
    }

    /// A stage whose workers run `workload` once per item and pass the item on.
    pub fn workload(name: impl Into<String>, workers: usize, workload: Workload) -> Stage<T> {
        Stage {
            name: name.into(),
            workers: workers.max(1),
            work: Work::Load(workload),
        }
    }

    /// The time one item takes when the work is a sleep or a spin (`None` for a function).
    pub fn service_time(&self) -> Option<Duration> {
        match &self.work {
            Work::Load(Workload::Sleep { nanos }) | Work::Load(Workload::Spin { nanos, .. }) => {
                Some(Duration::from_nanos(*nanos))
            }
            _ => None,
        }
    }
}

/// A `--stages` token that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{token}`: {problem}\n{GRAMMAR}")]
pub struct SpecError {
    /// The token as written.
    pub token: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The grammar [`parse_stages`] reads, for error messages and `--help`.
pub const GRAMMAR: &str = "\
stages: NAME:WORKERS:WORK[,NAME:WORKERS:WORK...]
  NAME     letters, digits, - and _ (each name once)
  WORKERS  1 or more
  WORK     DURATION (a sleep, like waiting on I/O), sleep:DURATION, spin:DURATION
           (a calibrated busy loop: CPU work), or noop (the hand-off alone);
           DURATION as 2ms, 500us, 1.5s
  example  load:1:2ms,move:2:4ms,unload:1:2ms,return:2:spin:4ms";

/// Parses `load:1:2ms,move:2:spin:4ms`: stages whose work is a sleep or a spin.
pub fn parse_stages<T: 'static>(spec: &str) -> Result<Vec<Stage<T>>, SpecError> {
    let mut stages: Vec<Stage<T>> = Vec::new();
    for token in spec.split(',') {
        let err = |problem: &str| SpecError {
            token: token.to_string(),
            problem: problem.to_string(),
        };
        let token = token.trim();
        let mut parts = token.splitn(3, ':');
        let (Some(name), Some(workers), Some(work)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(err("expected NAME:WORKERS:WORK"));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err("a stage name is letters, digits, - and _"));
        }
        if stages.iter().any(|s| s.name == name) {
            return Err(err("this stage name is used twice"));
        }
        let workers: usize = workers
            .parse()
            .ok()
            .filter(|&w| w >= 1)
            .ok_or_else(|| err("WORKERS is a whole number, 1 or more"))?;
        if work == "noop" {
            // Nothing but the hand-off: what moving an item between stages costs.
            stages.push(Stage::func(name, workers, |_, item| Ok(item)));
            continue;
        }
        let work = if work.contains(':') {
            work.to_string()
        } else {
            format!("sleep:{work}")
        };
        let workload = match Workload::parse(&work) {
            Ok(w @ (Workload::Sleep { .. } | Workload::Spin { .. })) => w,
            Ok(_) => return Err(err("WORK is sleep:DURATION or spin:DURATION")),
            Err(e) => return Err(err(&e.to_string())),
        };
        stages.push(Stage::workload(name, workers, workload));
    }
    Ok(stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_reads_sleeps_and_spins_and_names_a_bad_token() {
        let stages: Vec<Stage<()>> = parse_stages("load:1:2ms,move:2:spin:1ms").unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].service_time(), Some(Duration::from_millis(2)));
        assert_eq!(stages[1].workers, 2);
        assert!(matches!(stages[1].work, Work::Load(Workload::Spin { .. })));
        for bad in [
            "load",
            "load:0:2ms",
            "load:x:2ms",
            "lo ad:1:2ms",
            "load:1:fast",
            "load:1:primes:10",
            "a:1:1ms,a:1:1ms",
        ] {
            let e = parse_stages::<()>(bad).unwrap_err();
            assert!(bad.contains(e.token.trim()), "{bad}: {e}");
            assert!(e.to_string().contains("NAME:WORKERS:WORK"), "{e}");
        }
    }
}
