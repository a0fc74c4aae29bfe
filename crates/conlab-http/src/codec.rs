//! Bytes in, requests out: an HTTP/1.1 request parser over a buffer, with no I/O.
//!
//! [`parse`] looks at the front of a connection's read buffer and answers one of: a complete
//! request and how many bytes it used (the rest may hold more pipelined requests), "not yet"
//! (read more), or an error that maps to a status code. Header parsing is httparse's; the
//! rules around it are ours and follow RFC 9112:
//!
//! - headers larger than [`Limits::max_header_bytes`] or more numerous than
//!   [`Limits::max_headers`]: **431**; a body over [`Limits::max_body_bytes`]: **413**, decided
//!   from `Content-Length` before the body is read;
//! - `Content-Length` *and* `Transfer-Encoding` together, or two different `Content-Length`s:
//!   **400** — the ambiguity request smuggling lives on, refused rather than resolved;
//! - a `Transfer-Encoding` other than `chunked`: **501**; a version other than 1.0/1.1: **505**;
//! - HTTP/1.1 without `Host`, a malformed request line, header, length or chunk: **400**.
//!
//! Keep-alive: on by default in 1.1 unless `Connection: close`; off in 1.0 unless
//! `Connection: keep-alive`.

/// The most header lines any [`Limits`] can allow (the parser's array is this big).
pub const MAX_HEADERS: usize = 128;

