//! The event model: one tokio current-thread loop per worker thread (nginx's worker
//! processes, as threads), each serving many connections. Nothing here blocks the loop except
//! `/cpu`, on purpose: that is the lecture's lesson about CPU work on an event loop.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{Shared, Step};
use crate::response::{DateCache, Response, write_response};

/// Free room in the request buffer before each read.
const READ_SIZE: usize = 16 * 1024;

/// The open connections of one loop, by id, so that shutdown can end the idle ones: one
/// `shutdown(SHUT_RD)` each makes their pending read return end-of-file. Registering costs
/// once per connection; watching a stop channel on every read cost once per request.
type Open = Rc<RefCell<HashMap<u64, RawFd>>>;

/// Runs one event loop on the calling thread until the server stops.
pub(super) fn run_loop(
    listener: TcpListener,
    shared: &std::sync::Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        if listener.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let mut stop_accepting = stop;
        let open: Open = Rc::default();
        let mut next_id = 0u64;
        let mut pause = Duration::from_millis(1);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = stop_accepting.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        pause = Duration::from_millis(1);
                        next_id += 1;
                        let (shared, open) = (shared.clone(), open.clone());
                        connections.spawn_local(async move {
                            let _ = serve(stream, &shared, next_id, &open).await;
                        });
                    }
                    Err(_) if shared.stopping.load(Ordering::SeqCst) => break,
                    // EMFILE and friends: back off (the connection waits in the backlog)
                    // instead of spinning, and let open connections finish and free fds.
                    Err(_) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                    }
                },
            }
            // Reap finished connections as we go, so the set does not grow with every
            // connection ever accepted.
            while connections.try_join_next().is_some() {}
        }
        for fd in open.borrow().values() {
            // SAFETY: every fd in `open` belongs to a live connection of this loop (removed
            // before its stream is dropped, on this same thread), so it is an open socket;
            // shutdown has no memory-safety preconditions. Exercised by the graceful-shutdown
            // tests in crates/conlab/tests/serve.rs.
            unsafe {
                libc::shutdown(*fd, libc::SHUT_RD);
            }
        }
        // Let every connection finish its in-flight request.
        while connections.join_next().await.is_some() {}
    });
}

/// Removes a connection from its loop's [`Open`] map when it ends, however it ends.
struct Registered<'a> {
    open: &'a Open,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.open.borrow_mut().remove(&self.id);
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    shared: &Shared,
    id: u64,
    open: &Open,
) -> std::io::Result<()> {
    shared.site.connection_opened();
    stream.set_nodelay(true)?;
    open.borrow_mut().insert(id, stream.as_raw_fd());
    // Declared after `stream`, so dropped before it: the fd leaves the map while still open.
    let _registered = Registered { open, id };
    let config = &shared.config;
    let mut date = DateCache::default();
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut request_started: Option<Instant> = None;
    let mut last_read = Instant::now();
    // One timer per connection, re-armed only when it fires early: arming a timer for every
    // read (tokio::time::timeout) put a timer-wheel insert and removal on every request.
    let timer = tokio::time::sleep_until((last_read + config.idle_timeout).into());
    tokio::pin!(timer);
    loop {
        let mut start = 0;
        let mut close = false;
        while let Step::Answer {
            response,
            wait,
            head,
            keep_alive,
        } = shared.next_step(&buf, &mut start)
        {
            request_started = None;
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
                // Idle time counts from the answer, not from a read long before it.
                last_read = Instant::now();
            }
            if !shared.send(&mut out, &mut date, &response, head, keep_alive) {
                close = true;
                break;
            }
        }
        buf.drain(..start);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close || (shared.stopping.load(Ordering::Relaxed) && buf.is_empty()) {
            return Ok(());
        }
        if !buf.is_empty() && request_started.is_none() {
            // A request has begun and is not whole: its headers are on the clock.
            let started = last_read;
            request_started = Some(started);
            let due = started + config.header_timeout;
            if due < timer.deadline().into_std() {
                timer.as_mut().reset(due.into());
            }
        }
        let read = tokio::select! {
            biased;
            // Straight into the request buffer's spare room: no copy out of a bounce buffer.
            read = { buf.reserve(READ_SIZE); stream.read_buf(&mut buf) } => read,
            () = &mut timer => {
                let due = match request_started {
                    Some(t) => t + config.header_timeout,
                    None => last_read + config.idle_timeout,
                };
                if due > Instant::now() {
                    timer.as_mut().reset(due.into());
                    continue;
                }
                if request_started.is_some() {
                    shared.site.count(408);
                    write_response(&mut out, &Response::error(408), false, false, date.now());
                    stream.write_all(&out).await?;
                }
                return Ok(());
            }
        };
        match read {
            Ok(0) => return Ok(()),
            Ok(_) => last_read = Instant::now(),
            Err(e) => return Err(e),
        }
    }
}
