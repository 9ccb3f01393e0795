//! The client against a scripted RFC 7440 server over a simulated lossy
//! network with a simulated clock, plus hand-scripted exchanges for the
//! corner cases and a never-panics loop for the packet parser.

use super::wire::{self, Packet};
use super::*;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use std::collections::{BTreeMap, HashSet};

const TID: u16 = 40_000;

/// Content of block `i` (1-based): one repeated byte, so that huge files
/// cost nothing to generate or check.
fn fill(i: u64) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// A TFTP server in the style of tftp-hpa with RFC 7440: answers an RRQ
/// with OACK (or DATA 1 when it ignores options), sends a window, restarts
/// the window after the block an ACK names, and resends the window on its
/// own timeout.
struct Server {
    size: u64,
    honor_options: bool,
    max_blksize: u16,
    max_window: u16,
    blksize: u16,
    window: u16,
    started: bool,
    /// Next block to send; 0 = waiting for ACK 0 of the OACK.
    next: u64,
    /// Highest block sent so far.
    sent_hi: u64,
    finished: bool,
    deadline: Option<u64>,
    oack: Vec<u8>,
    rrqs: usize,
}

impl Server {
    fn new(size: u64) -> Self {
        Server {
            size,
            honor_options: true,
            max_blksize: 1468,
            max_window: 64,
            blksize: 512,
            window: 1,
            started: false,
            next: 0,
            sent_hi: 0,
            finished: false,
            deadline: None,
            oack: Vec::new(),
            rrqs: 0,
        }
    }
    fn blocks(&self) -> u64 {
        self.size / u64::from(self.blksize) + 1
    }
    fn data(&self, i: u64) -> Vec<u8> {
        let bs = u64::from(self.blksize);
        let start = (i - 1) * bs;
        let len = (self.size - start).min(bs) as usize;
        let mut p = vec![fill(i); 4 + len];
        p[..4].copy_from_slice(&[0, 3, (i >> 8) as u8, i as u8]);
        p
    }
    fn send_window(&mut self, now: u64, out: &mut Vec<Vec<u8>>) {
        if self.next == 0 {
            out.push(self.oack.clone());
        } else {
            let last = (self.next + u64::from(self.window) - 1).min(self.blocks());
            for i in self.next..=last {
                out.push(self.data(i));
            }
            self.sent_hi = self.sent_hi.max(last);
        }
        self.deadline = Some(now + 1500);
    }
    fn on_packet(&mut self, now: u64, p: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        match Packet::parse(p).expect("client sent garbage") {
            Packet::Rrq { mode, options, .. } => {
                assert_eq!(mode, "octet");
                self.rrqs += 1;
                if self.started {
                    return out;
                }
                self.started = true;
                let mut granted: Vec<(String, String)> = Vec::new();
                if self.honor_options {
                    for (n, v) in options.iter() {
                        match n {
                            "blksize" => {
                                self.blksize = v.parse::<u16>().unwrap().min(self.max_blksize);
                                granted.push((n.into(), self.blksize.to_string()));
                            }
                            "windowsize" => {
                                self.window = v.parse::<u16>().unwrap().min(self.max_window);
                                granted.push((n.into(), self.window.to_string()));
                            }
                            "tsize" => {
                                assert_eq!(v, "0");
                                granted.push((n.into(), self.size.to_string()));
                            }
                            _ => {}
                        }
                    }
                }
                if granted.is_empty() {
                    self.next = 1;
                } else {
                    let pairs: Vec<(&str, &str)> = granted.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                    let mut buf = [0u8; 512];
                    let n = wire::encode_oack(&mut buf, &pairs).unwrap();
                    self.oack = buf[..n].to_vec();
                    self.next = 0;
                }
                self.send_window(now, &mut out);
            }
            Packet::Ack { block } => {
                let hi = self.sent_hi;
                let a = hi - u64::from((hi as u16).wrapping_sub(block)).min(hi);
                if self.next == 0 && block == 0 {
                    self.next = 1;
                } else if self.next == 0 {
                    return out;
                } else if a < self.next {
                    // Old or repeated ACK: the timer resends (no
                    // Sorcerer's Apprentice on this side either).
                    return out;
                } else if a == self.blocks() {
                    self.finished = true;
                    self.deadline = None;
                    return out;
                } else {
                    self.next = a + 1;
                }
                self.send_window(now, &mut out);
            }
            other => panic!("unexpected from client: {other:?}"),
        }
        out
    }
    fn on_timer(&mut self, now: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if self.deadline.is_some_and(|d| d <= now) && !self.finished {
            self.send_window(now, &mut out);
        }
        out
    }
}

