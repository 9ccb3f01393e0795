//! The DHCP server's decisions on real packets.
//!
//! `fixtures/qemu-ipxe-rom-discover.bin` is the DHCPDISCOVER that QEMU 7.2's
//! e1000 option ROM (iPXE, Debian ipxe-qemu) broadcast on a tap device in a
//! network namespace, captured by a UDP listener on port 67. That ROM is the
//! PXE ROM of the tests and is iPXE at the same time: it sends vendor class
//! "PXEClient:Arch:00000:UNDI:002001", user class "iPXE" and option 175.
//! `qemu-ipxe-rom-request.bin` is its REQUEST for 10.77.0.100 to the relay;
//! `chainloader-discover.bin` and `chainloader-request.bin` are chainloader.0's
//! own DHCP (user class "chainloader") after the ROM booted it, captured
//! with an AF_PACKET listener on the bridge while the relay served.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode, UnknownOption};
use dhcproto::{Decodable, Decoder, Encodable};
use relay::config::Config;
use relay::dhcp::{Dhcp, Mode, PXE_PORT, SERVER_PORT};
use relay::iface::Interface;
use relay::tagging::Client;

const ROM_DISCOVER: &[u8] = include_bytes!("fixtures/qemu-ipxe-rom-discover.bin");
const ROM_REQUEST: &[u8] = include_bytes!("fixtures/qemu-ipxe-rom-request.bin");
const CHAINLOADER_DISCOVER: &[u8] = include_bytes!("fixtures/chainloader-discover.bin");
const CHAINLOADER_REQUEST: &[u8] = include_bytes!("fixtures/chainloader-request.bin");
const ROM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fn iface() -> Interface {
    Interface { name: "br0".into(), addr: Ipv4Addr::new(10, 77, 0, 1), netmask: Ipv4Addr::new(255, 255, 255, 0) }
}

fn server(mode: Mode, root: &Path, state: Option<&Path>, config: &str) -> Dhcp {
    Dhcp::new(iface(), mode, root.to_path_buf(), &Config::parse(config).unwrap(), state).unwrap()
}

fn decode(b: &[u8]) -> Message {
    Message::decode(&mut Decoder::new(b)).unwrap()
}

/// The BOOTP file field up to its NUL.
fn fname(m: &Message) -> String {
    let f = m.fname().unwrap_or_default();
    String::from_utf8_lossy(f.split(|b| *b == 0).next().unwrap()).into_owned()
}

fn from_client() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)
}

fn opt_bytes(m: &Message, code: u8) -> Option<Vec<u8>> {
    let mut buf = vec![];
    let o = m.opts().get(OptionCode::from(code))?;
    o.encode(&mut dhcproto::Encoder::new(&mut buf)).unwrap();
    Some(buf[2..].to_vec())
}

/// The ROM's DISCOVER with its message type (and optionally more) changed.
fn rom_message(mtype: MessageType, extra: Vec<DhcpOption>) -> Vec<u8> {
    let mut m = decode(ROM_DISCOVER);
    m.opts_mut().insert(DhcpOption::MessageType(mtype));
    for o in extra {
        m.opts_mut().insert(o);
    }
    m.to_vec().unwrap()
}

fn with_user_class(raw: &[u8], class: &[u8]) -> Vec<u8> {
    let mut m = decode(raw);
    m.opts_mut().insert(DhcpOption::UserClass(class.to_vec()));
    m.opts_mut().remove(OptionCode::from(175u8));
    m.to_vec().unwrap()
}

#[test]
fn rom_discover_is_a_bios_pxe_client_and_ipxe() {
    let m = decode(ROM_DISCOVER);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
    let c = Client::from_message(&m, "br0").unwrap();
    assert_eq!(c.mac, ROM_MAC);
    assert_eq!(c.vendor_class.as_deref(), Some("PXEClient:Arch:00000:UNDI:002001"));
    assert!(c.has_user_class("iPXE"));
    assert_eq!(c.arch, Some(0));
    assert!(c.ipxe_options);
    assert!(c.is_pxe() && c.is_ipxe() && !c.is_chainloader());
}

