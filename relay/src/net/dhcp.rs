//! The DHCP server: full mode (addresses + boot information) on a dedicated
//! interface, and the shared reply building that proxyDHCP uses too.
//!
//! `Dhcp::handle` is the whole protocol decision, free of sockets, so unit
//! tests feed it real captured packets; `serve` is the socket loop.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode, UnknownOption};
use dhcproto::{Decodable, Decoder, Encodable};
use tracing::{debug, info, warn};

use crate::error::Chain;
use crate::net::iface::Interface;
use crate::net::leases::{unix_now, Leases};
use crate::net::wire::{self, Packet};
use crate::net::{socket, NetError};
use crate::policy::config::Config;
use crate::policy::tagging::{self, fmt_mac, mac_file_name, Client, ConfigFile, Decision, Mac, Rule};
use crate::policy::targets::TargetTable;

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
/// The PXE boot server port, where ROMs send their ProxyDHCP REQUEST.
pub const PXE_PORT: u16 = 4011;
pub const DEFAULT_LEASE_SECS: u32 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Addresses and boot information: the only DHCP server on the link.
    Full,
    /// Boot information only, beside the site's DHCP server.
    Proxy,
}

/// Everything the server decides with.
pub struct Dhcp {
    pub iface: Interface,
    pub mode: Mode,
    pub tftp_root: PathBuf,
    pub rules: Vec<Rule>,
    /// Full mode only.
    pub leases: Option<Leases>,
    pub lease_secs: u32,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// Our own probe's transaction id, ignored when it loops back.
    pub ignore_xid: Option<u32>,
    /// Told after each offer, so the conflict prober looks ahead.
    pub offered: Option<std::sync::mpsc::Sender<()>>,
    /// The machines this relay knows by MAC.
    pub targets: std::sync::Arc<TargetTable>,
    /// Told of every DISCOVER (evidence that a machine is booting).
    pub observer: Option<std::sync::Arc<dyn DhcpObserver>>,
    /// `http://addr:port/` when the relay serves its root over HTTP too:
    /// sent as option 210 (PXELINUX's path prefix) with every option 209,
    /// so chainloader.0 fetches its config and the files it names by HTTP.
    pub http_prefix: Option<String>,
}

/// Hears of every DHCPDISCOVER: a PXE ROM's is the strongest evidence that a
/// target has just been reset.
pub trait DhcpObserver: Send + Sync {
    fn discover(&self, client: &Client);
}

/// A reply to send.
#[derive(Debug)]
pub struct Reply {
    pub message: Message,
    pub to: SocketAddrV4,
}

impl Reply {
    pub fn bytes(&self) -> Vec<u8> {
        self.message.to_vec().expect("encoding a message we built")
    }
}

/// The pool of a subnet when the config gives none: .100-.199 of a /24,
/// otherwise the upper half of the subnet, clipped to usable addresses.
pub fn default_range(iface: &Interface) -> (Ipv4Addr, Ipv4Addr) {
    let net = u32::from(iface.network());
    let bcast = u32::from(iface.broadcast());
    let size = bcast - net + 1;
    if size == 256 {
        return (Ipv4Addr::from(net + 100), Ipv4Addr::from(net + 199));
    }
    if size <= 4 {
        return (Ipv4Addr::from(net + 1), Ipv4Addr::from(bcast.saturating_sub(1).max(net + 1)));
    }
    (Ipv4Addr::from(net + size / 2), Ipv4Addr::from(bcast - 1))
}

