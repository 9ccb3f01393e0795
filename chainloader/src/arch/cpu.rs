//! Processor and chipset basics: the TSC as a millisecond clock (calibrated
//! against PIT channel 2), port I/O, and machine reset.

use baremetal::port::Port8;
use core::sync::atomic::{AtomicU64, Ordering};

/// TSC ticks per millisecond, set once by [`calibrate_clock`].
static TSC_PER_MS: AtomicU64 = AtomicU64::new(1_000_000);
static TSC_ZERO: AtomicU64 = AtomicU64::new(0);

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; CR4.TSD is clear (we set up CR4).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The PIT's input clock, Hz.
const PIT_HZ: u64 = 1_193_182;

/// Measures the TSC against a 50 ms one-shot on PIT channel 2 (its gate and
/// output are wired to port 0x61, so no interrupt is needed; interrupts are
/// off in long mode). Returns TSC ticks per millisecond.
pub fn calibrate_clock() -> u64 {
    const MS: u64 = 50;
    let count = (PIT_HZ * MS / 1000) as u16;
    // SAFETY: ports 0x61 (system control B), 0x43 and 0x42 (PIT mode and
    // channel 2) drive only the PC speaker timer, which nothing else uses now.
    let (ctl, mode, ch2) = unsafe { (Port8::new(0x61), Port8::new(0x43), Port8::new(0x42)) };
    // Gate on, speaker off.
    ctl.write((ctl.read() & !0x02) | 0x01);
    // Channel 2, low then high byte, mode 0 (interrupt on terminal count).
    mode.write(0xB0);
    ch2.write(count as u8);
    ch2.write((count >> 8) as u8);
    let t0 = rdtsc();
    let mut spins = 0u64;
    while ctl.read() & 0x20 == 0 {
        spins += 1;
        if spins > 1_000_000_000 {
            break;
        }
    }
    let t1 = rdtsc();
    let per_ms = ((t1 - t0) / MS).max(1);
    TSC_PER_MS.store(per_ms, Ordering::Relaxed);
    TSC_ZERO.store(t1, Ordering::Relaxed);
    per_ms
}

/// Milliseconds since [`calibrate_clock`]; monotonic.
pub fn now_ms() -> u64 {
    (rdtsc() - TSC_ZERO.load(Ordering::Relaxed)) / TSC_PER_MS.load(Ordering::Relaxed)
}

/// The TSC value at `ms` on the [`now_ms`] scale.
pub fn tsc_at_ms(ms: u64) -> u64 {
    TSC_ZERO.load(Ordering::Relaxed) + ms * TSC_PER_MS.load(Ordering::Relaxed)
}

pub fn delay_ms(ms: u64) {
    let end = now_ms() + ms;
    while now_ms() < end {
        core::hint::spin_loop();
    }
}

/// Masks interrupts for the rest of the chainloader's life (the handoff:
/// no handler may run while memory is being rearranged, and the kernel
/// expects IF = 0).
pub fn disable_interrupts() {
    // SAFETY: CLI only clears IF; nothing the chainloader does afterwards
    // needs an interrupt (the real-mode thunk is not used again).
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
}

/// Resets the machine: the PCI reset control register (0xCF9, hard reset),
/// then the 8042 keyboard controller's reset line, then a triple fault.
pub fn reset() -> ! {
    // SAFETY: resetting is the intent; nothing runs afterwards.
    unsafe {
        Port8::new(0xCF9).write(0x02);
        Port8::new(0xCF9).write(0x06);
        delay_ms(50);
        for _ in 0..10000 {
            if Port8::new(0x64).read() & 0x02 == 0 {
                break;
            }
        }
        Port8::new(0x64).write(0xFE);
        delay_ms(50);
        // Triple fault: an empty IDT, then an exception.
        x86::dtables::lidt(&x86::dtables::DescriptorTablePointer::<u64>::default());
        core::arch::asm!("int3", options(noreturn));
    }
}