#[derive(Default)]
struct Net {
    /// Server-to-client datagrams to lose, by sequence number.
    drop_s2c: HashSet<usize>,
    /// Client-to-server datagrams to lose.
    drop_c2s: HashSet<usize>,
    /// Server-to-client datagrams delivered after the one that follows.
    swap_s2c: HashSet<usize>,
}

struct Outcome {
    result: Result<u64, Error>,
    /// Every datagram the client sent: (time, port, bytes).
    sent: Vec<(u64, u16, Vec<u8>)>,
    server: Server,
}

/// Runs the client against the server until it finishes.
fn run(req: &Request, mut server: Server, net: Net) -> Outcome {
    let mut now = 0u64;
    let mut c = Client::new(req, now);
    let mut buf = vec![0u8; 65536];
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut held: Option<Vec<u8>> = None;
    let (mut s2c, mut c2s) = (0usize, 0usize);
    let mut sent = Vec::new();
    let mut expect_off = 0u64;
    let mut push = |q: &mut VecDeque<Vec<u8>>, p: Vec<u8>, s2c: &mut usize| {
        let k = *s2c;
        *s2c += 1;
        if net.drop_s2c.contains(&k) {
            return;
        }
        if net.swap_s2c.contains(&k) {
            held = Some(p);
            return;
        }
        q.push_back(p);
        if let Some(h) = held.take() {
            q.push_back(h);
        }
    };
    let result = loop {
        assert!(now < 10_000_000, "simulation does not end");
        while let Some(t) = c.poll_transmit(now, &mut buf) {
            sent.push((now, t.dst_port, buf[..t.len].to_vec()));
            let k = c2s;
            c2s += 1;
            if net.drop_c2s.contains(&k) {
                continue;
            }
            if sent.len() > 1 {
                assert_eq!(t.dst_port, TID, "after the RRQ everything goes to the server's TID");
            } else {
                assert_eq!(t.dst_port, 69);
            }
            for p in server.on_packet(now, &buf[..t.len]) {
                push(&mut queue, p, &mut s2c);
            }
        }
        if let Some(e) = c.error() {
            break Err(e.clone());
        }
        if c.is_done() {
            break Ok(c.received());
        }
        if let Some(p) = queue.pop_front() {
            let bs = u64::from(c.negotiated().blksize);
            let mut sink = |off: u64, d: &[u8]| -> Result<(), SinkError> {
                assert_eq!(off, expect_off, "data in order, exactly once");
                assert_eq!(off % bs, 0);
                let want = fill(off / bs + 1);
                assert!(d[0] == want && d[d.len() - 1] == want, "block content at {off}");
                if d.len() < 4096 {
                    assert!(d.iter().all(|&b| b == want));
                }
                expect_off += d.len() as u64;
                Ok(())
            };
            if let Err(e) = c.handle(now, TID, &p, &mut sink) {
                // Flush the ERROR for the server.
                while let Some(t) = c.poll_transmit(now, &mut buf) {
                    sent.push((now, t.dst_port, buf[..t.len].to_vec()));
                }
                break Err(e);
            }
        } else {
            let mut next = c.poll_at().unwrap_or(u64::MAX);
            if let Some(d) = server.deadline {
                next = next.min(d);
            }
            assert!(next != u64::MAX, "deadlock: nobody has anything to do");
            now = now.max(next);
            for p in server.on_timer(now) {
                push(&mut queue, p, &mut s2c);
            }
        }
    };
    Outcome { result, sent, server }
}

fn acks(sent: &[(u64, u16, Vec<u8>)]) -> Vec<u16> {
    sent.iter()
        .filter_map(|(_, _, p)| match Packet::parse(p) {
            Ok(Packet::Ack { block }) => Some(block),
            _ => None,
        })
        .collect()
}

fn req(blksize: Option<u16>, windowsize: Option<u16>, ask_tsize: bool) -> Request<'static> {
    Request { filename: "/nautilus.bin", blksize, windowsize, ask_tsize }
}

#[test]
fn rrq_carries_the_options() {
    let mut c = Client::new(&req(Some(1468), Some(8), true), 0);
    let mut buf = [0u8; 600];
    let t = c.poll_transmit(0, &mut buf).unwrap();
    assert_eq!(t.dst_port, 69);
    assert_eq!(&buf[..t.len], b"\x00\x01/nautilus.bin\0octet\0blksize\x001468\0tsize\x000\0windowsize\x008\0");
    assert_eq!(c.poll_transmit(0, &mut buf), None);
    assert_eq!(c.poll_at(), Some(1000));
    let mut plain = Client::new(&req(None, None, false), 0);
    let t = plain.poll_transmit(0, &mut buf).unwrap();
    assert_eq!(&buf[..t.len], b"\x00\x01/nautilus.bin\0octet\0");
}

