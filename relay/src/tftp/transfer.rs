//! One read transfer: OACK or first DATA, then windows of DATA blocks,
//! each window sent back to back and acknowledged as a whole (RFC 7440;
//! windowsize 1 is plain RFC 1350 lock-step).
//!
//! Retransmission happens only when the timer fires, never in answer to a
//! duplicate ACK: answering duplicates is the Sorcerer's Apprentice bug
//! (RFC 1123 4.2.3.1), where every delayed ACK doubles the traffic.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::fs::ServedFile;
use super::options::{self, Limits, Negotiated};
use super::wire::{self, ErrorCode, Packet};
use super::{bind_udp, display_name, Shared, TransferHandle, MAX_WINDOWSIZE};

/// Retransmissions of one packet (or window) before giving up.
const MAX_RETRIES: u32 = 5;
/// First retransmission timeout when the client did not ask for one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Backoff doubles the timeout up to this (or the client's timeout, if longer).
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// blksize cap when the path MTU cannot be learned: Ethernet 1500 - 32.
const FALLBACK_BLKSIZE: u16 = 1468;

/// A request accepted by the listener, handed to the transfer thread.
pub(super) struct Job {
    pub peer: SocketAddr,
    pub local_ip: IpAddr,
    pub filename: Vec<u8>,
    /// Netascii mode: the file is sent with CR LF line ends.
    pub netascii: bool,
    pub options: Vec<(Vec<u8>, Vec<u8>)>,
}

enum Outcome {
    Complete,
    /// Every block was sent, but the ACK of the last one never came (some
    /// clients do not send it).
    CompleteUnconfirmed,
    ClientError(u16, String),
    TimedOut {
        acked_blocks: u64,
    },
    Cancelled,
    Failed(String),
}

/// The MTU of the route to `peer`, learned from a connected probe socket
/// (IP_MTU), which covers both a bound interface and routing.
fn path_mtu(local_ip: IpAddr, peer: SocketAddr, interface: Option<&str>) -> Option<u32> {
    let socket = Socket::new(Domain::for_address(peer), Type::DGRAM, Some(Protocol::UDP)).ok()?;
    if let Some(ifname) = interface {
        socket.bind_device(Some(ifname.as_bytes())).ok()?;
    }
    socket.bind(&SocketAddr::new(local_ip, 0).into()).ok()?;
    socket.connect(&peer.into()).ok()?;
    let (level, name) =
        if peer.is_ipv4() { (libc::IPPROTO_IP, libc::IP_MTU) } else { (libc::IPPROTO_IPV6, libc::IPV6_MTU) };
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `mtu` and `len` are valid for writes and sized for an int option.
    let rc =
        unsafe { libc::getsockopt(socket.as_raw_fd(), level, name, (&mut mtu as *mut libc::c_int).cast(), &mut len) };
    (rc == 0 && mtu > 0).then_some(mtu as u32)
}

/// Lets the kernel fragment rather than fail when the real path MTU is
/// below the interface's, as dnsmasq does.
fn allow_fragmentation(socket: &Socket, ipv4: bool) {
    if !ipv4 {
        return;
    }
    let value: libc::c_int = libc::IP_PMTUDISC_DONT;
    // SAFETY: `value` is a valid int for the duration of the call.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Serves one accepted request from its own socket, start to end, and
/// logs how it ended.
pub(super) fn run(shared: &Shared, handle: &TransferHandle, job: Job) {
    let started = Instant::now();
    let name = display_name(&job.filename);
    let Some(socket) = open_socket(shared, &job, &name) else { return };
    let Some(served) = open_file(shared, &job, &name, &socket) else { return };
    let negotiated = negotiate(shared, &job, served.size);
    let mut sender = Sender::new(&socket, job.peer, &served.file, served.size, &negotiated, handle);
    let outcome = sender.run(&negotiated);
    let summary = Summary {
        size: served.size,
        elapsed: started.elapsed(),
        granted: negotiated.describe(),
        retransmissions: sender.retransmissions,
    };
    report(shared, &socket, job.peer, &name, outcome, &summary);
}

/// The transfer's own socket (a new TID) on the address the request came to.
fn open_socket(shared: &Shared, job: &Job, name: &str) -> Option<UdpSocket> {
    let peer = job.peer;
    let socket = match bind_udp(SocketAddr::new(job.local_ip, 0), shared.interface.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                target: "tftp", client = %peer, file = %name, error = %crate::error::Chain(&e),
                "cannot open a transfer socket"
            );
            return None;
        }
    };
    allow_fragmentation(&socket, peer.is_ipv4());
    if let Some(local) = socket.local_addr().ok().and_then(|a| a.as_socket()) {
        tracing::debug!(target: "tftp", client = %peer, local = %local, "transfer socket");
    }
    Some(socket.into())
}

