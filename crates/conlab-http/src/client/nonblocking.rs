//! The page reader on tokio: the lecture's asyncio + aiohttp. One [`AsyncClient`] is shared
//! by every task of a run; its pool of kept-alive connections is a map under a lock held
//! only to take or return a connection, never across an `await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::page::{self, Reader};
use super::{
    ClientOptions, ErrorKind, Failure, Origin, Page, READ_SIZE, Wants, after_read, connect_failure,
    dns_failure, io_failure,
};
use crate::tls::{Conn, TlsClient};

/// A client shared by tasks.
pub struct AsyncClient {
    options: ClientOptions,
    tls: Option<TlsClient>,
    idle: Mutex<HashMap<Origin, Vec<Conn>>>,
    /// HTTP/2 connections, one per origin that chose it by ALPN: every request to the origin
    /// is a stream on it.
    h2: Mutex<HashMap<Origin, h2::client::SendRequest<bytes::Bytes>>>,
    /// https origins whose protocol is not known yet: their first connect is made by one
    /// task while the others wait, so an HTTP/2 origin gets one connection, not one per task.
    first: Mutex<HashMap<Origin, Arc<tokio::sync::Mutex<bool>>>>,
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl AsyncClient {
    /// A client; `tls` for https URLs (without it they fail with a TLS error).
    pub fn new(options: ClientOptions, tls: Option<TlsClient>) -> AsyncClient {
        AsyncClient {
            options,
            tls,
            idle: Mutex::new(HashMap::new()),
            h2: Mutex::new(HashMap::new()),
            first: Mutex::new(HashMap::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, Vec<Conn>>> {
        // A panic elsewhere while the lock was held leaves a map of connections: still good.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET url`, read as `wants` says, within the client's timeout.
    pub async fn get(&self, url: &Url, wants: &Wants) -> Result<Page, Failure> {
        let origin = Origin::of(url)
            .ok_or_else(|| Failure::new(ErrorKind::InvalidUrl, "not an http or https URL"))?;
        let deadline = Instant::now() + self.options.timeout;
        let request = page::request(url, &self.options.user_agent);
        let timed = async {
            // An origin that speaks HTTP/2 already has a connection for every request.
            let multiplexed = self.h2_lock().get(&origin).cloned();
            if let Some(send) = multiplexed {
                match send.ready().await {
                    Ok(send) => {
                        return h2_exchange(send, url, wants, &self.options, deadline).await;
                    }
                    Err(_) => {
                        self.h2_lock().remove(&origin);
                    }
                }
            }
            // As the blocking client: a kept connection that fails before the first byte of
            // the answer was closed by the server meanwhile; the request goes again.
            loop {
                let kept = self.idle().get_mut(&origin).and_then(Vec::pop);
                let Some(conn) = kept else { break };
                if super::stale(conn.tcp()) {
                    continue;
                }
                match exchange(conn, &request, wants, deadline).await {
                    Ok((page, conn)) => return Ok(self.keep(origin, page, conn)),
                    Err((_, true)) => {}
                    Err((failure, false)) => return Err(failure),
                }
            }
            // The first https connect to an origin: until its ALPN answer is known, one task
            // connects and the others wait for it (then take HTTP/2 streams, or connect).
            let gate = origin.tls.then(|| {
                let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
                Arc::clone(first.entry(origin.clone()).or_default())
            });
            let mut guard = match &gate {
                Some(gate) => Some(gate.lock().await),
                None => None,
            };
            if guard.as_ref().is_some_and(|known| **known) {
                // Another task learned the protocol meanwhile.
                guard = None;
                let multiplexed = self.h2_lock().get(&origin).cloned();
                if let Some(send) = multiplexed
                    && let Ok(send) = send.ready().await
                {
                    return h2_exchange(send, url, wants, &self.options, deadline).await;
                }
            }
            let conn = self.connect(&origin, deadline).await?;
            if let Some(known) = guard.as_mut() {
                **known = true;
            }
            if let Conn::Tls(tls) = &conn
                && tls.get_ref().1.alpn_protocol() == Some(b"h2")
            {
                let (send, connection) = h2::client::handshake(conn)
                    .await
                    .map_err(|e| h2_failure(&e))?;
                // The connection's frames are read and written by a task of its own.
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                self.h2_lock().entry(origin).or_insert_with(|| send.clone());
                drop(guard);
                return h2_exchange(send, url, wants, &self.options, deadline).await;
            }
            // HTTP/1.1: the others need not wait for this exchange, only for the answer to ALPN.
            drop(guard);
            match exchange(conn, &request, wants, deadline).await {
                Ok((page, conn)) => Ok(self.keep(origin, page, conn)),
                Err((failure, _)) => Err(failure),
            }
        };
        tokio::time::timeout_at(deadline.into(), timed)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::new(
                    ErrorKind::Timeout,
                    "no whole response within the timeout",
                ))
            })
    }

    fn h2_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Origin, h2::client::SendRequest<bytes::Bytes>>> {
        self.h2.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn keep(&self, origin: Origin, page: Page, conn: Option<Conn>) -> Page {
        if let Some(conn) = conn {
            let mut idle = self.idle();
            let kept = idle.entry(origin).or_default();
            if kept.len() < self.options.idle_per_origin {
                kept.push(conn);
            }
        }
        page
    }

    async fn connect(&self, origin: &Origin, deadline: Instant) -> Result<Conn, Failure> {
        let connect_by = deadline.min(Instant::now() + self.options.connect_timeout);
        let timed_out = || {
            Failure::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "connect to {}: no answer within {:?}",
                    origin.authority(),
                    self.options.connect_timeout
                ),
            )
        };
        let connecting = async {
            let addrs: Vec<_> = match origin.literal() {
                Some(addr) => vec![addr],
                None => tokio::net::lookup_host((origin.server_name(), origin.port))
                    .await
                    .map_err(|e| dns_failure(&e, origin))?
                    .collect(),
            };
            let mut last = None;
            for addr in addrs {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            let e = last.unwrap_or_else(|| std::io::Error::other("the name has no address"));
            Err(connect_failure(&e, origin))
        };
        let tcp = tokio::time::timeout_at(connect_by.into(), connecting)
            .await
            .map_err(|_| timed_out())??;
        let _ = tcp.set_nodelay(true);
        if !origin.tls {
            return Ok(Conn::Plain(tcp));
        }
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| Failure::new(ErrorKind::Tls, "TLS could not be set up"))?;
        match tokio::time::timeout_at(connect_by.into(), tls.connect(tcp, &origin.host)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(Failure::new(ErrorKind::Tls, crate::tls::explain(&e))),
            Err(_) => Err(Failure::new(
                ErrorKind::Tls,
                "tls: no handshake within the connect timeout",
            )),
        }
    }
}

/// One request and its answer on `conn`, by `deadline`: the page, and the connection when
/// it can be kept. A failure says whether it came before any byte of the answer.
async fn exchange(
    mut conn: Conn,
    request: &[u8],
    wants: &Wants,
    deadline: Instant,
) -> Result<(Page, Option<Conn>), (Failure, bool)> {
    let mut reader = Reader::new(wants);
    let io = |e: std::io::Error, fresh: bool| (io_failure(&e), fresh);
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let by = tokio::time::Instant::from_std(deadline);
    let sent = tokio::time::timeout_at(by, async {
        conn.write_all(request).await?;
        conn.flush().await
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(io(e, true)),
        Err(_) => return Err(io(timed_out(), false)),
    }
    let mut buf = Vec::with_capacity(READ_SIZE);
    let mut received = false;
    loop {
        buf.reserve(READ_SIZE);
        // Timed here, not around the exchange: a page whose title is read keeps it when the
        // rest of the body never comes.
        // The rest of a page already read is waited for briefly: it only keeps the connection.
        let until = if reader.draining() {
            by.min(tokio::time::Instant::now() + super::DRAIN_WAIT)
        } else {
            by
        };
        let read = tokio::time::timeout_at(until, conn.read_buf(&mut buf))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                return match reader.salvage() {
                    Some(page) => Ok((page, None)),
                    None => Err(super::read_failure(&e, received)),
                };
            }
        };
        if let Some(end) = after_read(&mut reader, &mut buf, n, &mut received) {
            return end.map(|(page, keep)| (page, keep.then_some(conn)));
        }
    }
}

