//! The hardware layer: entry assembly, CPU tables (GDT/TSS/IDT with IST
//! stacks), the 8259 PICs, physical memory access, and the ways to end a
//! run (reset, ACPI power-off, QEMU's isa-debug-exit). Everything above it
//! is safe Rust.

use baremetal::port::Port8;
use baremetal::serial::{Uart16550, COM1};
use bootproto::mbi_check::Range;
use core::arch::asm;

// entry.S uses the long-mode constants and macros it shares with
// chainloader's modes.S.
core::arch::global_asm!(include_str!("../../../baremetal/longmode.S"), include_str!("entry.S"), options(att_syntax));
core::arch::global_asm!(include_str!("isr.S"), options(att_syntax));
#[cfg(feature = "aout")]
core::arch::global_asm!(include_str!("aout.S"), options(att_syntax));

pub mod cpu;

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
    fn triple_fault() -> !;
}

/// Called by entry.S in long mode with the loader's EAX and EBX.
#[no_mangle]
extern "C" fn kernel_main(magic: u32, mbi_addr: u32) -> ! {
    crate::start(magic, mbi_addr)
}

/// Called by isr.S for every vector.
#[no_mangle]
extern "C" fn kernel_interrupt(f: &mut cpu::Frame) {
    crate::interrupt(f)
}

/// The console: COM1.
pub fn com1() -> Uart16550 {
    // SAFETY: COM1 is this kernel's console. The main flow writes to it only
    // before interrupts are enabled and from then on only the serial IRQ
    // handler does, so two writers never interleave.
    unsafe { Uart16550::new(COM1) }
}

/// The kernel never allocates; `alloc` is linked only because bootproto's
/// other modules use it. Any allocation fails loudly.
struct NoHeap;
// SAFETY: returning null is always a valid answer from `alloc`.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}
#[global_allocator]
static HEAP: NoHeap = NoHeap;

/// The physical range the kernel image occupies, `.bss` included, from the
/// linker script's symbols.
pub fn kernel_range() -> (u64, u64) {
    // Only the symbols' addresses are taken (safe with `&raw const`), never their contents.
    (&raw const __kernel_start as u64, &raw const __kernel_end as u64)
}

/// Physical memory, read-only. The first 4 GiB are identity mapped by
/// entry.S, so a physical address below 4 GiB is a valid pointer.
///
/// Returns `None` for a range that leaves the mapping.
pub fn phys_bytes(addr: u64, len: usize) -> Option<&'static [u8]> {
    let end = addr.checked_add(len as u64)?;
    if end > 1 << 32 || addr == 0 {
        return None;
    }
    // SAFETY: the range is mapped (identity, first 4 GiB, 2 MiB pages) and
    // the kernel never writes to memory it did not allocate, so nothing
    // mutates these bytes while the shared slice lives. Reads of RAM or
    // even of unbacked addresses have no side effects on a PC.
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
}

/// Read one aligned little-endian u32 of physical memory.
pub fn phys_u32(addr: u64) -> Option<u32> {
    phys_bytes(addr, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()))
}

/// Stop for good: interrupts off, halt forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli/hlt only stop this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Execute `ud2`: an invalid-opcode exception (#UD, vector 6), to show the
/// exception path works (the `fault` switch).
pub fn invalid_opcode() {
    // SAFETY: ud2 only raises #UD, which the IDT (cpu::init) handles.
    unsafe { asm!("ud2", options(nomem, nostack)) };
}

