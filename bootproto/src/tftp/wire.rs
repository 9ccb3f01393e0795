//! TFTP packet encoding and decoding (RFC 1350, RFC 2347 OACK).
//!
//! Parsing borrows from the datagram and never panics, whatever the input:
//! every length is checked before it is used. What is sent is an
//! [`Outgoing`] packet: [`Outgoing::buffer_len`] says how many bytes it
//! takes, [`Outgoing::emit`] writes it into a caller-supplied buffer and
//! reports `BufferTooSmall` instead of panicking.

use crate::bytes::{be_u16, Writer};
use core::fmt;

pub use crate::bytes::BufferTooSmall;

/// The first two bytes of every packet (RFC 1350, RFC 2347 for OACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Rrq,
    Wrq,
    Data,
    Ack,
    Error,
    Oack,
    Unknown(u16),
}

impl From<u16> for Opcode {
    fn from(v: u16) -> Opcode {
        match v {
            1 => Opcode::Rrq,
            2 => Opcode::Wrq,
            3 => Opcode::Data,
            4 => Opcode::Ack,
            5 => Opcode::Error,
            6 => Opcode::Oack,
            other => Opcode::Unknown(other),
        }
    }
}

impl From<Opcode> for u16 {
    fn from(op: Opcode) -> u16 {
        match op {
            Opcode::Rrq => 1,
            Opcode::Wrq => 2,
            Opcode::Data => 3,
            Opcode::Ack => 4,
            Opcode::Error => 5,
            Opcode::Oack => 6,
            Opcode::Unknown(other) => other,
        }
    }
}

/// Error codes of RFC 1350 section 5 and RFC 2347 (option refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    NotDefined,
    FileNotFound,
    AccessViolation,
    DiskFull,
    IllegalOperation,
    UnknownTid,
    FileExists,
    NoSuchUser,
    OptionRefused,
    /// A code no RFC defines, kept as received.
    Unknown(u16),
}

impl From<u16> for ErrorCode {
    fn from(v: u16) -> ErrorCode {
        match v {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTid,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionRefused,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(c: ErrorCode) -> u16 {
        match c {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTid => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionRefused => 8,
            ErrorCode::Unknown(other) => other,
        }
    }
}

impl ErrorCode {
    /// The standard meaning, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotDefined => "not defined",
            ErrorCode::FileNotFound => "file not found",
            ErrorCode::AccessViolation => "access violation",
            ErrorCode::DiskFull => "disk full or allocation exceeded",
            ErrorCode::IllegalOperation => "illegal TFTP operation",
            ErrorCode::UnknownTid => "unknown transfer ID",
            ErrorCode::FileExists => "file already exists",
            ErrorCode::NoSuchUser => "no such user",
            ErrorCode::OptionRefused => "option negotiation refused",
            ErrorCode::Unknown(_) => "unknown error code",
        }
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
        let op = Opcode::from(be_u16(b, 0).ok_or(ParseError::Truncated)?);
        let body = &b[2..];
        // The block number of DATA and ACK, the code of ERROR.
        let number = || be_u16(body, 0).ok_or(ParseError::Truncated);
        match op {
            Opcode::Rrq | Opcode::Wrq => {
                let (filename, r) = take_cstr(body)?;
                let (mode, options) = take_cstr(r)?;
                Ok(if op == Opcode::Rrq {
                    RawPacket::Rrq { filename, mode, options }
                } else {
                    RawPacket::Wrq { filename, mode, options }
                })
            }
            Opcode::Data => Ok(RawPacket::Data { block: number()?, data: &body[2..] }),
            Opcode::Ack => Ok(RawPacket::Ack { block: number()? }),
            Opcode::Error => {
                let code = number()?;
                let text = &body[2..];
                let message = take_cstr(text).map_or(text, |(m, _)| m);
                Ok(RawPacket::Error { code, message })
            }
            Opcode::Oack => Ok(RawPacket::Oack { options: body }),
            Opcode::Unknown(other) => Err(ParseError::UnknownOpcode(other)),
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

/// A packet to send, borrowing its strings and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// RRQ `filename`, `mode` ("octet" for a boot file), then the option pairs.
    Rrq {
        filename: &'a str,
        mode: &'a str,
        options: &'a [(&'a str, &'a str)],
    },
    Wrq {
        filename: &'a str,
        mode: &'a str,
        options: &'a [(&'a str, &'a str)],
    },
    Data {
        block: u16,
        data: &'a [u8],
    },
    /// The 4-byte DATA header alone, so that a server can read the payload
    /// straight into the buffer after it without a second copy.
    DataHeader {
        block: u16,
    },
    Ack {
        block: u16,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
    },
    Oack {
        options: &'a [(&'a str, &'a str)],
    },
}

impl Outgoing<'_> {
    pub fn opcode(&self) -> Opcode {
        match self {
            Outgoing::Rrq { .. } => Opcode::Rrq,
            Outgoing::Wrq { .. } => Opcode::Wrq,
            Outgoing::Data { .. } | Outgoing::DataHeader { .. } => Opcode::Data,
            Outgoing::Ack { .. } => Opcode::Ack,
            Outgoing::Error { .. } => Opcode::Error,
            Outgoing::Oack { .. } => Opcode::Oack,
        }
    }

    /// The packet's length in bytes.
    pub fn buffer_len(&self) -> usize {
        let mut w = Writer::counter();
        self.write(&mut w);
        w.len()
    }

    /// Writes the packet at the start of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(buf);
        self.write(&mut w);
        w.finish()
    }

