//! Writing responses: status line, `Server`, `Date`, `Content-Length`, `Content-Type`, and
//! `Connection: close` when the connection ends, appended to a buffer so that the answers to
//! a batch of pipelined requests go out in one `write`.
//!
//! `Date` changes once a second, so it is formatted once a second per thread
//! ([`DateCache`]), not once per request.

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

/// The `Server` header every model sends.
pub const SERVER: &str = "conlab";

/// A response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body (not sent for HEAD, but its length is); borrowed for fixed answers such as
    /// `/hello`, so that the hot path allocates nothing for it.
    pub body: Cow<'static, [u8]>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Cow::Owned(body.into()),
        }
    }

    /// A `text/plain` response whose body is a constant.
    pub fn fixed(status: u16, body: &'static str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Cow::Borrowed(body.as_bytes()),
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
        let second = coarse_unix_seconds();
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
        }
        &self.text
    }
}

/// Seconds since the Unix epoch from the kernel's coarse clock: a `Date` header needs whole
/// seconds, and the coarse clock is read without touching the TSC (a precise clock read per
/// response showed up in the event model's profile against nginx).
fn coarse_unix_seconds() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call; the clock id is
    // a constant the kernel knows. Exercised by `the_date_is_an_http_date_and_cached_within_a_second`.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0;
    if ok {
        u64::try_from(ts.tv_sec).unwrap_or(0)
    } else {
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// Appends `response` to `out`. `head` leaves the body out (HEAD); `keep_alive: false` adds
/// `Connection: close`.
///
/// Written piece by piece rather than with `write!`: the formatting machinery cost more than
/// parsing the request did.
pub fn write_response(
    out: &mut Vec<u8>,
    response: &Response,
    head: bool,
    keep_alive: bool,
    date: &str,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(response.status));
    out.push(b' ');
    out.extend_from_slice(reason(response.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(response.content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, response.body.len() as u64);
    if keep_alive {
        out.extend_from_slice(b"\r\n\r\n");
    } else {
        out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    }
    if !head {
        out.extend_from_slice(&response.body);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
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
        let parsed = httpdate::parse_http_date(&first).unwrap();
        let drift = parsed
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_secs(5), "{first} is {drift:?} off");
    }

    #[test]
    fn lengths_and_statuses_are_written_in_decimal() {
        for (n, text) in [
            (0u64, "0"),
            (7, "7"),
            (10, "10"),
            (404, "404"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, text.as_bytes());
        }
        let mut out = Vec::new();
        let body = vec![b'x'; 12345];
        write_response(&mut out, &Response::text(503, body), true, true, "d");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.ends_with("Content-Length: 12345\r\n\r\n"), "{text}");
    }
}
