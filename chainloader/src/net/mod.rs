//! The network side: smoltcp over UNDI, DHCP, and downloads by TFTP and
//! HTTP with the sans-IO clients from `bootproto::tftp` and `bootproto::http`.

pub mod http;
pub mod lease;
pub mod undi_device;

extern crate alloc;

use crate::arch::cpu;
use crate::arch::pxe::Undi;
use crate::{print, println};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use bootproto::tftp::{self, Client, Event, Request, SinkError};
use core::net::Ipv4Addr;
use lease::Lease;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{DhcpOption, EthernetAddress, HardwareAddress, IpCidr, IpEndpoint, Ipv4Cidr};
use undi_device::UndiDevice;

/// TFTP block size: the largest whose DATA packet fits a 1500-byte MTU
/// (1500 - 20 IP - 8 UDP - 4 TFTP header).
pub const TFTP_BLKSIZE: u16 = 1468;
/// TFTP window size to ask for (RFC 7440); servers that do not know it
/// (QEMU's slirp) answer without it and the transfer runs lockstep.
pub const TFTP_WINDOWSIZE: u16 = 16;
/// Our local TFTP port.
const TFTP_LOCAL_PORT: u16 = 49152;

/// Option 77, as iPXE sends it (a plain string): dnsmasq's
/// `dhcp-userclass=set:TAG,chainloader` and the relay match it.
pub const USER_CLASS: &[u8] = b"chainloader";
/// Option 60. Kept PXE-compatible so that PXE-aware servers still answer;
/// the user class is what tells the chainloader from the ROM.
pub const VENDOR_CLASS: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";
const PARAMS: &[u8] = &[1, 3, 6, 12, 15, 28, 43, 54, 60, 66, 67, 209, 210];

