//! Physical memory as slices: the first MiB (firmware structures, read
//! only), and RAM above it (downloads, decompressed files, detour copies).
//!
//! Paging is an identity map of the first 4 GiB (modes.S), so a physical
//! address below 4 GiB is a valid pointer. The split at 1 MiB is what makes
//! the slices above it sound: every Rust object of the chainloader (image,
//! .bss with the heap, stack and page tables) lies below 512 KiB (link.ld
//! asserts it), so memory from 1 MiB up is reachable only through the
//! slices handed out here, and the boot planner (`bootproto::memmap`, over
//! the E820 map with the firmware and the chainloader reserved) gives each
//! byte of it one use at a time.

/// The end of real-mode addressable memory.
pub const ONE_MIB: usize = 0x10_0000;
/// The end of the identity map.
const FOUR_GIB: u64 = 1 << 32;

/// `len` bytes at linear `addr` below 1 MiB, to inspect: signatures,
/// checksums, the ROM's cached packets, the video BIOS's mode list. Panics on a range
/// that leaves the first MiB (a caller's bug; the caller checks pointers
/// that come from firmware first).
pub fn low(addr: usize, len: usize) -> &'static [u8] {
    assert!(addr.checked_add(len).is_some_and(|end| end <= ONE_MIB), "low memory read past 1 MiB");
    // SAFETY: the first MiB is identity-mapped RAM and ROM, always readable;
    // reads have no side effect. These are firmware structures, which no
    // Rust object of the chainloader overlaps; nothing writes them in long
    // mode, and callers are done with the bytes (parsed or copied) before
    // the next call into real mode, where the firmware might.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// A little-endian u16 below 1 MiB.
pub fn low_u16(addr: usize) -> u16 {
    let b = low(addr, 2);
    u16::from_le_bytes([b[0], b[1]])
}

/// A little-endian u32 below 1 MiB.
pub fn low_u32(addr: usize) -> u32 {
    let b = low(addr, 4);
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn check_high(base: u64, len: u64) {
    assert!(
        base >= ONE_MIB as u64 && base.checked_add(len).is_some_and(|end| end <= FOUR_GIB),
        "RAM range {base:#x}+{len:#x} is not between 1 MiB and 4 GiB"
    );
}

/// RAM from 1 MiB to 4 GiB, writable: the staging area, a decompressed
/// file's place, a detour copy's place. The caller got `base..base+len`
/// from the planner as usable RAM that nothing else uses (see the module
/// documentation); the bounds are checked here.
pub fn high_mut(base: u64, len: u64) -> &'static mut [u8] {
    check_high(base, len);
    // SAFETY: identity-mapped (below 4 GiB) RAM above every Rust object of
    // the chainloader (all below 1 MiB, checked above), so no other Rust
    // reference reaches it except through this module, and the planner
    // hands each range out once (module documentation).
    unsafe { core::slice::from_raw_parts_mut(base as *mut u8, len as usize) }
}

/// RAM from 1 MiB to 4 GiB, read only: the bytes of a download or a
/// decompressed file, by address (a move's source).
pub fn high(base: u64, len: u64) -> &'static [u8] {
    check_high(base, len);
    // SAFETY: as in `high_mut`; the planner only reads a source through this
    // while nothing writes it.
    unsafe { core::slice::from_raw_parts(base as *const u8, len as usize) }
}
