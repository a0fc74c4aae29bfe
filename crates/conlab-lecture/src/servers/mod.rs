//! The lecture's Apache-vs-nginx chart, reproduced: each server runs in its own process (so
//! its CPU and memory are its own), is driven by the load generator at several connection
//! counts, and is measured from /proc: CPU from its whole process tree (a prefork server's
//! work is done by its children), memory as PSS (`/proc/PID/smaps_rollup`), which counts the
//! pages that forked workers share once rather than once per process.
//!
//! Who starts a server is the caller's business, through a [`Launcher`]: the CLI knows how to
//! run itself as `conlab serve` and hands that over as a closure ([`ProcessLauncher`]), which
//! reads the server's machine-readable ready line
//! ([`conlab_http::Ready`]); the real nginx and Apache httpd are started from [`peers`].

pub mod peers;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conlab_http::ServerModel;
use conlab_http::load::{self, LoadConfig, Target};
use conlab_measure::Tabular;
use conlab_measure::report::{self, Cell, Column, Table, Tone};
use conlab_measure::usage::{cpu_time, process_tree, pss_bytes, system_time};
use serde::Serialize;

use crate::Error;

/// The schema id of [`ServersReport`] (`conlab bench http --json`).
pub const BENCH_HTTP_SCHEMA: &str = "conlab.bench-http/2";

/// How long a server may take to say it is listening.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A server to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// `conlab serve --model MODEL`, with `workers` or the model's default.
    Conlab {
        /// The architecture.
        model: ServerModel,
        /// Processes, threads or event loops (`None`: the model's default).
        workers: Option<usize>,
    },
    /// nginx with `workers` worker processes, each an event loop.
    Nginx {
        /// Worker processes.
        workers: usize,
    },
    /// Apache httpd with the prefork MPM: `workers` processes, one connection each.
    ApachePrefork {
        /// Worker processes.
        workers: usize,
    },
}

impl Contender {
    /// The row's name: `prefork`, `event`, `nginx`, `apache prefork`.
    pub fn name(&self) -> String {
        match self {
            Contender::Conlab { model, .. } => model.name().to_string(),
            Contender::Nginx { .. } => "nginx".into(),
            Contender::ApachePrefork { .. } => "apache prefork".into(),
        }
    }
}

/// A server running in its own process; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct RunningServer {
    /// The row's name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Workers it runs (processes, threads or loops), as it said or as configured.
    pub workers: usize,
    child: Child,
    /// The peer's configuration directory, removed after the server stops.
    scratch: Option<std::path::PathBuf>,
}

impl RunningServer {
    /// The server's (parent) process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child's,
        // not yet waited for, so it cannot have been reused.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts servers for a comparison.
pub trait Launcher {
    /// Starts `contender` and returns once it listens; the error names what could not be
    /// started and why.
    fn start(&self, contender: Contender) -> Result<RunningServer, Error>;
}

/// Starts conlab's models by running the command `command(model, workers)` builds (which
/// must print a [`conlab_http::Ready`] line on stdout once listening), and the peers from
/// [`peers`].
pub struct ProcessLauncher<F> {
    command: F,
}

impl<F> std::fmt::Debug for ProcessLauncher<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLauncher").finish_non_exhaustive()
    }
}

impl<F: Fn(ServerModel, Option<usize>) -> Command> ProcessLauncher<F> {
    /// A launcher that runs `command(model, workers)` for conlab's own models.
    pub fn new(command: F) -> Self {
        ProcessLauncher { command }
    }
}

impl<F: Fn(ServerModel, Option<usize>) -> Command> Launcher for ProcessLauncher<F> {
    fn start(&self, contender: Contender) -> Result<RunningServer, Error> {
        match contender {
            Contender::Conlab { model, workers } => {
                let command = (self.command)(model, workers);
                start_conlab(command, &contender.name())
            }
            Contender::Nginx { workers } => peers::nginx(workers),
            Contender::ApachePrefork { workers } => peers::apache_prefork(workers),
        }
    }
}

