//! Fuzzes the TFTP request parser, option negotiation and file-name
//! normalisation with arbitrary datagrams, and checks their invariants.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use relay::tftp::options::{negotiate, Limits, BLKSIZE_MAX, BLKSIZE_MIN};
use relay::tftp::{fs, wire};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = wire::parse(data) else { return };
    let wire::Packet::Request(req) = packet else { return };
    assert!(!req.filename.is_empty());
    assert!(req.options.len() <= wire::MAX_OPTIONS);

    // The first two bytes of the datagram pick the limits, so that the
    // fuzzer explores caps as well as requests.
    let max_blksize = u16::from_be_bytes([data[0], data[1]]);
    let limits = Limits { max_blksize, max_windowsize: 64 };
    let n = negotiate(&req.options, &limits, data.len() as u64);
    assert!((BLKSIZE_MIN..=BLKSIZE_MAX).contains(&n.blksize));
    assert!(n.blksize <= max_blksize.max(BLKSIZE_MIN) || n.blksize == 512);
    assert!((1..=64).contains(&n.windowsize));
    assert!(n.granted.len() <= 4);
    let mut oack = Vec::new();
    wire::encode_oack(&mut oack, &n.granted);
    match wire::parse(&oack) {
        Ok(wire::Packet::Oack { options }) => assert_eq!(options.len(), n.granted.len()),
        other => panic!("OACK does not parse back: {other:?}"),
    }

    if let Ok(rel) = fs::normalise(req.filename, Path::new("/srv/tftp")) {
        assert!(rel.is_relative());
        assert!(rel.components().all(|c| matches!(c, std::path::Component::Normal(_))));
    }
});
