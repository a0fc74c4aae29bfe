//! # conlab-run: a GNU-parallel-compatible job runner
//!
//! The lecture's worker pools (a `Queue` feeding threads that copy files, `Pool.map`) are, for
//! most people, "run this command over these inputs, N at a time". This crate is that, with
//! GNU parallel's syntax so that muscle memory works: input sources ([`input`]), replacement
//! strings ([`template`]), the joblog and `--resume` ([`joblog`]), `--halt` ([`halt`]), and
//! the scheduler ([`runner`]) that runs each job in its own process group, groups its output,
//! enforces timeouts and stops cleanly on a signal.
//!
//! A job whose command needs no shell is executed directly; only lines with shell syntax pay
//! for an `sh -c`. The crate writes only to the [`runner::Output`] it is given.

pub mod halt;
pub mod input;
pub mod joblog;
pub mod runner;
mod slots;
pub mod template;

pub use halt::Halt;
pub use input::{InputOptions, Source, SourceSpec};
pub use runner::{Options, Output, Resume, RunError, Stop, Summary, run};
pub use slots::{SlotsError, slots};
pub use template::{Prepared, Template};
