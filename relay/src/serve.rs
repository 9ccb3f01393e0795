//! `relay serve`: from one config, DHCP (full or proxy), TFTP and router
//! advertisements on one interface, the console hub of every target (and
//! its TCP ports), and the control socket; each on its own thread.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tracing::{info, warn};

use crate::console::hub::Hub;
use crate::console::log::{TimestampedLog, DEFAULT_KEEP, DEFAULT_MAX_BYTES};
use crate::console::session::Codec;
use crate::error::Chain;
use crate::net::dhcp::{self, Dhcp, Mode, PXE_PORT, SERVER_PORT};
use crate::net::iface::{self, Interface};
use crate::policy::config::Config;
use crate::policy::targets::{Kind, TargetTable};
use crate::target::{qemu, TargetRuntime, Targets};
use crate::tftp::{TftpConfig, TftpServer};

#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Overrides `[serve] interface`; neither: no DHCP, no TFTP.
    pub interface: Option<String>,
    pub tftp_root: Option<PathBuf>,
    /// Overrides `[serve] control`.
    pub control: Option<PathBuf>,
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
    /// Overrides `[serve] http_port`: the TFTP root over HTTP too.
    pub http_port: Option<u16>,
}

pub const DEFAULT_STATE_DIR: &str = "/var/lib/relay";
pub const DEFAULT_LOG_DIR: &str = "/var/log/relay";

/// Binds everything, runs the safety check, then serves until a server
/// thread fails.
pub fn serve(mut opts: ServeOptions) -> anyhow::Result<()> {
    let config = match &opts.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let table = TargetTable::new(&config.targets).with_context(|| {
        format!("config {}", opts.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default())
    })?;
    let dirs = resolve_dirs(&mut opts, &config)?;

    // The targets first: their consoles must be read from the start.
    let runtimes = start_targets(&table, &config, &dirs)?;
    let targets =
        Arc::new(Targets { list: runtimes, tftp_root: dirs.tftp_root.clone(), log_dir: dirs.log_dir.clone() });
    let control = start_control(&opts, &config, &targets)?;
    let describe = describe_targets(&targets);

    let Some(ifname) = opts.interface.clone().or_else(|| config.serve.interface.clone()) else {
        return wait_without_interface(control, &describe, &dirs);
    };
    let ifc = iface::lookup(&ifname)?;
    let mode = if opts.proxy { Mode::Proxy } else { Mode::Full };

    // Bind first, so that a port held by dnsmasq is reported as such.
    let sockets = bind_sockets(&ifc, mode, &opts, &config, &dirs, &targets)?;
    let mut dhcp = configure_dhcp(&ifc, mode, &opts, &config, &dirs, table, &targets, sockets.http.as_ref())?;
    let (offered_rx, pinger) = start_conflict_probe(&mut dhcp, mode, &config, &ifc);
    let dhcp = Arc::new(Mutex::new(dhcp));
    let (done_tx, done_rx) = mpsc::channel::<(&'static str, anyhow::Result<()>)>();
    spawn_servers(&done_tx, &dhcp, sockets, pinger, offered_rx, &opts, &ifc)?;
    if let Some(c) = &control {
        info!(target: "relay", targets = %describe, control = %c.display(), log_dir = %dirs.log_dir.display(), "ready");
    }
    drop(done_tx);
    let (name, result) = done_rx.recv().context("all server threads ended")?;
    result.with_context(|| format!("{name} server stopped"))?;
    bail!("{name} server stopped")
}

/// Where `serve` reads boot files from, keeps leases and writes console logs.
struct Dirs {
    tftp_root: PathBuf,
    state_dir: PathBuf,
    log_dir: PathBuf,
}

/// Folds the config's `[serve]` settings into `opts` and picks the directories.
fn resolve_dirs(opts: &mut ServeOptions, config: &Config) -> anyhow::Result<Dirs> {
    opts.proxy |= config.serve.proxy;
    opts.no_ra |= config.serve.no_ra;
    if let Some(p) = config.serve.probe_secs {
        opts.probe_wait = Duration::from_secs_f64(p.max(0.0));
    }
    let tftp_root = opts
        .tftp_root
        .clone()
        .or_else(|| config.serve.tftp_root.clone())
        .context("no TFTP root: give --tftp-root DIR or [serve] tftp_root")?;
    anyhow::ensure!(tftp_root.is_dir(), "TFTP root {} is not a directory", tftp_root.display());
    let state_dir = opts
        .state_dir
        .clone()
        .or_else(|| config.dhcp.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let log_dir = config.serve.log_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_DIR));
    Ok(Dirs { tftp_root, state_dir, log_dir })
}

