//! The event model: one tokio current-thread loop per worker thread (nginx's worker
//! processes, as threads), each serving many connections. Nothing here blocks the loop except
//! `/cpu`, on purpose: that is the lecture's lesson about CPU work on an event loop.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{Shared, Step};
use crate::response::{DateCache, Response, write_response};

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
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
        let mut stop_accepting = stop.clone();
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = stop_accepting.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let (shared, stop) = (shared.clone(), stop.clone());
                        connections.spawn_local(async move { let _ = serve(stream, &shared, stop).await; });
                    }
                    Err(_) if shared.stopping.load(Ordering::SeqCst) => break,
                    // EMFILE and friends: back off instead of spinning.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                },
            }
        }
        // Let every connection finish its in-flight request.
        while connections.join_next().await.is_some() {}
    });
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
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
                tokio::time::sleep(wait).await;
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
        if close || (*stop.borrow() && buf.is_empty()) {
            return Ok(());
        }
        if !buf.is_empty() && request_started.is_none() {
            request_started = Some(Instant::now());
        }
        let wait = match request_started {
            Some(t) => config.header_timeout.saturating_sub(t.elapsed()),
            None => config.idle_timeout,
        };
        let read = tokio::select! {
            read = tokio::time::timeout(wait, stream.read(&mut chunk)) => read,
            _ = stop.changed(), if request_started.is_none() => return Ok(()),
        };
        match read {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => {
                if request_started.is_none() {
                    request_started = Some(Instant::now());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Ok(Err(e)) => return Err(e),
            Err(_elapsed) => {
                if request_started.is_some() {
                    shared.site.count(408);
                    write_response(&mut out, &Response::error(408), false, false, date.now());
                    stream.write_all(&out).await?;
                }
                return Ok(());
            }
        }
    }
}
