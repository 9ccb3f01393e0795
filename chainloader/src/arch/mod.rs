//! The arch layer: everything that touches processor modes, the BIOS or the
//! PXE ROM directly. The rest of the chainloader sees only the safe, typed
//! wrappers exported here.

pub mod cpu;
pub mod e820;
pub mod idt;
pub mod pxe;
pub mod thunk;
pub mod vbe;

use core::cell::UnsafeCell;

core::arch::global_asm!(include_str!("modes.S"), options(att_syntax));
core::arch::global_asm!(include_str!("pump.S"), options(att_syntax));

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
    static __bss_end: u8;
    static __image_start: u8;
    static __image_end: u8;
}

/// What the ROM handed over at entry. Saved by `_start` before anything else ran.
pub fn entry_regs() -> EntryRegs {
    // SAFETY: written once by the real-mode entry before Rust started, never again.
    unsafe { core::ptr::addr_of!(pxe_entry_regs).read_volatile() }
}

/// (image start, image end, end of .bss) as linear addresses.
pub fn image_layout() -> (usize, usize, usize) {
    // Only the addresses of the linker symbols are taken.
    (
        core::ptr::addr_of!(__image_start) as usize,
        core::ptr::addr_of!(__image_end) as usize,
        core::ptr::addr_of!(__bss_end) as usize,
    )
}

/// A static that real-mode code (BIOS, PXE ROM) reads or writes through a
/// segment:offset pointer. Everything in the chainloader's image is below
/// 1 MiB, so every `BaseMem` has one.
pub struct BaseMem<T>(UnsafeCell<T>);

// SAFETY: the chainloader is single-threaded and runs with interrupts off
// in long mode; real-mode callees only touch these during a thunk call,
// which is synchronous.
unsafe impl<T> Sync for BaseMem<T> {}

impl<T> BaseMem<T> {
    pub const fn new(v: T) -> Self {
        BaseMem(UnsafeCell::new(v))
    }

    pub fn addr(&self) -> usize {
        self.0.get() as usize
    }

    /// The contents. Callers keep the borrow short and never hold it across
    /// a PXE/BIOS call on the same block (single-threaded by design).
    #[allow(clippy::mut_from_ref)]
    pub fn get(&self) -> &mut T {
        // SAFETY: see the Sync impl; borrows do not overlap in practice
        // because each block is used by one wrapper at a time.
        unsafe { &mut *self.0.get() }
    }
}
