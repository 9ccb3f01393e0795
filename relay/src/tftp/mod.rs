//! Read-only TFTP server (RFC 1350) with option negotiation (RFC 2347),
//! blksize (RFC 2348), tsize and timeout (RFC 2349) and windowsize
//! (RFC 7440).
//!
//! One socket on port 69 takes requests. Each accepted read request gets
//! its own thread and a fresh ephemeral socket (a new TID, RFC 1350 section
//! 4) on the same address and interface. The number of transfers in flight
//! is bounded; requests beyond it get ERROR 0 "server busy".
//!
//! Why not `async-tftp` (which has windowsize): its directory handler
//! joins the request to the root, checks `is_file()` and then opens the
//! path, so a symlink in the root leads outside and the check races with
//! the open; it needs an async executor the rest of the relay does not use;
//! and the relay needs its own hands on every socket (SO_BINDTODEVICE,
//! IP_PKTINFO, IP_MTU for blksize). A thread per transfer with blocking
//! sockets is simple, and a transfer is bounded by the network, not by
//! threads (`max_transfers` bounds them anyway).

pub mod fs;
pub mod netascii;
pub mod options;
mod transfer;
pub mod wire;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use socket2::{Domain, Protocol, Socket, Type};

use wire::{ErrorCode, Packet, RequestKind};

/// The windowsize cap (RFC 7440): 64 blocks of 1468 bytes fit the default
/// socket buffers on both ends.
pub const MAX_WINDOWSIZE: u16 = 64;

/// Configuration of the TFTP server.
#[derive(Debug, Clone)]
pub struct TftpConfig {
    /// Directory served; nothing outside it is reachable.
    pub root: PathBuf,
    /// Address to listen on, usually the interface's address and port 69.
    pub bind: SocketAddr,
    /// Interface to bind the sockets to (SO_BINDTODEVICE), so that nothing
    /// arriving on another interface is answered.
    pub interface: Option<String>,
    /// Transfers allowed in flight at once.
    pub max_transfers: usize,
    /// Largest blksize granted; further capped by the path MTU minus 32.
    pub max_blksize: u16,
}

/// A bound TFTP server; `run` serves until the process ends.
pub struct TftpServer {
    socket: UdpSocket,
    shared: Arc<Shared>,
    /// Whether requests carry IP_PKTINFO (wildcard bind).
    learn_local: bool,
}

/// State shared between the listener and the transfer threads.
struct Shared {
    root: fs::Root,
    interface: Option<String>,
    max_transfers: usize,
    max_blksize: u16,
    running: AtomicUsize,
    /// Transfers by client address, to recognise a retransmitted request.
    by_peer: Mutex<HashMap<SocketAddr, Arc<TransferHandle>>>,
    /// Told of every file sent whole (the target table attributes it).
    observer: Mutex<Option<Arc<dyn TftpObserver>>>,
}

/// Hears of every file sent whole, so that the relay knows what each target
/// fetched (its config, its kernel).
pub trait TftpObserver: Send + Sync {
    fn sent(&self, peer: SocketAddr, path: &str, size: u64);
}

/// The listener's view of one transfer.
struct TransferHandle {
    /// The request datagram that started it.
    request: Vec<u8>,
    /// Set once the client has acknowledged anything.
    progressed: AtomicBool,
    /// Set when the client started over from the same port.
    cancelled: AtomicBool,
}

