//! chainloader.0 end to end under QEMU's real PXE ROMs (iPXE from
//! ipxe-qemu) and QEMU's user-net TFTP server: the reference kernel boots
//! on all eight NIC models that ship an iPXE ROM, through PXELINUX, with a module; a missing kernel
//! ends in the specific TFTP error and the reboot countdown; a 16 MiB
//! module reports its throughput.
//!
//! Run: `scripts/build && cargo test -p e2e --test chainloader`.

use e2e::qemu::{debug_exit_status, Qemu, QemuConfig};
use e2e::relayd::install_pxelinux;
use e2e::{pattern, tftp_root, want_module, write_file};
use std::time::Duration;

/// Generous: TCG on a shared 2-core machine (the ROM alone takes ~6 s).
const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(60);

/// Boots the reference kernel (with `exit`) through chainloader.0 on `nic`
/// and checks the progress lines and the kernel's self-check.
fn boot_reference(nic: &str) -> String {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit nic=test\n");
    let mut q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0").nic(nic));
    q.expect(r"PXE: .*(!PXE|PXENV\+)", BOOT);
    q.expect(r"NIC: MAC 52:54:00:12:34:56", SHORT);
    q.expect(r"IP 10\.0\.2\.15/24, gateway 10\.0\.2\.2, TFTP server 10\.0\.2\.2", SHORT);
    q.expect(r"config chainloader\.cfg/default: kernel kernel\.elf", SHORT);
    q.expect(r"kernel\.elf: [0-9.]+ (KiB|MiB) in [0-9.]+ s, [0-9.]+ MiB/s", SHORT);
    let out = q.expect_self_check_ok(SHORT);
    assert!(out.contains(r#"MBI cmdline="exit nic=test""#), "{out}");
    assert!(out.contains(r#"MBI loader="chainloader"#), "{out}");
    assert!(out.contains("MBI tag type=16"), "network tag (DHCPACK) missing:\n{out}");
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)), "the kernel's exit switch should report pass");
    out
}

#[test]
fn boots_reference_kernel_on_e1000() {
    let out = boot_reference("e1000");
    // Found through the ROM's own registers, and DHCP answered by QEMU.
    assert!(out.contains("PXE: !PXE (from SS:[SP+4])"), "{out}");
    assert!(out.contains("config chainloader.cfg/01-52-54-00-12-34-56: not found"), "{out}");
}

#[test]
fn boots_reference_kernel_on_rtl8139() {
    boot_reference("rtl8139");
}

#[test]
fn boots_reference_kernel_on_virtio_net() {
    boot_reference("virtio-net-pci");
}

// The rest of ipxe-qemu's NIC models: each ROM is iPXE, but with another
// driver under UNDI. GET_NIC_TYPE must name the device QEMU emulates.

fn boot_reference_expecting(nic: &str, pci_id: &str) -> String {
    let out = boot_reference(nic);
    let line = out.lines().find(|l| l.starts_with("NIC: ")).unwrap_or_default();
    assert!(line.contains(&format!("PCI {pci_id}")), "{nic}: expected PCI {pci_id} on the NIC line: {line}");
    out
}

#[test]
fn boots_reference_kernel_on_e1000e() {
    boot_reference_expecting("e1000e", "8086:10d3");
}

#[test]
fn boots_reference_kernel_on_i82559er() {
    boot_reference_expecting("i82559er", "8086:1209");
}

/// iPXE's ne2k driver has no interrupt support: UNDI reports IRQ 0, which
/// is not a line to mask (old gPXE stacks do the same).
#[test]
fn boots_reference_kernel_on_ne2k_pci() {
    let out = boot_reference_expecting("ne2k_pci", "10ec:8029");
    assert!(out.contains("IRQ 0 reported, not a usable line"), "{out}");
}

#[test]
fn boots_reference_kernel_on_pcnet() {
    boot_reference_expecting("pcnet", "1022:2000");
}

#[test]
fn boots_reference_kernel_on_vmxnet3() {
    boot_reference_expecting("vmxnet3", "15ad:07b0");
}

/// PXE ROM -> Debian's pxelinux.0 -> chainloader.0 (PXELINUX hands over
/// with UNDI closed; the chainloader reopens it) -> kernel.
#[test]
fn boots_through_pxelinux() {
    let root = tftp_root();
    install_pxelinux(root.path());
    write_file(root.path(), "pxelinux.cfg/default", "default chain\nlabel chain\n kernel chainloader.0\n");
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit via=pxelinux\n");
    let mut q = Qemu::start(&QemuConfig::user_net(root.path(), "pxelinux.0"));
    q.expect(r"chainloader \d", BOOT);
    q.expect(r"PXE: ", SHORT);
    let out = q.expect_self_check_ok(BOOT);
    assert!(out.contains(r#"MBI cmdline="exit via=pxelinux""#), "{out}");
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

/// A config naming a file the server does not have: the server's error is
/// shown as such, then the countdown, then a reset (QEMU exits: -no-reboot).
#[test]
fn missing_kernel_gives_tftp_error_then_reboot_countdown() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel nautilus.bin\n");
    let mut q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    q.expect(r"TFTP error 1 from 10\.0\.2\.2: .*nautilus\.bin", BOOT);
    q.expect(r"rebooting in \d+ s", SHORT);
    // The reset ends QEMU (-no-reboot); a hang would time out here.
    assert!(q.wait_exit(SHORT).is_some(), "no reset after the countdown:\n{}", q.output());
    assert!(!q.output().contains("MBI-CHECK"), "no kernel must run");
}

/// A broken config line is reported with its line number, then the countdown.
#[test]
fn bad_config_line_is_reported_then_reboot() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "# comment\nkernel kernel.elf\nfrobnicate now\n");
    let mut q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    q.expect(r"chainloader\.cfg/default: .*line 3", BOOT);
    q.expect(r"rebooting in \d+ s", SHORT);
    assert!(q.wait_exit(SHORT).is_some(), "no reset after the countdown:\n{}", q.output());
}

/// A 16 MiB module over QEMU's TFTP: checked by the kernel's CRC-32 of it,
/// and the chainloader's throughput line (printed, not asserted).
#[test]
fn sixteen_mib_module_arrives_intact() {
    let root = tftp_root();
    let big = pattern(16 << 20, 0);
    write_file(root.path(), "big.bin", &big);
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit\nmodule big.bin big module\n");
    let mut q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    let line = q.expect(r"big\.bin: [0-9.]+ MiB in [0-9.]+ s, [0-9.]+ MiB/s", BOOT);
    eprintln!("throughput: {line}");
    let out = q.expect_self_check_ok(SHORT);
    want_module(&out, "big module", &big);
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

/// dnsmasq on the tap link (tests/harness/dnsmasq.rs), giving the ROM
/// chainloader.0.
fn dnsmasq(ns: &mut e2e::netns::NetNs, root: &std::path::Path, state: &std::path::Path, extra: &[&str]) {
    e2e::dnsmasq::start(ns, root, state, "chainloader.0", extra)
}

/// dnsmasq tells the chainloader from the ROM by option 77 and hands it
/// option 209: the config named there is used.
#[test]
fn dnsmasq_matches_user_class_and_option_209_names_the_config() {
    let root = tftp_root();
    let state = tempfile::tempdir().unwrap();
    write_file(root.path(), "special.cfg", "kernel kernel.elf exit via=dnsmasq\n");
    let mut ns = e2e::netns::NetNs::new();
    dnsmasq(&mut ns, root.path(), state.path(), &["--dhcp-option=tag:chain,209,special.cfg"]);
    let mut q = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    q.expect(r"TFTP server 10\.77\.0\.1", BOOT);
    q.expect(r"config special\.cfg: kernel kernel\.elf", SHORT);
    let out = q.expect_self_check_ok(SHORT);
    assert!(out.contains(r#"MBI cmdline="exit via=dnsmasq""#), "{out}");
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

/// A server that ignores the chainloader (dnsmasq's dhcp-ignore on our
/// tag): after 4 s the ROM's cached DHCPACK is used, and the boot goes on.
#[test]
fn no_dhcp_answer_falls_back_to_the_roms_cached_ack() {
    let root = tftp_root();
    let state = tempfile::tempdir().unwrap();
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit via=cached-ack\n");
    let mut ns = e2e::netns::NetNs::new();
    dnsmasq(&mut ns, root.path(), state.path(), &["--dhcp-ignore=tag:chain"]);
    let mut q = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    q.expect(r"DHCP: no answer after 4 s, using the PXE ROM's cached DHCPACK", BOOT);
    q.expect(r"IP 10\.77\.0\.1\d\d/24, .*TFTP server 10\.77\.0\.1", SHORT);
    let out = q.expect_self_check_ok(SHORT);
    assert!(out.contains(r#"MBI cmdline="exit via=cached-ack""#), "{out}");
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

/// The relay (DHCP + TFTP with windowsize) in a test namespace: a 16 MiB
/// module arrives intact in windows of several blocks (the receive ring
/// takes a window per trip); the throughput line is printed, not asserted.
#[test]
fn sixteen_mib_module_through_the_relay_with_windowsize() {
    let root = tftp_root();
    let big = pattern(16 << 20, 0x5eed);
    write_file(root.path(), "big.bin", &big);
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit\nmodule big.bin big module\n");
    let state = tempfile::tempdir().unwrap();
    let mut ns = e2e::netns::NetNs::new();
    let _relay = e2e::relayd::Relayd::start(&mut ns, &e2e::relayd::serve_args(root.path(), state.path(), &[]));
    let mut q = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    let line = q.expect(r"big\.bin: [0-9.]+ MiB in [0-9.]+ s, [0-9.]+ MiB/s", BOOT);
    eprintln!("throughput (relay): {line}");
    let out = q.expect_self_check_ok(SHORT);
    want_module(&out, "big module", &big);
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

/// Not a check (timings are not asserted): boots the same kernel and 16 MiB
/// module through GRUB 2 netboot and through chainloader.0, one after the
/// other on QEMU's TFTP, and prints the time from QEMU start to the
/// kernel's self-check for each. Run by hand:
/// `cargo test -p e2e --test chainloader -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_16mib_grub_vs_chainloader() {
    use e2e::grub::{GrubModule, GrubNetboot};
    use std::time::Instant;
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let g = GrubNetboot::new(
        &e2e::dist("kernel.elf"),
        "exit",
        &[GrubModule { file: "big.bin", contents: &big, string: "big" }],
    );
    let t = Instant::now();
    let mut q = Qemu::start(&QemuConfig::user_net(g.root(), GrubNetboot::BOOTFILE));
    q.expect("MBI-CHECK: ok", BOOT);
    let grub = t.elapsed();
    let _ = q.wait_exit(SHORT);
    drop(q);

    let root = tftp_root();
    write_file(root.path(), "big.bin", &big);
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit\nmodule big.bin big\n");
    let t = Instant::now();
    let mut q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    let line = q.expect(r"big\.bin: [0-9.]+ MiB in [0-9.]+ s, [0-9.]+ MiB/s", BOOT);
    q.expect("MBI-CHECK: ok", SHORT);
    let ours = t.elapsed();
    let _ = q.wait_exit(SHORT);
    eprintln!("QEMU start to kernel self-check, 16 MiB module: GRUB 2 {grub:.2?}, chainloader.0 {ours:.2?} ({line})");
}
