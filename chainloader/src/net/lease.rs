//! What the chainloader needs from a DHCPACK (ours or the ROM's cached one).

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use smoltcp::wire::DhcpPacket;

#[derive(Clone, Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    /// siaddr (next-server), else option 54 (server identifier).
    pub tftp_server: Option<Ipv4Addr>,
    /// siaddr alone: set only when the server named a boot server.
    pub next_server: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    /// Option 67, else the BOOTP file field.
    pub bootfile: Option<String>,
    /// Option 66 (TFTP server name), as given.
    pub server_name: Option<String>,
    /// Option 209 (PXELINUX configuration file).
    pub config_file: Option<String>,
    /// Option 210 (PXELINUX path prefix).
    pub path_prefix: Option<String>,
    /// The raw packet, for Multiboot2 tag 16.
    pub raw: Vec<u8>,
}

fn ip4(d: &[u8]) -> Option<Ipv4Addr> {
    (d.len() >= 4).then(|| Ipv4Addr::new(d[0], d[1], d[2], d[3]))
}

fn text(d: &[u8]) -> Option<String> {
    let d = match d.iter().position(|&b| b == 0) {
        Some(n) => &d[..n],
        None => d,
    };
    let s = core::str::from_utf8(d).ok()?;
    (!s.is_empty()).then(|| String::from(s))
}

impl Lease {
    /// Parses a BOOTP/DHCP packet. `None` if it is not one or has no address.
    pub fn parse(raw: &[u8]) -> Option<Lease> {
        // Trim to the end option so that trailing padding is not kept.
        let p = DhcpPacket::new_checked(raw).ok()?;
        let yiaddr = p.your_ip();
        let ip = if yiaddr.is_unspecified() { p.client_ip() } else { yiaddr };
        if ip.is_unspecified() {
            return None;
        }
        let mut l = Lease {
            ip,
            prefix: 24,
            router: None,
            tftp_server: None,
            next_server: None,
            server_id: None,
            bootfile: None,
            server_name: None,
            config_file: None,
            path_prefix: None,
            raw: Vec::from(raw),
        };
        for o in p.options() {
            match o.kind {
                1 if o.data.len() == 4 => {
                    l.prefix = u32::from_be_bytes(o.data.try_into().unwrap()).leading_ones() as u8
                }
                3 => l.router = ip4(o.data),
                54 => l.server_id = ip4(o.data),
                66 => l.server_name = text(o.data),
                67 => l.bootfile = text(o.data),
                209 => l.config_file = text(o.data),
                210 => l.path_prefix = text(o.data),
                _ => {}
            }
        }
        l.next_server = next_server(raw);
        l.tftp_server = l.next_server.or(l.server_id);
        if l.bootfile.is_none() {
            l.bootfile = text(&raw[108..236.min(raw.len())]);
        }
        Some(l)
    }

    /// Did the server that answered say anything about booting (a boot
    /// file, a TFTP server name, a config file)? A plain site DHCP server
    /// does not, though it may still fill in siaddr with itself (dnsmasq does).
    pub fn has_boot_info(&self) -> bool {
        self.bootfile.is_some() || self.server_name.is_some() || self.config_file.is_some()
    }
}

/// The boot server (siaddr) a BOOTP/DHCP packet names, if any. Unlike
/// `Lease::parse` this accepts packets without an address for the client:
/// a proxyDHCP reply, which the PXE ROM caches as its boot-server reply.
pub fn next_server(raw: &[u8]) -> Option<Ipv4Addr> {
    let si = DhcpPacket::new_checked(raw).ok()?.server_ip();
    (!si.is_unspecified()).then_some(si)
}
