//! The relay: the host-side daemon for netbooting a target machine.
//!
//! One file per protocol: `dhcp` (full DHCP server), `proxydhcp` (PXE
//! proxyDHCP), `tagging` (which client gets what), `leases`, `ra` (IPv6
//! router advertisements so iPXE does not wait for IPv6), `tftp`, plus
//! `iface` (interfaces and device-bound sockets), `config` and `serve`
//! (wiring them together).
pub mod attach;
pub mod config;
pub mod console;
pub mod dhcp;
pub mod http;
pub mod iface;
pub mod leases;
pub mod probe;
pub mod proxydhcp;
pub mod ra;
pub mod reboot;
pub mod serve;
pub mod tagging;
pub mod tftp;
