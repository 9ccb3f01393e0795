//! TFTP server behaviour with real packets on loopback: option
//! negotiation, transfers, path-escape attempts, hostile input,
//! concurrency limit, retransmission, duplicate ACKs, unknown TIDs.

mod tftp_common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tftp_common::*;

fn opts(reply: &Reply) -> Vec<(String, String)> {
    match reply {
        Reply::Oack(o) => o.clone(),
        other => panic!("expected OACK, got {other:?}"),
    }
}

#[test]
fn no_options_gives_a_plain_512_byte_transfer() {
    let content = pattern(1500, 1);
    let fx = start(4, 1468, |root| std::fs::write(root.join("f.bin"), &content).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"f.bin", b"octet", &[]));
    // No OACK: DATA block 1 comes straight away, 512 bytes.
    let first = c.recv();
    assert_eq!(first, Reply::Data(1, content[..512].to_vec()));
    assert_ne!(c.tid.unwrap().port(), fx.addr.port(), "a transfer must use a fresh port");
    c.send(&ack(1));
    assert_eq!(c.recv(), Reply::Data(2, content[512..1024].to_vec()));
    c.send(&ack(2));
    assert_eq!(c.recv(), Reply::Data(3, content[1024..].to_vec()));
    c.send(&ack(3));
}

#[test]
fn negotiates_blksize_tsize_windowsize_timeout() {
    let content = pattern(10_000, 2);
    let fx = start(4, 1468, |root| std::fs::write(root.join("kernel.elf"), &content).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(
        b"kernel.elf",
        b"OCTET",
        &[
            ("blksize", "1024"),
            ("tsize", "0"),
            ("windowsize", "4"),
            ("timeout", "3"),
            ("multicast", ""),
            ("x-vendor", "1"),
        ],
    ));
    let granted = opts(&c.recv());
    let expect: Vec<(String, String)> =
        [("blksize", "1024"), ("tsize", "10000"), ("windowsize", "4"), ("timeout", "3")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(granted, expect);
    c.send(&ack(0));
    // A window of four blocks arrives back to back before any ACK.
    for block in 1..=4u16 {
        let start = (block as usize - 1) * 1024;
        assert_eq!(c.recv(), Reply::Data(block, content[start..start + 1024].to_vec()));
    }
    assert_eq!(c.recv_within(Duration::from_millis(200)), None, "more than a window in flight");
    c.send(&ack(4));
    let mut rest = Vec::new();
    for block in 5..=8u16 {
        match c.recv() {
            Reply::Data(b, p) => {
                assert_eq!(b, block);
                rest.extend(p);
            }
            other => panic!("{other:?}"),
        }
    }
    c.send(&ack(8));
    // 10000 bytes = 9 full blocks and a short 10th: the last window is short.
    for block in 9..=10u16 {
        match c.recv() {
            Reply::Data(b, p) => {
                assert_eq!(b, block);
                rest.extend(p);
            }
            other => panic!("{other:?}"),
        }
    }
    c.send(&ack(10));
    assert!(rest == content[4096..], "content differs");
}

#[test]
fn blksize_is_capped_and_out_of_range_options_are_not_granted() {
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), pattern(3000, 3)).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"f", b"octet", &[("BLKSIZE", "65464"), ("windowsize", "100000"), ("timeout", "0")]));
    assert_eq!(opts(&c.recv()), vec![("blksize".to_string(), "1468".to_string())]);
    c.send(&ack(0));
    let data = c.download(1468, 1, false);
    assert_eq!(data, pattern(3000, 3));

    // windowsize is capped at 64; blksize below 8 is refused (not granted).
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"f", b"octet", &[("blksize", "7"), ("windowsize", "1000")]));
    assert_eq!(opts(&c.recv()), vec![("windowsize".to_string(), "64".to_string())]);
    c.send(&error(8, "bye"));

    // Only unknown options: no OACK at all.
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"f", b"octet", &[("rollover", "0"), ("utimeout", "5000")]));
    assert!(matches!(c.recv(), Reply::Data(1, p) if p.len() == 512));
}

#[test]
fn tsize_probe_then_error_8_then_real_transfer() {
    // The PXE ROM pattern: ask tsize, abort with ERROR 8, ask again.
    let content = pattern(70_000, 4);
    let fx = start(4, 1468, |root| std::fs::write(root.join("chainloader.0"), &content).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"chainloader.0", b"octet", &[("tsize", "0")]));
    assert_eq!(opts(&c.recv()), vec![("tsize".to_string(), "70000".to_string())]);
    c.send(&error(8, "tsize only"));
    c.send_request(&rrq(b"chainloader.0", b"octet", &[("tsize", "0"), ("blksize", "1432")]));
    let data = c.download(1432, 1, true);
    assert_eq!(data, content);
}

