//! Fuzzes the DHCP receive path: sanitising, decoding and the server's
//! decision, in full and proxy mode, on ports 67 and 4011. Any panic is a
//! bug (the relay is built with panic = "abort").
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use relay::config::Config;
use relay::dhcp::{Dhcp, Mode, PXE_PORT, SERVER_PORT};
use relay::iface::Interface;

static SERVERS: Mutex<Option<(Dhcp, Dhcp)>> = Mutex::new(None);

fn make(mode: Mode) -> Dhcp {
    let iface = Interface { name: "br0".into(), addr: Ipv4Addr::new(10, 77, 0, 1), netmask: Ipv4Addr::new(255, 255, 255, 0) };
    Dhcp::new(iface, mode, std::env::temp_dir(), &Config::default(), None).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let mut guard = SERVERS.lock().unwrap();
    let (full, proxy) = guard.get_or_insert_with(|| (make(Mode::Full), make(Mode::Proxy)));
    let src = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
    for r in [full.handle(data, src, SERVER_PORT), proxy.handle(data, src, SERVER_PORT), proxy.handle(data, src, PXE_PORT)]
        .into_iter()
        .flatten()
    {
        let bytes = r.bytes();
        assert!(bytes.len() >= 240, "a reply shorter than a BOOTP header");
    }
});
