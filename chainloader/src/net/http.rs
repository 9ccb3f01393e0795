//! HTTP downloads over smoltcp's TCP with the sans-IO reader from
//! `bootproto::http`: where TFTP waits a round trip per block (or per
//! window), TCP keeps a window of data in flight, so the link is the limit.
//!
//! One TCP socket, kept open between files to the same server (HTTP/1.1
//! keep-alive): a kernel and its modules cost one handshake. Its receive
//! buffer is large (window scaling follows from its size in smoltcp), and
//! lives outside the loader's small heap: `Net::enable_http` gets it from
//! the caller. Received bytes are copied once, from the socket's ring
//! straight to their staging place.

use super::{now, Fetched, Net, Progress};
use crate::arch::cpu;
use bootproto::http::{self, Response, Url};
use core::fmt;
use core::net::Ipv4Addr;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT_MS: u64 = 5000;
/// How long a transfer may go without a byte arriving.
const STALL_TIMEOUT_MS: u64 = 10_000;
/// Our first local port; each new connection takes the next one, so that
/// segments of an old connection cannot be taken for the new one's.
const FIRST_LOCAL_PORT: u16 = 50_000;

#[derive(Debug)]
pub enum HttpFetchError {
    /// The chainloader has no DNS resolver.
    NotAnAddress(alloc::string::String),
    Connect {
        server: Ipv4Addr,
        port: u16,
        why: &'static str,
    },
    Stalled {
        received: u64,
        secs: u64,
    },
    Http(http::Error),
    NoBuffers,
}

impl HttpFetchError {
    /// Worth another try on a new connection (a 404 is not; a reset is).
    pub fn is_transient(&self) -> bool {
        match self {
            HttpFetchError::Connect { .. } | HttpFetchError::Stalled { .. } => true,
            HttpFetchError::Http(e) => matches!(e, http::Error::Truncated { .. } | http::Error::Protocol(_)),
            _ => false,
        }
    }
}

impl fmt::Display for HttpFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpFetchError::NotAnAddress(h) => {
                write!(f, "'{h}' is not an IPv4 address (chainloader.0 has no DNS: name the server by its address)")
            }
            HttpFetchError::Connect { server, port, why } => write!(f, "cannot connect to {server}:{port}: {why}"),
            HttpFetchError::Stalled { received, secs } => {
                write!(f, "no data from the HTTP server for {secs} s (after {received} bytes)")
            }
            HttpFetchError::Http(e) => write!(f, "{e}"),
            HttpFetchError::NoBuffers => f.write_str("HTTP is not available (no memory for TCP buffers)"),
        }
    }
}

/// The open connection, if any.
pub(super) struct Conn {
    pub handle: smoltcp::iface::SocketHandle,
    pub remote: Option<(Ipv4Addr, u16)>,
    pub next_port: u16,
}

impl Conn {
    pub fn new(handle: smoltcp::iface::SocketHandle) -> Conn {
        Conn { handle, remote: None, next_port: FIRST_LOCAL_PORT }
    }
}

impl Net {
    /// Gives HTTP its TCP buffers (`rx` sets the receive window: 256 KiB or
    /// more keeps a fast link busy).
    pub(super) fn enable_http(&mut self, rx: &'static mut [u8], tx: &'static mut [u8]) {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        // One ACK per batch of segments taken from the ring (each poll), not
        // a timer's worth later: the sender's window opens sooner.
        s.set_ack_delay(None);
        s.set_nagle_enabled(false);
        s.set_timeout(Some(Duration::from_millis(STALL_TIMEOUT_MS)));
        let h = self.sockets.add(s);
        self.http = Some(Conn::new(h));
    }

    /// Fetches `url` into `dest`, reusing the open connection when it goes
    /// to the same server.
    pub fn http_get(&mut self, url: &Url, dest: &mut [u8], show: &str, quiet: bool) -> Result<Fetched, HttpFetchError> {
        let server: Ipv4Addr = url.host.parse().map_err(|_| HttpFetchError::NotAnAddress(url.host.clone()))?;
        let t0 = cpu::now_ms();
        self.http_connect(server, url.port)?;
        let h = self.http.as_ref().ok_or(HttpFetchError::NoBuffers)?.handle;
        let mut req = [0u8; 1024];
        let n = http::request(url, concat!("chainloader/", env!("CARGO_PKG_VERSION")), &mut req)
            .map_err(|_| HttpFetchError::Http(http::Error::Protocol("URL too long for one request".into())))?;
        {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            if s.send_slice(&req[..n]) != Ok(n) {
                return Err(self.http_fail(HttpFetchError::Connect {
                    server,
                    port: url.port,
                    why: "send buffer full",
                }));
            }
        }
        // A TCP window arrives as a burst: each trip to real mode collects
        // all the frames the stack holds, not just the first.
        self.dev.undi.batch = true;
        let result = self.http_receive(h, dest, show, quiet);
        self.dev.undi.batch = false;
        match result {
            Ok((size, close)) => {
                if close {
                    self.http_drop();
                }
                Ok(Fetched { size, ms: cpu::now_ms() - t0 })
            }
            // A status error read its whole (short) body: the connection
            // stays usable.
            Err(e @ HttpFetchError::Http(http::Error::Status { .. })) => Err(e),
            Err(e) => Err(self.http_fail(e)),
        }
    }

