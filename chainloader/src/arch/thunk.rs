//! Calls from long mode into real mode: BIOS interrupts and far calls (the
//! PXE API entry points), through `rm_thunk` in `modes.S`.
//!
//! Across a call the callee may change every register, DF, GDTR, IDTR and
//! the control registers; the thunk restores all of them. It runs the call on
//! the stack the ROM started us on, and with interrupts enabled, so that BIOS
//! timer ticks keep flowing while the ROM works.

use core::sync::atomic::{AtomicU32, Ordering};

/// A real-mode far pointer, segment:offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FarPtr {
    pub segment: u16,
    pub offset: u16,
}

impl FarPtr {
    pub fn from_u32(v: u32) -> Self {
        FarPtr { segment: (v >> 16) as u16, offset: v as u16 }
    }

    /// The far pointer for a linear address below 1 MiB.
    pub fn from_linear(addr: usize) -> Self {
        assert!(addr < 0x10_0000, "real-mode pointer above 1 MiB");
        FarPtr { segment: (addr >> 4) as u16, offset: (addr & 0xf) as u16 }
    }

    pub fn linear(self) -> usize {
        ((self.segment as usize) << 4) + self.offset as usize
    }
}

/// The general registers going into and coming out of a real-mode call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Regs {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub esi: u32,
    pub edi: u32,
    pub ebp: u32,
    /// Output only.
    pub eflags: u32,
    pub ds: u16,
    pub es: u16,
}

impl Regs {
    pub fn carry(&self) -> bool {
        self.eflags & 1 != 0
    }
}

/// Mirrors `rm_regs` in modes.S.
#[repr(C)]
struct RealModeCall {
    regs: Regs,
    target: u32,
    intno: u16,
    nstack: u16,
    stack: [u16; 8],
    /// Out: %esp as the callee returned it.
    esp_out: u32,
}

/// Calls that returned with DF set, and with the upper half of %esp
/// changed (the thunk itself copes with both; these say the ROM did it).
static DF_LEFT_SET: AtomicU32 = AtomicU32::new(0);
static ESP_UPPER_CHANGED: AtomicU32 = AtomicU32::new(0);

/// (calls that returned with DF set, calls that changed the upper half of %esp).
pub fn clobbers() -> (u32, u32) {
    (DF_LEFT_SET.load(Ordering::Relaxed), ESP_UPPER_CHANGED.load(Ordering::Relaxed))
}

extern "C" {
    static mut rm_regs: RealModeCall;
    fn rm_thunk();
}

fn run(regs: &mut Regs, target: u32, intno: u16, stack: &[u16]) {
    assert!(stack.len() <= 8);
    let mut words = [0u16; 8];
    words[..stack.len()].copy_from_slice(stack);
    let call = RealModeCall { regs: *regs, target, intno, nstack: stack.len() as u16, stack: words, esp_out: 0 };
    // SAFETY: rm_regs is only touched here and by rm_thunk, which runs
    // synchronously; the chainloader is single-threaded with interrupts off.
    // rm_thunk saves and restores all long-mode state it depends on.
    unsafe {
        core::ptr::addr_of_mut!(rm_regs).write_volatile(call);
        rm_thunk();
        *regs = core::ptr::addr_of!(rm_regs.regs).read_volatile();
        if core::ptr::addr_of!(rm_regs.esp_out).read_volatile() >> 16 != 0 {
            ESP_UPPER_CHANGED.fetch_add(1, Ordering::Relaxed);
        }
    }
    if regs.eflags & 0x400 != 0 {
        DF_LEFT_SET.fetch_add(1, Ordering::Relaxed);
    }
}

/// `INT n` in real mode.
pub fn int(n: u8, regs: &mut Regs) {
    run(regs, 0, n as u16, &[])
}

/// A far call to `target` in real mode with `stack` pushed (stack[0] on top,
/// right above the return address), as the !PXE API entry expects.
pub fn far_call(target: FarPtr, regs: &mut Regs, stack: &[u16]) {
    run(regs, (target.segment as u32) << 16 | target.offset as u32, 0xffff, stack)
}
