//! The server architectures of the lecture's web story, over one HTTP implementation:
//!
//! - `threadpool` (Apache worker MPM): N threads, each accepting and serving one connection
//!   at a time; connection N+1 waits for a free thread.
//! - `thread-per-conn`: a new thread for every connection.
//! - `event` (nginx): one event loop per worker thread; each loop serves thousands of
//!   connections, switching at every wait; one shared listener, or one per loop with
//!   `SO_REUSEPORT` (the kernel spreads connections).
//! - `prefork` (Apache prefork MPM): N processes sharing the listener, one connection each at
//!   a time (`prefork.rs`; started by `conlab serve`, each child running a one-thread
//!   `threadpool`).
//!
//! Blocking models live in `blocking.rs`, the event loop in `event.rs`. Every model answers a
//! batch of pipelined requests with one `write`, closes a connection idle for
//! [`ServerConfig::idle_timeout`], and answers 408 to a request whose headers take longer than
//! [`ServerConfig::header_timeout`] (a slowloris cannot pin a worker forever). Shutdown stops
//! accepting, then ends every connection after its in-flight request.

mod blocking;
mod event;
pub mod prefork;
pub mod ready;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use conlab_exec::lock;

use crate::codec::Limits;
use crate::site::Site;

/// A server architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerModel {
    /// N threads, one connection each.
    Threadpool,
    /// One thread per connection.
    ThreadPerConn,
    /// One event loop per worker.
    Event,
    /// N processes, one connection each (see [`prefork`]).
    Prefork,
}

impl ServerModel {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ServerModel::Threadpool => "threadpool",
            ServerModel::ThreadPerConn => "thread-per-conn",
            ServerModel::Event => "event",
            ServerModel::Prefork => "prefork",
        }
    }
}

impl fmt::Display for ServerModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A server model name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown server model `{0}`: expected prefork, threadpool, thread-per-conn or event")]
pub struct ParseServerModelError(pub String);

impl FromStr for ServerModel {
    type Err = ParseServerModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "threadpool" => Ok(ServerModel::Threadpool),
            "thread-per-conn" | "thread-per-connection" => Ok(ServerModel::ThreadPerConn),
            "event" => Ok(ServerModel::Event),
            "prefork" => Ok(ServerModel::Prefork),
            other => Err(ParseServerModelError(other.to_string())),
        }
    }
}

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The architecture.
    pub model: ServerModel,
    /// Threads (threadpool) or event loops (event); ignored by thread-per-conn.
    pub workers: usize,
    /// Request size limits.
    pub limits: Limits,
    /// Close a connection with no request in progress after this long.
    pub idle_timeout: Duration,
    /// Answer 408 when a request's headers are not complete after this long.
    pub header_timeout: Duration,
    /// `event`: one listener per loop with `SO_REUSEPORT` instead of one shared listener.
    pub reuseport: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            model: ServerModel::Event,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            reuseport: false,
        }
    }
}

/// What the workers of one server share: the site, the stop flag, the open connections.
struct Shared {
    site: Arc<Site>,
    config: ServerConfig,
    stopping: AtomicBool,
    next_conn: AtomicU64,
    /// Open connections of the blocking models, so that shutdown can end them.
    open: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let clone = stream.try_clone().ok()?;
        lock(&self.open).insert(id, clone);
        Some(id)
    }

    fn unregister(&self, id: Option<u64>) {
        if let Some(id) = id {
            lock(&self.open).remove(&id);
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    threads: Vec<JoinHandle<()>>,
    /// One per event loop: wakes it to stop.
    wakers: Vec<Arc<mio::Waker>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("model", &self.shared.config.model)
            .finish_non_exhaustive()
    }
}

