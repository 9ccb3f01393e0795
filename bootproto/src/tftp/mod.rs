//! A sans-IO TFTP read (RRQ) client: no sockets and no clock. The caller
//! owns a UDP socket and a millisecond clock and drives the client:
//!
//! ```text
//! let mut c = Client::new(&req, now);
//! loop {
//!     while let Some(t) = c.poll_transmit(now, &mut buf) { send(&buf[..t.len], t.dst_port) }
//!     if let Some(e) = c.error() { fail(e) }        // e.g. Error::Timeout
//!     if c.is_done() { break }
//!     wait for a datagram from the server IP, at most until c.poll_at();
//!     match c.handle(now, src_port, datagram, &mut sink) {
//!         Ok(Event::Done { size }) => { flush poll_transmit (final ACK); break }
//!         Ok(_) => {}
//!         Err(e) => { flush poll_transmit (ERROR to the server); fail(e) }
//!     }
//! }
//! ```
//!
//! Protocol: RFC 1350, options (RFC 2347) with blksize (RFC 2348), tsize
//! (RFC 2349) and windowsize (RFC 7440). A server that ignores the options
//! and answers with DATA 1 is used at 512-byte blocks; a server that
//! refuses them with ERROR 8 is asked again without options.
//!
//! Loss handling: the client retransmits its last packet (RRQ, or the ACK
//! of the last in-order block) when nothing useful arrived for the current
//! timeout, doubling it each time up to a cap; after `max_retries` it fails
//! with `Error::Timeout`. A duplicate or out-of-order DATA is answered with
//! one ACK of the last in-order block, and not again until new in-order data
//! arrives (or the timer fires): a burst of duplicates from a retransmitted
//! window therefore costs one ACK, not one per packet (the Sorcerer's
//! Apprentice problem of RFC 1123 4.2.3.1 in its windowed form).
//!
//! Block numbers wrap from 65535 to 0, as tftp-hpa, dnsmasq, QEMU and the
//! relay do; offsets are u64, so files of any size up to what the sink
//! accepts (`set_max_size`) work.

pub mod wire;

#[cfg(test)]
mod dnsmasq_tests;
#[cfg(test)]
mod tests;

use alloc::string::{String, ToString};
use core::fmt;

use wire::{ErrorCode, Outgoing, Packet};

pub const TFTP_PORT: u16 = 69;

/// The largest block size whose DATA packet fits in one IPv4 frame of this
/// MTU without fragmentation (IP 20, UDP 8, TFTP 4 bytes of headers):
/// 1468 for Ethernet's 1500. Clamped to what RFC 2348 allows.
pub fn blksize_for_mtu(mtu: usize) -> u16 {
    let b = mtu.saturating_sub(20 + 8 + 4);
    b.clamp(wire::MIN_BLKSIZE.into(), wire::MAX_BLKSIZE.into()) as u16
}

/// What to fetch and which options to ask for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub filename: &'a str,
    /// Block size to ask for (RFC 2348); `None` asks for nothing (512).
    pub blksize: Option<u16>,
    /// Window size to ask for (RFC 7440); `None` means lockstep.
    pub windowsize: Option<u16>,
    /// Ask for the transfer size (RFC 2349, `tsize 0` in the RRQ).
    pub ask_tsize: bool,
}

/// A packet to send: it is in the caller's buffer `[..len]`, to the server
/// IP at `dst_port` (69, or the configured server port, for the RRQ, then
/// the server's transfer ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub len: usize,
    pub dst_port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing new (duplicate, stray packet, OACK).
    None,
    /// `received` bytes delivered to the sink so far.
    Progress { received: u64, total: Option<u64> },
    /// The last block arrived; its ACK is waiting in `poll_transmit`.
    Done { size: u64 },
}

/// Where data goes: called with `(offset, bytes)` once per block, in order.
pub type Sink<'s> = dyn FnMut(u64, &[u8]) -> Result<(), SinkError> + 's;

