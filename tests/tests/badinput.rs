//! Bad input to chainloader.0: kernels it must not load, files that do not
//! fit, broken configs, servers that break their protocol (a DHCP server
//! with garbage options, a TFTP server that sends blocks of the wrong size
//! or ends a file early, an HTTP server whose Content-Length is wrong).
//! Each ends in chainloader.0's own message and its reboot countdown, or in
//! a boot where the protocol allows one; never in a hang or a kernel run
//! on wrong bytes. Servers that misbehave are small ones written here.
//!
//! `scripts/test` runs two (a Content-Length too short, a module larger
//! than memory); the others are run by `scripts/stress` (most of the rules
//! they exercise are unit-tested in bootproto as well).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::qemu::{Qemu, QemuConfig};
use e2e::{dist, pattern, tftp_root, want_module, write_file};

const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(60);

/// chainloader.0's failure: the line `chainloader: <message>` (a regex),
/// then the countdown; no kernel ran.
fn expect_failure(q: &Qemu, message: &str) -> String {
    let line = q.expect(&format!("chainloader: {message}"), BOOT);
    q.expect(r"rebooting in \d+ s", SHORT);
    assert!(!q.output().contains("MBI-CHECK"), "a kernel ran:\n{}", q.output());
    eprintln!("{line}");
    line
}

// ------------------------------------------------------------------- HTTP