#[test]
fn full_mode_offers_address_chainloader_and_pxeclient() {
    let root = tempfile::tempdir().unwrap();
    let mut d = server(Mode::Full, root.path(), None, "");
    let r = d.handle(ROM_DISCOVER, from_client(), SERVER_PORT).expect("an offer");
    let m = decode(&r.bytes());
    assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(m.xid(), decode(ROM_DISCOVER).xid());
    assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 77, 0, 100));
    assert_eq!(m.siaddr(), Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(fname(&m), "chainloader.0");
    assert_eq!(opt_bytes(&m, 67).unwrap(), b"chainloader.0");
    // Option 60 "PXEClient": the ROM does not wait for a ProxyDHCP offer.
    assert_eq!(opt_bytes(&m, 60).unwrap(), b"PXEClient");
    assert_eq!(opt_bytes(&m, 43).unwrap(), [6, 1, 8, 255]);
    assert_eq!(opt_bytes(&m, 54).unwrap(), [10, 77, 0, 1]);
    assert_eq!(opt_bytes(&m, 1).unwrap(), [255, 255, 255, 0]);
    assert!(opt_bytes(&m, 3).is_none(), "a direct cable has no router unless configured");
    assert_eq!(r.to, SocketAddrV4::new(Ipv4Addr::BROADCAST, 68));
}

#[test]
fn request_ack_and_leases_survive_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let offered = {
        let mut d = server(Mode::Full, root.path(), Some(state.path()), "");
        let offer = decode(&d.handle(ROM_DISCOVER, from_client(), SERVER_PORT).unwrap().bytes());
        let req = rom_message(
            MessageType::Request,
            vec![
                DhcpOption::RequestedIpAddress(offer.yiaddr()),
                DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 77, 0, 1)),
            ],
        );
        let ack = decode(&d.handle(&req, from_client(), SERVER_PORT).unwrap().bytes());
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.yiaddr(), offer.yiaddr());
        assert_eq!(fname(&ack), "chainloader.0");
        assert_eq!(opt_bytes(&ack, 51).unwrap(), 3600u32.to_be_bytes());
        // Another client asking for the same address is refused.
        let mut other = decode(&req);
        other.set_chaddr(&[2, 0, 0, 0, 0, 9]);
        let nak = decode(&d.handle(&other.to_vec().unwrap(), from_client(), SERVER_PORT).unwrap().bytes());
        assert_eq!(nak.opts().msg_type(), Some(MessageType::Nak));
        offer.yiaddr()
    };
    // A new server process over the same state directory: the other
    // client first, so that a forgotten lease would hand it our address.
    let mut d = server(Mode::Full, root.path(), Some(state.path()), "");
    let mut other = decode(ROM_DISCOVER);
    other.set_chaddr(&[2, 0, 0, 0, 0, 9]);
    let o = decode(&d.handle(&other.to_vec().unwrap(), from_client(), SERVER_PORT).unwrap().bytes());
    assert_ne!(o.yiaddr(), offered);
    let again = decode(&d.handle(ROM_DISCOVER, from_client(), SERVER_PORT).unwrap().bytes());
    assert_eq!(again.yiaddr(), offered);
}

#[test]
fn request_for_another_server_is_ignored() {
    let root = tempfile::tempdir().unwrap();
    let mut d = server(Mode::Full, root.path(), None, "");
    let req = rom_message(
        MessageType::Request,
        vec![
            DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 77, 0, 100)),
            DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 77, 0, 2)),
        ],
    );
    assert!(d.handle(&req, from_client(), SERVER_PORT).is_none());
}

#[test]
fn static_reservation_and_user_rule() {
    let root = tempfile::tempdir().unwrap();
    let cfg = r#"
        [[host]]
        mac = "52:54:00:12:34:56"
        ip = "10.77.0.42"
        [[rule]]
        name = "nautilus"
        mac = "52:54:00:*"
        vendor_class = "PXEClient"
        boot_file = "pxelinux.0"
        config_file = "pxelinux.cfg/{mac}"
        options = { 12 = "aronnax" }
    "#;
    let mut d = server(Mode::Full, root.path(), None, cfg);
    let m = decode(&d.handle(ROM_DISCOVER, from_client(), SERVER_PORT).unwrap().bytes());
    assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 77, 0, 42));
    assert_eq!(fname(&m), "pxelinux.0");
    assert_eq!(opt_bytes(&m, 209).unwrap(), b"pxelinux.cfg/01-52-54-00-12-34-56");
    assert_eq!(opt_bytes(&m, 12).unwrap(), b"aronnax");
}

