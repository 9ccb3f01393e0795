//! The target table: the machines this relay boots, by name and MAC. It
//! decides what a MAC gets (its own config file, its own directory in the
//! TFTP root) and how each machine is reset; DHCP, TFTP and `relay boot`
//! ask it. No sockets here.

use std::path::PathBuf;
use std::time::Duration;

use super::config::{QemuConfig, ResetConfig, TargetConfig};
use super::mac::{mac_file_name, parse_mac, Mac};
use super::PolicyError;

type Result<T, E = PolicyError> = std::result::Result<T, E>;

/// The reference kernel's acknowledgement of `~~~k`.
pub const REFERENCE_ACK: &str = "serial: reboot command received";
/// Default time to wait for a new boot after each reset method: a real
/// PC's firmware takes 10-30 s from reset to its PXE ROM's DHCPDISCOVER.
pub const DEFAULT_RESET_WAIT: Duration = Duration::from_secs(45);

/// A modem-control output of the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModemLine {
    Dtr,
    Rts,
}

impl std::fmt::Display for ModemLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModemLine::Dtr => "DTR",
            ModemLine::Rts => "RTS",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A machine on a serial port.
    Serial,
    /// A QEMU machine the relay starts itself.
    Qemu,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResetAction {
    /// `~~~k` on the console, up to four times (docs/serial-reboot.md).
    Serial,
    /// Pulse a modem-control line wired to the reset header.
    /// `device`: a separate adapter, opened for the pulse only; None: the
    /// console port itself.
    Line { line: ModemLine, pulse: Duration, active_low: bool, device: Option<String> },
    /// Any shell command (smart plug, USB relay).
    Command { run: String, timeout: Duration },
    /// QMP `system_reset`.
    Qemu,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResetMethod {
    pub action: ResetAction,
    /// How long to wait for evidence of a new boot after it.
    pub wait: Duration,
}

impl ResetMethod {
    pub fn name(&self) -> &'static str {
        match &self.action {
            ResetAction::Serial => "serial",
            ResetAction::Line { line: ModemLine::Dtr, .. } => "dtr",
            ResetAction::Line { line: ModemLine::Rts, .. } => "rts",
            ResetAction::Command { .. } => "command",
            ResetAction::Qemu => "qemu",
        }
    }
}

/// Defaults of `relay boot` for a target.
#[derive(Debug, Clone, Default)]
pub struct BootDefaults {
    pub kernel: Option<PathBuf>,
    pub cmdline: Option<String>,
    pub modules: Vec<String>,
    pub expect: Option<String>,
    pub fail: Option<Vec<String>>,
    pub timeout: Option<Duration>,
    pub silence: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub mac: Mac,
    pub kind: Kind,
    /// The serial device; for kind = qemu, filled in once QEMU says which pty.
    pub serial: Option<String>,
    pub baud: u32,
    pub reset: Vec<ResetMethod>,
    pub ack: Option<String>,
    pub tcp_port: Option<u16>,
    pub telnet_port: Option<u16>,
    pub qmp: Option<PathBuf>,
    pub qemu: QemuConfig,
    pub defaults: BootDefaults,
}

impl Target {
    /// This target's directory in the TFTP root (relative).
    pub fn dir(&self) -> &str {
        &self.name
    }

    /// Its chainloader config, relative to the TFTP root: the per-MAC name
    /// chainloader.0 tries first (bootproto::config::candidates).
    pub fn config_file(&self) -> String {
        format!("{}/{}", bootproto::config::CONFIG_DIR, mac_file_name(&self.mac))
    }
}

fn secs(what: &'static str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| PolicyError::Secs { what, secs: s })
}