impl Dhcp {
    pub fn new(
        iface: Interface,
        mode: Mode,
        tftp_root: PathBuf,
        config: &Config,
        state_dir: Option<&std::path::Path>,
    ) -> Result<Dhcp, NetError> {
        let rules = config.rules.iter().cloned().map(Rule::new).collect::<Result<Vec<_>, _>>()?;
        let leases = match mode {
            Mode::Proxy => None,
            Mode::Full => {
                let range = config.dhcp.range.unwrap_or_else(|| default_range(&iface));
                for ip in [range.0, range.1] {
                    if !iface.contains(ip) {
                        return Err(NetError::RangeOutsideSubnet {
                            first: range.0,
                            last: range.1,
                            ifname: iface.name.clone(),
                            network: iface.network(),
                            prefix: iface.prefix_len(),
                        });
                    }
                }
                let statics: HashMap<Mac, Ipv4Addr> = config
                    .hosts
                    .iter()
                    .map(|h| Ok((tagging::parse_mac(&h.mac)?, h.ip)))
                    .collect::<Result<_, crate::policy::PolicyError>>()?;
                Some(Leases::open(state_dir, range, vec![iface.addr], statics)?)
            }
        };
        Ok(Dhcp {
            iface,
            mode,
            tftp_root,
            rules,
            leases,
            lease_secs: config.dhcp.lease_secs.unwrap_or(DEFAULT_LEASE_SECS),
            router: config.dhcp.router,
            dns: config.dhcp.dns.clone(),
            domain: config.dhcp.domain.clone(),
            ignore_xid: None,
            offered: None,
            targets: Default::default(),
            observer: None,
            http_prefix: None,
        })
    }

    /// One datagram in, at most one reply out. `local_port` is 67 or 4011.
    pub fn handle(&mut self, pkt: &[u8], src: SocketAddrV4, local_port: u16) -> Option<Reply> {
        let msg = parse_request(pkt, src)?;
        if self.ignore_xid == Some(msg.xid()) {
            return None;
        }
        let Some(mtype) = msg.opts().msg_type() else {
            debug!(target: "dhcp", src = %src, "dropped a BOOTP message without option 53");
            return None;
        };
        let client = Client::from_message(&msg, &self.iface.name)?;
        if mtype == MessageType::Discover {
            if let Some(o) = &self.observer {
                o.discover(&client);
            }
        }
        match (self.mode, local_port) {
            (_, PXE_PORT) => self.proxy_request(&msg, &client, mtype, src),
            (Mode::Proxy, _) => self.proxy_discover(&msg, &client, mtype),
            (Mode::Full, _) => self.full(&msg, &client, mtype),
        }
    }

    /// Full mode: the address and the boot information.
    fn full(&mut self, msg: &Message, client: &Client, mtype: MessageType) -> Option<Reply> {
        self.leases.as_ref()?;
        let now = unix_now();
        let requested = option_ip(msg, OptionCode::RequestedIpAddress);
        match mtype {
            MessageType::Discover => self.full_discover(msg, client, requested, now),
            MessageType::Request => self.full_request(msg, client, requested, now),
            MessageType::Decline => {
                self.full_decline(client, requested, now);
                None
            }
            MessageType::Release => {
                self.full_release(msg, client);
                None
            }
            MessageType::Inform => {
                let decision = self.decide(client);
                Some(self.reply(msg, client, MessageType::Ack, Ipv4Addr::UNSPECIFIED, &decision))
            }
            other => {
                debug!(target: "dhcp", client = %fmt_mac(&client.mac), request = ?other, "ignored");
                None
            }
        }
    }

    /// DISCOVER: an address from the pool, held for the client, and an OFFER.
    fn full_discover(
        &mut self,
        msg: &Message,
        client: &Client,
        requested: Option<Ipv4Addr>,
        now: u64,
    ) -> Option<Reply> {
        let mac = client.mac;
        let decision = self.decide(client);
        let leases = self.leases.as_mut()?;
        let Some(ip) = leases.choose(&mac, requested, now) else {
            warn!(target: "dhcp", client = %fmt_mac(&mac), "DISCOVER: no free address in the pool; not answering");
            return None;
        };
        leases.offer(&mac, ip, now);
        if let Some(tx) = &self.offered {
            let _ = tx.send(());
        }
        Some(self.reply(msg, client, MessageType::Offer, ip, &decision))
    }