static DHCP_OPTIONS: [DhcpOption<'static>; 2] =
    [DhcpOption { kind: 77, data: USER_CLASS }, DhcpOption { kind: 60, data: VENDOR_CLASS }];

pub fn now() -> Instant {
    Instant::from_millis(cpu::now_ms() as i64)
}

pub struct Net {
    pub dev: UndiDevice,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    /// The one UDP socket all TFTP transfers use, once `enable_downloads`
    /// gave it buffers (the heap is small).
    tftp_sock: Option<SocketHandle>,
    /// The HTTP connection, once `enable_http` gave it buffers.
    http: Option<http::Conn>,
}

/// Room for 32 datagrams of a full block each: a whole TFTP window (16)
/// can arrive between two drains of the socket. Their bytes
/// (`UDP_RX_DATA_LEN`) come from `enable_downloads`, outside base memory,
/// where chainloader.0 has no room to spare.
const UDP_RX_SLOTS: usize = 32;
pub const UDP_RX_DATA_LEN: usize = UDP_RX_SLOTS * 1536;
/// The TFTP socket's other buffers, in .bss; each taken once, for good, by
/// [`Net::enable_downloads`].
static UDP_RX_META: spin::Mutex<[udp::PacketMetadata; UDP_RX_SLOTS]> =
    spin::Mutex::new([udp::PacketMetadata::EMPTY; UDP_RX_SLOTS]);
static UDP_TX_META: spin::Mutex<[udp::PacketMetadata; 8]> = spin::Mutex::new([udp::PacketMetadata::EMPTY; 8]);
static UDP_TX_DATA: spin::Mutex<[u8; 8 * 600]> = spin::Mutex::new([0; 8 * 600]);

/// A static buffer for good; a second call is a bug.
fn take<T>(m: &'static spin::Mutex<T>) -> &'static mut T {
    spin::MutexGuard::leak(m.try_lock().expect("download buffers are given once"))
}

pub struct Fetched {
    pub size: u64,
    pub ms: u64,
}

impl Net {
    pub fn new(undi: Undi, mac: [u8; 6]) -> Net {
        let mut dev = UndiDevice::new(undi);
        let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        let iface = Interface::new(config, &mut dev, now());
        let sockets = SocketSet::new(vec![]);
        Net { dev, iface, sockets, tftp_sock: None, http: None }
    }

    /// Gives the download sockets their buffers: `udp_rx` (at least
    /// `UDP_RX_DATA_LEN` bytes) for TFTP, `tcp_rx`/`tcp_tx` for HTTP. Called
    /// once: the UDP metadata statics are borrowed for the rest of the run.
    pub fn enable_downloads(
        &mut self,
        udp_rx: &'static mut [u8],
        tcp_rx: &'static mut [u8],
        tcp_tx: &'static mut [u8],
    ) {
        let rx = udp::PacketBuffer::new(&mut take(&UDP_RX_META)[..], udp_rx);
        let tx = udp::PacketBuffer::new(&mut take(&UDP_TX_META)[..], &mut take(&UDP_TX_DATA)[..]);
        let mut sock = udp::Socket::new(rx, tx);
        let _ = sock.bind(TFTP_LOCAL_PORT);
        self.tftp_sock = Some(self.sockets.add(sock));
        self.enable_http(tcp_rx, tcp_tx);
    }

    /// smoltcp's work: frames waiting in the ring go in, queued output goes
    /// to the UNDI transmit queue. Makes no PXE call.
    fn poll(&mut self) {
        self.iface.poll(now(), &mut self.dev, &mut self.sockets);
    }

    /// Sends what is queued and waits for frames until `until_ms` (at most
    /// 50 ms, so timers stay fresh): one trip to real mode.
    fn wait(&mut self, until_ms: u64) {
        let now = cpu::now_ms();
        let until = until_ms.clamp(now, now + 50);
        self.dev.undi.pump(&mut self.dev.rx, cpu::tsc_at_ms(until));
    }

    /// DHCP through smoltcp with our user and vendor class. `None` when no
    /// server answered within `timeout_ms`.
    pub fn dhcp(&mut self, timeout_ms: u64) -> Option<Lease> {
        let ack_buf: &'static mut [u8] = Vec::leak(vec![0u8; 1500]);
        let mut sock = dhcpv4::Socket::new();
        sock.set_outgoing_options(&DHCP_OPTIONS);
        sock.set_parameter_request_list(PARAMS);
        sock.set_receive_packet_buffer(ack_buf);
        let h = self.sockets.add(sock);
        let deadline = cpu::now_ms() + timeout_ms;
        let mut lease = None;
        while cpu::now_ms() < deadline {
            self.poll();
            let s = self.sockets.get_mut::<dhcpv4::Socket>(h);
            if let Some(dhcpv4::Event::Configured(cfg)) = s.poll() {
                if let Some(p) = cfg.packet {
                    // The ACK was the last DHCP reply in: its UDP length
                    // trims smoltcp's fixed-size copy to the packet itself.
                    let raw = p.into_inner();
                    let n = match self.dev.last_dhcp_reply_len.get() {
                        n if n >= 240 && n <= raw.len() => n,
                        _ => raw.len(),
                    };
                    lease = Lease::parse(&raw[..n]);
                }
                if let Some(l) = lease.as_mut() {
                    // smoltcp's view is the one that was acted on.
                    l.ip = cfg.address.address();
                    l.prefix = cfg.address.prefix_len();
                    l.router = cfg.router;
                }
                break;
            }
            let at = self.iface.poll_at(now(), &self.sockets).map(|i| i.total_millis() as u64).unwrap_or(u64::MAX);
            self.wait(at.min(cpu::now_ms() + 10));
        }
        self.dev.undi.flush_tx();
        self.sockets.remove(h);
        lease
    }

    /// Configures the interface from a lease (from DHCP or the ROM's cache).
    pub fn configure(&mut self, l: &Lease) {
        self.iface.update_ip_addrs(|a| {
            a.clear();
            let _ = a.push(IpCidr::Ipv4(Ipv4Cidr::new(l.ip, l.prefix)));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(r) = l.router {
            let _ = self.iface.routes_mut().add_default_ipv4_route(r);
        }
    }

    /// Fetches `filename` from `server` into `dest` by TFTP. The sink copies
    /// each block once, from the UDP socket buffer straight to `dest`.
    /// Prints progress every 10% (or every MiB when the size is unknown).
    pub fn tftp_get(
        &mut self,
        server: Ipv4Addr,
        filename: &str,
        dest: &mut [u8],
        show: &str,
        quiet: bool,
    ) -> Result<Fetched, tftp::Error> {
        let h = self.tftp_sock.ok_or_else(|| tftp::Error::Protocol("no buffers for TFTP (enable_downloads)".into()))?;
        // Leftovers of an earlier transfer (late duplicates) are dropped.
        // A fresh local port (our TID) per transfer, so that late packets of
        // an earlier transfer cannot be taken for this one's.
        let s = self.sockets.get_mut::<udp::Socket>(h);
        let port = s.endpoint().port;
        s.close();
        let _ = s.bind(if port >= 65000 { TFTP_LOCAL_PORT } else { port + 1 });
        let mut progress = Progress::new(show, quiet);
        let result = self.tftp_run(h, server, filename, dest, &mut progress);
        progress.finish();
        result
    }

    /// The transfer's loop: send what the client has to send, hand it what
    /// arrived (showing `progress`), wait for more or for its next timer,
    /// until done or failed.
    fn tftp_run(
        &mut self,
        h: SocketHandle,
        server: Ipv4Addr,
        filename: &str,
        dest: &mut [u8],
        progress: &mut Progress,
    ) -> Result<Fetched, tftp::Error> {
        let t0 = cpu::now_ms();
        let req = Request { filename, blksize: Some(TFTP_BLKSIZE), windowsize: Some(TFTP_WINDOWSIZE), ask_tsize: true };
        let mut client = Client::new(&req, t0);
        client.set_max_size(dest.len() as u64);
        let mut sink = |off: u64, bytes: &[u8]| copy_at(dest, off, bytes).map_err(SinkError);
        loop {
            self.tftp_send(h, server, &mut client);
            if let Some(e) = client.error() {
                break Err(e.clone());
            }
            self.poll();
            let (handled, done) = self.tftp_receive(h, server, &mut client, &mut sink, progress);
            if let Some(r) = done {
                let r = r.map(|size| Fetched { size, ms: cpu::now_ms() - t0 });
                // The final ACK, or an ERROR for the server: out now.
                self.tftp_send(h, server, &mut client);
                self.poll();
                self.dev.undi.flush_tx();
                self.dev.undi.batch = false;
                break r;
            }
            self.dev.undi.batch = client.negotiated().windowsize > 1;
            if handled > 0 {
                // Answers (ACKs) to queue first; the ring may hold more.
                continue;
            }
            let at = client.poll_at().unwrap_or(u64::MAX);
            let at = match self.iface.poll_at(now(), &self.sockets) {
                Some(i) => at.min(i.total_millis() as u64),
                None => at,
            };
            self.wait(at);
        }
    }

    /// Queues what the TFTP client has to send (requests, ACKs, ERROR).
    fn tftp_send(&mut self, h: SocketHandle, server: Ipv4Addr, client: &mut Client) {
        let mut txbuf = [0u8; 600];
        let s = self.sockets.get_mut::<udp::Socket>(h);
        while let Some(t) = client.poll_transmit(cpu::now_ms(), &mut txbuf) {
            let _ = s.send_slice(&txbuf[..t.len], IpEndpoint::new(server.into(), t.dst_port));
        }
    }

    /// Hands the client every datagram from `server` waiting in the socket.
    /// Returns how many it handled, and the transfer's end (its size or its
    /// error) if one came.
    fn tftp_receive(
        &mut self,
        h: SocketHandle,
        server: Ipv4Addr,
        client: &mut Client,
        sink: &mut tftp::Sink<'_>,
        progress: &mut Progress,
    ) -> (usize, Option<Result<u64, tftp::Error>>) {
        let s = self.sockets.get_mut::<udp::Socket>(h);
        let mut handled = 0;
        while let Ok((data, meta)) = s.recv() {
            if meta.endpoint.addr != server.into() {
                continue;
            }
            handled += 1;
            match client.handle(cpu::now_ms(), meta.endpoint.port, data, sink) {
                Ok(Event::Done { size }) => return (handled, Some(Ok(size))),
                Ok(Event::Progress { received, total }) => progress.update(received, total),
                Ok(Event::None) => {}
                Err(e) => return (handled, Some(Err(e))),
            }
        }
        (handled, None)
    }
}

/// A download's sink: `bytes` at offset `off` of `dest`, or why they do not
/// fit.
pub fn copy_at(dest: &mut [u8], off: u64, bytes: &[u8]) -> Result<(), String> {
    let cap = dest.len();
    let off = off as usize;
    match dest.get_mut(off..off + bytes.len()) {
        Some(d) => {
            d.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(alloc::format!("no room: {} bytes at offset {off}, {cap} available", bytes.len())),
    }
}

/// The progress line of a download, the same for TFTP and HTTP:
/// `name: SIZE bytes 10% 20% ...` (or `1 MiB 2 MiB ...` when the size is
/// unknown), ended by `finish`.
pub struct Progress<'a> {
    show: &'a str,
    quiet: bool,
    started: bool,
    next_mark: u64,
}

impl<'a> Progress<'a> {
    pub fn new(show: &'a str, quiet: bool) -> Self {
        Progress { show, quiet, started: false, next_mark: 0 }
    }

    pub fn update(&mut self, received: u64, total: Option<u64>) {
        if self.quiet {
            return;
        }
        if !self.started {
            self.started = true;
            match total {
                Some(t) => print!("{}: {} bytes ", self.show, t),
                None => print!("{}: ", self.show),
            }
        }
        let step = match total {
            Some(t) if t >= 10 => t / 10,
            _ => 1 << 20,
        };
        if received >= self.next_mark + step {
            self.next_mark = received - received % step;
            match total {
                Some(t) => print!("{}% ", received * 100 / t.max(1)),
                None => print!("{} MiB ", received >> 20),
            }
        }
    }

    pub fn finish(&mut self) {
        if self.started {
            println!();
            self.started = false;
        }
    }
}

/// "2.3 MiB in 0.41 s, 5.6 MiB/s" (KiB below 1 MiB).
pub fn rate(size: u64, ms: u64) -> String {
    let ms = ms.max(1);
    let rate10 = size * 10 * 1000 / ms / (1 << 20);
    let (tenths, unit) = if size >= 1 << 20 { ((size * 10) >> 20, "MiB") } else { ((size * 10) >> 10, "KiB") };
    alloc::format!(
        "{}.{} {unit} in {}.{:02} s, {}.{} MiB/s",
        tenths / 10,
        tenths % 10,
        ms / 1000,
        ms % 1000 / 10,
        rate10 / 10,
        rate10 % 10
    )
}
