//! The network servers: DHCP (full and proxy), leases, the conflict
//! probe, router advertisements, interfaces.

pub mod dhcp;
pub mod iface;
pub mod leases;
pub mod probe;
pub mod proxydhcp;
pub mod ra;