/// Why the TFTP server or one of its transfer sockets could not start, or
/// why the server stopped. Each variant's text is its own context; the
/// cause is its `source()`.
#[derive(Debug, thiserror::Error)]
pub enum TftpError {
    #[error("creating a UDP socket")]
    Socket(#[source] io::Error),
    #[error("binding to interface {0} needs root or CAP_NET_RAW")]
    DeviceDenied(String),
    #[error("no such interface: {0}")]
    NoInterface(String),
    #[error("binding to interface {ifname}")]
    Device { ifname: String, source: io::Error },
    /// `place`: the interface, or the address when there is none.
    #[error("port {port} on {place} is in use, is dnsmasq running?")]
    PortInUse { port: u16, place: String },
    #[error("binding port {0} needs root or CAP_NET_BIND_SERVICE")]
    PortDenied(u16),
    #[error("address {ip} is not assigned to {place}; is the interface up and configured?")]
    AddressNotHere { ip: IpAddr, place: String },
    #[error("binding UDP {addr} on {place}")]
    Bind { addr: SocketAddr, place: String, source: io::Error },
    #[error("TFTP root {}", root.display())]
    Root { root: PathBuf, source: io::Error },
    #[error("TFTP root {} is not a directory", root.display())]
    RootNotDirectory { root: PathBuf },
    #[error("tftp: receive on {local} keeps failing")]
    Receive { local: SocketAddr, source: io::Error },
}

/// Creates a UDP socket bound to `addr`, optionally to a device, with
/// error messages that say what to do.
pub(crate) fn bind_udp(addr: SocketAddr, interface: Option<&str>) -> Result<Socket, TftpError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(TftpError::Socket)?;
    if let Some(ifname) = interface {
        socket.bind_device(Some(ifname.as_bytes())).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => TftpError::DeviceDenied(ifname.to_string()),
            Some(libc::ENODEV) => TftpError::NoInterface(ifname.to_string()),
            _ => TftpError::Device { ifname: ifname.to_string(), source: e },
        })?;
    }
    let place = interface.map_or_else(|| addr.ip().to_string(), str::to_string);
    socket.bind(&addr.into()).map_err(|e| match e.raw_os_error() {
        Some(libc::EADDRINUSE) => TftpError::PortInUse { port: addr.port(), place },
        Some(libc::EACCES) => TftpError::PortDenied(addr.port()),
        Some(libc::EADDRNOTAVAIL) => TftpError::AddressNotHere { ip: addr.ip(), place },
        _ => TftpError::Bind { addr, place, source: e },
    })?;
    Ok(socket)
}

impl TftpServer {
    /// Opens the root and binds the listening socket.
    pub fn bind(cfg: TftpConfig) -> Result<TftpServer, TftpError> {
        let root = fs::Root::open(&cfg.root).map_err(|source| TftpError::Root { root: cfg.root.clone(), source })?;
        if !root.canonical().is_dir() {
            return Err(TftpError::RootNotDirectory { root: cfg.root.clone() });
        }
        let socket: UdpSocket = bind_udp(cfg.bind, cfg.interface.as_deref())?.into();
        // Bound to the wildcard address, the server learns from IP_PKTINFO
        // which local address each request was sent to, so that the
        // transfer answers from that same address (a client ignores DATA
        // from an address it did not ask). Enabled before any request can
        // be queued without it.
        let learn_local = cfg.bind.ip().is_unspecified() && cfg.bind.is_ipv4() && enable_pktinfo(&socket);
        let shared = Arc::new(Shared {
            root,
            interface: cfg.interface,
            max_transfers: cfg.max_transfers.max(1),
            max_blksize: cfg.max_blksize.clamp(options::BLKSIZE_MIN, options::BLKSIZE_MAX),
            running: AtomicUsize::new(0),
            by_peer: Mutex::new(HashMap::new()),
            observer: Mutex::new(None),
        });
        Ok(TftpServer { socket, shared, learn_local })
    }

    /// Tell `o` of every file sent whole.
    pub fn observe(&self, o: Arc<dyn TftpObserver>) {
        *self.shared.observer.lock().unwrap() = Some(o);
    }

