//! What each machine gets: the config file's structs, MAC addresses, the
//! tagging rules and the target table. No sockets here.

pub mod config;
pub mod mac;
pub mod tagging;
pub mod targets;

use std::net::AddrParseError;
use std::num::ParseIntError;
use std::path::PathBuf;

use mac::{fmt_mac, Mac};

/// What is wrong with the config: its file, a MAC, a rule, a target.
/// Each variant's text is its own context; the cause is its `source()`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    // -- config
    #[error("reading config {}", path.display())]
    ReadConfig { path: PathBuf, source: std::io::Error },
    #[error("config {}", path.display())]
    Config { path: PathBuf, source: toml::de::Error },
    #[error(transparent)]
    Toml(#[from] toml::de::Error),

    // -- mac
    #[error("{0:?} is not a MAC address (6 hex bytes separated by ':')")]
    MacLength(String),
    #[error("{s:?} is not a MAC address")]
    MacByte { s: String, source: ParseIntError },
    #[error("MAC pattern {0:?}: give 6 bytes, '*' for any byte, or end with '*' for the rest")]
    MacPatternLength(String),
    #[error("MAC pattern {s:?} has a byte that is neither hex nor '*'")]
    MacPatternByte { s: String, source: ParseIntError },

    // -- tagging
    #[error("rule {name:?}")]
    Rule { name: String, source: Box<PolicyError> },
    #[error("rule {name:?}: option {code}")]
    RuleOption { name: String, code: String, source: Box<PolicyError> },
    #[error("{code:?} is not an option code (1-254)")]
    OptionCode { code: String, source: ParseIntError },
    #[error("option code {0} is reserved")]
    OptionReserved(u8),
    #[error("{ip:?} is not an IPv4 address")]
    OptionIp { ip: String, source: AddrParseError },
    #[error("hex value {0:?} has an odd number of digits")]
    OptionHexOdd(String),
    #[error("{v:?} is not hex")]
    OptionHex { v: String, source: ParseIntError },
    #[error("{v:?} is not a u32")]
    OptionU32 { v: String, source: ParseIntError },

    // -- targets
    #[error("{what} = {secs}: not a number of seconds")]
    Secs { what: &'static str, secs: f64 },
    #[error("reset method \"command\" needs run = \"...\" (the shell command)")]
    CommandNeedsRun,
    #[error("unknown reset method {0:?} (serial, dtr, rts, command, qemu)")]
    UnknownReset(String),
    #[error("target name {0:?}: use letters, digits, '-', '_' and '.' (it names a directory)")]
    TargetName(String),
    #[error("kind = {0:?}: \"serial\" or \"qemu\"")]
    Kind(String),
    #[error("serial = \"/dev/ttyS0\" (the port wired to its COM1) is missing")]
    NoSerial,
    #[error("reset method \"qemu\" needs qmp = \"/path/to/qmp.sock\" (or kind = \"qemu\")")]
    QemuNeedsQmp,
    #[error("[[target]] {name:?}")]
    Target { name: String, source: Box<PolicyError> },
    #[error("[[target]] {first:?} and {second:?} share a name or the MAC {}", fmt_mac(.mac))]
    TargetShared { first: String, second: String, mac: Mac },
    #[error("[[target]] {name:?}: console port {port} is used twice")]
    PortTwice { name: String, port: u16 },
    #[error("no target {name:?} (targets: {targets})")]
    NoSuchTarget { name: String, targets: String },
    #[error("this relay has no [[target]] in its config")]
    NoTargets,
    #[error("which target? give its name ({0})")]
    WhichTarget(String),
}
