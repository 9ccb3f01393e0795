//! A typed, zero-copy view of a DHCP datagram as it arrives: the fixed
//! BOOTP header, the magic cookie and the options after it.
//!
//! `dhcp::sanitize` reads client datagrams through this before dhcproto
//! sees them, so every offset is named once (`field`), every option is
//! reached through an iterator that refuses truncated ones, and the rule
//! for which options survive is a method (`OptionCode::keep`,
//! `Packet::kept_options`) rather than numbers in a match.

/// Offsets into the BOOTP header (RFC 2131, figure 1).
pub mod field {
    use std::ops::Range;

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC_COOKIE: Range<usize> = 236..240;
    /// Where the options start: the end of the fixed header.
    pub const OPTIONS: usize = 240;
}

/// The four bytes that say "DHCP options follow" (RFC 2131 3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// A one-byte option with no length: padding.
pub const PAD: u8 = 0;
/// A one-byte option with no length: the end of the options.
pub const END: u8 = 255;

/// Why a datagram cannot be read; the texts are `sanitize`'s errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the fixed header and cookie.
    ShortHeader,
    NoMagicCookie,
    NotEthernet,
    /// An option code as the last byte, with no length after it.
    NoLength,
    /// An option's length reaches past the end of the datagram.
    Truncated,
    /// The options ran out without an END.
    NoEnd,
}

impl Error {
    pub fn text(self) -> &'static str {
        match self {
            Error::ShortHeader => "shorter than a BOOTP header",
            Error::NoMagicCookie => "no DHCP magic cookie",
            Error::NotEthernet => "hardware address length is not 6 (not Ethernet)",
            Error::NoLength => "option without a length",
            Error::Truncated => "option runs past the end of the datagram",
            Error::NoEnd => "options not terminated by END",
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for Error {}

/// The option codes the server reads from a client; every other code is
/// `Unknown` (and dropped by `sanitize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionCode {
    /// 12
    Hostname,
    /// 43
    VendorSpecific,
    /// 50
    RequestedAddress,
    /// 51
    LeaseTime,
    /// 53
    MessageType,
    /// 54
    ServerId,
    /// 55
    ParameterList,
    /// 57
    MaxMessageSize,
    /// 60
    VendorClass,
    /// 61
    ClientId,
    /// 77
    UserClass,
    /// 93: a list of u16 architecture types.
    ClientArch,
    /// 94: the network interface identifier (type, major, minor).
    ClientNdi,
    /// 97: the client's UUID/GUID.
    ClientGuid,
    /// 175: iPXE's feature list.
    Ipxe,
    Unknown(u8),
}

impl From<u8> for OptionCode {
    fn from(code: u8) -> OptionCode {
        match code {
            12 => OptionCode::Hostname,
            43 => OptionCode::VendorSpecific,
            50 => OptionCode::RequestedAddress,
            51 => OptionCode::LeaseTime,
            53 => OptionCode::MessageType,
            54 => OptionCode::ServerId,
            55 => OptionCode::ParameterList,
            57 => OptionCode::MaxMessageSize,
            60 => OptionCode::VendorClass,
            61 => OptionCode::ClientId,
            77 => OptionCode::UserClass,
            93 => OptionCode::ClientArch,
            94 => OptionCode::ClientNdi,
            97 => OptionCode::ClientGuid,
            175 => OptionCode::Ipxe,
            other => OptionCode::Unknown(other),
        }
    }
}

impl From<OptionCode> for u8 {
    fn from(code: OptionCode) -> u8 {
        match code {
            OptionCode::Hostname => 12,
            OptionCode::VendorSpecific => 43,
            OptionCode::RequestedAddress => 50,
            OptionCode::LeaseTime => 51,
            OptionCode::MessageType => 53,
            OptionCode::ServerId => 54,
            OptionCode::ParameterList => 55,
            OptionCode::MaxMessageSize => 57,
            OptionCode::VendorClass => 60,
            OptionCode::ClientId => 61,
            OptionCode::UserClass => 77,
            OptionCode::ClientArch => 93,
            OptionCode::ClientNdi => 94,
            OptionCode::ClientGuid => 97,
            OptionCode::Ipxe => 175,
            OptionCode::Unknown(c) => c,
        }
    }
}

impl OptionCode {
    /// The part of `value` the server keeps, or `None` when the option is
    /// one it does not read or its length is not the one its meaning
    /// requires (dhcproto would trust a wrong one).
    pub fn keep(self, value: &[u8]) -> Option<&[u8]> {
        use OptionCode::*;
        let len = value.len();
        match self {
            MessageType if len == 1 => Some(value),
            RequestedAddress | LeaseTime | ServerId if len == 4 => Some(value),
            MaxMessageSize if len == 2 => Some(value),
            // Client architecture: a list of u16; the first is the one used.
            ClientArch if len >= 2 => Some(&value[..2]),
            ClientNdi if len == 3 => Some(value),
            Hostname | VendorSpecific | ParameterList | VendorClass | ClientId | UserClass | ClientGuid | Ipxe
                if len >= 1 =>
            {
                Some(value)
            }
            _ => None,
        }
    }
}

/// One option: its code and the `len` bytes after its length byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    pub code: OptionCode,
    pub value: &'a [u8],
}

