//! # conlab-measure: one definition of every figure conlab reports
//!
//! The lecture's two words, made exact (DESIGN.md "Measurement"):
//!
//! - **latency** of a task = its completion minus its submission (queueing included);
//!   **service time** = its end minus its start (the work alone);
//! - **throughput** = completed tasks / wall time of the batch ([`throughput`]; speedup and
//!   efficiency beside it in [`figures`]);
//! - **CPU%** = (user + system time of this process and every descendant) / wall / cores;
//! - **peak RSS** of the process tree (see [`usage`]);
//! - percentiles from an HdrHistogram with 3 significant digits ([`latency`]).
//!
//! Every report is a serde type ([`report`]); the renderers in [`export`] turn one into a
//! terminal table, JSON, CSV or Markdown. This crate measures and renders bytes; it never
//! prints.

pub mod export;
pub mod figures;
pub mod html;
pub mod latency;
pub mod report;
pub mod usage;

pub use export::{ExportError, ExportManager, Format, Tabular};
pub use figures::{efficiency, median, speedup, throughput};
pub use latency::{LatencyRecorder, Percentiles};
pub use report::{Cell, Table};
pub use usage::{MachineCpu, Usage};