fn compile_reset(r: &ResetConfig, default_wait: Duration) -> Result<ResetMethod> {
    let t = match r {
        ResetConfig::Name(n) => super::config::ResetTable { method: n.clone(), ..Default::default() },
        ResetConfig::Table(t) => t.clone(),
    };
    let wait = t.wait.map(|w| secs("wait", w)).transpose()?.unwrap_or(default_wait);
    let pulse = Duration::from_millis(t.pulse_ms.unwrap_or(200));
    let action = match t.method.as_str() {
        "serial" => ResetAction::Serial,
        "dtr" => ResetAction::Line { line: ModemLine::Dtr, pulse, active_low: t.active_low, device: t.device.clone() },
        "rts" => ResetAction::Line { line: ModemLine::Rts, pulse, active_low: t.active_low, device: t.device.clone() },
        "command" => ResetAction::Command {
            run: t.run.clone().ok_or(PolicyError::CommandNeedsRun)?,
            timeout: secs("timeout", t.timeout.unwrap_or(30.0))?,
        },
        "qemu" => ResetAction::Qemu,
        m => return Err(PolicyError::UnknownReset(m.to_string())),
    };
    Ok(ResetMethod { action, wait })
}

impl TryFrom<&TargetConfig> for Target {
    type Error = PolicyError;

    fn try_from(c: &TargetConfig) -> Result<Target> {
        let name = c.name.trim();
        if name.is_empty()
            || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
            || name.starts_with('.')
        {
            return Err(PolicyError::TargetName(c.name.clone()));
        }
        let mac = parse_mac(&c.mac)?;
        let kind = match c.kind.as_deref() {
            None | Some("serial") => Kind::Serial,
            Some("qemu") => Kind::Qemu,
            Some(k) => return Err(PolicyError::Kind(k.to_string())),
        };
        if kind == Kind::Serial && c.serial.is_none() {
            return Err(PolicyError::NoSerial);
        }
        let default_wait = c.reset_wait.map(|w| secs("reset_wait", w)).transpose()?.unwrap_or(DEFAULT_RESET_WAIT);
        let mut reset = c.reset.iter().map(|r| compile_reset(r, default_wait)).collect::<Result<Vec<_>>>()?;
        if reset.is_empty() {
            reset.push(ResetMethod { action: ResetAction::Serial, wait: default_wait });
            if kind == Kind::Qemu {
                reset.push(ResetMethod { action: ResetAction::Qemu, wait: default_wait });
            }
        }
        if reset.iter().any(|r| r.action == ResetAction::Qemu) && kind != Kind::Qemu && c.qmp.is_none() {
            return Err(PolicyError::QemuNeedsQmp);
        }
        Ok(Target {
            name: name.to_string(),
            mac,
            kind,
            serial: c.serial.clone(),
            baud: c.baud.unwrap_or(115200),
            reset,
            ack: Some(c.ack.clone().unwrap_or_else(|| REFERENCE_ACK.to_string())).filter(|a| !a.is_empty()),
            tcp_port: c.tcp_port,
            telnet_port: c.telnet_port,
            qmp: c.qmp.clone(),
            qemu: c.qemu.clone(),
            defaults: BootDefaults {
                kernel: c.kernel.clone(),
                cmdline: c.cmdline.clone(),
                modules: c.modules.clone(),
                expect: c.expect.clone(),
                fail: c.fail.clone(),
                timeout: c.timeout.map(|s| secs("timeout", s)).transpose()?,
                silence: c.silence.map(|s| secs("silence", s)).transpose()?,
            },
        })
    }
}

/// All targets, checked against each other.
#[derive(Debug, Clone, Default)]
pub struct TargetTable {
    pub targets: Vec<Target>,
}

impl TargetTable {
    pub fn new(configs: &[TargetConfig]) -> Result<TargetTable> {
        let mut targets: Vec<Target> = vec![];
        for c in configs {
            let t =
                Target::try_from(c).map_err(|e| PolicyError::Target { name: c.name.clone(), source: Box::new(e) })?;
            if let Some(o) = targets.iter().find(|o| o.name == t.name || o.mac == t.mac) {
                return Err(PolicyError::TargetShared { first: o.name.clone(), second: t.name.clone(), mac: t.mac });
            }
            for p in [t.tcp_port, t.telnet_port].into_iter().flatten() {
                if targets.iter().any(|o| o.tcp_port == Some(p) || o.telnet_port == Some(p))
                    || (t.tcp_port == t.telnet_port)
                {
                    return Err(PolicyError::PortTwice { name: t.name.clone(), port: p });
                }
            }
            targets.push(t);
        }
        Ok(TargetTable { targets })
    }

