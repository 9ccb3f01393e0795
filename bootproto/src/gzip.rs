//! gzip (RFC 1952) decompression of kernels and modules, as GRUB 2 does
//! transparently for any file that starts with the gzip magic.
//!
//! The output size is taken from the ISIZE trailer (size mod 2^32) so that
//! the caller can place the output before inflating; the inflater is given
//! exactly that much room, so a file that lies about its size fails with a
//! clear error instead of running over memory.

use core::fmt;

const FTEXT: u8 = 1;
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;
const _: u8 = FTEXT;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GzipError {
    /// Shorter than a header and a trailer, or a header field runs past the end.
    Truncated,
    /// Compression method is not 8 (deflate).
    BadMethod(u8),
    /// Reserved flag bits are set.
    BadFlags(u8),
    /// The header CRC16 (FHCRC) does not match.
    HeaderCrc,
    /// The deflate stream is corrupt (or ends early).
    Corrupt,
    /// The data inflates to more than the ISIZE trailer announced.
    LargerThanIsize { isize: u32 },
    /// The data inflates to fewer bytes than ISIZE announced.
    SizeMismatch { isize: u32, actual: usize },
    /// The CRC-32 of the output does not match the trailer.
    Crc { expected: u32, actual: u32 },
    /// The output buffer is smaller than ISIZE.
    BufferTooSmall { need: usize, have: usize },
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GzipError::Truncated => write!(f, "gzip file is truncated"),
            GzipError::BadMethod(m) => write!(f, "gzip compression method {m} is not deflate (8)"),
            GzipError::BadFlags(x) => write!(f, "gzip header has reserved flag bits set ({x:#04x})"),
            GzipError::HeaderCrc => write!(f, "gzip header CRC does not match"),
            GzipError::Corrupt => write!(f, "gzip deflate data is corrupt or truncated"),
            GzipError::LargerThanIsize { isize } => {
                write!(f, "gzip data inflates to more than the {isize} bytes its trailer announces")
            }
            GzipError::SizeMismatch { isize, actual } => {
                write!(f, "gzip data inflates to {actual} bytes, but its trailer says {isize}")
            }
            GzipError::Crc { expected, actual } => {
                write!(f, "gzip CRC-32 mismatch: trailer {expected:#010x}, data {actual:#010x}")
            }
            GzipError::BufferTooSmall { need, have } => {
                write!(f, "no room to decompress: need {need} bytes, have {have}")
            }
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses it), one table lookup per
/// byte. A 1 KiB table keeps chainloader.0 small (the crc32fast crate's
/// tables and SIMD path cost ~21 KB of base memory); inflating costs more per
/// byte than this anyway.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

/// Whether `data` starts with the gzip magic (1f 8b).
pub fn is_gzip(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

/// The parsed outer layer of a gzip member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GzipInfo {
    /// Offset of the deflate stream.
    pub data_offset: usize,
    /// Uncompressed size mod 2^32 (the ISIZE trailer).
    pub isize: u32,
    /// CRC-32 of the uncompressed data.
    pub crc32: u32,
}

/// Parses the header and trailer. Only single-member files are supported
/// (as produced by `gzip`); the trailer is the last 8 bytes.
pub fn parse(data: &[u8]) -> Result<GzipInfo, GzipError> {
    if data.len() < 18 {
        return Err(GzipError::Truncated);
    }
    if !is_gzip(data) {
        return Err(GzipError::Truncated);
    }
    if data[2] != 8 {
        return Err(GzipError::BadMethod(data[2]));
    }
    let flags = data[3];
    if flags & 0xe0 != 0 {
        return Err(GzipError::BadFlags(flags));
    }
    let body_end = data.len() - 8;
    let mut p = 10usize;
    if flags & FEXTRA != 0 {
        let xlen = data.get(p..p + 2).ok_or(GzipError::Truncated)?;
        let xlen = u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
        p += 2 + xlen;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let rest = data.get(p..body_end).ok_or(GzipError::Truncated)?;
            let nul = rest.iter().position(|&b| b == 0).ok_or(GzipError::Truncated)?;
            p += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let c = data.get(p..p + 2).ok_or(GzipError::Truncated)?;
        let want = u16::from_le_bytes([c[0], c[1]]);
        if crc32(&data[..p]) as u16 != want {
            return Err(GzipError::HeaderCrc);
        }
        p += 2;
    }
    if p > body_end {
        return Err(GzipError::Truncated);
    }
    let t = &data[body_end..];
    Ok(GzipInfo {
        data_offset: p,
        crc32: u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
        isize: u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
    })
}

