//! A sans-IO HTTP/1.1 GET client: no sockets and no clock, like the TFTP
//! client beside it. The caller owns a TCP connection and drives this:
//!
//! ```text
//! let url = Url::parse("http://10.0.2.2:8080/boot/kernel.elf")?;
//! let n = request(&url, "chainloader/0.1", &mut buf)?;   send buf[..n]
//! let mut r = Response::new(Some(limit));
//! loop {
//!     let data = receive some bytes;          (or on EOF: r.finish_at_eof()?)
//!     let used = r.feed(data, &mut sink)?;    body bytes go to sink(offset, slice)
//!     if r.is_done() { break }                the rest (data[used..]) starts the next response
//! }
//! let size = r.outcome()?;                    a 404 is an error here, and the connection is still usable
//! ```
//!
//! An `Err` from `feed` or `finish_at_eof` leaves the connection's framing
//! unknown: close it. A status error (`outcome`) does not: its body was read
//! and discarded (up to `MAX_ERROR_BODY`), so the next request can follow.
//!
//! What it does, and why:
//! - GET only, HTTP/1.1 with keep-alive, so that a kernel and its modules
//!   travel over one connection (one handshake and one slow start).
//! - Bodies delimited by Content-Length, by chunked transfer coding, or (an
//!   HTTP/1.0 server) by the close of the connection. A connection that
//!   closes before a delimited body is complete is an error naming how much
//!   arrived, so the caller can retry instead of booting half a kernel.
//! - Body bytes are handed to the sink as the slices they arrived in: no
//!   per-byte work on the data path, only on the header and chunk-size
//!   lines.
//! - A non-2xx status is an error carrying the code and reason phrase; a
//!   redirect (301, 302, 303, 307, 308) reports its `Location` so the
//!   caller can follow it (bounded).
//! - Header bytes are bounded (`MAX_HEAD`), so a hostile server cannot grow
//!   memory.

#[cfg(test)]
mod tests;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

pub use crate::tftp::{Sink, SinkError};

pub const HTTP_PORT: u16 = 80;
/// Response head (status line and headers) limit; also the limit of one
/// chunk-size or trailer line.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most bytes of an error response's body read (and dropped) to keep
/// the connection; a longer one is a fatal error (close and reconnect).
pub const MAX_ERROR_BODY: u64 = 64 * 1024;

/// An `http://` URL: host (an IPv4 literal or a name), port and the path
/// with its query, as sent in the request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Always begins with `/`.
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// Not `http://...` (https needs TLS, which this loader does not have).
    Scheme,
    NoHost,
    BadPort,
    /// Spaces or control characters cannot go into a request line.
    BadCharacter,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "only http:// URLs are supported",
            UrlError::NoHost => "URL has no host",
            UrlError::BadPort => "URL has an invalid port",
            UrlError::BadCharacter => "URL contains a space or control character",
        })
    }
}

/// True when `s` is an absolute http URL (what the config and DHCP give
/// when they want HTTP instead of TFTP).
pub fn is_http_url(s: &str) -> bool {
    // By bytes: a multi-byte character may straddle byte 7 (found by fuzzing).
    s.as_bytes().get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"http://"))
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        if !is_http_url(s) {
            return Err(UrlError::Scheme);
        }
        if s.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::BadCharacter);
        }
        let rest = &s[7..];
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // Userinfo is not sent (no authentication); drop it as browsers do.
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(UrlError::BadPort)?),
            None => (authority, HTTP_PORT),
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let path = if path.starts_with('?') { ["/", path].concat() } else { path.to_string() };
        Ok(Url { host: host.to_string(), port, path })
    }

    /// Resolves `reference` against this URL (RFC 3986 5.2, for the forms a
    /// boot config uses): an absolute URL replaces it, `/x` replaces the
    /// path, `x` or `../x` is relative to the directory of this path.
    pub fn join(&self, reference: &str) -> Result<Url, UrlError> {
        if is_http_url(reference) {
            return Url::parse(reference);
        }
        if reference.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::BadCharacter);
        }
        if let Some(r) = reference.strip_prefix("//") {
            return Url::parse(&["http://", r].concat());
        }
        let merged = if reference.starts_with('/') {
            reference.to_string()
        } else {
            let base = self.path.split(['?', '#']).next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            [dir, reference].concat()
        };
        let (path, query) = match merged.find('?') {
            Some(i) => (&merged[..i], &merged[i..]),
            None => (&merged[..], ""),
        };
        Ok(Url { host: self.host.clone(), port: self.port, path: [remove_dot_segments(path).as_str(), query].concat() })
    }

    /// `host` or `host:port` as the Host header wants it.
    pub fn authority(&self) -> String {
        if self.port == HTTP_PORT {
            self.host.clone()
        } else {
            alloc::format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

/// RFC 3986 5.2.4, for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::from("/");
    s.push_str(&out.join("/"));
    if trailing && !out.is_empty() {
        s.push('/');
    }
    s
}

/// The request did not fit in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestTooLong;

/// Writes `GET url` into `buf`, asking to keep the connection open; returns
/// the length.
pub fn request(url: &Url, user_agent: &str, buf: &mut [u8]) -> Result<usize, RequestTooLong> {
    let parts: [&str; 7] = [
        "GET ",
        &url.path,
        " HTTP/1.1\r\nHost: ",
        &url.authority(),
        "\r\nUser-Agent: ",
        user_agent,
        "\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
    ];
    let mut n = 0;
    for p in parts {
        let end = n + p.len();
        buf.get_mut(n..end).ok_or(RequestTooLong)?.copy_from_slice(p.as_bytes());
        n = end;
    }
    Ok(n)
}

/// What a response said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    /// The body length when the server gave Content-Length (not chunked).
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// The server will close the connection after this response.
    pub close: bool,
    pub location: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A final status other than 2xx (redirects included: see `location`).
    Status {
        status: u16,
        reason: String,
        location: Option<String>,
    },
    /// The connection closed after `received` body bytes; `expected` when
    /// the length was known.
    Truncated {
        received: u64,
        expected: Option<u64>,
    },
    /// The server broke HTTP: the text says how.
    Protocol(String),
    /// The body (announced or received) exceeds `limit`.
    TooLarge {
        limit: u64,
        size: u64,
    },
    Sink(SinkError),
}

