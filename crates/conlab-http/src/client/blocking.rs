//! The page reader over blocking sockets: the lecture's threads + `requests`. One
//! [`BlockingClient`] per thread, each with its own few kept-alive connections; a read
//! blocks its thread until bytes come or the request's deadline passes (a socket timeout
//! set to what is left of it before every read and write).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use url::Url;

use super::page::{self, Reader};
use super::{
    ClientOptions, ErrorKind, Failure, Origin, Page, READ_SIZE, Wants, after_read, connect_failure,
    dns_failure, io_failure,
};

/// A blocking connection: plain, or rustls over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn until(&self, deadline: Instant) -> std::io::Result<()> {
        until(self.tcp(), deadline)
    }
}

/// Sets the socket's timeouts to what is left before `deadline`; a timeout error if nothing
/// is.
fn until(tcp: &TcpStream, deadline: Instant) -> std::io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    tcp.set_read_timeout(Some(left))?;
    tcp.set_write_timeout(Some(left))
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The sockets of requests in flight, on every thread of a run, so that a stop can shut
/// them down: a thread blocked in a read has no other way to be woken.
#[derive(Debug, Default)]
pub struct OpenSockets {
    next: AtomicU64,
    shut: AtomicBool,
    open: Mutex<HashMap<u64, TcpStream>>,
}

impl OpenSockets {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, tcp: &TcpStream) -> Option<u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let clone = tcp.try_clone().ok()?;
        if self.shut.load(Ordering::Acquire) {
            let _ = clone.shutdown(Shutdown::Both);
        }
        self.open().insert(id, clone);
        Some(id)
    }

    fn remove(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.open().remove(&id);
        }
    }

    /// Shuts down every socket in flight, and any registered later.
    pub fn shut_all(&self) {
        self.shut.store(true, Ordering::Release);
        for tcp in self.open().values() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }
}

/// One thread's client.
pub struct BlockingClient {
    options: ClientOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: HashMap<Origin, Vec<Stream>>,
    sockets: Option<Arc<OpenSockets>>,
}

