//! The TFTP server on a real interface: inside a network namespace the
//! test creates, bound to port 69 and to one end of a veth pair (MTU
//! 1500); the clients run in a second namespace at the other end. Checks
//! that blksize is capped by the interface MTU (1500 - 32 = 1468), that
//! tftp-hpa and atftp fetch byte-exact files over the link, and that a
//! request reaching the server's namespace through another interface is
//! not answered. Needs root (network namespaces), as the e2e tests do.

mod tftp_common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use relay::tftp::{TftpConfig, TftpServer};
use tftp_common::*;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Moves the calling thread (and threads it spawns later) into namespace `ns`.
fn enter_ns(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    // SAFETY: a valid namespace fd; affects only the calling thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Link {
    server_ns: String,
    client_ns: String,
    server_if: String,
}

impl Link {
    fn new() -> Link {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "this test creates network namespaces and needs root");
        let id = std::process::id();
        let link = Link {
            server_ns: format!("rtftp-s-{id}"),
            client_ns: format!("rtftp-c-{id}"),
            server_if: format!("rtv{id}"),
        };
        let client_if = format!("rtc{id}");
        ip(&["netns", "add", &link.server_ns]);
        ip(&["netns", "add", &link.client_ns]);
        ip(&[
            "link",
            "add",
            &link.server_if,
            "netns",
            &link.server_ns,
            "type",
            "veth",
            "peer",
            "name",
            &client_if,
            "netns",
            &link.client_ns,
        ]);
        for (ns, dev, addr) in
            [(&link.server_ns, &link.server_if, "10.231.0.1/24"), (&link.client_ns, &client_if, "10.231.0.2/24")]
        {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "mtu", "1500", "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        link
    }

    fn client(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.client_ns, program]).args(args).output().unwrap()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn serves_over_a_real_interface_with_mtu_capped_blksize() {
    init_logs();
    let link = Link::new();
    let root = tempfile::tempdir().unwrap();
    let content = pattern(3 * 1024 * 1024 + 11, 21);
    std::fs::write(root.path().join("kernel.elf"), &content).unwrap();

    let (tx, rx) = mpsc::channel();
    let cfg = TftpConfig {
        root: root.path().to_path_buf(),
        bind: SocketAddr::from((SERVER_IP, 69)),
        interface: Some(link.server_if.clone()),
        max_transfers: 8,
        max_blksize: 65464,
    };
    let server_ns = link.server_ns.clone();
    std::thread::spawn(move || {
        enter_ns(&server_ns);
        let server = TftpServer::bind(cfg).unwrap();
        tx.send(server.local_addr()).unwrap();
        server.run()
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).expect("server did not start");
    assert_eq!(addr, SocketAddr::from((SERVER_IP, 69)));

    // atftp asks for the largest blksize; the OACK must say 1468.
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("atftp.elf");
    let res = link.client(
        "atftp",
        &[
            "--trace",
            "--get",
            "-r",
            "kernel.elf",
            "-l",
            dest.to_str().unwrap(),
            "--option",
            "blksize 65464",
            "--option",
            "windowsize 16",
            "--option",
            "tsize enable",
            "10.231.0.1",
            "69",
        ],
    );
    let said = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(res.status.success(), "atftp failed: {said}");
    assert!(said.contains("blksize: 1468"), "blksize not capped to the MTU: {said}");
    assert!(std::fs::read(&dest).unwrap() == content, "atftp copy differs");

    let dest = out.path().join("hpa.elf");
    let res =
        link.client("tftp", &["10.231.0.1", "69", "-m", "binary", "-c", "get", "kernel.elf", dest.to_str().unwrap()]);
    assert!(res.status.success(), "tftp-hpa failed: {}", String::from_utf8_lossy(&res.stdout));
    assert!(std::fs::read(&dest).unwrap() == content, "tftp-hpa copy differs");

    // From inside the server's namespace the address is reached over lo,
    // not over the bound interface: no answer.
    let (tx, rx) = mpsc::channel();
    let server_ns = link.server_ns.clone();
    std::thread::spawn(move || {
        enter_ns(&server_ns);
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.send_to(&rrq(b"kernel.elf", b"octet", &[]), SocketAddr::from((SERVER_IP, 69))).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        let mut buf = [0u8; 600];
        tx.send(sock.recv_from(&mut buf).is_ok()).unwrap();
    });
    assert!(!rx.recv_timeout(Duration::from_secs(10)).unwrap(), "answered a request from another interface");
}
