//! Reading one page off a connection, with no socket: the request's bytes, then the
//! response fed as it arrives (head, framing, content decoding, extraction) until a
//! [`Page`] or a [`Failure`]. Both of fetch's drivers (blocking threads, the async loop) run
//! this same code, so the two models give the same rows by construction, and every case is
//! tested on bytes.
//!
//! What is read of a body: a page's (2xx, HTML) is decoded (gzip, deflate, br) and parsed
//! as it comes, and reading stops as soon as the extraction has what it wants (the title);
//! the connection is then closed rather than reused, unless the rest is short and of known
//! length, when it is read through so the connection can serve the next page. Other bodies
//! (redirects, errors, not HTML) are not parsed: read through when short, so the connection
//! is kept, else left unread.

use std::io::Write;

use url::Url;

use super::framing::{self, Body, Fields, Head};
use crate::extract::{Extract, Pick};

/// What a fetch takes from each page.
#[derive(Debug, Clone)]
pub struct Wants {
    /// The title, or what a CSS selector picks.
    pub pick: Pick,
    /// Every `<a href>` too (a crawl).
    pub links: bool,
    /// Read at most this many bytes of a body (decoded and on the wire); what is past it is
    /// left and the page flagged truncated.
    pub max_body: u64,
    /// Keep a success's decoded body, whatever its type, instead of parsing it (robots.txt).
    pub keep_body: bool,
}

impl Default for Wants {
    /// The title, no links, at most 16 MiB of a body.
    fn default() -> Self {
        Wants {
            pick: Pick::Title,
            links: false,
            max_body: 16 << 20,
            keep_body: false,
        }
    }
}

/// The bytes of `GET url`: the `Host` the URL names, keep-alive, the encodings this client
/// decodes.
pub fn request(url: &Url, user_agent: &str) -> Vec<u8> {
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: \
         text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, \
         br\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

/// What went wrong with a URL, by kind: the `error` of its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Not an absolute http or https URL.
    InvalidUrl,
    /// The host's name does not resolve.
    Dns,
    /// Nothing listens there.
    Refused,
    /// No answer to the connect within the connect timeout.
    ConnectTimeout,
    /// Another failure to connect (unreachable, no descriptors left).
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// No whole response within the timeout (including a server that stalls mid-body).
    Timeout,
    /// The connection ended, or was reset, before the response did.
    Closed,
    /// Not an HTTP/1.x response this client can read.
    Parse,
    /// A body that does not decode as its `Content-Encoding` says.
    Decode,
    /// A 4xx or 5xx status (after any retries).
    Status,
    /// A success that is not an HTML page.
    NotHtml,
    /// A redirect to a page this chain already visited.
    RedirectLoop,
    /// More redirects than allowed.
    TooManyRedirects,
    /// robots.txt disallows the page.
    Robots,
}

impl ErrorKind {
    /// The kind's name in rows and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Dns => "dns",
            ErrorKind::Refused => "refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Parse => "parse",
            ErrorKind::Decode => "decode",
            ErrorKind::Status => "http_status",
            ErrorKind::NotHtml => "not_html",
            ErrorKind::RedirectLoop => "redirect_loop",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::Robots => "robots",
        }
    }

    /// Worth another attempt: the connection could not be made (the server may be starting,
    /// or restarting). A timeout once connected, a bad response, a 4xx are not.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Refused | ErrorKind::ConnectTimeout | ErrorKind::Connect
        )
    }
}

/// A URL's failure: its kind and what was said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: ErrorKind,
    /// In words.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

/// One response, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Its status.
    pub status: u16,
    /// Its `Location`, for a redirect.
    pub location: Option<String>,
    /// Its `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// Its `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// Its content type when a success is not HTML.
    pub not_html: Option<String>,
    /// What the pick found.
    pub values: Vec<String>,
    /// Its links (when wanted).
    pub links: Vec<String>,
    /// Its decoded body, with [`Wants::keep_body`].
    pub body: Vec<u8>,
    /// Body bytes read (as sent, before decoding): a page whose title was found early is
    /// not read to its end.
    pub bytes: u64,
    /// `max_body` was reached.
    pub truncated: bool,
    /// The connection may carry the next request.
    pub reusable: bool,
}

/// A body not parsed is still read through, to keep the connection, when this short.
const DRAIN: u64 = 64 * 1024;

