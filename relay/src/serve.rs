//! `relay serve`: DHCP (full or proxy), TFTP and router advertisements on
//! one interface, each protocol on its own thread.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tracing::{info, warn};

use crate::config::Config;
use crate::dhcp::{self, Dhcp, Mode, PXE_PORT, SERVER_PORT};
use crate::iface;
use crate::tftp::{TftpConfig, TftpServer};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub interface: String,
    pub tftp_root: PathBuf,
    pub config: Option<PathBuf>,
    pub proxy: bool,
    /// Serve full DHCP even if another DHCP server answers.
    pub force: bool,
    /// Where leases are kept; None: the config's, else /var/lib/relay.
    pub state_dir: Option<PathBuf>,
    /// How long to listen for another DHCP server before full mode.
    pub probe_wait: Duration,
    /// Do not answer IPv6 router solicitations.
    pub no_ra: bool,
}

pub const DEFAULT_STATE_DIR: &str = "/var/lib/relay";

/// Binds everything, runs the safety check, then serves until a server
/// thread fails.
pub fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let ifc = iface::lookup(&opts.interface)?;
    let config = match &opts.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    anyhow::ensure!(opts.tftp_root.is_dir(), "TFTP root {} is not a directory", opts.tftp_root.display());
    let mode = if opts.proxy { Mode::Proxy } else { Mode::Full };
    let state_dir = opts
        .state_dir
        .clone()
        .or_else(|| config.dhcp.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));

    // Bind first, so that a port held by dnsmasq is reported as such.
    let dhcp_sock = iface::udp_on(&ifc.name, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT), mode == Mode::Proxy)?;
    let pxe_sock = match mode {
        Mode::Proxy => Some(iface::udp_on(&ifc.name, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PXE_PORT), false)?),
        Mode::Full => None,
    };
    let tftp = TftpServer::bind(TftpConfig {
        root: opts.tftp_root.clone(),
        bind: SocketAddr::from((ifc.addr, 69)),
        interface: Some(ifc.name.clone()),
        max_transfers: 64,
        max_blksize: 65464,
    })?;

    let mut dhcp = Dhcp::new(ifc.clone(), mode, opts.tftp_root.clone(), &config, Some(&state_dir))?;
    if mode == Mode::Full {
        let (other, xid) = dhcp::probe_other_server(&ifc.name, opts.probe_wait)?;
        dhcp.ignore_xid = Some(xid);
        match other {
            Some(server) if !opts.force => bail!(
                "another DHCP server ({server}) answers on {}; refusing full DHCP mode. Use --proxy to run as proxyDHCP beside it.",
                ifc.name
            ),
            Some(server) => warn!("another DHCP server ({server}) answers on {}; serving full DHCP anyway (--force)", ifc.name),
            None => info!("no other DHCP server answered on {} within {:?}", ifc.name, opts.probe_wait),
        }
    }
    let range = dhcp.leases.as_ref().map(|_| config.dhcp.range.unwrap_or_else(|| dhcp::default_range(&ifc)));
    info!(
        "relay: {} on {} ({}/{}){}, TFTP root {}, leases in {}",
        if mode == Mode::Full { "full DHCP" } else { "proxyDHCP" },
        ifc.name,
        ifc.addr,
        ifc.prefix_len(),
        range.map(|(a, b)| format!(", pool {a} - {b}")).unwrap_or_default(),
        opts.tftp_root.display(),
        state_dir.display(),
    );

    let (offered_tx, offered_rx) = mpsc::channel();
    let pinger = match (mode, config.dhcp.no_probe) {
        (Mode::Full, false) => match crate::probe::Pinger::new(&ifc.name) {
            Ok(p) => {
                dhcp.offered = Some(offered_tx);
                Some(p)
            }
            Err(e) => {
                warn!("no background conflict probe of pool addresses: {e:#}");
                None
            }
        },
        _ => None,
    };
    let dhcp = Arc::new(Mutex::new(dhcp));
    let (done_tx, done_rx) = mpsc::channel::<(&'static str, anyhow::Result<()>)>();
    let spawn = |name: &'static str, f: Box<dyn FnOnce() -> anyhow::Result<()> + Send>| {
        let tx = done_tx.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let _ = tx.send((name, f()));
        })
    };
    {
        let d = dhcp.clone();
        spawn("dhcp", Box::new(move || dhcp::serve(dhcp_sock, SERVER_PORT, &d)))?;
    }
    if let Some(s) = pxe_sock {
        let d = dhcp.clone();
        spawn("pxe-4011", Box::new(move || dhcp::serve(s, PXE_PORT, &d)))?;
    }
    spawn("tftp", Box::new(move || tftp.run()))?;
    if let Some(p) = pinger {
        let d = dhcp.clone();
        spawn("conflict-probe", Box::new(move || dhcp::probe_pool(&d, p, offered_rx)))?;
    }
    if !opts.no_ra {
        match crate::ra::Responder::bind(&ifc.name) {
            Ok(r) => {
                spawn("ra", Box::new(move || r.run()))?;
            }
            Err(e) => warn!("not answering IPv6 router solicitations ({e:#}); iPXE will wait ~13 s for IPv6"),
        }
    }
    drop(done_tx);
    let (name, result) = done_rx.recv().context("all server threads ended")?;
    result.with_context(|| format!("{name} server stopped"))?;
    bail!("{name} server stopped")
}
