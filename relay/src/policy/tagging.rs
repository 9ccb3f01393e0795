//! Tagging: what a client is (from its DHCP request) and what it gets.
//!
//! In the spirit of dnsmasq's `dhcp-vendorclass`, `dhcp-userclass`,
//! `dhcp-match` and `dhcp-mac`, but simpler to read: the built-in rules
//! pick a decision for every client, then the first matching user rule from
//! the config overrides the fields it sets (boot file, next-server, config
//! file, options).

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, OptionCode};

use super::config::RuleConfig;
pub use super::mac::{fmt_mac, mac_file_name, parse_mac, Mac, MacPattern};
use super::PolicyError;

/// The NBP served to BIOS PXE ROMs.
pub const CHAINLOADER: &str = "chainloader.0";
/// The user class (option 77) the chainloader sends.
pub const CHAINLOADER_USER_CLASS: &str = "chainloader";

/// What a DHCP request says about its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub mac: Mac,
    pub vendor_class: Option<String>,
    /// Entries of option 77: the RFC 3004 list if it parses as one, else the
    /// raw value as one entry (iPXE and the chainloader send a bare string).
    pub user_classes: Vec<String>,
    pub arch: Option<u16>,
    /// iPXE sends option 175 (its feature list).
    pub ipxe_options: bool,
    pub interface: String,
}

/// Splits option 77. RFC 3004 makes it a list of length-prefixed strings;
/// many clients send one bare string instead. A bare "iPXE" cannot parse
/// as a list ('i' = 105 > remaining length), so the two are told apart by
/// whether the list parse consumes the value exactly.
pub fn user_classes(raw: &[u8]) -> Vec<String> {
    let mut list = vec![];
    let mut rest = raw;
    while let Some((&len, tail)) = rest.split_first() {
        let len = len as usize;
        if len == 0 || len > tail.len() {
            list.clear();
            break;
        }
        list.push(String::from_utf8_lossy(&tail[..len]).into_owned());
        rest = &tail[len..];
    }
    let mut out = vec![String::from_utf8_lossy(raw).into_owned()];
    if rest.is_empty() {
        out.extend(list);
    }
    out
}

impl Client {
    /// None if the message has no Ethernet hardware address.
    pub fn from_message(msg: &Message, interface: &str) -> Option<Client> {
        let chaddr = msg.chaddr();
        if msg.hlen() != 6 || chaddr.len() < 6 {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&chaddr[..6]);
        let opts = msg.opts();
        let vendor_class = match opts.get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(v)) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        };
        let user = match opts.get(OptionCode::UserClass) {
            Some(DhcpOption::UserClass(v)) => user_classes(v),
            _ => vec![],
        };
        let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
            _ => None,
        };
        let ipxe_options = opts.get(OptionCode::from(175u8)).is_some();
        Some(Client { mac, vendor_class, user_classes: user, arch, ipxe_options, interface: interface.to_string() })
    }

    pub fn has_user_class(&self, c: &str) -> bool {
        self.user_classes.iter().any(|u| u == c)
    }

    pub fn is_pxe(&self) -> bool {
        self.vendor_class.as_deref().is_some_and(|v| v.starts_with("PXEClient"))
    }

    pub fn is_ipxe(&self) -> bool {
        self.has_user_class("iPXE") || self.ipxe_options
    }

    pub fn is_chainloader(&self) -> bool {
        self.has_user_class(CHAINLOADER_USER_CLASS)
    }

    /// EFI architectures of RFC 4578 / IANA (6 = IA32, 7 = x64 BC, 9 = x64, 10/11 = ARM, ...).
    pub fn efi_arch(&self) -> Option<u16> {
        self.arch.filter(|a| *a != 0)
    }
}

/// What the client gets for its boot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The rules that produced this, for the log: "builtin:pxe-bios" or
    /// "dev (over builtin:chainloader)".
    pub rule: String,
    pub boot_file: Option<String>,
    pub next_server: Option<Ipv4Addr>,
    pub config_file: Option<ConfigFile>,
    pub options: Vec<(u8, Vec<u8>)>,
    /// Why a client gets nothing to boot, or a remark worth a log line.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    /// A fixed path (`{mac}` already substituted).
    Path(String),
    /// `chainloader.cfg/01-<mac>` if it exists in the TFTP root, else
    /// `chainloader.cfg/default` if that exists, else none.
    PerTarget,
}

/// A user rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    cfg: RuleConfig,
    mac: Option<MacPattern>,
    options: Vec<(u8, Vec<u8>)>,
}

/// The config's rule, validated and with its options encoded once.
impl TryFrom<RuleConfig> for Rule {
    type Error = PolicyError;

