//! The 8259 PICs' interrupt masks: quiet while the chainloader runs, the
//! firmware's own state back before the kernel starts.
//!
//! Why: the ROM may leave the NIC's IRQ unmasked with the NIC asserting it
//! (HP Gen9, iPXE 4134280bc and 3bb61c33c). The chainloader has no
//! handler for it, and the BIOS default handler only sends EOI, so the
//! level-triggered line interrupts again at once: the real-mode side of
//! every PXE call would never make progress. The chainloader polls UNDI
//! and needs no IRQ but the timer, so at entry it masks every line but
//! IRQ 0 (the BIOS tick, which PXE stacks use for their timeouts) and
//! IRQ 2 (the cascade) until the NIC's IRQ is known; then it unmasks the
//! others again and keeps only the NIC's masked. Before handoff it puts
//! back exactly what the firmware had.

use baremetal::port::Port8;
use core::sync::atomic::{AtomicBool, AtomicU16, Ordering};

/// (slave << 8) | master, as the firmware left them.
static FIRMWARE_MASKS: AtomicU16 = AtomicU16::new(0);
static SAVED: AtomicBool = AtomicBool::new(false);

fn ports() -> (Port8, Port8) {
    // SAFETY: 0x21 and 0xA1 are the master and slave PIC data ports; reading
    // and writing them only changes which IRQ lines are masked. Interrupts
    // are off in long mode, so no handler runs while they change.
    unsafe { (Port8::new(0x21), Port8::new(0xA1)) }
}

fn read() -> u16 {
    let (m, s) = ports();
    (s.read() as u16) << 8 | m.read() as u16
}

fn write(masks: u16) {
    let (m, s) = ports();
    m.write(masks as u8);
    s.write((masks >> 8) as u8);
}

/// Saves the firmware's masks (once) and masks every line but IRQ 0 and 2.
/// Called before the first real-mode call.
pub fn quiet_at_entry() {
    if !SAVED.swap(true, Ordering::Relaxed) {
        FIRMWARE_MASKS.store(read(), Ordering::Relaxed);
    }
    let fw = FIRMWARE_MASKS.load(Ordering::Relaxed);
    write(fw | 0xFFFA);
}

/// Is `irq` one the NIC could really use at the 8259 (not 0, the timer;
/// not 2, the cascade; not above 15)? Old gPXE stacks report 0 or above 15
/// (iPXE 0600ffeb3, 8e984f35e).
pub fn usable_nic_irq(irq: u16) -> bool {
    (1..=15).contains(&irq) && irq != 2
}

/// Once the NIC's IRQ is known: the firmware's masks again, with the NIC's
/// line masked. An unusable number keeps every line but 0 and 2 masked,
/// since the line the NIC really uses is then unknown.
pub fn mask_only_nic(irq: u16) {
    let fw = FIRMWARE_MASKS.load(Ordering::Relaxed);
    if usable_nic_irq(irq) {
        write(fw | 1 << irq);
    } else {
        write(fw | 0xFFFA);
    }
}

/// Was the NIC's line unmasked when the ROM started us?
pub fn firmware_left_unmasked(irq: u16) -> bool {
    usable_nic_irq(irq) && FIRMWARE_MASKS.load(Ordering::Relaxed) & (1 << irq) == 0
}

/// The firmware's masks, exactly as they were at entry (before handoff,
/// once the NIC is shut down and can no longer assert its line).
pub fn restore_firmware_masks() {
    if SAVED.load(Ordering::Relaxed) {
        write(FIRMWARE_MASKS.load(Ordering::Relaxed));
    }
}