    /// The address actually bound (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("a bound socket has a local address")
    }

    /// Serves requests until the process ends or the socket fails.
    pub fn run(self) -> Result<(), TftpError> {
        let local = self.local_addr();
        tracing::info!(
            target: "tftp",
            addr = %local,
            root = %self.shared.root.canonical().display(),
            interface = self.shared.interface.as_deref().unwrap_or("any"),
            "serving"
        );
        // Requests are small; 64 KiB takes any datagram whole, so an
        // oversized one is parsed (and refused) rather than cut.
        let mut buf = vec![0u8; 65536];
        let mut reply = Vec::with_capacity(516);
        let mut consecutive_errors = 0u32;
        loop {
            let received = if self.learn_local {
                recv_with_local_addr(&self.socket, &mut buf)
            } else {
                self.socket.recv_from(&mut buf).map(|(n, peer)| (n, peer, None))
            };
            let (len, peer, dst) = match received {
                Ok(r) => {
                    consecutive_errors = 0;
                    r
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Transient errors (ICMP-induced ECONNREFUSED, ENOBUFS)
                    // must not end the server; a persistent one must not spin.
                    consecutive_errors += 1;
                    tracing::warn!(target: "tftp", addr = %local, error = %e, "receive failed");
                    if consecutive_errors > 100 {
                        return Err(TftpError::Receive { local, source: e });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            let local_ip = dst.unwrap_or(local.ip());
            self.handle_datagram(&buf[..len], peer, local_ip, &mut reply);
        }
    }

    fn send_error(&self, reply: &mut Vec<u8>, peer: SocketAddr, code: ErrorCode, message: &str) {
        wire::encode_error(reply, code, message);
        if let Err(e) = self.socket.send_to(reply, peer) {
            tracing::debug!(target: "tftp", client = %peer, error = %e, "sending an error packet");
        }
    }

    /// One datagram on the request port: a read request is checked,
    /// admitted and handed to a transfer thread; anything else is refused
    /// or ignored.
    fn handle_datagram(&self, datagram: &[u8], peer: SocketAddr, local_ip: IpAddr, reply: &mut Vec<u8>) {
        let Some(request) = self.parse_request(datagram, peer, reply) else { return };
        let name = display_name(request.filename);
        let Some(netascii) = self.accept_kind_and_mode(&request, peer, &name, reply) else { return };
        if request.trailing_garbage {
            tracing::debug!(
                target: "tftp", client = %peer, file = %name, "ignoring an incomplete option at the end of the request"
            );
        }
        let Some(handle) = self.admit(datagram, peer, &name, reply) else { return };
        let job = transfer::Job {
            peer,
            local_ip,
            filename: request.filename.to_vec(),
            netascii,
            options: request.options.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
        };
        self.start_transfer(job, &name, handle, reply);
    }

    /// The request in `datagram`, or `None` for anything else (answered
    /// with an ERROR when it is a request the server cannot read).
    fn parse_request<'a>(
        &self,
        datagram: &'a [u8],
        peer: SocketAddr,
        reply: &mut Vec<u8>,
    ) -> Option<wire::Request<'a>> {
        match wire::parse(datagram) {
            Ok(Packet::Request(req)) => Some(req),
            Ok(other) => {
                // DATA/ACK/ERROR/OACK belong to a transfer's own port; a
                // reply here could start an error ping-pong.
                tracing::debug!(target: "tftp", client = %peer, packet = short(&other), "ignored on the request port");
                None
            }
            Err(e) => {
                tracing::debug!(
                    target: "tftp", client = %peer, bytes = datagram.len(), error = %e, "malformed request"
                );
                if !e.is_truncated() {
                    self.send_error(reply, peer, ErrorCode::IllegalOperation, &format!("malformed request: {e}"));
                }
                None
            }
        }
    }

    /// Refuses write requests and unknown modes; for a read request, whether
    /// it is in netascii mode.
    fn accept_kind_and_mode(
        &self,
        request: &wire::Request<'_>,
        peer: SocketAddr,
        name: &str,
        reply: &mut Vec<u8>,
    ) -> Option<bool> {
        if request.kind == RequestKind::Write {
            tracing::info!(
                target: "tftp", client = %peer, file = %name, error = "server is read-only", "refused write request"
            );
            self.send_error(
                reply,
                peer,
                ErrorCode::AccessViolation,
                "write requests are not accepted: read-only server",
            );
            return None;
        }
        // RFC 1350 names three modes; "mail" is obsolete (RFC 1350 says so)
        // and, like dnsmasq, the relay does not offer it.
        if request.mode.eq_ignore_ascii_case(b"octet") {
            Some(false)
        } else if request.mode.eq_ignore_ascii_case(b"netascii") {
            Some(true)
        } else {
            let mode = display_name(request.mode);
            tracing::info!(
                target: "tftp", client = %peer, file = %name, mode = %mode, error = "transfer mode not supported",
                "refused"
            );
            self.send_error(
                reply,
                peer,
                ErrorCode::IllegalOperation,
                &format!("mode {mode:?} not supported, use octet (binary) or netascii"),
            );
            None
        }
    }

    /// Takes a transfer slot for `peer`, or says why not: a duplicate of
    /// the request under way (answered by that transfer), or the server or
    /// this host is busy.
    fn admit(&self, datagram: &[u8], peer: SocketAddr, name: &str, reply: &mut Vec<u8>) -> Option<Arc<TransferHandle>> {
        let handle = Arc::new(TransferHandle {
            request: datagram.to_vec(),
            progressed: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        });
        let mut by_peer = self.shared.by_peer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = by_peer.get(&peer) {
            if old.request == datagram && !old.progressed.load(Ordering::Acquire) {
                // The client resent its request before our answer got
                // there; the running transfer answers it.
                tracing::debug!(
                    target: "tftp", client = %peer, file = %name, "duplicate request, transfer already under way"
                );
                return None;
            }
            // The client started over from the same port.
            old.cancelled.store(true, Ordering::Release);
        }
        // One host may not take every slot: a flood of requests from
        // one address that never ACKs would otherwise lock out every
        // target until its transfers time out. A ROM or a loader runs
        // one or two transfers at a time.
        let from_host = by_peer.keys().filter(|p| p.ip() == peer.ip() && **p != peer).count();
        if from_host >= PER_HOST_TRANSFERS {
            drop(by_peer);
            tracing::warn!(
                target: "tftp", client = %peer, file = %name, host_transfers = from_host, error = "server busy",
                "refused"
            );
            self.send_error(reply, peer, ErrorCode::NotDefined, "server busy, try again later");
            return None;
        }
        let running = self.shared.running.load(Ordering::Acquire);
        if running >= self.shared.max_transfers {
            drop(by_peer);
            tracing::warn!(
                target: "tftp", client = %peer, file = %name, transfers = running, error = "server busy", "refused"
            );
            self.send_error(reply, peer, ErrorCode::NotDefined, "server busy, try again later");
            return None;
        }
        self.shared.running.fetch_add(1, Ordering::AcqRel);
        by_peer.insert(peer, handle.clone());
        Some(handle)
    }

    /// Runs an admitted transfer on its own thread, which gives its slot
    /// back when it ends.
    fn start_transfer(&self, job: transfer::Job, name: &str, handle: Arc<TransferHandle>, reply: &mut Vec<u8>) {
        let peer = job.peer;
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new().name(format!("tftp {peer}")).spawn({
            let handle = handle.clone();
            move || {
                transfer::run(&shared, &handle, job);
                finish(&shared, peer, &handle);
            }
        });
        if let Err(e) = spawned {
            finish(&self.shared, peer, &handle);
            tracing::warn!(target: "tftp", client = %peer, file = %name, error = %e, "cannot start a transfer thread");
            self.send_error(reply, peer, ErrorCode::NotDefined, "server busy, try again later");
        }
    }
}

