//! MAC addresses and dnsmasq-style MAC patterns.

use super::PolicyError;

pub type Mac = [u8; 6];

pub fn parse_mac(s: &str) -> Result<Mac, PolicyError> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(PolicyError::MacLength(s.to_string()));
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|source| PolicyError::MacByte { s: s.to_string(), source })?;
    }
    Ok(mac)
}

pub fn fmt_mac(mac: &Mac) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// `01-aa-bb-cc-dd-ee-ff`: the PXELINUX per-MAC file name.
pub fn mac_file_name(mac: &Mac) -> String {
    format!("01-{}", mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join("-"))
}

/// A dnsmasq-style MAC pattern: `52:54:00:*:*:*` or `52:54:00:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacPattern(Vec<Option<u8>>);

impl MacPattern {
    pub fn parse(s: &str) -> Result<MacPattern, PolicyError> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.is_empty() || parts.len() > 6 || (parts.len() < 6 && parts.last() != Some(&"*")) {
            return Err(PolicyError::MacPatternLength(s.to_string()));
        }
        let bytes = parts
            .iter()
            .map(|p| if *p == "*" { Ok(None) } else { u8::from_str_radix(p, 16).map(Some) })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| PolicyError::MacPatternByte { s: s.to_string(), source })?;
        Ok(MacPattern(bytes))
    }

    pub fn matches(&self, mac: &Mac) -> bool {
        let n = self.0.len();
        for (i, b) in mac.iter().enumerate() {
            match self.0.get(i) {
                Some(Some(p)) if p != b => return false,
                Some(_) => {}
                // A short pattern ends in '*', which covers the rest.
                None => return n < 6,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_patterns() {
        let m = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        assert!(MacPattern::parse("52:54:00:*").unwrap().matches(&m));
        assert!(MacPattern::parse("52:54:00:*:*:56").unwrap().matches(&m));
        assert!(!MacPattern::parse("52:54:00:*:*:57").unwrap().matches(&m));
        assert!(MacPattern::parse("52:54:00:12:34:56").unwrap().matches(&m));
        assert!(!MacPattern::parse("52:55:*").unwrap().matches(&m));
        assert!(MacPattern::parse("52:54").is_err());
        assert!(MacPattern::parse("52:54:00:12:34:56:78").is_err());
        assert!(MacPattern::parse("5g:*").is_err());
        assert_eq!(parse_mac("52-54-00-12-34-56").unwrap(), m);
        assert_eq!(fmt_mac(&m), "52:54:00:12:34:56");
        assert_eq!(mac_file_name(&m), "01-52-54-00-12-34-56");
    }
}
