//! The server's view of TFTP packets, over `bootproto::tftp::wire`, the
//! codec the chainloader's client uses: one parser and one set of encoders
//! for both ends of the wire.
//!
//! What stays here is server policy on top of the byte-level framing:
//! the cap on options per request, refusing an empty filename, keeping
//! non-UTF-8 names as bytes (they get "file not found", not a parse
//! error), tolerating an incomplete last option, and ERROR texts that fit
//! one 512-byte datagram. Which requests are refused, and how, is decided
//! by the caller.

use std::fmt;

use bootproto::tftp::wire::{self as codec, option_pairs, Outgoing, RawPacket};

pub use bootproto::tftp::wire::ErrorCode;

/// A request carrying more options than this is refused: no real client
/// sends more than a handful, and the cap bounds per-request work.
pub const MAX_OPTIONS: usize = 32;

/// Longest ERROR text sent, so the packet fits a 512-byte datagram.
const MAX_ERROR_TEXT: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Read,
    Write,
}

/// A read or write request. `options` keeps the client's order, which the
/// OACK mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub kind: RequestKind,
    pub filename: &'a [u8],
    pub mode: &'a [u8],
    pub options: RawOptions<'a>,
    /// Bytes after the last complete option pair (an option name without a
    /// value, or a string without its NUL). Ignored, but worth a debug log.
    pub trailing_garbage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Request(Request<'a>),
    Data { block: u16, payload: &'a [u8] },
    Ack { block: u16 },
    Error { code: u16, message: &'a [u8] },
    Oack { options: RawOptions<'a> },
}

/// Option name/value pairs as they appear on the wire.
pub type RawOptions<'a> = Vec<(&'a [u8], &'a [u8])>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The datagram cannot be framed as TFTP (bootproto's codec says why).
    Wire(codec::ParseError),
    EmptyFilename,
    TooManyOptions,
}

impl ParseError {
    /// Shorter than the fixed header of its opcode: not worth an answer.
    pub fn is_truncated(&self) -> bool {
        matches!(self, ParseError::Wire(codec::ParseError::Truncated))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Wire(e) => e.fmt(f),
            ParseError::EmptyFilename => write!(f, "empty filename"),
            ParseError::TooManyOptions => write!(f, "more than {MAX_OPTIONS} options"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The complete option pairs, at most `MAX_OPTIONS`, and whether bytes
/// were left over that did not form a pair.
fn collect_options(raw: &[u8]) -> Result<(RawOptions<'_>, bool), ParseError> {
    let mut pairs = option_pairs(raw);
    let mut options = Vec::new();
    for pair in pairs.by_ref() {
        if options.len() == MAX_OPTIONS {
            return Err(ParseError::TooManyOptions);
        }
        options.push(pair);
    }
    Ok((options, !pairs.rest().is_empty()))
}

fn request<'a>(
    kind: RequestKind,
    filename: &'a [u8],
    mode: &'a [u8],
    options: &'a [u8],
) -> Result<Packet<'a>, ParseError> {
    if filename.is_empty() {
        return Err(ParseError::EmptyFilename);
    }
    let (options, trailing_garbage) = collect_options(options)?;
    Ok(Packet::Request(Request { kind, filename, mode, options, trailing_garbage }))
}

/// Decodes one TFTP datagram.
pub fn parse(buf: &[u8]) -> Result<Packet<'_>, ParseError> {
    match RawPacket::parse(buf).map_err(ParseError::Wire)? {
        RawPacket::Rrq { filename, mode, options } => request(RequestKind::Read, filename, mode, options),
        RawPacket::Wrq { filename, mode, options } => request(RequestKind::Write, filename, mode, options),
        RawPacket::Data { block, data } => Ok(Packet::Data { block, payload: data }),
        RawPacket::Ack { block } => Ok(Packet::Ack { block }),
        RawPacket::Error { code, message } => Ok(Packet::Error { code, message }),
        RawPacket::Oack { options } => Ok(Packet::Oack { options: collect_options(options)?.0 }),
    }
}

/// Encodes `packet` into `out`, sized to fit.
fn encode_into(out: &mut Vec<u8>, packet: Outgoing) {
    out.clear();
    out.resize(packet.buffer_len(), 0);
    // Sized by the codec itself, so it fits.
    let len = packet.emit(out).unwrap_or(0);
    out.truncate(len);
}

/// Writes an ERROR packet into `out` (cleared first). The message is cut
/// so that the packet fits a 512-byte datagram.
pub fn encode_error(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    let mut end = message.len().min(MAX_ERROR_TEXT);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    // A NUL inside the text would end the message early on the client.
    let text = message[..end].replace('\0', "?");
    encode_into(out, Outgoing::Error { code, message: &text });
}

/// Writes an OACK packet into `out` (cleared first).
pub fn encode_oack(out: &mut Vec<u8>, options: &[(&str, String)]) {
    let pairs: Vec<(&str, &str)> = options.iter().map(|(n, v)| (*n, v.as_str())).collect();
    encode_into(out, Outgoing::Oack { options: &pairs });
}

/// Writes the 4-byte DATA header into the start of `buf`; the payload goes
/// right after it, read there directly from the file. `buf` is at least
/// 4 + blksize bytes, so the header always fits.
pub fn write_data_header(buf: &mut [u8], block: u16) {
    let written = Outgoing::DataHeader { block }.emit(buf);
    debug_assert_eq!(written, Ok(4));
}

/// Builds a request datagram; used by tests.
pub fn encode_request(kind: RequestKind, filename: &str, mode: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(
        &mut out,
        match kind {
            RequestKind::Read => Outgoing::Rrq { filename, mode, options },
            RequestKind::Write => Outgoing::Wrq { filename, mode, options },
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrq_with_options() {
        let pkt = b"\x00\x01chainloader.0\x00octet\x00tsize\x000\x00blksize\x001428\x00";
        let Packet::Request(req) = parse(pkt).unwrap() else { panic!() };
        assert_eq!(req.kind, RequestKind::Read);
        assert_eq!(req.filename, b"chainloader.0");
        assert_eq!(req.mode, b"octet");
        assert_eq!(req.options, vec![(&b"tsize"[..], &b"0"[..]), (&b"blksize"[..], &b"1428"[..])]);
        assert!(!req.trailing_garbage);
    }

    #[test]
    fn malformed_requests() {
        use codec::ParseError as Wire;
        assert_eq!(parse(b""), Err(ParseError::Wire(Wire::Truncated)));
        assert!(parse(b"\x00").unwrap_err().is_truncated());
        assert_eq!(parse(b"\x00\x01file"), Err(ParseError::Wire(Wire::Unterminated)));
        assert_eq!(parse(b"\x00\x01file\x00octet"), Err(ParseError::Wire(Wire::Unterminated)));
        assert_eq!(parse(b"\x00\x01\x00octet\x00"), Err(ParseError::EmptyFilename));
        assert_eq!(parse(b"\x00\x09x"), Err(ParseError::Wire(Wire::UnknownOpcode(9))));
        assert!(parse(b"\x00\x04\x00").unwrap_err().is_truncated());
        let Packet::Request(req) = parse(b"\x00\x01f\x00octet\x00blksize\x00").unwrap() else { panic!() };
        assert!(req.trailing_garbage && req.options.is_empty());
    }

    #[test]
    fn names_that_are_not_utf8_stay_bytes() {
        // The client-side codec rejects these; the server answers them
        // (with "file not found" further on), as tftp-hpa does.
        let Packet::Request(req) = parse(b"\x00\x01caf\xe9\x00oct\xe9t\x00\xff\x00\xfe\x00").unwrap() else { panic!() };
        assert_eq!((req.filename, req.mode), (&b"caf\xe9"[..], &b"oct\xe9t"[..]));
        assert_eq!(req.options, vec![(&b"\xff"[..], &b"\xfe"[..])]);
        assert_eq!(parse(b"\x00\x05\x00\x01x\xffy"), Ok(Packet::Error { code: 1, message: b"x\xffy" }));
    }

    #[test]
    fn too_many_options() {
        let opts: Vec<(&str, &str)> = (0..=MAX_OPTIONS).map(|_| ("x", "1")).collect();
        let pkt = encode_request(RequestKind::Read, "f", "octet", &opts);
        assert_eq!(parse(&pkt), Err(ParseError::TooManyOptions));
        let pkt = encode_request(RequestKind::Read, "f", "octet", &opts[1..]);
        assert!(matches!(parse(&pkt), Ok(Packet::Request(r)) if r.options.len() == MAX_OPTIONS));
    }

    #[test]
    fn error_roundtrip() {
        let mut out = Vec::new();
        encode_error(&mut out, ErrorCode::FileNotFound, "no\0such");
        assert_eq!(parse(&out), Ok(Packet::Error { code: 1, message: b"no?such" }));
        // Cut to fit 512 bytes, on a character boundary.
        encode_error(&mut out, ErrorCode::NotDefined, &"é".repeat(400));
        assert_eq!(out.len(), 4 + 500 + 1);
        assert!(std::str::from_utf8(&out[4..out.len() - 1]).is_ok());
    }

    #[test]
    fn oack_and_data_header() {
        let mut out = Vec::new();
        let granted = vec![("tsize", "1048583".to_string()), ("blksize", "x".repeat(600))];
        encode_oack(&mut out, &granted);
        let Ok(Packet::Oack { options }) = parse(&out) else { panic!("{out:?}") };
        assert_eq!(options.len(), 2);
        assert_eq!(options[0], (&b"tsize"[..], &b"1048583"[..]));
        assert_eq!(options[1].1.len(), 600);
        let mut buf = [0xffu8; 8];
        write_data_header(&mut buf, 0x1234);
        assert_eq!(parse(&buf), Ok(Packet::Data { block: 0x1234, payload: &[0xff; 4] }));
    }
}