/// Inflates the gzip file `data` into `out`, which must hold at least ISIZE
/// bytes; returns the number of bytes written (== ISIZE) after checking the
/// length and CRC-32 against the trailer.
pub fn decompress_into(data: &[u8], out: &mut [u8]) -> Result<usize, GzipError> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;

    let info = parse(data)?;
    let want = info.isize as usize;
    if out.len() < want {
        return Err(GzipError::BufferTooSmall { need: want, have: out.len() });
    }
    // One byte of slack beyond ISIZE tells "exactly ISIZE" from "more".
    let limit = (want + 1).min(out.len());
    let out = &mut out[..limit];
    let input = &data[info.data_offset..data.len() - 8];
    let mut state = alloc::boxed::Box::<DecompressorOxide>::default();
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, _in_used, written) = decompress(&mut state, input, out, 0, flags);
    match status {
        TINFLStatus::Done => {}
        TINFLStatus::HasMoreOutput => return Err(GzipError::LargerThanIsize { isize: info.isize }),
        _ => return Err(GzipError::Corrupt),
    }
    if written > want {
        return Err(GzipError::LargerThanIsize { isize: info.isize });
    }
    if written != want {
        return Err(GzipError::SizeMismatch { isize: info.isize, actual: written });
    }
    let actual = crc32(&out[..written]);
    if actual != info.crc32 {
        return Err(GzipError::Crc { expected: info.crc32, actual });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'Multiboot2 says hello\n%.0s' {1..40} | gzip -9 -n` (made
    /// once with GNU gzip 1.12 when this test was written).
    const HELLO_GZ: &[u8] = include_bytes!("testdata/hello40.txt.gz");
    /// Same data with `gzip -9 -N` from a file named hello40.txt: FNAME set.
    const HELLO_NAMED_GZ: &[u8] = include_bytes!("testdata/hello40-named.txt.gz");

    fn expected() -> alloc::vec::Vec<u8> {
        b"Multiboot2 says hello\n".repeat(40)
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn inflates_gzip_output() {
        for gz in [HELLO_GZ, HELLO_NAMED_GZ] {
            assert!(is_gzip(gz));
            let info = parse(gz).unwrap();
            assert_eq!(info.isize as usize, expected().len());
            let mut out = vec![0u8; info.isize as usize];
            assert_eq!(decompress_into(gz, &mut out), Ok(expected().len()));
            assert_eq!(out, expected());
        }
        assert!(parse(HELLO_NAMED_GZ).unwrap().data_offset > 10);
    }

    #[test]
    fn isize_liar_is_bounded() {
        // Trailer claims fewer bytes than the stream holds.
        let mut gz = HELLO_GZ.to_vec();
        let n = gz.len();
        gz[n - 4..].copy_from_slice(&100u32.to_le_bytes());
        let mut out = vec![0u8; 4096];
        assert_eq!(decompress_into(&gz, &mut out), Err(GzipError::LargerThanIsize { isize: 100 }));
        // Claims more.
        gz[n - 4..].copy_from_slice(&2000u32.to_le_bytes());
        assert_eq!(decompress_into(&gz, &mut out), Err(GzipError::SizeMismatch { isize: 2000, actual: 880 }));
        let mut small = vec![0u8; 10];
        assert_eq!(decompress_into(HELLO_GZ, &mut small), Err(GzipError::BufferTooSmall { need: 880, have: 10 }));
    }

    #[test]
    fn corrupt_and_crc() {
        let mut gz = HELLO_GZ.to_vec();
        let n = gz.len();
        gz[n - 8] ^= 1;
        let mut out = vec![0u8; 880];
        assert!(matches!(decompress_into(&gz, &mut out), Err(GzipError::Crc { .. })));
        let mut gz = HELLO_GZ.to_vec();
        gz.truncate(n - 12);
        gz.extend_from_slice(&HELLO_GZ[n - 8..]);
        assert_eq!(decompress_into(&gz, &mut out), Err(GzipError::Corrupt));
        assert_eq!(parse(&HELLO_GZ[..12]), Err(GzipError::Truncated));
        let mut bad = HELLO_GZ.to_vec();
        bad[2] = 7;
        assert_eq!(parse(&bad), Err(GzipError::BadMethod(7)));
    }

    #[test]
    fn header_fields() {
        // Hand-built header: FEXTRA + FCOMMENT + FHCRC around a stored block.
        let payload = b"abc";
        let mut h = vec![0x1f, 0x8b, 8, FEXTRA | FCOMMENT | FHCRC, 0, 0, 0, 0, 0, 3];
        h.extend_from_slice(&[4, 0, b'x', b'y', 2, 0]);
        h.extend_from_slice(b"note\0");
        let crc = crc32(&h) as u16;
        h.extend_from_slice(&crc.to_le_bytes());
        let off = h.len();
        // Final stored block: BFINAL=1 BTYPE=00, LEN, NLEN, data.
        h.extend_from_slice(&[1, 3, 0, 0xfc, 0xff]);
        h.extend_from_slice(payload);
        h.extend_from_slice(&crc32(payload).to_le_bytes());
        h.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(parse(&h).unwrap().data_offset, off);
        let mut out = [0u8; 3];
        assert_eq!(decompress_into(&h, &mut out), Ok(3));
        assert_eq!(&out, payload);
        h[off - 1] ^= 0xff;
        assert_eq!(parse(&h), Err(GzipError::HeaderCrc));
    }
}