    /// REQUEST: binds the address and ACKs, or NAKs; silent when the client
    /// chose another server.
    fn full_request(&mut self, msg: &Message, client: &Client, requested: Option<Ipv4Addr>, now: u64) -> Option<Reply> {
        let mac = client.mac;
        let server_id = option_ip(msg, OptionCode::ServerIdentifier);
        if let Some(server) = server_id.filter(|s| *s != self.iface.addr) {
            debug!(target: "dhcp", client = %fmt_mac(&mac), server = %server, "chose another server");
            return None;
        }
        let ip = requested.or_else(|| (!msg.ciaddr().is_unspecified()).then(|| msg.ciaddr()))?;
        let secs = self.lease_secs;
        match self.leases.as_mut()?.bind(&mac, ip, now, secs) {
            Ok(true) => {
                let decision = self.decide(client);
                Some(self.reply(msg, client, MessageType::Ack, ip, &decision))
            }
            Ok(false) => {
                info!(target: "dhcp", client = %fmt_mac(&mac), ip = %ip, "REQUEST: NAK (not available to this client)");
                Some(self.nak(msg))
            }
            Err(e) => {
                warn!(
                    target: "dhcp",
                    client = %fmt_mac(&mac),
                    ip = %ip,
                    error = %Chain(&e),
                    "REQUEST: saving the lease failed; NAK"
                );
                Some(self.nak(msg))
            }
        }
    }

    /// DECLINE: the client found its address in use; out of the pool.
    fn full_decline(&mut self, client: &Client, requested: Option<Ipv4Addr>, now: u64) {
        let (Some(ip), Some(leases)) = (requested, self.leases.as_mut()) else { return };
        warn!(
            target: "dhcp",
            client = %fmt_mac(&client.mac),
            ip = %ip,
            "DECLINE: address in use by another host, taken out of the pool"
        );
        if let Err(e) = leases.mark_bad(ip, now) {
            warn!(target: "dhcp", error = %Chain(&e), "saving leases");
        }
    }

    /// RELEASE: the client gives its lease back.
    fn full_release(&mut self, msg: &Message, client: &Client) {
        let Some(leases) = self.leases.as_mut() else { return };
        info!(target: "dhcp", client = %fmt_mac(&client.mac), ip = %msg.ciaddr(), "RELEASE");
        if let Err(e) = leases.release(&client.mac, msg.ciaddr()) {
            warn!(target: "dhcp", error = %Chain(&e), "saving leases");
        }
    }

    /// The tagging decision, with a per-target config file resolved against
    /// the TFTP root.
    pub fn decide(&self, client: &Client) -> Decision {
        let mut d = tagging::decide(&self.rules, client);
        if d.config_file == Some(ConfigFile::PerTarget) {
            // The target's own file, else the default; with neither, no
            // option 209, and the chainloader walks its PXELINUX-style
            // candidates (01-<mac>, hex IP prefixes, default) by itself.
            let own = format!("chainloader.cfg/{}", mac_file_name(&client.mac));
            if let Some((_, name)) = self.targets.config_file_for(&client.mac) {
                d.rule = format!("target {name} ({})", d.rule);
            }
            let default = "chainloader.cfg/default".to_string();
            d.config_file = [own, default].into_iter().find(|p| self.tftp_root.join(p).is_file()).map(ConfigFile::Path);
            if d.config_file.is_none() {
                d.note = Some(
                    "no chainloader.cfg/01-<mac> or chainloader.cfg/default in the TFTP root: no option 209".into(),
                );
            }
        }
        d
    }

