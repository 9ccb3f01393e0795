//! Why a boot failed: one variant per way, each carrying its cause. The
//! console shows `chainloader: ` and its `Display`, then the countdown;
//! the end-to-end tests match these texts, so they change only with them.

use crate::arch::pxe::{OpenError, PxeError};
use crate::boot::PlanError;
use crate::fetch::{FetchError, ResolveError};
use alloc::string::String;
use bootproto::config::ConfigError;
use core::fmt;

#[derive(Debug)]
pub enum BootError {
    /// The chainloader's image and .bss end above the top of base memory.
    Memory { end: usize, top: usize },
    /// No E820 memory map.
    E820(&'static str),
    /// No PXE structure on any path (the reason names them).
    NoPxe(&'static str),
    /// The PXE structure found lies inside the chainloader itself.
    PxeInside { at: usize, start: usize, end: usize },
    /// UNDI would not open the NIC.
    Nic(OpenError),
    /// No DHCP answer, and the ROM's cached DHCPACK could not be read...
    NoCachedAck(PxeError),
    /// ...or has no address in it.
    CachedAckNoAddress,
    /// No DHCP reply names a server to fetch from.
    NoServer,
    /// A URL from DHCP or the config does not parse.
    Resolve(ResolveError),
    /// A file could not be fetched (TFTP, HTTP).
    Fetch(FetchError),
    /// None of the config candidates is there.
    NoConfig { tried: usize },
    /// The config (named as on the console) is not UTF-8.
    ConfigNotText { place: String, err: core::str::Utf8Error },
    /// The config does not parse (the error has the line).
    Config { place: String, err: ConfigError },
    /// The kernel cannot be placed or booted (Multiboot2 header, gzip, no
    /// room, ...).
    Plan(PlanError),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Memory { end, top } => write!(
                f,
                "the chainloader's memory ends at {end:#x}, above the top of base memory ({top:#x}); it cannot run on this machine"
            ),
            BootError::E820(why) | BootError::NoPxe(why) => f.write_str(why),
            BootError::PxeInside { at, start, end } => {
                write!(f, "the PXE structure at {at:#x} lies inside the chainloader ({start:#x}-{end:#x})")
            }
            BootError::Nic(e) => write!(f, "cannot open the NIC through UNDI: {e}"),
            BootError::NoCachedAck(e) => {
                write!(f, "no DHCP answer, and the ROM's cached DHCPACK is unavailable: {e}")
            }
            BootError::CachedAckNoAddress => f.write_str("no DHCP answer, and the ROM's cached DHCPACK has no address"),
            BootError::NoServer => {
                f.write_str("no TFTP server: no next-server in any DHCP reply and no server identifier")
            }
            BootError::Resolve(e) => e.fmt(f),
            BootError::Fetch(e) => e.fmt(f),
            BootError::NoConfig { tried } => write!(f, "no boot config found (tried {tried} names)"),
            BootError::ConfigNotText { place, err } => write!(f, "{place}: not UTF-8 text ({err})"),
            BootError::Config { place, err } => write!(f, "{place}: {err}"),
            BootError::Plan(e) => e.fmt(f),
        }
    }
}

impl From<ResolveError> for BootError {
    fn from(e: ResolveError) -> Self {
        BootError::Resolve(e)
    }
}

impl From<FetchError> for BootError {
    fn from(e: FetchError) -> Self {
        BootError::Fetch(e)
    }
}

impl From<PlanError> for BootError {
    fn from(e: PlanError) -> Self {
        BootError::Plan(e)
    }
}