/// What the test's HTTP server does with one path.
#[derive(Clone, Copy)]
enum Body {
    /// Content-Length right, keep-alive.
    Right,
    /// Content-Length `short` bytes less than the body it sends (all of it),
    /// keep-alive: the rest is junk before the next response.
    LengthShort(usize),
    /// Content-Length `long` bytes more than the body it sends, then close.
    LengthLong(usize),
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1 (QEMU's user network reaches
/// it at 10.0.2.2) serving `files` by path, each as its `Body` says.
/// Returns the port and the count of requests per path (in `files` order).
fn http_server(files: Vec<(&'static str, Vec<u8>, Body)>) -> (u16, Arc<Vec<AtomicUsize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(files.iter().map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let (files, a) = (Arc::new(files), asked.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let (files, asked) = (files.clone(), a.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match c.read(&mut b) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&b[..n]),
                        }
                        continue;
                    };
                    let req = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
                    let Some(i) = files.iter().position(|f| f.0 == path) else {
                        let _ = c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                        continue;
                    };
                    asked[i].fetch_add(1, Ordering::SeqCst);
                    let (_, data, how) = &files[i];
                    let (length, close) = match *how {
                        Body::Right => (data.len(), false),
                        Body::LengthShort(n) => (data.len() - n, false),
                        Body::LengthLong(n) => (data.len() + n, true),
                    };
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
                    if c.write_all(head.as_bytes()).and_then(|_| c.write_all(data)).is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (port, asked)
}

/// Content-Length shorter than what the server sends: the body is what
/// Content-Length says (RFC 9112, 6.3), and the bytes after it are the
/// start of the next response on the connection, which is garbage; the
/// next file is then fetched again on a new connection.
#[test]
fn http_content_length_too_short_gives_that_many_bytes_and_a_new_connection() {
    let kernel = std::fs::read(dist("kernel.elf")).unwrap();
    let m1 = pattern(300_000, 51);
    let m2 = pattern(200_000, 52);
    let (port, asked) = http_server(vec![
        ("/kernel.elf", kernel, Body::Right),
        ("/m1.bin", m1.clone(), Body::LengthShort(1000)),
        ("/m2.bin", m2.clone(), Body::Right),
    ]);
    let root = tftp_root();
    write_file(
        root.path(),
        "chainloader.cfg/default",
        format!(
            "kernel http://10.0.2.2:{port}/kernel.elf exit\nmodule http://10.0.2.2:{port}/m1.bin one\n\
             module http://10.0.2.2:{port}/m2.bin two\n"
        ),
    );
    let q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    let out = q.expect_self_check_ok(BOOT);
    want_module(&out, "one", &m1[..m1.len() - 1000]);
    want_module(&out, "two", &m2);
    let retried = out.lines().find(|l| l.contains("m2.bin: ") && l.contains("(attempt 1 of 3)"));
    eprintln!("m2.bin after the junk: {retried:?}");
    assert!(retried.is_some(), "the junk was not noticed:\n{out}");
    assert_eq!(asked[2].load(Ordering::SeqCst), 2, "m2.bin asked for twice");
}

/// Content-Length longer than the body, then the server closes: truncated,
/// retried three times, then the message and the countdown.
#[test]
#[ignore = "slow: scripts/stress"]
fn http_content_length_too_long_ends_in_the_countdown() {
    let kernel = std::fs::read(dist("kernel.elf")).unwrap();
    let m = pattern(300_000, 53);
    let (port, asked) =
        http_server(vec![("/kernel.elf", kernel, Body::Right), ("/m.bin", m.clone(), Body::LengthLong(4096))]);
    let root = tftp_root();
    write_file(
        root.path(),
        "chainloader.cfg/default",
        format!("kernel http://10.0.2.2:{port}/kernel.elf exit\nmodule http://10.0.2.2:{port}/m.bin m\n"),
    );
    let q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    q.expect(r"m\.bin: [^\n]*300000 of 304096 bytes[^\n]*\(attempt 1 of 3\)", BOOT);
    expect_failure(&q, r"http://10\.0\.2\.2:\d+/m\.bin: [^\n]*300000 of 304096 bytes");
    assert_eq!(asked[1].load(Ordering::SeqCst), 3, "m.bin asked for three times");
}

// ---------------------------------------------------------------- kernels

/// A kernel composed by tests/harness/mbgen.rs from `layout` and `tags`.
fn mbgen_kernel(name: &'static str, layout: e2e::mbgen::Layout, tags: Vec<e2e::mbgen::Tag>) -> Vec<u8> {
    let v = e2e::mbgen::Variant { name, layout, tags, expect: e2e::mbgen::Expect::Boot };
    e2e::mbgen::Blob::dist().compose(&v).file
}

/// Boots `kernel` (with `module`, if any) through chainloader.0 on QEMU's
/// user network with `memory_mib` of RAM.
fn boot_files(kernel: &[u8], module: Option<&[u8]>, memory_mib: u32) -> (tempfile::TempDir, Qemu) {
    let root = tftp_root();
    write_file(root.path(), "bad.elf", kernel);
    let mut cfg = "kernel bad.elf\n".to_string();
    if let Some(m) = module {
        write_file(root.path(), "m.bin", m);
        cfg += "module m.bin m\n";
    }
    write_file(root.path(), "chainloader.cfg/default", cfg);
    let mut c = QemuConfig::user_net(root.path(), "chainloader.0");
    c.memory_mib = memory_mib;
    let q = Qemu::start(&c);
    (root, q)
}

/// Segments over chainloader.0 itself (an a.out-kludge kernel at 64 KiB,
/// inside the loader's 0x7c00-0x7c000), and over memory that is not RAM
/// (an ELF kernel at 3 GiB on a 128 MiB machine): each is refused with the
/// range, and the countdown follows.
#[test]
#[ignore = "slow: scripts/stress"]
fn kernel_segments_over_the_loader_or_outside_ram_are_refused() {
    use e2e::mbgen::{Layout, Tag, V};
    let address =
        Tag::Address { header_addr: V::Auto, load_addr: V::Auto, load_end_addr: V::Auto, bss_end_addr: V::Auto };
    let entry = Tag::Entry { addr: V::Auto, size: 12, optional: false };
    let over_loader = mbgen_kernel("over_loader", Layout::flat(0x1_0000), vec![address, entry]);
    let (_root, q) = boot_files(&over_loader, None, 128);
    expect_failure(&q, r"bad\.elf: kernel segment \S+ overlaps reserved memory \S+ \(chainloader\)");
    drop(q);
    let outside = mbgen_kernel("outside_ram", Layout { base: 0xc000_0000, ..Layout::elf32() }, vec![]);
    let (_root, q) = boot_files(&outside, None, 128);
    expect_failure(&q, r"bad\.elf: kernel segment \S+ is not in usable RAM \(E820\)");
}

/// A module larger than the machine's memory (80 MiB on a 64 MiB machine):
/// the download is refused before it starts (its size is known), and the
/// message says so, without asking again (until this test, three times).
#[test]
fn module_larger_than_memory_is_refused() {
    let kernel = std::fs::read(dist("kernel.elf")).unwrap();
    let (_root, q) = boot_files(&kernel, Some(&vec![0x5a; 80 << 20]), 64);
    expect_failure(&q, r"m\.bin: file too large: 83886080 bytes, at most \d+ fit");
    assert!(!q.output().contains("(attempt 1 of"), "asking again cannot help:\n{}", q.output());
}

// ----------------------------------------------------------------- config

/// A config with several errors: the message gives the first one's line.
#[test]
#[ignore = "slow: scripts/stress"]
fn config_with_several_errors_names_the_first_line() {
    let root = tftp_root();
    write_file(
        root.path(),
        "chainloader.cfg/default",
        "# two kernels, a module without a path and a word nobody knows\n\nkernel kernel.elf\n\
         module\nfrobnicate\nkernel kernel.elf again\n",
    );
    let q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    expect_failure(&q, r"chainloader\.cfg/default: [^\n]*line 4: module: missing PATH");
}

// ------------------------------------------------------------------- TFTP

/// What the test's TFTP server does wrong in one file.
#[derive(Clone, Copy, Debug)]
enum Tftp {
    /// Serves it right.
    Right,
    /// Block `at` is 100 bytes longer than the block size it granted.
    Oversized { at: u16 },
    /// Block `at` is half a block: by RFC 1350 the file's end, though its
    /// tsize (RFC 2349) said the file is longer.
    EndsEarly { at: u16 },
}

/// The block size the test's TFTP server grants (chainloader.0 asks for
/// 1468): small enough that an oversized block still fits one frame.
const GRANTED_BLKSIZE: usize = 512;

/// A lockstep TFTP server (RFC 1350, with blksize and tsize, RFC 2347-2349)
/// on `addr`:69 inside namespace `ns`, serving `files` by name, each as its
/// `Tftp` says; other names get ERROR 1. Returns the count of read requests
/// per file.
fn tftp_server(ns: &str, addr: &'static str, files: Vec<(&'static str, Vec<u8>, Tftp)>) -> Arc<Vec<AtomicUsize>> {
    use std::net::UdpSocket;
    let asked = Arc::new(files.iter().map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let (ns, files, a) = (ns.to_string(), Arc::new(files), asked.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        e2e::impair::enter_netns(&ns);
        let s = UdpSocket::bind((addr, 69)).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, client)) = s.recv_from(&mut buf) else { continue };
            let fields: Vec<String> =
                buf[2..n].split(|&b| b == 0).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            if n < 4 || buf[..2] != [0, 1] || fields.is_empty() {
                continue;
            }
            let name = fields[0].trim_start_matches('/').to_string();
            let options = fields.get(2..).unwrap_or(&[]).to_vec();
            let (files, asked) = (files.clone(), a.clone());
            // A thread started here is in the namespace too (threads
            // inherit the creator's).
            std::thread::spawn(move || {
                let t = UdpSocket::bind((addr, 0)).unwrap();
                t.connect(client).unwrap();
                t.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                let Some(i) = files.iter().position(|f| f.0 == name) else {
                    let _ = t.send(b"\x00\x05\x00\x01File not found\x00");
                    return;
                };
                asked[i].fetch_add(1, Ordering::SeqCst);
                serve_tftp(&t, &files[i].1, files[i].2, &options);
            });
        }
    });
    rx.recv().unwrap();
    asked
}

