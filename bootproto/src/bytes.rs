//! Fixed-width fields of the wire formats in this crate (the Multiboot2
//! header and boot information, TFTP packets): one reader and one writer,
//! so that every codec bounds-checks the same way and none can panic on a
//! short buffer.

use core::fmt;

/// Little-endian `u16` at `off`, or `None` if `b` is too short.
pub fn le_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

/// Little-endian `u32` at `off`, or `None` if `b` is too short.
pub fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// Little-endian `u64` at `off`, or `None` if `b` is too short.
pub fn le_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

/// Big-endian (network order) `u16` at `off`, or `None` if `b` is too short.
pub fn be_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

/// The buffer given to an encoder is too small for what it encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    pub need: usize,
    pub have: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "encoding needs {} bytes, buffer has {}", self.need, self.have)
    }
}

/// Appends fields to a caller's buffer. A field that does not fit is
/// counted but not written (nor is anything after it), so the same code
/// both sizes and writes a structure: over an empty buffer it only counts.
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// A writer that only counts (for `buffer_len`).
    pub fn counter() -> Writer<'static> {
        Writer { buf: &mut [], pos: 0 }
    }

    /// Bytes appended so far, written or only counted.
    pub fn len(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    pub fn bytes(&mut self, b: &[u8]) {
        let end = self.pos.saturating_add(b.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(b);
        }
        self.pos = end;
    }

    pub fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub fn le_u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn le_u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn le_u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn be_u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// Pads with zeros up to the next multiple of `align`.
    pub fn align(&mut self, align: usize) {
        while !self.pos.is_multiple_of(align) {
            self.u8(0);
        }
    }

    /// The length written, or how much was needed if it did not all fit.
    pub fn finish(self) -> Result<usize, BufferTooSmall> {
        if self.pos <= self.buf.len() {
            Ok(self.pos)
        } else {
            Err(BufferTooSmall { need: self.pos, have: self.buf.len() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(le_u16(&b, 6), Some(0x0807));
        assert_eq!(le_u16(&b, 7), None);
        assert_eq!(le_u32(&b, usize::MAX), None);
        assert_eq!(le_u64(&b, 0), Some(0x0807_0605_0403_0201));
        assert_eq!(be_u16(&b, 0), Some(0x0102));
    }

    #[test]
    fn nothing_is_written_after_a_field_that_does_not_fit() {
        let mut buf = [0xaau8; 5];
        let mut w = Writer::new(&mut buf);
        w.be_u16(0x0102);
        w.le_u32(0x0605_0403);
        w.u8(7);
        assert_eq!(w.finish(), Err(BufferTooSmall { need: 7, have: 5 }));
        assert_eq!(buf, [1, 2, 0xaa, 0xaa, 0xaa]);
        let mut c = Writer::counter();
        c.u8(1);
        c.align(8);
        assert_eq!(c.len(), 8);
    }
}