/// The sink refused data (it is reported to the server as ERROR 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkError(pub String);

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server sent ERROR `code` with this text.
    Remote {
        code: u16,
        message: String,
    },
    /// No answer after `retries` retransmissions (`waited_ms` in total).
    Timeout {
        retries: u32,
        waited_ms: u64,
    },
    /// The server broke the protocol (bad OACK, oversize block, garbage).
    Protocol(String),
    Sink(SinkError),
    /// The file (announced tsize or data received) exceeds `limit` bytes.
    TooLarge {
        limit: u64,
        size: u64,
    },
    /// The RRQ does not fit in the caller's buffer (filename too long).
    RequestTooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Remote { code, message } if message.is_empty() => {
                write!(f, "TFTP error {code} ({})", ErrorCode::from(*code).name())
            }
            Error::Remote { code, message } => write!(f, "TFTP error {code}: {message}"),
            Error::Timeout { retries, waited_ms } => write!(
                f,
                "no answer from the TFTP server after {retries} retransmissions ({}.{} s)",
                waited_ms / 1000,
                waited_ms % 1000 / 100
            ),
            Error::Protocol(m) => write!(f, "TFTP protocol error: {m}"),
            Error::Sink(e) => write!(f, "cannot store the file: {e}"),
            Error::TooLarge { limit, size } => {
                write!(f, "file too large: {size} bytes, at most {limit} fit")
            }
            Error::RequestTooLong => f.write_str("TFTP request does not fit in one packet (filename too long)"),
        }
    }
}

/// What the transfer runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    pub windowsize: u16,
    /// The size the server announced, if it did.
    pub tsize: Option<u64>,
}

/// Retransmission timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub initial_ms: u64,
    /// The timeout doubles after each retransmission, up to this.
    pub max_ms: u64,
    /// Retransmissions before giving up.
    pub max_retries: u32,
}