/// Starts each target's VM (if QEMU), console hub, log and TCP ports.
fn start_targets(table: &TargetTable, config: &Config, dirs: &Dirs) -> anyhow::Result<Vec<Arc<TargetRuntime>>> {
    let mut runtimes = vec![];
    for mut t in table.targets.clone() {
        let vm = if t.kind == Kind::Qemu {
            let vm = qemu::start(&t, &dirs.tftp_root, &dirs.state_dir)?;
            t.serial = Some(vm.pty.clone());
            t.qmp = Some(vm.qmp.clone());
            Some(vm)
        } else {
            None
        };
        let device = t.serial.clone().expect("a serial target has its device (checked in the table)");
        let log = TimestampedLog::open(
            &dirs.log_dir.join(format!("{}.log", t.name)),
            config.serve.log_max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
            config.serve.log_keep.unwrap_or(DEFAULT_KEEP),
        )?;
        let hub = Hub::start(&t.name, &device, t.baud, log).with_context(|| format!("target {}", t.name))?;
        let bind = config.serve.console_bind.unwrap_or(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        for (port, codec) in [(t.tcp_port, Codec::Raw), (t.telnet_port, Codec::Telnet)] {
            if let Some(p) = port {
                crate::console::tcp::listen(hub.clone(), bind, p, codec)?;
            }
        }
        let rt = TargetRuntime::new(t, hub, vm);
        if let Some(vm) = &rt.vm {
            vm.run()?;
        }
        runtimes.push(rt);
    }
    Ok(runtimes)
}

/// Opens the control socket and its thread, if there are targets or one was asked for.
fn start_control(opts: &ServeOptions, config: &Config, targets: &Arc<Targets>) -> anyhow::Result<Option<PathBuf>> {
    let control = opts.control.clone().or_else(|| config.serve.control.clone());
    if targets.list.is_empty() && control.is_none() {
        return Ok(None);
    }
    let path = crate::control::socket_path(control);
    let l = crate::control::listen(&path, config.serve.group.as_deref())?;
    let t = targets.clone();
    std::thread::Builder::new().name("control".into()).spawn(move || crate::control::serve(l, t))?;
    Ok(Some(path))
}

/// "name (mac, device), ..." for the readiness lines.
fn describe_targets(targets: &Targets) -> String {
    targets
        .list
        .iter()
        .map(|t| format!("{} ({}, {})", t.target.name, crate::policy::mac::fmt_mac(&t.target.mac), t.hub.device))
        .collect::<Vec<_>>()
        .join(", ")
}

/// No interface: only consoles and the control socket; reports readiness and never returns Ok.
fn wait_without_interface(control: Option<PathBuf>, describe: &str, dirs: &Dirs) -> anyhow::Result<()> {
    anyhow::ensure!(control.is_some(), "nothing to do: give --interface IF, or [[target]]s in --config");
    info!(
        target: "relay",
        tftp_root = %dirs.tftp_root.display(),
        targets = %describe,
        control = %control.as_ref().unwrap().display(),
        log_dir = %dirs.log_dir.display(),
        "ready without an interface: no DHCP or TFTP (a QEMU user network serves the TFTP root)"
    );
    loop {
        std::thread::park();
    }
}

/// The bound but not yet running servers on the interface.
struct Sockets {
    dhcp: UdpSocket,
    pxe: Option<UdpSocket>,
    tftp: TftpServer,
    http: Option<crate::http::HttpServer>,
}

/// Binds DHCP (and 4011 in proxy mode), TFTP and, if asked, HTTP.
fn bind_sockets(
    ifc: &Interface,
    mode: Mode,
    opts: &ServeOptions,
    config: &Config,
    dirs: &Dirs,
    targets: &Arc<Targets>,
) -> anyhow::Result<Sockets> {
    let dhcp = iface::udp_on(&ifc.name, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT), mode == Mode::Proxy)?;
    let pxe = match mode {
        Mode::Proxy => Some(iface::udp_on(&ifc.name, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PXE_PORT), false)?),
        Mode::Full => None,
    };
    let tftp = TftpServer::bind(TftpConfig {
        root: dirs.tftp_root.clone(),
        bind: SocketAddr::from((ifc.addr, 69)),
        interface: Some(ifc.name.clone()),
        max_transfers: 64,
        max_blksize: 65464,
    })?;
    tftp.observe(targets.clone());
    let http = match opts.http_port.or(config.serve.http_port) {
        Some(port) => {
            let bind = SocketAddr::from((ifc.addr, port));
            Some(crate::http::HttpServer::bind(crate::http::HttpConfig::new(dirs.tftp_root.clone(), bind))?)
        }
        None => None,
    };
    Ok(Sockets { dhcp, pxe, tftp, http })
}

