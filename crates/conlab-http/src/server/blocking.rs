//! The blocking models: a thread owns a connection from accept to close, and blocks in
//! `read`, in `write` and in `/sleep`. Simple, and one connection per thread: the Apache way.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Shared, Step};
use crate::response::{DateCache, Response};

/// Accepts until the server stops; serves each connection here (threadpool) or on a new
/// thread (thread-per-conn).
pub(super) fn accept_loop(
    listener: &TcpListener,
    shared: &std::sync::Arc<Shared>,
    thread_per_conn: bool,
) {
    let mut pause = Duration::from_millis(1);
    let mut spawned = Vec::new();
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                pause = Duration::from_millis(1);
                if thread_per_conn {
                    let shared = shared.clone();
                    if let Ok(t) = std::thread::Builder::new().spawn(move || serve(stream, &shared))
                    {
                        spawned.push(t);
                    }
                    spawned.retain(|t: &std::thread::JoinHandle<()>| !t.is_finished());
                } else {
                    serve(stream, shared);
                }
            }
            Err(e) if shared.stopping.load(Ordering::SeqCst) => drop(e),
            Err(e)
                if e.raw_os_error() == Some(libc::EMFILE)
                    || e.raw_os_error() == Some(libc::ENFILE) =>
            {
                // Out of file descriptors: back off and let connections close, rather than
                // spinning or dying (the pending connection stays in the backlog).
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(_) => {}
        }
    }
    for t in spawned {
        let _ = t.join();
    }
}

/// Serves one connection to its end.
fn serve(stream: TcpStream, shared: &Shared) {
    let id = shared.register(&stream);
    let _ = serve_inner(stream, shared);
    shared.unregister(id);
}

fn serve_inner(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    shared.site.connection_opened();
    stream.set_nodelay(true)?;
    let config = &shared.config;
    let mut date = DateCache::default();
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut request_started: Option<Instant> = None;
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
                std::thread::sleep(wait);
            }
            if !shared.send(&mut out, &mut date, &response, head, keep_alive) {
                close = true;
                break;
            }
        }
        buf.drain(..start);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        if !buf.is_empty() && request_started.is_none() {
            request_started = Some(Instant::now());
        }
        let deadline = match request_started {
            Some(t) => config.header_timeout.saturating_sub(t.elapsed()),
            None => config.idle_timeout,
        };
        if deadline.is_zero() {
            return timeout(&mut stream, shared, &mut date, request_started.is_some());
        }
        stream.set_read_timeout(Some(deadline))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if request_started.is_none() {
                    request_started = Some(Instant::now());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return timeout(&mut stream, shared, &mut date, request_started.is_some());
            }
            Err(e) => return Err(e),
        }
    }
}

/// A half-sent request gets 408; an idle connection is just closed.
fn timeout(
    stream: &mut TcpStream,
    shared: &Shared,
    date: &mut DateCache,
    mid_request: bool,
) -> io::Result<()> {
    if mid_request {
        let mut out = Vec::new();
        shared.send(&mut out, date, &Response::error(408), false, false);
        stream.write_all(&out)?;
    }
    Ok(())
}