    /// Builds an OFFER or ACK (full or proxy) and logs the decision.
    pub(crate) fn reply(
        &self,
        req: &Message,
        client: &Client,
        mtype: MessageType,
        yiaddr: Ipv4Addr,
        d: &Decision,
    ) -> Reply {
        let mut m = reply_header(req, mtype, yiaddr);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(mtype));
        o.insert(DhcpOption::ServerIdentifier(self.iface.addr));
        if self.mode == Mode::Full {
            self.insert_address_options(&mut m, yiaddr);
        }
        // Option 60 "PXEClient" tells a PXE ROM that this offer carries the
        // boot information itself, so it does not wait for a ProxyDHCP offer;
        // option 43 with PXE_DISCOVERY_CONTROL = 8 tells it to download the
        // boot file at once instead of running boot server discovery.
        if client.is_pxe() {
            m.opts_mut().insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
            m.opts_mut().insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
        }
        let next_server = d.next_server.unwrap_or(self.iface.addr);
        self.insert_boot_information(&mut m, d, next_server);
        self.log_decision(req, client, mtype, d, &m);
        let to = reply_destination(req, mtype);
        Reply { message: m, to }
    }

    /// Full mode: lease times (when there is an address) and the subnet's
    /// mask, broadcast, router, DNS and domain.
    fn insert_address_options(&self, m: &mut Message, yiaddr: Ipv4Addr) {
        let o = m.opts_mut();
        if !yiaddr.is_unspecified() {
            o.insert(DhcpOption::AddressLeaseTime(self.lease_secs));
            o.insert(DhcpOption::Renewal(self.lease_secs / 2));
            o.insert(DhcpOption::Rebinding(self.lease_secs / 8 * 7));
        }
        o.insert(DhcpOption::SubnetMask(self.iface.netmask));
        o.insert(DhcpOption::BroadcastAddr(self.iface.broadcast()));
        if let Some(r) = self.router {
            o.insert(DhcpOption::Router(vec![r]));
        }
        if !self.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServer(self.dns.clone()));
        }
        if let Some(dn) = &self.domain {
            o.insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::DomainName, dn.as_bytes().to_vec())));
        }
    }

    /// The decision's boot file (BOOTP file and option 67), config file
    /// (209, with 210 when HTTP serves the root) and next-server, then its
    /// raw options over everything.
    fn insert_boot_information(&self, m: &mut Message, d: &Decision, next_server: Ipv4Addr) {
        if d.boot_file.is_some() || d.config_file.is_some() {
            m.set_siaddr(next_server);
        }
        if let Some(f) = &d.boot_file {
            m.set_fname_str(f);
            m.opts_mut().insert(DhcpOption::BootfileName(f.as_bytes().to_vec()));
        }
        if let Some(ConfigFile::Path(p)) = &d.config_file {
            m.opts_mut()
                .insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(209u8), p.as_bytes().to_vec())));
            if let Some(prefix) = &self.http_prefix {
                m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::from(210u8),
                    prefix.as_bytes().to_vec(),
                )));
            }
        }
        for (code, v) in &d.options {
            let code = OptionCode::from(*code);
            m.opts_mut().remove(code);
            m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(code, v.clone())));
        }
    }

    /// The one line per answer: who asked what, which rule matched, what
    /// they get (`answer`, of type `mtype`). Target `dhcp` in full mode,
    /// `proxy` in proxy mode.
    fn log_decision(&self, req: &Message, client: &Client, mtype: MessageType, d: &Decision, answer: &Message) {
        let ip = Some(answer.yiaddr()).filter(|a| !a.is_unspecified());
        let next_server = Some(answer.siaddr()).filter(|a| !a.is_unspecified());
        let cfg = match &d.config_file {
            Some(ConfigFile::Path(p)) => Some(p.as_str()),
            _ => None,
        };
        let reqtype = req.opts().msg_type().map_or("?".into(), |t| format!("{t:?}").to_uppercase());
        // tracing wants a literal target, so one call per mode.
        macro_rules! decision {
            ($target:literal) => {
                info!(
                    target: $target,
                    client = %fmt_mac(&client.mac),
                    file = d.boot_file.as_deref(),
                    vendor = client.vendor_class.as_deref(),
                    user = client.user_classes.first().map(String::as_str),
                    arch = client.arch,
                    rule = %d.rule,
                    reply = ?mtype,
                    ip = ip.map(tracing::field::display),
                    next_server = next_server.map(tracing::field::display),
                    config = cfg,
                    http_prefix = cfg.and(self.http_prefix.as_deref()),
                    note = d.note.as_deref(),
                    "{reqtype}"
                )
            };
        }
        match self.mode {
            Mode::Full => decision!("dhcp"),
            Mode::Proxy => decision!("proxy"),
        }
    }

    fn nak(&self, req: &Message) -> Reply {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootReply)
            .set_htype(HType::Eth)
            .set_xid(req.xid())
            .set_flags(req.flags().set_broadcast())
            .set_chaddr(req.chaddr())
            .set_giaddr(req.giaddr());
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Nak));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(self.iface.addr));
        Reply { message: m, to: reply_destination(req, MessageType::Nak) }
    }
}

