//! RFC 2347 option negotiation: blksize (RFC 2348), tsize and timeout
//! (RFC 2349), windowsize (RFC 7440).
//!
//! Only options the server accepts appear in the OACK, in the client's
//! order; unknown, malformed, out-of-range and repeated options are left
//! out, which RFC 2347 lets the client treat as "not granted".

/// RFC 2348: the largest block size a client may ask for.
pub const BLKSIZE_MAX: u16 = bootproto::tftp::wire::MAX_BLKSIZE;
/// RFC 2348: the smallest block size a client may ask for.
pub const BLKSIZE_MIN: u16 = bootproto::tftp::wire::MIN_BLKSIZE;
/// The block size without options (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = bootproto::tftp::wire::DEFAULT_BLKSIZE;

/// What the server is willing to grant for one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest blksize granted: the configured maximum capped by the path
    /// MTU minus 32 bytes of IPv4/UDP/TFTP headers.
    pub max_blksize: u16,
    /// Largest windowsize granted.
    pub max_windowsize: u16,
}

/// The outcome of negotiation for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    pub windowsize: u16,
    /// Retransmission timeout in seconds, when the client asked for one in
    /// range (1..=255).
    pub timeout_secs: Option<u8>,
    /// The options granted, in the client's order, as they go in the OACK.
    /// Empty means no OACK: the transfer starts with DATA block 1.
    pub granted: Vec<(&'static str, String)>,
}

impl Negotiated {
    /// `blksize=1468 tsize=1048583 windowsize=8`, or `none`.
    pub fn describe(&self) -> String {
        if self.granted.is_empty() {
            return "none".to_string();
        }
        let parts: Vec<String> = self.granted.iter().map(|(n, v)| format!("{n}={v}")).collect();
        parts.join(" ")
    }
}

/// Parses an option value: ASCII decimal digits only, no sign, no spaces.
fn parse_number(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Decides which of the client's options to grant. `file_size` is the size
/// reported for `tsize`.
pub fn negotiate(options: &[(&[u8], &[u8])], limits: &Limits, file_size: u64) -> Negotiated {
    let max_blksize = limits.max_blksize.clamp(BLKSIZE_MIN, BLKSIZE_MAX);
    let max_windowsize = limits.max_windowsize.max(1);
    let mut out = Negotiated { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeout_secs: None, granted: Vec::new() };
    for (name, value) in options {
        let canonical = ["blksize", "tsize", "timeout", "windowsize"]
            .into_iter()
            .find(|known| name.eq_ignore_ascii_case(known.as_bytes()));
        let Some(canonical) = canonical else { continue };
        if out.granted.iter().any(|(n, _)| *n == canonical) {
            continue; // a repeated option: the first one counts
        }
        if canonical == "tsize" {
            // RFC 2349 wants "0" in a read request, but the value carries no
            // meaning there and atftp 0.8 sends "enable"; dnsmasq accepts
            // any value too.
            out.granted.push(("tsize", file_size.to_string()));
            continue;
        }
        let Some(number) = parse_number(value) else { continue };
        let granted = match canonical {
            "blksize" if number >= u64::from(BLKSIZE_MIN) => {
                out.blksize = number.min(u64::from(max_blksize)) as u16;
                out.blksize.to_string()
            }
            "timeout" if (1..=255).contains(&number) => {
                out.timeout_secs = Some(number as u8);
                number.to_string()
            }
            "windowsize" if (1..=65535).contains(&number) => {
                out.windowsize = number.min(u64::from(max_windowsize)) as u16;
                out.windowsize.to_string()
            }
            _ => continue,
        };
        out.granted.push((canonical, granted));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_blksize: 1468, max_windowsize: 64 };

    fn opts<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
        pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect()
    }

    #[test]
    fn no_options_means_plain_transfer() {
        let n = negotiate(&[], &LIMITS, 10);
        assert_eq!((n.blksize, n.windowsize, n.timeout_secs), (512, 1, None));
        assert!(n.granted.is_empty());
    }

    #[test]
    fn grants_and_caps() {
        let o = opts(&[("TSIZE", "0"), ("blksize", "65464"), ("windowsize", "1000"), ("timeout", "3"), ("foo", "1")]);
        let n = negotiate(&o, &LIMITS, 4242);
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.windowsize, 64);
        assert_eq!(n.timeout_secs, Some(3));
        assert_eq!(n.describe(), "tsize=4242 blksize=1468 windowsize=64 timeout=3");
    }

    #[test]
    fn ignores_out_of_range_and_garbage() {
        let o = opts(&[("blksize", "7"), ("timeout", "0"), ("timeout", "256"), ("windowsize", "0"), ("blksize", "+9")]);
        let n = negotiate(&o, &LIMITS, 1);
        assert!(n.granted.is_empty(), "{:?}", n.granted);
        // atftp 0.8 sends "tsize enable": still answered with the size.
        assert_eq!(negotiate(&opts(&[("tsize", "enable")]), &LIMITS, 77).describe(), "tsize=77");
        let o = opts(&[("blksize", "99999999999999999999999"), ("blksize", "1024")]);
        assert_eq!(negotiate(&o, &LIMITS, 1).blksize, 1024);
        let o = opts(&[("blksize", "1024"), ("blksize", "512")]);
        assert_eq!(negotiate(&o, &LIMITS, 1).describe(), "blksize=1024");
    }
}
