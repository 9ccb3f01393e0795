//! Read-only HTTP/1.1 server for the TFTP root, so that chainloader.0 can
//! fetch kernels over TCP (a window of data per round trip) instead of
//! TFTP's block-at-a-time. The PXE ROM still gets chainloader.0 by TFTP.
//!
//! The same files are reachable as over TFTP and no others: the path is
//! percent-decoded and then resolved by `tftp::fs::Root::open_request`
//! (`..` refused, `openat2(RESOLVE_BENEATH)`, regular world-readable files
//! only).
//!
//! One thread per connection, at most `max_connections` of them and at
//! most `max_per_host` from one address; a connection beyond either gets
//! `503` and is closed, so a flood costs a bounded number of threads and
//! buffers, and one flooding host cannot take the slots a target needs (a
//! chainloader.0 uses one connection). Each connection has an idle
//! timeout and a send timeout, so a client that stops reading holds only
//! its own thread, never another client's. Files go out with `io::copy`
//! from the file to the socket, which std turns into `sendfile(2)`.
//!
//! Why not hyper or tiny_http: hyper needs an async runtime the relay does
//! not otherwise use, and tiny_http spawns a thread per connection without
//! a bound. The request head is parsed by `httparse` (hyper's parser);
//! what is written here is the file serving: GET/HEAD, single byte ranges
//! (RFC 9110 14), keep-alive and the bounds.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::percent_decode;

use crate::tftp::fs::{OpenError, Root};

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub root: PathBuf,
    pub bind: SocketAddr,
    pub max_connections: usize,
    /// Connections from one IP address at a time.
    pub max_per_host: usize,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A write that makes no progress for this long ends the connection.
    pub send_timeout: Duration,
}