#[test]
fn block_numbers_roll_over_past_65535() {
    // blksize 8 makes 65536+ blocks from half a megabyte.
    let len = 8 * 65_600 + 3;
    let content = pattern(len, 5);
    let fx = start(4, 1468, |root| std::fs::write(root.join("big"), &content).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"big", b"octet", &[("blksize", "8"), ("windowsize", "32")]));
    let data = c.download(8, 32, true);
    assert_eq!(data.len(), content.len());
    assert!(data == content, "content differs after rollover");
}

#[test]
fn empty_and_exact_multiple_files_end_with_a_short_block() {
    let fx = start(4, 1468, |root| {
        std::fs::write(root.join("empty"), b"").unwrap();
        std::fs::write(root.join("k512"), pattern(512, 6)).unwrap();
    });
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"empty", b"octet", &[]));
    assert_eq!(c.recv(), Reply::Data(1, vec![]));
    c.send(&ack(1));
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"k512", b"octet", &[]));
    assert_eq!(c.recv(), Reply::Data(1, pattern(512, 6)));
    c.send(&ack(1));
    assert_eq!(c.recv(), Reply::Data(2, vec![]));
    c.send(&ack(2));
}

fn expect_error(fx: &Fixture, name: &[u8], code: u16) -> String {
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(name, b"octet", &[("tsize", "0")]));
    match c.recv() {
        Reply::Error(got, msg) => {
            assert_eq!(got, code, "{:?}: {msg}", String::from_utf8_lossy(name));
            msg
        }
        other => panic!("{:?}: expected ERROR {code}, got {other:?}", String::from_utf8_lossy(name)),
    }
}

#[test]
fn path_escapes_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"outside the root").unwrap();
    let outside_path = outside.path().to_path_buf();
    let fx = start(4, 1468, |root| {
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/ok"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd-link")).unwrap();
        std::os::unix::fs::symlink(outside_path.join("secret"), root.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../ok", root.join("sub/rel-up")).unwrap(); // sub/../ok: inside, missing
        std::os::unix::fs::symlink("sub/ok", root.join("inside-link")).unwrap();
        let rel_escape = std::path::PathBuf::from("..").join(outside_path.file_name().unwrap()).join("secret");
        std::os::unix::fs::symlink(rel_escape, root.join("rel-escape")).unwrap();
        std::os::unix::fs::symlink(&outside_path, root.join("dir-link")).unwrap();
        let fifo = std::ffi::CString::new(root.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::write(root.join("private"), b"x").unwrap();
        std::fs::set_permissions(root.join("private"), std::fs::Permissions::from_mode(0o600)).unwrap();
    });
    for name in [
        &b"../etc/passwd"[..],
        b"/../../etc/passwd",
        b"..\\..\\etc\\passwd",
        b"sub/../../etc/passwd",
        b"passwd-link",
        b"abs-link",
        b"rel-escape",
        b"dir-link/secret",
        b"sub",
        b"/",
        b"fifo",
    ] {
        expect_error(&fx, name, 2);
    }
    // An absolute path means the root: /etc/passwd is looked up inside it.
    expect_error(&fx, b"/etc/passwd", 1);
    expect_error(&fx, b"no-such-file", 1);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(expect_error(&fx, b"private", 2).contains("world-readable"));
    }
    // Legitimate names still work, including through an inside symlink and
    // with backslashes and a leading slash.
    for name in [&b"sub/ok"[..], b"/sub/ok", b"sub\\ok", b"inside-link", b"./sub//ok"] {
        let mut c = Client::new(fx.addr);
        c.send_request(&rrq(name, b"octet", &[]));
        assert_eq!(c.recv(), Reply::Data(1, b"inside".to_vec()), "{:?}", String::from_utf8_lossy(name));
        c.send(&ack(1));
    }
}

