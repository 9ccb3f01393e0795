//! dnsmasq (the real one) as the DHCP and TFTP server on a test's network
//! namespace link: what most netboot sites run.

use crate::netns::NetNs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// dnsmasq in `ns` on `br0`, in the foreground, with no configuration file
/// and no DNS: DHCP (10.77.0.100-150) with its leases in `leases`, and TFTP
/// from `root`. The caller adds the boot file and anything else, spawns it,
/// then calls [`wait_bound`].
pub fn command(ns: &NetNs, root: &Path, leases: &Path) -> Command {
    let mut cmd = ns.command("dnsmasq");
    cmd.args([
        "--port=0",
        "--interface=br0",
        "--bind-interfaces",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--user=root",
        "--dhcp-range=10.77.0.100,10.77.0.150,1h",
        "--enable-tftp",
        &format!("--tftp-root={}", root.display()),
        &format!("--dhcp-leasefile={}", leases.display()),
    ]);
    cmd
}

/// Waits until the dnsmasq just spawned in `ns` has bound the DHCP port
/// (bounded wait: it polls the state).
pub fn wait_bound(ns: &NetNs) {
    ns.wait_udp_port_bound(67, "dnsmasq", Duration::from_secs(10));
}

/// Starts dnsmasq in `ns` on `br0`, serving DHCP (10.77.0.100-150) and TFTP
/// from `root`, giving PXE ROMs `rom_bootfile` and tagging the chainloader
/// by its user class (tag `chain`). `extra` adds dnsmasq options. Returns
/// once dnsmasq has bound port 67.
pub fn start(ns: &mut NetNs, root: &Path, state: &Path, rom_bootfile: &str, extra: &[&str]) {
    let mut cmd = command(ns, root, &state.join("leases"));
    cmd.args([
        "--dhcp-userclass=set:chain,chainloader",
        &format!("--dhcp-boot=tag:!chain,{rom_bootfile}"),
        &format!("--pid-file={}", state.join("pid").display()),
    ]);
    cmd.args(extra);
    ns.spawn(cmd);
    wait_bound(ns);
}
