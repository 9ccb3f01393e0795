//! The client against a real TFTP server: dnsmasq (installed on the build
//! machine), serving a temporary directory on port 69 of a loopback address
//! of its own. It serves nothing else: `--port=0` turns DNS off and without
//! a dhcp-range there is no DHCP.

use super::*;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::vec::Vec;

struct Dnsmasq {
    child: Child,
    addr: Ipv4Addr,
    root: PathBuf,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn dnsmasq(tag: u8, files: &[(&str, &[u8])]) -> Dnsmasq {
    // A loopback address of our own (all of 127/8 is local), so that
    // parallel tests and other users of port 69 do not meet us.
    let pid = std::process::id();
    let addr = Ipv4Addr::new(127, 77, (pid % 250) as u8 + 1, tag);
    let root = std::env::temp_dir().join(format!("bootproto-tftp-{pid}-{tag}"));
    std::fs::create_dir_all(&root).unwrap();
    for (name, data) in files {
        std::fs::write(root.join(name), data).unwrap();
    }
    let mut child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--log-facility=-",
            "--conf-file=/dev/null",
            "--port=0",
            "--enable-tftp",
            "--user=root",
            "--pid-file=",
            "--bind-interfaces",
        ])
        .arg(format!("--listen-address={addr}"))
        .arg(format!("--tftp-root={}", root.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dnsmasq is needed for this test (apt-get install dnsmasq)");
    // Ready when it says where its TFTP root is.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("dnsmasq exited before serving TFTP").unwrap();
        if line.contains("TFTP root is") {
            break;
        }
        assert!(!line.contains("failed") && !line.contains("FAILED"), "dnsmasq: {line}");
    }
    // Keep draining its log so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Dnsmasq { child, addr, root }
}

/// Fetches like the chainloader loop does, over a real UDP socket.
fn fetch(server: Ipv4Addr, req: &Request) -> (Result<Vec<u8>, Error>, Negotiated, u64) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let mut c = Client::new(req, now());
    c.set_timing(Timing { initial_ms: 300, max_ms: 1200, max_retries: 5 });
    let mut tx = vec![0u8; 1600];
    let mut rx = vec![0u8; 65536];
    let mut data: Vec<u8> = Vec::new();
    let mut handled = 0u64;
    let result = loop {
        while let Some(t) = c.poll_transmit(now(), &mut tx) {
            sock.send_to(&tx[..t.len], (server, t.dst_port)).unwrap();
        }
        if let Some(e) = c.error() {
            break Err(e.clone());
        }
        if c.is_done() {
            break Ok(core::mem::take(&mut data));
        }
        let wait = c.poll_at().map_or(1000, |d| d.saturating_sub(now())).max(1);
        sock.set_read_timeout(Some(Duration::from_millis(wait))).unwrap();
        let (n, from) = match sock.recv_from(&mut rx) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let SocketAddr::V4(from) = from else { continue };
        if *from.ip() != server {
            continue;
        }
        handled += 1;
        let mut sink = |off: u64, d: &[u8]| -> Result<(), SinkError> {
            assert_eq!(off as usize, data.len());
            data.extend_from_slice(d);
            Ok(())
        };
        match c.handle(now(), from.port(), &rx[..n], &mut sink) {
            Ok(_) => {}
            Err(e) => {
                while let Some(t) = c.poll_transmit(now(), &mut tx) {
                    sock.send_to(&tx[..t.len], (server, t.dst_port)).unwrap();
                }
                break Err(e);
            }
        }
    };
    (result, c.negotiated(), handled)
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    crate::xorshift::Xorshift64(seed | 1).bytes(n)
}

#[test]
fn dnsmasq_transfers() {
    let big = random(3_000_000, 1);
    let exact = random(1468 * 20, 2);
    let d = dnsmasq(1, &[("big.bin", &big), ("exact.bin", &exact), ("small.txt", b"hello")]);

    // Options: dnsmasq grants blksize and tsize; it does not know
    // windowsize and leaves it out, so the transfer is lockstep.
    let req = Request { filename: "/big.bin", blksize: Some(1468), windowsize: Some(8), ask_tsize: true };
    let (r, neg, _) = fetch(d.addr, &req);
    assert!(r.as_ref().is_ok_and(|v| *v == big), "{:?}", r.err());
    assert_eq!(neg, Negotiated { blksize: 1468, windowsize: 1, tsize: Some(3_000_000) });

    // Plain RFC 1350.
    let req = Request { filename: "small.txt", blksize: None, windowsize: None, ask_tsize: false };
    let (r, neg, _) = fetch(d.addr, &req);
    assert_eq!(r, Ok(b"hello".to_vec()));
    assert_eq!(neg.blksize, 512);

    // A file of whole blocks ends with an empty block.
    let req = Request { filename: "exact.bin", blksize: Some(1468), windowsize: None, ask_tsize: true };
    let (r, _, handled) = fetch(d.addr, &req);
    assert!(r.is_ok_and(|v| v == exact));
    assert_eq!(handled, 1 + 20 + 1, "OACK, 20 full blocks, 1 empty block");

    // A missing file: dnsmasq's own text.
    let req = Request { filename: "nautilus.bin", blksize: Some(1468), windowsize: None, ask_tsize: true };
    let (r, _, _) = fetch(d.addr, &req);
    match r {
        Err(Error::Remote { code: 1, message }) => assert!(message.contains("nautilus.bin"), "{message}"),
        other => panic!("expected TFTP error 1, got {other:?}"),
    }
}

#[test]
fn dnsmasq_block_number_rollover() {
    // 70,000 blocks of 16 bytes: dnsmasq's block numbers wrap past 65535.
    let data = random(16 * 70_000 + 5, 3);
    let d = dnsmasq(2, &[("wrap.bin", &data)]);
    let req = Request { filename: "wrap.bin", blksize: Some(16), windowsize: None, ask_tsize: true };
    let (r, neg, handled) = fetch(d.addr, &req);
    assert_eq!(neg.blksize, 16);
    assert!(r.is_ok_and(|v| v == data));
    assert!(handled > 70_000);
}
