//! What can go wrong while running an experiment or a benchmark, in the user's terms.

/// The lecture crate's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pipeline could not run.
    #[error(transparent)]
    Pipeline(#[from] conlab_pipeline::PipelineError),
    /// A pool could not be started, or a task could not be submitted.
    #[error(transparent)]
    Exec(#[from] conlab_exec::Error),
    /// A workload spec that is not one.
    #[error(transparent)]
    Workload(#[from] conlab_work::SpecError),
    /// A load that cannot run as asked (more connections than descriptors, ...).
    #[error(transparent)]
    Load(#[from] conlab_http::load::ConfigError),
    /// A fetch that cannot run as asked (more connections than descriptors, ...).
    #[error(transparent)]
    Fetch(#[from] conlab_http::fetch::FetchError),
    /// A row of a benchmark could not run.
    #[error("running {row}")]
    Row {
        /// The row: `processes x2`.
        row: String,
        /// Why.
        source: conlab_exec::Error,
    },
    /// A server of the comparison could not be started.
    #[error("starting {server}: {why}")]
    Launch {
        /// The server: `prefork`, `nginx`.
        server: String,
        /// Why.
        why: String,
    },
    /// A setting that cannot run.
    #[error("{option}: {problem}")]
    Config {
        /// The option, as the command line spells it: `--tasks`.
        option: &'static str,
        /// What is wrong with its value, and what it may be.
        problem: String,
    },
}

/// A task refused by a pool that has shut down (the task itself is of no use to the caller).
impl<T> From<conlab_exec::SubmitError<T>> for Error {
    fn from(_: conlab_exec::SubmitError<T>) -> Self {
        Error::Exec(conlab_exec::Error::Closed)
    }
}