#[test]
fn real_rom_request_and_chainloader_exchange() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("chainloader.cfg")).unwrap();
    std::fs::write(root.path().join("chainloader.cfg/default"), "kernel kernel.elf\n").unwrap();
    let mut d = server(Mode::Full, root.path(), None, "");
    let c = Client::from_message(&decode(CHAINLOADER_DISCOVER), "br0").unwrap();
    assert!(c.is_chainloader() && c.is_pxe() && !c.is_ipxe(), "{c:?}");
    d.handle(ROM_DISCOVER, from_client(), SERVER_PORT).unwrap();
    let ack = decode(&d.handle(ROM_REQUEST, from_client(), SERVER_PORT).expect("ACK for the ROM").bytes());
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), Ipv4Addr::new(10, 77, 0, 100));
    let o = decode(&d.handle(CHAINLOADER_DISCOVER, from_client(), SERVER_PORT).unwrap().bytes());
    assert_eq!(o.yiaddr(), Ipv4Addr::new(10, 77, 0, 100), "same client, same address");
    assert_eq!(opt_bytes(&o, 209).unwrap(), b"chainloader.cfg/default");
    assert!(opt_bytes(&o, 67).is_none());
    let a =
        decode(&d.handle(CHAINLOADER_REQUEST, from_client(), SERVER_PORT).expect("ACK for the chainloader").bytes());
    assert_eq!(a.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(opt_bytes(&a, 209).unwrap(), b"chainloader.cfg/default");
}

/// The per-target file and the RFC 3004 list form of option 77, on the
/// ROM's DISCOVER with its user class replaced.
#[test]
fn chainloader_gets_its_config_file_and_no_boot_file() {
    let root = tempfile::tempdir().unwrap();
    let mut d = server(Mode::Full, root.path(), None, "");
    let disc = with_user_class(ROM_DISCOVER, b"chainloader");
    // No config in the TFTP root: no 209, the chainloader searches itself.
    let m = decode(&d.handle(&disc, from_client(), SERVER_PORT).unwrap().bytes());
    assert!(opt_bytes(&m, 209).is_none());
    assert!(m.fname().is_none() || m.fname().unwrap().iter().all(|b| *b == 0));
    assert!(opt_bytes(&m, 67).is_none());
    std::fs::create_dir_all(root.path().join("chainloader.cfg")).unwrap();
    std::fs::write(root.path().join("chainloader.cfg/default"), "kernel kernel.elf\n").unwrap();
    let m = decode(&d.handle(&disc, from_client(), SERVER_PORT).unwrap().bytes());
    assert_eq!(opt_bytes(&m, 209).unwrap(), b"chainloader.cfg/default");
    // With a per-target file in the TFTP root, that one.
    std::fs::write(root.path().join("chainloader.cfg/01-52-54-00-12-34-56"), "kernel kernel.elf\n").unwrap();
    let m = decode(&d.handle(&disc, from_client(), SERVER_PORT).unwrap().bytes());
    assert_eq!(opt_bytes(&m, 209).unwrap(), b"chainloader.cfg/01-52-54-00-12-34-56");
    // RFC 3004 list form is understood too.
    let listed = with_user_class(ROM_DISCOVER, b"\x0bchainloader");
    let m = decode(&d.handle(&listed, from_client(), SERVER_PORT).unwrap().bytes());
    assert_eq!(opt_bytes(&m, 209).unwrap(), b"chainloader.cfg/01-52-54-00-12-34-56");
}

#[test]
fn efi_client_gets_an_address_but_no_boot_file() {
    let root = tempfile::tempdir().unwrap();
    let mut d = server(Mode::Full, root.path(), None, "");
    let mut m = decode(ROM_DISCOVER);
    m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(7u16.into()));
    m.opts_mut().insert(DhcpOption::ClassIdentifier(b"PXEClient:Arch:00007:UNDI:003016".to_vec()));
    let o = decode(&d.handle(&m.to_vec().unwrap(), from_client(), SERVER_PORT).unwrap().bytes());
    assert!(!o.yiaddr().is_unspecified());
    assert!(opt_bytes(&o, 67).is_none());
}

