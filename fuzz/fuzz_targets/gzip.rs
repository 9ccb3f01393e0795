//! Fuzzes chainloader.0's gzip reader (bootproto::gzip): a kernel or
//! module from the network is untrusted. The header parse and the inflate
//! into a fixed buffer must return an error, never panic or write past the
//! buffer, and a success must match the trailer's CRC and size.
#![no_main]

use bootproto::gzip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = gzip::parse(data) else { return };
    // Small output buffers exercise the "does not fit" path.
    let cap = (info.isize as usize).min(1 << 20);
    let mut out = vec![0u8; cap];
    if let Ok(n) = gzip::decompress_into(data, &mut out) {
        assert!(n <= out.len());
        assert_eq!(gzip::crc32(&out[..n]), info.crc32);
        assert_eq!(n as u32, info.isize);
    }
});