/// One read transfer on `t` (connected to the client).
fn serve_tftp(t: &std::net::UdpSocket, data: &[u8], how: Tftp, options: &[String]) {
    // Sends `packet` until the client ACKs block `block` (or gives up).
    let send_until_acked = |packet: &[u8], block: u16| -> bool {
        let mut ack = [0u8; 516];
        for _ in 0..8 {
            if t.send(packet).is_err() {
                return false;
            }
            while let Ok(n) = t.recv(&mut ack) {
                match ack[..n] {
                    [0, 4, hi, lo] if u16::from_be_bytes([hi, lo]) == block => return true,
                    [0, 5, ..] => return false,
                    _ => {}
                }
            }
        }
        false
    };
    let mut blksize = 512;
    let asked: Vec<&str> = options.iter().map(|s| s.as_str()).collect();
    if !asked.is_empty() {
        let mut oack = vec![0u8, 6];
        for pair in asked.chunks(2) {
            let value = match pair[0].to_ascii_lowercase().as_str() {
                "blksize" => {
                    blksize = GRANTED_BLKSIZE;
                    GRANTED_BLKSIZE.to_string()
                }
                "tsize" => data.len().to_string(),
                _ => continue,
            };
            oack.extend_from_slice(pair[0].as_bytes());
            oack.push(0);
            oack.extend_from_slice(value.as_bytes());
            oack.push(0);
        }
        if oack.len() > 2 && !send_until_acked(&oack, 0) {
            return;
        }
    }
    let mut off = 0;
    for block in 1u16.. {
        let mut len = blksize.min(data.len() - off);
        let mut payload = data[off..off + len].to_vec();
        match how {
            Tftp::Oversized { at } if at == block => payload.extend_from_slice(&[0xee; 100]),
            Tftp::EndsEarly { at } if at == block => {
                len = blksize / 2;
                payload.truncate(len);
            }
            _ => {}
        }
        let mut packet = vec![0u8, 3];
        packet.extend_from_slice(&block.to_be_bytes());
        packet.extend_from_slice(&payload);
        if !send_until_acked(&packet, block) || len < blksize {
            return;
        }
        off += len;
    }
}

