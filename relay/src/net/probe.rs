//! Conflict probing of pool addresses, off the boot path.
//!
//! dnsmasq pings an address just before offering it, which costs each boot
//! about 2 s. The relay instead pings the next addresses it would offer in
//! the background, at startup and after each offer, and takes any address
//! that answers out of the pool before a client ever asks for it.

use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::{socket, NetError};

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request with identifier `id` and sequence `seq`.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"relay conflict probe");
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// A raw ICMP socket bound to one interface.
pub struct Pinger {
    sock: Socket,
    id: u16,
    seq: u16,
}

impl Pinger {
    pub fn new(ifname: &str) -> Result<Pinger, NetError> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
            .map_err(socket("raw ICMP socket (needs CAP_NET_RAW)"))?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(|source| NetError::BindIcmp { ifname: ifname.to_string(), source })?;
        Ok(Pinger { sock, id: rand::random(), seq: 0 })
    }

    /// Whether `ip` answers an echo request within `wait`.
    pub fn answers(&mut self, ip: Ipv4Addr, wait: Duration) -> Result<bool, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let req = echo_request(self.id, self.seq);
        self.sock.send_to(&req, &SocketAddrV4::new(ip, 0).into()).map_err(|source| NetError::Ping { ip, source })?;
        let deadline = Instant::now() + wait;
        let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.sock.set_read_timeout(Some(left))?;
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Ok(false)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(socket("receiving ICMP")(e)),
            };
            // SAFETY: recv initialised the first n bytes.
            let pkt: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
            if is_reply_from(&pkt, ip, self.id, self.seq) {
                return Ok(true);
            }
        }
    }
}

/// Whether `pkt` (an IPv4 datagram as a raw socket delivers it) is our
/// echo reply from `ip`.
pub fn is_reply_from(pkt: &[u8], ip: Ipv4Addr, id: u16, seq: u16) -> bool {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(pkt[0] & 15) * 4;
    let Some(icmp) = pkt.get(ihl..ihl + 8) else { return false };
    Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]) == ip
        && icmp[0] == 0
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn reply_matching() {
        let mut pkt = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1];
        pkt.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert!(is_reply_from(&pkt, Ipv4Addr::new(10, 0, 0, 5), 0x1234, 7));
        assert!(!is_reply_from(&pkt, Ipv4Addr::new(10, 0, 0, 6), 0x1234, 7));
        assert!(!is_reply_from(&pkt, Ipv4Addr::new(10, 0, 0, 5), 0x1234, 8));
        assert!(!is_reply_from(&pkt[..22], Ipv4Addr::new(10, 0, 0, 5), 0x1234, 7));
    }
}
