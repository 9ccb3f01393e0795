//! dnsmasq (the real one) as the DHCP and TFTP server on a test's network
//! namespace link: what most netboot sites run.

use crate::netns::NetNs;
use std::path::Path;
use std::time::Duration;

/// Starts dnsmasq in `ns` on `br0`, serving DHCP (10.77.0.100-150) and TFTP
/// from `root`, giving PXE ROMs `rom_bootfile` and tagging the chainloader
/// by its user class (tag `chain`). `extra` adds dnsmasq options. Returns
/// once dnsmasq has bound port 67 (bounded wait: it polls the state).
pub fn start(ns: &mut NetNs, root: &Path, state: &Path, rom_bootfile: &str, extra: &[&str]) {
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
        "--dhcp-userclass=set:chain,chainloader",
        &format!("--dhcp-boot=tag:!chain,{rom_bootfile}"),
        &format!("--dhcp-leasefile={}", state.join("leases").display()),
        &format!("--pid-file={}", state.join("pid").display()),
    ]);
    cmd.args(extra);
    ns.spawn(cmd);
    for _ in 0..100 {
        let out = ns.command("ss").args(["-Hlun", "sport = :67"]).output().unwrap();
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("dnsmasq did not bind port 67");
}