#[test]
fn full_transfer_with_options() {
    let o = run(&req(Some(1468), None, true), Server::new(100_000), Net::default());
    assert_eq!(o.result, Ok(100_000));
    // ACK 0 for the OACK, then one per block, the last one short.
    let a = acks(&o.sent);
    assert_eq!(a.len(), 1 + 100_000 / 1468 + 1);
    assert_eq!(a[0], 0);
    assert!(o.server.finished);
}

#[test]
fn negotiated_values_are_reported() {
    let mut s = Server::new(5000);
    s.max_blksize = 1024;
    let mut c = Client::new(&req(Some(1468), Some(4), true), 0);
    let mut buf = vec![0u8; 2048];
    let t = c.poll_transmit(0, &mut buf).unwrap();
    let replies = s.on_packet(0, &buf[..t.len]);
    let ev = c.handle(1, TID, &replies[0], &mut |_, _| Ok(())).unwrap();
    assert_eq!(ev, Event::Progress { received: 0, total: Some(5000) });
    assert_eq!(c.negotiated(), Negotiated { blksize: 1024, windowsize: 4, tsize: Some(5000) });
    let t = c.poll_transmit(1, &mut buf).unwrap();
    assert_eq!((&buf[..t.len], t.dst_port), (&b"\x00\x04\x00\x00"[..], TID));
}