/// A client's datagram as a BOOTP request: sanitised, decoded, a
/// BOOTREQUEST from Ethernet. Anything else is dropped, with a debug line
/// saying why.
fn parse_request(pkt: &[u8], src: SocketAddrV4) -> Option<Message> {
    let clean = match sanitize(pkt) {
        Ok(c) => c,
        Err(why) => {
            debug!(target: "dhcp", src = %src, bytes = pkt.len(), error = why, "dropped");
            return None;
        }
    };
    let msg = match Message::decode(&mut Decoder::new(&clean)) {
        Ok(m) => m,
        Err(e) => {
            debug!(target: "dhcp", src = %src, bytes = pkt.len(), error = %e, "dropped: not a DHCP message");
            return None;
        }
    };
    if msg.opcode() != Opcode::BootRequest || msg.htype() != HType::Eth {
        debug!(target: "dhcp", src = %src, "dropped a non-request or non-Ethernet message");
        return None;
    }
    Some(msg)
}

/// Option 50 or 54 of a message, if it has it.
fn option_ip(msg: &Message, code: OptionCode) -> Option<Ipv4Addr> {
    match msg.opts().get(code) {
        Some(DhcpOption::RequestedIpAddress(ip)) | Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    }
}

/// The BOOTREPLY header of an OFFER or ACK to `req`.
fn reply_header(req: &Message, mtype: MessageType, yiaddr: Ipv4Addr) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_htype(HType::Eth)
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_chaddr(req.chaddr())
        .set_giaddr(req.giaddr())
        .set_yiaddr(yiaddr)
        .set_ciaddr(if mtype == MessageType::Ack { req.ciaddr() } else { Ipv4Addr::UNSPECIFIED });
    m
}

/// Rebuilds a client datagram with only the options the server reads, each
/// with the length its meaning requires, before `dhcproto` sees it.
///
/// dhcproto trusts option lengths in places: debug assertions on them
/// (found by the mutation test), `len - 3` style arithmetic, fixed-size
/// reads that ignore the length byte and so desynchronise the rest. With
/// `panic = "abort"` one hostile datagram must not be able to end the server.
/// A server needs few client options, so everything else is dropped here
/// (which ones, and how long each must be: `wire::OptionCode::keep`).
pub fn sanitize(pkt: &[u8]) -> Result<Vec<u8>, &'static str> {
    let p = Packet::new_checked(pkt).map_err(wire::Error::text)?;
    if p.magic_cookie() != wire::MAGIC_COOKIE {
        return Err(wire::Error::NoMagicCookie.text());
    }
    if p.hardware_len() != 6 {
        return Err(wire::Error::NotEthernet.text());
    }
    let kept = p.kept_options().map_err(wire::Error::text)?;
    let mut out = p.header().to_vec();
    for (code, value) in kept {
        out.push(code.into());
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    }
    out.push(wire::END);
    Ok(out)
}

/// RFC 2131 4.1: through a relay agent to its port 67; to ciaddr when the
/// client has an address; otherwise broadcast, which every PXE ROM accepts
/// (unicasting to an address the client does not have yet would need an ARP
/// entry forged with raw sockets).
pub fn reply_destination(req: &Message, mtype: MessageType) -> SocketAddrV4 {
    if !req.giaddr().is_unspecified() {
        return SocketAddrV4::new(req.giaddr(), SERVER_PORT);
    }
    if !req.ciaddr().is_unspecified() && mtype != MessageType::Nak {
        return SocketAddrV4::new(req.ciaddr(), CLIENT_PORT);
    }
    SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
}

