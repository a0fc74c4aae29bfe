//! The line `conlab serve --ready-json` prints once it listens: where, as which model, with
//! how many workers, and its pid. A program that starts a server (the tour, `bench http`, a
//! user's script) reads this one JSON line instead of parsing the human banner, which is
//! free to change.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The schema id of [`Ready`].
pub const READY_SCHEMA: &str = "conlab.serve-ready/1";

/// A server that has started listening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// [`READY_SCHEMA`].
    pub schema: String,
    /// The address it listens on (the real port when it was asked for port 0).
    pub addr: SocketAddr,
    /// The model's name: `prefork`, `threadpool`, `thread-per-conn`, `event`.
    pub model: String,
    /// Processes (prefork), threads (threadpool) or event loops (event).
    pub workers: usize,
    /// The server's process id (the prefork parent's, for prefork).
    pub pid: u32,
}

impl Ready {
    /// The line for a server of `model` with `workers`, listening on `addr`, in this process.
    pub fn new(addr: SocketAddr, model: &str, workers: usize) -> Ready {
        Ready {
            schema: READY_SCHEMA.to_string(),
            addr,
            model: model.to_string(),
            workers,
            pid: std::process::id(),
        }
    }

    /// The JSON line, without its newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a line printed by [`to_line`](Self::to_line); `None` for anything else.
    pub fn parse(line: &str) -> Option<Ready> {
        serde_json::from_str::<Ready>(line.trim())
            .ok()
            .filter(|r| r.schema == READY_SCHEMA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_reads_back_and_a_banner_does_not() {
        let ready = Ready::new("127.0.0.1:4242".parse().unwrap(), "event", 2);
        assert_eq!(Ready::parse(&ready.to_line()), Some(ready));
        assert_eq!(
            Ready::parse("conlab serve: event on http://127.0.0.1:1 (2 loops)"),
            None
        );
        assert_eq!(Ready::parse(r#"{"schema":"other/1"}"#), None);
    }
}
