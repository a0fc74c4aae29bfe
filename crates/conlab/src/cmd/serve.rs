//! `conlab serve`: one HTTP/1.1 server, its architecture chosen by `--model`, so that the
//! lecture's Apache-vs-nginx comparison has the architecture as its only variable.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use conlab_http::counters::{CounterStore, SharedCounters};
use conlab_http::server::{self, Server, ServerConfig, ServerModel};
use conlab_http::{Ready, Site};

use super::output::usage;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Endpoints: /hello, /static/PATH (under --root), /cpu?n=N, /sleep?ms=M, /site/N.html, /stats

Examples:
  conlab serve                                   event loops, one per core, on 127.0.0.1:8080
  conlab serve --model threadpool --workers 64   Apache's worker MPM, 64 threads
  conlab serve --model event --reuseport --bind 127.0.0.1:0 --root ./public
  conlab serve --bind 127.0.0.1:0 --ready-json   one JSON line says where it listens

SIGINT or SIGTERM: stop accepting, finish in-flight requests, print the counters, exit 0.")]
pub(crate) struct Args {
    /// The architecture: prefork, threadpool, thread-per-conn or event.
    #[arg(long, default_value = "event")]
    model: ServerModel,

    /// Processes (prefork), threads (threadpool) or event loops (event), 1 to 4096; default:
    /// one loop per core for event, 64 threads for threadpool, 32 processes for prefork.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
    workers: Option<u16>,

    /// Address to listen on (an IP address and a port); port 0 picks a free port and prints
    /// it.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_bind)]
    bind: SocketAddr,

    /// Serve files under DIR at /static/.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// event: one listener per loop with SO_REUSEPORT instead of one shared listener.
    #[arg(long)]
    reuseport: bool,

    /// Close idle keep-alive connections after this many seconds (1 to 86400).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout_s: u64,

    /// Answer 408 when a request's headers take longer than this many seconds (1 to 86400).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    header_timeout_s: u64,

    /// Once listening, print one JSON line (conlab.serve-ready/1: address, model, workers,
    /// pid) instead of the banner: for scripts that start a server on port 0.
    #[arg(long)]
    ready_json: bool,

    /// Internal: run as one prefork worker on the listening socket inherited as fd 3.
    #[arg(long, hide = true)]
    prefork_child: bool,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let cores = conlab_exec::available_cores();
    let workers = args.workers.map(usize::from).unwrap_or(match args.model {
        ServerModel::Threadpool => 64,
        ServerModel::Prefork => 32,
        _ => cores,
    });
    let config = ServerConfig {
        model: args.model,
        workers,
        idle_timeout: Duration::from_secs(args.idle_timeout_s),
        header_timeout: Duration::from_secs(args.header_timeout_s),
        reuseport: args.reuseport,
        ..ServerConfig::default()
    };
    // Before the banner: once it says where we listen, a SIGTERM must find its handler.
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    if let Some(root) = &args.root
        && !root.is_dir()
    {
        return Err(usage(format!(
            "--root {} is not a directory",
            root.display()
        )));
    }
    if args.prefork_child {
        // One prefork worker: one connection at a time, on this process's main thread.
        let listener =
            server::prefork::inherited_listener().context("starting a prefork worker")?;
        let counters =
            server::prefork::inherited_counters().context("starting a prefork worker")?;
        counters
            .workers_ready
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let site = Arc::new(Site::with_counters(
            args.root.clone(),
            conlab_work::sum_primes,
            "prefork",
            CounterStore::Shared(counters),
        ));
        let one = ServerConfig {
            model: ServerModel::Threadpool,
            workers: 1,
            ..config
        };
        let server = Server::start(listener, site, one).context("starting a prefork worker")?;
        let _ = signals.forever().next();
        server.shutdown();
        return Ok(ExitCode::SUCCESS);
    }
    if args.reuseport && args.model != ServerModel::Event {
        return Err(usage(format!(
            "--reuseport gives each event loop a listener of its own: it applies to --model \
             event, not {}",
            args.model
        )));
    }
    let listener = server::bind(args.bind, args.reuseport).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => "in use: try another port, or 0 for a free one",
            std::io::ErrorKind::AddrNotAvailable => "not an address of this machine",
            std::io::ErrorKind::PermissionDenied => "ports below 1024 need root",
            _ => "the system refused it",
        };
        anyhow::Error::new(e).context(format!("listening on {} ({hint})", args.bind))
    })?;
    if args.model == ServerModel::Prefork {
        return prefork(args, listener, workers, &mut signals);
    }
    let site = Arc::new(Site::new(
        args.root.clone(),
        conlab_work::sum_primes,
        args.model.name(),
    ));
    let server = Server::start(listener, site.clone(), config).context("starting the server")?;
    let listeners = match (args.model, server.listeners()) {
        (ServerModel::Event, 1) => ", one shared listener",
        (ServerModel::Event, _) => ", one SO_REUSEPORT listener per loop",
        _ => "",
    };
    announce(
        args,
        server.local_addr(),
        workers,
        &format!(
            "conlab serve: {} on http://{} ({workers} {}{listeners})",
            args.model,
            server.local_addr(),
            if args.model == ServerModel::Event {
                "event loops"
            } else {
                "workers"
            },
        ),
    )?;
    let _ = signals.forever().next();
    server.shutdown();
    say_stopped(
        args,
        &format!("conlab serve: stopped after {} requests", site.requests()),
    );
    Ok(ExitCode::SUCCESS)
}