/// A head longer than this is not a response worth waiting for.
const MAX_HEAD: usize = 64 * 1024;

/// Interim (1xx) responses skipped before the answer, at most.
const MAX_INTERIM: u32 = 32;

/// Where a body's decoded bytes go: the extraction, up to `max_body`.
struct Collect {
    /// Taken when the page is finished (boxed: a parser's state is a kilobyte).
    extract: Option<Box<Extract>>,
    /// The body itself, when it is kept rather than parsed.
    kept: Option<Vec<u8>>,
    decoded: u64,
    max: u64,
    /// Nothing more is wanted: the extraction is done, or `max` was reached.
    full: bool,
    truncated: bool,
    /// What to parse again with, should the body start with a byte order mark (which
    /// decides the encoding over any header): the pick and whether links are wanted.
    sniff: Option<(Pick, bool)>,
    /// The headers name UTF-16: refused unless a byte order mark says otherwise.
    utf16: bool,
}

/// The byte order marks: UTF-8's is read, UTF-16's refused (lol_html reads only encodings
/// that are ASCII-compatible).
fn bom(start: &[u8]) -> Option<&'static str> {
    if start.starts_with(b"\xef\xbb\xbf") {
        Some("utf-8")
    } else if start.starts_with(b"\xff\xfe") || start.starts_with(b"\xfe\xff") {
        Some("utf-16")
    } else {
        None
    }
}

impl Write for Collect {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let sniff = self.sniff.take();
        if sniff.is_some() && self.utf16 && bom(bytes) != Some("utf-8") {
            return Err(std::io::Error::other(
                "a UTF-16 page (its Content-Type says so): only ASCII-compatible encodings \
                 are read",
            ));
        }
        if let Some((pick, links)) = sniff
            && let Some(encoding) = bom(bytes)
        {
            if encoding == "utf-16" {
                return Err(std::io::Error::other(
                    "a UTF-16 page (byte order mark): only ASCII-compatible encodings are read",
                ));
            }
            let make = if links {
                Extract::with_links
            } else {
                Extract::new
            };
            if let (Some(extract), Ok(fresh)) = (&mut self.extract, make(&pick, Some(encoding))) {
                **extract = fresh;
            }
            self.decoded += 3;
            return self.write(&bytes[3..]).map(|n| n + 3);
        }
        if !self.full {
            let take = (self.max - self.decoded).min(bytes.len() as u64) as usize;
            self.decoded += take as u64;
            if let Some(extract) = &mut self.extract {
                self.full = extract.feed(&bytes[..take]);
            }
            if let Some(kept) = &mut self.kept {
                kept.extend_from_slice(&bytes[..take]);
            }
            if take < bytes.len() {
                self.truncated = true;
                self.full = true;
            }
        }
        // Past what is wanted, bytes are taken and dropped: the decoder must not see an
        // error for them.
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A page's body on its way to the extraction: decoded as it streams, straight into the
/// [`Collect`], so a compressed body never sits in memory decoded.
enum Decoder {
    Plain(Collect),
    // Multi-member: a gzip stream may be several members one after another (RFC 1952, 2.2).
    Gzip(Box<flate2::write::MultiGzDecoder<Collect>>),
    Deflate(Box<flate2::write::ZlibDecoder<Collect>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Collect>>),
}

impl Decoder {
    /// The decoder `Content-Encoding: encoding` needs; `None` for one this client lacks,
    /// or for a list of more than one coding (`gzip, gzip`: refused, not half undone).
    fn new(encoding: Option<&str>, collect: Collect) -> Option<Decoder> {
        let codings: Vec<String> = encoding
            .unwrap_or_default()
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "identity")
            .collect();
        let coding = match codings.as_slice() {
            [] => return Some(Decoder::Plain(collect)),
            [one] => one.as_str(),
            _ => return None,
        };
        Some(match coding {
            "gzip" | "x-gzip" => {
                Decoder::Gzip(Box::new(flate2::write::MultiGzDecoder::new(collect)))
            }
            "deflate" => Decoder::Deflate(Box::new(flate2::write::ZlibDecoder::new(collect))),
            "br" => Decoder::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                collect, 4096,
            ))),
            _ => return None,
        })
    }

    /// Decodes `bytes` into the collection, flushed: a decoder keeps what it decoded until
    /// told, and a title it kept would be lost with a body that then stalls.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Decoder::Plain(c) => c.write_all(bytes),
            Decoder::Gzip(d) => d.write_all(bytes).and_then(|()| d.flush()),
            Decoder::Deflate(d) => d.write_all(bytes).and_then(|()| d.flush()),
            Decoder::Brotli(d) => d.write_all(bytes).and_then(|()| d.flush()),
        }
    }

    fn collect(&mut self) -> &mut Collect {
        match self {
            Decoder::Plain(c) => c,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
            Decoder::Brotli(d) => d.get_mut(),
        }
    }

    /// Flushes the decoder's last bytes into the collection. An error only matters when
    /// the whole body was given: a body left unread does not end its stream.
    fn end(&mut self) -> std::io::Result<()> {
        match self {
            Decoder::Plain(_) => Ok(()),
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Deflate(d) => d.try_finish(),
            Decoder::Brotli(d) => d.close(),
        }
    }
}

