//! GDT/TSS with interrupt stacks, the IDT, and the two 8259 PICs.
//!
//! Red zone: the kernel is built for the host target, whose ABI lets leaf
//! functions use 128 bytes below RSP without moving it. An interrupt that
//! pushed its frame on the current stack would overwrite them. Every IDT
//! entry therefore names an IST stack, so the CPU always switches to a
//! dedicated stack first: exceptions on IST1, NMI and double fault on IST2,
//! hardware IRQs on IST3. IRQs do not nest (the gate clears IF and handlers
//! never `sti`), and an exception inside an IRQ handler lands on a
//! different stack, so no IST stack is ever re-entered.

use super::port;
use spin::Mutex;
use x86::dtables::DescriptorTablePointer;
use x86::segmentation::SegmentSelector;
use x86::Ring;

/// First vector of the master PIC after remapping; COM1 (IRQ4) is 0x24.
pub const PIC_BASE: u8 = 0x20;
pub const COM1_IRQ: u8 = 4;

const STACK: usize = 16 * 1024;
/// The TSS descriptor's GDT slot (selector 0x20): entry.S reserves 4 and 5.
const TSS_GDT_INDEX: u16 = 4;

#[repr(C, align(16))]
struct Stack([u8; STACK]);

// The CPU's tables and stacks: each taken by `init` for good (the guard
// leaked), then used by the CPU alone, through TR and IDTR.
static IST_STACKS: Mutex<[Stack; 3]> = Mutex::new([const { Stack([0; STACK]) }; 3]);

#[repr(C, packed)]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

static TSS: Mutex<Tss> = Mutex::new(Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    iomap_base: core::mem::size_of::<Tss>() as u16,
});

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    off_lo: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    off_mid: u16,
    off_hi: u32,
    _reserved: u32,
}

const VECTORS: usize = 48;
static IDT: Mutex<[Gate; VECTORS]> =
    Mutex::new([Gate { off_lo: 0, selector: 0, ist: 0, flags: 0, off_mid: 0, off_hi: 0, _reserved: 0 }; VECTORS]);

/// A table for good: `init` runs once.
fn take<T>(m: &'static Mutex<T>) -> &'static mut T {
    spin::MutexGuard::leak(m.try_lock().expect("cpu::init runs once"))
}

extern "C" {
    static isr_table: [u64; VECTORS];
    static mut gdt: [u64; 6];
}

/// The registers `isr.S` saves, in stack order, then the CPU's frame.
#[repr(C)]
pub struct Frame {
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Load the TSS and IDT and remap the PICs (all IRQs masked). Call once,
/// with interrupts off, before anything enables them.
pub fn init() {
    let (stacks, tss, idt) = (take(&IST_STACKS), take(&TSS), take(&IDT));
    for (i, s) in stacks.iter().enumerate() {
        tss.ist[i] = s.0.as_ptr() as u64 + STACK as u64; // top; 16-byte aligned
    }
    let base = tss as *const Tss as u64;
    // SAFETY: single-threaded init with IF=0 (entry.S never sets it); the
    // tables are 'static and nothing else references them (taken above);
    // gdt (entry.S) is written only here, slots 4-5 that entry.S reserves
    // for the TSS; isr_table is the stub table isr.S defines.
    unsafe {
        let limit = core::mem::size_of::<Tss>() as u64 - 1;
        // 64-bit available TSS descriptor (type 9, present), two GDT slots.
        let lo = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        let gdt_p = &raw mut gdt;
        (*gdt_p)[TSS_GDT_INDEX as usize] = lo;
        (*gdt_p)[TSS_GDT_INDEX as usize + 1] = base >> 32;
        x86::task::load_tr(SegmentSelector::new(TSS_GDT_INDEX, Ring::Ring0));

        for (v, g) in idt.iter_mut().enumerate() {
            let h = isr_table[v];
            let ist = match v {
                2 | 8 => 2,
                0..=31 => 1,
                _ => 3,
            };
            *g = Gate {
                off_lo: h as u16,
                selector: 0x08,
                ist,
                flags: 0x8e, // present, DPL 0, 64-bit interrupt gate (clears IF)
                off_mid: (h >> 16) as u16,
                off_hi: (h >> 32) as u32,
                _reserved: 0,
            };
        }
        x86::dtables::lidt(&DescriptorTablePointer::new(&*idt));
    }
    remap_pics();
}

/// ICW1..4 for both PICs: master vectors 0x20.., slave 0x28.., cascade on
/// IRQ2, 8086 mode; then mask everything.
fn remap_pics() {
    let (m_cmd, m_data, s_cmd, s_data) = (port(0x20), port(0x21), port(0xa0), port(0xa1));
    m_cmd.write(0x11);
    s_cmd.write(0x11);
    m_data.write(PIC_BASE);
    s_data.write(PIC_BASE + 8);
    m_data.write(1 << 2);
    s_data.write(2);
    m_data.write(0x01);
    s_data.write(0x01);
    m_data.write(0xff);
    s_data.write(0xff);
}

/// Unmask one master-PIC IRQ line (0..7).
pub fn unmask_irq(irq: u8) {
    let m = port(0x21);
    m.write(m.read() & !(1 << irq));
}

/// End of interrupt for a master-PIC IRQ.
pub fn eoi() {
    port(0x20).write(0x20);
}

/// Was `irq` (7 on the master) really in service, or spurious?
pub fn irq_in_service(irq: u8) -> bool {
    port(0x20).write(0x0b); // OCW3: read ISR
    port(0x20).read() & (1 << irq) != 0
}
