//! Typed x86 I/O ports.

use core::arch::asm;

/// An 8-bit I/O port. Creating one is `unsafe`: writing the wrong port can
/// reset the machine or reprogram a device under a driver's feet.
#[derive(Clone, Copy, Debug)]
pub struct Port8(u16);

impl Port8 {
    /// # Safety
    /// `port` must be a port whose reads and writes have no effect beyond
    /// the device the caller owns.
    pub const unsafe fn new(port: u16) -> Self {
        Port8(port)
    }

    pub fn read(self) -> u8 {
        let v: u8;
        // SAFETY: the constructor's contract makes this access harmless.
        unsafe { asm!("in al, dx", out("al") v, in("dx") self.0, options(nomem, nostack, preserves_flags)) };
        v
    }

    pub fn write(self, v: u8) {
        // SAFETY: as for read.
        unsafe { asm!("out dx, al", in("dx") self.0, in("al") v, options(nomem, nostack, preserves_flags)) };
    }
}
