//! Where one response ends, as RFC 9112 (section 6.3) says: no body for HEAD, 1xx, 204 and
//! 304; chunked bodies by their chunks; others by Content-Length; and, with neither, at the
//! end of the connection. The head is parsed once it is all there; the body is then
//! *streamed*: [`Body::advance`] consumes what has arrived and keeps only its place, so a
//! 200 MB body costs a read buffer, not 200 MB. Bytes in, a verdict out: no sockets here, so
//! every case is tested on bytes.

/// What the front of a read buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    /// A whole head of `len` bytes; its body follows.
    Complete {
        /// Its status code.
        status: u16,
        /// The head's bytes.
        len: usize,
        /// The server will close the connection after it.
        close: bool,
        /// How its body ends.
        body: Body,
    },
    /// More bytes are needed.
    Partial,
    /// Not a response this client can read; the reason, for the report.
    Malformed(&'static str),
}

/// How much body is still to come, and how it is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// This many bytes (0: none).
    Length(u64),
    /// Chunks, in this state.
    Chunked(Chunk),
    /// Until the server closes the connection.
    UntilClose,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes of it to come.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

/// The most headers read; httparse's 32 cover nearly every response, so more are only
/// looked for (on the heap) when a response has them.
const MAX_HEADERS: usize = 256;

/// How heads are parsed: a folded header line (obs-fold) is read as one line, as RFC 9112
/// (5.2) asks of a user agent.
fn config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(true);
    config
}

/// Parses the head at the front of `buf`; `head` when it answers a HEAD request.
pub(crate) fn head(buf: &[u8], head: bool) -> Head {
    // Uninitialised slots: zeroing 32 headers for every response was measurable.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 32];
    let mut resp = httparse::Response::new(&mut []);
    match config().parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => framing(&resp, n, head),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut many);
            match config().parse_response(&mut resp, buf) {
                Ok(httparse::Status::Complete(n)) => framing(&resp, n, head),
                Ok(httparse::Status::Partial) => Head::Partial,
                Err(httparse::Error::TooManyHeaders) => Head::Malformed("more than 256 headers"),
                Err(_) => Head::Malformed("not an HTTP/1.x response"),
            }
        }
        Err(_) => Head::Malformed("not an HTTP/1.x response"),
    }
}

/// The body's framing from a parsed head of `len` bytes.
fn framing(resp: &httparse::Response<'_, '_>, len: usize, head: bool) -> Head {
    let status = resp.code.unwrap_or(0);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Head::Malformed("a Content-Length that is not a number");
            }
            let Ok(n) = value.parse::<u64>() else {
                return Head::Malformed("a Content-Length too large to be a length");
            };
            if length.is_some_and(|m| m != n) {
                return Head::Malformed("two different Content-Lengths");
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return Head::Malformed("a Transfer-Encoding other than chunked");
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    let body = if head || (100..200).contains(&status) || status == 204 || status == 304 {
        Body::Length(0)
    } else if chunked {
        Body::Chunked(Chunk::Size)
    } else {
        length.map_or(Body::UntilClose, Body::Length)
    };
    Head::Complete {
        status,
        len,
        close,
        body,
    }
}

/// The headers a page reader acts on, beyond the framing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    /// `Location` (redirects).
    pub(crate) location: Option<String>,
    /// `Content-Type` (is it HTML; its charset).
    pub(crate) content_type: Option<String>,
    /// `Content-Encoding` (gzip, br).
    pub(crate) content_encoding: Option<String>,
    /// `Retry-After` (429, 503).
    pub(crate) retry_after: Option<String>,
}

/// The [`Fields`] of a head that [`head`] found complete (`buf` holds at least the head).
/// Parsed a second time: the load generator, which needs none of them, pays nothing.
pub(crate) fn fields(buf: &[u8]) -> Fields {
    let mut fields = Fields::default();
    // 32 on the stack first, as `head` does: a heap vector of 256 per page showed up as the
    // threads model's page faults (a fresh allocator page per thread).
    let mut few = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut few);
    match config().parse_response(&mut resp, buf) {
        Ok(_) => take_fields(resp.headers, &mut fields),
        Err(httparse::Error::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut many);
            if config().parse_response(&mut resp, buf).is_ok() {
                take_fields(resp.headers, &mut fields);
            }
        }
        Err(_) => {}
    }
    fields
}

