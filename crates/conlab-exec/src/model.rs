//! The five concurrency models of the lecture, named once for the library and the CLI.
//!
//! The same strings are accepted everywhere (`--models serial,threads` on the command line,
//! `"threads".parse::<Model>()` in code), and a bad one is answered with the valid names.

use std::fmt;
use std::str::FromStr;

/// A way of running tasks: the lecture's vocabulary.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// One thread, tasks run one after another: the baseline for every speedup.
    Serial,
    /// A fixed pool of OS threads fed by a bounded queue (optionally under an emulated GIL).
    Threads,
    /// A fixed pool of worker processes; tasks and results cross pipes, serialised.
    Processes,
    /// A tokio event loop: I/O tasks are futures, CPU work blocks the loop.
    Async,
    /// Rayon's work-stealing pool, for data parallelism.
    Rayon,
}

impl Model {
    /// Every model, in the order the lecture introduces them.
    pub const ALL: [Model; 5] = [
        Model::Serial,
        Model::Threads,
        Model::Processes,
        Model::Async,
        Model::Rayon,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::Serial => "serial",
            Model::Threads => "threads",
            Model::Processes => "processes",
            Model::Async => "async",
            Model::Rayon => "rayon",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name that is not one of [`Model::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model `{given}`: expected one of serial, threads, processes, async, rayon")]
pub struct ParseModelError {
    /// What was given.
    pub given: String,
}

impl FromStr for Model {
    type Err = ParseModelError;

    /// Parses a model name, case-insensitively; `thread`/`process` and `tokio` are accepted
    /// as the spellings people type.
    ///
    /// ```
    /// use conlab_exec::Model;
    /// assert_eq!("threads".parse::<Model>(), Ok(Model::Threads));
    /// assert!("fibers".parse::<Model>().unwrap_err().to_string().contains("serial, threads"));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "serial" => Ok(Model::Serial),
            "threads" | "thread" => Ok(Model::Threads),
            "processes" | "process" => Ok(Model::Processes),
            "async" | "tokio" => Ok(Model::Async),
            "rayon" => Ok(Model::Rayon),
            _ => Err(ParseModelError {
                given: s.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_parses_from_its_own_name() {
        for m in Model::ALL {
            assert_eq!(m.name().parse::<Model>(), Ok(m));
            assert_eq!(m.to_string().to_uppercase().parse::<Model>(), Ok(m));
        }
    }

    #[test]
    fn unknown_model_names_the_valid_ones() {
        let e = "green-threads".parse::<Model>().unwrap_err();
        assert_eq!(e.given, "green-threads");
        assert!(e.to_string().contains("processes, async, rayon"));
    }
}
