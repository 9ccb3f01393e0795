//! TFTP packet encoding and decoding (RFC 1350, RFC 2347 OACK).
//!
//! Parsing borrows from the datagram and never panics, whatever the input:
//! every length is checked before it is used. Encoders write into a
//! caller-supplied buffer and report `BufferTooSmall` instead of panicking.

use core::fmt;

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// Error codes of RFC 1350 and RFC 2347.
pub mod code {
    pub const NOT_DEFINED: u16 = 0;
    pub const FILE_NOT_FOUND: u16 = 1;
    pub const ACCESS_VIOLATION: u16 = 2;
    pub const DISK_FULL: u16 = 3;
    pub const ILLEGAL_OPERATION: u16 = 4;
    pub const UNKNOWN_TID: u16 = 5;
    pub const FILE_EXISTS: u16 = 6;
    pub const NO_SUCH_USER: u16 = 7;
    pub const OPTION_REFUSED: u16 = 8;
}

/// The standard meaning of an error code, for messages.
pub fn code_name(code: u16) -> &'static str {
    match code {
        code::NOT_DEFINED => "not defined",
        code::FILE_NOT_FOUND => "file not found",
        code::ACCESS_VIOLATION => "access violation",
        code::DISK_FULL => "disk full or allocation exceeded",
        code::ILLEGAL_OPERATION => "illegal TFTP operation",
        code::UNKNOWN_TID => "unknown transfer ID",
        code::FILE_EXISTS => "file already exists",
        code::NO_SUCH_USER => "no such user",
        code::OPTION_REFUSED => "option negotiation refused",
        _ => "unknown error code",
    }
}

/// Largest block size RFC 2348 allows.
pub const MAX_BLKSIZE: u16 = 65464;
/// Smallest block size RFC 2348 allows.
pub const MIN_BLKSIZE: u16 = 8;
/// Plain RFC 1350 block size.
pub const DEFAULT_BLKSIZE: u16 = 512;

/// A decoded TFTP packet, borrowing from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Rrq {
        filename: &'a str,
        mode: &'a str,
        options: Options<'a>,
    },
    Wrq {
        filename: &'a str,
        mode: &'a str,
        options: Options<'a>,
    },
    Data {
        block: u16,
        data: &'a [u8],
    },
    Ack {
        block: u16,
    },
    /// `message` is the server's text; bytes that are not UTF-8 and
    /// anything from the first invalid byte on are dropped, and a missing
    /// NUL terminator is tolerated (some servers omit it).
    Error {
        code: u16,
        message: &'a str,
    },
    Oack {
        options: Options<'a>,
    },
}

/// Why a datagram is not a TFTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the fixed part of its packet type.
    Truncated,
    UnknownOpcode(u16),
    /// A string field without its NUL terminator.
    Unterminated,
    /// A filename, mode or option that is not UTF-8.
    NotUtf8,
    /// An option name without a value.
    OddOptions,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated => f.write_str("truncated packet"),
            ParseError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ParseError::Unterminated => f.write_str("string field without NUL terminator"),
            ParseError::NotUtf8 => f.write_str("string field is not UTF-8"),
            ParseError::OddOptions => f.write_str("option name without a value"),
        }
    }
}

/// The option list of an RRQ/WRQ/OACK: validated NUL-terminated
/// `name\0value\0` pairs, iterated without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    raw: &'a [u8],
}

impl<'a> Options<'a> {
    /// Validates `raw` (a sequence of `name\0value\0` pairs).
    pub fn parse(raw: &'a [u8]) -> Result<Options<'a>, ParseError> {
        let mut rest = raw;
        while !rest.is_empty() {
            let (_, r) = take_str(rest)?;
            if r.is_empty() {
                return Err(ParseError::OddOptions);
            }
            let (_, r) = take_str(r)?;
            rest = r;
        }
        Ok(Options { raw })
    }

    pub fn empty() -> Options<'static> {
        Options { raw: &[] }
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn iter(&self) -> OptionsIter<'a> {
        OptionsIter { rest: self.raw }
    }

    /// The value of option `name` (case-insensitive, as RFC 2347 says).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

pub struct OptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        // Validated by `Options::parse`, so errors cannot happen here; stop
        // quietly rather than panic if they somehow do.
        let (name, r) = take_str(self.rest).ok()?;
        let (value, r) = take_str(r).ok()?;
        self.rest = r;
        Some((name, value))
    }
}