fn take_fields(headers: &[httparse::Header<'_>], fields: &mut Fields) {
    for h in headers {
        let slot = if h.name.eq_ignore_ascii_case("location") {
            // Bytes that are not ASCII are percent-encoded, as browsers do, rather than lose
            // the redirect.
            let text: String = h
                .value
                .iter()
                .map(|&b| {
                    if b.is_ascii() {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            fields
                .location
                .get_or_insert_with(|| text.trim().to_string());
            continue;
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            // Several lines are one list (RFC 9110, 5.3): every coding must be undone.
            if let Ok(v) = std::str::from_utf8(h.value) {
                let list = fields.content_encoding.get_or_insert_with(String::new);
                if !list.is_empty() {
                    list.push_str(", ");
                }
                list.push_str(v.trim());
            }
            continue;
        } else if h.name.eq_ignore_ascii_case("content-type") {
            &mut fields.content_type
        } else if h.name.eq_ignore_ascii_case("retry-after") {
            &mut fields.retry_after
        } else {
            continue;
        };
        // Header values are bytes; a value that is not text is as good as absent.
        if let Ok(v) = std::str::from_utf8(h.value) {
            slot.get_or_insert_with(|| v.trim().to_string());
        }
    }
}

impl Body {
    /// Consumes the body bytes at the front of `buf`: how many, and whether the body is
    /// complete. The body's content (without chunk framing) goes to `data`, in pieces. A body
    /// that runs until close is never complete here (the caller sees the end of the
    /// connection).
    pub(crate) fn advance(
        &mut self,
        buf: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), &'static str> {
        match self {
            Body::Length(left) => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                data(&buf[..take as usize]);
                Ok((take as usize, *left == 0))
            }
            Body::UntilClose => {
                data(buf);
                Ok((buf.len(), false))
            }
            Body::Chunked(state) => {
                let mut at = 0;
                loop {
                    match *state {
                        Chunk::Size => match httparse::parse_chunk_size(&buf[at..]) {
                            Ok(httparse::Status::Complete((line, size))) => {
                                at += line;
                                *state = if size == 0 {
                                    Chunk::Trailers
                                } else {
                                    Chunk::Data(size)
                                };
                            }
                            Ok(httparse::Status::Partial) => return Ok((at, false)),
                            Err(_) => return Err("a chunk size that is not hexadecimal"),
                        },
                        Chunk::Data(left) => {
                            let take = left.min((buf.len() - at) as u64);
                            data(&buf[at..at + take as usize]);
                            at += take as usize;
                            if take < left {
                                *state = Chunk::Data(left - take);
                                return Ok((at, false));
                            }
                            *state = Chunk::DataEnd;
                        }
                        Chunk::DataEnd => {
                            if buf.len() - at < 2 {
                                return Ok((at, false));
                            }
                            if &buf[at..at + 2] != b"\r\n" {
                                return Err("a chunk that does not end with CRLF");
                            }
                            at += 2;
                            *state = Chunk::Size;
                        }
                        Chunk::Trailers => {
                            let Some(end) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                                return Ok((at, false));
                            };
                            at += end + 2;
                            if end == 0 {
                                return Ok((at, true));
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The length of the whole response at the front of `buf`, fed in pieces of `step`
    /// bytes as a socket would deliver them; `None` if it never ends.
    fn whole(buf: &[u8], head_req: bool, step: usize) -> Option<(u16, usize, bool)> {
        let mut seen = 0;
        let (status, len, close, mut body) = loop {
            match head(&buf[..seen.min(buf.len())], head_req) {
                Head::Complete {
                    status,
                    len,
                    close,
                    body,
                } => break (status, len, close, body),
                Head::Partial if seen < buf.len() => seen += step,
                other => panic!("{other:?}"),
            }
        };
        // What was not consumed stays in the buffer; each read adds `step` bytes.
        let (mut at, mut upto) = (len, len);
        loop {
            upto = (upto + step).min(buf.len());
            let (used, done) = body.advance(&buf[at..upto], |_| {}).unwrap();
            at += used;
            if done {
                return Some((status, at, close));
            }
            if upto == buf.len() {
                return None;
            }
        }
    }

    #[test]
    fn responses_are_framed_by_content_length_in_any_pieces() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        for step in [1, 3, 7, 1000] {
            let (status, len, close) = whole(two, false, step).unwrap();
            assert_eq!((status, close), (200, false));
            assert_eq!(whole(&two[len..], false, step).unwrap().0, 404);
            assert!(
                whole(&two[len..], false, step).unwrap().2,
                "Connection: close"
            );
        }
        assert!(matches!(
            head(b"garbage\r\n\r\n", false),
            Head::Malformed(_)
        ));
    }

    #[test]
    fn head_and_bodiless_statuses_have_no_body_whatever_their_length_says() {
        let head_resp = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n";
        assert_eq!(
            whole(head_resp, true, 1000),
            Some((200, head_resp.len(), false))
        );
        let not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 13\r\n\r\n";
        assert_eq!(
            whole(not_modified, false, 1000).unwrap().1,
            not_modified.len()
        );
    }

    #[test]
    fn chunked_bodies_end_at_their_last_chunk_and_trailers_in_any_pieces() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nNEXT";
        let trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=1\r\nhi\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 5, 1000] {
            assert_eq!(whole(r, false, step).unwrap().1, r.len() - 4, "step {step}");
            assert_eq!(whole(trailers, false, step).unwrap().1, trailers.len());
        }
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert_eq!(whole(cut, false, 1000), None);
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n";
        let Head::Complete { len, mut body, .. } = head(bad, false) else {
            panic!()
        };
        assert!(body.advance(&bad[len..], |_| {}).is_err());
    }

    #[test]
    fn a_body_is_consumed_as_it_comes_never_kept() {
        // A gigabyte announced: each piece is consumed at once, whatever the total.
        let Head::Complete { mut body, .. } = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n",
            false,
        ) else {
            panic!()
        };
        let piece = vec![b'x'; 64 * 1024];
        let mut total = 0u64;
        loop {
            let (used, done) = body.advance(&piece, |_| {}).unwrap();
            assert!(used > 0);
            total += used as u64;
            if done {
                break;
            }
        }
        assert_eq!(total, 1_000_000_000);
        // A chunk of 4 GiB and more: counted in u64.
        let mut chunked = Body::Chunked(Chunk::Size);
        assert_eq!(
            chunked.advance(b"100000000\r\nxyz", |_| {}).unwrap(),
            (14, false)
        );
        assert_eq!(chunked, Body::Chunked(Chunk::Data(0x1_0000_0000 - 3)));
    }

    #[test]
    fn a_chunked_body_gives_its_content_without_its_framing_and_fields_are_read() {
        let r = b"HTTP/1.1 302 Found\r\nLocation: /next\r\ncontent-type: text/html; charset=latin1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let Head::Complete { len, .. } = head(r, false) else {
            panic!()
        };
        let f = fields(&r[..len]);
        assert_eq!(f.location.as_deref(), Some("/next"));
        assert_eq!(f.content_type.as_deref(), Some("text/html; charset=latin1"));
        assert_eq!((f.content_encoding, f.retry_after), (None, None));
        for step in [1, 2, 5, 100] {
            let Head::Complete { len, mut body, .. } = head(r, false) else {
                panic!()
            };
            let (mut content, mut at) = (Vec::new(), len);
            let mut upto = len;
            loop {
                upto = (upto + step).min(r.len());
                let (used, done) = body
                    .advance(&r[at..upto], |d| content.extend_from_slice(d))
                    .unwrap();
                at += used;
                if done {
                    break;
                }
                assert!(upto < r.len(), "step {step}: never ended");
            }
            assert_eq!(
                (content.as_slice(), at),
                (&b"abcde"[..], r.len()),
                "step {step}"
            );
        }
    }

    #[test]
    fn a_response_without_a_length_runs_until_the_server_closes() {
        let old = b"HTTP/1.0 200 OK\r\n\r\nbody-until-close";
        assert!(matches!(
            head(old, false),
            Head::Complete {
                status: 200,
                body: Body::UntilClose,
                close: true,
                ..
            }
        ));
        let lying = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc";
        assert!(matches!(head(lying, false), Head::Malformed(_)));
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabc";
        assert_eq!(
            head(huge, false),
            Head::Malformed("a Content-Length too large to be a length")
        );
        let signed = b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc";
        assert!(matches!(head(signed, false), Head::Malformed(_)));
    }

    #[test]
    fn many_headers_are_read_up_to_256() {
        let mut r = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..100 {
            r.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        r.push_str("Content-Length: 2\r\n\r\nok");
        assert_eq!(whole(r.as_bytes(), false, 1000).unwrap().1, r.len());
        let mut r = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..300 {
            r.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        r.push_str("\r\n");
        assert_eq!(
            head(r.as_bytes(), false),
            Head::Malformed("more than 256 headers")
        );
    }
}
