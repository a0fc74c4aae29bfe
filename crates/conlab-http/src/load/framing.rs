//! Where one response ends, as RFC 9112 (section 6.3) says: no body for HEAD, 1xx, 204 and
//! 304; chunked bodies by their chunks; others by Content-Length; and, with neither, at the
//! end of the connection. Bytes in, a verdict out: no sockets here, so every case is tested
//! on bytes.

/// What the front of a read buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Framed {
    /// A whole response of `len` bytes.
    Complete {
        /// Its status code.
        status: u16,
        /// Its bytes, head and body.
        len: usize,
        /// The server will close the connection after it.
        close: bool,
    },
    /// A response whose body runs until the server closes the connection.
    UntilClose {
        /// Its status code.
        status: u16,
    },
    /// More bytes are needed.
    Partial,
    /// Not a response this client can read; the reason, for the report.
    Malformed(&'static str),
}

/// Frames the response at the front of `buf`; `head` when it answers a HEAD request.
pub(super) fn frame(buf: &[u8], head: bool) -> Framed {
    // Uninitialised slots: zeroing 32 headers for every response was measurable.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 32];
    let mut resp = httparse::Response::new(&mut []);
    let header_len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Framed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Framed::Malformed("more than 32 headers"),
        Err(_) => return Framed::Malformed("not an HTTP/1.x response"),
    };
    let status = resp.code.unwrap_or(0);
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            match (n, length) {
                (None, _) => return Framed::Malformed("a Content-Length that is not a number"),
                (Some(n), Some(m)) if n != m => {
                    return Framed::Malformed("two different Content-Lengths");
                }
                (Some(n), _) => length = Some(n),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return Framed::Malformed("a Transfer-Encoding other than chunked");
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    if head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framed::Complete {
            status,
            len: header_len,
            close,
        };
    }
    if chunked {
        return match chunked_len(&buf[header_len..]) {
            Ok(Some(body)) => Framed::Complete {
                status,
                len: header_len + body,
                close,
            },
            Ok(None) => Framed::Partial,
            Err(why) => Framed::Malformed(why),
        };
    }
    match length {
        Some(n) if buf.len() >= header_len.saturating_add(n) => Framed::Complete {
            status,
            len: header_len + n,
            close,
        },
        Some(_) => Framed::Partial,
        None => Framed::UntilClose { status },
    }
}

/// The length of a chunked body at the front of `body`, trailers included; `None` when it
/// is not all there yet.
fn chunked_len(body: &[u8]) -> Result<Option<usize>, &'static str> {
    let mut at = 0;
    loop {
        let (line, size) = match httparse::parse_chunk_size(&body[at..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("a chunk size that is not hexadecimal"),
        };
        at += line;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let Some(end) = body[at..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some(at));
                }
            }
        }
        let size = usize::try_from(size).map_err(|_| "a chunk larger than memory")?;
        let next = at.checked_add(size).and_then(|n| n.checked_add(2));
        match next {
            Some(n) if n <= body.len() => {
                if &body[n - 2..n] != b"\r\n" {
                    return Err("a chunk that does not end with CRLF");
                }
                at = n;
            }
            Some(_) => return Ok(None),
            None => return Err("a chunk larger than memory"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8], head: bool) -> (u16, usize, bool) {
        match frame(buf, head) {
            Framed::Complete { status, len, close } => (status, len, close),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn responses_are_framed_by_content_length() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (status, len, close) = complete(two, false);
        assert_eq!((status, close), (200, false));
        assert_eq!(complete(&two[len..], false).0, 404);
        assert!(complete(&two[len..], false).2, "Connection: close");
        assert_eq!(
            frame(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", false),
            Framed::Partial
        );
        assert!(matches!(
            frame(b"garbage\r\n\r\n", false),
            Framed::Malformed(_)
        ));
    }

    #[test]
    fn head_and_bodiless_statuses_have_no_body_whatever_their_length_says() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n";
        assert_eq!(complete(head, true), (200, head.len(), false));
        let not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 13\r\n\r\n";
        assert_eq!(complete(not_modified, false).1, not_modified.len());
    }

    #[test]
    fn chunked_bodies_end_at_their_last_chunk_and_trailers() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nNEXT";
        assert_eq!(complete(r, false).1, r.len() - 4);
        let trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=1\r\nhi\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(complete(trailers, false).1, trailers.len());
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert_eq!(frame(cut, false), Framed::Partial);
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n";
        assert!(matches!(frame(bad, false), Framed::Malformed(_)));
    }

    #[test]
    fn a_response_without_a_length_runs_until_the_server_closes() {
        let old = b"HTTP/1.0 200 OK\r\n\r\nbody-until-close";
        assert_eq!(frame(old, false), Framed::UntilClose { status: 200 });
        let lying = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc";
        assert!(matches!(frame(lying, false), Framed::Malformed(_)));
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabc";
        assert!(matches!(frame(huge, false), Framed::Malformed(_)));
    }
}