/// Splits off one NUL-terminated field.
fn take_cstr(b: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    let nul = b.iter().position(|&c| c == 0).ok_or(ParseError::Unterminated)?;
    Ok((&b[..nul], &b[nul + 1..]))
}

fn utf8(b: &[u8]) -> Result<&str, ParseError> {
    core::str::from_utf8(b).map_err(|_| ParseError::NotUtf8)
}

fn take_str(b: &[u8]) -> Result<(&str, &[u8]), ParseError> {
    let (field, rest) = take_cstr(b)?;
    Ok((utf8(field)?, rest))
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// A TFTP packet framed but not interpreted: string fields are raw bytes
/// and option lists are left unsplit. [`Packet::parse`] is built on it; a
/// server uses it directly, because a server has to answer requests that
/// the client side would reject outright (a filename that is not UTF-8
/// gets "file not found", an incomplete last option is ignored, as
/// tftp-hpa and dnsmasq do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawPacket<'a> {
    Rrq {
        filename: &'a [u8],
        mode: &'a [u8],
        options: &'a [u8],
    },
    Wrq {
        filename: &'a [u8],
        mode: &'a [u8],
        options: &'a [u8],
    },
    Data {
        block: u16,
        data: &'a [u8],
    },
    Ack {
        block: u16,
    },
    /// `message` runs to the first NUL or, if there is none, to the end.
    Error {
        code: u16,
        message: &'a [u8],
    },
    Oack {
        options: &'a [u8],
    },
}

impl<'a> RawPacket<'a> {
    /// Fails only on what cannot be framed at all: too short for the
    /// opcode's fixed part, an unknown opcode, or a request whose filename
    /// or mode has no NUL terminator.
    pub fn parse(b: &'a [u8]) -> Result<RawPacket<'a>, ParseError> {
        if b.len() < 2 {
            return Err(ParseError::Truncated);
        }
        let op = be16(b);
        let body = &b[2..];
        match op {
            OP_RRQ | OP_WRQ => {
                let (filename, r) = take_cstr(body)?;
                let (mode, options) = take_cstr(r)?;
                Ok(if op == OP_RRQ {
                    RawPacket::Rrq { filename, mode, options }
                } else {
                    RawPacket::Wrq { filename, mode, options }
                })
            }
            OP_DATA => {
                if body.len() < 2 {
                    return Err(ParseError::Truncated);
                }
                Ok(RawPacket::Data { block: be16(body), data: &body[2..] })
            }
            OP_ACK => {
                if body.len() < 2 {
                    return Err(ParseError::Truncated);
                }
                Ok(RawPacket::Ack { block: be16(body) })
            }
            OP_ERROR => {
                if body.len() < 2 {
                    return Err(ParseError::Truncated);
                }
                let text = &body[2..];
                let message = take_cstr(text).map_or(text, |(m, _)| m);
                Ok(RawPacket::Error { code: be16(body), message })
            }
            OP_OACK => Ok(RawPacket::Oack { options: body }),
            other => Err(ParseError::UnknownOpcode(other)),
        }
    }
}

/// The complete `name\0value\0` pairs of a raw option list, as bytes, in
/// wire order. Whatever does not form a complete pair at the end is left
/// in [`OptionPairs::rest`].
pub fn option_pairs(raw: &[u8]) -> OptionPairs<'_> {
    OptionPairs { rest: raw }
}

pub struct OptionPairs<'a> {
    rest: &'a [u8],
}

impl<'a> OptionPairs<'a> {
    /// The bytes not yet split into pairs; after iteration ends, non-empty
    /// means an option name without a value or a field without its NUL.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for OptionPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (name, r) = take_cstr(self.rest).ok()?;
        let (value, r) = take_cstr(r).ok()?;
        self.rest = r;
        Some((name, value))
    }
}

