//! TFTP packet decoding and encoding (RFC 1350, RFC 2347 options).
//!
//! The parser borrows from the datagram and never allocates for the
//! fixed fields, so hostile input costs at most one pass over the bytes.
//! It is the server's own: `bootproto::tftp` (the chainloader's client
//! side) had not landed when this was written.

use std::fmt;

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// A request carrying more options than this is refused: no real client
/// sends more than a handful, and the cap bounds per-request work.
pub const MAX_OPTIONS: usize = 32;

/// TFTP error codes (RFC 1350 section 5, RFC 2347 for code 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    NotDefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    DiskFull = 3,
    IllegalOperation = 4,
    UnknownTid = 5,
    FileExists = 6,
    NoSuchUser = 7,
    OptionRefused = 8,
}

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the fixed header of its opcode.
    Truncated,
    UnknownOpcode(u16),
    /// The filename or mode string has no terminating NUL.
    Unterminated(&'static str),
    EmptyFilename,
    TooManyOptions,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated => write!(f, "truncated packet"),
            ParseError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ParseError::Unterminated(what) => write!(f, "{what} is not NUL-terminated"),
            ParseError::EmptyFilename => write!(f, "empty filename"),
            ParseError::TooManyOptions => write!(f, "more than {MAX_OPTIONS} options"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Splits off one NUL-terminated string; `None` when there is no NUL.
fn take_cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = buf.iter().position(|&b| b == 0)?;
    Some((&buf[..nul], &buf[nul + 1..]))
}

/// Option name/value pairs as they appear on the wire.
pub type RawOptions<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Parses `name\0value\0` pairs. Returns the pairs and whether bytes were
/// left over that did not form a complete pair.
fn parse_options(mut rest: &[u8]) -> Result<(RawOptions<'_>, bool), ParseError> {
    let mut options = Vec::new();
    while !rest.is_empty() {
        let Some((name, after_name)) = take_cstr(rest) else {
            return Ok((options, true));
        };
        let Some((value, after_value)) = take_cstr(after_name) else {
            return Ok((options, true));
        };
        if options.len() == MAX_OPTIONS {
            return Err(ParseError::TooManyOptions);
        }
        options.push((name, value));
        rest = after_value;
    }
    Ok((options, false))
}

/// Decodes one TFTP datagram.
pub fn parse(buf: &[u8]) -> Result<Packet<'_>, ParseError> {
    if buf.len() < 2 {
        return Err(ParseError::Truncated);
    }
    let opcode = u16::from_be_bytes([buf[0], buf[1]]);
    let body = &buf[2..];
    match opcode {
        OP_RRQ | OP_WRQ => {
            let (filename, rest) = take_cstr(body).ok_or(ParseError::Unterminated("filename"))?;
            if filename.is_empty() {
                return Err(ParseError::EmptyFilename);
            }
            let (mode, rest) = take_cstr(rest).ok_or(ParseError::Unterminated("mode"))?;
            let (options, trailing_garbage) = parse_options(rest)?;
            let kind = if opcode == OP_RRQ { RequestKind::Read } else { RequestKind::Write };
            Ok(Packet::Request(Request { kind, filename, mode, options, trailing_garbage }))
        }
        OP_DATA => {
            if body.len() < 2 {
                return Err(ParseError::Truncated);
            }
            Ok(Packet::Data { block: u16::from_be_bytes([body[0], body[1]]), payload: &body[2..] })
        }
        OP_ACK => {
            if body.len() < 2 {
                return Err(ParseError::Truncated);
            }
            Ok(Packet::Ack { block: u16::from_be_bytes([body[0], body[1]]) })
        }
        OP_ERROR => {
            if body.len() < 2 {
                return Err(ParseError::Truncated);
            }
            let code = u16::from_be_bytes([body[0], body[1]]);
            // Many clients omit the NUL; take the message up to a NUL or the end.
            let text = &body[2..];
            let message = take_cstr(text).map_or(text, |(m, _)| m);
            Ok(Packet::Error { code, message })
        }
        OP_OACK => {
            let (options, _) = parse_options(body)?;
            Ok(Packet::Oack { options })
        }
        other => Err(ParseError::UnknownOpcode(other)),
    }
}

/// Writes an ERROR packet into `out` (cleared first). The message is cut
/// so that the packet fits a 512-byte datagram.
pub fn encode_error(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    out.clear();
    out.extend_from_slice(&OP_ERROR.to_be_bytes());
    out.extend_from_slice(&(code as u16).to_be_bytes());
    let mut text = message.as_bytes();
    if text.len() > 500 {
        text = &text[..500];
    }
    // A NUL inside the text would end the message early on the client.
    out.extend(text.iter().map(|&b| if b == 0 { b'?' } else { b }));
    out.push(0);
}

/// Writes an OACK packet into `out` (cleared first).
pub fn encode_oack(out: &mut Vec<u8>, options: &[(&str, String)]) {
    out.clear();
    out.extend_from_slice(&OP_OACK.to_be_bytes());
    for (name, value) in options {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
}

/// Writes the 4-byte DATA header into the start of `buf`; the payload goes
/// right after it, read there directly from the file.
pub fn write_data_header(buf: &mut [u8], block: u16) {
    buf[..2].copy_from_slice(&OP_DATA.to_be_bytes());
    buf[2..4].copy_from_slice(&block.to_be_bytes());
}

/// Builds a request datagram; used by tests and the fuzz target.
pub fn encode_request(kind: RequestKind, filename: &[u8], mode: &[u8], options: &[(&[u8], &[u8])]) -> Vec<u8> {
    let op = match kind {
        RequestKind::Read => OP_RRQ,
        RequestKind::Write => OP_WRQ,
    };
    let mut out = op.to_be_bytes().to_vec();
    for part in [filename, mode] {
        out.extend_from_slice(part);
        out.push(0);
    }
    for (name, value) in options {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
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
        assert_eq!(parse(b""), Err(ParseError::Truncated));
        assert_eq!(parse(b"\x00"), Err(ParseError::Truncated));
        assert_eq!(parse(b"\x00\x01file"), Err(ParseError::Unterminated("filename")));
        assert_eq!(parse(b"\x00\x01file\x00octet"), Err(ParseError::Unterminated("mode")));
        assert_eq!(parse(b"\x00\x01\x00octet\x00"), Err(ParseError::EmptyFilename));
        assert_eq!(parse(b"\x00\x09x"), Err(ParseError::UnknownOpcode(9)));
        assert_eq!(parse(b"\x00\x04\x00"), Err(ParseError::Truncated));
        let Packet::Request(req) = parse(b"\x00\x01f\x00octet\x00blksize\x00").unwrap() else { panic!() };
        assert!(req.trailing_garbage && req.options.is_empty());
    }

    #[test]
    fn too_many_options() {
        let opts: Vec<(&[u8], &[u8])> = (0..=MAX_OPTIONS).map(|_| (&b"x"[..], &b"1"[..])).collect();
        let pkt = encode_request(RequestKind::Read, b"f", b"octet", &opts);
        assert_eq!(parse(&pkt), Err(ParseError::TooManyOptions));
    }

    #[test]
    fn error_roundtrip() {
        let mut out = Vec::new();
        encode_error(&mut out, ErrorCode::FileNotFound, "no\0such");
        assert_eq!(parse(&out), Ok(Packet::Error { code: 1, message: b"no?such" }));
    }
}