/// Spawns `command` and waits (bounded) for its ready line.
fn start_conlab(mut command: Command, name: &str) -> Result<RunningServer, Error> {
    let fail = |why: String| Error::Launch {
        server: name.to_string(),
        why,
    };
    // A Ctrl-C of the tour or of `bench http` must not leave the server listening.
    conlab_exec::die_with_parent(&mut command, libc::SIGTERM);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("{e}")))?;
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(out) = out {
            let mut reader = BufReader::new(out);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading, so the server never blocks on a full stdout pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
    });
    // Its stderr is read for as long as it lives (a closed pipe would make its next message
    // fail), keeping the last line to say why it did not start.
    let (said_tx, said) = crossbeam_channel::unbounded::<String>();
    std::thread::spawn(move || {
        if let Some(err) = err {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = said_tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(READY_TIMEOUT).unwrap_or_default();
    if let Some(ready) = conlab_http::Ready::parse(&line) {
        return Ok(RunningServer {
            name: name.to_string(),
            addr: ready.addr,
            workers: ready.workers,
            child,
            scratch: None,
        });
    }
    let _ = child.kill();
    let _ = child.wait();
    let last = said
        .recv_timeout(Duration::from_secs(1))
        .ok()
        .into_iter()
        .chain(said.try_iter())
        .last()
        .unwrap_or_default();
    Err(fail(if line.is_empty() {
        format!(
            "it did not say it was listening within {READY_TIMEOUT:?} ({})",
            last.trim()
        )
    } else {
        format!("it printed {line:?} instead of its ready line")
    }))
}

/// One (server, connections) cell of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The server's name.
    pub server: String,
    /// Its workers (processes, threads or loops).
    pub workers: usize,
    /// Connections the generator kept open.
    pub connections: usize,
    /// Of those, how many got at least one answer: fewer when the server serves a fixed
    /// number at a time.
    pub connections_answered: u64,
    /// Responses per second, of any status.
    pub requests_per_s: f64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// Slowest answer, microseconds (clients never answered are not in it: see
    /// `connections_answered`).
    pub max_us: u64,
    /// Responses that were not 2xx.
    pub non_2xx: u64,
    /// Connect, read, write, timeout and parse errors.
    pub errors: u64,
    /// CPU time of the server's process tree over the cell, seconds.
    pub server_cpu_s: f64,
    /// `server_cpu_s` / wall time, percent of one core.
    pub server_cpu_percent: f64,
    /// Responses per server CPU-second: the architecture's cost per request, whatever the
    /// generator (which shares the cores) managed to send.
    pub requests_per_cpu_s: f64,
    /// The kernel's share of the server's CPU time (system time over all), 0 to 1.
    pub server_system_share: f64,
    /// Proportional set size of the server's tree at the end of the cell.
    pub server_pss_bytes: u64,
    /// Processes in the server's tree.
    pub processes: usize,
}

/// The load of one cell: `connections` keep-alive clients of `path` at `addr` for
/// `duration`, as the comparison runs it.
fn load_config(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    path: &str,
) -> Result<LoadConfig, Error> {
    let target = Target::parse(&format!("http://{addr}{path}")).map_err(|e| Error::Config {
        option: "--path",
        problem: format!("`{path}`: {}", e.why),
    })?;
    let config = LoadConfig {
        connections,
        duration: Some(duration),
        ..LoadConfig::new(target)
    };
    config.validate()?;
    Ok(config)
}

/// Refuses, before any server starts, a comparison whose load cannot run: a path that is not
/// one, more connections than this process may open.
pub fn check(levels: &[usize], duration: Duration, path: &str) -> Result<(), Error> {
    for &connections in levels {
        load_config(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            connections,
            duration,
            path,
        )?;
    }
    Ok(())
}

/// Loads `path` on `server` with `connections` for `duration` and measures it.
pub fn measure(
    server: &RunningServer,
    connections: usize,
    duration: Duration,
    path: &str,
) -> Result<Measurement, Error> {
    let config = load_config(server.addr, connections, duration, path)?;
    let tree_cpu = |pid: u32| -> Duration { process_tree(pid).into_iter().map(cpu_time).sum() };
    let tree_system =
        |pid: u32| -> Duration { process_tree(pid).into_iter().map(system_time).sum() };
    let cpu_before = tree_cpu(server.pid());
    let system_before = tree_system(server.pid());
    let result = load::run(config, |_| ());
    let pids = process_tree(server.pid());
    let cpu = pids
        .iter()
        .copied()
        .map(cpu_time)
        .sum::<Duration>()
        .saturating_sub(cpu_before);
    let system = tree_system(server.pid()).saturating_sub(system_before);
    let p = result.latency.percentiles();
    Ok(Measurement {
        server: server.name.clone(),
        workers: server.workers,
        connections,
        connections_answered: result.connections_answered,
        requests_per_s: conlab_measure::throughput(result.requests, result.duration),
        p50_us: p.p50,
        p99_us: p.p99,
        max_us: p.max,
        non_2xx: result.requests - result.successes,
        errors: result.errors.values().sum(),
        server_cpu_s: cpu.as_secs_f64(),
        server_cpu_percent: conlab_measure::usage::cpu_percent(cpu, result.duration, 1),
        requests_per_cpu_s: conlab_measure::throughput(result.requests, cpu),
        server_system_share: if cpu.is_zero() {
            0.0
        } else {
            (system.as_secs_f64() / cpu.as_secs_f64()).min(1.0)
        },
        server_pss_bytes: pids.iter().copied().map(pss_bytes).sum(),
        processes: pids.len(),
    })
}

/// Starts each contender in turn and measures it at each connection count.
pub fn compare(
    launcher: &dyn Launcher,
    contenders: &[Contender],
    levels: &[usize],
    duration: Duration,
    path: &str,
) -> Result<Vec<Measurement>, Error> {
    let mut rows = Vec::new();
    for &contender in contenders {
        let server = launcher.start(contender)?;
        for &connections in levels {
            rows.push(measure(&server, connections, duration, path)?);
        }
    }
    Ok(rows)
}

/// Starts every contender first, then loads them in turn, `rounds` times over: each round
/// measures every server once, one after the other, so that a machine whose speed drifts
/// moves the servers of a round alike. One `Vec` per round, in the order of the servers that
/// started; a peer (nginx, Apache) that could not start is left out and listed with why, a
/// conlab model that could not start is an error.
pub fn alternate(
    launcher: &dyn Launcher,
    contenders: &[Contender],
    connections: usize,
    window: Duration,
    rounds: usize,
    path: &str,
) -> Result<(Vec<Vec<Measurement>>, Vec<Error>), Error> {
    let mut servers = Vec::new();
    let mut left_out = Vec::new();
    for &contender in contenders {
        match launcher.start(contender) {
            Ok(server) => servers.push(server),
            Err(e) if !matches!(contender, Contender::Conlab { .. }) => left_out.push(e),
            Err(e) => return Err(e),
        }
    }
    let measured = (0..rounds)
        .map(|_| {
            servers
                .iter()
                .map(|server| measure(server, connections, window, path))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((measured, left_out))
}

impl Measurement {
    /// One row for several runs of the same cell: the median of each rate, latency and CPU
    /// figure, the slowest answer of all, failures summed, the last run's memory.
    pub fn combine(runs: &[Measurement]) -> Option<Measurement> {
        let last = runs.last()?;
        let median = |f: fn(&Measurement) -> f64| {
            conlab_measure::median(&runs.iter().map(f).collect::<Vec<_>>())
        };
        Some(Measurement {
            server: last.server.clone(),
            workers: last.workers,
            connections: last.connections,
            connections_answered: median(|r| r.connections_answered as f64) as u64,
            requests_per_s: median(|r| r.requests_per_s),
            p50_us: median(|r| r.p50_us as f64) as u64,
            p99_us: median(|r| r.p99_us as f64) as u64,
            max_us: runs.iter().map(|r| r.max_us).max().unwrap_or(0),
            non_2xx: runs.iter().map(|r| r.non_2xx).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
            server_cpu_s: median(|r| r.server_cpu_s),
            server_cpu_percent: median(|r| r.server_cpu_percent),
            requests_per_cpu_s: median(|r| r.requests_per_cpu_s),
            server_system_share: median(|r| r.server_system_share),
            server_pss_bytes: last.server_pss_bytes,
            processes: last.processes,
        })
    }
}

/// The report of `conlab bench http`.
#[derive(Debug, Clone, Serialize)]
pub struct ServersReport {
    /// [`BENCH_HTTP_SCHEMA`].
    pub schema: &'static str,
    /// The path requested.
    pub path: String,
    /// Seconds per cell.
    pub duration_s: f64,
    /// One per (server, connections).
    pub results: Vec<Measurement>,
}

impl ServersReport {
    /// True when every cell got answers and all of them were 2xx. Timeouts are not failures
    /// here: clients a prefork server or a thread pool never gets to are its architecture's
    /// result, and the report shows them.
    pub fn clean(&self) -> bool {
        self.results.iter().all(Measurement::clean)
    }
}

impl Measurement {
    /// The cell got answers, all 2xx.
    pub fn clean(&self) -> bool {
        self.non_2xx == 0 && self.requests_per_s > 0.0
    }
}

impl Tabular for ServersReport {
    fn tables(&self) -> Vec<Table> {
        let mut notes = vec![
            String::new(),
            "lecture: nginx (event) copes with about four times the requests of Apache (a \
             process or thread per connection)"
                .into(),
        ];
        if let Some(bad) = self.results.iter().find(|r| r.non_2xx > 0) {
            notes.push(format!(
                "WARNING: {} answered {} non-2xx responses at {} connections: is {} the right \
                 path?",
                bad.server, bad.non_2xx, bad.connections, self.path
            ));
        }
        vec![Table {
            title: Some(format!(
                "GET {} for {:.1} s per cell, each server in its own process",
                self.path, self.duration_s
            )),
            columns: vec![
                Column::text("server"),
                Column::number("connections"),
                Column::number("answered"),
                Column::number("throughput"),
                Column::number("per CPU-s"),
                Column::number("p50"),
                Column::number("p99"),
                Column::number("max"),
                Column::number("errors"),
                Column::number("server CPU"),
                Column::number("server PSS"),
            ],
            rows: self
                .results
                .iter()
                .map(|r| {
                    let bad = r.errors + r.non_2xx;
                    vec![
                        Cell::text(r.server.clone()),
                        report::count(r.connections as u64),
                        report::count(r.connections_answered),
                        report::rate(r.requests_per_s),
                        report::rate(r.requests_per_cpu_s),
                        report::seconds(r.p50_us as f64 / 1e6),
                        report::seconds(r.p99_us as f64 / 1e6),
                        report::seconds(r.max_us as f64 / 1e6),
                        report::count(bad).tone(if bad > 0 { Tone::Bad } else { Tone::Plain }),
                        report::fixed(r.server_cpu_percent, 0, "%"),
                        report::bytes(r.server_pss_bytes),
                    ]
                })
                .collect(),
            notes,
        }]
    }
}
