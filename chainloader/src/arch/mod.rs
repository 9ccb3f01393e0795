//! The arch layer: everything that touches processor modes, the BIOS, the
//! PXE ROM or the hardware directly (port I/O, VGA memory, physical memory,
//! the handoff). The rest of the chainloader sees only the safe, typed
//! wrappers exported here, and is built with `#![deny(unsafe_code)]`.
//!
//! | module | what |
//! | --- | --- |
//! | `modes.S`, `thunk` | real, protected and long mode; calls into real mode |
//! | `cpu`, `idt`, `pic` | TSC clock, reset, CLI; exception IDT; 8259 masks |
//! | `mem` | physical memory as slices: below 1 MiB read only, RAM above it |
//! | `bda`, `rom` | the BIOS data area by name; the firmware areas searched for ACPI |
//! | `e820`, `apm`, `vbe` | BIOS calls: memory map, APM, VESA |
//! | `vga` | the VGA text screen |
//! | `pxe`, `pump.S` | the PXE API and UNDI |
//! | `handoff`, `handoff.S` | the planned moves and the jump to the kernel |

pub mod apm;
pub mod bda;
pub mod cpu;
pub mod e820;
pub mod handoff;
pub mod idt;
pub mod mem;
pub mod pic;
pub mod pxe;
pub mod rom;
pub mod thunk;
pub mod vbe;
pub mod vga;

use baremetal::serial::{Uart16550, COM1};

// modes.S uses the long-mode constants and macros it shares with the
// kernel's entry.S.
core::arch::global_asm!(include_str!("../../../baremetal/longmode.S"), include_str!("modes.S"), options(att_syntax));
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

/// The top of base memory, KiB (INT 12h).
pub fn base_memory_kib() -> usize {
    let mut r = thunk::Regs::default();
    thunk::int(0x12, &mut r);
    (r.eax & 0xffff) as usize
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

/// Called by modes.S in long mode, once the stack and .bss are set up.
#[no_mangle]
extern "C" fn chainloader_main() -> ! {
    crate::start()
}

/// COM1, the console's serial port (baremetal::serial).
pub fn com1() -> Uart16550 {
    // SAFETY: COM1 is the chainloader's console while it runs; only the
    // console module drives it (and the fallback path of a re-entered
    // console, when the normal flow has stopped).
    unsafe { Uart16550::new(COM1) }
}

/// A static that real-mode code (BIOS, PXE ROM) reads or writes through a
/// segment:offset pointer. Everything in the chainloader's image is below
/// 1 MiB, so every `BaseMem` has one.
///
/// Access is exclusive: [`BaseMem::lock`] for the length of one call
/// (the guard gives the address to hand to real mode), or
/// [`BaseMem::take`] for an owner that keeps it for good. A second access
/// while one is held is a bug and panics rather than aliasing.
pub struct BaseMem<T>(spin::Mutex<T>);

/// Exclusive access to a [`BaseMem`] block.
pub struct BaseMemGuard<'a, T>(spin::MutexGuard<'a, T>);

impl<T> BaseMem<T> {
    pub const fn new(v: T) -> Self {
        BaseMem(spin::Mutex::new(v))
    }

    pub fn lock(&self) -> BaseMemGuard<'_, T> {
        BaseMemGuard(self.0.try_lock().expect("a base-memory block is already in use"))
    }

    /// The block for good, for one owner (held until the handoff).
    pub fn take(&'static self) -> &'static mut T {
        spin::MutexGuard::leak(self.lock().0)
    }
}

impl<T> BaseMemGuard<'_, T> {
    /// The block's linear address (below 1 MiB), for a real-mode pointer.
    pub fn addr(&self) -> usize {
        &*self.0 as *const T as usize
    }
}

impl<T> core::ops::Deref for BaseMemGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> core::ops::DerefMut for BaseMemGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