/// dnsmasq (DHCP, and TFTP of chainloader.0 for the PXE ROM) on the
/// namespace's link; chainloader.0 is told (next-server, option 209) to
/// get its config and files from the test's TFTP server at 10.77.0.2,
/// which serves `files` (the config and the kernel rightly).
struct FromTestTftp {
    q: Qemu,
    /// Read requests per file: config, kernel, module.
    asked: Arc<Vec<AtomicUsize>>,
    _ns: e2e::netns::NetNs,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn boot_from_test_tftp(module: (&'static str, Vec<u8>, Tftp)) -> FromTestTftp {
    let root = tftp_root();
    let state = tempfile::tempdir().unwrap();
    let mut ns = e2e::netns::NetNs::new();
    // On lo, not br0, so that dnsmasq (bound to br0's addresses) leaves it
    // alone; the host still answers ARP for it on the bridge.
    ns.exec(&["ip", "addr", "add", "10.77.0.2/32", "dev", "lo"]);
    let cfg = format!("kernel kernel.elf exit\nmodule {} m\n", module.0);
    let files = vec![
        ("test.cfg", cfg.into_bytes(), Tftp::Right),
        ("kernel.elf", std::fs::read(dist("kernel.elf")).unwrap(), Tftp::Right),
        module,
    ];
    let asked = tftp_server(&ns.name, "10.77.0.2", files);
    e2e::dnsmasq::start(
        &mut ns,
        root.path(),
        state.path(),
        "chainloader.0",
        &["--except-interface=lo", "--dhcp-boot=tag:chain,test.cfg,,10.77.0.2", "--dhcp-option=tag:chain,209,test.cfg"],
    );
    let q = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    q.expect(r"TFTP server 10\.77\.0\.2", BOOT);
    FromTestTftp { q, asked, _ns: ns, _dirs: (root, state) }
}

/// A block longer than the block size granted: the transfer is aborted
/// with the block's number and sizes, retried, then the countdown.
#[test]
#[ignore = "slow: scripts/stress"]
fn tftp_block_longer_than_the_block_size_ends_in_the_countdown() {
    let t = boot_from_test_tftp(("m.bin", pattern(40_000, 61), Tftp::Oversized { at: 5 }));
    let (q, asked) = (&t.q, &t.asked);
    q.expect(r"m\.bin: [^\n]*block 5 has 612 bytes, the block size is 512[^\n]*\(attempt 1 of 3\)", BOOT);
    expect_failure(q, r"m\.bin: [^\n]*block 5 has 612 bytes, the block size is 512");
    assert_eq!(asked[2].load(Ordering::SeqCst), 3, "m.bin asked for three times");
}

/// A short block in the middle of a file whose tsize said more: by RFC
/// 1350 the file ends there, so it is not the file the server announced;
/// it must not be booted as if whole. (Until this test, chainloader.0
/// booted the kernel with the first 2304 bytes of the 40000-byte module.)
#[test]
#[ignore = "slow: scripts/stress"]
fn tftp_file_ending_before_its_tsize_ends_in_the_countdown() {
    let t = boot_from_test_tftp(("m.bin", pattern(40_000, 62), Tftp::EndsEarly { at: 5 }));
    let (q, asked) = (&t.q, &t.asked);
    let short = r"the file ended after 2304 bytes, but the server announced 40000 \(tsize\)";
    q.expect(&format!(r"m\.bin: [^\n]*{short}[^\n]*\(attempt 1 of 3\)"), BOOT);
    expect_failure(q, &format!(r"m\.bin: [^\n]*{short}"));
    assert_eq!(asked[2].load(Ordering::SeqCst), 3, "m.bin asked for three times");
}

// ------------------------------------------------------------------- DHCP

/// A DHCP server in namespace `ns` (the only one there) that answers the
/// PXE ROM rightly (10.77.0.150, boot file chainloader.0 from 10.77.0.1)
/// and chainloader.0 (user class "chainloader") with `junk` appended to
/// the same options. Replies are broadcast. Runs until the test ends.
fn junk_dhcp_server(ns: &str, junk: Vec<u8>) {
    let (ns, (tx, rx)) = (ns.to_string(), std::sync::mpsc::channel());
    std::thread::spawn(move || {
        e2e::impair::enter_netns(&ns);
        // Bound to the bridge: the namespace has no route for the limited
        // broadcast the replies go to.
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.bind_device(Some(b"br0")).unwrap();
        s.set_broadcast(true).unwrap();
        s.bind(&std::net::SocketAddr::from(([0, 0, 0, 0], 67)).into()).unwrap();
        let s: std::net::UdpSocket = s.into();
        tx.send(()).unwrap();
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, _)) = s.recv_from(&mut buf) else { continue };
            let req = &buf[..n];
            if n < 240 || req[0] != 1 || req[236..240] != [99, 130, 83, 99] {
                continue;
            }
            // The request's options: type (53) and user class (77).
            let (mut kind, mut chainloader, mut i) = (0, false, 240);
            while i + 1 < n && req[i] != 255 {
                if req[i] == 0 {
                    i += 1;
                    continue;
                }
                let (code, len) = (req[i], req[i + 1] as usize);
                let data = &req[(i + 2).min(n)..(i + 2 + len).min(n)];
                match code {
                    53 => kind = data.first().copied().unwrap_or(0),
                    77 => chainloader |= data.windows(11).any(|w| w == b"chainloader"),
                    _ => {}
                }
                i += 2 + len;
            }
            let reply_kind = match kind {
                1 => 2, // DISCOVER -> OFFER
                3 => 5, // REQUEST -> ACK
                _ => continue,
            };
            let mut p = vec![0u8; 240];
            p[..4].copy_from_slice(&[2, 1, 6, 0]);
            p[4..8].copy_from_slice(&req[4..8]); // xid
            p[10] = 0x80; // broadcast
            p[16..20].copy_from_slice(&[10, 77, 0, 150]); // yiaddr
            p[20..24].copy_from_slice(&[10, 77, 0, 1]); // siaddr
            p[28..44].copy_from_slice(&req[28..44]); // chaddr
            if !chainloader {
                p[108..108 + 13].copy_from_slice(b"chainloader.0");
            }
            p[236..240].copy_from_slice(&[99, 130, 83, 99]);
            p.extend_from_slice(&[53, 1, reply_kind, 54, 4, 10, 77, 0, 1, 51, 4, 0, 0, 14, 16, 1, 4, 255, 255, 255, 0]);
            if chainloader {
                p.extend_from_slice(&junk);
            } else {
                p.push(255);
            }
            let _ = s.send_to(&p, "255.255.255.255:68");
        }
    });
    rx.recv().unwrap();
}

