//! The last steps: the planned moves, then `handoff.S` into the kernel.

use bootproto::memmap::Move;

core::arch::global_asm!(include_str!("handoff.S"), options(att_syntax));

extern "C" {
    /// handoff.S: leaves long mode and jumps to `entry` with EAX/EBX set.
    fn mb2_handoff(entry: u32, mbi: u32) -> !;
}

/// Does `moves` in order (each a memmove of `len` bytes, then `zero` bytes
/// cleared after it) and enters the kernel at `entry` with the boot
/// information at `mbi`.
///
/// The moves must come from the boot planner (`crate::boot::prepare`): every
/// destination usable RAM below 4 GiB, clear of the chainloader, the
/// firmware areas and every other destination, ordered so that none
/// overwrites a source still to be read; and `moves` itself must not lie
/// in any of them (the caller copies the list onto its stack, in base
/// memory that no move touches). The NIC must be quiesced and interrupts
/// off ([`super::cpu::disable_interrupts`]).
pub fn enter(moves: &[Move], entry: u32, mbi: u32) -> ! {
    for m in moves {
        // SAFETY: the planner's guarantees above: the destinations are free
        // identity-mapped RAM that no Rust object uses from here on (the
        // chainloader only runs this loop and the handoff, whose code,
        // stack and this list are below 1 MiB, outside every destination);
        // `ptr::copy` has memmove semantics for a destination overlapping
        // its own source. The NIC is quiesced, so no DMA races these writes.
        unsafe {
            core::ptr::copy(m.src as *const u8, m.dst as *mut u8, m.len as usize);
            core::ptr::write_bytes((m.dst + m.len) as *mut u8, 0, m.zero as usize);
        }
    }
    // SAFETY: the kernel and its boot information are in place; the handoff
    // never returns.
    unsafe { mb2_handoff(entry, mbi) }
}
