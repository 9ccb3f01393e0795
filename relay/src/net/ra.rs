//! A minimal IPv6 router: answers router solicitations on the interface.
//!
//! iPXE configures IPv4 (DHCP) and IPv6 (router solicitation) in parallel
//! and waits for both; with no router on the link its IPv6 side times out
//! after about 13 s, which is most of a PXE boot. A router advertisement
//! with no prefix, router lifetime 0 and the M and O flags clear tells it
//! there is nothing to configure, so it stops waiting at once, and tells
//! every host that we are not a default router.

use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, info, warn};

use super::{socket, NetError};

const ROUTER_SOLICITATION: u8 = 133;
const ROUTER_ADVERTISEMENT: u8 = 134;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The RA we send: hop limit 0 (unspecified), no flags, router lifetime 0,
/// reachable and retransmit timers unspecified, no options. The kernel
/// fills in the ICMPv6 checksum on raw ICMPv6 sockets.
pub fn advertisement() -> [u8; 16] {
    let mut ra = [0u8; 16];
    ra[0] = ROUTER_ADVERTISEMENT;
    ra
}

/// Whether `pkt` (an ICMPv6 message, as a raw socket delivers it) is a
/// well-formed router solicitation.
pub fn is_solicitation(pkt: &[u8]) -> bool {
    pkt.len() >= 8 && pkt[0] == ROUTER_SOLICITATION && pkt[1] == 0
}

pub struct Responder {
    sock: Socket,
    ifindex: u32,
    ifname: String,
}

impl Responder {
    /// Opens a raw ICMPv6 socket on `ifname`, joined to all-routers.
    pub fn bind(ifname: &str) -> Result<Responder, NetError> {
        let ifindex = if_index(ifname)?;
        let sock =
            Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => NetError::RawIcmp6Denied,
                _ => NetError::RawIcmp6(e),
            })?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(|source| NetError::BindIcmp6 { ifname: ifname.to_string(), source })?;
        sock.join_multicast_v6(&ALL_ROUTERS, ifindex)
            .map_err(|source| NetError::JoinAllRouters { ifname: ifname.to_string(), source })?;
        // RFC 4861: RAs go out with hop limit 255, and receivers drop others.
        sock.set_multicast_hops_v6(255)?;
        sock.set_unicast_hops_v6(255)?;
        sock.set_multicast_if_v6(ifindex)?;
        Ok(Responder { sock, ifindex, ifname: ifname.to_string() })
    }

    pub fn run(self) -> Result<(), NetError> {
        info!(
            target: "ra",
            interface = %self.ifname,
            "answering IPv6 router solicitations (no prefix, router lifetime 0)"
        );
        let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
        loop {
            let (n, from) = match self.sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(socket("receiving ICMPv6")(e)),
            };
            // SAFETY: recv_from initialised the first n bytes.
            let pkt: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
            if !is_solicitation(&pkt) {
                continue;
            }
            let src = from.as_socket_ipv6().map(|a| *a.ip());
            debug!(
                target: "ra",
                client = src.map(tracing::field::display),
                interface = %self.ifname,
                "router solicitation"
            );
            // To all nodes: the solicitor may have no address yet (::).
            let to = SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex);
            if let Err(e) = self.sock.send_to(&advertisement(), &to.into()) {
                warn!(target: "ra", interface = %self.ifname, error = %e, "sending a router advertisement");
            }
        }
    }
}

fn if_index(name: &str) -> Result<u32, NetError> {
    let c = std::ffi::CString::new(name).map_err(NetError::InterfaceName)?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(NetError::NoInterface(name.to_string()));
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_says_nothing_to_configure() {
        let ra = advertisement();
        assert_eq!(ra[0], 134);
        assert_eq!(ra[5] & 0xc0, 0, "M and O flags clear: no DHCPv6 either");
        assert_eq!(u16::from_be_bytes([ra[6], ra[7]]), 0, "router lifetime 0: not a default router");
        assert!(is_solicitation(&[133, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_solicitation(&[133, 0, 0]));
        assert!(!is_solicitation(&[134, 0, 0, 0, 0, 0, 0, 0]));
    }
}