/// Tells `to` why with an ERROR packet from the transfer's socket, best
/// effort: the client may be gone, and nothing waits for an answer.
fn send_error(socket: &UdpSocket, to: SocketAddr, code: ErrorCode, message: &str) {
    let mut packet = Vec::with_capacity(516);
    wire::encode_error(&mut packet, code, message);
    let _ = socket.send_to(&packet, to);
}

/// The file asked for, in the form the mode asks (netascii converted), or
/// `None` once the client has been told why not.
fn open_file(shared: &Shared, job: &Job, name: &str, socket: &UdpSocket) -> Option<ServedFile> {
    let peer = job.peer;
    let served = match shared.root.open_request(&job.filename) {
        Ok(f) => f,
        Err(e) => {
            tracing::info!(target: "tftp", client = %peer, file = %name, error = %e, "refused");
            send_error(socket, peer, e.code(), &e.to_string());
            return None;
        }
    };
    if !job.netascii {
        return Some(served);
    }
    match super::netascii::convert(served) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::info!(target: "tftp", client = %peer, file = %name, error = %e, "refused in netascii mode");
            send_error(socket, peer, ErrorCode::NotDefined, &e.to_string());
            None
        }
    }
}

/// The options granted, blksize capped by the path MTU.
fn negotiate(shared: &Shared, job: &Job, size: u64) -> Negotiated {
    let peer = job.peer;
    let overhead = if peer.is_ipv4() { 32 } else { 52 };
    let mtu_cap = path_mtu(job.local_ip, peer, shared.interface.as_deref())
        .map(|mtu| mtu.saturating_sub(overhead).min(u32::from(u16::MAX)) as u16)
        .unwrap_or(FALLBACK_BLKSIZE);
    let limits = Limits { max_blksize: shared.max_blksize.min(mtu_cap), max_windowsize: MAX_WINDOWSIZE };
    let opts: Vec<(&[u8], &[u8])> = job.options.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    options::negotiate(&opts, &limits, size)
}

/// What the end-of-transfer log line says besides the outcome.
struct Summary {
    size: u64,
    elapsed: Duration,
    /// The options granted, as `Negotiated::describe` gives them.
    granted: String,
    retransmissions: u64,
}

/// Logs how the transfer ended, tells the observer of a file sent whole,
/// and tells the client when the server gave up.
fn report(shared: &Shared, socket: &UdpSocket, peer: SocketAddr, name: &str, outcome: Outcome, summary: &Summary) {
    let ms = summary.elapsed.as_millis() as u64;
    let options = &summary.granted;
    match outcome {
        Outcome::Complete | Outcome::CompleteUnconfirmed => {
            log_sent(peer, name, matches!(outcome, Outcome::CompleteUnconfirmed), summary);
            let observer = shared.observer.lock().unwrap().clone();
            if let Some(o) = observer {
                o.sent(peer, name, summary.size);
            }
        }
        Outcome::ClientError(8, reason) => {
            // PXE ROMs ask for tsize, read the OACK and abort with ERROR 8
            // before asking again: a size probe, not a failure.
            tracing::info!(
                target: "tftp", client = %peer, file = %name, code = 8, reason = %reason, options = %options,
                "size probe: the client ended after option negotiation"
            );
        }
        Outcome::ClientError(code, reason) => {
            tracing::warn!(
                target: "tftp", client = %peer, file = %name, code, reason = %reason, ms, options = %options,
                "client aborted"
            );
        }
        Outcome::TimedOut { acked_blocks } => {
            tracing::warn!(
                target: "tftp", client = %peer, file = %name, retransmissions = MAX_RETRIES, acked_blocks, ms,
                options = %options, "gave up: no ACK"
            );
            send_error(socket, peer, ErrorCode::NotDefined, "timed out waiting for ACK");
        }
        Outcome::Cancelled => {
            tracing::info!(
                target: "tftp", client = %peer, file = %name,
                "abandoned: the client sent a new request from the same port"
            );
        }
        Outcome::Failed(reason) => {
            tracing::warn!(target: "tftp", client = %peer, file = %name, error = %reason, "failed");
            send_error(socket, peer, ErrorCode::NotDefined, &reason);
        }
    }
}