/// The options after the cookie, in order, PADs skipped, up to END. A
/// truncated option or missing END is yielded as an error, after which
/// the iterator ends.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Options<'a> {
    pub fn new(options: &'a [u8]) -> Options<'a> {
        Options { rest: options, done: false }
    }

    fn fail(&mut self, e: Error) -> Option<Result<DhcpOption<'a>, Error>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<DhcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let Some((&code, after_code)) = self.rest.split_first() else { return self.fail(Error::NoEnd) };
            match code {
                PAD => self.rest = after_code,
                END => {
                    self.done = true;
                    return None;
                }
                _ => {
                    let Some((&len, after_len)) = after_code.split_first() else { return self.fail(Error::NoLength) };
                    let Some(value) = after_len.get(..usize::from(len)) else { return self.fail(Error::Truncated) };
                    self.rest = &after_len[usize::from(len)..];
                    return Some(Ok(DhcpOption { code: OptionCode::from(code), value }));
                }
            }
        }
    }
}

impl std::iter::FusedIterator for Options<'_> {}

/// A read-only view of a DHCP datagram over any byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without looking at it; the accessors panic if it is
    /// shorter than the header (use `new_checked`).
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` if it holds at least the fixed header and cookie.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < field::OPTIONS {
            return Err(Error::ShortHeader);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// 1 for a request, 2 for a reply.
    pub fn opcode(&self) -> u8 {
        self.buffer.as_ref()[field::OP]
    }

    pub fn hardware_type(&self) -> u8 {
        self.buffer.as_ref()[field::HTYPE]
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn xid(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::XID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn magic_cookie(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::MAGIC_COOKIE];
        [b[0], b[1], b[2], b[3]]
    }

    /// The fixed header and cookie, as they came.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..field::OPTIONS]
    }

    pub fn options(&self) -> Options<'_> {
        Options::new(&self.buffer.as_ref()[field::OPTIONS..])
    }

    /// The options a server keeps, in the order they came: each as
    /// `OptionCode::keep` cuts it, only the first of each code (dhcproto
    /// joins repeated options, RFC 3396, which would undo the length
    /// checks), and only if the options end with END.
    pub fn kept_options(&self) -> Result<Vec<(OptionCode, &[u8])>, Error> {
        let mut seen = [false; 256];
        let mut kept = vec![];
        for option in self.options() {
            let DhcpOption { code, value } = option?;
            if let Some(v) =
                code.keep(value).filter(|_| !std::mem::replace(&mut seen[usize::from(u8::from(code))], true))
            {
                kept.push((code, v));
            }
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request header (Ethernet, cookie) followed by `options`.
    fn packet(options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; field::OPTIONS];
        p[field::OP] = 1;
        p[field::HTYPE] = 1;
        p[field::HLEN] = 6;
        p[field::XID].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        p[field::MAGIC_COOKIE].copy_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(options);
        p
    }

    fn all(p: &[u8]) -> Vec<Result<DhcpOption<'_>, Error>> {
        assert!(Packet::new_checked(p).is_ok());
        Options::new(&p[field::OPTIONS..]).collect()
    }

    #[test]
    fn header_fields() {
        let p = packet(&[END]);
        let v = Packet::new_checked(&p[..]).unwrap();
        assert_eq!((v.opcode(), v.hardware_type(), v.hardware_len()), (1, 1, 6));
        assert_eq!(v.xid(), 0x1234_5678);
        assert_eq!(v.magic_cookie(), MAGIC_COOKIE);
        assert_eq!(v.header(), &p[..240]);
    }

    #[test]
    fn short_header() {
        let p = packet(&[]);
        assert_eq!(Packet::new_checked(&p[..239]).unwrap_err(), Error::ShortHeader);
        assert_eq!(Packet::new_checked(&[][..]).unwrap_err(), Error::ShortHeader);
        assert!(Packet::new_checked(&p[..240]).is_ok(), "a bare header is a header");
    }

    #[test]
    fn options_are_typed_and_pads_skipped() {
        let p = packet(&[PAD, 53, 1, 1, PAD, PAD, 93, 2, 0, 7, 200, 1, 9, END, 53, 1, 3]);
        assert_eq!(
            all(&p),
            [
                Ok(DhcpOption { code: OptionCode::MessageType, value: &[1] }),
                Ok(DhcpOption { code: OptionCode::ClientArch, value: &[0, 7] }),
                Ok(DhcpOption { code: OptionCode::Unknown(200), value: &[9] }),
            ],
            "nothing after END is read"
        );
        assert_eq!(all(&packet(&[PAD, PAD, END])), []);
    }

    #[test]
    fn truncated_options() {
        assert_eq!(
            all(&packet(&[53, 1, 1, 60])),
            [Ok(DhcpOption { code: OptionCode::MessageType, value: &[1] }), Err(Error::NoLength)]
        );
        assert_eq!(all(&packet(&[60, 9, b'P', b'X', END])), [Err(Error::Truncated)]);
        // A zero-length option is whole.
        assert_eq!(all(&packet(&[60, 0, END])), [Ok(DhcpOption { code: OptionCode::VendorClass, value: &[] })]);
    }

    #[test]
    fn missing_end() {
        assert_eq!(
            all(&packet(&[53, 1, 1, PAD])),
            [Ok(DhcpOption { code: OptionCode::MessageType, value: &[1] }), Err(Error::NoEnd)]
        );
        assert_eq!(all(&packet(&[])), [Err(Error::NoEnd)]);
        assert_eq!(Packet::new_checked(packet(&[53, 1, 1])).unwrap().kept_options(), Err(Error::NoEnd));
    }

    #[test]
    fn codes_round_trip() {
        for c in 0..=255u8 {
            assert_eq!(u8::from(OptionCode::from(c)), c);
        }
        assert_eq!(OptionCode::from(97), OptionCode::ClientGuid);
        assert_eq!(OptionCode::from(1), OptionCode::Unknown(1));
    }

    #[test]
    fn keep_rule_checks_each_length() {
        use OptionCode::*;
        assert_eq!(MessageType.keep(&[1]), Some(&[1][..]));
        assert_eq!(MessageType.keep(&[1, 2]), None);
        assert_eq!(ServerId.keep(&[10, 0, 0, 1]), Some(&[10, 0, 0, 1][..]));
        assert_eq!(RequestedAddress.keep(&[10, 0, 0]), None);
        assert_eq!(MaxMessageSize.keep(&[2, 64]), Some(&[2, 64][..]));
        assert_eq!(ClientArch.keep(&[0, 7, 0, 9]), Some(&[0, 7][..]), "only the first architecture");
        assert_eq!(ClientArch.keep(&[0]), None);
        assert_eq!(ClientNdi.keep(&[1, 2, 1]), Some(&[1, 2, 1][..]));
        assert_eq!(ClientNdi.keep(&[1, 2, 1, 1, 2, 1]), None);
        assert_eq!(UserClass.keep(b"iPXE"), Some(&b"iPXE"[..]));
        assert_eq!(Hostname.keep(&[]), None);
        assert_eq!(Unknown(1).keep(&[255, 255, 255, 0]), None);
    }

    #[test]
    fn repeated_option_keeps_the_first() {
        // Option 94 twice: dhcproto would join them into 6 bytes.
        let p = packet(&[94, 3, 1, 2, 1, 53, 1, 1, 94, 3, 1, 3, 0, 53, 1, 3, 1, 4, 255, 255, 255, 0, END]);
        let view = Packet::new_checked(&p[..]).unwrap();
        let kept = view.kept_options().unwrap();
        assert_eq!(kept, [(OptionCode::ClientNdi, &[1, 2, 1][..]), (OptionCode::MessageType, &[1][..])]);
    }

    #[test]
    fn an_option_of_the_wrong_length_does_not_hide_a_later_good_one() {
        let p = packet(&[53, 2, 1, 1, 53, 1, 3, END]);
        let view = Packet::new_checked(&p[..]).unwrap();
        let kept = view.kept_options().unwrap();
        assert_eq!(kept, [(OptionCode::MessageType, &[3][..])]);
    }
}
