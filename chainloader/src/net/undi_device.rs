//! UNDI as a `smoltcp::phy::Device`: whole Ethernet frames in and out.

use crate::arch::pxe::{RxFrame, Undi, TX_BUF_LEN};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

pub struct UndiDevice {
    pub undi: Undi,
}

impl UndiDevice {
    pub fn new(undi: Undi) -> Self {
        UndiDevice { undi }
    }
}

pub struct RxToken(RxFrame);

pub struct TxToken<'a>(&'a mut Undi);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        // The frame stays in the ROM's (or our reassembly) buffer; smoltcp
        // reads it before the next UNDI call can reuse that buffer.
        f(self.0.bytes())
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
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.undi.next_rx()?;
        Some((RxToken(frame), TxToken(&mut self.undi)))
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
