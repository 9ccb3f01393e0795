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