/// An HTTP/2 failure as a row's error.
fn h2_failure(e: &h2::Error) -> Failure {
    Failure::new(ErrorKind::Closed, format!("http/2: {e}"))
}

/// One GET as a stream of an HTTP/2 connection, by `deadline`: the same page reader, given
/// the HEADERS frame's status and fields, then the DATA frames.
async fn h2_exchange(
    send: h2::client::SendRequest<bytes::Bytes>,
    url: &Url,
    wants: &Wants,
    options: &ClientOptions,
    deadline: Instant,
) -> Result<Page, Failure> {
    let mut send = send;
    let request = http::Request::get(url.as_str())
        .header(http::header::USER_AGENT, options.user_agent.as_str())
        .header(
            http::header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8",
        )
        .header(http::header::ACCEPT_ENCODING, "gzip, deflate, br")
        .body(())
        .map_err(|e| Failure::new(ErrorKind::InvalidUrl, format!("http/2 request: {e}")))?;
    let mut reader = Reader::new(wants);
    let streamed = async {
        let (response, _) = send
            .send_request(request, true)
            .map_err(|e| h2_failure(&e))?;
        let response = response.await.map_err(|e| h2_failure(&e))?;
        let (parts, mut body) = response.into_parts();
        let header = |name: http::header::HeaderName| {
            let mut values = parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok());
            values.next().map(|first| {
                values.fold(first.trim().to_string(), |list, v| {
                    format!("{list}, {}", v.trim())
                })
            })
        };
        let fields = super::framing::Fields {
            location: header(http::header::LOCATION),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            content_encoding: header(http::header::CONTENT_ENCODING),
            retry_after: parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        if let Some(page) = reader.h2_head(parts.status.as_u16(), fields)? {
            return Ok(page);
        }
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| h2_failure(&e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if let (_, Some(page)) = reader.feed(&chunk)? {
                // Dropping the stream resets it: the rest of the page is not sent.
                return Ok(page);
            }
        }
        reader.closed()
    };
    match tokio::time::timeout_at(deadline.into(), streamed).await {
        Ok(result) => result,
        Err(_) => reader.salvage().ok_or_else(|| {
            Failure::new(ErrorKind::Timeout, "no whole response within the timeout")
        }),
    }
}