impl HttpConfig {
    pub fn new(root: PathBuf, bind: SocketAddr) -> HttpConfig {
        HttpConfig {
            root,
            bind,
            max_connections: 64,
            max_per_host: 8,
            idle_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot open the HTTP root {path}: {source}")]
    Root { path: PathBuf, source: io::Error },
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

pub struct HttpServer {
    listener: TcpListener,
    root: Arc<Root>,
    cfg: HttpConfig,
    active: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    per_host: PerHost,
}

/// The most bytes of request head read before answering 431.
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

impl HttpServer {
    pub fn bind(cfg: HttpConfig) -> Result<HttpServer, HttpError> {
        let root = Root::open(&cfg.root).map_err(|source| HttpError::Root { path: cfg.root.clone(), source })?;
        let listener = TcpListener::bind(cfg.bind).map_err(|source| HttpError::Bind { addr: cfg.bind, source })?;
        Ok(HttpServer {
            listener,
            root: Arc::new(root),
            cfg,
            active: Arc::new(AtomicUsize::new(0)),
            accepted: Arc::new(AtomicUsize::new(0)),
            per_host: PerHost::default(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Connections being served right now.
    pub fn active(&self) -> Arc<AtomicUsize> {
        self.active.clone()
    }

    /// Connections accepted since the start (served or refused as busy).
    pub fn accepted(&self) -> Arc<AtomicUsize> {
        self.accepted.clone()
    }

    /// Serves until the process ends.
    pub fn run(self) -> io::Result<()> {
        tracing::info!(target: "http", addr = %self.local_addr(), root = %self.root.canonical().display(), "serving");
        for conn in self.listener.incoming() {
            let stream = match conn {
                Ok(s) => s,
                // EMFILE and friends: wait a little rather than spin.
                Err(e) => {
                    tracing::warn!(target: "http", error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let peer = stream.peer_addr().ok();
            self.accepted.fetch_add(1, Ordering::SeqCst);
            let host = peer.map(|p| p.ip());
            let refused = if self.active.fetch_add(1, Ordering::SeqCst) >= self.cfg.max_connections {
                self.active.fetch_sub(1, Ordering::SeqCst);
                Some(("server busy", self.cfg.max_connections))
            } else if !self.per_host.acquire(host, self.cfg.max_per_host) {
                self.active.fetch_sub(1, Ordering::SeqCst);
                Some(("server busy: too many connections from this client", self.cfg.max_per_host))
            } else {
                None
            };
            if let Some((why, limit)) = refused {
                tracing::warn!(target: "http", client = %shown_peer(peer), limit, error = why, "refused");
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = (&stream).write_all(&simple(503, "Service Unavailable", "server busy\n", true));
                continue;
            }
            let (root, cfg, active, per_host) =
                (self.root.clone(), self.cfg.clone(), self.active.clone(), self.per_host.clone());
            let spawned = std::thread::Builder::new().name("http".into()).spawn(move || {
                let _guard = Release(active);
                let _host = HostSlot(per_host, host);
                if let Err(e) = serve_connection(stream, &root, &cfg) {
                    tracing::debug!(target: "http", client = %shown_peer(peer), error = %e, "connection ended");
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(target: "http", client = %shown_peer(peer), error = %e, "cannot start a connection thread");
            }
        }
        Ok(())
    }
}

/// The peer as the log's `client` field shows it.
fn shown_peer(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_string(), |p| p.to_string())
}

/// Connections per client address.
#[derive(Clone, Default)]
struct PerHost(Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>);

impl PerHost {
    /// Takes a slot for `host` if it has fewer than `limit`.
    fn acquire(&self, host: Option<IpAddr>, limit: usize) -> bool {
        let Some(host) = host else { return true };
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(host).or_insert(0);
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }
}

/// A connection's slot in `PerHost`, given back when the connection ends.
struct HostSlot(PerHost, Option<IpAddr>);
impl Drop for HostSlot {
    fn drop(&mut self) {
        let Some(host) = self.1 else { return };
        let mut m = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&host) {
            *n -= 1;
            if *n == 0 {
                m.remove(&host);
            }
        }
    }
}

struct Release(Arc<AtomicUsize>);
impl Drop for Release {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn simple(status: u16, reason: &str, body: &str, close: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

/// A parsed request: what the connection loop needs of it.
struct Request {
    head_only: bool,
    path: Vec<u8>,
    range: Option<String>,
    close: bool,
}

enum ReadHead {
    Request(Request),
    /// The client closed (or went idle) between requests.
    Closed,
    /// Answer this and close.
    Bad(u16, &'static str),
}

/// Reads and parses the next request head.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<ReadHead> {
    match read_head_bytes(reader)? {
        Ok(head) => Ok(parse_head(&head)),
        Err(ended) => Ok(ended),
    }
}

/// The bytes of the next request head, through its blank line; or why
/// there is none (the client closed or went idle, or the head is too big).
fn read_head_bytes(reader: &mut BufReader<TcpStream>) -> io::Result<Result<Vec<u8>, ReadHead>> {
    let mut buf = Vec::new();
    loop {
        let avail = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) && buf.is_empty() => {
                return Ok(Err(ReadHead::Closed))
            }
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(Err(ReadHead::Closed));
        }
        // Take up to and including the end of the head, if it is here.
        let (old, n) = (buf.len(), avail.len());
        buf.extend_from_slice(avail);
        let end = find_end(&buf, old.saturating_sub(3));
        let took = end.map_or(n, |e| e - old);
        reader.consume(took);
        if let Some(e) = end {
            buf.truncate(e);
            return Ok(Ok(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Err(ReadHead::Bad(431, "Request Header Fields Too Large")));
        }
    }
}

/// What a complete request head asks for, or the status that refuses it.
fn parse_head(buf: &[u8]) -> ReadHead {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => return ReadHead::Bad(400, "Bad Request"),
    }
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return ReadHead::Bad(405, "Method Not Allowed"),
    };
    let http10 = req.version == Some(0);
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    // A request body would have to be read and skipped; boot clients send none.
    if header("content-length").is_some_and(|v| v.trim() != "0") || header("transfer-encoding").is_some() {
        return ReadHead::Bad(400, "Bad Request");
    }
    let connection = header("connection").unwrap_or_default().to_ascii_lowercase();
    let close = connection.contains("close") || (http10 && !connection.contains("keep-alive"));
    let Some(path) = request_path(req.path.unwrap_or("/")) else { return ReadHead::Bad(400, "Bad Request") };
    ReadHead::Request(Request { head_only, path, range: header("range"), close })
}

/// The file path a request target names, percent-decoded; `None` if it
/// holds a NUL.
fn request_path(target: &str) -> Option<Vec<u8>> {
    // An absolute-form target (a proxy-style client) names the path after the authority.
    let target = target.strip_prefix("http://").map(|t| t.find('/').map_or("/", |i| &t[i..])).unwrap_or(target);
    let raw = target.split(['?', '#']).next().unwrap_or("/");
    let path: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    (!path.contains(&0)).then_some(path)
}

fn find_end(b: &[u8], from: usize) -> Option<usize> {
    (from..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// What a `Range` header asks of a file of `size` bytes (RFC 9110 14.1.2):
/// `Ok(None)` means the whole file (no header, or one we ignore, as the RFC
/// allows: a multi-range or a unit other than bytes), `Err` an
/// unsatisfiable range (416).
fn byte_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().map_err(|_| ());
    let (start, end) = if first.is_empty() {
        // The last N bytes.
        let n = parse(last)?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size)
    } else {
        let start = parse(first)?;
        let end = if last.is_empty() { size } else { parse(last)?.saturating_add(1).min(size) };
        if end <= start && !(last.is_empty() && start < size) {
            return Err(());
        }
        (start, end)
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Serves the requests of one connection until it closes, goes idle or
/// asks to close.
fn serve_connection(stream: TcpStream, root: &Root, cfg: &HttpConfig) -> io::Result<()> {
    stream.set_read_timeout(Some(cfg.idle_timeout))?;
    stream.set_write_timeout(Some(cfg.send_timeout))?;
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr()?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(MAX_HEAD, stream);
    loop {
        let req = match read_head(&mut reader)? {
            ReadHead::Closed => return Ok(()),
            ReadHead::Bad(status, reason) => {
                tracing::info!(target: "http", client = %peer, status, "bad request");
                out.write_all(&simple(status, reason, &format!("{reason}\n"), true))?;
                return Ok(());
            }
            ReadHead::Request(r) => r,
        };
        if serve_request(&mut out, root, peer, &req)? == Next::Close {
            return Ok(());
        }
    }
}

/// Whether a connection takes another request after this one.
#[derive(PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
}

/// Answers one request: the file (or the range of it asked for), or the
/// status that says why not.
fn serve_request(out: &mut TcpStream, root: &Root, peer: SocketAddr, req: &Request) -> io::Result<Next> {
    let shown = crate::tftp::display_name(&req.path);
    let file = match root.open_request(&req.path) {
        Ok(f) => f,
        Err(e) => return refuse(out, peer, &shown, e, req.close),
    };
    let size = file.size;
    let (status, start, end) = match byte_range(req.range.as_deref(), size) {
        Ok(None) => (200, 0, size),
        Ok(Some((s, e))) => (206, s, e),
        Err(()) => {
            let msg = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n"
            );
            out.write_all(msg.as_bytes())?;
            return Ok(Next::KeepAlive);
        }
    };
    out.write_all(response_head(status, start, end, size, req.close).as_bytes())?;
    let t0 = Instant::now();
    if !req.head_only {
        let mut f = file.file;
        f.seek(SeekFrom::Start(start))?;
        let sent = io::copy(&mut f.take(end - start), out)?;
        if sent != end - start {
            // The file shrank under us: the framing is now wrong, so close.
            tracing::warn!(
                target: "http", client = %peer, file = %shown, bytes = sent, expected = end - start,
                "file changed while sending"
            );
            return Ok(Next::Close);
        }
    }
    tracing::info!(
        target: "http", client = %peer, file = %shown, status, bytes = end - start,
        ms = t0.elapsed().as_millis() as u64, "sent"
    );
    Ok(if req.close { Next::Close } else { Next::KeepAlive })
}

/// Answers a file that cannot be served with 404, 403 or 500.
fn refuse(out: &mut TcpStream, peer: SocketAddr, shown: &str, e: OpenError, close: bool) -> io::Result<Next> {
    let (status, reason) = match e {
        OpenError::NotFound => (404, "Not Found"),
        OpenError::Io(_) => (500, "Internal Server Error"),
        _ => (403, "Forbidden"),
    };
    tracing::info!(target: "http", client = %peer, file = %shown, status, error = %e, "refused");
    out.write_all(&simple(status, reason, &format!("{e}\n"), close))?;
    Ok(if close { Next::Close } else { Next::KeepAlive })
}

/// The status line and headers of a 200 or 206 answer.
fn response_head(status: u16, start: u64, end: u64, size: u64, close: bool) -> String {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n",
        if status == 206 { "Partial Content" } else { "OK" },
        end - start
    );
    if status == 206 {
        head += &format!("Content-Range: bytes {start}-{}/{size}\r\n", end - 1);
    }
    if close {
        head += "Connection: close\r\n";
    }
    head += "\r\n";
    head
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges() {
        assert_eq!(byte_range(None, 10), Ok(None));
        assert_eq!(byte_range(Some("bytes=0-3"), 10), Ok(Some((0, 4))));
        assert_eq!(byte_range(Some("bytes=5-"), 10), Ok(Some((5, 10))));
        assert_eq!(byte_range(Some("bytes=-3"), 10), Ok(Some((7, 10))));
        assert_eq!(byte_range(Some("bytes=-30"), 10), Ok(Some((0, 10))));
        assert_eq!(byte_range(Some("bytes=8-100"), 10), Ok(Some((8, 10))));
        assert_eq!(byte_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=4-3"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=-0"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=x-3"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=0-1,4-5"), 10), Ok(None), "multi-range: whole file");
        assert_eq!(byte_range(Some("items=0-1"), 10), Ok(None));
    }
}
