//! The relay: the host-side daemon for netbooting a target machine.
pub mod tftp;
