//! Fuzzes the HTTP response reader (bootproto::http::Response) with
//! arbitrary server bytes fed in arbitrary pieces. Invariants: no panic;
//! `used` never exceeds what was fed; body offsets are contiguous; the
//! bytes stored never exceed the size limit; a done response reports the
//! size the sink got.
#![no_main]

use bootproto::http::{Event, Response, Url};
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else { return };
    let step = step as usize % 64 + 1;
    let mut r = Response::new(Some(LIMIT));
    let mut got = 0u64;
    let mut pending = body;
    while !pending.is_empty() && !r.is_done() {
        let piece = &pending[..step.min(pending.len())];
        let mut sink = |off: u64, b: &[u8]| {
            assert_eq!(off, got);
            got += b.len() as u64;
            Ok(())
        };
        match r.feed(piece, &mut sink) {
            Ok((used, ev)) => {
                assert!(used <= piece.len());
                if let Event::Done { .. } = ev {
                    assert!(r.is_done());
                }
                if used == 0 && !r.is_done() {
                    panic!("no progress on {} bytes", piece.len());
                }
                pending = &pending[used..];
            }
            Err(_) => return,
        }
        assert!(got <= LIMIT);
    }
    if !r.is_done() {
        let _ = r.finish_at_eof();
    }
    if let Ok(size) = r.outcome() {
        assert_eq!(size, got);
    }
    // URLs from the same bytes: parse and join never panic, and a joined
    // path is absolute.
    if let Ok(s) = core::str::from_utf8(body) {
        if let Ok(u) = Url::parse(s) {
            assert!(u.path.starts_with('/'));
            if let Ok(j) = u.join("../a/./b") {
                assert!(j.path.starts_with('/'));
            }
        }
    }
});
