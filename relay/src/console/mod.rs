//! The consoles: the serial port, its hub (log, replay, clients), the
//! client sessions over the control socket and TCP (raw, telnet/RFC 2217),
//! and `relay attach`.

pub mod attach;
pub mod hub;
pub mod log;
pub mod serial;
pub mod session;
pub mod tcp;
pub mod telnet;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::policy::targets::ModemLine;

/// What went wrong with a console: its serial port, its log, its TCP
/// listener. Each variant's text is its own context; the cause is its
/// `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{path} is in use (is `relay serve` running with this target? then use `relay attach`)")]
    SerialInUse { path: String, source: serialport::Error },
    #[error("cannot open serial port {path} at {baud} baud")]
    SerialOpen { path: String, baud: u32, source: serialport::Error },
    /// The cause is in the middle of the text, so it is not a `source()`.
    #[error(
        "cannot drive {line} on {path}: {error}; this device has no modem-control lines (a pty, or an adapter \
         without {line}), so it cannot pulse a reset header"
    )]
    DriveLine { line: ModemLine, path: String, error: serialport::Error },
    #[error("cannot clone the handle of {device}")]
    CloneHandle { device: String, source: serialport::Error },
    #[error("{0} is not open (reopening)")]
    NotOpen(String),
    #[error("cannot set {device} to {baud} baud")]
    SetBaud { device: String, baud: u32, source: serialport::Error },
    #[error("cannot create {}", dir.display())]
    CreateLogDir { dir: PathBuf, source: io::Error },
    #[error("cannot open log {}", path.display())]
    OpenLog { path: PathBuf, source: io::Error },
    #[error("cannot listen on {bind}:{port} for the {what} console of {target}")]
    Listen { bind: IpAddr, port: u16, what: &'static str, target: String, source: io::Error },
}
