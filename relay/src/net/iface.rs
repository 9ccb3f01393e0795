//! Network interfaces: address lookup and sockets bound to one device.
//!
//! Every socket the relay opens for DHCP is bound to its interface with
//! SO_BINDTODEVICE, so the kernel never hands it a packet that arrived on
//! another interface (the university-facing one in the original setup), and
//! broadcasts it sends leave through that interface only.

use std::ffi::CStr;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use super::{socket, NetError};

/// What the relay needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub addr: Ipv4Addr,
    pub netmask: Ipv4Addr,
}

impl Interface {
    /// The number of leading one bits of the netmask.
    pub fn prefix_len(&self) -> u32 {
        u32::from(self.netmask).leading_ones()
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & u32::from(self.netmask))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !u32::from(self.netmask))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & u32::from(self.netmask) == u32::from(self.network())
    }
}

/// Looks up the first IPv4 address of `name` with getifaddrs(3).
pub fn lookup(name: &str) -> Result<Interface, NetError> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(NetError::Getifaddrs(std::io::Error::last_os_error()));
    }
    let mut found = None;
    let mut exists = false;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive
        // until freeifaddrs; its name is a NUL-terminated string.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: getifaddrs gives every node a NUL-terminated name, alive
        // until freeifaddrs.
        let ifname = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy();
        if ifname != name {
            continue;
        }
        exists = true;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family field is valid.
        if unsafe { (*ifa.ifa_addr).sa_family } as i32 != libc::AF_INET {
            continue;
        }
        // SAFETY: both are AF_INET sockaddrs (netmask shares the family).
        let (addr, mask) = unsafe {
            let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
            (Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)), Ipv4Addr::from(u32::from_be(m.sin_addr.s_addr)))
        };
        found = Some(Interface { name: name.to_string(), addr, netmask: mask });
        break;
    }
    // SAFETY: head came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    match found {
        Some(i) => Ok(i),
        None if exists => Err(NetError::NoIpv4(name.to_string())),
        None => Err(NetError::NoInterface(name.to_string())),
    }
}

/// Maps bind errors to messages that say what to do.
pub fn bind_error(e: std::io::Error, port: u16, ifname: &str) -> NetError {
    let ifname = ifname.to_string();
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => NetError::PortInUse { port, ifname },
        Some(libc::EACCES) | Some(libc::EPERM) => NetError::BindDenied { port, ifname },
        Some(libc::ENODEV) => NetError::NoInterface(ifname),
        _ => NetError::Bind { port, ifname, source: e },
    }
}

/// A UDP socket on `addr` bound to the device `ifname`, allowed to
/// broadcast. DHCP servers bind the wildcard address: clients without an
/// address send to 255.255.255.255, which only a wildcard socket receives.
///
/// `share`: set SO_REUSEADDR, so that the socket can sit beside another
/// server's on the same port (proxyDHCP next to a DHCP server on the same
/// host; both get every broadcast). Otherwise a port held by another
/// process on the device (dnsmasq) makes the bind fail, as it should.
pub fn udp_on(ifname: &str, addr: SocketAddrV4, share: bool) -> Result<UdpSocket, NetError> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(socket("creating a UDP socket"))?;
    s.bind_device(Some(ifname.as_bytes())).map_err(|e| bind_error(e, addr.port(), ifname))?;
    s.set_broadcast(true).map_err(socket("SO_BROADCAST"))?;
    s.set_reuse_address(share).map_err(socket("SO_REUSEADDR"))?;
    s.bind(&SocketAddr::V4(addr).into()).map_err(|e| bind_error(e, addr.port(), ifname))?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_address() {
        let lo = lookup("lo").unwrap();
        assert_eq!(lo.addr, Ipv4Addr::LOCALHOST);
        assert_eq!(lo.prefix_len(), 8);
        assert!(lo.contains(Ipv4Addr::new(127, 1, 2, 3)));
        assert_eq!(lo.broadcast(), Ipv4Addr::new(127, 255, 255, 255));
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = lookup("nosuchif0").unwrap_err().to_string();
        assert_eq!(e, "no such interface: nosuchif0");
    }
}
