//! What each machine gets: the config file's structs, MAC addresses, the
//! tagging rules and the target table. No sockets here.

pub mod config;
pub mod mac;
pub mod tagging;
pub mod targets;