/// Binds `addr` (with `SO_REUSEPORT` when asked, so sibling listeners can share the port).
pub fn bind(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

impl Server {
    /// Starts serving `site` on `listener` (which must be bound; port 0 is fine).
    pub fn start(
        listener: TcpListener,
        site: Arc<Site>,
        config: ServerConfig,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let workers = config.workers.max(1);
        let shared = Arc::new(Shared {
            site,
            config: config.clone(),
            stopping: AtomicBool::new(false),
            next_conn: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        });
        let mut listeners = vec![listener];
        if config.model == ServerModel::Event && config.reuseport {
            for _ in 1..workers {
                listeners.push(bind(addr, true)?);
            }
        }
        let mut server = Server {
            addr,
            shared: shared.clone(),
            listeners,
            threads: Vec::new(),
            wakers: Vec::new(),
        };
        match config.model {
            ServerModel::Prefork => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "prefork runs in processes: start it with prefork::Prefork (conlab serve does)",
                ));
            }
            ServerModel::Threadpool => {
                // One descriptor shared by every thread, not a dup each: at 100 threads the
                // copies alone would use 100 of the process's file descriptors.
                let listener = Arc::new(server.listeners[0].try_clone()?);
                for i in 0..workers {
                    let (listener, shared) = (listener.clone(), shared.clone());
                    server
                        .threads
                        .push(spawn(&format!("conlab-http-{i}"), move || {
                            blocking::accept_loop(&listener, &shared, false)
                        })?);
                }
            }
            ServerModel::ThreadPerConn => {
                let (listener, shared) = (server.listeners[0].try_clone()?, shared.clone());
                server.threads.push(spawn("conlab-http-accept", move || {
                    blocking::accept_loop(&listener, &shared, true)
                })?);
            }
            ServerModel::Event => {
                for i in 0..workers {
                    let listener =
                        server.listeners[if config.reuseport { i } else { 0 }].try_clone()?;
                    let (poll, waker) = event::poller()?;
                    let shared = shared.clone();
                    server.wakers.push(waker);
                    server
                        .threads
                        .push(spawn(&format!("conlab-loop-{i}"), move || {
                            event::run_loop(listener, &shared, poll)
                        })?);
                }
            }
        }
        Ok(server)
    }

    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether `event` uses one listener per loop (`SO_REUSEPORT`) or a shared one.
    pub fn listeners(&self) -> usize {
        self.listeners.len()
    }

    /// Stops accepting, ends every connection after its in-flight request, joins the workers.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for waker in self.wakers.drain(..) {
            let _ = waker.wake();
        }
        // Wake threads blocked in accept(): shutting a listening socket's read side makes
        // accept fail at once on Linux.
        for l in &self.listeners {
            let _ = socket2::SockRef::from(l).shutdown(std::net::Shutdown::Read);
        }
        for (_, conn) in lock(&self.shared.open).iter() {
            let _ = conn.shutdown(std::net::Shutdown::Read);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop();
        }
    }
}

/// What the bytes at the front of a connection's buffer call for next.
enum Step {
    /// Send `response` (after waiting `wait`, for `/sleep`), then go on if `keep_alive`.
    Answer {
        response: crate::response::Response,
        wait: Option<Duration>,
        head: bool,
        keep_alive: bool,
    },
    /// Not a whole request yet: read more.
    NeedMore,
}

impl Shared {
    /// Parses and handles the request at `buf[*start..]`, advancing `start` past it. A request
    /// that cannot be parsed becomes its error response, with the connection to be closed.
    fn next_step(&self, buf: &[u8], start: &mut usize) -> Step {
        use crate::codec::{Method, Parsed, parse};
        use crate::site::Reply;
        match parse(&buf[*start..], &self.config.limits) {
            Ok(Parsed::Complete { request, consumed }) => {
                *start += consumed;
                let (response, wait) = match self.site.handle(&request) {
                    Reply::Now(r) => (r, None),
                    Reply::After(d, r) => (r, Some(d)),
                };
                Step::Answer {
                    response,
                    wait,
                    head: request.method == Method::Head,
                    keep_alive: request.keep_alive,
                }
            }
            Ok(Parsed::Partial) => Step::NeedMore,
            Err(e) => Step::Answer {
                response: crate::response::Response::error(e.status()),
                wait: None,
                head: false,
                keep_alive: false,
            },
        }
    }

    /// Counts and appends a response; returns whether the connection stays open (not once
    /// the server is stopping).
    fn send(
        &self,
        out: &mut Vec<u8>,
        date: &mut crate::response::DateCache,
        response: &crate::response::Response,
        head: bool,
        keep_alive: bool,
    ) -> bool {
        self.site.count(response.status);
        let keep = keep_alive && !self.stopping.load(Ordering::SeqCst);
        crate::response::write_response(out, response, head, keep, date.now());
        keep
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_string()).spawn(f)
}