/// What is done with a body.
enum Sink {
    /// Read and dropped (or left, when long).
    Drop,
    /// Decoded and parsed.
    Page(Decoder),
}

/// Where a response is.
enum State {
    /// Its head is still to come.
    Head,
    /// Its body is coming.
    Body {
        /// Boxed: a page's fields are most of a reader's size.
        page: Box<Page>,
        close: bool,
        body: Body,
        sink: Sink,
        /// The extraction has what it wants; the short rest of the body is read through
        /// only to keep the connection.
        draining: bool,
    },
    /// Finished.
    Done,
}

/// One response being read: feed it what arrives.
pub struct Reader {
    wants: Wants,
    state: State,
    /// Interim responses skipped so far.
    interim: u32,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("wants", &self.wants)
            .finish_non_exhaustive()
    }
}

/// Whether a content type is a page to parse: HTML, XHTML, or unnamed.
fn is_html(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(mime.as_str(), "" | "text/html" | "application/xhtml+xml")
}

/// The `charset` parameter of a content type.
fn charset(content_type: Option<&str>) -> Option<String> {
    content_type?.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

impl Reader {
    /// A reader for the answer to one `GET`.
    pub fn new(wants: &Wants) -> Reader {
        Reader {
            wants: wants.clone(),
            state: State::Head,
            interim: 0,
        }
    }

    /// Reads what is at the front of `data`: how much of it was used (the rest belongs to a
    /// later response, or is not needed), and the page once it is read.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Page>), Failure> {
        let mut used = 0;
        if matches!(self.state, State::Head) {
            // 100 Continue, 103 Early Hints: the answer is still to come. Skipped in a loop,
            // a bounded number of them (a flood of 1xx is not an answer).
            loop {
                let head_len = |len: usize| {
                    if len > MAX_HEAD {
                        Err(Failure::new(ErrorKind::Parse, "a head of more than 64 KiB"))
                    } else {
                        Ok(len)
                    }
                };
                match framing::head(&data[used..], false) {
                    Head::Partial => {
                        head_len(data.len() - used)?;
                        return Ok((used, None));
                    }
                    Head::Malformed(why) => return Err(Failure::new(ErrorKind::Parse, why)),
                    Head::Complete { status, len, .. } if (100..200).contains(&status) => {
                        head_len(len)?;
                        self.interim += 1;
                        if self.interim > MAX_INTERIM {
                            return Err(Failure::new(
                                ErrorKind::Parse,
                                format!("more than {MAX_INTERIM} interim (1xx) responses"),
                            ));
                        }
                        used += len;
                    }
                    Head::Complete {
                        status,
                        len,
                        close,
                        body,
                    } => {
                        head_len(len)?;
                        let fields = framing::fields(&data[used..used + len]);
                        used += len;
                        self.state = self.start(status, close, body, fields)?;
                        break;
                    }
                }
            }
        }
        let State::Body {
            page,
            body,
            sink,
            draining,
            ..
        } = &mut self.state
        else {
            return Ok((used, None));
        };
        let mut broken = None;
        let (n, complete) = body
            .advance(&data[used..], |piece| {
                page.bytes += piece.len() as u64;
                if let Sink::Page(d) = sink
                    && !*draining
                    && broken.is_none()
                    && let Err(e) = d.write(piece)
                {
                    broken = Some(e);
                }
            })
            .map_err(|why| Failure::new(ErrorKind::Parse, why))?;
        used += n;
        if let Some(e) = broken {
            return Err(Failure::new(
                ErrorKind::Decode,
                format!("the body does not decode: {e}"),
            ));
        }
        let (enough, cut) = match sink {
            Sink::Page(d) if !*draining => {
                let cut = d.collect().truncated || page.bytes >= self.wants.max_body;
                (d.collect().full || cut, cut)
            }
            _ => (false, false),
        };
        if complete {
            return self.finish(true).map(|p| (used, Some(p)));
        }
        if enough {
            // A short rest of known length is read (not parsed) to keep the connection; it
            // also makes `bytes` the body's length whatever pieces it came in.
            if !cut && matches!(body, Body::Length(left) if *left <= DRAIN) {
                *draining = true;
            } else {
                return self.finish(false).map(|p| (used, Some(p)));
            }
        }
        Ok((used, None))
    }

    /// An HTTP/2 answer's head (its HEADERS frame): the body that follows, as DATA frames,
    /// is given to [`Reader::feed`] as it comes, and its end to [`Reader::closed`].
    pub(crate) fn h2_head(&mut self, status: u16, fields: Fields) -> Result<Option<Page>, Failure> {
        // The stream's end is the body's end: framed as a body that runs until close.
        self.state = self.start(status, true, Body::UntilClose, fields)?;
        Ok(self.feed(&[])?.1)
    }

    /// Whether the page is read and only the short rest of its body is being read, to keep
    /// the connection: a driver waits for that rest briefly, not for the whole timeout.
    pub fn draining(&self) -> bool {
        matches!(self.state, State::Body { draining: true, .. })
    }

    /// The page, when the extraction already has it and only the rest of the body (read to
    /// keep the connection) was missing: a failure then costs the connection, not the page.
    pub fn salvage(&mut self) -> Option<Page> {
        match &self.state {
            State::Body { draining: true, .. } => self.finish(false).ok(),
            _ => None,
        }
    }

    /// The connection ended: the page, if its body runs until the end of the connection.
    pub fn closed(&mut self) -> Result<Page, Failure> {
        if let Some(page) = self.salvage() {
            return Ok(page);
        }
        match &self.state {
            State::Body {
                body: Body::UntilClose,
                ..
            } => self.finish(true),
            State::Head => Err(Failure::new(
                ErrorKind::Closed,
                "the server closed the connection before answering",
            )),
            _ => Err(Failure::new(
                ErrorKind::Closed,
                "the server closed the connection mid-body",
            )),
        }
    }

    /// The body's treatment, from its head.
    fn start(
        &self,
        status: u16,
        close: bool,
        body: Body,
        fields: Fields,
    ) -> Result<State, Failure> {
        let mut page = Page {
            status,
            location: fields.location,
            retry_after: fields.retry_after,
            content_type: fields.content_type.clone(),
            reusable: !close,
            ..Page::default()
        };
        let html = is_html(fields.content_type.as_deref());
        let success = (200..300).contains(&status);
        let sink = if success && (html || self.wants.keep_body) {
            let extract = if self.wants.keep_body {
                None
            } else {
                let charset = charset(fields.content_type.as_deref());
                let make = if self.wants.links {
                    Extract::with_links
                } else {
                    Extract::new
                };
                let extract = make(&self.wants.pick, charset.as_deref())
                    .map_err(|e| Failure::new(ErrorKind::Parse, e.to_string()))?;
                Some(Box::new(extract))
            };
            let label = charset(fields.content_type.as_deref());
            let utf16 = label
                .as_deref()
                .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
                .is_some_and(|e| e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE);
            let collect = Collect {
                utf16,
                sniff: extract
                    .is_some()
                    .then(|| (self.wants.pick.clone(), self.wants.links)),
                extract,
                kept: self.wants.keep_body.then(Vec::new),
                decoded: 0,
                max: self.wants.max_body,
                full: false,
                truncated: false,
            };
            let encoding = fields.content_encoding.as_deref();
            Sink::Page(Decoder::new(encoding, collect).ok_or_else(|| {
                Failure::new(
                    ErrorKind::Decode,
                    format!(
                        "Content-Encoding `{}` is not one this client reads (gzip, deflate, br)",
                        encoding.unwrap_or_default()
                    ),
                )
            })?)
        } else {
            if success {
                page.not_html = fields.content_type;
            }
            Sink::Drop
        };
        // A body not parsed is read through only when short and of known length.
        if matches!(sink, Sink::Drop) && !matches!(body, Body::Length(n) if n <= DRAIN) {
            page.reusable = false;
            return Ok(State::Body {
                page: Box::new(page),
                close: true,
                body: Body::Length(0),
                sink,
                draining: false,
            });
        }
        Ok(State::Body {
            page: Box::new(page),
            close,
            body,
            sink,
            draining: false,
        })
    }

    /// The page as read; `complete` when its body was read to its end.
    fn finish(&mut self, complete: bool) -> Result<Page, Failure> {
        let State::Body {
            mut page,
            close,
            body,
            sink,
            ..
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(Failure::new(ErrorKind::Parse, "a page finished twice"));
        };
        page.reusable = complete && !close && body != Body::UntilClose;
        if let Sink::Page(mut d) = sink {
            let ended = d.end();
            let collect = d.collect();
            // An empty body claims a coding it never used: nothing to decode, no error.
            if complete && !collect.full && page.bytes > 0 {
                ended.map_err(|e| {
                    Failure::new(ErrorKind::Decode, format!("the body does not decode: {e}"))
                })?;
            }
            page.truncated = collect.truncated || (!complete && page.bytes >= self.wants.max_body);
            if let Some(extract) = collect.extract.take() {
                (page.values, page.links) = extract.finish_with_links();
            }
            page.body = collect.kept.take().unwrap_or_default();
        }
        Ok(*page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wants(links: bool) -> Wants {
        Wants {
            links,
            max_body: 1 << 20,
            ..Wants::default()
        }
    }

    /// `response` fed in pieces of `step` bytes, as a socket delivers them; the page, and
    /// how many bytes the reader used.
    fn read(response: &[u8], wants: &Wants, step: usize) -> Result<(Page, usize), Failure> {
        let mut reader = Reader::new(wants);
        let (mut buf, mut at, mut fed) = (Vec::new(), 0, 0);
        loop {
            if fed == response.len() {
                return reader.closed().map(|p| (p, at));
            }
            let next = (fed + step).min(response.len());
            buf.extend_from_slice(&response[fed..next]);
            fed = next;
            let (used, page) = reader.feed(&buf)?;
            buf.drain(..used);
            at += used;
            if let Some(page) = page {
                return Ok((page, at));
            }
        }
    }

    fn http(head: &str, body: &[u8]) -> Vec<u8> {
        let mut r =
            format!("HTTP/1.1 {head}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn a_page_gives_its_title_and_a_short_rest_is_read_to_keep_the_connection() {
        let body = format!("<title>One</title>{}", "x".repeat(5000));
        let r = http("200 OK\r\nContent-Type: text/html", body.as_bytes());
        for step in [1, 7, 100, 100_000] {
            let (page, used) = read(&r, &wants(false), step).unwrap();
            assert_eq!(page.values, ["One"], "step {step}");
            assert_eq!(
                (page.bytes, used),
                (body.len() as u64, r.len()),
                "step {step}"
            );
            assert!(page.reusable && !page.truncated);
        }
    }

    #[test]
    fn a_long_page_is_left_once_its_title_is_read() {
        let body = format!("<title>Long</title>{}", "x".repeat(1 << 20));
        let r = http("200 OK", body.as_bytes());
        let (page, used) = read(&r, &wants(false), 8192).unwrap();
        assert_eq!(page.values, ["Long"]);
        assert!(used < 10_000 && !page.reusable, "{used}");
    }

    #[test]
    fn gzip_deflate_and_brotli_bodies_are_decoded_as_they_stream() {
        use flate2::write::{GzEncoder, ZlibEncoder};
        let html = format!("<html><title>Packed</title>{}</html>", "y".repeat(3000));
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(html.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(html.as_bytes()).unwrap();
        let z = z.finish().unwrap();
        for (encoding, body) in [("gzip", gz.clone()), ("deflate", z)] {
            let r = http(&format!("200 OK\r\nContent-Encoding: {encoding}"), &body);
            for step in [1, 13, 4096] {
                let (page, _) = read(&r, &wants(false), step).unwrap();
                assert_eq!(page.values, ["Packed"], "{encoding} step {step}");
            }
        }
        // Made by Python's `brotli.compress` of a page titled "Brotli page".
        let br = b"\x1b\x10\x08\x20\x8c\x54\xb5\xbf\x16\x7a\x93\xc3\x53\x3e\x69\xe0\x90\x03\x97\x2e\x01\x65\xd8\x22\x81\x3c\x65\x59\x91\x49\x82\xcd\xbe\xf3\x89\x86\x58\x48\x17\x12\xbe\x1f\xd4\xf1\x40\xbb\x3e\x71\x73\x14\x13";
        let r = http("200 OK\r\nContent-Encoding: br", br);
        for step in [1, 5, 4096] {
            assert_eq!(
                read(&r, &wants(false), step).unwrap().0.values,
                ["Brotli page"]
            );
        }
        // A body that is not what it claims: a decode error, not a panic, not a title.
        let r = http("200 OK\r\nContent-Encoding: gzip", b"<title>plain</title>");
        assert_eq!(
            read(&r, &wants(false), 64).unwrap_err().kind,
            ErrorKind::Decode
        );
        let r = http("200 OK\r\nContent-Encoding: zstd", b"...");
        assert_eq!(
            read(&r, &wants(false), 64).unwrap_err().kind,
            ErrorKind::Decode
        );
        // A gzip body cut short is an error only if it was needed to its end.
        let cut = http("200 OK\r\nContent-Encoding: gzip", &gz[..gz.len() / 3]);
        assert!(read(&cut, &wants(true), 4096).is_err());
    }

    #[test]
    fn what_is_not_a_page_is_named_and_not_parsed() {
        let png = http("200 OK\r\nContent-Type: image/png", b"\x89PNG....");
        let (page, _) = read(&png, &wants(false), 64).unwrap();
        assert_eq!(page.not_html.as_deref(), Some("image/png"));
        assert!(page.values.is_empty() && page.reusable);
        let redirect = http("301 Moved\r\nLocation: /there", b"<title>moved</title>");
        let (page, _) = read(&redirect, &wants(false), 64).unwrap();
        assert_eq!(
            (page.status, page.location.as_deref()),
            (301, Some("/there"))
        );
        assert!(page.values.is_empty(), "a redirect's body is not parsed");
        let busy = http("503 Busy\r\nRetry-After: 2", b"");
        assert_eq!(
            read(&busy, &wants(false), 64)
                .unwrap()
                .0
                .retry_after
                .as_deref(),
            Some("2")
        );
        // 100 Continue comes first, then the answer; a flood of them is not one.
        let mut r = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        r.extend(http("200 OK", b"<title>after</title>"));
        assert_eq!(read(&r, &wants(false), 3).unwrap().0.values, ["after"]);
        let mut flood = b"HTTP/1.1 100 \r\n\r\n".repeat(500);
        flood.extend(http("200 OK", b"<title>after</title>"));
        assert_eq!(
            read(&flood, &wants(false), 100_000).unwrap_err().kind,
            ErrorKind::Parse
        );
        // A folded header line is one line; a Location in Latin-1 is percent-encoded.
        let r = http(
            "302 Found\r\nX-Folded: a\r\n  b\r\nLocation: /caf\u{e9}",
            b"",
        );
        let mut r = r;
        let at = r.windows(4).position(|w| w == b"caf\xc3").unwrap();
        r.splice(at + 3..at + 5, [0xe9]);
        assert_eq!(
            read(&r, &wants(false), 9).unwrap().0.location.as_deref(),
            Some("/caf%E9")
        );
        // A gzip page whose title is in its first bytes, the rest never sent: the title is
        // found (the decoder is flushed as it goes), and the page stands.
        {
            use flate2::write::GzEncoder;
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(b"<title>zipped early</title>").unwrap();
            gz.flush().unwrap();
            let start = gz.get_ref().len();
            gz.write_all("y".repeat(20_000).as_bytes()).unwrap();
            let all = gz.finish().unwrap();
            let r = http("200 OK\r\nContent-Encoding: gzip", &all);
            let cut = r.len() - all.len() + start;
            let (page, _) = read(&r[..cut], &wants(false), 4096).unwrap();
            assert_eq!(page.values, ["zipped early"]);
        }
        // The title read, then the connection dropped in the short rest: the page stands.
        let body = format!("<title>kept</title>{}", "x".repeat(5000));
        let r = http("200 OK", body.as_bytes());
        let (page, _) = read(&r[..r.len() - 100], &wants(false), 4096).unwrap();
        assert_eq!(
            (page.values.as_slice(), page.reusable),
            (&["kept".to_string()][..], false)
        );
    }

    #[test]
    fn bodies_end_as_their_framing_says_or_fail_by_kind() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n<title\r\n9\r\n>C</title\r\n1\r\n>\r\n0\r\n\r\n";
        assert_eq!(read(chunked, &wants(true), 2).unwrap().0.values, ["C"]);
        let old = b"HTTP/1.0 200 OK\r\n\r\n<title>until close</title>";
        let (page, _) = read(old, &wants(false), 5).unwrap();
        assert_eq!(
            (page.values.as_slice(), page.reusable),
            (&["until close".to_string()][..], false)
        );
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<p>only this";
        assert_eq!(
            read(short, &wants(false), 5).unwrap_err().kind,
            ErrorKind::Closed
        );
        assert_eq!(
            read(b"", &wants(false), 5).unwrap_err().kind,
            ErrorKind::Closed
        );
        assert_eq!(
            read(b"SSH-2.0-OpenSSH\r\n\r\n", &wants(false), 5)
                .unwrap_err()
                .kind,
            ErrorKind::Parse
        );
        let huge_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(70_000));
        assert_eq!(
            read(huge_head.as_bytes(), &wants(false), 4096)
                .unwrap_err()
                .kind,
            ErrorKind::Parse
        );
    }

    #[test]
    fn a_kept_body_is_decoded_whatever_its_type() {
        use flate2::write::GzEncoder;
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"User-agent: *\nDisallow: /private\n")
            .unwrap();
        let r = http(
            "200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip",
            &gz.finish().unwrap(),
        );
        let w = Wants {
            keep_body: true,
            ..wants(false)
        };
        let (page, _) = read(&r, &w, 7).unwrap();
        assert_eq!(page.body, b"User-agent: *\nDisallow: /private\n");
        assert_eq!(page.not_html, None);
        // Not kept for an error status.
        assert!(
            read(&http("404 Not Found", b"nope"), &w, 7)
                .unwrap()
                .0
                .body
                .is_empty()
        );
    }

    #[test]
    fn a_byte_order_mark_decides_the_encoding_and_utf_16_is_refused() {
        let r = http(
            "200 OK\r\nContent-Type: text/html; charset=iso-8859-1",
            "\u{feff}<title>Caf\u{e9}</title>".as_bytes(),
        );
        assert_eq!(
            read(&r, &wants(false), 4096).unwrap().0.values,
            ["Caf\u{e9}"]
        );
        let r = http("200 OK", b"\xff\xfe<\0t\0");
        assert_eq!(
            read(&r, &wants(false), 4096).unwrap_err().kind,
            ErrorKind::Decode
        );
        let r = http(
            "200 OK\r\nContent-Type: text/html; charset=utf-16le",
            b"<\0t\0",
        );
        assert_eq!(
            read(&r, &wants(false), 4096).unwrap_err().kind,
            ErrorKind::Decode
        );
        // The byte order mark decides, over a header that says UTF-16.
        let r = http(
            "200 OK\r\nContent-Type: text/html; charset=utf-16",
            "\u{feff}<title>\u{e9}</title>".as_bytes(),
        );
        assert_eq!(read(&r, &wants(false), 4096).unwrap().0.values, ["\u{e9}"]);
    }

    #[test]
    fn a_body_past_max_body_is_cut_and_flagged() {
        let body = "z".repeat(100_000);
        let r = http("200 OK", body.as_bytes());
        let w = Wants {
            max_body: 10_000,
            ..wants(false)
        };
        let (page, _) = read(&r, &w, 4096).unwrap();
        assert!(page.truncated && !page.reusable);
        assert!(
            page.bytes >= 10_000 && page.bytes < 20_000,
            "{}",
            page.bytes
        );
    }

    #[test]
    fn the_request_names_the_host_and_path() {
        let url = Url::parse("http://Example.COM:8080/a/b?q=1#frag").unwrap();
        let r = String::from_utf8(request(&url, "t")).unwrap();
        assert!(
            r.starts_with("GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n"),
            "{r}"
        );
        let url = Url::parse("https://[::1]/").unwrap();
        assert!(
            String::from_utf8(request(&url, "t"))
                .unwrap()
                .contains("Host: [::1]\r\n")
        );
    }
}
