//! A real PXE client against the TFTP server: QEMU's e1000 with its iPXE
//! PXE ROM boots PXELINUX from the relay's TFTP server. The ROM's own TFTP
//! client fetches pxelinux.0; PXELINUX then uses the PXE TFTP API (tsize,
//! blksize) for ldlinux.c32, the config search (several misses, then
//! `default`) and a 3 MiB file. dnsmasq gives out the lease only (its TFTP
//! is off), inside a network namespace this test creates. Needs root.

mod tftp_common;

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use relay::tftp::{TftpConfig, TftpServer};
use tftp_common::pattern;

/// Collects the server's log lines so the test can check transfers.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        std::io::stderr().write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// The namespace and the processes in it; all removed on drop.
struct Lab {
    ns: String,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn wait_for(path: &std::path::Path, needle: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if text.contains(needle) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            return Err(text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ipxe_pxe_rom_boots_pxelinux_from_the_relay() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test creates a network namespace and needs root");
    for f in ["/usr/lib/PXELINUX/pxelinux.0", "/usr/lib/syslinux/modules/bios/ldlinux.c32"] {
        assert!(std::path::Path::new(f).exists(), "{f} missing: install pxelinux and syslinux-common");
    }
    let logs = LogBuf::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .event_format(relay::log::HumanLine::plain())
        .with_writer(move || writer.clone())
        .with_env_filter("info")
        .init();

    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
    std::fs::copy("/usr/lib/PXELINUX/pxelinux.0", root.join("pxelinux.0")).unwrap();
    std::fs::copy("/usr/lib/syslinux/modules/bios/ldlinux.c32", root.join("ldlinux.c32")).unwrap();
    let big = pattern(3 * 1024 * 1024 + 5, 31);
    std::fs::write(root.join("bigfile"), &big).unwrap();
    std::fs::write(
        root.join("pxelinux.cfg/default"),
        "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT big\nLABEL big\n  KERNEL bigfile\n",
    )
    .unwrap();

    let ns = format!("rtftp-pxe-{}", std::process::id());
    ip(&["netns", "add", &ns]);
    let mut lab = Lab { ns: ns.clone(), children: vec![] };
    for args in [
        &["link", "set", "lo", "up"][..],
        &["link", "add", "br0", "type", "bridge"],
        &["addr", "add", "10.78.0.1/24", "dev", "br0"],
        &["addr", "add", "fd78::1/64", "dev", "br0"],
        &["link", "set", "br0", "up"],
        &["tuntap", "add", "tap0", "mode", "tap"],
        &["link", "set", "tap0", "master", "br0"],
        &["link", "set", "tap0", "up"],
    ] {
        let mut full = vec!["-n", &ns];
        full.extend_from_slice(args);
        ip(&full);
    }

    // The TFTP server, in the namespace, on br0 port 69.
    let (tx, rx) = mpsc::channel();
    let (server_ns, server_root) = (ns.clone(), root.clone());
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{server_ns}")).unwrap();
        // SAFETY: a valid namespace fd; affects only this thread and the
        // transfer threads it spawns.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let server = TftpServer::bind(TftpConfig {
            root: server_root,
            bind: "10.78.0.1:69".parse().unwrap(),
            interface: Some("br0".into()),
            max_transfers: 8,
            max_blksize: 1468,
        });
        match server {
            Ok(s) => {
                tx.send(Ok(s.local_addr())).unwrap();
                let _ = s.run();
            }
            Err(e) => tx.send(Err(format!("{e:#}"))).unwrap(),
        }
    });
    let addr: SocketAddr = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(addr.port(), 69);

    // dnsmasq for the lease only: --port=0 (no DNS), no --enable-tftp.
    // Option 60 "PXEClient" in the offer spares the ROM its ProxyDHCP wait,
    // and a router advertisement its IPv6 wait.
    let leases = work.path().join("leases");
    let dnsmasq = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=br0",
            "--bind-interfaces",
        ])
        .args([
            "--dhcp-range=10.78.0.100,10.78.0.150,1h",
            "--dhcp-boot=pxelinux.0,,10.78.0.1",
            "--dhcp-option-force=60,PXEClient",
            "--no-ping",
        ])
        .args(["--enable-ra", "--dhcp-range=fd78::,ra-only"])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(dnsmasq);

    let console = work.path().join("console.log");
    let qemu = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-display",
            "none",
            "-nodefaults",
            "-boot",
            "n",
            "-no-reboot",
        ])
        .args(["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device", "e1000,netdev=n0"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lab.children.push(qemu);

    // PXELINUX prints on COM1 once its config (fetched over TFTP) has said
    // SERIAL; then it loads `bigfile` as a kernel, and refuses to boot it
    // (it is not one).
    let started = Instant::now();
    wait_for(&console, "Loading bigfile... ok", Duration::from_secs(120)).unwrap_or_else(|c| {
        panic!("PXELINUX did not load bigfile over TFTP; console:\n{c}\nserver log:\n{}", logs.text())
    });
    eprintln!("PXELINUX loaded bigfile {:.1} s after QEMU started", started.elapsed().as_secs_f64());
    let log = logs.text();
    let sent_whole = format!(" bytes={} ", big.len());
    assert!(log.lines().any(|l| l.contains(" bigfile: sent") && l.contains(&sent_whole)), "{log}");
    assert!(log.contains(" pxelinux.0: sent"), "{log}");
    assert!(log.contains(" ldlinux.c32: sent"), "{log}");
    assert!(log.contains(" pxelinux.cfg/default: sent"), "{log}");
    eprintln!("bigfile sent after {:.1} s", started.elapsed().as_secs_f64());
}
