//! The reference Multiboot2 kernel: checks the boot information it was given,
//! prints it on COM1 (human-readable lines and machine-readable `MBI ...`
//! lines), prints one verdict line `MBI-CHECK: ok` or
//! `MBI-CHECK: FAIL <first problem>`, then obeys its command-line switches
//! and waits for the serial reboot command (docs/serial-reboot.md).
//!
//! Switches (words on the Multiboot2 command line):
//! - `exit`: after the self-check, leave QEMU through isa-debug-exit with
//!   0x10 (pass, QEMU status 33) or 0x11 (fail, status 35);
//! - `panic`: print a kernel panic message and stop (interrupts off);
//! - `hang`: stop with interrupts off, so the reboot command cannot work;
//! - `fault`: execute `ud2`; the exception handler reports it and stops;
//! - `dmacheck`: after the self-check, check that no device writes to memory
//!   while the test floods the link (kernel/src/dmacheck.rs); `exit` then
//!   reports fail if something did.
//! - `noack`: obey `~~~k` without printing anything about it (as Nautilus,
//!   whose handler resets at once), so the relay must judge the reboot by
//!   what the machine does next.
#![no_std]
#![no_main]
// Hardware access lives in `arch`; the rest is safe Rust.
#![deny(unsafe_code)]

mod acpi;
#[allow(unsafe_code)]
mod arch;
mod command;
mod dmacheck;

use arch::com1;
use baremetal::serial::Uart16550;
use bootproto::mbi_check::{self, mmap_entries, Mbi, Range, Tag};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// Exit values for QEMU's isa-debug-exit.
const EXIT_PASS: u8 = 0x10;
const EXIT_FAIL: u8 = 0x11;

/// The MBI's largest believable size; anything bigger is reported, not read.
const MBI_MAX: u32 = 1 << 20;