/// The line for a file sent whole: size, time, throughput, options and
/// retransmissions.
fn log_sent(peer: SocketAddr, name: &str, unconfirmed: bool, summary: &Summary) {
    let secs = summary.elapsed.as_secs_f64().max(1e-6);
    let mib_per_s = format!("{:.2}", summary.size as f64 / secs / (1024.0 * 1024.0));
    let what = if unconfirmed { "sent (the last ACK never came)" } else { "sent" };
    tracing::info!(
        target: "tftp",
        client = %peer,
        file = %name,
        bytes = summary.size,
        ms = summary.elapsed.as_millis() as u64,
        mib_per_s = %mib_per_s,
        options = %summary.granted,
        retransmissions = summary.retransmissions,
        "{what}"
    );
}

struct Sender<'a> {
    socket: &'a UdpSocket,
    peer: SocketAddr,
    file: &'a File,
    size: u64,
    blksize: u64,
    window: u64,
    /// Absolute number (from 1, never wrapping) of the final, short block.
    last_block: u64,
    /// Header plus one block: the file is read straight into it.
    buf: Vec<u8>,
    handle: &'a TransferHandle,
    retransmissions: u64,
}

impl<'a> Sender<'a> {
    fn new(
        socket: &'a UdpSocket,
        peer: SocketAddr,
        file: &'a File,
        size: u64,
        negotiated: &Negotiated,
        handle: &'a TransferHandle,
    ) -> Self {
        let blksize = u64::from(negotiated.blksize);
        Sender {
            socket,
            peer,
            file,
            size,
            blksize,
            window: u64::from(negotiated.windowsize.max(1)),
            last_block: size / blksize + 1,
            buf: vec![0; 4 + negotiated.blksize as usize],
            handle,
            retransmissions: 0,
        }
    }

