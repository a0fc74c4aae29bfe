//! The event model, nginx's architecture: one event loop per worker thread, each serving
//! thousands of connections, switching at every wait. The loop is ours, over epoll (through
//! mio's safe wrapper): readiness in, a state machine per connection, timers in a heap. That
//! is the experiment, so no async runtime sits between the architecture and the kernel; the
//! loop makes the syscalls nginx makes, one `recv` and one `send` per request and an
//! `epoll_wait` per batch of ready connections. Nothing here blocks the loop except `/cpu`,
//! on purpose: that is the lecture's lesson about CPU work on an event loop.
//!
//! Per connection: bytes read but not yet a whole request, answers not yet written, and at
//! most one `/sleep` answer waiting for its time (pipelined requests behind it wait too, so
//! answers stay in order). Reads go into one buffer per loop and are parsed from there;
//! only the tail of a request split across reads is copied into the connection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::{Shared, Step};
use crate::response::{DateCache, Response};

/// The listener's token.
const LISTENER: Token = Token(usize::MAX - 1);
/// The token of the waker that tells a loop to stop.
pub(super) const WAKER: Token = Token(usize::MAX - 2);
/// The loop's read buffer: large enough for a deep pipeline in one `recv`.
const READ_SIZE: usize = 64 * 1024;
/// Reads one connection gets before the others' turn: a client that keeps its socket full
/// of pipelined requests must not hold the loop.
const READS_PER_TURN: usize = 16;

/// A `/sleep` answer waiting for its time.
struct Pending {
    due: Instant,
    response: Response,
    head: bool,
    keep_alive: bool,
}

struct Conn {
    stream: TcpStream,
    /// Bytes of a request not yet whole (empty whenever every read ended on a request's end).
    partial: Vec<u8>,
    /// Answers not yet written, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// Whether a read may find data (edge-triggered readiness, tracked here).
    readable: bool,
    /// When the request in `partial` began: its headers are on the header timeout's clock.
    request_started: Option<Instant>,
    last_active: Instant,
    pending: Option<Pending>,
    close_after_write: bool,
}

enum Next {
    Keep,
    Close,
}

/// One loop's state.
struct Loop<'a> {
    shared: &'a Shared,
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// `/sleep` answers by due time: (due, slot). A stale entry (the connection gone or its
    /// answer already sent) is skipped when it comes up.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    date: DateCache,
    scratch: Vec<u8>,
    /// Connections that used up their turn with data still to read. Readiness is
    /// edge-triggered, so no event will bring them back: they go again after this round.
    again: Vec<usize>,
    /// Out of descriptors: accept again at this time, after backing off.
    accept_again: Option<Instant>,
    accept_pause: Duration,
    next_sweep: Instant,
    stopping: bool,
}

/// Runs one event loop on the calling thread until the server stops and its connections end.
pub(super) fn run_loop(listener: std::net::TcpListener, shared: &Arc<Shared>, poll: Poll) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let mut listener = TcpListener::from_std(listener);
    if poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .is_err()
    {
        return;
    }
    let now = Instant::now();
    let mut ev = Loop {
        shared,
        poll,
        listener: Some(listener),
        conns: Vec::new(),
        free: Vec::new(),
        timers: BinaryHeap::new(),
        date: DateCache::default(),
        scratch: vec![0; READ_SIZE],
        again: Vec::new(),
        accept_again: None,
        accept_pause: Duration::from_millis(1),
        next_sweep: now + sweep_interval(shared),
        stopping: false,
    };
    ev.run();
}