/// Bytes as a quoted string: printable ASCII as is, `"` and `\` escaped,
/// anything else as `\xNN`, so the line stays one parseable line.
struct Quoted<'a>(&'a [u8]);
impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_char('"')?;
        for &b in self.0 {
            match b {
                b'"' | b'\\' => write!(f, "\\{}", b as char)?,
                0x20..=0x7e => f.write_char(b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        f.write_char('"')
    }
}

/// ACPI power-off parameters found at boot, packed for the IRQ handler:
/// pm1a | pm1b << 16 | slp_typ_a << 32 | slp_typ_b << 40 | valid << 48.
static POWER_OFF: AtomicU64 = AtomicU64::new(0);

/// The `noack` switch: reset on `~~~k` silently.
static NO_ACK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The Rust entry (from entry.S, through `arch::kernel_main`).
fn start(magic: u32, mbi_addr: u32) -> ! {
    let mut c = com1();
    c.init();
    arch::cpu::init();
    let (ks, ke) = arch::kernel_range();
    let kernel = Range { start: ks, end: ke };
    let _ =
        writeln!(c, "\nkernel: reference Multiboot2 kernel booting (image {}, MBI at {mbi_addr:#x})", kernel.dotted());

    let result = read_and_check(magic, mbi_addr as u64, kernel);
    let mut cmdline: &[u8] = b"";
    let mut dma_ok = true;
    match result {
        Ok(mbi) => {
            cmdline = mbi.cmdline().unwrap_or(b"");
            print_mbi(&mut c, &mbi);
            let _ = writeln!(c, "MBI-CHECK: ok");
            if cmdline.split(|&b| b == b' ').any(|w| w == b"dmacheck") {
                dma_ok = dmacheck::run(&mut c, &mbi, kernel);
            }
        }
        Err(p) => {
            let _ = writeln!(c, "MBI-CHECK: FAIL {p}");
        }
    }
    let passed = result.is_ok() && dma_ok;
    obey_switches(&mut c, cmdline, passed);

    c.set_rx_interrupt(true);
    arch::cpu::unmask_irq(arch::cpu::COM1_IRQ);
    let _ = writeln!(
        c,
        "kernel: serial console ready; typed characters are echoed; ~~~k reboots, ~~~p panics, ~~~s shuts down"
    );
    loop {
        arch::wait_for_interrupt();
    }
}

/// The command-line switches the tests drive the kernel with, in the order
/// they act: `exit` ends QEMU with the verdict, `panic`, `fault` and `hang`
/// imitate a broken kernel, `noack` silences the reboot acknowledgement,
/// `burst` floods the console.
fn obey_switches(c: &mut Uart16550, cmdline: &[u8], passed: bool) {
    let has = |w: &str| cmdline.split(|&b| b == b' ').any(|x| x == w.as_bytes());
    if has("exit") {
        let code = if passed { EXIT_PASS } else { EXIT_FAIL };
        let _ = writeln!(c, "kernel: exit switch: isa-debug-exit {code:#x}");
        arch::qemu_debug_exit(code);
        let _ = writeln!(c, "kernel: no isa-debug-exit device (not QEMU?); carrying on");
    }
    if has("panic") {
        let _ = writeln!(c, "kernel panic: requested by the 'panic' switch; halted");
        arch::halt_forever();
    }
    if has("fault") {
        let _ = writeln!(c, "kernel: raising #UD ('fault' switch)");
        arch::invalid_opcode();
    }
    NO_ACK.store(has("noack"), Ordering::Relaxed);
    if has("hang") {
        let _ = writeln!(c, "kernel: hanging with interrupts off ('hang' switch); the reboot command will not work");
        arch::halt_forever();
    }
    if has("burst") {
        console_burst(c, BURST_LINES);
    }
}

/// Lines the `burst` switch prints (78 bytes each: about 310 KiB).
const BURST_LINES: u32 = 4000;

/// The `burst` switch: `lines` pseudo-random lines as fast as the UART
/// takes them, `BURST 000000 <64 hex digits>`, then
/// `BURST-END lines=N crc32=X`, the CRC-32 of the lines with a `\n` after
/// each (the UART adds its `\r`). A test can then check that a console log
/// holds every byte, in order, whatever its clients did meanwhile.
fn console_burst(c: &mut impl Write, lines: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut crc = crc32fast::Hasher::new();
    let mut rng = bootproto::xorshift::Xorshift64(0x9e37_79b9_7f4a_7c15);
    let mut line = *b"BURST 000000 0000000000000000000000000000000000000000000000000000000000000000\n";
    for n in 0..lines {
        let mut v = n;
        for d in line[6..12].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        for chunk in line[13..77].chunks_mut(16) {
            let x = rng.next_u64();
            for (i, d) in chunk.iter_mut().enumerate() {
                *d = HEX[((x >> (i * 4)) & 0xf) as usize];
            }
        }
        crc.update(&line);
        let _ = c.write_str(core::str::from_utf8(&line).unwrap_or(""));
    }
    let _ = writeln!(c, "BURST-END lines={lines} crc32={:08x}", crc.finalize());
}

fn read_and_check(magic: u32, addr: u64, kernel: Range) -> Result<Mbi<'static>, mbi_check::Problem> {
    use mbi_check::Problem;
    // Magic and alignment first: with a wrong magic EBX means nothing, and
    // nothing is read through it.
    if magic != mbi_check::BOOTLOADER_MAGIC {
        return Err(Problem::BadMagic(magic));
    }
    if !addr.is_multiple_of(8) {
        return Err(Problem::Misaligned(addr));
    }
    let total = arch::phys_u32(addr)
        .ok_or(Problem::NotInUsableRam { what: "MBI", range: Range { start: addr, end: addr + 8 } })?;
    if total < 16 {
        return Err(Problem::TotalSizeTooSmall(total));
    }
    if total > MBI_MAX {
        return Err(Problem::TotalSizeTooLarge(total));
    }
    let bytes = arch::phys_bytes(addr, total as usize)
        .ok_or(Problem::NotInUsableRam { what: "MBI", range: Range { start: addr, end: addr + total as u64 } })?;
    mbi_check::check(magic, addr, bytes, kernel)
}

