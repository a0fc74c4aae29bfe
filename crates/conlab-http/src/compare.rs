//! The lecture's Apache-vs-nginx chart, reproduced: each server model runs in its own process
//! (so its CPU and memory are its own), is driven by the load generator at several
//! connection counts, and is measured from /proc: CPU% from `utime + stime`, memory as PSS
//! (`/proc/PID/smaps_rollup`), which counts shared pages once rather than once per process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conlab_measure::usage::{cpu_time, process_tree, pss_bytes};

use crate::load::{self, LoadConfig, Target};
use crate::server::ServerModel;

/// One (model, connections) cell.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompareRow {
    /// The server model.
    pub model: String,
    /// Connections the generator kept open.
    pub connections: usize,
    /// Responses per second.
    pub requests_per_s: f64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// Slowest response, microseconds: where a thread pool's starved connections show (they
    /// are few among many fast answers, so p99 misses them).
    pub max_us: u64,
    /// Errors of any kind, plus non-2xx responses.
    pub errors: u64,
    /// The server process's CPU over the cell, percent of one core.
    pub server_cpu_percent: f64,
    /// The server's proportional set size at the end of the cell.
    pub server_pss_bytes: u64,
}

/// Why the comparison could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The server could not be started or did not print its address.
    #[error("starting `{program} serve --model {model}`: {why}")]
    Start {
        /// The executable.
        program: String,
        /// The model.
        model: String,
        /// What went wrong.
        why: String,
    },
}

/// Runs `program serve` under each model (with `workers`, or each model's default) and loads
/// `path` at each connection count for `duration`.
pub fn compare(
    program: &Path,
    models: &[ServerModel],
    workers: Option<usize>,
    levels: &[usize],
    duration: Duration,
    path: &str,
) -> Result<Vec<CompareRow>, CompareError> {
    let mut rows = Vec::new();
    for &model in models {
        let (mut child, addr) = start(program, model, workers)?;
        for &connections in levels {
            let target = Target::parse(&format!("http://{addr}{path}")).map_err(|e| {
                CompareError::Start {
                    program: program.display().to_string(),
                    model: model.to_string(),
                    why: e.to_string(),
                }
            })?;
            let cpu_before: Duration = process_tree(child.id()).into_iter().map(cpu_time).sum();
            let result = load::run(
                LoadConfig {
                    target,
                    connections,
                    threads: 1,
                    duration: Some(duration),
                    requests: None,
                    rate: None,
                    pipeline: 1,
                    timeout: Duration::from_secs(2),
                    method: "GET".into(),
                    headers: Vec::new(),
                    body: None,
                },
                |_| (),
            );
            // The whole tree: a prefork server's work is done by its children.
            let pids = process_tree(child.id());
            let cpu = pids
                .iter()
                .copied()
                .map(cpu_time)
                .sum::<Duration>()
                .saturating_sub(cpu_before);
            let secs = result.duration.as_secs_f64().max(1e-9);
            let p = result.latency.percentiles();
            rows.push(CompareRow {
                model: model.to_string(),
                connections,
                requests_per_s: result.requests as f64 / secs,
                p50_us: p.p50,
                p99_us: p.p99,
                max_us: p.max,
                errors: result.errors.values().sum::<u64>() + (result.requests - result.successes),
                server_cpu_percent: cpu.as_secs_f64() / secs * 100.0,
                server_pss_bytes: pids.into_iter().map(pss_bytes).sum(),
            });
        }
        stop(&mut child);
    }
    Ok(rows)
}

fn start(
    program: &Path,
    model: ServerModel,
    workers: Option<usize>,
) -> Result<(Child, String), CompareError> {
    let fail = |why: String| CompareError::Start {
        program: program.display().to_string(),
        model: model.to_string(),
        why,
    };
    let mut command = Command::new(program);
    command.args(["serve", "--model", model.name(), "--bind", "127.0.0.1:0"]);
    if let Some(n) = workers {
        command.args(["--workers", &n.to_string()]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let Some(out) = child.stdout.take() else {
        stop(&mut child);
        return Err(fail("no stdout".into()));
    };
    let mut banner = String::new();
    let _ = BufReader::new(out).read_line(&mut banner);
    match banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
    {
        Some(addr) => Ok((child, addr.to_string())),
        None => {
            stop(&mut child);
            Err(fail(format!(
                "it printed {banner:?} instead of its address"
            )))
        }
    }
}

fn stop(child: &mut Child) {
    // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}
