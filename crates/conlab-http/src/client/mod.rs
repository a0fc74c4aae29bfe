//! conlab's HTTP/1.1 client, one for `load` and `fetch`: [`framing`] says where a response
//! ends (the load generator's hot loop reads with it directly); [`page`] reads a whole page
//! (decoding, extraction) with no socket; [`blocking`] and [`nonblocking`] drive it over
//! sockets for fetch's two models, threads and the event loop, with TLS from [`crate::tls`]
//! and a bounded pool of kept-alive connections each.
//!
//! Our own client on the codec the load generator already had, not hyper or reqwest: the
//! models are the experiment (a blocking client on threads against an event loop), the
//! page reader must stop at the title and stream a 1 GB body through 8 KiB, and the two
//! models must give the same rows: one sans-IO reader under both makes that so.

pub mod blocking;
pub(crate) mod framing;
pub mod nonblocking;
pub mod page;

pub use page::{ErrorKind, Failure, Page, Wants};

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

/// Where a connection goes: scheme, host and port. Connections are pooled by origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// `https`.
    pub tls: bool,
    /// The host as the URL spells it (a name, an IPv4 address, or `[v6]`).
    pub host: String,
    /// The port, default or given.
    pub port: u16,
}

impl Origin {
    /// The origin of an http or https URL.
    pub fn of(url: &Url) -> Option<Origin> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        Some(Origin {
            tls,
            host: url.host_str()?.to_string(),
            port: url.port_or_known_default()?,
        })
    }

    /// `host:port`, the key of the per-host limits.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The name TLS asks the certificate for: the host without brackets.
    pub fn server_name(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The address literal, when the host is one (no name to resolve).
    fn literal(&self) -> Option<SocketAddr> {
        self.server_name()
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// How a client connects and reads.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The most time a connect (and TLS handshake) may take.
    pub connect_timeout: Duration,
    /// The most time one request may take, connect included.
    pub timeout: Duration,
    /// The `User-Agent`.
    pub user_agent: String,
    /// Idle connections kept per origin.
    pub idle_per_origin: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            user_agent: concat!("conlab/", env!("CARGO_PKG_VERSION")).to_string(),
            idle_per_origin: 4,
        }
    }
}

/// How long the short rest of a page already read is waited for (it is read only to keep
/// the connection for the next page).
const DRAIN_WAIT: Duration = Duration::from_millis(500);

/// Bytes read at a time: bodies stream through this, never kept whole.
const READ_SIZE: usize = 8 * 1024;

/// An exchange's end, as one read (of `n` bytes, now at the end of `buf`) makes it: the page
/// and whether its connection can be kept, or a failure and whether it came before any
/// byte of the answer (a kept connection the server had closed). `None`: read on.
type End = Result<(Page, bool), (Failure, bool)>;

fn after_read(
    reader: &mut page::Reader,
    buf: &mut Vec<u8>,
    n: usize,
    received: &mut bool,
) -> Option<End> {
    if n == 0 {
        return Some(match reader.closed() {
            Ok(page) => Ok((page, false)),
            Err(failure) => Err((failure, !*received)),
        });
    }
    *received = true;
    match reader.feed(buf) {
        Err(failure) => Some(Err((failure, false))),
        Ok((used, page)) => {
            buf.drain(..used);
            page.map(|page| {
                let keep = page.reusable && buf.is_empty();
                Ok((page, keep))
            })
        }
    }
}

/// Whether a kept connection has something waiting: bytes nobody asked for (a stray
/// response) or the server's close. Then it cannot carry the next request: its answer would
/// be the stray bytes. A peek that does not wait and takes nothing.
fn stale(socket: &impl std::os::fd::AsFd) -> bool {
    let mut one = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(socket)
        .recv_with_flags(&mut one, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    {
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        Ok(_) => true,
    }
}

/// A read error as an exchange's end: a timeout is never "before the answer" (the request
/// is not sent again after its deadline), a reset before any byte is.
fn read_failure(e: &std::io::Error, received: bool) -> (Failure, bool) {
    let timed_out = matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    );
    (io_failure(e), !received && !timed_out)
}

/// A failed connect as a row's error.
fn connect_failure(e: &std::io::Error, origin: &Origin) -> Failure {
    let kind = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
        std::io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
        _ => ErrorKind::Connect,
    };
    Failure::new(
        kind,
        format!(
            "connect to {}: {e}{}",
            origin.authority(),
            descriptor_hint(e)
        ),
    )
}

/// What to do about a connect that failed for want of file descriptors (EMFILE, ENFILE);
/// empty for any other failure.
pub(crate) fn descriptor_hint(e: &std::io::Error) -> &'static str {
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        " (out of file descriptors: raise `ulimit -n`, or open fewer connections with -c)"
    } else {
        ""
    }
}

/// A failed name lookup as a row's error.
fn dns_failure(e: &std::io::Error, origin: &Origin) -> Failure {
    Failure::new(ErrorKind::Dns, format!("{}: {e}", origin.host))
}

/// A failed read or write once connected.
fn io_failure(e: &std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            Failure::new(ErrorKind::Timeout, "no whole response within the timeout")
        }
        _ if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            Failure::new(ErrorKind::Tls, crate::tls::explain(e))
        }
        _ => Failure::new(ErrorKind::Closed, format!("the connection failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_out_of_descriptors_says_to_raise_the_limit() {
        let origin = Origin::of(&Url::parse("http://127.0.0.1:9/").unwrap()).unwrap();
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let f = connect_failure(&emfile, &origin);
        assert_eq!(f.kind, ErrorKind::Connect);
        assert!(f.detail.contains("ulimit -n"), "{}", f.detail);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let f = connect_failure(&refused, &origin);
        assert_eq!(f.kind, ErrorKind::Refused);
        assert!(!f.detail.contains("ulimit"));
    }
}