/// Boots with `junk` in chainloader.0's DHCP answers (see
/// `junk_dhcp_server`); returns chainloader.0's DHCP line.
fn boot_with_junk_dhcp(junk: Vec<u8>) -> String {
    let root = tftp_root();
    let ns = e2e::netns::NetNs::new();
    junk_dhcp_server(&ns.name, junk);
    let mut files: Vec<_> =
        ["chainloader.0", "kernel.elf"].map(|f| (f, std::fs::read(root.path().join(f)).unwrap(), Tftp::Right)).into();
    files.push(("chainloader.cfg/default", b"kernel kernel.elf exit via=junk-dhcp\n".to_vec(), Tftp::Right));
    let _asked = tftp_server(&ns.name, "10.77.0.1", files);
    let q = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    let dhcp = q.expect(r"DHCP: (\d+ ms|no answer after \d+ s, using the PXE ROM.s cached DHCPACK)", SHORT);
    eprintln!("{dhcp}");
    q.expect(r"IP 10\.77\.0\.150/24, gateway none, TFTP server 10\.77\.0\.1", SHORT);
    let out = q.expect_self_check_ok(SHORT);
    assert!(out.contains(r#"MBI cmdline="exit via=junk-dhcp""#), "{out}");
    assert!(out.contains("config chainloader.cfg/default: kernel kernel.elf"), "{out}");
    dhcp
}

/// Options that are well-formed TLVs with garbage in them: option 209 and
/// 210 not UTF-8, option 67 of 255 bytes (the BOOTP field holds 128), a
/// router of two bytes, a second netmask of three, an unknown option of
/// 255 random bytes, pads between them, and no end option. chainloader.0
/// takes what it can use (its address) from its own DHCP, ignores the
/// rest, finds its config by PXELINUX's names, and boots.
#[test]
#[ignore = "slow: scripts/stress"]
fn dhcp_answer_with_garbage_options_still_boots() {
    let mut junk =
        vec![209, 5, 0xff, 0xfe, 0x00, 0x80, 0xc3, 0, 0, 210, 8, 0x80, 0x81, 0x82, 0xc0, 0xc1, 0xf5, 0xff, 0];
    junk.extend_from_slice(&[67, 255]);
    junk.extend_from_slice(&[b'x'; 255]);
    junk.extend_from_slice(&[3, 2, 10, 77, 1, 3, 255, 255, 0, 250, 255]);
    junk.extend(pattern(255, 71));
    let dhcp = boot_with_junk_dhcp(junk);
    assert!(!dhcp.contains("cached"), "its own DHCP answer was not used: {dhcp}");
}

/// An option whose length runs past the end of the packet, after an
/// option 52 (overload) that says the file and sname fields hold options
/// (they hold zeros and a boot file name): the answer may be dropped as
/// malformed, and then the PXE ROM's cached DHCPACK is used; either way
/// the machine boots. Slow (scripts/stress).
#[test]
#[ignore = "slow: scripts/stress"]
fn dhcp_answer_with_an_option_past_the_end_still_boots() {
    let junk = vec![52, 1, 3, 209, 200, b'c', b'f', b'g'];
    boot_with_junk_dhcp(junk);
}
