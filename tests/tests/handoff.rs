//! Handoff leaves no NIC activity behind: after the chainloader's
//! UNDI_CLOSE / UNDI_SHUTDOWN / UNLOAD_STACK, no frame may reach memory.
//!
//! The reference kernel's `dmacheck` switch fills usable RAM with a pattern
//! and hashes the memory the firmware hides (where the ROM's receive ring
//! is), says `DMA-CHECK: ready`; the test floods the link with broadcast
//! frames from the namespace for 3 s, sends a byte, and the kernel reports
//! `DMA-CHECK: ok` or the first changed address.
//!
//! That the check can fail was checked by hand: with UNDI_CLOSE and
//! UNDI_SHUTDOWN skipped in the chainloader, e1000 reports
//! `DMA-CHECK: FAIL at 0x...` in the hidden memory (see the commit that
//! added this test).

use e2e::qemu::{debug_exit_status, Qemu, QemuConfig};
use e2e::{tftp_root, write_file};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(60);

fn no_dma_after_handoff(nic: &str) {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit dmacheck\n");
    let state = tempfile::tempdir().unwrap();
    let mut ns = e2e::netns::NetNs::new();
    e2e::dnsmasq::start(&mut ns, root.path(), state.path(), "chainloader.0", &[]);
    let mut cfg = QemuConfig::tap(&ns.name, "tap0").nic(nic);
    cfg.memory_mib = 256;
    let mut q = Qemu::start(&cfg);
    q.expect_self_check_ok(BOOT);
    q.expect(r"DMA-CHECK: ready", SHORT);
    let sent = ns.flood_broadcast(Duration::from_secs(3));
    assert!(sent > 1000, "the flood sent only {sent} frames");
    q.send(b"g");
    let verdict = q.expect(r"DMA-CHECK: (ok|FAIL.*)", SHORT);
    assert!(
        verdict.starts_with("DMA-CHECK: ok"),
        "{nic}: a device wrote to memory after handoff ({sent} frames sent): {verdict}\n{}",
        q.output()
    );
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

#[test]
fn no_dma_after_handoff_e1000() {
    no_dma_after_handoff("e1000");
}

#[test]
fn no_dma_after_handoff_rtl8139() {
    no_dma_after_handoff("rtl8139");
}