#[test]
fn hostile_input_is_refused_and_the_server_keeps_serving() {
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), b"hello").unwrap());
    let mut c = Client::new(fx.addr);
    // Write request: read-only server.
    c.send_request(&[&[0u8, 2][..], b"f\0octet\0"].concat());
    assert!(matches!(c.recv(), Reply::Error(2, _)));
    // mail (obsolete) / garbage mode; netascii is served (tftp_interop.rs).
    for mode in [&b"mail"[..], b"\xff\xfe"] {
        c.send_request(&rrq(b"f", mode, &[]));
        assert!(matches!(c.recv(), Reply::Error(4, _)), "mode {mode:?}");
    }
    // No NUL after the filename, no mode, empty filename, opcode garbage,
    // too many options.
    for pkt in [&b"\x00\x01f"[..], b"\x00\x01f\x00octet", b"\x00\x01\x00octet\x00", b"\x00\x07abc", b"\xff\xff"] {
        c.send_request(pkt);
        assert!(matches!(c.recv(), Reply::Error(4, _)), "{pkt:?}");
    }
    let many: Vec<(String, String)> = (0..1000).map(|i| (format!("o{i}"), "1".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    c.send_request(&rrq(b"f", b"octet", &many));
    assert!(matches!(c.recv(), Reply::Error(4, _)));
    // Silently dropped: a lone byte, stray ACK/DATA/ERROR to port 69.
    for pkt in [&b"\x01"[..], b"", b"\x00\x04\x00\x01", b"\x00\x03\x00\x01data", b"\x00\x05\x00\x00x\x00"] {
        c.send_request(pkt);
        assert_eq!(c.recv_within(Duration::from_millis(100)), None, "{pkt:?}");
    }
    // An incomplete trailing option is ignored; the request is served.
    c.send_request(&[&rrq(b"f", b"octet", &[])[..], b"blksize\x00"].concat());
    assert_eq!(c.recv(), Reply::Data(1, b"hello".to_vec()));
    c.send(&ack(1));
}

#[test]
fn busy_beyond_max_transfers() {
    let fx = start(2, 1468, |root| std::fs::write(root.join("f"), pattern(5000, 7)).unwrap());
    let mut a = Client::new(fx.addr);
    let mut b = Client::new(fx.addr);
    a.send_request(&rrq(b"f", b"octet", &[("timeout", "30")]));
    b.send_request(&rrq(b"f", b"octet", &[("timeout", "30")]));
    assert!(matches!(a.recv(), Reply::Oack(_)));
    assert!(matches!(b.recv(), Reply::Oack(_)));
    let mut third = Client::new(fx.addr);
    third.send_request(&rrq(b"f", b"octet", &[]));
    match third.recv() {
        Reply::Error(0, msg) => assert!(msg.contains("busy"), "{msg}"),
        other => panic!("expected busy, got {other:?}"),
    }
    // Finishing one transfer frees its slot.
    a.send(&ack(0));
    assert_eq!(a.download(512, 1, false), pattern(5000, 7));
    let mut fourth = Client::new(fx.addr);
    let mut served = false;
    for _ in 0..50 {
        fourth.send_request(&rrq(b"f", b"octet", &[]));
        match fourth.recv() {
            Reply::Data(1, _) => {
                served = true;
                break;
            }
            Reply::Error(0, _) => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("{other:?}"),
        }
    }
    assert!(served, "slot not released after a completed transfer");
    b.send(&error(0, "done"));
}

#[test]
fn retransmits_after_a_withheld_ack_and_ignores_duplicate_acks() {
    let content = pattern(2000, 8);
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), &content).unwrap());
    let mut c = Client::new(fx.addr);
    // timeout 2 s: long enough that the duplicate-ACK check below cannot
    // see a timer retransmission on a loaded machine.
    c.send_request(&rrq(b"f", b"octet", &[("timeout", "2")]));
    assert!(matches!(c.recv(), Reply::Oack(_)));
    // Withhold ACK 0: the OACK is sent again after the timeout.
    assert!(matches!(c.recv(), Reply::Oack(_)), "OACK not retransmitted");
    c.send(&ack(0));
    assert_eq!(c.recv(), Reply::Data(1, content[..512].to_vec()));
    // Withhold ACK 1: block 1 comes again.
    assert_eq!(c.recv(), Reply::Data(1, content[..512].to_vec()));
    c.send(&ack(1));
    assert_eq!(c.recv(), Reply::Data(2, content[512..1024].to_vec()));
    c.send(&ack(2));
    assert_eq!(c.recv(), Reply::Data(3, content[1024..1536].to_vec()));
    // A duplicate ACK 2 must not trigger a retransmission of block 3
    // (Sorcerer's Apprentice); only the timer may.
    c.send(&ack(2));
    c.send(&ack(2));
    assert_eq!(c.recv_within(Duration::from_millis(300)), None, "duplicate ACK answered");
    c.send(&ack(3));
    assert_eq!(c.recv(), Reply::Data(4, content[1536..].to_vec()));
    c.send(&ack(4));
}

