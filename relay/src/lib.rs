//! The relay: the host-side daemon for netbooting and watching target
//! machines. Arrows run downward only: `serve`, then `control`, then
//! `net`, `target`, `tftp` and `console`, then `policy`.
//!
//! - `policy`: the config's structs, MACs, tagging rules, the target table
//!   (what each machine gets; no sockets);
//! - `net`: DHCP, proxyDHCP, leases, conflict probe, router advertisements;
//! - `tftp`: the TFTP server;
//! - `console`: the serial port, the hub, sessions (unix, TCP, telnet/RFC
//!   2217), `relay attach`;
//! - `target`: state, reset methods, reboot judged by evidence, `relay boot`;
//! - `control`: the control socket every subcommand talks to;
//! - `serve`: `relay serve`, everything started from one config.
pub mod console;
pub mod control;
pub mod error;
pub mod http;
pub mod log;
pub mod net;
pub mod policy;
pub mod serve;
pub mod target;
pub mod tftp;

// The paths the tests and fuzz targets use.
pub use net::{dhcp, iface, leases, probe, proxydhcp, ra};
pub use policy::{config, tagging};