    fn write(&self, w: &mut Writer) {
        w.be_u16(self.opcode().into());
        match *self {
            Outgoing::Rrq { filename, mode, options } | Outgoing::Wrq { filename, mode, options } => {
                str0(w, filename);
                str0(w, mode);
                option_list(w, options);
            }
            Outgoing::Data { block, data } => {
                w.be_u16(block);
                w.bytes(data);
            }
            Outgoing::DataHeader { block } | Outgoing::Ack { block } => w.be_u16(block),
            Outgoing::Error { code, message } => {
                w.be_u16(code.into());
                str0(w, message);
            }
            Outgoing::Oack { options } => option_list(w, options),
        }
    }
}

/// A string field; an embedded NUL would end the field early on the other
/// side, so it is cut there.
fn str0(w: &mut Writer, s: &str) {
    let b = s.as_bytes();
    let b = match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    };
    w.bytes(b);
    w.u8(0);
}

fn option_list(w: &mut Writer, options: &[(&str, &str)]) {
    for (n, v) in options {
        str0(w, n);
        str0(w, v);
    }
}

// Shorthands for `Outgoing::emit`, for the client and the tests.

pub fn encode_rrq(
    buf: &mut [u8],
    filename: &str,
    mode: &str,
    options: &[(&str, &str)],
) -> Result<usize, BufferTooSmall> {
    Outgoing::Rrq { filename, mode, options }.emit(buf)
}

pub fn encode_wrq(
    buf: &mut [u8],
    filename: &str,
    mode: &str,
    options: &[(&str, &str)],
) -> Result<usize, BufferTooSmall> {
    Outgoing::Wrq { filename, mode, options }.emit(buf)
}

pub fn encode_ack(buf: &mut [u8], block: u16) -> Result<usize, BufferTooSmall> {
    Outgoing::Ack { block }.emit(buf)
}

pub fn encode_error(buf: &mut [u8], code: u16, message: &str) -> Result<usize, BufferTooSmall> {
    Outgoing::Error { code: code.into(), message }.emit(buf)
}

pub fn encode_oack(buf: &mut [u8], options: &[(&str, &str)]) -> Result<usize, BufferTooSmall> {
    Outgoing::Oack { options }.emit(buf)
}

pub fn encode_data_header(buf: &mut [u8], block: u16) -> Result<usize, BufferTooSmall> {
    Outgoing::DataHeader { block }.emit(buf)
}

pub fn encode_data(buf: &mut [u8], block: u16, data: &[u8]) -> Result<usize, BufferTooSmall> {
    Outgoing::Data { block, data }.emit(buf)
}