impl std::fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingClient")
            .field("options", &self.options)
            .field("idle", &self.idle.values().map(Vec::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

impl BlockingClient {
    /// A client; `tls` for https URLs (without it they fail with a TLS error).
    pub fn new(options: ClientOptions, tls: Option<&crate::tls::TlsClient>) -> BlockingClient {
        BlockingClient {
            options,
            tls: tls.map(crate::tls::TlsClient::config),
            idle: HashMap::new(),
            sockets: None,
        }
    }

    /// Registers each request's socket in `sockets` while it is in flight.
    pub fn with_open_sockets(mut self, sockets: Arc<OpenSockets>) -> BlockingClient {
        self.sockets = Some(sockets);
        self
    }

    /// One exchange, its socket registered for a stop meanwhile.
    fn exchange(
        &self,
        stream: Stream,
        request: &[u8],
        wants: &Wants,
        deadline: Instant,
    ) -> Result<(Page, Option<Stream>), (Failure, bool)> {
        let id = self.sockets.as_ref().and_then(|s| s.add(stream.tcp()));
        let result = exchange(stream, request, wants, deadline);
        if let Some(s) = &self.sockets {
            s.remove(id);
        }
        result
    }

    /// `GET url`, read as `wants` says, within the client's timeout.
    pub fn get(&mut self, url: &Url, wants: &Wants) -> Result<Page, Failure> {
        let origin = Origin::of(url)
            .ok_or_else(|| Failure::new(ErrorKind::InvalidUrl, "not an http or https URL"))?;
        let deadline = Instant::now() + self.options.timeout;
        let request = page::request(url, &self.options.user_agent);
        // A kept connection the server has since closed fails before the first byte of the
        // answer: then the request goes again on a new connection.
        while let Some(stream) = self.idle.get_mut(&origin).and_then(Vec::pop) {
            if super::stale(stream.tcp()) {
                continue;
            }
            match self.exchange(stream, &request, wants, deadline) {
                Ok((page, stream)) => return Ok(self.keep(origin, page, stream)),
                Err((_, true)) => {}
                Err((failure, false)) => return Err(failure),
            }
        }
        let stream = self.connect(&origin, deadline)?;
        match self.exchange(stream, &request, wants, deadline) {
            Ok((page, stream)) => Ok(self.keep(origin, page, stream)),
            Err((failure, _)) => Err(failure),
        }
    }

    fn keep(&mut self, origin: Origin, page: Page, stream: Option<Stream>) -> Page {
        if let Some(stream) = stream {
            let idle = self.idle.entry(origin).or_default();
            if idle.len() < self.options.idle_per_origin {
                idle.push(stream);
            }
        }
        page
    }

    fn connect(&self, origin: &Origin, deadline: Instant) -> Result<Stream, Failure> {
        let addrs: Vec<_> = match origin.literal() {
            Some(addr) => vec![addr],
            None => (origin.server_name(), origin.port)
                .to_socket_addrs()
                .map_err(|e| dns_failure(&e, origin))?
                .collect(),
        };
        let connect_by = deadline.min(Instant::now() + self.options.connect_timeout);
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            let left = connect_by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = Some(std::io::ErrorKind::TimedOut.into());
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(tcp) = tcp else {
            let e = last.unwrap_or_else(|| std::io::Error::other("the name has no address"));
            return Err(connect_failure(&e, origin));
        };
        let _ = tcp.set_nodelay(true);
        if !origin.tls {
            return Ok(Stream::Plain(tcp));
        }
        let tls_failure = |e: std::io::Error| Failure::new(ErrorKind::Tls, crate::tls::explain(&e));
        let config = self
            .tls
            .clone()
            .ok_or_else(|| Failure::new(ErrorKind::Tls, "TLS could not be set up"))?;
        let name = crate::tls::TlsClient::server_name(&origin.host).map_err(tls_failure)?;
        let conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| tls_failure(std::io::Error::other(e)))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        until(&stream.sock, connect_by).map_err(tls_failure)?;
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| {
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) {
                    Failure::new(
                        ErrorKind::Tls,
                        "tls: no handshake within the connect timeout",
                    )
                } else {
                    tls_failure(e)
                }
            })?;
        }
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// One request and its answer on `stream`: the page, and the stream when it can be kept.
/// A failure says whether it came before any byte of the answer (a stale kept connection).
fn exchange(
    mut stream: Stream,
    request: &[u8],
    wants: &Wants,
    deadline: Instant,
) -> Result<(Page, Option<Stream>), (Failure, bool)> {
    let mut reader = Reader::new(wants);
    let io = |e: std::io::Error, fresh: bool| (io_failure(&e), fresh);
    stream.until(deadline).map_err(|e| io(e, false))?;
    stream.write_all(request).map_err(|e| io(e, true))?;
    stream.flush().map_err(|e| io(e, true))?;
    let mut buf = Vec::with_capacity(READ_SIZE);
    let mut received = false;
    loop {
        // The rest of a page already read is waited for briefly: it only keeps the connection.
        let by = if reader.draining() {
            deadline.min(Instant::now() + super::DRAIN_WAIT)
        } else {
            deadline
        };
        if let Err(e) = stream.until(by) {
            return reader
                .salvage()
                .map(|page| (page, None))
                .ok_or((io_failure(&e), false));
        }
        let at = buf.len();
        buf.resize(at + READ_SIZE, 0);
        let n = match stream.read(&mut buf[at..]) {
            Ok(n) => n,
            Err(e) => {
                return match reader.salvage() {
                    Some(page) => Ok((page, None)),
                    None => Err(super::read_failure(&e, received)),
                };
            }
        };
        buf.truncate(at + n);
        if let Some(end) = after_read(&mut reader, &mut buf, n, &mut received) {
            return end.map(|(page, keep)| (page, keep.then_some(stream)));
        }
    }
}