/// How often idle and header timeouts are checked: a tenth of the shorter one, so a timeout
/// fires at most 10% late, without a timer per connection.
fn sweep_interval(shared: &Shared) -> Duration {
    let shortest = shared.config.idle_timeout.min(shared.config.header_timeout);
    (shortest / 10).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

impl Loop<'_> {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            if self.stopping && self.conns.iter().all(Option::is_none) {
                return;
            }
            let timeout = if self.again.is_empty() {
                // Round up: waking a millisecond early would only spin.
                self.next_deadline()
                    .saturating_duration_since(Instant::now())
                    + Duration::from_micros(999)
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.begin_stop(),
                    Token(slot) => {
                        let Some(Some(conn)) = self.conns.get_mut(slot) else {
                            continue;
                        };
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            conn.readable = true;
                        }
                        self.drive(slot);
                    }
                }
            }
            for slot in std::mem::take(&mut self.again) {
                self.drive(slot);
            }
            if !self.stopping && self.shared.stopping.load(Ordering::Relaxed) {
                self.begin_stop();
            }
            let now = Instant::now();
            self.fire_timers(now);
            if now >= self.next_sweep {
                self.sweep(now);
                self.next_sweep = now + sweep_interval(self.shared);
            }
            if self.accept_again.is_some_and(|t| now >= t) {
                self.accept_again = None;
                self.accept();
            }
        }
    }

    /// The soonest of the next sweep, `/sleep` answer and accept retry.
    fn next_deadline(&self) -> Instant {
        let mut next = self.next_sweep;
        if let Some(Reverse((due, _))) = self.timers.peek() {
            next = next.min(*due);
        }
        if let Some(t) = self.accept_again {
            next = next.min(t);
        }
        next
    }

    fn accept(&mut self) {
        if self.stopping || self.accept_again.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, _)) => {
                    self.accept_pause = Duration::from_millis(1);
                    let _ = stream.set_nodelay(true);
                    let slot = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    if self
                        .poll
                        .registry()
                        .register(
                            &mut stream,
                            Token(slot),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_err()
                    {
                        self.free.push(slot);
                        continue;
                    }
                    self.shared.site.connection_opened();
                    self.conns[slot] = Some(Conn {
                        stream,
                        partial: Vec::new(),
                        out: Vec::new(),
                        written: 0,
                        readable: true,
                        request_started: None,
                        last_active: Instant::now(),
                        pending: None,
                        close_after_write: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if e.raw_os_error() == Some(libc::EMFILE)
                        || e.raw_os_error() == Some(libc::ENFILE) =>
                {
                    // Out of file descriptors: the connection waits in the backlog. The
                    // listener is edge-triggered, so no new event will come for it: try again
                    // after a pause that doubles while the shortage lasts.
                    self.accept_again = Some(Instant::now() + self.accept_pause);
                    self.accept_pause = (self.accept_pause * 2).min(Duration::from_millis(100));
                    return;
                }
                // That connection is gone (aborted before we took it); the next may not be.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                // Anything else is the listener's own state (EINVAL once shutdown has shut
                // it): stop trying until the next event, and see whether we are stopping.
                Err(_) => {
                    if self.shared.stopping.load(Ordering::Relaxed) {
                        self.begin_stop();
                    }
                    return;
                }
            }
        }
    }

    /// Stops accepting; closes connections with nothing in flight. The rest end after their
    /// answer, which goes out with `Connection: close`.
    fn begin_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for slot in 0..self.conns.len() {
            if self.conns[slot]
                .as_ref()
                .is_some_and(|c| c.pending.is_none() && c.written >= c.out.len())
            {
                self.close(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns[slot].take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.free.push(slot);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((due, slot))) = self.timers.peek().copied() {
            if due > now {
                return;
            }
            self.timers.pop();
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.pending.as_ref().is_none_or(|p| p.due != due) {
                continue;
            }
            let Some(p) = conn.pending.take() else {
                continue;
            };
            if !self.shared.send(
                &mut conn.out,
                &mut self.date,
                &p.response,
                p.head,
                p.keep_alive,
            ) {
                conn.close_after_write = true;
            }
            // Idle time counts from the answer, not from the read long before it.
            conn.last_active = now;
            self.drive(slot);
        }
    }

    /// Idle connections closed, requests whose headers are late answered 408.
    fn sweep(&mut self, now: Instant) {
        let shared = self.shared;
        let config = &shared.config;
        for slot in 0..self.conns.len() {
            let Some(conn) = &mut self.conns[slot] else {
                continue;
            };
            if conn.pending.is_some() || conn.written < conn.out.len() || conn.close_after_write {
                continue;
            }
            match conn.request_started {
                Some(t) if now.duration_since(t) >= config.header_timeout => {
                    shared.send(
                        &mut conn.out,
                        &mut self.date,
                        &Response::error(408),
                        false,
                        false,
                    );
                    conn.close_after_write = true;
                    self.drive(slot);
                }
                None if now.duration_since(conn.last_active) >= config.idle_timeout => {
                    self.close(slot);
                }
                _ => {}
            }
        }
    }

    /// Moves connection `slot` as far as it can go without waiting: write what is owed, answer
    /// what was read, read what has come; closes it when it is done.
    fn drive(&mut self, slot: usize) {
        if let Next::Close = self.step(slot) {
            self.close(slot);
        }
    }

    fn step(&mut self, slot: usize) -> Next {
        let shared = self.shared;
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return Next::Keep;
        };
        let mut reads = 0;
        loop {
            // 1. Owed bytes first: nothing new is read until the client takes its answers.
            while conn.written < conn.out.len() {
                match conn.stream.write(&conn.out[conn.written..]) {
                    Ok(0) => return Next::Close,
                    Ok(n) => conn.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Next::Close,
                }
            }
            conn.out.clear();
            conn.written = 0;
            if conn.close_after_write {
                return Next::Close;
            }
            if conn.pending.is_some() {
                return Next::Keep;
            }
            // 2. Answer whole requests already buffered (after a /sleep, say).
            if !conn.partial.is_empty() {
                let input = std::mem::take(&mut conn.partial);
                let used = answer(shared, conn, &mut self.date, &mut self.timers, slot, &input);
                conn.partial = input;
                conn.partial.drain(..used);
                if !conn.out.is_empty() {
                    continue;
                }
                if conn.pending.is_some() || conn.close_after_write {
                    continue;
                }
            }
            if self.stopping {
                // No new requests once stopping: whatever was in flight has been answered.
                return Next::Close;
            }
            if !conn.partial.is_empty() && conn.request_started.is_none() {
                // A request has begun and is not whole: its headers are on the clock (set
                // here only: a connection still owed answers is not swept).
                conn.request_started = Some(conn.last_active);
            }
            // 3. Read: into the loop's buffer, answered from there; only a split request's
            // head is copied into the connection.
            if !conn.readable {
                return Next::Keep;
            }
            if reads == READS_PER_TURN {
                self.again.push(slot);
                return Next::Keep;
            }
            reads += 1;
            let n = match conn.stream.read(&mut self.scratch) {
                Ok(0) => return Next::Close,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.readable = false;
                    return Next::Keep;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close,
            };
            // A short read emptied the socket (nginx's rule): the next edge says when more
            // comes, so no recv that would only say EAGAIN.
            if n < self.scratch.len() {
                conn.readable = false;
            }
            conn.last_active = Instant::now();
            if conn.partial.is_empty() {
                let used = answer(
                    shared,
                    conn,
                    &mut self.date,
                    &mut self.timers,
                    slot,
                    &self.scratch[..n],
                );
                conn.partial.extend_from_slice(&self.scratch[used..n]);
            } else {
                // Answered at the top of the next round.
                conn.partial.extend_from_slice(&self.scratch[..n]);
            }
        }
    }
}

/// Answers the whole requests at the front of `input` into `conn.out`; returns the bytes
/// used. Stops at a `/sleep` (its answer waits in `conn.pending`, with a timer) and at an
/// answer that closes the connection.
fn answer(
    shared: &Shared,
    conn: &mut Conn,
    date: &mut DateCache,
    timers: &mut BinaryHeap<Reverse<(Instant, usize)>>,
    slot: usize,
    input: &[u8],
) -> usize {
    let mut start = 0;
    while let Step::Answer {
        response,
        wait,
        head,
        keep_alive,
    } = shared.next_step(input, &mut start)
    {
        conn.request_started = None;
        if let Some(wait) = wait {
            let due = Instant::now() + wait;
            timers.push(Reverse((due, slot)));
            conn.pending = Some(Pending {
                due,
                response,
                head,
                keep_alive,
            });
            break;
        }
        if !shared.send(&mut conn.out, date, &response, head, keep_alive) {
            conn.close_after_write = true;
            break;
        }
    }
    start
}

/// A poller and the waker that stops its loop, made before the loop's thread starts.
pub(super) fn poller() -> io::Result<(Poll, Arc<Waker>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    Ok((poll, waker))
}
