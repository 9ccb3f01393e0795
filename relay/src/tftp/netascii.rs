//! Netascii (RFC 1350, after RFC 764's Telnet NVT): the mode tftp-hpa's
//! `get` uses unless told `binary`. On the wire every line ends in CR LF and
//! a bare CR is sent as CR NUL. The server converts from the host's
//! convention (LF line ends) as it sends, as dnsmasq and tftp-hpa do.
//!
//! The converted file is written to an anonymous in-memory file
//! (`memfd_create`), so that the transfer loop serves it exactly like any
//! other file (pread by block offset, retransmission of any block, tsize is
//! the converted size). Netascii is for text; a converted file larger than
//! `MAX_NETASCII` is refused rather than held in memory.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::FromRawFd;

use super::fs::ServedFile;

/// Largest converted file served in netascii mode.
pub const MAX_NETASCII: u64 = 64 << 20;

/// Appends the netascii form of `input` to `out`.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    for &b in input {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            b => out.push(b),
        }
    }
}

/// Converts an opened file into its netascii form, in memory.
pub fn convert(mut served: ServedFile) -> io::Result<ServedFile> {
    // The worst case doubles every byte.
    if served.size.saturating_mul(2) > MAX_NETASCII && served.size > MAX_NETASCII / 2 {
        return Err(io::Error::other(format!(
            "file too large for netascii mode ({} bytes, at most {} after conversion); use octet (binary) mode",
            served.size, MAX_NETASCII
        )));
    }
    // SAFETY: the name is a valid NUL-terminated string; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"tftp-netascii".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and nothing else owns it.
    let memfile = unsafe { File::from_raw_fd(fd) };
    let mut w = BufWriter::new(&memfile);
    let (mut buf, mut out) = (vec![0u8; 64 * 1024], Vec::with_capacity(128 * 1024));
    let mut size = 0u64;
    loop {
        let n = served.file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.clear();
        encode(&buf[..n], &mut out);
        size += out.len() as u64;
        w.write_all(&out)?;
    }
    w.flush()?;
    drop(w);
    Ok(ServedFile { file: memfile, size })
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_ends_and_bare_cr() {
        let mut out = Vec::new();
        super::encode(b"a\nb\r\nc\rd", &mut out);
        assert_eq!(out, b"a\r\nb\r\0\r\nc\r\0d");
    }
}
