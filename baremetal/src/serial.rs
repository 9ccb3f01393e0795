//! The 16550 UART console: COM1, 115200 8N1, the port Nautilus uses.

use crate::port::Port8;

pub const COM1: u16 = 0x3f8;

/// A polled 16550 UART.
pub struct Uart16550 {
    base: u16,
}

impl Uart16550 {
    /// # Safety
    /// `base` must be the I/O base of a 16550-compatible UART that nothing
    /// else drives at the same time.
    pub const unsafe fn new(base: u16) -> Self {
        Uart16550 { base }
    }

    fn reg(&self, offset: u16) -> Port8 {
        // SAFETY: the registers base..base+7 belong to this UART (constructor contract).
        unsafe { Port8::new(self.base + offset) }
    }

    /// Program 115200 baud, 8 data bits, no parity, 1 stop bit, FIFOs on,
    /// all UART interrupts off.
    pub fn init(&self) {
        self.reg(1).write(0x00); // IER: no interrupts
        self.reg(3).write(0x80); // LCR: DLAB on
        self.reg(0).write(0x01); // divisor low: 115200 / 1
        self.reg(1).write(0x00); // divisor high
        self.reg(3).write(0x03); // LCR: 8N1, DLAB off
        self.reg(2).write(0xc7); // FCR: enable + clear FIFOs, 14-byte threshold
        self.reg(4).write(0x0b); // MCR: DTR, RTS, OUT2 (OUT2 gates the IRQ line)
    }

    /// Is a UART present at all? A missing port reads back 0xff.
    pub fn present(&self) -> bool {
        self.reg(5).read() != 0xff
    }

    pub fn write_byte(&self, b: u8) {
        // Bounded wait: with no cable or a stuck UART the console must not
        // hang the boot, so after ~100k polls the byte is dropped.
        for _ in 0..100_000 {
            if self.reg(5).read() & 0x20 != 0 {
                break;
            }
        }
        self.reg(0).write(b);
    }

    /// A received byte, if one is waiting.
    pub fn try_read_byte(&self) -> Option<u8> {
        if self.reg(5).read() & 0x01 != 0 {
            Some(self.reg(0).read())
        } else {
            None
        }
    }

    /// Enable or disable the "received data available" interrupt.
    pub fn set_rx_interrupt(&self, on: bool) {
        self.reg(1).write(if on { 0x01 } else { 0x00 });
    }
}

impl core::fmt::Write for Uart16550 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}
