//! The network servers: DHCP (full and proxy), leases, the conflict
//! probe, router advertisements, interfaces, and the typed view of a DHCP
//! datagram (`wire`) that sanitising reads through.

pub mod dhcp;
pub mod iface;
pub mod leases;
pub mod probe;
pub mod proxydhcp;
pub mod ra;
pub mod wire;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What went wrong on the network side: an interface, a socket, the pool,
/// the lease file. Each variant's text is its own context; the cause is
/// its `source()`.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Encode(#[from] dhcproto::error::EncodeError),

    // -- interfaces and sockets
    #[error("getifaddrs")]
    Getifaddrs(#[source] io::Error),
    #[error("no such interface: {0}")]
    NoInterface(String),
    #[error("interface {0} has no IPv4 address; give it one (ip addr add 10.0.0.1/24 dev {0})")]
    NoIpv4(String),
    #[error("interface name")]
    InterfaceName(#[source] std::ffi::NulError),
    #[error("port {port} on {ifname} is in use, is dnsmasq running?")]
    PortInUse { port: u16, ifname: String },
    #[error(
        "binding port {port} on {ifname}: permission denied; the relay needs root or CAP_NET_BIND_SERVICE+CAP_NET_RAW"
    )]
    BindDenied { port: u16, ifname: String },
    #[error("binding UDP port {port} on {ifname}")]
    Bind { port: u16, ifname: String, source: io::Error },
    /// A socket call that failed, named as the error text names it.
    #[error("{what}")]
    Socket { what: &'static str, source: io::Error },

    // -- DHCP
    #[error("DHCP range {first} - {last} is not in {ifname}'s subnet {network}/{prefix}")]
    RangeOutsideSubnet { first: Ipv4Addr, last: Ipv4Addr, ifname: String, network: Ipv4Addr, prefix: u32 },
    #[error("sending a probe DISCOVER on {ifname}")]
    SendProbe { ifname: String, source: io::Error },

    // -- leases
    #[error("DHCP range {first} - {last} is empty")]
    RangeEmpty { first: Ipv4Addr, last: Ipv4Addr },
    #[error("creating state directory {}", dir.display())]
    StateDir { dir: PathBuf, source: io::Error },
    #[error("reading {}", path.display())]
    ReadLeases { path: PathBuf, source: io::Error },
    #[error("lease file {}", path.display())]
    LeaseFile { path: PathBuf, source: toml::de::Error },
    #[error(transparent)]
    EncodeLeases(#[from] toml::ser::Error),
    #[error("writing {}", path.display())]
    WriteLeases { path: PathBuf, source: io::Error },
    #[error("renaming to {}", path.display())]
    RenameLeases { path: PathBuf, source: io::Error },

    // -- router advertisements and the conflict probe
    #[error("answering IPv6 router solicitations needs root or CAP_NET_RAW")]
    RawIcmp6Denied,
    #[error("raw ICMPv6 socket")]
    RawIcmp6(#[source] io::Error),
    #[error("binding ICMPv6 to {ifname}")]
    BindIcmp6 { ifname: String, source: io::Error },
    #[error("joining ff02::2 on {ifname}")]
    JoinAllRouters { ifname: String, source: io::Error },
    #[error("binding ICMP to {ifname}")]
    BindIcmp { ifname: String, source: io::Error },
    #[error("pinging {ip}")]
    Ping { ip: Ipv4Addr, source: io::Error },
}

/// Wraps an io error with the name its text gives it.
pub(crate) fn socket(what: &'static str) -> impl FnOnce(io::Error) -> NetError {
    move |source| NetError::Socket { what, source }
}