fn print_mbi(c: &mut Uart16550, mbi: &Mbi) {
    for t in mbi.tags() {
        let _ = match t {
            Tag::LoaderName(s) => writeln!(c, "kernel: boot loader: {}\nMBI loader={}", Quoted(s), Quoted(s)),
            Tag::Cmdline(s) => writeln!(c, "kernel: command line: {}\nMBI cmdline={}", Quoted(s), Quoted(s)),
            Tag::BasicMeminfo { lower, upper } => {
                writeln!(
                    c,
                    "kernel: memory: {lower} KiB lower, {upper} KiB upper\nMBI meminfo lower={lower} upper={upper}"
                )
            }
            Tag::Mmap { entry_size, entry_version, entries } => {
                let _ = writeln!(c, "kernel: memory map (entry_size {entry_size}, version {entry_version}):");
                for e in mmap_entries(entry_size, entries) {
                    let _ = writeln!(c, "MBI mmap base={:#x} len={:#x} type={}", e.base, e.len, e.typ);
                }
                Ok(())
            }
            Tag::Module { range, string } => {
                let size = range.end - range.start;
                let data = arch::phys_bytes(range.start, size as usize).unwrap_or(&[]);
                let crc = crc32fast::hash(data);
                writeln!(
                    c,
                    "kernel: module {} {}\nMBI module string={} size={size} crc32={crc:08x}",
                    range.dotted(),
                    Quoted(string),
                    Quoted(string)
                )
            }
            Tag::Rsdp { typ, rsdp } => {
                let v = if typ == mbi_check::tag::ACPI_OLD { 1 } else { 2 };
                let oem = &rsdp[9..15];
                let rev = rsdp[15];
                let rsdt = u32::from_le_bytes(rsdp[16..20].try_into().unwrap());
                if let Some(p) = acpi::find_power_off(rsdt as u64) {
                    POWER_OFF.store(p, Ordering::Relaxed);
                }
                writeln!(c, "MBI rsdp v{v} oem={} rev={rev} rsdt={rsdt:#x}", Quoted(oem))
            }
            Tag::Other { typ, body } => writeln!(c, "MBI tag type={typ} size={}", body.len() + 8),
        };
    }
}

/// Every vector (from isr.S, through `arch::kernel_interrupt`), on an IST
/// stack, interrupts off.
fn interrupt(f: &mut arch::cpu::Frame) {
    let v = f.vector as u8;
    let irq = v.wrapping_sub(arch::cpu::PIC_BASE);
    match v {
        0..=31 => {
            let mut c = com1();
            let _ = writeln!(
                c,
                "\nkernel panic: CPU exception {v} error={:#x} rip={:#x} rsp={:#x}; halted",
                f.error, f.rip, f.rsp
            );
            arch::halt_forever();
        }
        _ if irq == arch::cpu::COM1_IRQ => {
            serial_irq();
            arch::cpu::eoi();
        }
        // IRQ7 without its ISR bit is spurious and gets no EOI.
        _ if irq == 7 && !arch::cpu::irq_in_service(7) => {}
        _ => arch::cpu::eoi(),
    }
}

/// Only the serial IRQ handler uses it.
static RECOGNISER: command::Recogniser = command::Recogniser::new();

fn serial_irq() {
    let mut c = com1();
    loop {
        let lsr = arch::com1_line_status();
        let Some(b) = c.try_read_byte() else { break };
        // A byte with a parity or framing error, or a break, is line noise:
        // it is dropped and cancels any command in progress.
        if lsr & 0x1c != 0 {
            RECOGNISER.cancel();
            continue;
        }
        // Echo, as a terminal in full duplex expects; Enter (CR) moves to a new line.
        c.write_byte(b);
        if b == b'\r' {
            c.write_byte(b'\n');
        }
        let cmd = RECOGNISER.feed(b);
        match cmd {
            Some(command::Command::Reboot) if NO_ACK.load(Ordering::Relaxed) => arch::reset(|_| {}),
            Some(command::Command::Reboot) => {
                let _ = writeln!(c, "\nserial: reboot command received, rebooting");
                arch::reset(|m| {
                    let _ = writeln!(com1(), "kernel: {m}");
                });
            }
            Some(command::Command::Panic) => {
                let _ = writeln!(
                    c,
                    "\nserial: panic command received\nkernel panic: requested over the serial port; halted"
                );
                arch::halt_forever();
            }
            Some(command::Command::Shutdown) => {
                let _ = writeln!(c, "\nserial: shutdown command received, powering off");
                let p = POWER_OFF.load(Ordering::Relaxed);
                if p >> 48 != 0 {
                    let _ = writeln!(c, "kernel: ACPI S5 via PM1a_CNT={:#x} SLP_TYP={}", p as u16, (p >> 32) as u8);
                    arch::acpi_power_off(p as u16, (p >> 16) as u16, (p >> 32) as u8, (p >> 40) as u8);
                    let _ = writeln!(c, "kernel: ACPI power-off did not take effect");
                } else {
                    let _ = writeln!(c, "kernel: no ACPI power-off information (FADT / \\_S5 not found)");
                }
                let _ = writeln!(c, "kernel: shutdown failed; halted");
                arch::halt_forever();
            }
            None => {}
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut c = com1();
    let _ = writeln!(c, "\nkernel panic: {info}");
    arch::halt_forever()
}