#[test]
fn a_packet_from_an_unknown_tid_gets_error_5_and_the_transfer_continues() {
    let content = pattern(1000, 9);
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), &content).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"f", b"octet", &[]));
    assert_eq!(c.recv(), Reply::Data(1, content[..512].to_vec()));
    let mut stranger = Client::new(fx.addr);
    stranger.tid = c.tid;
    stranger.send(&ack(1));
    assert!(matches!(stranger.recv(), Reply::Error(5, _)));
    c.send(&ack(1));
    assert_eq!(c.recv(), Reply::Data(2, content[512..].to_vec()));
    c.send(&ack(2));
}

#[test]
fn a_retransmitted_request_does_not_start_a_second_transfer() {
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), b"abc").unwrap());
    let mut c = Client::new(fx.addr);
    let req = rrq(b"f", b"octet", &[("tsize", "0"), ("timeout", "5")]);
    c.send_request(&req);
    c.sock.send_to(&req, fx.addr).unwrap();
    assert!(matches!(c.recv(), Reply::Oack(_)));
    assert_eq!(c.recv_within(Duration::from_millis(300)), None, "second OACK from a second transfer");
    c.send(&ack(0));
    assert_eq!(c.recv(), Reply::Data(1, b"abc".to_vec()));
    c.send(&ack(1));
}

#[test]
fn bind_errors_are_clear() {
    let fx = start(1, 512, |_| {});
    let err = relay::tftp::TftpServer::bind(relay::tftp::TftpConfig {
        root: fx.root.path().to_path_buf(),
        bind: fx.addr,
        interface: None,
        max_transfers: 1,
        max_blksize: 512,
    })
    .err()
    .expect("binding the same port twice must fail");
    assert_eq!(err.to_string(), format!("port {} on 127.0.0.1 is in use, is dnsmasq running?", fx.addr.port()));
    let err = relay::tftp::TftpServer::bind(relay::tftp::TftpConfig {
        root: "/nonexistent-tftp-root".into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        interface: None,
        max_transfers: 1,
        max_blksize: 512,
    })
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("/nonexistent-tftp-root"), "{err:#}");
}

#[test]
fn on_the_wildcard_address_the_transfer_answers_from_the_address_asked() {
    let fx = start_on("0.0.0.0:0".parse().unwrap(), 4, 1468, |root| std::fs::write(root.join("f"), b"abc").unwrap());
    // 127.0.0.2 is local but not the client's own address (127.0.0.1):
    // without IP_PKTINFO the reply would come from 127.0.0.1.
    let server = std::net::SocketAddr::from(([127, 0, 0, 2], fx.addr.port()));
    let mut c = Client::new(server);
    c.send_request(&rrq(b"f", b"octet", &[]));
    assert_eq!(c.recv(), Reply::Data(1, b"abc".to_vec()));
    assert_eq!(c.tid.unwrap().ip(), server.ip(), "DATA came from another address than the request went to");
    c.send(&ack(1));
}

#[test]
fn bind_errors_name_the_interface_and_the_missing_capability() {
    let root = tempfile::tempdir().unwrap();
    let cfg = |bind: &str, interface: Option<&str>| relay::tftp::TftpConfig {
        root: root.path().to_path_buf(),
        bind: bind.parse().unwrap(),
        interface: interface.map(str::to_string),
        max_transfers: 1,
        max_blksize: 512,
    };
    let first = relay::tftp::TftpServer::bind(cfg("127.0.0.1:0", Some("lo"))).unwrap();
    let port = first.local_addr().port();
    let err = relay::tftp::TftpServer::bind(cfg(&format!("127.0.0.1:{port}"), Some("lo"))).err().unwrap();
    assert_eq!(err.to_string(), format!("port {port} on lo is in use, is dnsmasq running?"));
    let err = relay::tftp::TftpServer::bind(cfg("127.0.0.1:0", Some("nosuchif0"))).err().unwrap();
    assert_eq!(err.to_string(), "no such interface: nosuchif0");

    let unprivileged_start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(1024);
    assert!(
        unprivileged_start > 69,
        "this machine lets anyone bind port 69 (ip_unprivileged_port_start={unprivileged_start})"
    );
    let no_caps = cfg("127.0.0.1:69", None);
    let err = std::thread::spawn(move || {
        // Capabilities are per thread on Linux: drop all of them in this one
        // (root without CAP_NET_BIND_SERVICE, as an unprivileged user).
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        let mut header = Header { version: 0x2008_0522, pid: 0 };
        let data = [0u32; 6];
        // SAFETY: capset reads a v3 header and two zeroed data structs.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
        assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
        relay::tftp::TftpServer::bind(no_caps).err().map(|e| e.to_string())
    })
    .join()
    .unwrap();
    assert_eq!(err.as_deref(), Some("binding port 69 needs root or CAP_NET_BIND_SERVICE"));
}

