//! chainloader.0 on PXE stacks that misbehave the way vendor ROMs do.
//!
//! QEMU's iPXE ROM loads tests/pxeshim (target/dist/pxeshim.0) as the NBP;
//! the shim reads `pxeshim.cfg` and chainloader.0 through the ROM's own
//! TFTP API, then starts chainloader.0 with its own !PXE/PXENV+ whose entry
//! wraps the ROM's, injecting the quirks the config names. Each test boots
//! one quirk (or a combination) to the reference kernel's `MBI-CHECK: ok`,
//! or, for a quirk that cannot be survived, to its specific message and the
//! reboot countdown; and checks the console line that names the workaround.
//! The quirks, the ROMs known to have them and the workarounds are listed
//! in docs/pxe-quirks.md.
//!
//! Run: `scripts/build && cargo nextest run --release -p e2e --test quirks`.

use e2e::qemu::{debug_exit_status, Qemu, QemuConfig};
use e2e::{dist, tftp_root, write_file};
use std::time::Duration;

/// Generous: TCG on a shared 2-core machine.
const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(60);

/// A TFTP root with chainloader.0, the reference kernel, the shim and its
/// config naming `quirks`.
fn shim_root(quirks: &str, kernel_args: &str) -> tempfile::TempDir {
    let root = tftp_root();
    std::fs::copy(dist("pxeshim.0"), root.path().join("pxeshim.0")).unwrap();
    write_file(root.path(), "pxeshim.cfg", format!("# injected by tests/tests/quirks.rs\n{quirks}\n"));
    write_file(root.path(), "chainloader.cfg/default", format!("kernel kernel.elf exit {kernel_args}\n"));
    root
}

/// Waits for the shim to say which quirks it injects: exactly `quirks`
/// (given in the order of the shim's table).
fn expect_quirks(q: &Qemu, quirks: &str) {
    let want = quirks.split_whitespace().collect::<Vec<_>>().join(" ");
    // To the end of the line: the match must not stop at a partial line.
    let line = q.expect(r"pxeshim: quirks: [a-z0-9 -]*\r?\n", BOOT);
    assert_eq!(
        line.trim_end(),
        format!("pxeshim: quirks: {want}").trim_end(),
        "the shim injects other quirks than asked:\n{}",
        q.output()
    );
}

/// Starts QEMU on QEMU's user network (its TFTP server) with the shim as
/// the ROM's boot file and `quirks` in its config.
fn start(quirks: &str, nic: &str, kernel_args: &str) -> (Qemu, tempfile::TempDir) {
    let root = shim_root(quirks, kernel_args);
    let mut cfg = QemuConfig::user_net(root.path(), "pxeshim.0").nic(nic);
    cfg.memory_mib = 256;
    let q = Qemu::start(&cfg);
    expect_quirks(&q, quirks);
    (q, root)
}

/// Waits for the shim, the chainloader's NIC line and the kernel's
/// self-check and exit; returns the console.
fn expect_boot(mut q: Qemu) -> String {
    q.expect(r"pxeshim: starting chainloader\.0", SHORT);
    q.expect(r"NIC: MAC 52:54:00:12:34:56", BOOT);
    let out = q.expect_self_check_ok(BOOT);
    assert!(out.contains(r#"MBI cmdline="exit via=pxeshim""#), "{out}");
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)), "the kernel's exit switch should report pass");
    out
}

/// The same on a tap link served by dnsmasq: for quirks that lose frames.
/// QEMU's TFTP server answers a repeated ACK with the next block instead
/// of the lost one, so a lockstep transfer cannot recover a lost DATA
/// there; dnsmasq (like any real server) resends it.
fn boots_via_dnsmasq(quirks: &str) -> String {
    let root = shim_root(quirks, "via=pxeshim");
    let state = tempfile::tempdir().unwrap();
    let mut ns = e2e::netns::NetNs::new();
    e2e::dnsmasq::start(&mut ns, root.path(), state.path(), "pxeshim.0", &[]);
    let mut cfg = QemuConfig::tap(&ns.name, "tap0");
    cfg.memory_mib = 256;
    let q = Qemu::start(&cfg);
    expect_quirks(&q, quirks);
    expect_boot(q)
}

/// Boots with `quirks` to the kernel's self-check and its exit; returns the
/// console.
fn boots(quirks: &str) -> String {
    boots_on(quirks, "e1000")
}

fn boots_on(quirks: &str, nic: &str) -> String {
    let (q, _root) = start(quirks, nic, "via=pxeshim");
    expect_boot(q)
}

fn line_with<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line starting with {prefix:?}:\n{out}"))
}

