//! # conlab-lecture: the lecture's claims, as experiments that measure them
//!
//! Every claim of the lecture that can be measured is an experiment here, one module each
//! under [`experiments`], in the lecture's order: the claim (quoted, with its slide), the
//! set-up, a measurement, and a verdict with the threshold it was judged by. An experiment
//! returns a [`Finding`]: a serde report of its figures, the [`Series`] a chart needs, and
//! a [`Verdict`] (held, did not hold, or cannot be shown here and why). `conlab tour` runs
//! them and renders what they find; it holds no experiment of its own.
//!
//! Beside the experiments live the tools they are built from, which `conlab` also offers as
//! commands:
//!
//! - [`bench`]: one workload under every model (`conlab bench`), the median of several runs,
//!   speedup and efficiency, and the lecture's rule of thumb beside the measured winner;
//! - [`probe`]: what threads, processes, switches and locks cost here (`conlab probe`);
//! - [`servers`]: the Apache-vs-nginx comparison (`conlab bench http` and the tour's `web`);
//! - [`machine`]: how much of the machine other programs took while something was measured,
//!   so that no timing verdict is taken on a busy machine.
//!
//! ```no_run
//! use conlab_lecture::experiments::{Budget, Context, EXPERIMENTS};
//! use conlab_lecture::servers::ProcessLauncher;
//!
//! let launcher = ProcessLauncher::new(|model, workers| {
//!     let mut command = std::process::Command::new("conlab");
//!     command.args(["serve", "--ready-json", "--bind", "127.0.0.1:0", "--model", model.name()]);
//!     if let Some(n) = workers {
//!         command.args(["--workers", &n.to_string()]);
//!     }
//!     command
//! });
//! let context = Context { workers: 2, cores: 2, budget: Budget::Full, servers: &launcher, peers: false };
//! let finding = EXPERIMENTS[1].run(&context)?; // the kettle
//! println!("{}: {}", finding.title, finding.outcome.verdict.word());
//! # Ok::<(), conlab_lecture::Error>(())
//! ```
//!
//! This crate measures and judges; it never prints and never exits.

pub mod bench;
mod error;
pub mod experiments;
pub mod finding;
pub mod machine;
pub mod probe;
pub mod servers;
pub mod tour;

use conlab_exec::processes::Registry;

pub use error::Error;
pub use finding::{Axis, Claim, Figure, Finding, Outcome, Series, Verdict};
pub use tour::{TOUR_SCHEMA, TourReport};

/// Every task kind a worker process of `conlab` may be asked to run: the workloads, and the
/// experiments' own tasks (a worker that kills itself, for the crash experiment).
pub fn registry() -> Registry {
    let mut registry = conlab_work::registry();
    registry.register::<experiments::crash::Crash>();
    registry
}