/// Sleep until the next interrupt, with interrupts enabled.
pub fn wait_for_interrupt() {
    // SAFETY: sti;hlt enables interrupts and waits; the IDT and PICs are set
    // up before this is first called (cpu::init), and sti's one-instruction
    // shadow means no interrupt is lost between the two.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

fn port(p: u16) -> Port8 {
    // SAFETY: only used below for the fixed reset, PIC and debug-exit ports,
    // each write being the documented command for that device, and for
    // dmacheck's wait: COM1's status and data, and PIT channel 2 (the
    // speaker timer, which nothing else uses).
    unsafe { Port8::new(p) }
}

/// COM1's line status register. Its error bits (parity 0x04, framing 0x08,
/// break 0x10) describe the byte about to be read from the receive FIFO.
pub fn com1_line_status() -> u8 {
    port(baremetal::serial::COM1 + 5).read()
}

/// Busy-wait roughly `n` microseconds (port 0x80 writes take ~1 us on a PC).
fn io_delay(n: u32) {
    for _ in 0..n {
        port(0x80).write(0);
    }
}

/// Reset the machine: the PCI reset control register at 0xCF9 (hard reset),
/// then the 8042 keyboard controller's reset line, then a triple fault. Each
/// method is announced through `say`, so a machine that survives one shows
/// which one failed.
pub fn reset(mut say: impl FnMut(&str)) -> ! {
    say("reset: via port 0xCF9");
    port(0xcf9).write(0x02); // select hard reset, with the reset bit clear
    io_delay(10);
    port(0xcf9).write(0x06); // set the reset bit: reset now
    io_delay(50_000);
    say("reset: via the 8042 keyboard controller");
    for _ in 0..100_000 {
        if port(0x64).read() & 0x02 == 0 {
            break; // input buffer empty: it can take a command
        }
    }
    port(0x64).write(0xfe); // pulse the CPU reset line
    io_delay(50_000);
    say("reset: via triple fault");
    // SAFETY: loads an empty IDT and raises an exception: the CPU shuts down,
    // which the chipset turns into a reset. Nothing returns.
    unsafe { triple_fault() }
}

/// QEMU's isa-debug-exit device at 0xf4: QEMU exits with status (v << 1) | 1.
/// On a machine without it this does nothing and returns.
pub fn qemu_debug_exit(v: u8) {
    port(0xf4).write(v);
}

/// Power off via ACPI: S5 through PM1a_CNT (and PM1b_CNT). `pm1a`, `pm1b`
/// and `slp_typ` come from the FADT and the DSDT's `\_S5` object.
pub fn acpi_power_off(pm1a: u16, pm1b: u16, slp_typ_a: u8, slp_typ_b: u8) {
    const SLP_EN: u16 = 1 << 13;
    for (p, t) in [(pm1a, slp_typ_a), (pm1b, slp_typ_b)] {
        if p != 0 {
            let v = ((t as u16 & 7) << 10) | SLP_EN;
            // SAFETY: PM1x_CNT is the ACPI fixed-hardware sleep control
            // register the FADT names; writing SLP_EN with the S5 type is
            // the documented way to power off.
            unsafe { asm!("out dx, ax", in("dx") p, in("ax") v, options(nomem, nostack)) };
        }
    }
    io_delay(100_000);
}

// ---- the `dmacheck` switch (crate::dmacheck) ---------------------------

/// The word the pattern holds at `addr`: address-dependent, so that a frame
/// or a stale copy of another part of the pattern does not match.
fn dma_pattern_word(addr: u64) -> u64 {
    addr ^ 0xA5C3_5A3C_96E1_0F78
}

/// Fills `r` (8-byte aligned) with the pattern. `r` must be usable RAM of
/// the loader's memory map; it is checked to lie below 4 GiB, above the
/// first page, and clear of the kernel image (its stacks included) and of
/// every range in `keep` (the MBI, the modules). Panics otherwise.
pub fn dma_pattern_fill(r: Range, keep: &[Range]) {
    let (ks, ke) = kernel_range();
    let kernel = Range { start: ks, end: ke };
    assert!(
        r.start >= 0x1000 && r.end <= 1 << 32 && !kernel.overlaps(&r) && !keep.iter().any(|k| k.overlaps(&r)),
        "dmacheck: {r} is not free RAM"
    );
    let mut a = r.start & !7;
    while a + 8 <= r.end {
        // SAFETY: identity-mapped (below 4 GiB); every Rust object of the
        // kernel lies in its image (there is no heap), and the only other
        // memory it reads through slices is the MBI, the modules (both in
        // `keep`) and ACPI tables (not usable RAM); so this writes memory no
        // reference points to.
        unsafe { (a as *mut u64).write_volatile(dma_pattern_word(a)) };
        a += 8;
    }
}

/// The first byte of `start..end` that no longer holds the pattern written
/// by [`dma_pattern_fill`], with its value. Volatile reads: a device may be
/// writing there.
pub fn dma_pattern_find_change(start: u64, end: u64) -> Option<(u64, u8)> {
    let mut a = start & !7;
    while a + 8 <= end {
        // SAFETY: below 4 GiB (identity-mapped, dmacheck ranges are usable
        // RAM); a read has no side effect.
        let v = unsafe { (a as *const u64).read_volatile() };
        let want = dma_pattern_word(a);
        if v != want {
            let i = ((v ^ want).trailing_zeros() / 8) as u64;
            return Some((a + i, (v >> (8 * i)) as u8));
        }
        a += 8;
    }
    None
}

/// FNV-1a over the 512 words of the 4 KiB page at `page` (volatile reads).
pub fn dma_page_hash(page: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for i in 0..512 {
        // SAFETY: `page` is below 4 GiB and identity-mapped (dmacheck passes
        // holes of the memory map below the end of usable RAM, outside the
        // legacy window); reading RAM has no side effect.
        let v = unsafe { ((page + 8 * i) as *const u64).read_volatile() };
        h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Waits up to `ms` for a byte on COM1 (read and dropped), polling; the
/// time is counted in 50 ms one-shots of PIT channel 2 (gate and output on
/// port 0x61), so no interrupt is needed. True if a byte came.
pub fn wait_com1_byte(ms: u32) -> bool {
    const PIT_HZ: u32 = 1_193_182;
    let count = (PIT_HZ / 20) as u16;
    let (ctl, mode, ch2) = (port(0x61), port(0x43), port(0x42));
    let lsr = port(baremetal::serial::COM1 + 5);
    let data = port(baremetal::serial::COM1);
    for _ in 0..ms.div_ceil(50) {
        ctl.write((ctl.read() & !0x02) | 0x01); // gate on, speaker off
        mode.write(0xB0); // channel 2, lobyte/hibyte, mode 0
        ch2.write(count as u8);
        ch2.write((count >> 8) as u8);
        loop {
            if lsr.read() & 1 != 0 {
                let _ = data.read();
                return true;
            }
            if ctl.read() & 0x20 != 0 {
                break;
            }
        }
    }
    false
}
