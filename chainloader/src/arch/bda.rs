//! The BIOS data area (0x400-0x4FF) and the other fixed low-memory
//! addresses the chainloader reads, by name.

use super::mem;

/// Current video mode (byte).
const VIDEO_MODE: usize = 0x449;
/// Text columns on screen (word).
const TEXT_COLUMNS: usize = 0x44a;
/// Text rows on screen minus one (byte; EGA and later).
const TEXT_ROWS_MINUS_ONE: usize = 0x484;
/// Segment of the extended BIOS data area (word).
const EBDA_SEGMENT: usize = 0x40e;

/// What the BIOS says about the display.
#[derive(Clone, Copy, Debug)]
pub struct Video {
    /// The INT 10h mode number (bit 7: the screen was not cleared).
    pub mode: u8,
    pub columns: u16,
    pub rows_minus_one: u8,
}

pub fn video() -> Video {
    Video {
        mode: mem::low(VIDEO_MODE, 1)[0],
        columns: mem::low_u16(TEXT_COLUMNS),
        rows_minus_one: mem::low(TEXT_ROWS_MINUS_ONE, 1)[0],
    }
}

/// The linear address of the EBDA as the BIOS data area gives it (not
/// checked: a BIOS may leave nonsense there).
pub fn ebda_base() -> usize {
    mem::low_u16(EBDA_SEGMENT) as usize * 16
}
