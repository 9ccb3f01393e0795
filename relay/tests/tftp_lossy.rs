//! Standard clients through a lossy link: a UDP relay between client and
//! server drops and duplicates chosen packets (netem is not available on
//! every kernel; this is deterministic). The file must arrive intact, the
//! server must recover by its timer, and duplicates must not multiply
//! (Sorcerer's Apprentice).

mod tftp_common;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tftp_common::*;

#[derive(Default)]
struct Counters {
    to_client: AtomicUsize,
    to_server: AtomicUsize,
    stop: AtomicBool,
}

/// Listens on its own port for a client; forwards the request to the
/// server, and then everything between the client and the transfer's
/// port, dropping the packets whose sequence numbers (per direction, from
/// 1) are listed, and sending the `dup` ones twice.
fn lossy_relay(
    server: SocketAddr,
    drop_to_client: &[usize],
    drop_to_server: &[usize],
    dup_to_client: &[usize],
) -> (SocketAddr, Arc<Counters>) {
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = front.local_addr().unwrap();
    let counters = Arc::new(Counters::default());
    let (drop_c, drop_s, dup_c): (HashSet<usize>, HashSet<usize>, HashSet<usize>) = (
        drop_to_client.iter().copied().collect(),
        drop_to_server.iter().copied().collect(),
        dup_to_client.iter().copied().collect(),
    );
    for s in [&front, &back] {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    let tid: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    {
        // client -> server
        let (front, back, counters, client, tid) =
            (front.try_clone().unwrap(), back.try_clone().unwrap(), counters.clone(), client.clone(), tid.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70000];
            while !counters.stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = front.recv_from(&mut buf) else { continue };
                let first = client.lock().unwrap().replace(from).is_none();
                let k = counters.to_server.fetch_add(1, Ordering::Relaxed) + 1;
                if drop_s.contains(&k) {
                    continue;
                }
                let to = if first { server } else { tid.lock().unwrap().unwrap_or(server) };
                let _ = back.send_to(&buf[..n], to);
            }
        });
    }
    {
        // server -> client
        let counters = counters.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70000];
            while !counters.stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = back.recv_from(&mut buf) else { continue };
                tid.lock().unwrap().get_or_insert(from);
                let k = counters.to_client.fetch_add(1, Ordering::Relaxed) + 1;
                if drop_c.contains(&k) {
                    continue;
                }
                let Some(to) = *client.lock().unwrap() else { continue };
                let copies = if dup_c.contains(&k) { 2 } else { 1 };
                for _ in 0..copies {
                    let _ = front.send_to(&buf[..n], to);
                }
            }
        });
    }
    (addr, counters)
}

#[test]
fn tftp_hpa_through_a_lossy_link() {
    let content = pattern(64 * 1024 + 100, 41); // 129 blocks of 512
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), &content).unwrap());
    // DATA 10 lost; DATA 50 and its first retransmission lost (backoff);
    // ACK 30 and ACK 90 lost; DATA 70 and 71 duplicated on the way.
    let (relay_addr, counters) = lossy_relay(fx.addr, &[10, 51, 52], &[31, 92], &[73, 74]);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("f");
    let res = Command::new("tftp")
        .args(["127.0.0.1", &relay_addr.port().to_string(), "-m", "binary", "-c", "get", "f"])
        .arg(&dest)
        .output()
        .expect("tftp-hpa");
    counters.stop.store(true, Ordering::Relaxed);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stdout));
    assert!(std::fs::read(&dest).unwrap() == content, "file differs after a lossy transfer");
    // 129 DATA and 5 timer retransmissions; with the Sorcerer's Apprentice
    // bug each injected duplicate would double every later block (50+
    // extra). The margin leaves room for timer retransmissions when a
    // loaded machine delays the client by more than a second.
    let to_client = counters.to_client.load(Ordering::Relaxed);
    assert!(to_client <= 129 + 20, "server sent {to_client} packets for 129 blocks");
}

#[test]
fn atftp_with_a_window_through_a_lossy_link() {
    let content = pattern(100 * 1024 + 3, 42); // 101 blocks of 1024
    let fx = start(4, 1468, |root| std::fs::write(root.join("f"), &content).unwrap());
    // Index 1 is the OACK; DATA losses inside windows, a lost window ACK,
    // and a duplicated block.
    let (relay_addr, counters) = lossy_relay(fx.addr, &[6, 40], &[5], &[20]);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("f");
    let res = Command::new("atftp")
        .args(["--tftp-timeout", "1", "--option", "blksize 1024", "--option", "windowsize 8", "--get", "-r", "f", "-l"])
        .arg(&dest)
        .args(["127.0.0.1", &relay_addr.port().to_string()])
        .output()
        .expect("atftp");
    counters.stop.store(true, Ordering::Relaxed);
    assert!(res.status.success(), "{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(std::fs::read(&dest).unwrap() == content, "file differs after a lossy windowed transfer");
}