/// Pings the next free pool addresses in the background: at start, after
/// every offer, and every `PROBE_EVERY`; an address that answers although
/// nobody has a lease on it is taken out of the pool (for `BAD_SECS`) before
/// any client is offered it. No boot waits for this.
pub fn probe_pool(
    dhcp: &std::sync::Mutex<Dhcp>,
    mut pinger: crate::net::probe::Pinger,
    offered: std::sync::mpsc::Receiver<()>,
) -> Result<(), NetError> {
    const LOOKAHEAD: usize = 4;
    const PROBE_EVERY: Duration = Duration::from_secs(60);
    let mut last: HashMap<Ipv4Addr, Instant> = HashMap::new();
    loop {
        let candidates = {
            let d = dhcp.lock().unwrap_or_else(|p| p.into_inner());
            d.leases.as_ref().map(|l| l.next_free(LOOKAHEAD, unix_now())).unwrap_or_default()
        };
        for ip in candidates {
            if last.get(&ip).is_some_and(|t| t.elapsed() < PROBE_EVERY) {
                continue;
            }
            last.insert(ip, Instant::now());
            if pinger.answers(ip, Duration::from_millis(500))? {
                let mut d = dhcp.lock().unwrap_or_else(|p| p.into_inner());
                warn!(
                    target: "dhcp",
                    ip = %ip,
                    interface = %d.iface.name,
                    "answers ping but has no lease: in use by another host, taken out of the pool"
                );
                if let Some(l) = d.leases.as_mut() {
                    l.mark_bad(ip, unix_now())?;
                }
            } else {
                debug!(target: "dhcp", ip = %ip, "conflict probe: free");
            }
        }
        match offered.recv_timeout(PROBE_EVERY) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// Serves one socket until it fails. `local_port` tells the port it is on.
pub fn serve(udp: UdpSocket, local_port: u16, dhcp: &std::sync::Mutex<Dhcp>) -> Result<(), NetError> {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, src) = match udp.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(socket("receiving DHCP")(e)),
        };
        let std::net::SocketAddr::V4(src) = src else { continue };
        let reply = dhcp.lock().unwrap_or_else(|p| p.into_inner()).handle(&buf[..n], src, local_port);
        if let Some(r) = reply {
            if let Err(e) = udp.send_to(&r.bytes(), r.to) {
                warn!(target: "dhcp", to = %r.to, error = %e, "sending a reply");
            }
        }
    }
}

/// Broadcasts a DISCOVER on the interface (from port 68, broadcast flag
/// set so that servers answer by broadcast) and waits `wait` for any OFFER.
/// Returns the server that answered, if any, and the probe's xid.
pub fn probe_other_server(ifname: &str, wait: Duration) -> Result<(Option<Ipv4Addr>, u32), NetError> {
    let sock = probe_socket(ifname)?;
    let xid: u32 = rand::random();
    sock.send_to(&probe_discover(xid).to_vec()?, (Ipv4Addr::BROADCAST, SERVER_PORT))
        .map_err(|source| NetError::SendProbe { ifname: ifname.to_string(), source })?;
    Ok((first_offer(&sock, xid, Instant::now() + wait)?, xid))
}

/// The probe's socket: port 68 on `ifname`, allowed to broadcast.
fn probe_socket(ifname: &str) -> Result<UdpSocket, NetError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.bind_device(Some(ifname.as_bytes())).map_err(|e| crate::net::iface::bind_error(e, CLIENT_PORT, ifname))?;
    s.set_broadcast(true)?;
    // A DHCP client on the host may hold port 68 as well.
    s.set_reuse_address(true)?;
    s.bind(&std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, CLIENT_PORT)).into())
        .map_err(|e| crate::net::iface::bind_error(e, CLIENT_PORT, ifname))?;
    Ok(UdpSocket::from(s))
}