/// `--bind`: an IP address and a port. Names are not resolved: a server that means to listen
/// on loopback says so in numbers.
fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        let hint = match text.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() && !host.is_empty() => format!(
                "`{host}` is not an IP address: write 127.0.0.1:{port}, or [::1]:{port} for IPv6"
            ),
            _ => "write an IP address and a port, e.g. 127.0.0.1:8080 (0 picks a free port)".into(),
        };
        format!("`{text}` is not an address to listen on: {hint}")
    })
}

/// Says the server is listening: the banner, or with `--ready-json` the ready line.
fn announce(args: &Args, addr: SocketAddr, workers: usize, banner: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if args.ready_json {
        writeln!(
            out,
            "{}",
            Ready::new(addr, args.model.name(), workers).to_line()
        )?;
    } else {
        writeln!(out, "{banner}")?;
    }
    out.flush()?;
    Ok(())
}

/// Says the server stopped: on stdout after the banner, on stderr after a ready line (stdout
/// then holds only JSON). A closed stream (the reader gone) must not turn a clean stop into
/// a panic.
fn say_stopped(args: &Args, line: &str) {
    if args.ready_json {
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}

/// The prefork parent: starts the worker processes, waits for a signal, stops them.
fn prefork(
    args: &Args,
    listener: std::net::TcpListener,
    workers: usize,
    signals: &mut signal_hook::iterator::Signals,
) -> Result<ExitCode> {
    let program =
        std::env::current_exe().context("finding this executable to start the workers")?;
    let mut child_args = vec![
        "serve".to_string(),
        "--prefork-child".into(),
        "--idle-timeout-s".into(),
        args.idle_timeout_s.to_string(),
        "--header-timeout-s".into(),
        args.header_timeout_s.to_string(),
    ];
    if let Some(root) = &args.root {
        child_args.extend(["--root".to_string(), root.display().to_string()]);
    }
    let addr = listener.local_addr()?;
    let counters = SharedCounters::create().context("creating the workers' shared counters")?;
    let mut children =
        server::prefork::Prefork::start(&program, &child_args, &listener, &counters, workers)
            .context("starting the prefork worker processes")?;
    // Listening already (connections wait in the backlog), but said only once every worker
    // is up, so that whoever measures from the announcement does not measure start-up.
    let stopped = children
        .wait_ready(&counters, Duration::from_secs(60), || {
            signals.pending().next().is_some()
        })
        .context("starting the prefork worker processes")?;
    if stopped {
        // SIGINT or SIGTERM while the workers were starting: stop them, as after serving.
        children.stop();
        return Ok(ExitCode::SUCCESS);
    }
    announce(
        args,
        addr,
        workers,
        &format!(
            "conlab serve: prefork on http://{addr} ({workers} worker processes, one connection \
             each)"
        ),
    )?;
    let _ = signals.forever().next();
    children.stop();
    say_stopped(
        args,
        &format!(
            "conlab serve: stopped {workers} worker processes after {} requests",
            counters.requests.load(std::sync::atomic::Ordering::Relaxed)
        ),
    );
    Ok(ExitCode::SUCCESS)
}