    pub fn by_mac(&self, mac: &Mac) -> Option<&Target> {
        self.targets.iter().find(|t| &t.mac == mac)
    }

    /// The named target; with no name, the only one.
    pub fn by_name(&self, name: Option<&str>) -> Result<&Target> {
        match name {
            Some(n) => self.targets.iter().find(|t| t.name == n).ok_or_else(|| PolicyError::NoSuchTarget {
                name: n.to_string(),
                targets: self.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
            }),
            None => match self.targets.as_slice() {
                [one] => Ok(one),
                [] => Err(PolicyError::NoTargets),
                many => {
                    Err(PolicyError::WhichTarget(many.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")))
                }
            },
        }
    }

    /// What a known MAC's chainloader is told to read (DHCP option 209).
    pub fn config_file_for(&self, mac: &Mac) -> Option<(String, &str)> {
        self.by_mac(mac).map(|t| (t.config_file(), t.name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::config::Config;

    fn table(toml: &str) -> Result<TargetTable> {
        TargetTable::new(&Config::parse(toml).unwrap().targets)
    }

    #[test]
    fn compiles_targets_and_resets() {
        let t = table(
            r#"
            [[target]]
            name = "aronnax"
            mac = "52:54:00:12:34:56"
            serial = "/dev/ttyS0"
            reset = ["serial", { method = "rts", pulse_ms = 300, active_low = true, wait = 5 }, { method = "command", run = "plug off; plug on" }]
            [[target]]
            name = "vm"
            kind = "qemu"
            mac = "52:54:00:12:34:57"
            "#,
        )
        .unwrap();
        let a = t.by_name(Some("aronnax")).unwrap();
        assert_eq!(a.reset.iter().map(|r| r.name()).collect::<Vec<_>>(), ["serial", "rts", "command"]);
        assert_eq!(a.reset[1].wait, Duration::from_secs(5));
        assert_eq!(a.config_file(), "chainloader.cfg/01-52-54-00-12-34-56");
        let vm = t.by_mac(&[0x52, 0x54, 0, 0x12, 0x34, 0x57]).unwrap();
        assert_eq!(vm.reset.iter().map(|r| r.name()).collect::<Vec<_>>(), ["serial", "qemu"]);
        assert!(t.by_name(None).unwrap_err().to_string().contains("which target"));
    }

    #[test]
    fn refuses_bad_targets() {
        let e = |s: &str| crate::error::chain(&table(s).unwrap_err());
        assert!(e("[[target]]\nname = \"a\"\nmac = \"52:54:00:00:00:01\"\n").contains("serial"));
        assert!(
            e("[[target]]\nname = \"a/b\"\nmac = \"52:54:00:00:00:01\"\nserial = \"/dev/x\"\n").contains("directory")
        );
        assert!(e("[[target]]\nname = \"a\"\nmac = \"52:54:00:00:00:01\"\nserial = \"/dev/x\"\nreset = [\"qemu\"]\n")
            .contains("qmp"));
        assert!(e("[[target]]\nname = \"a\"\nmac = \"52:54:00:00:00:01\"\nserial = \"/dev/x\"\nreset = [\"zap\"]\n")
            .contains("unknown reset method"));
        let two = "[[target]]\nname = \"a\"\nmac = \"52:54:00:00:00:01\"\nserial = \"/dev/x\"\n[[target]]\nname = \"b\"\nmac = \"52:54:00:00:00:01\"\nserial = \"/dev/y\"\n";
        assert!(e(two).contains("share"));
    }
}