impl<'a> Packet<'a> {
    /// Strict: string fields must be UTF-8 and option lists complete.
    pub fn parse(b: &'a [u8]) -> Result<Packet<'a>, ParseError> {
        Ok(match RawPacket::parse(b)? {
            RawPacket::Rrq { filename, mode, options } => {
                Packet::Rrq { filename: utf8(filename)?, mode: utf8(mode)?, options: Options::parse(options)? }
            }
            RawPacket::Wrq { filename, mode, options } => {
                Packet::Wrq { filename: utf8(filename)?, mode: utf8(mode)?, options: Options::parse(options)? }
            }
            RawPacket::Data { block, data } => Packet::Data { block, data },
            RawPacket::Ack { block } => Packet::Ack { block },
            RawPacket::Error { code, message } => {
                let message = match core::str::from_utf8(message) {
                    Ok(s) => s,
                    // The valid prefix; `valid_up_to` guarantees it decodes.
                    Err(e) => core::str::from_utf8(&message[..e.valid_up_to()]).unwrap_or(""),
                };
                Packet::Error { code, message }
            }
            RawPacket::Oack { options } => Packet::Oack { options: Options::parse(options)? },
        })
    }
}

/// The buffer given to an encoder is too small for the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    pub need: usize,
    pub have: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TFTP packet needs {} bytes, buffer has {}", self.need, self.have)
    }
}

/// Sequential writer over the caller's buffer.
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    need: usize,
}

impl<'b> Writer<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, len: 0, need: 0 }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.need += b.len();
        if self.need <= self.buf.len() {
            self.buf[self.len..self.need].copy_from_slice(b);
            self.len = self.need;
        }
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    /// A string field; an embedded NUL would end the field early on the
    /// other side, so it is cut there.
    fn str0(&mut self, s: &str) {
        let b = s.as_bytes();
        let b = match b.iter().position(|&c| c == 0) {
            Some(n) => &b[..n],
            None => b,
        };
        self.bytes(b);
        self.bytes(&[0]);
    }
    fn finish(self) -> Result<usize, BufferTooSmall> {
        if self.need <= self.buf.len() {
            Ok(self.len)
        } else {
            Err(BufferTooSmall { need: self.need, have: self.buf.len() })
        }
    }
}

/// Decimal text of `v` in `out` (u64 needs at most 20 digits).
pub fn decimal(v: u64, out: &mut [u8; 20]) -> &str {
    let mut i = out.len();
    let mut v = v;
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    core::str::from_utf8(&out[i..]).unwrap_or("0")
}

fn encode_request(
    op: u16,
    buf: &mut [u8],
    filename: &str,
    mode: &str,
    options: &[(&str, &str)],
) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(buf);
    w.u16(op);
    w.str0(filename);
    w.str0(mode);
    for (n, v) in options {
        w.str0(n);
        w.str0(v);
    }
    w.finish()
}

/// RRQ `filename`, `mode` (use "octet"), then the option pairs.
pub fn encode_rrq(
    buf: &mut [u8],
    filename: &str,
    mode: &str,
    options: &[(&str, &str)],
) -> Result<usize, BufferTooSmall> {
    encode_request(OP_RRQ, buf, filename, mode, options)
}

pub fn encode_wrq(
    buf: &mut [u8],
    filename: &str,
    mode: &str,
    options: &[(&str, &str)],
) -> Result<usize, BufferTooSmall> {
    encode_request(OP_WRQ, buf, filename, mode, options)
}

pub fn encode_ack(buf: &mut [u8], block: u16) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(buf);
    w.u16(OP_ACK);
    w.u16(block);
    w.finish()
}

pub fn encode_error(buf: &mut [u8], code: u16, message: &str) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(buf);
    w.u16(OP_ERROR);
    w.u16(code);
    w.str0(message);
    w.finish()
}

pub fn encode_oack(buf: &mut [u8], options: &[(&str, &str)]) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(buf);
    w.u16(OP_OACK);
    for (n, v) in options {
        w.str0(n);
        w.str0(v);
    }
    w.finish()
}

/// The 4-byte DATA header; a server can then read the payload straight
/// into `buf[4..]` without a second copy.
pub fn encode_data_header(buf: &mut [u8], block: u16) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(buf);
    w.u16(OP_DATA);
    w.u16(block);
    w.finish()
}

pub fn encode_data(buf: &mut [u8], block: u16, data: &[u8]) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(buf);
    w.u16(OP_DATA);
    w.u16(block);
    w.bytes(data);
    w.finish()
}
