//! The reader thread of one worker: reads its replies in order, completes each task's handle
//! from the front of the in-flight FIFO, measures the worker's service time (which sizes the
//! supervisor's window), and reports the worker's end of stream as its death.

use std::io::{BufReader, Read};
use std::process::ChildStdout;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::Sender;

use super::protocol;
use super::supervisor::{Event, InFlight, QUEUED_WORK_NS};
use crate::error::Error;
use crate::sync::lock;

/// What a reader thread shares with its supervisor.
pub(super) struct Link {
    pub(super) generation: u64,
    pub(super) in_flight: InFlight,
    pub(super) events: Sender<Event>,
    pub(super) credit_wanted: Arc<AtomicBool>,
    pub(super) service_ns: Arc<AtomicU64>,
}

pub(super) fn read_replies(stdout: ChildStdout, link: &Link) {
    let generation = link.generation;
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut hello = [0u8; 8];
    let result = match reader.read_exact(&mut hello) {
        Ok(()) if &hello == protocol::HELLO => Ok(()),
        Ok(()) => Err(format!(
            "it wrote {:?} instead of a hello",
            String::from_utf8_lossy(&hello)
        )),
        Err(e) => Err(format!("reading its hello: {e}")),
    };
    let said_hello = result.is_ok();
    let _ = link.events.send(Event::Hello { generation, result });
    let mut body = Vec::new();
    // When the previous reply came, if the worker had more queued: the gap to the next reply
    // is then one task's service time (plus its share of the pipe), which sizes the window.
    let mut busy_since: Option<Instant> = None;
    while said_hello && matches!(protocol::read_frame(&mut reader, &mut body), Ok(true)) {
        if body.len() < protocol::REPLY_HEADER {
            break;
        }
        let id = protocol::u64_at(&body, 0);
        let (front, more_queued) = {
            let mut in_flight = lock(&link.in_flight);
            let front = in_flight.pop_front();
            (front, !in_flight.is_empty())
        };
        let now = Instant::now();
        if let Some(since) = busy_since {
            let sample = now
                .duration_since(since)
                .as_nanos()
                .min(u128::from(u64::MAX)) as u64;
            let old = link.service_ns.load(Ordering::Relaxed);
            let ewma = if old == 0 {
                sample
            } else {
                (old * 7 + sample) / 8
            };
            link.service_ns.store(ewma.max(1), Ordering::Relaxed);
        } else if link.service_ns.load(Ordering::Relaxed) == 0 {
            // The first reply: no gap to measure yet, but the task finished, so allow a
            // second one in the pipe.
            link.service_ns.store(QUEUED_WORK_NS / 2, Ordering::Relaxed);
        }
        busy_since = more_queued.then_some(now);
        match front {
            Some(p) if p.id.0 == id => {
                p.completion
                    .complete(body[8], &body[protocol::REPLY_HEADER..]);
            }
            Some(p) => {
                let task = p.id;
                p.completion.fail(Error::Worker(format!(
                    "protocol error: expected the reply to task {task}, got one for #{id}"
                )));
                break;
            }
            None => break,
        }
        if reader.buffer().is_empty() && link.credit_wanted.swap(false, Ordering::AcqRel) {
            let _ = link.events.send(Event::Credit);
        }
    }
    let _ = link.events.send(Event::Died { generation });
}
