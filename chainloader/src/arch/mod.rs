//! The arch layer: everything that touches processor modes, the BIOS or the
//! PXE ROM directly. The rest of the chainloader sees only the safe, typed
//! wrappers exported here.

pub mod thunk;

core::arch::global_asm!(include_str!("modes.S"), options(att_syntax));

/// The registers the PXE ROM (or PXELINUX) handed to the NBP at 0000:7C00.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EntryRegs {
    pub ss: u16,
    pub sp: u16,
    /// ES:BX points to the PXENV+ structure.
    pub es: u16,
    pub bx: u16,
    /// The far pointer at SS:[SP+4]: the !PXE structure (offset low, segment high).
    pub bang_pxe: u32,
}

extern "C" {
    static pxe_entry_regs: EntryRegs;
}

/// What the ROM handed over at entry. Saved by `_start` before anything else ran.
pub fn entry_regs() -> EntryRegs {
    // SAFETY: written once by the real-mode entry before Rust started, never again.
    unsafe { core::ptr::addr_of!(pxe_entry_regs).read_volatile() }
}
