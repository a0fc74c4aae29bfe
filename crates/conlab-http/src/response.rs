//! Writing responses: status line, `Server`, `Date`, `Content-Length`, `Content-Type`, and
//! `Connection: close` when the connection ends, appended to a buffer so that the answers to
//! a batch of pipelined requests go out in one `write`.
//!
//! `Date` changes once a second, so it is formatted once a second per thread
//! ([`DateCache`]), not once per request.

use std::time::{SystemTime, UNIX_EPOCH};

/// The `Server` header every model sends.
pub const SERVER: &str = "conlab";

/// A response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body (not sent for HEAD, but its length is).
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// The response to a request that could not be parsed: the reason as text.
    pub fn error(status: u16) -> Self {
        Self::text(status, format!("{} {}\n", status, reason(status)))
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The `Date` header's value, formatted again only when the second changes.
#[derive(Debug, Default)]
pub struct DateCache {
    second: u64,
    text: String,
}

impl DateCache {
    /// Today's `Date` value (`Tue, 24 Nov 2026 21:42:01 GMT`).
    pub fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        &self.text
    }
}

/// Appends `response` to `out`. `head` leaves the body out (HEAD); `keep_alive: false` adds
/// `Connection: close`.
pub fn write_response(
    out: &mut Vec<u8>,
    response: &Response,
    head: bool,
    keep_alive: bool,
    date: &str,
) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: {SERVER}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        },
    );
    if !head {
        out.extend_from_slice(&response.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_has_every_header_and_head_has_no_body() {
        let mut out = Vec::new();
        let r = Response::text(200, "Hello, World!");
        write_response(&mut out, &r, false, true, "Tue, 24 Nov 2026 21:42:01 GMT");
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: conlab\r\nDate: Tue, 24 Nov 2026 21:42:01 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\nHello, World!"
        );
        out.clear();
        write_response(&mut out, &r, true, false, "d");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("Content-Length: 13\r\nConnection: close\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn the_date_is_an_http_date_and_cached_within_a_second() {
        let mut cache = DateCache::default();
        let first = cache.now().to_string();
        assert!(first.ends_with(" GMT") && first.len() == 29, "{first}");
        assert!(httpdate::parse_http_date(&first).is_ok());
    }
}
