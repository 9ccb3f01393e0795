//! chainloader.0: a PXE network bootstrap program that fetches a Multiboot2
//! kernel by TFTP and boots it directly.
#![no_std]
#![no_main]

mod arch;
mod boot;

use baremetal::serial::{Uart16550, COM1};
use core::fmt::Write;

#[no_mangle]
extern "C" fn chainloader_main() -> ! {
    // SAFETY: COM1 is ours; nothing else drives it while the chainloader runs.
    let mut com1 = unsafe { Uart16550::new(COM1) };
    com1.init();
    let e = arch::entry_regs();
    let _ = writeln!(com1, "chainloader: long mode, entry SS:SP={:04x}:{:04x} ES:BX={:04x}:{:04x} !PXE={:08x}", e.ss, e.sp, e.es, e.bx, e.bang_pxe);
    let mut r = arch::thunk::Regs::default();
    arch::thunk::int(0x12, &mut r);
    let _ = writeln!(com1, "chainloader: base memory {} KiB", r.eax & 0xffff);
    loop {
        // SAFETY: isa-debug-exit test hook
        unsafe { core::arch::asm!("out dx, al", in("dx") 0xf4u16, in("al") 0x10u8) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the panic path takes COM1 over; nothing else runs any more.
    let mut com1 = unsafe { Uart16550::new(COM1) };
    let _ = writeln!(com1, "chainloader: panic: {info}");
    loop {}
}
