//! Fuzzes the TFTP client state machine (bootproto::tftp::Client) that
//! chainloader.0 runs against whatever answers on the network. The input
//! is a script of datagrams (source port, time step, bytes). Invariants:
//! no panic; the sink sees contiguous offsets; the received count matches
//! what the sink got; a finished transfer stays finished; everything it
//! transmits fits the buffer it was given.
#![no_main]

use bootproto::tftp::{Client, Event, Request, SinkError, Timing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req = Request { filename: "kernel.elf", blksize: Some(1468), windowsize: Some(8), ask_tsize: true };
    let mut now = 0u64;
    let mut c = Client::new(&req, now);
    c.set_timing(Timing { initial_ms: 10, max_ms: 40, max_retries: 3 });
    c.set_max_size(1 << 20);
    let mut got = 0u64;
    let mut buf = [0u8; 1600];
    let mut rest = data;
    let mut done = false;
    while rest.len() >= 4 {
        let port = if rest[0] & 1 == 0 { 69 } else { 1000 + rest[1] as u16 % 3 };
        now += rest[2] as u64;
        let len = (rest[3] as usize).min(rest.len() - 4);
        let pkt = &rest[4..4 + len];
        rest = &rest[4 + len..];
        while let Some(t) = c.poll_transmit(now, &mut buf) {
            assert!(t.len <= buf.len());
        }
        let mut sink = |off: u64, b: &[u8]| {
            assert_eq!(off, got, "sink offsets are contiguous");
            got += b.len() as u64;
            if got > 1 << 20 {
                return Err(SinkError("full".into()));
            }
            Ok(())
        };
        match c.handle(now, port, pkt, &mut sink) {
            Ok(Event::Done { size }) => {
                assert_eq!(size, got);
                done = true;
            }
            Ok(Event::Progress { received, .. }) => assert_eq!(received, got),
            Ok(Event::None) | Err(_) => {}
        }
        if done {
            assert!(c.is_done());
        }
        assert_eq!(c.received(), got);
    }
});
