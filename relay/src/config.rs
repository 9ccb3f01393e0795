//! The optional TOML configuration of `relay serve`.
//!
//! With no file, everything has a default that suits a dedicated cable to
//! one target: the whole subnet of the interface, built-in tagging rules.
//!
//! ```toml
//! [dhcp]
//! range = ["10.0.0.100", "10.0.0.199"]   # default: .100-.199 of the subnet, clipped
//! lease_secs = 3600
//! router = "10.0.0.1"                    # default: none (a direct cable has no router)
//! dns = ["10.0.0.1"]
//!
//! [[host]]                               # static reservation
//! mac = "52:54:00:12:34:56"
//! ip = "10.0.0.50"
//! hostname = "aronnax"
//!
//! [[rule]]                               # first matching rule wins, before the built-ins
//! name = "nautilus-dev"
//! mac = "52:54:00:*"
//! user_class = "chainloader"
//! config_file = "chainloader.cfg/nautilus"
//! options = { 12 = "aronnax", 42 = "ip:10.0.0.1", 224 = "hex:01ff" }
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub dhcp: DhcpSection,
    /// Static reservations, by MAC.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostEntry>,
    /// Tagging rules, tried in order before the built-in ones.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpSection {
    /// First and last address of the pool.
    pub range: Option<(Ipv4Addr, Ipv4Addr)>,
    pub lease_secs: Option<u32>,
    pub router: Option<Ipv4Addr>,
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// Where leases are kept (default /var/lib/relay, or --state-dir).
    pub state_dir: Option<PathBuf>,
    /// Skip the background conflict probe of pool addresses.
    #[serde(default)]
    pub no_probe: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub mac: String,
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
}

/// One tagging rule: every condition given must hold (conditions not given
/// match anything); then the actions apply.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    // -- conditions (dnsmasq: dhcp-vendorclass, dhcp-userclass, dhcp-match, dhcp-mac, interface)
    /// Prefix of option 60, e.g. "PXEClient".
    pub vendor_class: Option<String>,
    /// One entry of option 77 (RFC 3004 list, or the raw string iPXE sends).
    pub user_class: Option<String>,
    /// Client architectures (option 93), e.g. [0] for BIOS, [7, 9] for x86-64 EFI.
    pub arch: Option<Vec<u16>>,
    /// Whether iPXE's encapsulated option 175 is present.
    pub ipxe: Option<bool>,
    /// MAC pattern, '*' matches one byte; a trailing '*' matches the rest.
    pub mac: Option<String>,
    /// Only on this interface.
    pub interface: Option<String>,
    // -- actions
    /// Option 67 and the BOOTP file field. "" means: offer no boot file.
    pub boot_file: Option<String>,
    /// siaddr (default: the interface's own address).
    pub next_server: Option<Ipv4Addr>,
    /// Option 209 (PXELINUX/chainloader config file). `{mac}` is replaced by
    /// `01-aa-bb-cc-dd-ee-ff`.
    pub config_file: Option<String>,
    /// Arbitrary options: code = "text", "ip:1.2.3.4[,5.6.7.8]", "hex:0a0b" or "u32:600".
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("config {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let cfg: Config = toml::from_str(text)?;
        for r in &cfg.rules {
            for (code, v) in &r.options {
                parse_option(code, v).with_context(|| format!("rule {:?}: option {code}", r.name))?;
            }
            if let Some(m) = &r.mac {
                crate::tagging::MacPattern::parse(m).with_context(|| format!("rule {:?}", r.name))?;
            }
        }
        for h in &cfg.hosts {
            crate::tagging::parse_mac(&h.mac).with_context(|| format!("host {}", h.ip))?;
        }
        Ok(cfg)
    }
}

/// An option of a rule: the code (1-254, as TOML keys are strings) and its value.
pub fn parse_option(code: &str, v: &str) -> anyhow::Result<(u8, Vec<u8>)> {
    let c: u8 = code.trim().parse().with_context(|| format!("{code:?} is not an option code (1-254)"))?;
    anyhow::ensure!((1..=254).contains(&c), "option code {c} is reserved");
    Ok((c, parse_option_value(v)?))
}

/// Encodes an option value written in the config.
pub fn parse_option_value(v: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(ips) = v.strip_prefix("ip:") {
        let mut out = vec![];
        for ip in ips.split(',') {
            let ip: Ipv4Addr = ip.trim().parse().with_context(|| format!("{ip:?} is not an IPv4 address"))?;
            out.extend_from_slice(&ip.octets());
        }
        Ok(out)
    } else if let Some(hex) = v.strip_prefix("hex:") {
        let hex: String = hex.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        anyhow::ensure!(hex.len().is_multiple_of(2), "hex value {v:?} has an odd number of digits");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).with_context(|| format!("{v:?} is not hex")))
            .collect()
    } else if let Some(n) = v.strip_prefix("u32:") {
        Ok(n.trim().parse::<u32>().with_context(|| format!("{v:?} is not a u32"))?.to_be_bytes().to_vec())
    } else {
        Ok(v.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config_parses() {
        let c = Config::parse(
            r#"
            [dhcp]
            range = ["10.0.0.100", "10.0.0.110"]
            lease_secs = 600
            [[host]]
            mac = "52:54:00:12:34:56"
            ip = "10.0.0.50"
            [[rule]]
            name = "dev"
            mac = "52:54:00:*"
            user_class = "chainloader"
            config_file = "chainloader.cfg/dev"
            options = { 12 = "aronnax", 42 = "ip:10.0.0.1", 224 = "hex:01ff", 51 = "u32:60" }
            "#,
        )
        .unwrap();
        assert_eq!(c.dhcp.range, Some((Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 110))));
        assert_eq!(c.hosts[0].ip, Ipv4Addr::new(10, 0, 0, 50));
        assert_eq!(c.rules[0].options.len(), 4);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let e = Config::parse("[[rule]]\nname = \"x\"\noptions = { 3 = \"ip:300.1.1.1\" }\n").unwrap_err();
        assert!(format!("{e:#}").contains("option 3"), "{e:#}");
        assert!(Config::parse("[[rule]]\nname = \"x\"\nmac = \"zz:*\"\n").is_err());
        assert!(Config::parse("[dhcp]\nrnage = 1\n").is_err());
    }

    #[test]
    fn option_values() {
        assert_eq!(parse_option_value("ip:1.2.3.4,5.6.7.8").unwrap(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(parse_option_value("hex:0a:0B").unwrap(), [10, 11]);
        assert_eq!(parse_option_value("u32:600").unwrap(), [0, 0, 2, 88]);
        assert_eq!(parse_option_value("abc").unwrap(), b"abc");
        assert!(parse_option_value("hex:abc").is_err());
    }
}
