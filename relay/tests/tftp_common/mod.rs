//! Shared helpers for the TFTP tests: a server on loopback serving a
//! temporary root, and a raw-socket client that builds packets byte by byte.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use relay::tftp::{TftpConfig, TftpServer};

pub struct Fixture {
    pub root: tempfile::TempDir,
    pub addr: SocketAddr,
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .event_format(relay::log::HumanLine::plain())
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .try_init();
}

/// Starts a server on 127.0.0.1 (ephemeral port) whose root `setup` fills.
/// The server thread lives until the test process ends.
pub fn start(max_transfers: usize, max_blksize: u16, setup: impl FnOnce(&Path)) -> Fixture {
    start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), max_transfers, max_blksize, setup)
}

/// Like `start`, on a given address.
pub fn start_on(bind: SocketAddr, max_transfers: usize, max_blksize: u16, setup: impl FnOnce(&Path)) -> Fixture {
    init_logs();
    let root = tempfile::tempdir().unwrap();
    setup(root.path());
    let server = TftpServer::bind(TftpConfig {
        root: root.path().to_path_buf(),
        bind,
        interface: None,
        max_transfers,
        max_blksize,
    })
    .unwrap();
    let addr = server.local_addr();
    std::thread::spawn(move || server.run());
    Fixture { root, addr }
}

/// Deterministic file contents, so that a misplaced block shows: each
/// seed its own xorshift stream.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    bootproto::xorshift::Xorshift64((u64::from(seed) << 1) | 1).bytes(len)
}

/// A reply decoded into owned data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Data(u16, Vec<u8>),
    Oack(Vec<(String, String)>),
    Error(u16, String),
    Ack(u16),
    Other(Vec<u8>),
}

pub fn rrq(name: &[u8], mode: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    for part in [name, mode] {
        p.extend_from_slice(part);
        p.push(0);
    }
    for (n, v) in options {
        p.extend_from_slice(n.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

pub fn ack(block: u16) -> Vec<u8> {
    let mut p = vec![0, 4];
    p.extend_from_slice(&block.to_be_bytes());
    p
}

pub fn error(code: u16, msg: &str) -> Vec<u8> {
    let mut p = vec![0, 5];
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(msg.as_bytes());
    p.push(0);
    p
}

fn decode(p: &[u8]) -> Reply {
    let op = if p.len() >= 2 { u16::from_be_bytes([p[0], p[1]]) } else { 0 };
    let word = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    match op {
        3 if p.len() >= 4 => Reply::Data(word(2), p[4..].to_vec()),
        4 if p.len() >= 4 => Reply::Ack(word(2)),
        5 if p.len() >= 4 => {
            let msg = &p[4..];
            let end = msg.iter().position(|&b| b == 0).unwrap_or(msg.len());
            Reply::Error(word(2), String::from_utf8_lossy(&msg[..end]).into_owned())
        }
        6 => {
            let parts: Vec<String> =
                p[2..].split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
            assert_eq!(parts.last().map(String::as_str), Some(""), "OACK must end with NUL: {p:?}");
            let parts = &parts[..parts.len() - 1];
            assert!(parts.len().is_multiple_of(2), "OACK with an odd number of strings: {parts:?}");
            Reply::Oack(parts.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect())
        }
        _ => Reply::Other(p.to_vec()),
    }
}

/// A raw TFTP client on its own socket.
pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    /// The transfer's port, learned from the first reply.
    pub tid: Option<SocketAddr>,
}

impl Client {
    pub fn new(server: SocketAddr) -> Client {
        Client::bind_on(Ipv4Addr::LOCALHOST, server)
    }

    /// A client on another loopback address (127.0.0.0/8 is all local).
    pub fn bind_on(local: Ipv4Addr, server: SocketAddr) -> Client {
        let sock = UdpSocket::bind((local, 0)).unwrap();
        Client { sock, server, tid: None }
    }

    pub fn send_request(&mut self, packet: &[u8]) {
        self.tid = None;
        self.sock.send_to(packet, self.server).unwrap();
    }

    pub fn send(&self, packet: &[u8]) {
        self.sock.send_to(packet, self.tid.expect("no transfer yet")).unwrap();
    }

    /// The next packet, or None after `timeout`.
    pub fn recv_within(&mut self, timeout: Duration) -> Option<Reply> {
        let mut buf = vec![0u8; 70000];
        self.sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).unwrap();
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if self.tid.is_none() {
                    self.tid = Some(from);
                }
                Some(decode(&buf[..n]))
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
            Err(e) => panic!("recv: {e}"),
        }
    }

    /// The next packet; fails the test after a generous timeout.
    pub fn recv(&mut self) -> Reply {
        self.recv_within(Duration::from_secs(10)).expect("no reply from the server within 10 s")
    }

    /// Downloads after the request was sent, as an RFC 7440 client: ACK
    /// at the end of each window or on the short final block.
    pub fn download(&mut self, blksize: usize, windowsize: usize, expect_oack: bool) -> Vec<u8> {
        if expect_oack {
            match self.recv() {
                Reply::Oack(_) => self.send(&ack(0)),
                other => panic!("expected OACK, got {other:?}"),
            }
        }
        let mut data = Vec::new();
        let mut expected: u16 = 1;
        let mut in_window = 0;
        loop {
            match self.recv() {
                Reply::Data(block, payload) if block == expected => {
                    assert!(payload.len() <= blksize, "block {block} has {} bytes > {blksize}", payload.len());
                    data.extend_from_slice(&payload);
                    in_window += 1;
                    if payload.len() < blksize {
                        self.send(&ack(block));
                        return data;
                    }
                    if in_window == windowsize {
                        self.send(&ack(block));
                        in_window = 0;
                    }
                    expected = expected.wrapping_add(1);
                }
                Reply::Data(_, _) => {}
                other => panic!("unexpected {other:?} while expecting block {expected}"),
            }
        }
    }
}
