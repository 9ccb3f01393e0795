//! A target's console on TCP: raw bytes, or telnet with RFC 2217.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;

use tracing::{info, warn};

use super::hub::Hub;
use super::session::{self, Codec};
use super::ConsoleError;

pub fn listen(hub: Arc<Hub>, bind: IpAddr, port: u16, codec: Codec) -> Result<SocketAddr, ConsoleError> {
    let what = if codec == Codec::Telnet { "telnet/RFC 2217" } else { "raw TCP" };
    let l = TcpListener::bind((bind, port)).map_err(|source| ConsoleError::Listen {
        bind,
        port,
        what,
        target: hub.target.clone(),
        source,
    })?;
    let addr = l.local_addr()?;
    info!(target: "console", target_name = %hub.target, addr = %addr, protocol = %what, "listening");
    std::thread::Builder::new().name(format!("tcp-{}-{port}", hub.target)).spawn(move || {
        for c in l.incoming() {
            let c = match c {
                Ok(c) => c,
                Err(e) => {
                    warn!(target: "console", target_name = %hub.target, error = %e, "accept failed");
                    continue;
                }
            };
            let _ = c.set_nodelay(true);
            let peer = c.peer_addr().map(|p| p.to_string()).unwrap_or_default();
            let hub = hub.clone();
            std::thread::spawn(move || {
                let Ok(w) = c.try_clone() else { return };
                let kind = if codec == Codec::Telnet { "telnet" } else { "tcp" };
                session::run(&hub, kind, peer, false, 0, codec, c, w, &[]);
            });
        }
    })?;
    Ok(addr)
}