#[test]
fn serves_over_ipv6() {
    let fx = start_on("[::1]:0".parse().unwrap(), 4, 1468, |root| {
        std::fs::write(root.join("f"), pattern(2000, 12)).unwrap()
    });
    let sock = std::net::UdpSocket::bind("[::1]:0").unwrap();
    let mut c = Client { sock, server: fx.addr, tid: None };
    c.send_request(&rrq(b"f", b"octet", &[("blksize", "65464"), ("tsize", "0")]));
    // Loopback MTU 65536 minus 52 bytes of IPv6/UDP/TFTP headers, capped by
    // the configured 1468.
    assert_eq!(opts(&c.recv()), vec![("blksize".into(), "1468".into()), ("tsize".into(), "2000".into())]);
    c.send(&ack(0));
    assert_eq!(c.download(1468, 1, false), pattern(2000, 12));
}

#[test]
fn a_window_restarts_after_the_last_block_the_client_got_in_order() {
    // RFC 7440: the client ACKs the last block it got in order; the next
    // window starts right after it.
    let content = pattern(8 * 100 + 1, 13);
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), &content).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"f", b"octet", &[("blksize", "100"), ("windowsize", "4")]));
    assert!(matches!(c.recv(), Reply::Oack(_)));
    c.send(&ack(0));
    for block in 1..=4u16 {
        assert!(matches!(c.recv(), Reply::Data(b, _) if b == block));
    }
    c.send(&ack(2)); // as if block 3 was lost
    for block in 3..=6u16 {
        let start = (block as usize - 1) * 100;
        assert_eq!(c.recv(), Reply::Data(block, content[start..start + 100].to_vec()));
    }
    c.send(&ack(6));
    assert_eq!(c.recv(), Reply::Data(7, content[600..700].to_vec()));
    assert_eq!(c.recv(), Reply::Data(8, content[700..800].to_vec()));
    assert_eq!(c.recv(), Reply::Data(9, content[800..].to_vec()));
    c.send(&ack(9));
}

#[test]
fn a_file_that_shrinks_mid_transfer_ends_it_with_an_error() {
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), pattern(5000, 14)).unwrap());
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"f", b"octet", &[]));
    assert!(matches!(c.recv(), Reply::Data(1, _)));
    std::fs::OpenOptions::new().write(true).open(fx.root.path().join("f")).unwrap().set_len(600).unwrap();
    // Block 2 (bytes 512..1024) can no longer be read whole: rather than
    // send a short block that would end the transfer with a wrong file,
    // the server gives up with an error.
    c.send(&ack(1));
    match c.recv() {
        Reply::Error(0, msg) => assert!(msg.contains("shrank"), "{msg}"),
        other => panic!("expected ERROR 0, got {other:?}"),
    }
}

#[test]
fn one_host_cannot_take_every_transfer_slot() {
    // 64 slots, but one address gets at most PER_HOST_TRANSFERS of them:
    // a flood from 127.0.0.1 that never ACKs leaves room for 127.0.0.2.
    let fx = start(64, 1468, |root| std::fs::write(root.join("f"), pattern(5000, 9)).unwrap());
    let mut held = vec![];
    for _ in 0..relay::tftp::PER_HOST_TRANSFERS {
        let mut c = Client::new(fx.addr);
        c.send_request(&rrq(b"f", b"octet", &[("timeout", "30")]));
        assert!(matches!(c.recv(), Reply::Oack(_)));
        held.push(c);
    }
    let mut more = Client::new(fx.addr);
    more.send_request(&rrq(b"f", b"octet", &[]));
    match more.recv() {
        Reply::Error(0, msg) => assert!(msg.contains("busy"), "{msg}"),
        other => panic!("expected busy for the same host, got {other:?}"),
    }
    let mut other_host = Client::bind_on(std::net::Ipv4Addr::new(127, 0, 0, 2), fx.addr);
    other_host.send_request(&rrq(b"f", b"octet", &[]));
    assert_eq!(other_host.download(512, 1, false), pattern(5000, 9), "another host is served");
    for c in &held {
        c.send(&error(0, "done"));
    }
}
