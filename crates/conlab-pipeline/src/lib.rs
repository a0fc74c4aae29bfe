//! # conlab-pipeline: Pike's gophers, runnable and measured
//!
//! Half of the lecture is Rob Pike's "Concurrency is not parallelism": books moved to the
//! incinerator by gophers with carts, redesigned as procedures joined by piles. This crate is
//! that as a library: a [`Pipeline`] of [`Stage`]s, each with its own worker count, joined by
//! bounded queues, run under OS threads or tasks on an event loop ([`Model`]), on all cores
//! or a few ([`cores::with_cores`]), and measured stage by stage ([`Report`]): utilisation,
//! queue lengths, waits, Little's law, and the bottleneck named by evidence. The lecture's
//! designs are in [`designs`], each with what the lecture expects of it.

pub mod cores;
pub mod designs;
pub mod gzip;
mod pipeline;
pub mod report;
mod stage;

pub use pipeline::{Cancel, Model, Pipeline, PipelineError};
pub use report::{Bottleneck, Failure, Report, StageReport};
pub use stage::{GRAMMAR, SpecError, Stage, parse_stages};