/// How much a request may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of request line and headers together.
    pub max_header_bytes: usize,
    /// Number of header lines (at most [`MAX_HEADERS`]).
    pub max_headers: usize,
    /// Bytes of body (after chunked decoding).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    /// 8 KiB of headers in at most 64 lines, 1 MiB of body (nginx: 8 KiB buffers, 1 MiB body).
    fn default() -> Self {
        Limits {
            max_header_bytes: 8 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// The request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: a GET whose body is not sent.
    Head,
    /// `POST`.
    Post,
    /// Any other method token.
    Other(String),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without the query (`/cpu`).
    pub path: String,
    /// The query string without `?` (`n=1000`), if any.
    pub query: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The body, decoded if it was chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of query parameter `name` (`/cpu?n=1000` -> `n` -> `1000`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

/// What the front of the buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, which used the first `consumed` bytes.
    Complete {
        /// The request.
        request: Request,
        /// Bytes it took from the buffer.
        consumed: usize,
    },
    /// Not a whole request yet: read more.
    Partial,
}

/// A request that must be refused, and with which status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// 400: the bytes are not a valid request; the reason says why.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 431: headers too large or too many.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// 413: the body is over the limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// 501: a transfer coding other than chunked.
    #[error("transfer coding not implemented")]
    NotImplemented,
    /// 505: not HTTP/1.0 or 1.1.
    #[error("HTTP version not supported")]
    VersionNotSupported,
}

impl CodecError {
    /// The status code to answer with (the connection is closed after it).
    pub fn status(&self) -> u16 {
        match self {
            CodecError::BadRequest(_) => 400,
            CodecError::HeadersTooLarge => 431,
            CodecError::BodyTooLarge => 413,
            CodecError::NotImplemented => 501,
            CodecError::VersionNotSupported => 505,
        }
    }
}

/// Parses the request at the front of `buf`.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Parsed, CodecError> {
    // On the stack and uninitialised: a heap allocation per request showed up against
    // nginx's figures, and so did zeroing 128 headers (4 KiB) for every request.
    let mut storage =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let headers = &mut storage[..limits.max_headers.clamp(1, MAX_HEADERS)];
    let header_len = match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(n)) if n > limits.max_header_bytes => {
            return Err(CodecError::HeadersTooLarge);
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_header_bytes => {
            return Err(CodecError::HeadersTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(CodecError::HeadersTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(CodecError::BadRequest("malformed request line or header")),
    };
    let minor_version = req
        .version
        .ok_or(CodecError::BadRequest("no HTTP version"))?;
    let method = match req.method.ok_or(CodecError::BadRequest("no method"))? {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        other => Method::Other(other.to_string()),
    };
    let target = req
        .path
        .ok_or(CodecError::BadRequest("no request target"))?;
    let (path, query) = split_target(target)?;

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut has_host = false;
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value)
                .map_err(|_| CodecError::BadRequest("Content-Length is not text"))?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CodecError::BadRequest("Content-Length is not a number"));
            }
            let n: usize = text.parse().map_err(|_| CodecError::BodyTooLarge)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(CodecError::BadRequest("two different Content-Lengths"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !h.value.eq_ignore_ascii_case(b"chunked") || chunked {
                return Err(CodecError::NotImplemented);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("host") {
            if has_host {
                return Err(CodecError::BadRequest("two Host headers"));
            }
            has_host = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                connection_close |= token.eq_ignore_ascii_case(b"close");
                connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if chunked && content_length.is_some() {
        return Err(CodecError::BadRequest(
            "both Content-Length and Transfer-Encoding (smuggling)",
        ));
    }
    if chunked && minor_version == 0 {
        return Err(CodecError::BadRequest("Transfer-Encoding in HTTP/1.0"));
    }
    if minor_version == 1 && !has_host {
        return Err(CodecError::BadRequest("HTTP/1.1 request without Host"));
    }
    let keep_alive = if minor_version == 1 {
        !connection_close
    } else {
        connection_keep_alive && !connection_close
    };

    let (body, consumed) = if chunked {
        match dechunk(&buf[header_len..], limits.max_body_bytes)? {
            Some((body, used)) => (body, header_len + used),
            None => return Ok(Parsed::Partial),
        }
    } else {
        let n = content_length.unwrap_or(0);
        if n > limits.max_body_bytes {
            return Err(CodecError::BodyTooLarge);
        }
        if buf.len() < header_len + n {
            return Ok(Parsed::Partial);
        }
        (buf[header_len..header_len + n].to_vec(), header_len + n)
    };
    Ok(Parsed::Complete {
        request: Request {
            method,
            path,
            query,
            minor_version,
            keep_alive,
            body,
        },
        consumed,
    })
}

/// 505 for a well-formed `HTTP/x.y` that is not 1.0/1.1, 400 for anything else.
fn version_error(buf: &[u8]) -> CodecError {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let well_formed = matches!(parts.as_slice(), [_, _, v]
        if v.len() == 8 && v.starts_with(b"HTTP/") && v[5].is_ascii_digit() && v[6] == b'.' && v[7].is_ascii_digit());
    if well_formed {
        CodecError::VersionNotSupported
    } else {
        CodecError::BadRequest("malformed request line")
    }
}

fn split_target(target: &str) -> Result<(String, Option<String>), CodecError> {
    // Absolute form (`http://host/path`), as proxies send it: keep the path.
    let target = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    if target == "*" {
        return Ok(("*".into(), None));
    }
    if !target.starts_with('/') {
        return Err(CodecError::BadRequest("request target is not a path"));
    }
    Ok(match target.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (target.to_string(), None),
    })
}

/// Decodes a chunked body: `Some((body, bytes used))`, or `None` if more bytes are needed.
fn dechunk(mut buf: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>, CodecError> {
    let start = buf.len();
    let mut body = Vec::new();
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(CodecError::BadRequest("malformed chunk size")),
        };
        let size = usize::try_from(size).map_err(|_| CodecError::BodyTooLarge)?;
        if body.len().saturating_add(size) > max {
            return Err(CodecError::BodyTooLarge);
        }
        buf = &buf[size_len..];
        if size == 0 {
            // Trailers (ignored) up to an empty line.
            loop {
                let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                let line_empty = end == 0;
                buf = &buf[end + 2..];
                if line_empty {
                    return Ok(Some((body, start - buf.len())));
                }
            }
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err(CodecError::BadRequest("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

/// One malformed or adversarial request and the status it must get.
#[derive(Debug, Clone)]
pub struct Adversarial {
    /// What is wrong with it.
    pub name: &'static str,
    /// The bytes a client sends.
    pub raw: Vec<u8>,
    /// The status the server must answer with (then close the connection).
    pub status: u16,
}

impl Adversarial {
    fn new(name: &'static str, raw: impl Into<Vec<u8>>, status: u16) -> Self {
        Adversarial {
            name,
            raw: raw.into(),
            status,
        }
    }
}

/// The corpus of malformed and adversarial requests (smuggling, oversized and malformed
/// heads, bad lengths and chunks), each with its status: the codec's tests check the parser
/// against it, the server tests every live model, so one table says what "right" is.
pub fn adversarial_requests() -> Vec<Adversarial> {
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: 1\r\n".repeat(70)
    );
    let endless = "GET /".to_string() + &"a".repeat(9000);
    vec![
        Adversarial::new("garbage", b"\x00\x01\x02garbage\r\n\r\n".to_vec(), 400),
        Adversarial::new("no version", b"GET /\r\n\r\n".to_vec(), 400),
        Adversarial::new("lowercase version", b"GET / http/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        Adversarial::new("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 505),
        Adversarial::new("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n".to_vec(), 505),
        Adversarial::new("space in method", b"G ET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        Adversarial::new("target not a path", b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        Adversarial::new("no Host in 1.1", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        Adversarial::new("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        Adversarial::new("header without colon", b"GET / HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n".to_vec(), 400),
        Adversarial::new("space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), 400),
        Adversarial::new("NUL in header", b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n".to_vec(), 400),
        Adversarial::new("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n".to_vec(), 400),
        Adversarial::new("header too large", big_header.into_bytes(), 431),
        Adversarial::new("too many headers", many_headers.into_bytes(), 431),
        Adversarial::new("endless request line", endless.into_bytes(), 431),
        Adversarial::new("CL and TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        Adversarial::new("TE and CL", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".to_vec(), 400),
        Adversarial::new("two different CLs", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(), 400),
        Adversarial::new("negative CL", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(), 400),
        Adversarial::new("CL with a sign", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello".to_vec(), 400),
        Adversarial::new("CL list", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello".to_vec(), 400),
        Adversarial::new("CL not a number", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: five\r\n\r\n".to_vec(), 400),
        Adversarial::new("huge CL", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(), 413),
        Adversarial::new("body over the limit", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".to_vec(), 413),
        Adversarial::new("gzip transfer coding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501),
        Adversarial::new("chunked twice", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 501),
        Adversarial::new("chunked in 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        Adversarial::new("bad chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(), 400),
        Adversarial::new("chunk without CRLF", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n".to_vec(), 400),
        Adversarial::new("chunks over the limit", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n".to_vec(), 413),
        Adversarial::new("chunk size overflow", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n".to_vec(), 400),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(raw: &[u8]) -> Result<Parsed, CodecError> {
        parse(raw, &Limits::default())
    }

    fn complete(raw: &[u8]) -> (Request, usize) {
        match parse_all(raw) {
            Ok(Parsed::Complete { request, consumed }) => (request, consumed),
            other => panic!(
                "expected a request from {:?}, got {other:?}",
                String::from_utf8_lossy(raw)
            ),
        }
    }

    #[test]
    fn a_get_with_a_query() {
        let raw = b"GET /cpu?n=1000&x HTTP/1.1\r\nHost: a\r\n\r\n";
        let (r, n) = complete(raw);
        assert_eq!(
            (&r.method, r.path.as_str(), r.param("n"), r.param("x")),
            (&Method::Get, "/cpu", Some("1000"), Some(""))
        );
        assert!(r.keep_alive);
        assert_eq!(n, raw.len());
    }

    #[test]
    fn pipelined_requests_are_taken_one_at_a_time() {
        let raw = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HT";
        let (a, n) = complete(raw);
        assert_eq!(a.path, "/a");
        let (b, m) = complete(&raw[n..]);
        assert_eq!(b.path, "/b");
        assert_eq!(parse_all(&raw[n + m..]), Ok(Parsed::Partial));
    }

    #[test]
    fn bodies_by_length_and_by_chunks() {
        let raw = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET";
        let (r, n) = complete(raw);
        assert_eq!((r.body.as_slice(), &raw[n..]), (&b"hello"[..], &b"GET"[..]));
        let raw = b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let (r, n) = complete(raw);
        assert_eq!(r.body, b"hello world");
        assert_eq!(&raw[n..], b"NEXT");
        let cut = b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert_eq!(parse_all(cut), Ok(Parsed::Partial));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Close\r\n\r\n")
                .0
                .keep_alive
        );
    }

    /// At least 30 malformed or adversarial requests, each with the status it must get.
    #[test]
    fn adversarial_requests_get_the_right_status() {
        let cases = adversarial_requests();
        assert!(cases.len() >= 30);
        for case in cases {
            match parse_all(&case.raw) {
                Err(e) => assert_eq!(e.status(), case.status, "{}: {e}", case.name),
                Ok(other) => panic!("{}: expected {}, got {other:?}", case.name, case.status),
            }
        }
    }

    #[test]
    fn every_prefix_of_a_valid_request_is_partial_never_an_error() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse_all(&raw[..cut]), Ok(Parsed::Partial), "cut at {cut}");
        }
        assert!(matches!(parse_all(raw), Ok(Parsed::Complete { .. })));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            if let Ok(Parsed::Complete { consumed, .. }) = parse_all(&bytes) {
                proptest::prop_assert!(consumed <= bytes.len());
            }
        }

        #[test]
        fn a_request_parses_the_same_however_it_is_split(body in "[a-z]{0,40}", split in 0usize..200) {
            let raw = format!("POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let raw = raw.as_bytes();
            let cut = split.min(raw.len());
            let first = parse_all(&raw[..cut]).unwrap();
            if cut < raw.len() {
                proptest::prop_assert_eq!(first, Parsed::Partial);
            }
            let (request, consumed) = complete(raw);
            proptest::prop_assert_eq!(consumed, raw.len());
            proptest::prop_assert_eq!(request.body, body.as_bytes());
        }
    }
}
