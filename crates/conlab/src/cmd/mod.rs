//! The subcommands, one module each.

pub(crate) mod bench;
pub(crate) mod fetch;
pub(crate) mod gzip;
pub(crate) mod load;
mod output;
pub(crate) mod pipeline;
pub(crate) mod probe;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod tour;

use std::process::ExitCode;

use clap::Subcommand;

pub(crate) use output::is_usage;

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the lecture's experiments and show what each measured (the main job).
    Tour(tour::Args),
    /// Run one workload under every model and say which fits it, with figures.
    Bench(bench::Args),
    /// Measure what threads, processes, switches, locks and atomics cost on this machine.
    Probe(probe::Args),
    /// Run a command over many inputs, N at a time (GNU parallel's syntax).
    Run(Box<run::Args>),
    /// Serve HTTP under a chosen architecture (prefork, threadpool, thread-per-conn, event).
    Serve(serve::Args),
    /// Load an HTTP server, like wrk (closed loop) or wrk2 (--rate, open loop).
    Load(load::Args),
    /// Fetch many pages concurrently and take their titles (a scraper, like aiohttp's).
    Fetch(Box<fetch::Args>),
    /// Pike's gophers: stages joined by bounded queues, measured stage by stage.
    Pipeline(pipeline::Args),
}

pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Tour(args) => tour::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Probe(args) => probe::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Load(args) => load::run(&args),
        Command::Pipeline(args) => pipeline::run(&args),
        Command::Fetch(args) => fetch::run(&args),
    }
}