/// The shim passing every call through unchanged: its own !PXE is found on
/// the stack, and the always-on workarounds are named.
#[test]
fn pass_through() {
    let out = boots("");
    assert!(out.contains("PXE: !PXE (from SS:[SP+4]), EntryPointSP"), "{out}");
    let nic = line_with(&out, "NIC: ");
    assert!(nic.contains("workarounds: transmit with protocol and destination, polled UNDI_ISR"), "{nic}");
    assert!(nic.contains("PCI 8086:100e"), "GET_NIC_TYPE should identify QEMU's e1000: {nic}");
    assert!(!out.contains("UNDI workarounds used"), "a well-behaved stack needs none:\n{out}");
}

/// Quirk 1: transmit completions never reported (some Intel stacks,
/// Etherboot 5.4). The pump never waits for one.
#[test]
fn no_tx_complete() {
    boots("no-tx-complete");
}

/// Quirk 3: P_UNKNOWN frames get a second link-layer header (QLogic
/// 8242). With P_UNKNOWN nothing would get through (checked by hand: DHCP
/// and TFTP time out); IP and ARP go out with the protocol set.
#[test]
fn punknown_gets_a_second_header() {
    boots("punknown-header");
}

/// Quirk 6: the IRQ is claimed but never raised (8086:1502 and others):
/// START never says OURS. Polling does not depend on it.
#[test]
fn irq_never_raised() {
    boots("irq-never");
}

/// Quirk 8: IRQ 0 or an IRQ above 15 (old gPXE): not a line to mask.
#[test]
fn irq_zero_reported() {
    let out = boots("irq-zero");
    let nic = line_with(&out, "NIC: ");
    assert!(nic.contains("IRQ 0 reported, not a usable line") && nic.contains("IRQ 0 ignored"), "{nic}");
}

#[test]
fn irq_above_15_reported() {
    let out = boots("irq-high");
    let nic = line_with(&out, "NIC: ");
    assert!(nic.contains("IRQ 19 reported, not a usable line") && nic.contains("IRQ 19 ignored"), "{nic}");
}

/// Quirk 12: received frames in several fragments.
#[test]
fn rx_in_fragments() {
    boots("rx-fragments");
}

/// Quirk 12: a fragment longer than its frame (VMware). Those frames are
/// dropped and counted (the old pump passed them on cut short); TFTP
/// recovers the lost blocks (dnsmasq resends them).
#[test]
fn rx_nonsense_fragment_length() {
    let out = boots_via_dnsmasq("rx-bad-length");
    let used = line_with(&out, "UNDI workarounds used: ");
    assert!(used.contains("fragment with a nonsense length (frame dropped)"), "{used}");
}

/// UNDI_ISR answering BUSY several times before each real answer.
#[test]
fn isr_busy() {
    let out = boots("isr-busy");
    let used = line_with(&out, "UNDI workarounds used: ");
    assert!(used.contains("ISR answered BUSY (called again)"), "{used}");
}

/// Quirk 9: the media test fails the first three times after a warm reboot
/// (Realtek r8169): UNDI_OPEN is retried.
#[test]
fn media_test_fails_after_warm_reboot() {
    let out = boots("media-test");
    let nic = line_with(&out, "NIC: ");
    assert!(nic.contains("media test failed 3 times (retried)"), "{nic}");
}

/// A link that never comes up cannot be survived: the specific message,
/// the countdown and the reset.
#[test]
fn media_test_never_passes_gives_message_and_countdown() {
    let (mut q, _root) = start("media-test-dead", "e1000", "via=pxeshim");
    q.expect(r"chainloader: cannot open the NIC through UNDI: UNDI_OPEN failed its media test 10 times", BOOT);
    q.expect(r"rebooting in \d+ s", SHORT);
    assert!(q.wait_exit(SHORT).is_some(), "no reset after the countdown:\n{}", q.output());
    assert!(!q.output().contains("MBI-CHECK"), "no kernel must run");
}

/// GRUB 2's fallback: a current MAC of all zeros or all ones.
#[test]
fn zero_current_mac() {
    let out = boots("zero-mac");
    let nic = line_with(&out, "NIC: ");
    assert!(nic.contains("current MAC 00:00:00:00:00:00 unusable (permanent MAC used)"), "{nic}");
}

#[test]
fn all_ones_current_mac() {
    let out = boots("ones-mac");
    let nic = line_with(&out, "NIC: ");
    assert!(nic.contains("current MAC ff:ff:ff:ff:ff:ff unusable (permanent MAC used)"), "{nic}");
}

/// Neither the current nor the permanent MAC is usable (a wiped EEPROM):
/// cannot be survived; the specific message, the countdown, the reset.
#[test]
fn no_usable_mac_gives_message_and_countdown() {
    let (mut q, _root) = start("no-mac", "e1000", "via=pxeshim");
    q.expect(r"chainloader: cannot open the NIC through UNDI: the NIC has no usable MAC address \(current 00:00:00:00:00:00, permanent 00:00:00:00:00:00\)", BOOT);
    q.expect(r"rebooting in \d+ s", SHORT);
    assert!(q.wait_exit(SHORT).is_some(), "no reset after the countdown:\n{}", q.output());
    assert!(!q.output().contains("MBI-CHECK"), "no kernel must run");
}