#[test]
fn proxy_mode_offers_boot_information_without_an_address() {
    let root = tempfile::tempdir().unwrap();
    let mut d = server(Mode::Proxy, root.path(), None, "");
    let o = decode(&d.handle(ROM_DISCOVER, from_client(), SERVER_PORT).unwrap().bytes());
    assert_eq!(o.opts().msg_type(), Some(MessageType::Offer));
    assert!(o.yiaddr().is_unspecified());
    assert_eq!(o.siaddr(), Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(opt_bytes(&o, 60).unwrap(), b"PXEClient");
    assert_eq!(fname(&o), "chainloader.0");
    assert!(opt_bytes(&o, 51).is_none() && opt_bytes(&o, 1).is_none(), "no address parameters");
    // The site server's business: REQUESTs on 67 and non-PXE clients.
    assert!(d.handle(&rom_message(MessageType::Request, vec![]), from_client(), SERVER_PORT).is_none());
    let mut plain = decode(ROM_DISCOVER);
    plain.opts_mut().remove(OptionCode::ClassIdentifier);
    plain.opts_mut().remove(OptionCode::UserClass);
    plain.opts_mut().remove(OptionCode::from(175u8));
    assert!(d.handle(&plain.to_vec().unwrap(), from_client(), SERVER_PORT).is_none());
    // The ProxyDHCP REQUEST to port 4011 is answered where it came from.
    let mut req = decode(&rom_message(MessageType::Request, vec![]));
    req.set_ciaddr(Ipv4Addr::new(10, 77, 0, 57));
    let src = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 57), 68);
    let r = d.handle(&req.to_vec().unwrap(), src, PXE_PORT).unwrap();
    assert_eq!(r.to, src);
    let ack = decode(&r.bytes());
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(fname(&ack), "chainloader.0");
}

#[test]
fn bad_input_is_dropped() {
    let root = tempfile::tempdir().unwrap();
    let mut d = server(Mode::Full, root.path(), None, "");
    // Every truncation of a real packet.
    for pkt in [ROM_DISCOVER, ROM_REQUEST, CHAINLOADER_DISCOVER, CHAINLOADER_REQUEST] {
        for n in 0..pkt.len() {
            let _ = d.handle(&pkt[..n], from_client(), SERVER_PORT);
        }
    }
    // A reply instead of a request, garbage, an option with a lying length.
    let mut reply = ROM_DISCOVER.to_vec();
    reply[0] = 2;
    assert!(d.handle(&reply, from_client(), SERVER_PORT).is_none());
    assert!(d.handle(&[0xff; 600], from_client(), SERVER_PORT).is_none());
    let mut lying = ROM_DISCOVER.to_vec();
    lying[0xf1] = 0xff; // option 53's length
    let _ = d.handle(&lying, from_client(), SERVER_PORT);
    // Found by the fuzz target: option 94 twice, which dhcproto joins into
    // one 6-byte option and then asserts is 3 bytes long.
    let _ = d.handle(include_bytes!("fixtures/fuzz-repeated-option-94.bin"), from_client(), SERVER_PORT);
    // Unknown option with an odd client architecture length.
    let mut m = decode(ROM_DISCOVER);
    m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(93u8), vec![1])));
    let _ = d.handle(&m.to_vec().unwrap(), from_client(), SERVER_PORT);
}

/// The fuzz target's body over deterministic pseudo-random mutations of the
/// real packet, so `cargo test` exercises it without cargo-fuzz.
#[test]
fn mutated_packets_never_panic() {
    let root = tempfile::tempdir().unwrap();
    let mut full = server(Mode::Full, root.path(), None, "");
    let mut proxy = server(Mode::Proxy, root.path(), None, "");
    let mut x = bootproto::xorshift::Xorshift64(0x9e3779b97f4a7c15);
    let mut next = || x.next_u64();
    for _ in 0..20000 {
        let mut p = ROM_DISCOVER.to_vec();
        for _ in 0..(next() % 8 + 1) {
            let i = (next() as usize) % p.len();
            p[i] = next() as u8;
        }
        if next() % 4 == 0 {
            p.truncate((next() as usize) % p.len());
        }
        for r in [
            full.handle(&p, from_client(), SERVER_PORT),
            proxy.handle(&p, from_client(), SERVER_PORT),
            proxy.handle(&p, from_client(), PXE_PORT),
        ]
        .into_iter()
        .flatten()
        {
            let _ = r.bytes();
        }
    }
}