impl Default for Timing {
    /// 1 s doubling to 8 s, 6 retransmissions: gives up after 1+2+4+8+8+8+8
    /// = 39 s of silence.
    fn default() -> Self {
        Timing { initial_ms: 1000, max_ms: 8000, max_retries: 6 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// RRQ sent (or to send); waiting for OACK, DATA 1 or ERROR.
    Requesting,
    /// Locked on the server's TID, receiving.
    Receiving,
    Done,
    Failed,
}

/// How many ERROR packets to stray TIDs may wait; more are dropped (they
/// are a courtesy, and a flood must not grow memory).
const STRAY_QUEUE: usize = 4;

pub struct Client {
    filename: String,
    ask_blksize: Option<u16>,
    ask_windowsize: Option<u16>,
    ask_tsize: bool,
    /// False after the server refused options with ERROR 8.
    use_options: bool,
    server_port: u16,
    timing: Timing,
    max_size: Option<u64>,

    state: State,
    tid: Option<u16>,
    neg: Negotiated,
    /// In-order blocks delivered (block numbers are this, mod 65536).
    blocks: u64,
    /// Bytes delivered.
    received: u64,
    /// In-order blocks since the last ACK (window accounting).
    since_ack: u16,
    /// An ACK for a duplicate/out-of-order block was already sent and no
    /// progress happened since: do not send another.
    reacked: bool,

    send_rrq: bool,
    send_ack: Option<u16>,
    /// ERROR for the server (after a local failure).
    send_error: Option<(ErrorCode, &'static str)>,
    strays: [u16; STRAY_QUEUE],
    n_strays: usize,

    deadline: Option<u64>,
    timeout_ms: u64,
    retries: u32,
    /// Time since the last useful packet, for the timeout message.
    waited_ms: u64,
    error: Option<Error>,
    /// The latest time the caller told us.
    now_ms: u64,
}

impl Client {
    pub fn new(req: &Request, now_ms: u64) -> Client {
        let timing = Timing::default();
        Client {
            filename: req.filename.to_string(),
            ask_blksize: req.blksize,
            ask_windowsize: req.windowsize,
            ask_tsize: req.ask_tsize,
            use_options: true,
            server_port: TFTP_PORT,
            timing,
            max_size: None,
            state: State::Requesting,
            tid: None,
            neg: Negotiated { blksize: wire::DEFAULT_BLKSIZE, windowsize: 1, tsize: None },
            blocks: 0,
            received: 0,
            since_ack: 0,
            reacked: false,
            send_rrq: true,
            send_ack: None,
            send_error: None,
            strays: [0; STRAY_QUEUE],
            n_strays: 0,
            deadline: Some(now_ms),
            timeout_ms: timing.initial_ms,
            retries: 0,
            waited_ms: 0,
            error: None,
            now_ms,
        }
    }

    /// Replaces the retransmission timing (before the first poll).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
        self.timeout_ms = timing.initial_ms;
    }

    /// Sends the RRQ to this port instead of 69.
    pub fn set_server_port(&mut self, port: u16) {
        self.server_port = port;
    }

    /// Refuse files larger than `limit` bytes (by tsize, or as data comes).
    pub fn set_max_size(&mut self, limit: u64) {
        self.max_size = Some(limit);
    }

    pub fn negotiated(&self) -> Negotiated {
        self.neg
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The failure that ended the transfer, if it failed (from `handle` or
    /// from a timeout noticed in `poll_transmit`).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Done or failed: nothing more will happen except flushing packets.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// Bytes delivered to the sink so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Retransmissions since the last progress (for "retrying" messages).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The server's transfer ID once locked.
    pub fn server_tid(&self) -> Option<u16> {
        self.tid
    }

    pub fn poll_at(&self) -> Option<u64> {
        if self.send_rrq || self.send_ack.is_some() || self.send_error.is_some() || self.n_strays > 0 {
            // Something is waiting to go out: now.
            return Some(self.now_ms);
        }
        match self.state {
            State::Requesting | State::Receiving => self.deadline,
            State::Done | State::Failed => None,
        }
    }

    pub fn poll_transmit(&mut self, now_ms: u64, buf: &mut [u8]) -> Option<Transmit> {
        self.now_ms = now_ms;
        // Answers to stray TIDs first: they are independent of our state.
        if let Some(t) = self.stray_refusal(buf) {
            return Some(t);
        }
        if let Some(t) = self.pending_error(buf) {
            return Some(t);
        }
        if !self.retransmit_if_due(now_ms) {
            return None;
        }
        if self.send_rrq {
            self.send_rrq = false;
            match self.encode_rrq(buf) {
                Ok(len) => {
                    self.deadline = Some(now_ms + self.timeout_ms);
                    return Some(Transmit { len, dst_port: self.server_port });
                }
                Err(_) => {
                    self.fail(Error::RequestTooLong);
                    return None;
                }
            }
        }
        if let Some(block) = self.send_ack.take() {
            if let Ok(len) = (Outgoing::Ack { block }).emit(buf) {
                if self.state == State::Receiving {
                    self.deadline = Some(now_ms + self.timeout_ms);
                }
                return Some(Transmit { len, dst_port: self.tid.unwrap_or(self.server_port) });
            }
        }
        None
    }

    /// ERROR 5 to the oldest queued stray transfer ID, if any.
    fn stray_refusal(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        if self.n_strays == 0 {
            return None;
        }
        self.n_strays -= 1;
        let port = self.strays[self.n_strays];
        let refusal = Outgoing::Error { code: ErrorCode::UnknownTid, message: "Unknown transfer ID" };
        let len = refusal.emit(buf).ok()?;
        Some(Transmit { len, dst_port: port })
    }

    /// The ERROR our own abort queued for the server.
    fn pending_error(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (code, message) = self.send_error.take()?;
        let port = self.tid.unwrap_or(self.server_port);
        let len = (Outgoing::Error { code, message }).emit(buf).ok()?;
        Some(Transmit { len, dst_port: port })
    }

    /// When the deadline has passed with nothing queued, queues the RRQ or
    /// the last ACK again with a doubled timeout. Returns false once the
    /// retries are used up (the transfer has then failed).
    fn retransmit_if_due(&mut self, now_ms: u64) -> bool {
        let waiting = matches!(self.state, State::Requesting | State::Receiving);
        if !waiting || self.send_rrq || self.send_ack.is_some() {
            return true;
        }
        match self.deadline {
            Some(d) if now_ms >= d => {}
            _ => return true,
        }
        self.waited_ms += self.timeout_ms;
        if self.retries >= self.timing.max_retries {
            self.fail(Error::Timeout { retries: self.retries, waited_ms: self.waited_ms });
            self.deadline = None;
            return false;
        }
        self.retries += 1;
        self.timeout_ms = (self.timeout_ms * 2).min(self.timing.max_ms);
        match self.state {
            State::Requesting => self.send_rrq = true,
            _ => {
                self.send_ack = Some(self.blocks as u16);
                // The server restarts its window after our ACK.
                self.since_ack = 0;
            }
        }
        true
    }

    fn encode_rrq(&self, buf: &mut [u8]) -> Result<usize, wire::BufferTooSmall> {
        let mut d_blk = [0u8; 20];
        let mut d_win = [0u8; 20];
        let mut opts: [(&str, &str); 3] = [("", ""); 3];
        let mut n = 0;
        if self.use_options {
            if let Some(b) = self.ask_blksize {
                opts[n] = ("blksize", wire::decimal(b.into(), &mut d_blk));
                n += 1;
            }
            if self.ask_tsize {
                opts[n] = ("tsize", "0");
                n += 1;
            }
            if let Some(w) = self.ask_windowsize {
                opts[n] = ("windowsize", wire::decimal(w.into(), &mut d_win));
                n += 1;
            }
        }
        Outgoing::Rrq { filename: &self.filename, mode: "octet", options: &opts[..n] }.emit(buf)
    }

    fn fail(&mut self, e: Error) {
        self.state = State::Failed;
        self.deadline = None;
        self.send_ack = None;
        self.send_rrq = false;
        self.error = Some(e);
    }

    /// Fails with `e` and tells the server with ERROR `c`.
    fn abort(&mut self, c: ErrorCode, msg: &'static str, e: Error) -> Result<Event, Error> {
        self.fail(e.clone());
        self.send_error = Some((c, msg));
        Err(e)
    }

    fn queue_stray(&mut self, port: u16) {
        if self.n_strays < STRAY_QUEUE {
            self.strays[self.n_strays] = port;
            self.n_strays += 1;
        }
    }

    /// Progress: reset the retransmission timer.
    fn progressed(&mut self, now_ms: u64) {
        self.retries = 0;
        self.waited_ms = 0;
        self.timeout_ms = self.timing.initial_ms;
        self.deadline = Some(now_ms + self.timeout_ms);
        self.reacked = false;
    }

    pub fn handle(&mut self, now_ms: u64, src_port: u16, packet: &[u8], sink: &mut Sink<'_>) -> Result<Event, Error> {
        self.now_ms = now_ms;
        let pkt = Packet::parse(packet);
        if !self.wants(src_port, &pkt) {
            return Ok(Event::None);
        }
        let pkt = match pkt {
            Ok(p) => p,
            Err(e) => {
                if self.tid.is_none() {
                    // Not from our server's transfer yet: ignore noise.
                    return Ok(Event::None);
                }
                return self.abort(
                    ErrorCode::IllegalOperation,
                    "Malformed packet",
                    Error::Protocol(alloc::format!("malformed packet from the server: {e}")),
                );
            }
        };
        match pkt {
            Packet::Error { code, message } => self.on_error(now_ms, code, message),
            Packet::Oack { options } => self.on_oack(now_ms, src_port, options),
            Packet::Data { block, data } => {
                if self.state == State::Requesting {
                    if block != 1 {
                        return Ok(Event::None);
                    }
                    // The server ignored our options: RFC 1350 defaults.
                    self.tid = Some(src_port);
                    self.neg = Negotiated { blksize: wire::DEFAULT_BLKSIZE, windowsize: 1, tsize: None };
                    self.state = State::Receiving;
                }
                self.on_data(now_ms, block, data, sink)
            }
            Packet::Ack { .. } | Packet::Rrq { .. } | Packet::Wrq { .. } => {
                if self.tid.is_none() {
                    return Ok(Event::None);
                }
                self.abort(
                    ErrorCode::IllegalOperation,
                    "Illegal TFTP operation",
                    Error::Protocol("the server sent a request or ACK during a read".to_string()),
                )
            }
        }
    }

    /// Whether a datagram is for the transfer in progress. Those from
    /// another TID, and everything once the transfer has ended, are
    /// answered here (or not at all) and go no further.
    fn wants(&mut self, src_port: u16, pkt: &Result<Packet<'_>, wire::ParseError>) -> bool {
        if let Some(tid) = self.tid {
            if src_port != tid {
                // Another TID (a second transfer started by our RRQ
                // retransmission, or noise): tell it, never answer an ERROR.
                if !matches!(pkt, Ok(Packet::Error { .. })) {
                    self.queue_stray(src_port);
                }
                return false;
            }
        }
        match self.state {
            State::Failed => false,
            State::Done => {
                // Our final ACK was lost: the server repeats the last block.
                if let Ok(Packet::Data { block, .. }) = pkt {
                    if *block == self.blocks as u16 {
                        self.send_ack = Some(*block);
                    }
                }
                false
            }
            State::Requesting | State::Receiving => true,
        }
    }

    fn on_error(&mut self, now_ms: u64, code: u16, message: &str) -> Result<Event, Error> {
        if self.state == State::Requesting
            && ErrorCode::from(code) == ErrorCode::OptionRefused
            && self.use_options
            && self.has_options()
        {
            // RFC 2347: the server refuses our options; ask again
            // plainly (its answer will come from a new TID).
            self.use_options = false;
            self.send_rrq = true;
            self.tid = None;
            self.progressed(now_ms);
            return Ok(Event::None);
        }
        let e = Error::Remote { code, message: message.to_string() };
        self.fail(e.clone());
        Err(e)
    }

    fn on_oack(&mut self, now_ms: u64, src_port: u16, options: wire::Options<'_>) -> Result<Event, Error> {
        if self.state != State::Requesting {
            // A repeated OACK: our ACK 0 was lost.
            if self.blocks == 0 && !self.reacked {
                self.send_ack = Some(0);
                self.reacked = true;
            }
            return Ok(Event::None);
        }
        self.tid = Some(src_port);
        if let Err(m) = self.apply_oack(options) {
            return self.abort(ErrorCode::OptionRefused, "Bad option acknowledgement", Error::Protocol(m));
        }
        if let (Some(limit), Some(size)) = (self.max_size, self.neg.tsize) {
            if size > limit {
                return self.abort(ErrorCode::DiskFull, "File too large", Error::TooLarge { limit, size });
            }
        }
        self.state = State::Receiving;
        self.send_ack = Some(0);
        self.since_ack = 0;
        self.progressed(now_ms);
        Ok(Event::Progress { received: 0, total: self.neg.tsize })
    }

    fn has_options(&self) -> bool {
        self.ask_blksize.is_some() || self.ask_windowsize.is_some() || self.ask_tsize
    }

    fn apply_oack(&mut self, options: wire::Options<'_>) -> Result<(), String> {
        if !self.use_options || !self.has_options() {
            return Err("the server sent an OACK but no options were asked for".to_string());
        }
        let mut neg = Negotiated { blksize: wire::DEFAULT_BLKSIZE, windowsize: 1, tsize: None };
        for (name, value) in options.iter() {
            let num = value.parse::<u64>().map_err(|_| alloc::format!("option {name} has a bad value '{value}'"));
            if name.eq_ignore_ascii_case("blksize") {
                let asked = self.ask_blksize.ok_or("the server granted blksize, which was not asked for")?;
                let v = num?;
                if v < wire::MIN_BLKSIZE.into() || v > asked.into() {
                    return Err(alloc::format!("the server granted blksize {v}, asked for at most {asked}"));
                }
                neg.blksize = v as u16;
            } else if name.eq_ignore_ascii_case("windowsize") {
                let asked = self.ask_windowsize.ok_or("the server granted windowsize, which was not asked for")?;
                let v = num?;
                if v < 1 || v > asked.into() {
                    return Err(alloc::format!("the server granted windowsize {v}, asked for at most {asked}"));
                }
                neg.windowsize = v as u16;
            } else if name.eq_ignore_ascii_case("tsize") {
                if !self.ask_tsize {
                    return Err("the server sent tsize, which was not asked for".to_string());
                }
                neg.tsize = Some(num?);
            } else {
                return Err(alloc::format!("the server acknowledged option '{name}', which was not asked for"));
            }
        }
        self.neg = neg;
        Ok(())
    }

    fn on_data(&mut self, now_ms: u64, block: u16, data: &[u8], sink: &mut Sink<'_>) -> Result<Event, Error> {
        let blksize = usize::from(self.neg.blksize);
        let expected = (self.blocks + 1) as u16;
        let ahead = block.wrapping_sub(expected);
        if ahead != 0 {
            // ahead < 0x8000: a later block (one before it was lost or
            // overtaken); otherwise an earlier one (a duplicate). Either way
            // the server should resume after our last in-order block; say
            // so once, then wait for it (or for our timer).
            if !self.reacked {
                self.reacked = true;
                self.send_ack = Some(self.blocks as u16);
                self.since_ack = 0;
            }
            return Ok(Event::None);
        }
        if data.len() > blksize {
            let m = alloc::format!("block {block} has {} bytes, the block size is {blksize}", data.len());
            return self.abort(ErrorCode::IllegalOperation, "Block larger than blksize", Error::Protocol(m));
        }
        let size = self.received + data.len() as u64;
        if let Some(limit) = self.max_size {
            if size > limit {
                return self.abort(ErrorCode::DiskFull, "File too large", Error::TooLarge { limit, size });
            }
        }
        if !data.is_empty() {
            if let Err(e) = sink(self.received, data) {
                return self.abort(ErrorCode::DiskFull, "Cannot store the file", Error::Sink(e));
            }
        }
        self.blocks += 1;
        self.received = size;
        self.progressed(now_ms);
        if data.len() < blksize {
            // The short block ends the file (RFC 1350); a server that
            // announced another size (tsize, RFC 2349) sent a file that is
            // not the one it described: cut short, or grown, mid-transfer.
            if let Some(t) = self.neg.tsize.filter(|t| *t != size) {
                let m = alloc::format!("the file ended after {size} bytes, but the server announced {t} (tsize)");
                return self.abort(ErrorCode::IllegalOperation, "File size differs from tsize", Error::Protocol(m));
            }
            self.send_ack = Some(block);
            self.state = State::Done;
            self.deadline = None;
            return Ok(Event::Done { size });
        }
        self.since_ack += 1;
        if self.since_ack >= self.neg.windowsize {
            self.since_ack = 0;
            self.send_ack = Some(block);
        }
        Ok(Event::Progress { received: size, total: self.neg.tsize })
    }
}