#[test]
fn server_that_ignores_options() {
    let mut s = Server::new(3000);
    s.honor_options = false;
    let o = run(&req(Some(1468), Some(8), true), s, Net::default());
    assert_eq!(o.result, Ok(3000));
    assert_eq!(acks(&o.sent), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn oack_with_smaller_blksize_is_accepted() {
    let mut s = Server::new(10_000);
    s.max_blksize = 1024;
    let o = run(&req(Some(1468), None, true), s, Net::default());
    assert_eq!(o.result, Ok(10_000));
    assert_eq!(acks(&o.sent).len(), 1 + 10);
}

#[test]
fn oack_with_larger_blksize_is_refused() {
    let mut c = Client::new(&req(Some(1024), None, false), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let mut oack = [0u8; 64];
    let n = wire::encode_oack(&mut oack, &[("blksize", "1468")]).unwrap();
    let e = c.handle(5, TID, &oack[..n], &mut |_, _| Ok(())).unwrap_err();
    assert_eq!(e.to_string(), "TFTP protocol error: the server granted blksize 1468, asked for at most 1024");
    let t = c.poll_transmit(5, &mut buf).unwrap();
    assert_eq!(t.dst_port, TID);
    assert!(matches!(Packet::parse(&buf[..t.len]), Ok(Packet::Error { code: 8, .. })));
    assert!(c.is_finished() && c.error().is_some());
    assert_eq!(c.poll_transmit(5, &mut buf), None);
    assert_eq!(c.poll_at(), None);
}

#[test]
fn oack_with_unrequested_option_is_refused() {
    let mut c = Client::new(&req(Some(1024), None, false), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_oack(&mut buf, &[("tsize", "99")]).unwrap();
    let p = buf[..n].to_vec();
    assert!(matches!(c.handle(5, TID, &p, &mut |_, _| Ok(())), Err(Error::Protocol(_))));
}

#[test]
fn option_refusal_falls_back_to_a_plain_request() {
    let mut c = Client::new(&req(Some(1468), Some(4), true), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_error(&mut buf, 8, "no options").unwrap();
    let p = buf[..n].to_vec();
    assert_eq!(c.handle(3, 1111, &p, &mut |_, _| Ok(())), Ok(Event::None));
    let t = c.poll_transmit(3, &mut buf).unwrap();
    assert_eq!((&buf[..t.len], t.dst_port), (&b"\x00\x01/nautilus.bin\0octet\0"[..], 69));
    // The plain transfer comes from another TID.
    let d = wire::encode_data(&mut buf, 1, b"tiny").unwrap();
    let p = buf[..d].to_vec();
    assert_eq!(c.handle(4, 2222, &p, &mut |_, _| Ok(())), Ok(Event::Done { size: 4 }));
    let t = c.poll_transmit(4, &mut buf).unwrap();
    assert_eq!((&buf[..t.len], t.dst_port), (&b"\x00\x04\x00\x01"[..], 2222));
}

#[test]
fn tsize_is_reported_with_progress() {
    let mut s = Server::new(2000);
    s.max_blksize = 512;
    let mut c = Client::new(&req(Some(512), None, true), 0);
    let mut buf = vec![0u8; 2048];
    let t = c.poll_transmit(0, &mut buf).unwrap();
    let mut packets: VecDeque<Vec<u8>> = s.on_packet(0, &buf[..t.len]).into();
    let mut events = Vec::new();
    while let Some(p) = packets.pop_front() {
        events.push(c.handle(0, TID, &p, &mut |_, _| Ok(())).unwrap());
        while let Some(t) = c.poll_transmit(0, &mut buf) {
            packets.extend(s.on_packet(0, &buf[..t.len]));
        }
    }
    assert_eq!(
        events,
        vec![
            Event::Progress { received: 0, total: Some(2000) },
            Event::Progress { received: 512, total: Some(2000) },
            Event::Progress { received: 1024, total: Some(2000) },
            Event::Progress { received: 1536, total: Some(2000) },
            Event::Done { size: 2000 },
        ]
    );
    assert!(c.is_done() && s.finished);
}

/// A short block before the announced size: the file ended early (the
/// server truncated it, or it changed under the server); not a success.
#[test]
fn a_file_shorter_than_its_tsize_is_an_error() {
    let mut c = Client::new(&req(Some(512), None, true), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_oack(&mut buf, &[("blksize", "512"), ("tsize", "2000")]).unwrap();
    let p = buf[..n].to_vec();
    c.handle(0, TID, &p, &mut |_, _| Ok(())).unwrap();
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_data(&mut buf, 1, &[7u8; 512]).unwrap();
    let p = buf[..n].to_vec();
    assert_eq!(c.handle(1, TID, &p, &mut |_, _| Ok(())), Ok(Event::Progress { received: 512, total: Some(2000) }));
    let n = wire::encode_data(&mut buf, 2, &[7u8; 100]).unwrap();
    let p = buf[..n].to_vec();
    let e = c.handle(2, TID, &p, &mut |_, _| Ok(())).unwrap_err();
    assert_eq!(e, Error::Protocol("the file ended after 612 bytes, but the server announced 2000 (tsize)".into()));
    assert!(!c.is_done());
    assert_eq!(c.error(), Some(&e));
    let t = c.poll_transmit(2, &mut buf).unwrap();
    assert!(matches!(Packet::parse(&buf[..t.len]), Ok(Packet::Error { code: 4, .. })));
}

#[test]
fn tsize_over_the_limit_is_refused_before_any_data() {
    let mut c = Client::new(&req(None, None, true), 0);
    c.set_max_size(1000);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_oack(&mut buf, &[("tsize", "5000")]).unwrap();
    let p = buf[..n].to_vec();
    let e = c.handle(1, TID, &p, &mut |_, _| panic!("no data expected")).unwrap_err();
    assert_eq!(e, Error::TooLarge { limit: 1000, size: 5000 });
    let t = c.poll_transmit(1, &mut buf).unwrap();
    assert!(matches!(Packet::parse(&buf[..t.len]), Ok(Packet::Error { code: 3, .. })));
}

#[test]
fn windowsize_4_clean() {
    let o = run(&req(Some(1024), Some(4), true), Server::new(40_000), Net::default());
    assert_eq!(o.result, Ok(40_000));
    // 40 blocks: ACK 0, then every 4th block, the short 40th.
    let a = acks(&o.sent);
    assert_eq!(a[0], 0);
    assert_eq!(&a[1..], &[4, 8, 12, 16, 20, 24, 28, 32, 36, 40]);
}

#[test]
fn windowsize_4_with_loss_and_reorder() {
    let net = Net {
        // s2c 0 is the OACK. Lose block 2 of the first window, swap two
        // blocks later, lose a whole window's ACK and the last block.
        drop_s2c: [2, 30, 31].into_iter().collect(),
        drop_c2s: [4].into_iter().collect(),
        swap_s2c: [10, 21].into_iter().collect(),
    };
    let o = run(&req(Some(1024), Some(4), true), Server::new(40_000 + 7), net);
    assert_eq!(o.result, Ok(40_007));
    let a = acks(&o.sent);
    assert!(a.len() <= 11 + 2 * 5, "at most two extra ACKs per disturbance: {a:?}");
}

#[test]
fn lost_ack_duplicate_is_reacked_once() {
    // Lockstep; the client's ACK 3 is lost: the server times out and
    // repeats block 3, which the client ACKs again.
    let net = Net { drop_c2s: [4].into_iter().collect(), ..Net::default() };
    let o = run(&req(Some(512), None, false), Server::new(3000), net);
    assert_eq!(o.result, Ok(3000));
    assert_eq!(acks(&o.sent), vec![0, 1, 2, 3, 3, 4, 5, 6]);
}

#[test]
fn duplicates_do_not_double_traffic() {
    // Sorcerer's Apprentice: a burst of copies of an old block must not
    // each draw an ACK.
    let mut c = Client::new(&req(None, None, false), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let block = |n: u16| {
        let mut p = vec![0u8; 516];
        p[..4].copy_from_slice(&[0, 3, (n >> 8) as u8, n as u8]);
        p
    };
    let mut got = 0;
    let mut sink = |_: u64, d: &[u8]| -> Result<(), SinkError> {
        got += d.len();
        Ok(())
    };
    c.handle(1, TID, &block(1), &mut sink).unwrap();
    assert!(c.poll_transmit(1, &mut buf).is_some());
    for _ in 0..5 {
        assert_eq!(c.handle(2, TID, &block(1), &mut sink), Ok(Event::None));
    }
    let t = c.poll_transmit(2, &mut buf).unwrap();
    assert_eq!(&buf[..t.len], b"\x00\x04\x00\x01");
    assert_eq!(c.poll_transmit(2, &mut buf), None, "one re-ACK for five duplicates");
    c.handle(3, TID, &block(2), &mut sink).unwrap();
    assert!(c.poll_transmit(3, &mut buf).is_some());
    // New progress re-arms the duplicate answer.
    c.handle(4, TID, &block(2), &mut sink).unwrap();
    assert!(c.poll_transmit(4, &mut buf).is_some());
    assert_eq!(got, 1024, "duplicates never reach the sink");
}

#[test]
fn wrong_tid_gets_error_5_and_the_transfer_goes_on() {
    let mut c = Client::new(&req(None, None, false), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let d1 = {
        let mut p = vec![0u8; 516];
        p[1] = 3;
        p[3] = 1;
        p
    };
    let mut got = Vec::new();
    let mut sink = |o: u64, d: &[u8]| -> Result<(), SinkError> {
        got.push((o, d.len()));
        Ok(())
    };
    c.handle(10, 1000, &d1, &mut sink).unwrap();
    assert_eq!(c.server_tid(), Some(1000));
    let t = c.poll_transmit(10, &mut buf).unwrap();
    assert_eq!((&buf[..t.len], t.dst_port), (&b"\x00\x04\x00\x01"[..], 1000));
    // A second transfer (our RRQ was retransmitted) starts from port 2000.
    assert_eq!(c.handle(11, 2000, &d1, &mut sink), Ok(Event::None));
    let t = c.poll_transmit(11, &mut buf).unwrap();
    assert_eq!(t.dst_port, 2000);
    assert_eq!(Packet::parse(&buf[..t.len]), Ok(Packet::Error { code: 5, message: "Unknown transfer ID" }));
    assert_eq!(c.poll_transmit(11, &mut buf), None);
    // An ERROR from a stranger is not answered and changes nothing.
    let n = wire::encode_error(&mut buf, 0, "go away").unwrap();
    let e = buf[..n].to_vec();
    assert_eq!(c.handle(12, 2000, &e, &mut sink), Ok(Event::None));
    assert_eq!(c.poll_transmit(12, &mut buf), None);
    assert!(c.error().is_none());
    let n = wire::encode_data(&mut buf, 2, b"end").unwrap();
    let d2 = buf[..n].to_vec();
    assert_eq!(c.handle(13, 1000, &d2, &mut sink), Ok(Event::Done { size: 515 }));
    assert_eq!(got, vec![(0, 512), (512, 3)]);
}

#[test]
fn error_packet_text_is_reported() {
    let mut c = Client::new(&req(Some(1468), None, true), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_error(&mut buf, 1, "File not found: /nautilus.bin").unwrap();
    let p = buf[..n].to_vec();
    let e = c.handle(7, 3333, &p, &mut |_, _| Ok(())).unwrap_err();
    assert_eq!(e, Error::Remote { code: 1, message: "File not found: /nautilus.bin".into() });
    assert_eq!(e.to_string(), "TFTP error 1: File not found: /nautilus.bin");
    assert_eq!(c.error(), Some(&e));
    // Errors are never answered.
    assert_eq!(c.poll_transmit(7, &mut buf), None);
    let empty = Error::Remote { code: 2, message: String::new() };
    assert_eq!(empty.to_string(), "TFTP error 2 (access violation)");
}

#[test]
fn timeout_backoff_schedule() {
    let mut c = Client::new(&req(Some(1468), None, true), 0);
    let mut buf = [0u8; 600];
    let mut times = Vec::new();
    let mut now = 0;
    loop {
        while let Some(t) = c.poll_transmit(now, &mut buf) {
            assert_eq!(t.dst_port, 69);
            assert!(matches!(Packet::parse(&buf[..t.len]), Ok(Packet::Rrq { .. })));
            times.push(now);
        }
        if c.error().is_some() {
            break;
        }
        now = c.poll_at().unwrap();
    }
    assert_eq!(times, vec![0, 1000, 3000, 7000, 15000, 23000, 31000]);
    assert_eq!(now, 39000);
    let e = c.error().unwrap();
    assert_eq!(*e, Error::Timeout { retries: 6, waited_ms: 39000 });
    assert_eq!(e.to_string(), "no answer from the TFTP server after 6 retransmissions (39.0 s)");
    assert_eq!(c.poll_at(), None);
}

#[test]
fn timeout_mid_transfer_resends_the_last_ack_and_progress_resets_it() {
    let mut c = Client::new(&req(None, None, false), 0);
    c.set_timing(Timing { initial_ms: 100, max_ms: 400, max_retries: 3 });
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let mut d = vec![0u8; 516];
    d[1] = 3;
    d[3] = 1;
    c.handle(50, TID, &d, &mut |_, _| Ok(())).unwrap();
    c.poll_transmit(50, &mut buf).unwrap();
    assert_eq!(c.poll_at(), Some(150));
    assert!(c.poll_transmit(149, &mut buf).is_none());
    let t = c.poll_transmit(150, &mut buf).unwrap();
    assert_eq!((&buf[..t.len], t.dst_port), (&b"\x00\x04\x00\x01"[..], TID));
    assert_eq!(c.poll_at(), Some(350));
    assert_eq!(c.retries(), 1);
    d[3] = 2;
    c.handle(200, TID, &d, &mut |_, _| Ok(())).unwrap();
    assert_eq!(c.retries(), 0);
    c.poll_transmit(200, &mut buf).unwrap();
    assert_eq!(c.poll_at(), Some(300));
}

#[test]
fn zero_length_final_block() {
    let o = run(&req(None, None, false), Server::new(1024), Net::default());
    assert_eq!(o.result, Ok(1024));
    assert_eq!(acks(&o.sent), vec![1, 2, 3]);
    let o = run(&req(Some(512), Some(4), true), Server::new(0), Net::default());
    assert_eq!(o.result, Ok(0));
}

#[test]
fn lost_final_ack_is_repeated_after_done() {
    let mut c = Client::new(&req(None, None, false), 0);
    let mut buf = [0u8; 600];
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_data(&mut buf, 1, b"x").unwrap();
    let p = buf[..n].to_vec();
    assert_eq!(c.handle(1, TID, &p, &mut |_, _| Ok(())), Ok(Event::Done { size: 1 }));
    assert!(c.poll_transmit(1, &mut buf).is_some());
    assert_eq!(c.handle(2, TID, &p, &mut |_, _| panic!("delivered twice")), Ok(Event::None));
    let t = c.poll_transmit(2, &mut buf).unwrap();
    assert_eq!(&buf[..t.len], b"\x00\x04\x00\x01");
}

#[test]
fn block_number_rollover() {
    // 70,000 blocks of 8 bytes: block numbers wrap past 65535 to 0.
    let size = 70_000 * 8 + 3;
    let mut s = Server::new(size);
    s.max_blksize = 8;
    let o = run(&req(Some(8), Some(16), true), s, Net::default());
    assert_eq!(o.result, Ok(size));
    let a = acks(&o.sent);
    assert!(a.windows(2).any(|w| w[0] > w[1]), "the ACK numbers wrapped");
}

#[test]
fn rollover_with_loss_at_the_wrap() {
    let size = 66_000 * 8;
    let mut s = Server::new(size);
    s.max_blksize = 8;
    // Lockstep: s2c k is block k (0 is the OACK). Lose 65535, 65536 (wire
    // 0) and the ACK of 65537.
    let net = Net {
        drop_s2c: [65535, 65536 + 1].into_iter().collect(),
        drop_c2s: [65537 + 2].into_iter().collect(),
        ..Net::default()
    };
    let o = run(&req(Some(8), None, false), s, net);
    assert_eq!(o.result, Ok(size));
}

#[test]
fn offsets_beyond_4_gib_boundaries_256_mib_at_512() {
    // 256 MiB + 1 at 512-byte blocks: 524,289 blocks, 8 wraps of the block
    // number; the sink checks each offset (u64) and block content.
    let size = 256 * 1024 * 1024 + 1;
    let mut s = Server::new(size);
    s.max_blksize = 512;
    let o = run(&req(Some(512), Some(64), true), s, Net::default());
    assert_eq!(o.result, Ok(size));
}

#[test]
fn oversize_block_is_a_protocol_error() {
    let mut c = Client::new(&req(None, None, false), 0);
    let mut buf = [0u8; 700];
    c.poll_transmit(0, &mut buf).unwrap();
    let mut d = vec![0u8; 4 + 600];
    d[1] = 3;
    d[3] = 1;
    let e = c.handle(1, TID, &d, &mut |_, _| Ok(())).unwrap_err();
    assert_eq!(e.to_string(), "TFTP protocol error: block 1 has 600 bytes, the block size is 512");
    let t = c.poll_transmit(1, &mut buf).unwrap();
    assert!(matches!(Packet::parse(&buf[..t.len]), Ok(Packet::Error { code: 4, .. })));
}

#[test]
fn sink_error_aborts_and_tells_the_server() {
    let mut c = Client::new(&req(None, None, false), 0);
    let mut buf = [0u8; 700];
    c.poll_transmit(0, &mut buf).unwrap();
    let n = wire::encode_data(&mut buf, 1, b"abc").unwrap();
    let p = buf[..n].to_vec();
    let e = c.handle(1, TID, &p, &mut |_, _| Err(SinkError("no room below 4 GiB".into()))).unwrap_err();
    assert_eq!(e.to_string(), "cannot store the file: no room below 4 GiB");
    let t = c.poll_transmit(1, &mut buf).unwrap();
    assert!(matches!(Packet::parse(&buf[..t.len]), Ok(Packet::Error { code: 3, .. })));
    assert!(!c.is_done());
}

#[test]
fn too_long_filename_is_reported() {
    let name = "x".repeat(700);
    let mut c = Client::new(&Request { filename: &name, blksize: None, windowsize: None, ask_tsize: false }, 0);
    let mut buf = [0u8; 512];
    assert_eq!(c.poll_transmit(0, &mut buf), None);
    assert_eq!(c.error(), Some(&Error::RequestTooLong));
}

// ---- wire ----

#[test]
fn wire_round_trips() {
    let mut b = [0u8; 128];
    let n = wire::encode_rrq(&mut b, "a/b", "octet", &[("blksize", "1468"), ("tsize", "0")]).unwrap();
    match Packet::parse(&b[..n]).unwrap() {
        Packet::Rrq { filename, mode, options } => {
            assert_eq!((filename, mode), ("a/b", "octet"));
            assert_eq!(options.get("BLKSIZE"), Some("1468"));
            assert_eq!(options.iter().collect::<Vec<_>>(), vec![("blksize", "1468"), ("tsize", "0")]);
        }
        p => panic!("{p:?}"),
    }
    let n = wire::encode_data(&mut b, 65535, b"xyz").unwrap();
    assert_eq!(Packet::parse(&b[..n]), Ok(Packet::Data { block: 65535, data: b"xyz" }));
    let n = wire::encode_ack(&mut b, 7).unwrap();
    assert_eq!(Packet::parse(&b[..n]), Ok(Packet::Ack { block: 7 }));
    let n = wire::encode_data_header(&mut b, 9).unwrap();
    assert_eq!(Packet::parse(&b[..n]), Ok(Packet::Data { block: 9, data: b"" }));
    assert_eq!(wire::encode_ack(&mut b[..3], 1), Err(wire::BufferTooSmall { need: 4, have: 3 }));
    let n = wire::encode_wrq(&mut b, "f", "octet", &[]).unwrap();
    assert!(matches!(Packet::parse(&b[..n]), Ok(Packet::Wrq { filename: "f", .. })));
}

#[test]
fn wire_is_lenient_with_error_text_and_strict_with_requests() {
    assert_eq!(Packet::parse(b"\x00\x05\x00\x01no nul"), Ok(Packet::Error { code: 1, message: "no nul" }));
    assert_eq!(Packet::parse(b"\x00\x05\x00\x01ok\xffrest\0"), Ok(Packet::Error { code: 1, message: "ok" }));
    assert_eq!(Packet::parse(b"\x00\x05\x00"), Err(wire::ParseError::Truncated));
    assert_eq!(Packet::parse(b"\x00\x01file\0octet"), Err(wire::ParseError::Unterminated));
    assert_eq!(Packet::parse(b"\x00\x06blksize\0"), Err(wire::ParseError::OddOptions));
    assert_eq!(Packet::parse(b"\x00\x06\xff\0x\0"), Err(wire::ParseError::NotUtf8));
    assert_eq!(Packet::parse(b"\x00\x09"), Err(wire::ParseError::UnknownOpcode(9)));
    assert_eq!(Packet::parse(b"\x00"), Err(wire::ParseError::Truncated));
    assert_eq!(Packet::parse(b"\x00\x06"), Ok(Packet::Oack { options: wire::Options::empty() }));
}

#[test]
fn raw_layer_frames_what_the_strict_layer_rejects() {
    use wire::RawPacket;
    // Not UTF-8 and an option name without a value: the client side
    // rejects it, the raw layer (a server's view) frames it.
    let pkt = b"\x00\x01caf\xe9\0OCTET\0tsize\x000\0blksize\0";
    assert_eq!(Packet::parse(pkt), Err(wire::ParseError::NotUtf8));
    let Ok(RawPacket::Rrq { filename, mode, options }) = RawPacket::parse(pkt) else { panic!() };
    assert_eq!((filename, mode), (&b"caf\xe9"[..], &b"OCTET"[..]));
    let mut pairs = wire::option_pairs(options);
    assert_eq!(pairs.next(), Some((&b"tsize"[..], &b"0"[..])));
    assert_eq!(pairs.next(), None);
    assert_eq!(pairs.rest(), b"blksize\0");
    // Complete pairs leave nothing over; an empty filename is framed (the
    // server's policy decides about it).
    let mut pairs = wire::option_pairs(b"a\0b\0");
    assert_eq!(pairs.by_ref().count(), 1);
    assert!(pairs.rest().is_empty());
    assert!(matches!(RawPacket::parse(b"\x00\x02\0octet\0"), Ok(RawPacket::Wrq { filename: b"", .. })));
    // What cannot be framed fails the same way in both layers.
    for bad in [&b""[..], b"\x00", b"\x00\x01file", b"\x00\x01file\0octet", b"\x00\x04\x00", b"\x00\x09"] {
        assert_eq!(RawPacket::parse(bad).err(), Packet::parse(bad).err(), "{bad:?}");
        assert!(RawPacket::parse(bad).is_err());
    }
    assert_eq!(RawPacket::parse(b"\x00\x05\x00\x02no\xffnul"), Ok(RawPacket::Error { code: 2, message: b"no\xffnul" }));
    assert_eq!(RawPacket::parse(b"\x00\x03\x00\x01ab"), Ok(RawPacket::Data { block: 1, data: b"ab" }));
    assert_eq!(RawPacket::parse(b"\x00\x06x\0"), Ok(RawPacket::Oack { options: b"x\0" }));
}

#[test]
fn decimal_formatting() {
    let mut d = [0u8; 20];
    assert_eq!(wire::decimal(0, &mut d), "0");
    assert_eq!(wire::decimal(65464, &mut d), "65464");
    assert_eq!(wire::decimal(u64::MAX, &mut d), "18446744073709551615");
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn parse_and_client_never_panic_on_hostile_input() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let mut b = [0u8; 128];
    for n in [
        wire::encode_rrq(&mut b, "f", "octet", &[("blksize", "1468")]).unwrap(),
        wire::encode_oack(&mut b, &[("blksize", "1468"), ("tsize", "123")]).unwrap(),
    ] {
        seeds.push(b[..n].to_vec());
    }
    seeds.push(b"\x00\x03\x00\x01abc".to_vec());
    seeds.push(b"\x00\x05\x00\x01msg\0".to_vec());
    let mut client = Client::new(&req(Some(1468), Some(4), true), 0);
    let mut out = [0u8; 1600];
    for i in 0..200_000u64 {
        let len = (rng.next() % 40) as usize;
        let mut p: Vec<u8> = if i % 2 == 0 {
            // A mutated valid packet, possibly truncated.
            let mut s = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
            for _ in 0..rng.next() % 3 {
                let k = (rng.next() % s.len() as u64) as usize;
                s[k] = rng.next() as u8;
            }
            s.truncate((rng.next() % (s.len() as u64 + 1)) as usize);
            s
        } else {
            (0..len).map(|_| rng.next() as u8).collect()
        };
        if i % 5 == 0 && p.len() >= 2 {
            // Bias towards real opcodes.
            p[0] = 0;
            p[1] = (rng.next() % 7) as u8;
        }
        if let Ok(Packet::Oack { options } | Packet::Rrq { options, .. }) = Packet::parse(&p) {
            let _ = options.iter().count();
        }
        // The client must not panic either; restart it when it ends.
        let port = if rng.next().is_multiple_of(4) { 1 } else { TID };
        let _ = client.handle(i, port, &p, &mut |_, _| Ok(()));
        while client.poll_transmit(i, &mut out).is_some() {}
        if client.is_finished() {
            client = Client::new(&req(Some(1468), Some(4), true), i);
        }
    }
}

#[test]
fn error_display_texts() {
    let m: BTreeMap<&str, Error> = [
        ("timeout", Error::Timeout { retries: 3, waited_ms: 7250 }),
        ("large", Error::TooLarge { limit: 10, size: 11 }),
        ("long", Error::RequestTooLong),
    ]
    .into_iter()
    .collect();
    assert_eq!(m["timeout"].to_string(), "no answer from the TFTP server after 3 retransmissions (7.2 s)");
    assert_eq!(m["large"].to_string(), "file too large: 11 bytes, at most 10 fit");
    assert!(m["long"].to_string().contains("filename too long"));
}

#[test]
fn blksize_from_mtu() {
    assert_eq!(blksize_for_mtu(1500), 1468);
    assert_eq!(blksize_for_mtu(576), 544);
    assert_eq!(blksize_for_mtu(0), 8);
    assert_eq!(blksize_for_mtu(1 << 20), 65464);
}
