//! The TOML configuration of `relay serve`: serde structs, nothing else
//! (what they mean is decided in `tagging` and `targets`).
//!
//! With no file, everything has a default that suits a dedicated cable to
//! one target: the whole subnet of the interface, built-in tagging rules.
//!
//! ```toml
//! [serve]                                # what the daemon runs (flags win)
//! interface = "eth0"
//! tftp_root = "/srv/tftp"
//! group = "relay"                        # of the control socket (mode 0660)
//!
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
//!
//! [[target]]                             # a machine the relay boots and watches
//! name = "aronnax"
//! mac = "00:1b:21:3a:4f:10"
//! serial = "/dev/ttyS0"
//! reset = ["serial", { method = "command", run = "plug-off; sleep 5; plug-on" }]
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::PolicyError;

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
    #[serde(default)]
    pub serve: ServeSection,
    /// The machines this relay boots, by name.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
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
    pub fn load(path: &Path) -> Result<Config, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::ReadConfig { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|source| PolicyError::Config { path: path.to_path_buf(), source })
    }

    /// Parses the TOML only. Rules, MACs and reset methods are validated
    /// where they are compiled (`Rule: TryFrom<RuleConfig>`,
    /// `targets::TargetTable::new`), so that this file holds no policy.
    pub fn parse(text: &str) -> Result<Config, PolicyError> {
        Ok(toml::from_str(text)?)
    }
}

/// `[serve]`: what `relay serve --config` runs. Command-line flags win.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// The interface wired to the targets; none: no DHCP and no TFTP server
    /// (a QEMU target on QEMU's user network fetches from `tftp_root` itself).
    pub interface: Option<String>,
    pub tftp_root: Option<PathBuf>,
    /// proxyDHCP beside the site's DHCP server.
    #[serde(default)]
    pub proxy: bool,
    /// The control socket every other subcommand talks to.
    pub control: Option<PathBuf>,
    /// Group owning the control socket (mode 0660): who may use the relay.
    pub group: Option<String>,
    /// Console logs (`<name>.log`) and boot logs (`boots/`).
    pub log_dir: Option<PathBuf>,
    /// Console log size at which it is rotated (`.1`, `.2`, ...), bytes.
    pub log_max_bytes: Option<u64>,
    /// Rotated console logs kept.
    pub log_keep: Option<u32>,
    /// Address the TCP console ports listen on (default 127.0.0.1).
    pub console_bind: Option<std::net::IpAddr>,
    pub probe_secs: Option<f64>,
    #[serde(default)]
    pub no_ra: bool,
    /// Serve the TFTP root read-only over HTTP on this port too, on the
    /// interface's address, and send chainloader.0 there (option 210).
    pub http_port: Option<u16>,
}

/// `[[target]]`: one machine the relay boots and watches.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    pub mac: String,
    /// "serial" (a machine on a serial port, the default) or "qemu" (a
    /// virtual target the relay starts itself, serial on a pty).
    #[serde(default)]
    pub kind: Option<String>,
    /// The serial device wired to the target's COM1 (not for kind = "qemu").
    pub serial: Option<String>,
    pub baud: Option<u32>,
    /// Reset methods, tried in order until one shows a new boot:
    /// `"serial"`, `"dtr"`, `"rts"`, `"command"`, `"qemu"`, or tables with
    /// their settings (`{ method = "dtr", pulse_ms = 300, active_low = true }`).
    #[serde(default)]
    pub reset: Vec<ResetConfig>,
    /// Seconds to wait for evidence of a new boot after each method.
    pub reset_wait: Option<f64>,
    /// The kernel's acknowledgement of `~~~k`, if it prints one (evidence).
    pub ack: Option<String>,
    /// Raw TCP console port (bytes both ways).
    pub tcp_port: Option<u16>,
    /// Telnet console port with RFC 2217 (telnet, ser2net clients, labgrid).
    pub telnet_port: Option<u16>,
    /// QMP socket of the QEMU behind this target (method "qemu"); set by
    /// the relay itself for kind = "qemu".
    pub qmp: Option<PathBuf>,
    /// kind = "qemu": how the relay starts the machine.
    #[serde(default)]
    pub qemu: QemuConfig,
    // -- defaults of `relay boot`
    pub kernel: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// `FILE` or `FILE=STRING`.
    #[serde(default)]
    pub modules: Vec<String>,
    pub expect: Option<String>,
    /// Replace the default failure patterns.
    pub fail: Option<Vec<String>>,
    /// Seconds of `relay boot` (default 180) and of console silence that
    /// ends it (default 60).
    pub timeout: Option<f64>,
    pub silence: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuConfig {
    /// "user" (QEMU's user network, TFTP from the relay's root) or
    /// "tap:IFNAME" (an existing tap device, served by the relay's DHCP).
    pub netdev: Option<String>,
    pub memory_mib: Option<u32>,
    pub nic: Option<String>,
    /// More QEMU arguments.
    #[serde(default)]
    pub args: Vec<String>,
}

/// A reset method as written: a bare name or a table with settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ResetConfig {
    Name(String),
    Table(ResetTable),
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetTable {
    pub method: String,
    /// dtr/rts: how long the line is held active, ms (default 200).
    pub pulse_ms: Option<u64>,
    /// dtr/rts: the reset input is active when the line is deasserted.
    #[serde(default)]
    pub active_low: bool,
    /// dtr/rts: a separate adapter wired to the reset header, opened only
    /// for the pulse (default: the target's console port).
    pub device: Option<String>,
    /// command: run by `sh -c`.
    pub run: Option<String>,
    /// command: seconds before it is killed (default 30).
    pub timeout: Option<f64>,
    /// Seconds to wait for evidence after this method (overrides reset_wait).
    pub wait: Option<f64>,
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
        let rule = |t: &str| crate::policy::tagging::Rule::try_from(Config::parse(t).unwrap().rules[0].clone());
        let e = rule("[[rule]]\nname = \"x\"\noptions = { 3 = \"ip:300.1.1.1\" }\n").unwrap_err();
        let e = crate::error::chain(&e);
        assert!(e.contains("option 3"), "{e}");
        assert!(rule("[[rule]]\nname = \"x\"\nmac = \"zz:*\"\n").is_err());
        assert!(Config::parse("[dhcp]\nrnage = 1\n").is_err());
    }

    #[test]
    fn targets_parse() {
        let c = Config::parse(
            r#"
            [serve]
            interface = "eth0"
            tftp_root = "/srv/tftp"
            group = "relay"
            [[target]]
            name = "aronnax"
            mac = "52:54:00:12:34:56"
            serial = "/dev/ttyS0"
            reset = ["serial", { method = "dtr", pulse_ms = 300, active_low = true }, { method = "command", run = "true" }]
            tcp_port = 7001
            modules = ["/srv/initrd=initrd"]
            "#,
        )
        .unwrap();
        assert_eq!(c.serve.interface.as_deref(), Some("eth0"));
        let t = &c.targets[0];
        assert_eq!(t.reset.len(), 3);
        assert!(
            matches!(&t.reset[1], ResetConfig::Table(r) if r.method == "dtr" && r.active_low && r.pulse_ms == Some(300))
        );
        assert!(Config::parse("[[target]]\nname = \"a\"\nmac = \"x\"\nbogus = 1\n").is_err());
    }
}
