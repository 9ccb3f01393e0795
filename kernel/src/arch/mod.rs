//! The hardware layer: entry assembly, and (in submodules) the CPU tables,
//! interrupt controller and reset paths behind safe wrappers.

core::arch::global_asm!(include_str!("entry.S"), options(att_syntax));
#[cfg(feature = "aout")]
core::arch::global_asm!(include_str!("aout.S"), options(att_syntax));

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// The physical range the kernel image occupies, `.bss` included, from the
/// linker script's symbols.
pub fn kernel_range() -> (u64, u64) {
    // Only the symbols' addresses are taken (safe with `&raw const`), never their contents.
    (&raw const __kernel_start as u64, &raw const __kernel_end as u64)
}

/// Stop for good: interrupts off, halt forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli/hlt only stop this CPU.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}
