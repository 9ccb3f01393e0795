//! A deterministic stand-in for the fuzzer that runs in every test run:
//! many mutated TFTP packets go through the request parser, option
//! negotiation and name normalisation (invariants checked), and then at a
//! live server, which must keep serving afterwards.

mod tftp_common;

use std::net::UdpSocket;
use std::path::{Component, Path};

use bootproto::xorshift::Xorshift64 as Rng;
use relay::tftp::options::{negotiate, Limits, BLKSIZE_MAX, BLKSIZE_MIN};
use relay::tftp::{fs, wire};
use tftp_common::*;

fn seeds() -> Vec<Vec<u8>> {
    vec![
        rrq(b"missing", b"octet", &[("tsize", "0"), ("blksize", "1468"), ("windowsize", "8"), ("timeout", "2")]),
        rrq(b"missing/..\\x", b"netascii", &[("blksize", "65464")]),
        rrq(b"/missing", b"OCTET", &[]),
        vec![0, 2, b'w', 0, b'o', b'c', b't', b'e', b't', 0],
        ack(7),
        error(8, "no"),
        vec![0, 6, b'b', 0, b'1', 0],
        vec![0, 3, 0, 1, 1, 2, 3],
    ]
}

const TOKENS: &[&[u8]] = &[
    b"\0",
    b"..",
    b"/",
    b"\\",
    b"blksize",
    b"tsize",
    b"windowsize",
    b"timeout",
    b"65535",
    b"0",
    b"99999999999999999999",
    b"octet",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut p = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !p.is_empty() => {
                let i = rng.below(p.len());
                p[i] ^= 1 << rng.below(8);
            }
            1 if !p.is_empty() => {
                let i = rng.below(p.len());
                p[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(p.len() + 1);
                p.insert(i, rng.next_u64() as u8);
            }
            3 if !p.is_empty() => {
                let i = rng.below(p.len());
                p.remove(i);
            }
            4 => {
                let n = rng.below(p.len() + 1);
                p.truncate(n);
            }
            5 => {
                let i = rng.below(p.len() + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                p.splice(i..i, t.iter().copied());
            }
            _ => {
                // Repeat a chunk: long option lists.
                if !p.is_empty() {
                    let a = rng.below(p.len());
                    let b = (a + rng.below(64)).min(p.len());
                    let chunk = p[a..b].to_vec();
                    for _ in 0..rng.below(40) {
                        p.extend_from_slice(&chunk);
                    }
                }
            }
        }
    }
    p
}

fn check(data: &[u8], max_blksize: u16) {
    let Ok(wire::Packet::Request(req)) = wire::parse(data) else { return };
    assert!(!req.filename.is_empty());
    assert!(req.options.len() <= wire::MAX_OPTIONS);
    let n = negotiate(&req.options, &Limits { max_blksize, max_windowsize: 64 }, 12345);
    assert!((BLKSIZE_MIN..=BLKSIZE_MAX).contains(&n.blksize));
    assert!(n.blksize <= max_blksize.max(BLKSIZE_MIN) || n.blksize == 512, "{n:?}");
    assert!((1..=64).contains(&n.windowsize));
    let mut oack = Vec::new();
    wire::encode_oack(&mut oack, &n.granted);
    assert!(matches!(wire::parse(&oack), Ok(wire::Packet::Oack { options }) if options.len() == n.granted.len()));
    if let Ok(rel) = fs::normalise(req.filename, Path::new("/srv/tftp")) {
        assert!(rel.components().all(|c| matches!(c, Component::Normal(_))), "{rel:?}");
    }
}

#[test]
fn parser_and_negotiation_survive_mutated_packets() {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let seeds = seeds();
    let mut requests = 0;
    for i in 0..200_000 {
        let seed = &seeds[i % seeds.len()];
        let p = mutate(&mut rng, seed);
        if matches!(wire::parse(&p), Ok(wire::Packet::Request(_))) {
            requests += 1;
        }
        check(&p, [512u16, 1468, 8, 0, 65535][i % 5]);
    }
    // The mutations must keep a good share parseable, or this tests nothing.
    assert!(requests > 20_000, "only {requests} mutated packets parsed as requests");
}

#[test]
fn live_server_keeps_serving_after_mutated_packets() {
    let fx = start(64, 1468, |root| std::fs::write(root.join("served.bin"), pattern(3000, 11)).unwrap());
    let noise = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng(0xdead_beef_1234_5678);
    let seeds = seeds();
    for i in 0..3000 {
        let p = mutate(&mut rng, &seeds[i % seeds.len()]);
        let _ = noise.send_to(&p, fx.addr);
        if i % 200 == 0 {
            // Let the server drain its socket buffer now and then.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    // The noise may have overflowed the server's socket buffer, and a
    // request that arrives then is lost as any UDP datagram may be; real
    // clients retransmit their request. So probe, retransmitting each
    // second, until the server answers (it must, within 30 s), then fetch.
    let mut probe = Client::new(fx.addr);
    let answered = (0..30).any(|_| {
        probe.send_request(&rrq(b"missing", b"octet", &[]));
        matches!(probe.recv_within(std::time::Duration::from_secs(1)), Some(Reply::Error(1, _)))
    });
    assert!(answered, "the server never answered again after the mutated packets");
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"served.bin", b"octet", &[("blksize", "1000"), ("windowsize", "2")]));
    assert_eq!(c.download(1000, 2, true), pattern(3000, 11));
}
