//! The relay on a real link: QEMU's PXE ROM (iPXE, e1000) on a tap device in
//! a network namespace, the relay serving DHCP and TFTP on the bridge.
//! Run as root (`scripts/test` does).

use std::time::Duration;

use e2e::netns::NetNs;
use e2e::qemu::{Qemu, QemuConfig};
use e2e::relayd::{install_pxelinux, relay_command, serve_args, Relayd};
use e2e::{tftp_root, write_file};

const BOOT: Duration = Duration::from_secs(90);

/// The boot config the chainloader fetches: the reference kernel, which
/// ends QEMU after its verdict line.
fn write_boot_config(root: &std::path::Path) {
    write_file(root, "chainloader.cfg/default", "kernel kernel.elf exit\n");
}

/// Zero config: PXE ROM -> DHCP offer with chainloader.0 -> TFTP ->
/// chainloader.0 runs -> reference kernel.
#[test]
fn relay_full_mode_boots_chainloader_and_kernel() {
    let root = tftp_root();
    write_boot_config(root.path());
    let state = tempfile::tempdir().unwrap();
    let mut ns = NetNs::new();
    let r = Relayd::start(&mut ns, &serve_args(root.path(), state.path(), &[]));
    let vm = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    vm.expect(r"chainloader \d+\.\d+", BOOT);
    r.expect_log(r#"dhcp: 52:54:00:12:34:56 chainloader\.0: DISCOVER .*rule=builtin:\S+ reply=Offer ip=10\.77\.0\.100 next_server=10\.77\.0\.1"#, BOOT);
    r.expect_log(r"dhcp: 52:54:00:12:34:56 chainloader\.0: REQUEST .* reply=Ack ip=10\.77\.0\.100", BOOT);
    r.expect_log(r#"tftp: .* chainloader\.0: sent"#, BOOT);
    // chainloader.0 asks again with its own user class and gets its config file.
    r.expect_log(r#"52:54:00:12:34:56 DISCOVER .*user=chainloader .*rule=builtin:chainloader reply=Offer ip=10\.77\.0\.100 .*config=chainloader\.cfg/default"#, BOOT);
    vm.expect(r"MBI-CHECK: ok", BOOT);
    // The lease was written for the next start.
    let leases = std::fs::read_to_string(state.path().join("leases.toml")).unwrap();
    assert!(leases.contains("52:54:00:12:34:56") && leases.contains("10.77.0.100"), "{leases}");
}

/// The same through PXELINUX: a config rule hands the ROM pxelinux.0,
/// whose menu chainloads chainloader.0 (a PXE NBP, by its .0 suffix).
#[test]
fn relay_boots_chainloader_through_pxelinux() {
    let root = tftp_root();
    install_pxelinux(root.path());
    write_boot_config(root.path());
    write_file(root.path(), "pxelinux.cfg/default", "default nbp\nprompt 0\nlabel nbp\n  kernel chainloader.0\n");
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("relay.toml");
    std::fs::write(&cfg, "[[rule]]\nname = \"pxelinux\"\nvendor_class = \"PXEClient\"\nboot_file = \"pxelinux.0\"\n")
        .unwrap();
    let mut ns = NetNs::new();
    let mut args = serve_args(root.path(), state.path(), &[]);
    args.extend(["--config", cfg.to_str().unwrap()]);
    let r = Relayd::start(&mut ns, &args);
    let vm = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    vm.expect(r"chainloader \d+\.\d+", BOOT);
    r.expect_log(r#"pxelinux\.0: DISCOVER .*rule="pxelinux \(over builtin:\S+\)" reply=Offer "#, BOOT);
    r.expect_log(r#"tftp: .* pxelinux\.cfg/default: sent"#, BOOT);
    r.expect_log(r#"tftp: .* chainloader\.0: sent"#, BOOT);
    vm.expect(r"MBI-CHECK: ok", BOOT);
}

/// dnsmasq is the site's DHCP server (addresses only) on another host,
/// joined to the bridge by a veth pair; the relay runs as proxyDHCP and the
/// ROM boots chainloader.0 from it.
#[test]
fn relay_proxy_mode_beside_dnsmasq() {
    let root = tftp_root();
    write_boot_config(root.path());
    let state = tempfile::tempdir().unwrap();
    let mut ns = NetNs::new();
    let _site = site_dhcp_server(&ns, state.path());
    let mut args = serve_args(root.path(), state.path(), &[]);
    args.push("--proxy");
    let r = Relayd::start(&mut ns, &args);
    let vm = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    vm.expect(r"chainloader \d+\.\d+", BOOT);
    r.expect_log(r#"proxy: 52:54:00:12:34:56 chainloader\.0: DISCOVER .*user=iPXE .* reply=Offer next_server="#, BOOT);
    r.expect_log(r#"tftp: 10\.77\.0\.(5\d|60):\d+ chainloader\.0: sent"#, BOOT);
    // chainloader.0's own DHCP gets the proxy offer with its config file.
    r.expect_log(r#"proxy: 52:54:00:12:34:56 DISCOVER .*user=chainloader .* reply=Offer next_server=10\.77\.0\.1 config=chainloader\.cfg/default"#, BOOT);
    // Its address comes from the site server; its files from the relay, the
    // boot server the PXE ROM cached, and the kernel comes up.
    vm.expect(r"IP 10\.77\.0\.(5\d|60)/24, .*TFTP server 10\.77\.0\.1 ", BOOT);
    vm.expect(r"MBI-CHECK: ok", BOOT);
}

/// Another host on the link (a second namespace, joined to `ns`'s bridge by
/// a veth pair) at 10.77.0.2 running dnsmasq as an address-only DHCP
/// server. Returns once dnsmasq has bound port 67.
fn site_dhcp_server(ns: &NetNs, state: &std::path::Path) -> NetNs {
    let mut site = NetNs::new();
    site.exec(&["ip", "link", "del", "br0"]);
    ns.exec(&["ip", "link", "add", "vsite", "type", "veth", "peer", "name", "eth0", "netns", &site.name]);
    ns.exec(&["ip", "link", "set", "vsite", "master", "br0"]);
    ns.exec(&["ip", "link", "set", "vsite", "up"]);
    site.exec(&["ip", "addr", "add", "10.77.0.2/24", "dev", "eth0"]);
    site.exec(&["ip", "link", "set", "eth0", "up"]);
    let mut dnsmasq = site.command("dnsmasq");
    dnsmasq.args([
        "--port=0",
        "--dhcp-range=10.77.0.50,10.77.0.60,1h",
        "--interface=eth0",
        "--bind-interfaces",
        "--no-daemon",
        "--conf-file=/dev/null",
        &format!("--dhcp-leasefile={}", state.join("dnsmasq.leases").display()),
        &format!("--pid-file={}", state.join("dnsmasq.pid").display()),
    ]);
    site.spawn(dnsmasq);
    site.wait_udp_port_bound(67, "the site's dnsmasq", Duration::from_secs(20));
    site
}

/// Another DHCP server answers on the link: full mode refuses to start.
#[test]
fn relay_refuses_full_mode_when_another_dhcp_server_answers() {
    let root = tftp_root();
    let state = tempfile::tempdir().unwrap();
    let ns = NetNs::new();
    let _site = site_dhcp_server(&ns, state.path());
    let (ok, stderr) = run_relay_to_exit(&ns, &serve_args(root.path(), state.path(), &[]));
    assert!(!ok, "relay started beside another DHCP server:\n{stderr}");
    assert!(
        stderr.contains(
            "another DHCP server (10.77.0.2) answers on br0; refusing full DHCP mode. Use --proxy to run as proxyDHCP beside it."
        ),
        "{stderr}"
    );
}

/// A host already uses the first pool address (10.77.0.100) without a
/// lease: the background probe finds it before any client is offered it.
#[test]
fn relay_takes_an_address_in_use_out_of_the_pool() {
    let root = tftp_root();
    let state = tempfile::tempdir().unwrap();
    let mut ns = NetNs::new();
    let squatter = NetNs::new();
    squatter.exec(&["ip", "link", "del", "br0"]);
    ns.exec(&["ip", "link", "add", "vsq", "type", "veth", "peer", "name", "eth0", "netns", &squatter.name]);
    ns.exec(&["ip", "link", "set", "vsq", "master", "br0"]);
    ns.exec(&["ip", "link", "set", "vsq", "up"]);
    squatter.exec(&["ip", "addr", "add", "10.77.0.100/24", "dev", "eth0"]);
    squatter.exec(&["ip", "link", "set", "eth0", "up"]);
    let r = Relayd::start(&mut ns, &serve_args(root.path(), state.path(), &[]));
    r.expect_log(
        r"dhcp: answers ping but has no lease: in use by another host, taken out of the pool ip=10\.77\.0\.100 interface=br0",
        BOOT,
    );
    r.expect_log(r"conflict probe: free ip=10\.77\.0\.101", BOOT);
    let leases = std::fs::read_to_string(state.path().join("leases.toml")).unwrap();
    assert!(leases.contains("\"10.77.0.100\""), "{leases}");
}

/// The relay serves br0 only. A DHCP client on br0 gets an offer; one on
/// another interface of the same host (a veth at 10.88.0.1) gets nothing.
/// The clients are relays in other namespaces, whose startup probe is a
/// DHCPDISCOVER that reports who answered.
#[test]
fn relay_answers_only_on_its_interface() {
    let root = tftp_root();
    let state = tempfile::tempdir().unwrap();
    let mut ns = NetNs::new();
    // Client host on br0.
    let on_br0 = NetNs::new();
    on_br0.exec(&["ip", "link", "del", "br0"]);
    ns.exec(&["ip", "link", "add", "vc1", "type", "veth", "peer", "name", "eth0", "netns", &on_br0.name]);
    ns.exec(&["ip", "link", "set", "vc1", "master", "br0"]);
    ns.exec(&["ip", "link", "set", "vc1", "up"]);
    on_br0.exec(&["ip", "addr", "add", "10.77.0.3/24", "dev", "eth0"]);
    on_br0.exec(&["ip", "link", "set", "eth0", "up"]);
    // Client host on another interface of the relay's host.
    let elsewhere = NetNs::new();
    elsewhere.exec(&["ip", "link", "del", "br0"]);
    ns.exec(&["ip", "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", &elsewhere.name]);
    ns.exec(&["ip", "addr", "add", "10.88.0.1/24", "dev", "uplink"]);
    ns.exec(&["ip", "link", "set", "uplink", "up"]);
    elsewhere.exec(&["ip", "addr", "add", "10.88.0.2/24", "dev", "eth0"]);
    elsewhere.exec(&["ip", "link", "set", "eth0", "up"]);

    let r = Relayd::start(&mut ns, &serve_args(root.path(), state.path(), &[]));
    let client_state = tempfile::tempdir().unwrap();
    let client = |host: &NetNs| {
        let args = ["serve", "--interface", "eth0", "--tftp-root", root.path().to_str().unwrap(), "--state-dir"];
        let mut args = args.to_vec();
        args.extend([client_state.path().to_str().unwrap(), "--probe-secs", "3"]);
        let mut c = relay_command(host, &args);
        c.stdin(std::process::Stdio::null());
        c.output_with_deadline()
    };
    let (_, out) = client(&on_br0);
    assert!(out.contains("another DHCP server (10.77.0.1) answers on eth0; refusing full DHCP mode"), "{out}");
    let (_, out) = client(&elsewhere);
    assert!(
        out.contains("relay: no other DHCP server answered interface=eth0"),
        "the relay answered on an interface it does not serve:\n{out}"
    );
    // Exactly one DISCOVER answered: the one on br0.
    let answered = r.text().lines().filter(|l| l.contains("DISCOVER") && l.contains("reply=Offer")).count();
    assert_eq!(answered, 1, "{}", r.text());
}

/// Runs a command until it exits or 20 s pass (then it is killed: a relay
/// that found no other server keeps serving). Returns (exited, output).
trait OutputWithDeadline {
    fn output_with_deadline(&mut self) -> (bool, String);
}

impl OutputWithDeadline for std::process::Command {
    fn output_with_deadline(&mut self) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out");
        let f = std::fs::File::create(&log).unwrap();
        let mut child = self.stdout(f.try_clone().unwrap()).stderr(f).spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap();
            if child.try_wait().unwrap().is_some() {
                return (true, text);
            }
            if text.contains("relay: full DHCP interface=") || std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return (false, text);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// dnsmasq on the same host and interface holds port 67: a clear message.
#[test]
fn relay_reports_port_67_in_use() {
    let root = tftp_root();
    let state = tempfile::tempdir().unwrap();
    let mut ns = NetNs::new();
    let mut dnsmasq = ns.command("dnsmasq");
    dnsmasq.args([
        "--port=0",
        "--dhcp-range=10.77.0.50,10.77.0.60,1h",
        "--interface=br0",
        "--bind-interfaces",
        "--no-daemon",
        "--conf-file=/dev/null",
        &format!("--dhcp-leasefile={}", state.path().join("dnsmasq.leases").display()),
        &format!("--pid-file={}", state.path().join("dnsmasq.pid").display()),
    ]);
    ns.spawn(dnsmasq);
    ns.wait_udp_port_bound(67, "dnsmasq", Duration::from_secs(20));
    let (ok, stderr) = run_relay_to_exit(&ns, &serve_args(root.path(), state.path(), &[]));
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("port 67 on br0 is in use, is dnsmasq running?"), "{stderr}");
}

/// Runs a relay that is expected to exit by itself; kills it and fails the
/// test if it is still running after 30 s. Returns (success, output).
fn run_relay_to_exit(ns: &NetNs, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out");
    let f = std::fs::File::create(&log).unwrap();
    let mut child = relay_command(ns, args)
        .stdin(std::process::Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.success(), std::fs::read_to_string(&log).unwrap());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("relay still running after 30 s:\n{}", std::fs::read_to_string(&log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