/// The probe's DISCOVER, from a random locally administered MAC, so that
/// no real host's lease is touched.
fn probe_discover(xid: u32) -> Message {
    let mut mac: Mac = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    let mut m = Message::new_with_id(
        xid,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    m.set_flags(Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    m.opts_mut().insert(DhcpOption::ClassIdentifier(b"relay-probe".to_vec()));
    m
}

/// The server of the first OFFER to `xid` before `deadline`: its option
/// 54, else the address it came from.
fn first_offer(sock: &UdpSocket, xid: u32, deadline: Instant) -> Result<Option<Ipv4Addr>, NetError> {
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sock.set_read_timeout(Some(left))?;
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(None)
            }
            Err(e) => return Err(socket("waiting for DHCP offers")(e)),
        };
        debug!(target: "dhcp", src = %src, bytes = n, "probe: a reply");
        let Some(reply) = sanitize(&buf[..n]).ok().and_then(|c| Message::decode(&mut Decoder::new(&c)).ok()) else {
            continue;
        };
        if reply.xid() != xid
            || reply.opcode() != Opcode::BootReply
            || reply.opts().msg_type() != Some(MessageType::Offer)
        {
            continue;
        }
        let server = option_ip(&reply, OptionCode::ServerIdentifier).unwrap_or(match src {
            std::net::SocketAddr::V4(a) => *a.ip(),
            _ => Ipv4Addr::UNSPECIFIED,
        });
        return Ok(Some(server));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sanitize` as it was before the `wire` view, walking raw offsets:
    /// the view must give the same bytes and the same errors.
    fn sanitize_by_offsets(pkt: &[u8]) -> Result<Vec<u8>, &'static str> {
        if pkt.len() < 240 {
            return Err("shorter than a BOOTP header");
        }
        if pkt[236..240] != [99, 130, 83, 99] {
            return Err("no DHCP magic cookie");
        }
        if pkt[2] != 6 {
            return Err("hardware address length is not 6 (not Ethernet)");
        }
        let mut out = pkt[..240].to_vec();
        let mut i = 240;
        let mut ended = false;
        let mut seen = [false; 256];
        while i < pkt.len() {
            let code = pkt[i];
            if code == 0 {
                i += 1;
                continue;
            }
            if code == 255 {
                ended = true;
                break;
            }
            let Some(&len) = pkt.get(i + 1) else { return Err("option without a length") };
            let len = len as usize;
            let Some(val) = pkt.get(i + 2..i + 2 + len) else { return Err("option runs past the end of the datagram") };
            i += 2 + len;
            let keep: Option<&[u8]> = match code {
                53 if len == 1 => Some(val),
                50 | 51 | 54 if len == 4 => Some(val),
                57 if len == 2 => Some(val),
                93 if len >= 2 => Some(&val[..2]),
                94 if len == 3 => Some(val),
                12 | 43 | 55 | 60 | 61 | 77 | 97 | 175 if len >= 1 => Some(val),
                _ => None,
            };
            if let Some(v) = keep.filter(|_| !std::mem::replace(&mut seen[code as usize], true)) {
                out.push(code);
                out.push(v.len() as u8);
                out.extend_from_slice(v);
            }
        }
        if !ended {
            return Err("options not terminated by END");
        }
        out.push(255);
        Ok(out)
    }

    const FIXTURES: [&[u8]; 5] = [
        include_bytes!("../../tests/fixtures/qemu-ipxe-rom-discover.bin"),
        include_bytes!("../../tests/fixtures/qemu-ipxe-rom-request.bin"),
        include_bytes!("../../tests/fixtures/chainloader-discover.bin"),
        include_bytes!("../../tests/fixtures/chainloader-request.bin"),
        include_bytes!("../../tests/fixtures/fuzz-repeated-option-94.bin"),
    ];

    #[test]
    fn sanitize_gives_the_bytes_and_errors_it_gave_by_offsets() {
        for pkt in FIXTURES {
            assert!(sanitize(pkt).is_ok());
            for n in 0..=pkt.len() {
                assert_eq!(sanitize(&pkt[..n]), sanitize_by_offsets(&pkt[..n]), "truncated to {n}");
            }
        }
        // Deterministic pseudo-random mutations, denser in the options.
        let mut x: u64 = 0x2545f4914f6cdd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..40000 {
            let mut p = FIXTURES[round % FIXTURES.len()].to_vec();
            for _ in 0..(next() % 6 + 1) {
                let i =
                    if next() % 4 == 0 { next() as usize % p.len() } else { 236 + next() as usize % (p.len() - 236) };
                p[i] = match next() % 4 {
                    0 => 255,
                    1 => 0,
                    2 => [50, 53, 54, 57, 60, 77, 93, 94, 97, 175][next() as usize % 10],
                    _ => next() as u8,
                };
            }
            if next() % 3 == 0 {
                p.truncate(next() as usize % p.len());
            }
            assert_eq!(sanitize(&p), sanitize_by_offsets(&p), "{p:02x?}");
        }
    }

    #[test]
    fn sanitize_drops_what_the_server_does_not_read() {
        let mut p = FIXTURES[0][..240].to_vec();
        // Pad, an unknown option, option 53, a repeated 53, a long 93, END.
        p.extend_from_slice(&[0, 1, 4, 255, 255, 255, 0, 53, 1, 1, 53, 1, 3, 93, 4, 0, 0, 0, 7, 255, 9, 9]);
        let out = sanitize(&p).unwrap();
        assert_eq!(&out[240..], &[53, 1, 1, 93, 2, 0, 0, 255]);
        assert_eq!(sanitize(&p[..245]), Err("option runs past the end of the datagram"));
        assert_eq!(sanitize(&p[..p.len() - 3]), Err("options not terminated by END"));
        let mut bad = p.clone();
        bad[2] = 16;
        assert_eq!(sanitize(&bad), Err("hardware address length is not 6 (not Ethernet)"));
        bad[236] = 0;
        assert_eq!(sanitize(&bad), Err("no DHCP magic cookie"));
    }

    /// The INFO lines `f` logs, without time and level.
    fn logged(f: impl FnOnce()) -> Vec<String> {
        crate::log::capture::lines(f).into_iter().filter(|(level, _)| level == "INFO").map(|(_, line)| line).collect()
    }

    fn server(mode: Mode, root: &std::path::Path) -> Dhcp {
        let iface = Interface {
            name: "br0".into(),
            addr: Ipv4Addr::new(10, 77, 0, 1),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
        };
        Dhcp::new(iface, mode, root.to_path_buf(), &Config::default(), None).unwrap()
    }

    #[test]
    fn the_decision_is_one_line_with_fields_under_the_mode_as_target() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("chainloader.cfg")).unwrap();
        std::fs::write(root.path().join("chainloader.cfg/default"), "").unwrap();
        let src = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
        let mut full = server(Mode::Full, root.path());
        let mut proxy = server(Mode::Proxy, root.path());
        let lines = logged(|| {
            full.handle(FIXTURES[0], src, SERVER_PORT).unwrap();
            full.handle(FIXTURES[1], src, SERVER_PORT).unwrap();
            full.handle(FIXTURES[2], src, SERVER_PORT).unwrap();
            proxy.handle(FIXTURES[0], src, SERVER_PORT).unwrap();
            proxy.http_prefix = Some("http://10.77.0.1:8080/".into());
            proxy.handle(FIXTURES[2], src, SERVER_PORT).unwrap();
        });
        let rom = r#"vendor=PXEClient:Arch:00000:UNDI:002001 user=iPXE arch=0"#;
        let note = r#"note="iPXE client (user class iPXE / option 175) gets chainloader.0 as a PXE ROM would; chainloader.0 does not ask again as iPXE, so this cannot loop""#;
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert_eq!(
            lines[0],
            format!(
                r#"dhcp: 52:54:00:12:34:56 chainloader.0: DISCOVER {rom} rule=builtin:ipxe reply=Offer ip=10.77.0.100 next_server=10.77.0.1 {note}"#
            )
        );
        assert!(lines[1].starts_with("dhcp: 52:54:00:12:34:56 chainloader.0: REQUEST "), "{}", lines[1]);
        assert!(lines[1].ends_with(&format!(" reply=Ack ip=10.77.0.100 next_server=10.77.0.1 {note}")), "{}", lines[1]);
        assert!(lines[2].starts_with(r#"dhcp: 52:54:00:12:34:56 DISCOVER vendor=PXEClient"#), "{}", lines[2]);
        assert!(
            lines[2].ends_with(
                r#"user=chainloader rule=builtin:chainloader reply=Offer ip=10.77.0.100 next_server=10.77.0.1 config=chainloader.cfg/default"#
            ),
            "{}",
            lines[2]
        );
        assert_eq!(
            lines[3],
            format!(
                r#"proxy: 52:54:00:12:34:56 chainloader.0: DISCOVER {rom} rule=builtin:ipxe reply=Offer next_server=10.77.0.1 {note}"#
            )
        );
        assert!(lines[4].starts_with("proxy: 52:54:00:12:34:56 DISCOVER "), "{}", lines[4]);
        assert!(
            lines[4].ends_with(
                " reply=Offer next_server=10.77.0.1 config=chainloader.cfg/default http_prefix=http://10.77.0.1:8080/"
            ),
            "{}",
            lines[4]
        );
    }
}
