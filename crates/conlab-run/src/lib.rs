//! # conlab-run: a GNU-parallel-compatible job runner
//!
//! The lecture's worker pools (a `Queue` feeding threads that copy files, `Pool.map`) are, for
//! most people, "run this command over these inputs, N at a time". This crate is that, with
//! GNU parallel's syntax and GNU parallel's results, so that scripts move over unchanged:
//! input sources ([`input`]), replacement strings ([`template`]), the shell jobs run under
//! ([`shell`]), the joblog and `--resume` ([`joblog`]), `--halt` ([`halt`]), the scheduler
//! ([`runner`]) that runs each job in its own process group, captures its output
//! ([`spool`]), enforces timeouts and stops cleanly on a signal, and built-in workloads on a
//! conlab pool instead of a process per job ([`task`]).
//!
//! Values are bytes throughout: a file name that is not UTF-8 reaches the job unchanged. A
//! job whose line has no shell syntax is executed directly; the rest pay for a shell. The
//! crate writes only to the [`runner::Output`] it is given.

pub mod fill;
pub mod gnu_options;
pub mod halt;
pub mod input;
pub mod joblog;
pub mod pipe;
pub mod profiles;
pub mod results;
pub mod runner;
pub mod semaphore;
pub mod shell;
mod slots;
pub mod spool;
pub mod task;
pub mod template;

pub use halt::Halt;
pub use input::{InputOptions, Separators, Source, SourceSpec};
pub use runner::{Options, Output, Pipe, Resume, RunError, Stop, Summary, Timeout, run};
pub use shell::Shell;
pub use slots::{SlotsError, UNLIMITED, slots, slots_from_file};
pub use template::{Prepared, Template, TemplateOptions, Value};
