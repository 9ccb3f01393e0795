//! The reference kernel under QEMU, booted through real GRUB 2 netboot:
//! the boot-information self-check, the serial reboot command (and bytes
//! that only resemble it), and the `hang` and `panic` switches.
//!
//! Run: `scripts/build && cargo test -p e2e --test kernel`.

use e2e::dist;
use e2e::grub::{GrubModule, GrubNetboot};
use e2e::qemu::{debug_exit_status, Qemu, QemuConfig};
use std::time::Duration;

/// Generous: TCG on a shared 2-core machine; PXE ROM + GRUB take ~10 s alone.
const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(30);
const BANNER: &str = r"kernel: reference Multiboot2 kernel booting";
const READY: &str = r"kernel: serial console ready";
const REBOOTING: &str = r"serial: reboot command received, rebooting";

fn grub_boot(args: &str) -> (GrubNetboot, Qemu) {
    grub_boot_cfg(args, false)
}

fn grub_boot_cfg(args: &str, reboot_allowed: bool) -> (GrubNetboot, Qemu) {
    let g = GrubNetboot::new(&dist("kernel.elf"), args, &[]);
    let mut cfg = QemuConfig::user_net(g.root(), GrubNetboot::BOOTFILE);
    if reboot_allowed {
        cfg = cfg.reboot_allowed();
    }
    let q = Qemu::start(&cfg);
    (g, q)
}

#[test]
fn self_check_passes_through_grub_netboot_with_two_modules() {
    let mod1: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mod2 = b"second module: a short text\n".to_vec();
    let g = GrubNetboot::new(
        &dist("kernel.elf"),
        "exit alpha=1 beta",
        &[
            GrubModule { file: "mod1", contents: &mod1, string: "mod1 first" },
            GrubModule { file: "mod2", contents: &mod2, string: "mod2 second" },
        ],
    );
    let mut q = Qemu::start(&QemuConfig::user_net(g.root(), GrubNetboot::BOOTFILE));
    let out = q.expect_self_check_ok(BOOT);
    assert!(out.contains(r#"MBI cmdline="exit alpha=1 beta""#), "{out}");
    assert!(out.contains(r#"MBI loader="GRUB 2"#), "{out}");
    for (m, s) in [(&mod1, "mod1 first"), (&mod2, "mod2 second")] {
        let line = format!(r#"MBI module string="{s}" size={} crc32={:08x}"#, m.len(), bootproto::gzip::crc32(m));
        assert!(out.contains(&line), "missing `{line}`:\n{out}");
    }
    assert!(out.contains("MBI mmap base=0x100000"), "{out}");
    assert!(out.contains("MBI meminfo lower="), "{out}");
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)), "the exit switch should report pass (0x10)");
}

/// Bytes that only resemble `~~~k` are echoed and do nothing; each case is
/// followed by a unique marker whose echo proves the kernel is still up.
/// The real command then reboots, and with `-no-reboot` QEMU exits.
#[test]
fn lookalikes_do_not_reboot_then_the_command_does() {
    let (_g, mut q) = grub_boot("");
    q.expect(READY, BOOT);
    let cases: [&[u8]; 7] = [
        b"~~k",     // a prefix
        b"~~~x",    // a wrong command letter
        b"~~~zk",   // the command split by noise after the tildes
        b"~~x~k",   // noise between the tildes
        b"~\xfe~k", // a corrupted byte (0x7e with its top bit flipped)
        b"~~~~k",   // four tildes (as in Nautilus, not a command)
        b"k~~~ ",   // the letter first, then tildes and a space
    ];
    for (i, c) in cases.iter().enumerate() {
        let mark = q.mark();
        q.send(c);
        let marker = format!("<{i}>");
        q.send(marker.as_bytes());
        q.expect_after(mark, &regex::escape(&marker), SHORT);
        assert!(!q.output().contains("reboot command received"), "{:?} rebooted", String::from_utf8_lossy(c));
    }
    // Typing after a look-alike still works: the recogniser is back to idle.
    let mark = q.mark();
    q.send(b"~~~k");
    q.expect_after(mark, REBOOTING, SHORT);
    q.expect_after(mark, r"reset: via port 0xCF9", SHORT);
    assert_eq!(q.wait_exit(SHORT), Some(0), "QEMU with -no-reboot should exit on the reset");
}

#[test]
fn reboot_command_reboots_into_a_second_boot() {
    let (_g, mut q) = grub_boot_cfg("", true);
    q.expect(READY, BOOT);
    let mark = q.mark();
    q.send(b"~~~k");
    q.expect_after(mark, REBOOTING, SHORT);
    // The machine netboots again: PXE ROM, GRUB 2, the kernel's banner.
    q.expect_after(mark, BANNER, BOOT);
    q.expect_after(mark, READY, BOOT);
}

#[test]
fn hang_switch_leaves_the_reboot_command_dead() {
    let (_g, mut q) = grub_boot("hang");
    // The whole line, so that its line end does not arrive after the mark.
    q.expect(r"kernel: hanging with interrupts off.*\n", BOOT);
    let mark = q.mark();
    q.send(b"~~~k");
    // Absence can only be shown by a bounded wait: no echo, no reboot.
    assert_eq!(q.try_expect(REBOOTING, Duration::from_secs(5)), None);
    assert_eq!(q.mark(), mark, "a hung kernel echoed: {:?}", &q.output()[mark..]);
    assert_eq!(q.wait_exit(Duration::ZERO), None, "QEMU should still be running");
}

#[test]
fn panic_switch_prints_a_kernel_panic() {
    let (_g, mut q) = grub_boot("panic");
    q.expect(r"kernel panic: requested by the 'panic' switch.*\n", BOOT);
    assert!(q.output().contains("MBI-CHECK: ok"));
    let mark = q.mark();
    q.send(b"~~~k");
    assert_eq!(q.try_expect(REBOOTING, Duration::from_secs(3)), None);
    assert_eq!(q.mark(), mark);
}

#[test]
fn serial_shutdown_command_powers_off() {
    let (_g, mut q) = grub_boot("");
    q.expect(READY, BOOT);
    q.send(b"~~~s");
    q.expect("serial: shutdown command received, powering off", SHORT);
    q.expect("kernel: ACPI S5 via PM1a_CNT", SHORT);
    assert_eq!(q.wait_exit(SHORT), Some(0), "ACPI S5 should power QEMU off");
}

#[test]
fn serial_panic_command_panics() {
    let (_g, mut q) = grub_boot("");
    q.expect(READY, BOOT);
    q.send(b"~~~p");
    q.expect("kernel panic: requested over the serial port", SHORT);
}

/// The exception path (IDT gate on an IST stack, isr.S, the Rust handler).
#[test]
fn fault_switch_is_reported_by_the_exception_handler() {
    let (_g, q) = grub_boot("fault");
    q.expect(r"kernel panic: CPU exception 6 error=0x0 rip=0x1[0-9a-f]{5} ", BOOT);
}