impl Error {
    /// A redirect's target, when this error is one.
    pub fn redirect(&self) -> Option<&str> {
        match self {
            Error::Status { status: 301 | 302 | 303 | 307 | 308, location: Some(l), .. } => Some(l),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Status { status, reason, location: Some(l) } => write!(f, "HTTP {status} {reason} (to {l})"),
            Error::Status { status, reason, .. } => write!(f, "HTTP {status} {reason}"),
            Error::Truncated { received, expected: Some(e) } => {
                write!(f, "the server closed the connection after {received} of {e} bytes")
            }
            Error::Truncated { received, expected: None } => {
                write!(f, "the server closed the connection after {received} bytes, inside a chunked body")
            }
            Error::Protocol(m) => write!(f, "HTTP protocol error: {m}"),
            Error::TooLarge { limit, size } => write!(f, "file too large: {size} bytes, at most {limit} fit"),
            Error::Sink(e) => write!(f, "cannot store the file: {e}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// More bytes are needed.
    Pending,
    /// `received` body bytes delivered so far (`total` when known).
    Progress { received: u64, total: Option<u64> },
    /// The whole body arrived.
    Done { size: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// This many bytes left.
    Length(u64),
    /// Until the connection closes (HTTP/1.0 style).
    UntilClose,
    /// Reading a chunk-size line.
    ChunkSize,
    /// This many bytes left in the current chunk.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Body(Body),
    Done,
}

/// One response being read. Feed it bytes in the order they arrive.
pub struct Response {
    state: State,
    /// Header bytes, or the current chunk-size/trailer line.
    line: Vec<u8>,
    head: Option<Head>,
    received: u64,
    max_size: Option<u64>,
    /// A non-2xx final status: its body is being read and dropped.
    status_error: Option<Error>,
}

impl Response {
    /// `max_size`: the most body bytes the sink can take (checked against
    /// Content-Length before any byte is stored, and as data arrives).
    pub fn new(max_size: Option<u64>) -> Response {
        Response { state: State::Head, line: Vec::new(), head: None, received: 0, max_size, status_error: None }
    }

    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Once `is_done`: the body size, or the server's error status (404,
    /// a redirect...). Before that: `Pending` as a protocol error.
    pub fn outcome(&self) -> Result<u64, Error> {
        match (&self.state, &self.status_error) {
            (State::Done, None) => Ok(self.received),
            (State::Done, Some(e)) => Err(e.clone()),
            _ => Err(Error::Protocol("response not complete".into())),
        }
    }

    /// Consumes bytes of this response from `data`, sending body bytes to
    /// `sink`. Returns how many bytes of `data` were used and what
    /// happened; once the response is done, the unused bytes belong to the
    /// next one.
    pub fn feed(&mut self, data: &[u8], sink: &mut Sink<'_>) -> Result<(usize, Event), Error> {
        let mut used = 0;
        let start = self.received;
        while used < data.len() && self.state != State::Done {
            let rest = &data[used..];
            used += match self.state {
                State::Head => self.feed_head(rest)?,
                State::Body(b) => self.feed_body(b, rest, sink)?,
                State::Done => 0,
            };
        }
        let event = if self.state == State::Done {
            Event::Done { size: self.received }
        } else if self.received != start {
            Event::Progress { received: self.received, total: self.head.as_ref().and_then(|h| h.content_length) }
        } else {
            Event::Pending
        };
        Ok((used, event))
    }

    /// The connection closed: finishes a body delimited by the close, and
    /// reports any other unfinished response as truncated.
    pub fn finish_at_eof(&mut self) -> Result<u64, Error> {
        match self.state {
            State::Done => self.outcome(),
            State::Body(Body::UntilClose) => {
                self.state = State::Done;
                self.outcome()
            }
            State::Head => Err(Error::Protocol(if self.line.is_empty() {
                "the server closed the connection without answering".into()
            } else {
                "the server closed the connection inside the response header".into()
            })),
            State::Body(_) => Err(Error::Truncated {
                received: self.received,
                expected: self.head.as_ref().and_then(|h| h.content_length),
            }),
        }
    }

    fn feed_head(&mut self, data: &[u8]) -> Result<usize, Error> {
        // Only the header's own bytes are buffered, never body bytes that
        // share a segment with it: the loader's heap is small and hands
        // out power-of-two blocks.
        let Some(used) = head_end(&self.line, data) else {
            if self.line.len() + data.len() > MAX_HEAD {
                return Err(Error::Protocol(alloc::format!("response header longer than {MAX_HEAD} bytes")));
            }
            self.line.extend_from_slice(data);
            return Ok(data.len());
        };
        if self.line.len() + used > MAX_HEAD + 4 {
            return Err(Error::Protocol(alloc::format!("response header longer than {MAX_HEAD} bytes")));
        }
        self.line.extend_from_slice(&data[..used]);
        let end = self.line.len();
        let head_bytes = core::mem::take(&mut self.line);
        let head = parse_head(&head_bytes[..end])?;
        if (100..200).contains(&head.status) {
            // 100 Continue and friends: a final response follows.
            return Ok(used);
        }
        if !(200..300).contains(&head.status) {
            let e = Error::Status { status: head.status, reason: head.reason.clone(), location: head.location.clone() };
            if head.content_length.is_some_and(|l| l > MAX_ERROR_BODY) {
                return Err(e);
            }
            self.status_error = Some(e);
        } else if let (Some(limit), Some(len)) = (self.max_size, head.content_length) {
            if len > limit {
                return Err(Error::TooLarge { limit, size: len });
            }
        }
        self.state = if head.status == 204 || head.status == 205 {
            State::Done
        } else if head.chunked {
            State::Body(Body::ChunkSize)
        } else {
            match head.content_length {
                Some(0) => State::Done,
                Some(n) => State::Body(Body::Length(n)),
                None => State::Body(Body::UntilClose),
            }
        };
        let mut head = head;
        if self.state == State::Body(Body::UntilClose) {
            head.close = true;
        }
        self.head = Some(head);
        Ok(used)
    }

    fn deliver(&mut self, bytes: &[u8], sink: &mut Sink<'_>) -> Result<(), Error> {
        let size = self.received + bytes.len() as u64;
        if let Some(e) = &self.status_error {
            // An error page: dropped, not stored, and bounded.
            if size > MAX_ERROR_BODY {
                return Err(e.clone());
            }
            self.received = size;
            return Ok(());
        }
        if let Some(limit) = self.max_size.filter(|&l| size > l) {
            return Err(Error::TooLarge { limit, size });
        }
        sink(self.received, bytes).map_err(Error::Sink)?;
        self.received = size;
        Ok(())
    }

    fn feed_body(&mut self, b: Body, data: &[u8], sink: &mut Sink<'_>) -> Result<usize, Error> {
        match b {
            Body::Length(left) | Body::ChunkData(left) => {
                let n = (left.min(data.len() as u64)) as usize;
                self.deliver(&data[..n], sink)?;
                let left = left - n as u64;
                self.state = match (b, left) {
                    (Body::Length(_), 0) => State::Done,
                    (Body::Length(_), l) => State::Body(Body::Length(l)),
                    (_, 0) => State::Body(Body::ChunkEnd),
                    (_, l) => State::Body(Body::ChunkData(l)),
                };
                Ok(n)
            }
            Body::UntilClose => {
                self.deliver(data, sink)?;
                Ok(data.len())
            }
            Body::ChunkSize | Body::ChunkEnd | Body::Trailer => {
                let Some(nl) = data.iter().position(|&c| c == b'\n') else {
                    self.push_line(data)?;
                    return Ok(data.len());
                };
                self.push_line(&data[..nl])?;
                let line = core::mem::take(&mut self.line);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                self.state = match b {
                    Body::ChunkSize => match parse_chunk_size(line)? {
                        0 => State::Body(Body::Trailer),
                        n => State::Body(Body::ChunkData(n)),
                    },
                    Body::ChunkEnd if line.is_empty() => State::Body(Body::ChunkSize),
                    Body::ChunkEnd => return Err(Error::Protocol("chunk data is longer than its chunk size".into())),
                    _ if line.is_empty() => State::Done,
                    _ => State::Body(Body::Trailer),
                };
                Ok(nl + 1)
            }
        }
    }

    fn push_line(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.line.len() + bytes.len() > MAX_HEAD {
            return Err(Error::Protocol("chunk-size or trailer line too long".into()));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }
}

/// How many bytes of `data` complete the header that `buffered` began:
/// up to and including the blank line (CRLF CRLF, or bare LF LF from a lax
/// server), which may start in `buffered`.
fn head_end(buffered: &[u8], data: &[u8]) -> Option<usize> {
    let at = |k: usize| -> u8 {
        // Index into buffered ++ data.
        if k < buffered.len() {
            buffered[k]
        } else {
            data[k - buffered.len()]
        }
    };
    let base = buffered.len();
    (0..data.len()).find_map(|i| {
        let k = base + i;
        if at(k) != b'\n' {
            return None;
        }
        let ends = (k >= 1 && at(k - 1) == b'\n') || (k >= 2 && at(k - 1) == b'\r' && at(k - 2) == b'\n');
        ends.then_some(i + 1)
    })
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.split(|&c| c == b';').next().unwrap_or(&[]);
    let digits = trim(digits);
    if digits.is_empty() || digits.len() > 15 {
        return Err(Error::Protocol("invalid chunk size line".into()));
    }
    digits.iter().try_fold(0u64, |n, &c| {
        let d = (c as char).to_digit(16).ok_or_else(|| Error::Protocol("invalid chunk size line".into()))?;
        Ok(n * 16 + d as u64)
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(s, |e| e + 1);
    &b[s..e]
}

fn parse_head(bytes: &[u8]) -> Result<Head, Error> {
    let text = core::str::from_utf8(bytes).map_err(|_| Error::Protocol("response header is not text".into()))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut head = parse_status_line(lines.next().unwrap_or(""))?;
    let http10 = head.close;
    for l in lines.filter(|l| !l.is_empty()) {
        let (name, value) = l
            .split_once(':')
            .ok_or_else(|| Error::Protocol(alloc::format!("bad header line '{}'", l.escape_debug())))?;
        head.apply_field(name.trim(), value.trim(), http10)?;
    }
    if head.chunked {
        // Chunked framing wins over a Content-Length (RFC 9112 6.3).
        head.content_length = None;
    }
    Ok(head)
}

/// `HTTP/1.x CODE REASON`: a head with nothing but the status yet; an
/// HTTP/1.0 response closes unless a header says otherwise.
fn parse_status_line(status_line: &str) -> Result<Head, Error> {
    let bad_status = || Error::Protocol(alloc::format!("bad status line '{}'", status_line.escape_debug()));
    let (version, rest) = status_line.split_once(' ').ok_or_else(bad_status)?;
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(bad_status()),
    };
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let status = code.parse::<u16>().ok().filter(|c| (100..600).contains(c)).ok_or_else(bad_status)?;
    Ok(Head {
        status,
        reason: reason.trim().to_string(),
        content_length: None,
        chunked: false,
        close: http10,
        location: None,
    })
}

impl Head {
    /// One header field, for the few that decide the framing and redirects.
    fn apply_field(&mut self, name: &str, value: &str, http10: bool) -> Result<(), Error> {
        if name.eq_ignore_ascii_case("content-length") {
            let v =
                value.parse::<u64>().map_err(|_| Error::Protocol(alloc::format!("bad Content-Length '{value}'")))?;
            // RFC 9112 6.3: differing lengths make the framing unknowable.
            if self.content_length.is_some_and(|old| old != v) {
                return Err(Error::Protocol("conflicting Content-Length headers".into()));
            }
            self.content_length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(Error::Protocol(alloc::format!("unsupported Transfer-Encoding '{value}'")));
            }
            self.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for opt in value.split(',').map(str::trim) {
                if opt.eq_ignore_ascii_case("close") {
                    self.close = true;
                } else if opt.eq_ignore_ascii_case("keep-alive") && http10 {
                    self.close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("location") {
            self.location = Some(value.to_string());
        }
        Ok(())
    }
}
