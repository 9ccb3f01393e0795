//! proxyDHCP (PXE 2.1): boot information beside the site's DHCP server.
//!
//! On port 67 the relay answers a PXE client's DISCOVER with an offer that
//! carries no address, only option 60 "PXEClient", the boot file and option
//! 43; the ROM takes its address from the site server. On port 4011 it
//! answers the ROM's ProxyDHCP REQUEST (sent there after the site server's
//! ACK) with the same boot information.

use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::v4::{Message, MessageType};
use tracing::debug;

use crate::net::dhcp::{Dhcp, Reply, PXE_PORT};
use crate::policy::tagging::{fmt_mac, Client};

impl Dhcp {
    /// Port 67 in proxy mode: only DISCOVERs from PXE clients (or the
    /// chainloader) get an answer; everything else is the site server's.
    pub(crate) fn proxy_discover(&mut self, msg: &Message, client: &Client, mtype: MessageType) -> Option<Reply> {
        if mtype != MessageType::Discover {
            return None;
        }
        if !client.is_pxe() && !client.is_chainloader() {
            debug!(target: "proxy", client = %fmt_mac(&client.mac), "not a PXE client; the site DHCP server serves it");
            return None;
        }
        let d = self.decide(client);
        if d.boot_file.is_none() && d.config_file.is_none() {
            // An offer with nothing to boot would only slow the ROM down.
            tracing::info!(
                target: "proxy",
                client = %fmt_mac(&client.mac),
                rule = %d.rule,
                note = d.note.as_deref(),
                "DISCOVER: nothing to offer"
            );
            return None;
        }
        Some(self.reply(msg, client, MessageType::Offer, Ipv4Addr::UNSPECIFIED, &d))
    }

    /// Port 4011: the ProxyDHCP REQUEST (or an INFORM), answered with an
    /// ACK straight back to where it came from.
    pub(crate) fn proxy_request(
        &mut self,
        msg: &Message,
        client: &Client,
        mtype: MessageType,
        src: SocketAddrV4,
    ) -> Option<Reply> {
        if !matches!(mtype, MessageType::Request | MessageType::Inform) {
            debug!(target: "proxy", client = %fmt_mac(&client.mac), request = ?mtype, port = PXE_PORT, "ignored");
            return None;
        }
        let d = self.decide(client);
        let mut r = self.reply(msg, client, MessageType::Ack, Ipv4Addr::UNSPECIFIED, &d);
        if !src.ip().is_unspecified() {
            r.to = src;
        }
        Some(r)
    }
}