    fn send(&self, packet: &[u8]) -> Result<(), String> {
        loop {
            match self.socket.send_to(packet, self.peer) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("sending to {}: {e}", self.peer)),
            }
        }
    }

    /// Reads block `block` (absolute, from 1) into the buffer; returns the
    /// packet length.
    fn load_block(&mut self, block: u64) -> Result<usize, String> {
        let offset = (block - 1) * self.blksize;
        let len = if block == self.last_block { (self.size - offset) as usize } else { self.blksize as usize };
        wire::write_data_header(&mut self.buf, block as u16);
        let payload = &mut self.buf[4..4 + len];
        let mut done = 0;
        while done < len {
            match self.file.read_at(&mut payload[done..], offset + done as u64) {
                Ok(0) => return Err("file shrank during the transfer".to_string()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the file: {e}")),
            }
        }
        Ok(4 + len)
    }

    /// Sends blocks `first..` up to a window; returns the last one sent.
    fn send_window(&mut self, first: u64) -> Result<u64, String> {
        let last = (first + self.window - 1).min(self.last_block);
        for block in first..=last {
            let len = self.load_block(block)?;
            self.send(&self.buf[..len])?;
        }
        Ok(last)
    }

    fn run(&mut self, negotiated: &Negotiated) -> Outcome {
        match self.run_inner(negotiated) {
            Ok(outcome) => outcome,
            Err(reason) => Outcome::Failed(reason),
        }
    }

    fn run_inner(&mut self, negotiated: &Negotiated) -> Result<Outcome, String> {
        let mut st = self.start(negotiated)?;
        let mut incoming = [0u8; 1024];
        loop {
            if self.handle.cancelled.load(Ordering::Acquire) {
                return Ok(Outcome::Cancelled);
            }
            let now = Instant::now();
            if now >= st.deadline {
                if let Some(outcome) = self.on_timer(&mut st)? {
                    return Ok(outcome);
                }
                continue;
            }
            let Some(len) = self.receive(&mut incoming, st.deadline - now)? else { continue };
            if let Some(outcome) = self.on_packet(&incoming[..len], &mut st)? {
                return Ok(outcome);
            }
        }
    }

    /// Sends the OACK, or the first window when no option was granted.
    fn start(&mut self, negotiated: &Negotiated) -> Result<Progress, String> {
        let base_timeout = negotiated.timeout_secs.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(u64::from(s)));
        let mut st = Progress {
            awaiting_oack_ack: !negotiated.granted.is_empty(),
            oack: Vec::new(),
            base: 1,
            sent_upto: 0,
            retries: 0,
            base_timeout,
            max_wait: base_timeout.max(MAX_BACKOFF),
            wait: base_timeout,
            deadline: Instant::now(),
        };
        if st.awaiting_oack_ack {
            wire::encode_oack(&mut st.oack, &negotiated.granted);
            self.send(&st.oack)?;
        } else {
            st.sent_upto = self.send_window(st.base)?;
        }
        st.deadline = Instant::now() + st.wait;
        Ok(st)
    }

    /// The timer fired: retransmit with a doubled timeout, or end the
    /// transfer once the retries are used up.
    fn on_timer(&mut self, st: &mut Progress) -> Result<Option<Outcome>, String> {
        st.retries += 1;
        if st.retries > MAX_RETRIES {
            if !st.awaiting_oack_ack && st.base == self.last_block && st.sent_upto == self.last_block {
                return Ok(Some(Outcome::CompleteUnconfirmed));
            }
            return Ok(Some(Outcome::TimedOut { acked_blocks: st.base - 1 }));
        }
        st.wait = (st.wait * 2).min(st.max_wait);
        self.retransmissions += 1;
        if st.awaiting_oack_ack {
            self.send(&st.oack)?;
        } else {
            st.sent_upto = self.send_window(st.base)?;
        }
        st.deadline = Instant::now() + st.wait;
        Ok(None)
    }

    /// Waits up to `remaining` for a datagram from the client; returns its
    /// length, or `None` when the wait ended without one (a stranger's
    /// packet is answered with ERROR 5 and does not count).
    fn receive(&self, incoming: &mut [u8], remaining: Duration) -> Result<Option<usize>, String> {
        let remaining = remaining.max(Duration::from_millis(1));
        self.socket.set_read_timeout(Some(remaining)).map_err(|e| format!("setting the socket timeout: {e}"))?;
        let (len, from) = match self.socket.recv_from(incoming) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(format!("receiving: {e}")),
        };
        if from != self.peer {
            // RFC 1350 section 4: answer a stranger with ERROR 5 and
            // carry on with the real client.
            tracing::debug!(
                target: "tftp", client = %self.peer, from = %from, "packet from an unknown TID, answered with ERROR 5"
            );
            send_error(self.socket, from, ErrorCode::UnknownTid, "unknown transfer ID");
            return Ok(None);
        }
        Ok(Some(len))
    }

    /// A packet from the client: an ACK moves the window on, an ERROR ends
    /// the transfer, anything else is ignored.
    fn on_packet(&mut self, packet: &[u8], st: &mut Progress) -> Result<Option<Outcome>, String> {
        match wire::parse(packet) {
            Ok(Packet::Ack { block }) => self.on_ack(block, st),
            Ok(Packet::Error { code, message }) => {
                Ok(Some(Outcome::ClientError(code, String::from_utf8_lossy(message).into_owned())))
            }
            Ok(_) => {
                tracing::debug!(
                    target: "tftp", client = %self.peer, "ignoring an unexpected packet during the transfer"
                );
                Ok(None)
            }
            Err(e) => {
                tracing::debug!(
                    target: "tftp", client = %self.peer, error = %e, "ignoring a malformed packet during the transfer"
                );
                Ok(None)
            }
        }
    }

    /// ACK `block` (as on the wire, 16 bits): of the OACK, or of blocks
    /// in the window, which then moves on; a duplicate or stale one is
    /// ignored.
    fn on_ack(&mut self, block: u16, st: &mut Progress) -> Result<Option<Outcome>, String> {
        if st.awaiting_oack_ack {
            if block != 0 {
                return Ok(None);
            }
            st.awaiting_oack_ack = false;
        } else {
            let delta = u64::from(block.wrapping_sub(st.base as u16));
            if delta > st.sent_upto - st.base {
                // A duplicate or stale ACK: the timer decides
                // about retransmission, not the ACK.
                return Ok(None);
            }
            st.base += delta + 1;
            if st.base > self.last_block {
                self.handle.progressed.store(true, Ordering::Release);
                return Ok(Some(Outcome::Complete));
            }
        }
        self.handle.progressed.store(true, Ordering::Release);
        st.sent_upto = self.send_window(st.base)?;
        st.retries = 0;
        st.wait = st.base_timeout;
        st.deadline = Instant::now() + st.wait;
        Ok(None)
    }
}

/// Where a transfer stands. `base` is the first block not yet
/// acknowledged, `sent_upto` the last block sent; both absolute, so block
/// numbers may wrap on the wire (65535 -> 0) without confusing the state.
struct Progress {
    /// An OACK was sent and its ACK (block 0) has not come yet.
    awaiting_oack_ack: bool,
    oack: Vec<u8>,
    base: u64,
    sent_upto: u64,
    /// Retransmissions since the last progress.
    retries: u32,
    /// The first timeout, and the one after each ACK that moves on.
    base_timeout: Duration,
    /// Backoff doubles the timeout up to this.
    max_wait: Duration,
    wait: Duration,
    deadline: Instant,
}