/// Builds the DHCP server, runs the other-server safety check in full mode, and logs the mode.
#[allow(clippy::too_many_arguments)] // each is one of serve's settings; a struct would only rename them
fn configure_dhcp(
    ifc: &Interface,
    mode: Mode,
    opts: &ServeOptions,
    config: &Config,
    dirs: &Dirs,
    table: TargetTable,
    targets: &Arc<Targets>,
    http: Option<&crate::http::HttpServer>,
) -> anyhow::Result<Dhcp> {
    let mut dhcp = Dhcp::new(ifc.clone(), mode, dirs.tftp_root.clone(), config, Some(&dirs.state_dir))?;
    dhcp.targets = Arc::new(table);
    dhcp.observer = Some(targets.clone());
    dhcp.http_prefix = http.map(|h| match h.local_addr().port() {
        80 => format!("http://{}/", ifc.addr),
        p => format!("http://{}:{p}/", ifc.addr),
    });
    if mode == Mode::Full {
        let (other, xid) = dhcp::probe_other_server(&ifc.name, opts.probe_wait)?;
        dhcp.ignore_xid = Some(xid);
        match other {
            Some(server) if !opts.force => bail!(
                "another DHCP server ({server}) answers on {}; refusing full DHCP mode. Use --proxy to run as proxyDHCP beside it.",
                ifc.name
            ),
            Some(server) => warn!(
                target: "relay",
                interface = %ifc.name,
                server = %server,
                "another DHCP server answers, serving full DHCP anyway (--force)"
            ),
            None => info!(
                target: "relay",
                interface = %ifc.name,
                ms = opts.probe_wait.as_millis() as u64,
                "no other DHCP server answered"
            ),
        }
    }
    log_mode(&dhcp, mode, config, ifc, dirs);
    Ok(dhcp)
}

/// The line the harness and scripts wait for: the mode, the interface and where files and leases are.
fn log_mode(dhcp: &Dhcp, mode: Mode, config: &Config, ifc: &Interface, dirs: &Dirs) {
    let range = dhcp.leases.as_ref().map(|_| config.dhcp.range.unwrap_or_else(|| dhcp::default_range(ifc)));
    let addr = format!("{}/{}", ifc.addr, ifc.prefix_len());
    let pool = range.map(|(a, b)| tracing::field::display(format!("{a}-{b}")));
    let (tftp_root, state_dir) = (dirs.tftp_root.display(), dirs.state_dir.display());
    let what = if mode == Mode::Full { "full DHCP" } else { "proxyDHCP" };
    info!(target: "relay", interface = %ifc.name, addr, pool, %tftp_root, %state_dir, "{what}");
}

/// In full mode (unless `no_probe`), a pinger for pool addresses, fed by the offers `dhcp` makes.
fn start_conflict_probe(
    dhcp: &mut Dhcp,
    mode: Mode,
    config: &Config,
    ifc: &Interface,
) -> (mpsc::Receiver<()>, Option<crate::net::probe::Pinger>) {
    let (offered_tx, offered_rx) = mpsc::channel();
    let pinger = match (mode, config.dhcp.no_probe) {
        (Mode::Full, false) => match crate::net::probe::Pinger::new(&ifc.name) {
            Ok(p) => {
                dhcp.offered = Some(offered_tx);
                Some(p)
            }
            Err(e) => {
                warn!(target: "relay", error = %Chain(&e), "no background conflict probe of pool addresses");
                None
            }
        },
        _ => None,
    };
    (offered_rx, pinger)
}

/// Starts the DHCP, proxy 4011, TFTP, HTTP, conflict-probe and RA threads; each reports its end on `done_tx`.
fn spawn_servers(
    done_tx: &mpsc::Sender<(&'static str, anyhow::Result<()>)>,
    dhcp: &Arc<Mutex<Dhcp>>,
    sockets: Sockets,
    pinger: Option<crate::net::probe::Pinger>,
    offered_rx: mpsc::Receiver<()>,
    opts: &ServeOptions,
    ifc: &Interface,
) -> anyhow::Result<()> {
    let spawn = |name: &'static str, f: Box<dyn FnOnce() -> anyhow::Result<()> + Send>| {
        let tx = done_tx.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let _ = tx.send((name, f()));
        })
    };
    let Sockets { dhcp: dhcp_sock, pxe: pxe_sock, tftp, http } = sockets;
    {
        let d = dhcp.clone();
        spawn("dhcp", Box::new(move || Ok(dhcp::serve(dhcp_sock, SERVER_PORT, &d)?)))?;
    }
    if let Some(s) = pxe_sock {
        let d = dhcp.clone();
        spawn("pxe-4011", Box::new(move || Ok(dhcp::serve(s, PXE_PORT, &d)?)))?;
    }
    spawn("tftp", Box::new(move || Ok(tftp.run()?)))?;
    if let Some(h) = http {
        let prefix = dhcp.lock().map(|d| d.http_prefix.clone().unwrap_or_default()).unwrap_or_default();
        info!(target: "relay", addr = %h.local_addr(), option_210 = %prefix, "chainloader.0 fetches kernels over HTTP");
        spawn("http", Box::new(move || Ok(h.run()?)))?;
    }
    if let Some(p) = pinger {
        let d = dhcp.clone();
        spawn("conflict-probe", Box::new(move || Ok(dhcp::probe_pool(&d, p, offered_rx)?)))?;
    }
    if !opts.no_ra {
        match crate::net::ra::Responder::bind(&ifc.name) {
            Ok(r) => {
                spawn("ra", Box::new(move || Ok(r.run()?)))?;
            }
            Err(e) => warn!(
                target: "relay",
                error = %Chain(&e),
                "not answering IPv6 router solicitations (iPXE will wait ~13 s for IPv6)"
            ),
        }
    }
    Ok(())
}