    fn try_from(cfg: RuleConfig) -> Result<Rule, PolicyError> {
        let mac = cfg
            .mac
            .as_deref()
            .map(MacPattern::parse)
            .transpose()
            .map_err(|e| PolicyError::Rule { name: cfg.name.clone(), source: Box::new(e) })?;
        let options = cfg
            .options
            .iter()
            .map(|(c, v)| {
                parse_option(c, v).map_err(|e| PolicyError::RuleOption {
                    name: cfg.name.clone(),
                    code: c.clone(),
                    source: Box::new(e),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Rule { cfg, mac, options })
    }
}

impl Rule {
    pub fn new(cfg: RuleConfig) -> Result<Rule, PolicyError> {
        Rule::try_from(cfg)
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn matches(&self, c: &Client) -> bool {
        let r = &self.cfg;
        r.vendor_class.as_ref().is_none_or(|p| c.vendor_class.as_deref().is_some_and(|v| v.starts_with(p.as_str())))
            && r.user_class.as_ref().is_none_or(|u| c.has_user_class(u))
            && r.arch.as_ref().is_none_or(|a| c.arch.is_some_and(|x| a.contains(&x)))
            && r.ipxe.is_none_or(|want| c.ipxe_options == want)
            && self.mac.as_ref().is_none_or(|m| m.matches(&c.mac))
            && r.interface.as_ref().is_none_or(|i| *i == c.interface)
    }

    fn apply(&self, d: &mut Decision, c: &Client) {
        let r = &self.cfg;
        d.rule = format!("{} (over {})", r.name, d.rule);
        if let Some(f) = &r.boot_file {
            d.boot_file = (!f.is_empty()).then(|| f.clone());
            d.note = None;
        }
        if let Some(n) = r.next_server {
            d.next_server = Some(n);
        }
        if let Some(f) = &r.config_file {
            d.config_file = Some(ConfigFile::Path(f.replace("{mac}", &mac_file_name(&c.mac))));
        }
        for (code, v) in &self.options {
            d.options.retain(|(c, _)| c != code);
            d.options.push((*code, v.clone()));
        }
    }
}

/// The built-in decision, which needs no config.
pub fn builtin(c: &Client) -> Decision {
    if c.is_chainloader() {
        return Decision {
            rule: "builtin:chainloader".into(),
            config_file: Some(ConfigFile::PerTarget),
            ..Default::default()
        };
    }
    if let Some(arch) = c.efi_arch() {
        return Decision {
            rule: "builtin:efi".into(),
            note: Some(format!(
                "EFI client (architecture {arch}): not served a boot file, because chainloader.0 is a BIOS PXE NBP; \
                 add a [[rule]] with arch = [{arch}] and an EFI boot file to serve it"
            )),
            ..Default::default()
        };
    }
    if c.is_ipxe() {
        return Decision {
            rule: "builtin:ipxe".into(),
            boot_file: Some(CHAINLOADER.into()),
            note: Some(
                "iPXE client (user class iPXE / option 175) gets chainloader.0 as a PXE ROM would; \
                 chainloader.0 does not ask again as iPXE, so this cannot loop"
                    .into(),
            ),
            ..Default::default()
        };
    }
    if c.is_pxe() || c.arch == Some(0) {
        return Decision { rule: "builtin:pxe-bios".into(), boot_file: Some(CHAINLOADER.into()), ..Default::default() };
    }
    Decision {
        rule: "builtin:no-boot".into(),
        note: Some("not a PXE client: address only".into()),
        ..Default::default()
    }
}

/// The built-in decision, overridden by the first matching user rule.
pub fn decide(rules: &[Rule], c: &Client) -> Decision {
    let mut d = builtin(c);
    if let Some(r) = rules.iter().find(|r| r.matches(c)) {
        r.apply(&mut d, c);
    }
    d
}

/// An option of a rule: the code (1-254, as TOML keys are strings) and its value.
pub fn parse_option(code: &str, v: &str) -> Result<(u8, Vec<u8>), PolicyError> {
    let c: u8 = code.trim().parse().map_err(|source| PolicyError::OptionCode { code: code.to_string(), source })?;
    if !(1..=254).contains(&c) {
        return Err(PolicyError::OptionReserved(c));
    }
    Ok((c, parse_option_value(v)?))
}

/// Encodes an option value written in the config.
pub fn parse_option_value(v: &str) -> Result<Vec<u8>, PolicyError> {
    if let Some(ips) = v.strip_prefix("ip:") {
        let mut out = vec![];
        for ip in ips.split(',') {
            let ip: Ipv4Addr =
                ip.trim().parse().map_err(|source| PolicyError::OptionIp { ip: ip.to_string(), source })?;
            out.extend_from_slice(&ip.octets());
        }
        Ok(out)
    } else if let Some(hex) = v.strip_prefix("hex:") {
        let hex: String = hex.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        if !hex.len().is_multiple_of(2) {
            return Err(PolicyError::OptionHexOdd(v.to_string()));
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16)
                    .map_err(|source| PolicyError::OptionHex { v: v.to_string(), source })
            })
            .collect()
    } else if let Some(n) = v.strip_prefix("u32:") {
        let n = n.trim().parse::<u32>().map_err(|source| PolicyError::OptionU32 { v: v.to_string(), source })?;
        Ok(n.to_be_bytes().to_vec())
    } else {
        Ok(v.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
            user_classes: vec![],
            arch: Some(0),
            ipxe_options: false,
            interface: "eth0".into(),
        }
    }

    #[test]
    fn option_77_both_forms() {
        assert_eq!(user_classes(b"iPXE"), vec!["iPXE"]);
        assert_eq!(user_classes(b"chainloader"), vec!["chainloader"]);
        let list = b"\x04abcd\x0bchainloader";
        assert_eq!(user_classes(list)[1..], ["abcd", "chainloader"]);
        assert_eq!(user_classes(b"\x09abc"), vec!["\x09abc"]);
        assert_eq!(user_classes(b""), vec![""]);
    }

    #[test]
    fn builtins() {
        let c = client();
        assert_eq!(builtin(&c).boot_file.as_deref(), Some(CHAINLOADER));
        assert_eq!(builtin(&c).rule, "builtin:pxe-bios");

        let ipxe = Client { user_classes: vec!["iPXE".into()], ipxe_options: true, ..client() };
        let d = builtin(&ipxe);
        assert_eq!((d.rule.as_str(), d.boot_file.as_deref()), ("builtin:ipxe", Some(CHAINLOADER)));

        let cl = Client { user_classes: vec!["chainloader".into()], ..client() };
        let d = builtin(&cl);
        assert_eq!((d.boot_file, d.config_file), (None, Some(ConfigFile::PerTarget)));

        let efi = Client { arch: Some(7), user_classes: vec!["iPXE".into()], ..client() };
        let d = builtin(&efi);
        assert_eq!(d.boot_file, None);
        assert!(d.note.unwrap().contains("BIOS"));

        let plain = Client { vendor_class: None, arch: None, ..client() };
        assert_eq!(builtin(&plain).boot_file, None);
    }

    #[test]
    fn user_rule_overrides_what_it_sets() {
        let rule = Rule::new(RuleConfig {
            name: "dev".into(),
            mac: Some("52:54:00:*".into()),
            user_class: Some("chainloader".into()),
            config_file: Some("cfg/{mac}".into()),
            options: [("12".to_string(), "aronnax".to_string())].into(),
            ..Default::default()
        })
        .unwrap();
        let cl = Client { user_classes: vec!["chainloader".into()], ..client() };
        let d = decide(std::slice::from_ref(&rule), &cl);
        assert_eq!(d.rule, "dev (over builtin:chainloader)");
        assert_eq!(d.config_file, Some(ConfigFile::Path("cfg/01-52-54-00-12-34-56".into())));
        assert_eq!(d.options, vec![(12, b"aronnax".to_vec())]);
        // Does not match the ROM (no user class): built-in stays.
        assert_eq!(decide(&[rule], &client()).rule, "builtin:pxe-bios");
    }

    #[test]
    fn conditions() {
        let base = RuleConfig { name: "r".into(), ..Default::default() };
        let m = |cfg: RuleConfig, c: &Client| Rule::new(cfg).unwrap().matches(c);
        let c = client();
        assert!(m(base.clone(), &c));
        assert!(m(RuleConfig { vendor_class: Some("PXEClient".into()), ..base.clone() }, &c));
        assert!(!m(RuleConfig { vendor_class: Some("HTTPClient".into()), ..base.clone() }, &c));
        assert!(m(RuleConfig { arch: Some(vec![0, 7]), ..base.clone() }, &c));
        assert!(!m(RuleConfig { arch: Some(vec![7]), ..base.clone() }, &c));
        assert!(m(RuleConfig { ipxe: Some(false), ..base.clone() }, &c));
        assert!(!m(RuleConfig { ipxe: Some(true), ..base.clone() }, &c));
        assert!(!m(RuleConfig { interface: Some("eth1".into()), ..base.clone() }, &c));
        let empty_boot = Rule::new(RuleConfig { boot_file: Some(String::new()), ..base }).unwrap();
        assert_eq!(decide(&[empty_boot], &c).boot_file, None);
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
