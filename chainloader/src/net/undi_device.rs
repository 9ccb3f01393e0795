//! UNDI as a `smoltcp::phy::Device`: whole Ethernet frames in and out.

use crate::arch::pxe::{RxRing, Undi, TX_BUF_LEN};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, UdpPacket};

pub struct UndiDevice {
    pub undi: Undi,
    /// The frames the last pump collected.
    pub rx: RxRing,
    /// The UDP payload length of the last frame to port 68 (a DHCP reply):
    /// smoltcp keeps the DHCPACK in a fixed buffer without its length.
    pub last_dhcp_reply_len: core::cell::Cell<usize>,
}

impl UndiDevice {
    pub fn new(undi: Undi) -> Self {
        UndiDevice { undi, rx: RxRing::take(), last_dhcp_reply_len: core::cell::Cell::new(0) }
    }
}

pub struct RxToken<'a>(&'a [u8], &'a core::cell::Cell<usize>);

/// The UDP payload length if `f` is an IPv4/UDP frame to port 68, read
/// through smoltcp's checked views (lengths validated, never trusted).
fn dhcp_reply_len(f: &[u8]) -> Option<usize> {
    let eth = EthernetFrame::new_checked(f).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    (udp.dst_port() == 68).then(|| udp.payload().len())
}

pub struct TxToken<'a>(&'a mut Undi);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        // The frame stays in its ring slot, borrowed: the next pump cannot
        // reuse the slot before smoltcp has read it.
        let bytes = self.0;
        if let Some(n) = dhcp_reply_len(bytes) {
            self.1.set(n);
        }
        f(bytes)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(TX_BUF_LEN);
        let buf = self.0.tx_buffer();
        let r = f(&mut buf[..len]);
        // Sent with the next pump (one trip to real mode for the send and
        // the wait for the answer). A lost frame is the protocols' business.
        self.0.queue_tx(len);
        r
    }
}

impl Device for UndiDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let frame = self.rx.next()?;
        Some((RxToken(frame, &self.last_dhcp_reply_len), TxToken(&mut self.undi)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.undi))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = None;
        caps
    }
}