/// Quirk 15: GET_NIC_TYPE succeeds without writing its buffer (Intel X710
/// ROM, Dell R6515).
#[test]
fn nic_type_unwritten() {
    let out = boots("nictype-unwritten");
    let nic = line_with(&out, "NIC: ");
    assert!(
        nic.contains("NIC type unknown") && nic.contains("GET_NIC_TYPE left its buffer unwritten (assumed PCI)"),
        "{nic}"
    );
}

/// Quirk 16: the NIC's IRQ unmasked and asserted when the NBP starts (HP
/// Gen9). Without masking it the first frame in starts an interrupt storm
/// in real mode and the boot hangs (checked with the chainloader before
/// this change: no DHCP answer was ever seen).
#[test]
fn irq_storm_at_start() {
    let out = boots("irq-storm");
    let nic = line_with(&out, "NIC: ");
    assert!(nic.contains("IRQ 11 left unmasked by the ROM (masked)"), "{nic}");
}

/// Quirk 13: upper halves of %esp and the other registers clobbered, DF
/// left set, on every call.
#[test]
fn registers_clobbered_and_df_set() {
    let out = boots("clobber");
    let used = line_with(&out, "UNDI workarounds used: ");
    assert!(used.contains("the ROM returned with DF set (cleared)"), "{used}");
    assert!(used.contains("the ROM changed the upper half of %esp (restored)"), "{used}");
}

/// Calls work only on the stack the ROM started the NBP on.
#[test]
fn calls_only_on_the_roms_stack() {
    boots("rom-stack-only");
}

/// A transient TRANSMIT failure: tried again at once.
#[test]
fn transient_transmit_failure() {
    let out = boots("tx-transient");
    let used = line_with(&out, "UNDI workarounds used: ");
    assert!(used.contains("transmit failed (tried again)"), "{used}");
}

/// A PXE 2.0 ROM: no !PXE at SS:[SP+4] or anywhere; PXENV+ (version 2.0)
/// at ES:BX and its RMEntry.
#[test]
fn pxenv_plus_only() {
    let out = boots("pxenv-only");
    assert!(out.contains("PXE: PXENV+ (at ES:BX), RMEntry"), "{out}");
}

/// Neither ES:BX nor SS:[SP+4] points anywhere: INT 1Ah AX=5650h finds
/// PXENV+, and its PXEPtr the !PXE.
#[test]
fn int1a_only() {
    let out = boots("int1a-only");
    assert!(out.contains("PXENV+ at ES:BX (0000:0000): null or out-of-range pointer"), "{out}");
    assert!(out.contains("PXE: !PXE (via PXENV+.PXEPtr), EntryPointSP"), "{out}");
}

/// INT 1Ah only, on a PXE 2.0 ROM: PXENV+'s RMEntry through INT 1Ah.
#[test]
fn int1a_only_pxe_2_0() {
    let out = boots("pxenv-only int1a-only");
    assert!(out.contains("PXE: PXENV+ (from INT 1Ah 5650h), RMEntry"), "{out}");
}

/// Quirk 5: the stack "sulks" (delivers nothing) until its NIC has
/// generated an interrupt (iPXE b6ca3aa01); the shim looks for it in the
/// NIC's IRR bit at START. The pump always STARTs a run before PROCESS, so
/// a frame that arrived is seen; a client that polled with PROCESS alone
/// would never receive a frame.
#[test]
fn sulks_unless_interrupt_before_process() {
    boots("sulk");
}

/// Every call takes about 1 ms.
#[test]
fn slow_calls() {
    boots("slow");
}

/// Every survivable quirk at once (a PXE 2.0 ROM found only through INT
/// 1Ah, the ones-MAC variant: one MAC quirk at a time).
#[test]
fn all_survivable_quirks_at_once() {
    let all = "no-tx-complete punknown-header irq-never rx-fragments rx-bad-length isr-busy media-test zero-mac \
               nictype-unwritten irq-storm clobber rom-stack-only tx-transient pxenv-only int1a-only slow sulk";
    let out = boots_via_dnsmasq(all);
    assert!(out.contains("PXE: PXENV+ (from INT 1Ah 5650h), RMEntry"), "{out}");
    let nic = line_with(&out, "NIC: ");
    for w in [
        "media test failed 3 times",
        "current MAC 00:00:00:00:00:00 unusable",
        "GET_NIC_TYPE left its buffer unwritten",
        "left unmasked by the ROM",
    ] {
        assert!(nic.contains(w), "missing {w:?}: {nic}");
    }
    let used = line_with(&out, "UNDI workarounds used: ");
    for w in ["BUSY", "nonsense length", "transmit failed", "DF set", "%esp"] {
        assert!(used.contains(w), "missing {w:?}: {used}");
    }
}
