//! The lecture's rule of thumb for I/O: "I/O bound, slow I/O, many connections ->
//! asyncio". `conlab fetch` scrapes pages that each take 50 ms to answer (`conlab serve`'s
//! `/site/N.html?ms=50`, in a process of its own) under its two models, a blocking thread
//! per request and tasks on an event loop, at a few connections and at many.
//!
//! Both are I/O bound: each should reach Little's law (connections / 50 ms pages per
//! second) while the machine keeps up. What differs is what a connection costs: a thread is
//! a stack, a kernel task and a context switch per page; a task is a few hundred bytes and
//! a poll. The verdict compares CPU per page at the most connections, where that cost is
//! the difference; the pages per second of each, against the ideal, show where each one
//! stops scaling. (Memory is not compared here: both models run in this one process, whose
//! allocator keeps what the first run freed. `bench/fetch.py` measures each in a process of
//! its own.)

use std::time::Instant;

use conlab_http::ServerModel;
use conlab_http::fetch::{self, Feed, FetchConfig, FetchModel};

use super::{Context, Experiment};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;
use crate::servers::Contender;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "scrape",
    title: "Many slow pages: threads vs asyncio",
    claim: Claim {
        quote: "I/O bound, slow I/O, many connections -> asyncio",
        slide: "asyncio: when to use what (and the aiohttp cell: gather over many pages)",
        figure: "the rule of thumb; the cells fetch 57 pages with aiohttp, titles with threads",
    },
    load_limit: LoadLimit::TIMING,
    measure,
};

/// How long each page takes the server to answer: slow I/O.
const PAGE_MS: u64 = 50;

/// At the most connections, threads must spend at least this much more CPU per page than
/// the event loop for the rule to hold. Measured here (2 cores, 1000 connections): 1.7x;
/// 1.2x leaves room for a machine whose threads are cheaper.
pub const MIN_CPU_RATIO: f64 = 1.2;

/// One model at one concurrency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// Connections (requests in flight).
    pub connections: usize,
    /// Pages per second.
    pub pages_per_s: f64,
    /// CPU of this process per page, microseconds.
    pub cpu_us_per_page: f64,
    /// Pages that failed.
    pub errors: u64,
}

impl Run {
    /// Of Little's law's ideal: connections / page time.
    pub fn of_ideal(&self) -> f64 {
        self.pages_per_s / (self.connections as f64 * 1000.0 / PAGE_MS as f64)
    }
}

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let (levels, waves): (&[usize], usize) =
        context.budget.pick((&[20, 200, 1000], 4), (&[10, 100], 2));
    let server = context.servers.start(Contender::Conlab {
        model: ServerModel::Event,
        workers: Some(context.cores),
    })?;
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for &connections in levels {
        for model in [FetchModel::Threads, FetchModel::Async] {
            let pages = connections * waves;
            let urls: Vec<String> = (0..pages)
                .map(|i| {
                    format!(
                        "http://{}/site/{}.html?ms={PAGE_MS}&i={i}",
                        server.addr,
                        i % 1000
                    )
                })
                .collect();
            let config = FetchConfig {
                model,
                concurrency: connections,
                retries: 0,
                ..FetchConfig::default()
            };
            let cpu = conlab_measure::usage::cpu_time(std::process::id());
            let started = Instant::now();
            let summary = fetch::run(
                config,
                Feed::Urls(Box::new(urls.into_iter())),
                |_| {},
                |_| {},
            )?;
            let wall = started.elapsed();
            let used = conlab_measure::usage::cpu_time(std::process::id()).saturating_sub(cpu);
            let run = Run {
                connections,
                pages_per_s: pages as f64 / wall.as_secs_f64().max(1e-9),
                cpu_us_per_page: used.as_secs_f64() * 1e6 / pages as f64,
                errors: summary.rows - summary.ok,
            };
            match model {
                FetchModel::Threads => threads.push(run),
                FetchModel::Async => tasks.push(run),
            }
        }
    }
    drop(server);
    let line = |name: &str, r: &Run| {
        format!(
            "{name:>7} at {:>4} connections: {:>6.0} pages/s ({:>3.0}% of Little's law), {:>4.0} us CPU/page",
            r.connections,
            r.pages_per_s,
            r.of_ideal() * 100.0,
            r.cpu_us_per_page,
        )
    };
    let mut details = Vec::new();
    for (t, a) in threads.iter().zip(&tasks) {
        details.push(line("threads", t));
        details.push(line("async", a));
    }
    let mut figures = Vec::new();
    for (name, runs) in [("threads", &threads), ("async", &tasks)] {
        for r in runs.iter() {
            let c = r.connections;
            figures.push(Figure::new(
                format!("{name}_{c}_pages_per_s"),
                r.pages_per_s,
                "pages/s",
            ));
            figures.push(Figure::new(
                format!("{name}_{c}_cpu_us_per_page"),
                r.cpu_us_per_page,
                "us",
            ));
        }
    }
    let axis = Axis {
        label: "connections",
        unit: "",
    };
    let pages_axis = Axis {
        label: "pages per second",
        unit: "pages/s",
    };
    let mut series: Vec<Series> = [("threads", &threads), ("async", &tasks)]
        .into_iter()
        .map(|(name, runs)| Series {
            name: name.to_string(),
            x: axis,
            y: pages_axis,
            points: runs
                .iter()
                .map(|r| [r.connections as f64, r.pages_per_s])
                .collect(),
        })
        .collect();
    series.push(Series {
        name: "Little's law".into(),
        x: axis,
        y: pages_axis,
        points: levels
            .iter()
            .map(|&c| [c as f64, c as f64 * 1000.0 / PAGE_MS as f64])
            .collect(),
    });
    let verdict = judge(&threads, &tasks);
    let (t, a) = (threads.last(), tasks.last());
    Ok(Outcome {
        setup: format!(
            "pages of {PAGE_MS} ms from conlab serve (event), {waves} per connection, at {} connections, under fetch --model threads and async",
            levels
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        details,
        measured: match (t, a) {
            (Some(t), Some(a)) => format!(
                "at {} connections: threads {:.0} us CPU/page, async {:.0} ({:.1}x)",
                a.connections,
                t.cpu_us_per_page,
                a.cpu_us_per_page,
                t.cpu_us_per_page / a.cpu_us_per_page.max(1e-9)
            ),
            _ => "nothing".into(),
        },
        figures,
        series,
        verdict,
    })
}