/// Transfers one client address may have in flight at once.
pub const PER_HOST_TRANSFERS: usize = 8;

/// Asks for IP_PKTINFO control messages on an IPv4 socket.
fn enable_pktinfo(socket: &UdpSocket) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// recvmsg that also returns the local address the datagram was for
/// (IP_PKTINFO's ipi_spec_dst), when the kernel supplied it.
fn recv_with_local_addr(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    // Control buffer, u64-aligned as cmsghdr requires.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: recvmsg writes at most msg_namelen bytes of address into the
    // storage, at most iov_len bytes into `buf` and at most msg_controllen
    // bytes into `control`, all of which outlive the call; the CMSG macros
    // walk only the control bytes the kernel reported.
    unsafe {
        let (received, peer) = socket2::SockAddr::try_init(|storage, len| {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = storage.cast();
            msg.msg_namelen = *len;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control);
            let n = libc::recvmsg(socket.as_raw_fd(), &mut msg, 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            *len = msg.msg_namelen;
            let mut local = None;
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::IPPROTO_IP && (*cmsg).cmsg_type == libc::IP_PKTINFO {
                    let info: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    local = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr))));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
            Ok((n as usize, local))
        })?;
        let peer = peer.as_socket().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "non-IP sender"))?;
        Ok((received.0, peer, received.1))
    }
}

/// Releases a transfer's slot and, unless superseded, its peer entry.
fn finish(shared: &Shared, peer: SocketAddr, handle: &Arc<TransferHandle>) {
    let mut by_peer = shared.by_peer.lock().unwrap_or_else(|p| p.into_inner());
    if by_peer.get(&peer).is_some_and(|h| Arc::ptr_eq(h, handle)) {
        by_peer.remove(&peer);
    }
    shared.running.fetch_sub(1, Ordering::AcqRel);
}

/// A file name from the wire, for a log field: at most 256 bytes of it,
/// as UTF-8 (the renderer quotes and escapes what needs it).
pub(crate) fn display_name(bytes: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
    if bytes.len() > 256 {
        s.push_str("...");
    }
    s
}

fn short(p: &Packet<'_>) -> &'static str {
    match p {
        Packet::Request(_) => "request",
        Packet::Data { .. } => "DATA",
        Packet::Ack { .. } => "ACK",
        Packet::Error { .. } => "ERROR",
        Packet::Oack { .. } => "OACK",
    }
}
