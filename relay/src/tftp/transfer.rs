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

pub(super) fn run(shared: &Shared, handle: &TransferHandle, job: Job) {
    let started = Instant::now();
    let peer = job.peer;
    let name = display_name(&job.filename);
    let socket = match bind_udp(SocketAddr::new(job.local_ip, 0), shared.interface.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("tftp: {peer} {name}: cannot open a transfer socket: {}", crate::error::Chain(&e));
            return;
        }
    };
    allow_fragmentation(&socket, peer.is_ipv4());
    tracing::debug!("tftp: {peer}: transfer socket {:?}", socket.local_addr().ok().and_then(|a| a.as_socket()));
    let socket: UdpSocket = socket.into();
    let mut scratch = Vec::with_capacity(516);

    let served = match shared.root.open_request(&job.filename) {
        Ok(f) => f,
        Err(e) => {
            tracing::info!("tftp: {peer} {name}: refused: {e}");
            wire::encode_error(&mut scratch, e.code(), &e.to_string());
            let _ = socket.send_to(&scratch, peer);
            return;
        }
    };
    let served = if job.netascii {
        match super::netascii::convert(served) {
            Ok(f) => f,
            Err(e) => {
                tracing::info!("tftp: {peer} {name}: refused in netascii mode: {e}");
                wire::encode_error(&mut scratch, ErrorCode::NotDefined, &e.to_string());
                let _ = socket.send_to(&scratch, peer);
                return;
            }
        }
    } else {
        served
    };

    let overhead = if peer.is_ipv4() { 32 } else { 52 };
    let mtu_cap = path_mtu(job.local_ip, peer, shared.interface.as_deref())
        .map(|mtu| mtu.saturating_sub(overhead).min(u32::from(u16::MAX)) as u16)
        .unwrap_or(FALLBACK_BLKSIZE);
    let limits = Limits { max_blksize: shared.max_blksize.min(mtu_cap), max_windowsize: MAX_WINDOWSIZE };
    let opts: Vec<(&[u8], &[u8])> = job.options.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let negotiated = options::negotiate(&opts, &limits, served.size);

    let mut sender = Sender::new(&socket, peer, &served.file, served.size, &negotiated, handle);
    let outcome = sender.run(&negotiated);
    let elapsed = started.elapsed();
    let secs = elapsed.as_secs_f64().max(1e-6);
    let granted = negotiated.describe();
    let retrans = sender.retransmissions;
    let size = served.size;
    match outcome {
        Outcome::Complete | Outcome::CompleteUnconfirmed => {
            let note = if matches!(outcome, Outcome::CompleteUnconfirmed) { ", last ACK never came" } else { "" };
            tracing::info!(
                "tftp: {peer} {name}: sent {size} bytes in {secs:.3} s ({:.2} MiB/s), options: {granted}, {retrans} retransmissions{note}",
                size as f64 / secs / (1024.0 * 1024.0)
            );
            let observer = shared.observer.lock().unwrap().clone();
            if let Some(o) = observer {
                o.sent(peer, &name, size);
            }
        }
        Outcome::ClientError(8, msg) => {
            // PXE ROMs ask for tsize, read the OACK and abort with ERROR 8
            // before asking again: a size probe, not a failure.
            tracing::info!("tftp: {peer} {name}: client ended after option negotiation (size probe; ERROR 8 {msg:?}), options: {granted}");
        }
        Outcome::ClientError(code, msg) => {
            tracing::warn!(
                "tftp: {peer} {name}: client aborted with ERROR {code} {msg:?} after {secs:.3} s, options: {granted}"
            );
        }
        Outcome::TimedOut { acked_blocks } => {
            tracing::warn!(
                "tftp: {peer} {name}: gave up after {MAX_RETRIES} retransmissions without an ACK ({acked_blocks} blocks acknowledged, {secs:.3} s), options: {granted}"
            );
            wire::encode_error(&mut scratch, ErrorCode::NotDefined, "timed out waiting for ACK");
            let _ = socket.send_to(&scratch, peer);
        }
        Outcome::Cancelled => {
            tracing::info!("tftp: {peer} {name}: abandoned: the client sent a new request from the same port");
        }
        Outcome::Failed(reason) => {
            tracing::warn!("tftp: {peer} {name}: failed: {reason}");
            wire::encode_error(&mut scratch, ErrorCode::NotDefined, &reason);
            let _ = socket.send_to(&scratch, peer);
        }
    }
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
        let base_timeout = negotiated.timeout_secs.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(u64::from(s)));
        let max_wait = base_timeout.max(MAX_BACKOFF);
        let mut oack = Vec::new();
        let mut awaiting_oack_ack = !negotiated.granted.is_empty();
        // `base` is the first block not yet acknowledged, `sent_upto` the
        // last block sent; both absolute, so block numbers may wrap on the
        // wire (65535 -> 0) without confusing the state.
        let mut base: u64 = 1;
        let mut sent_upto: u64 = 0;
        if awaiting_oack_ack {
            wire::encode_oack(&mut oack, &negotiated.granted);
            self.send(&oack)?;
        } else {
            sent_upto = self.send_window(base)?;
        }
        let mut retries = 0;
        let mut wait = base_timeout;
        let mut deadline = Instant::now() + wait;
        let mut incoming = [0u8; 1024];
        let mut scratch = Vec::new();
        loop {
            if self.handle.cancelled.load(Ordering::Acquire) {
                return Ok(Outcome::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                retries += 1;
                if retries > MAX_RETRIES {
                    if !awaiting_oack_ack && base == self.last_block && sent_upto == self.last_block {
                        return Ok(Outcome::CompleteUnconfirmed);
                    }
                    return Ok(Outcome::TimedOut { acked_blocks: base - 1 });
                }
                wait = (wait * 2).min(max_wait);
                self.retransmissions += 1;
                if awaiting_oack_ack {
                    self.send(&oack)?;
                } else {
                    sent_upto = self.send_window(base)?;
                }
                deadline = Instant::now() + wait;
                continue;
            }
            let remaining = (deadline - now).max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(remaining)).map_err(|e| format!("setting the socket timeout: {e}"))?;
            let (len, from) = match self.socket.recv_from(&mut incoming) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(format!("receiving: {e}")),
            };
            if from != self.peer {
                // RFC 1350 section 4: answer a stranger with ERROR 5 and
                // carry on with the real client.
                tracing::debug!("tftp: {}: packet from unknown TID {from}, answered with ERROR 5", self.peer);
                wire::encode_error(&mut scratch, ErrorCode::UnknownTid, "unknown transfer ID");
                let _ = self.socket.send_to(&scratch, from);
                continue;
            }
            match wire::parse(&incoming[..len]) {
                Ok(Packet::Ack { block }) => {
                    if awaiting_oack_ack {
                        if block != 0 {
                            continue;
                        }
                        awaiting_oack_ack = false;
                    } else {
                        let delta = u64::from(block.wrapping_sub(base as u16));
                        if delta > sent_upto - base {
                            // A duplicate or stale ACK: the timer decides
                            // about retransmission, not the ACK.
                            continue;
                        }
                        base += delta + 1;
                        if base > self.last_block {
                            self.handle.progressed.store(true, Ordering::Release);
                            return Ok(Outcome::Complete);
                        }
                    }
                    self.handle.progressed.store(true, Ordering::Release);
                    sent_upto = self.send_window(base)?;
                    retries = 0;
                    wait = base_timeout;
                    deadline = Instant::now() + wait;
                }
                Ok(Packet::Error { code, message }) => {
                    return Ok(Outcome::ClientError(code, String::from_utf8_lossy(message).into_owned()));
                }
                Ok(_) => tracing::debug!("tftp: {}: ignoring an unexpected packet during the transfer", self.peer),
                Err(e) => tracing::debug!("tftp: {}: ignoring a malformed packet during the transfer: {e}", self.peer),
            }
        }
    }
}