    /// Closes the connection (before handoff, or after an error).
    pub fn http_drop(&mut self) {
        if let Some(c) = self.http.as_mut() {
            let s = self.sockets.get_mut::<tcp::Socket>(c.handle);
            if s.is_open() {
                s.abort();
            }
            c.remote = None;
        }
        // The RST goes out now.
        self.poll();
        self.dev.undi.flush_tx();
    }

    fn http_fail(&mut self, e: HttpFetchError) -> HttpFetchError {
        self.http_drop();
        e
    }

    fn http_connect(&mut self, server: Ipv4Addr, port: u16) -> Result<(), HttpFetchError> {
        let c = self.http.as_mut().ok_or(HttpFetchError::NoBuffers)?;
        let h = c.handle;
        {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            if c.remote == Some((server, port)) && s.state() == tcp::State::Established {
                return Ok(());
            }
            if s.is_open() {
                s.abort();
            }
        }
        // Send the RST of an old connection before the new SYN.
        self.poll();
        let c = self.http.as_mut().ok_or(HttpFetchError::NoBuffers)?;
        let local = c.next_port;
        c.next_port = if local >= 60_000 { FIRST_LOCAL_PORT } else { local + 1 };
        c.remote = Some((server, port));
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.connect(self.iface.context(), (server, port), local).map_err(|_| HttpFetchError::Connect {
            server,
            port,
            why: "no route or address",
        })?;
        let deadline = cpu::now_ms() + CONNECT_TIMEOUT_MS;
        loop {
            self.poll();
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            match s.state() {
                tcp::State::Established => return Ok(()),
                tcp::State::Closed => {
                    return Err(self.http_fail(HttpFetchError::Connect { server, port, why: "connection refused" }))
                }
                _ => {}
            }
            if cpu::now_ms() >= deadline {
                return Err(self.http_fail(HttpFetchError::Connect { server, port, why: "no answer (timed out)" }));
            }
            self.wait_sockets(deadline);
        }
    }

    /// Reads one response into `dest`; returns its size and whether the
    /// server closes the connection after it.
    fn http_receive(
        &mut self,
        h: smoltcp::iface::SocketHandle,
        dest: &mut [u8],
        show: &str,
        quiet: bool,
    ) -> Result<(u64, bool), HttpFetchError> {
        let mut resp = Response::new(Some(dest.len() as u64));
        let mut sink = |off: u64, bytes: &[u8]| super::copy_at(dest, off, bytes).map_err(http::SinkError);
        let mut progress = Progress::new(show, quiet);
        let mut last_data = cpu::now_ms();
        loop {
            self.poll();
            let got = self.http_drain(h, &mut resp, &mut sink)?;
            if got {
                last_data = cpu::now_ms();
                let total = resp.head().and_then(|hd| hd.content_length);
                progress.update(resp.received(), total);
            }
            if resp.is_done() {
                progress.finish();
                let close = resp.head().is_some_and(|hd| hd.close);
                return resp.outcome().map(|size| (size, close)).map_err(HttpFetchError::Http);
            }
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            if !s.may_recv() && s.recv_queue() == 0 {
                // The server closed (FIN or RST): fine for a body that runs
                // to the close, truncation for any other.
                progress.finish();
                let size = resp.finish_at_eof().map_err(HttpFetchError::Http)?;
                return Ok((size, true));
            }
            if cpu::now_ms() - last_data > STALL_TIMEOUT_MS {
                progress.finish();
                return Err(HttpFetchError::Stalled { received: resp.received(), secs: STALL_TIMEOUT_MS / 1000 });
            }
            if !got {
                self.wait_sockets(last_data + STALL_TIMEOUT_MS);
            }
        }
    }

    /// Feeds what the socket holds to the response reader (the ring may
    /// wrap: up to two contiguous pieces). True if any bytes came.
    fn http_drain(
        &mut self,
        h: smoltcp::iface::SocketHandle,
        resp: &mut Response,
        sink: &mut http::Sink<'_>,
    ) -> Result<bool, HttpFetchError> {
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        let mut got = false;
        for _ in 0..2 {
            let r = s.recv(|buf| match resp.feed(buf, sink) {
                Ok((used, _)) => (used, Ok(used)),
                Err(e) => (0, Err(e)),
            });
            match r {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(_)) => got = true,
                Ok(Err(e)) => return Err(HttpFetchError::Http(e)),
            }
            if resp.is_done() {
                break;
            }
        }
        Ok(got)
    }

    /// One trip to real mode: until smoltcp's next timer or `until_ms`.
    fn wait_sockets(&mut self, until_ms: u64) {
        let at = match self.iface.poll_at(now(), &self.sockets) {
            Some(i) => (i.total_millis() as u64).min(until_ms),
            None => until_ms,
        };
        self.wait(at);
    }
}