/// Held when, at the most connections, threads spent at least [`MIN_CPU_RATIO`] times the
/// event loop's CPU per page, with no page failed.
pub fn judge(threads: &[Run], tasks: &[Run]) -> Verdict {
    let errors: u64 = threads.iter().chain(tasks).map(|r| r.errors).sum();
    if errors > 0 {
        return Verdict::not_held(format!(
            "{errors} pages failed: the scrape is not a fair race"
        ));
    }
    let (Some(t), Some(a)) = (threads.last(), tasks.last()) else {
        return Verdict::cannot_show("nothing was measured");
    };
    let ratio = t.cpu_us_per_page / a.cpu_us_per_page.max(1e-9);
    if ratio >= MIN_CPU_RATIO {
        Verdict::held(format!(
            "at {} connections a page cost threads {ratio:.1}x the event loop's CPU (at least \
             {MIN_CPU_RATIO}x): many slow connections are cheaper as tasks",
            a.connections
        ))
    } else {
        Verdict::not_held(format!(
            "at {} connections threads cost {ratio:.2}x the event loop's CPU per page, not \
             {MIN_CPU_RATIO}x: here a thread per connection is as cheap as a task",
            a.connections
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(connections: usize, cpu: f64, errors: u64) -> Run {
        Run {
            connections,
            pages_per_s: connections as f64 * 15.0,
            cpu_us_per_page: cpu,
            errors,
        }
    }

    #[test]
    fn dearer_threads_at_many_connections_hold_and_equal_ones_do_not() {
        let threads = [run(20, 90.0, 0), run(1000, 140.0, 0)];
        let tasks = [run(20, 80.0, 0), run(1000, 80.0, 0)];
        assert!(judge(&threads, &tasks).is_held());
        assert!((run(1000, 1.0, 0).of_ideal() - 0.75).abs() < 1e-9);
        let cheap = [run(20, 90.0, 0), run(1000, 85.0, 0)];
        assert!(
            judge(&cheap, &tasks)
                .reason()
                .contains("as cheap as a task")
        );
        let failed = [run(20, 90.0, 3), run(1000, 140.0, 0)];
        assert!(judge(&failed, &tasks).reason().contains("3 pages failed"));
        assert!(matches!(judge(&[], &[]), Verdict::CannotShow { .. }));
    }
}
