//! The targets at run time: each one's console hub, its state as judged
//! from what it does (DHCP, console), its last boot; and the operations
//! on it: reset methods, reboot with escalation, `relay boot`.

pub mod boot;
pub mod evidence;
pub mod qemu;
pub mod reboot;
pub mod reset;
pub mod stage;

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::console::hub::Hub;
use crate::console::log::utc_now;
use crate::net::dhcp::DhcpObserver;
use crate::policy::mac::fmt_mac;
use crate::policy::tagging::Client;
use crate::policy::targets::Target;
use evidence::{is_banner, Lines, HANDOFF_LINE};

/// What went wrong resetting, starting or booting a target. Each variant's
/// text is its own context; the cause is its `source()`.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),

    // -- reset methods
    #[error("writing ~~~k to {device}")]
    WriteReboot { device: String, source: std::io::Error },
    #[error("cannot open the reset adapter {device}")]
    ResetAdapter { device: String, source: serialport::Error },
    #[error("cannot run `sh -c {run:?}`")]
    RunCommand { run: String, source: std::io::Error },
    #[error("`{run}` did not finish within {secs:.0} s and was killed")]
    CommandTimeout { run: String, secs: f64 },
    #[error("`{run}` failed ({status})")]
    CommandFailed { run: String, status: std::process::ExitStatus },
    #[error("no QMP socket for this target")]
    NoQmp,

    // -- QEMU
    #[error("cannot connect to QMP at {}", path.display())]
    QmpConnect { path: PathBuf, source: std::io::Error },
    #[error("{} is not a QMP socket: {greeting}", path.display())]
    NotQmp { path: PathBuf, greeting: serde_json::Value },
    #[error("QMP closed the connection")]
    QmpClosed,
    #[error("QMP {cmd}: {error}")]
    QmpCommand { cmd: String, error: serde_json::Value },
    #[error("target {target}: qemu.netdev = {netdev:?}: \"user\" or \"tap:IFNAME\"")]
    Netdev { target: String, netdev: String },
    #[error("cannot start qemu-system-x86_64 (apt-get install qemu-system-x86 ipxe-qemu)")]
    StartQemu(#[source] std::io::Error),
    #[error("QEMU for target {0} did not say where its serial pty is")]
    NoPty(String),
    #[error("QEMU for target {target} never opened its QMP socket {}", path.display())]
    NoQmpSocket { target: String, path: PathBuf },

    // -- staging and boot
    #[error("cannot create {}", path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error("staged file has no directory")]
    NoDirectory,
    #[error("the file ended after {total} of {size} bytes")]
    ShortFile { total: u64, size: u64 },
    #[error("cannot rename {} to {}", from.display(), to.display())]
    Rename { from: PathBuf, to: PathBuf, source: std::io::Error },
    /// bootproto's error is `no_std`, not a `std::error::Error`: it is in the text.
    #[error("the command line or a module string does not fit the chainloader's config syntax: {0}")]
    ConfigSyntax(bootproto::config::ConfigError),
    #[error("bad --expect pattern {pattern:?}")]
    Expect { pattern: String, source: regex::Error },
    #[error("bad --fail pattern {pattern:?}")]
    Fail { pattern: String, source: regex::Error },
}

/// What the relay believes a target is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Nothing seen since the relay started (off, or quiet).
    Unknown,
    /// Its PXE ROM or chainloader is at work (DHCP, banners).
    Netbooting,
    /// A kernel runs: chainloader.0 handed over, or it prints.
    Running,
    /// A reset by its own kernel got no answer (interrupts off?), or a
    /// boot went silent.
    Hung,
}

/// The last `relay boot` of a target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastBoot {
    pub started: String,
    pub kernel: String,
    pub sha256: String,
    pub cmdline: String,
    pub verdict: String,
    pub log: String,
}

/// One line of `relay status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetStatus {
    pub name: String,
    pub mac: String,
    pub state: State,
    pub since: String,
    pub serial: String,
    pub last_boot: Option<LastBoot>,
    pub last_evidence: Option<String>,
    /// The last file of this target's that TFTP sent whole.
    pub last_fetch: Option<String>,
    pub clients: Vec<String>,
    pub console_log: Option<String>,
    pub tcp_port: Option<u16>,
    pub telnet_port: Option<u16>,
}

struct Status {
    state: State,
    since: String,
    last_boot: Option<LastBoot>,
    last_evidence: Option<String>,
    last_fetch: Option<String>,
}

/// One target while the relay runs.
pub struct TargetRuntime {
    pub target: Target,
    pub hub: Arc<Hub>,
    status: Mutex<Status>,
    dhcp_watchers: Mutex<Vec<Sender<(Instant, String)>>>,
    /// One reboot or boot at a time per target.
    pub busy: Mutex<()>,
    /// The QEMU behind a virtual target (kept alive here).
    pub vm: Option<qemu::VirtualMachine>,
}

impl TargetRuntime {
    pub fn new(target: Target, hub: Arc<Hub>, vm: Option<qemu::VirtualMachine>) -> Arc<TargetRuntime> {
        let rt = Arc::new(TargetRuntime {
            target,
            hub,
            status: Mutex::new(Status {
                state: State::Unknown,
                since: utc_now(),
                last_boot: None,
                last_evidence: None,
                last_fetch: None,
            }),
            dhcp_watchers: Mutex::new(vec![]),
            busy: Mutex::new(()),
            vm,
        });
        let weak = Arc::downgrade(&rt);
        let (_, rx) = rt.hub.watch();
        std::thread::Builder::new()
            .name(format!("state-{}", rt.target.name))
            .spawn(move || {
                let handoff = regex::Regex::new(HANDOFF_LINE).unwrap();
                let mut lines = Lines::default();
                for chunk in rx {
                    let Some(rt) = weak.upgrade() else { return };
                    lines.feed(&chunk.bytes, |l, complete| {
                        if !complete {
                            return false;
                        }
                        if is_banner(l) {
                            rt.set_state(State::Netbooting);
                        } else if handoff.is_match(l) || (!l.trim().is_empty() && rt.state() != State::Netbooting) {
                            rt.set_state(State::Running);
                        }
                        false
                    });
                }
            })
            .expect("spawning a thread");
        rt
    }

    pub fn state(&self) -> State {
        self.status.lock().unwrap().state
    }

    pub fn set_state(&self, s: State) {
        let mut g = self.status.lock().unwrap();
        if g.state != s {
            tracing::info!(target: "target", target_name = %self.target.name, from = ?g.state, to = ?s, "state changed");
            g.state = s;
            g.since = utc_now();
        }
    }

    pub fn set_evidence(&self, e: &str) {
        self.status.lock().unwrap().last_evidence = Some(format!("{} {e}", utc_now()));
    }

    pub fn set_last_boot(&self, b: LastBoot) {
        self.status.lock().unwrap().last_boot = Some(b);
    }

    /// DISCOVERs from this target's MAC, from now on.
    pub fn watch_dhcp(&self) -> std::sync::mpsc::Receiver<(Instant, String)> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.dhcp_watchers.lock().unwrap().push(tx);
        rx
    }

    fn dhcp_discover(&self, detail: String) {
        self.set_state(State::Netbooting);
        self.dhcp_watchers.lock().unwrap().retain(|w| w.send((Instant::now(), detail.clone())).is_ok());
    }

    pub fn status(&self) -> TargetStatus {
        let g = self.status.lock().unwrap();
        TargetStatus {
            name: self.target.name.clone(),
            mac: fmt_mac(&self.target.mac),
            state: g.state,
            since: g.since.clone(),
            serial: self.hub.device.clone(),
            last_boot: g.last_boot.clone(),
            last_evidence: g.last_evidence.clone(),
            last_fetch: g.last_fetch.clone(),
            clients: self
                .hub
                .clients()
                .iter()
                .map(|c| {
                    format!("{} {}{} since {}", c.kind, c.peer, if c.read_only { " (read-only)" } else { "" }, c.since)
                })
                .collect(),
            console_log: self.hub.log_path().map(|p| p.display().to_string()),
            tcp_port: self.target.tcp_port,
            telnet_port: self.target.telnet_port,
        }
    }
}

/// All targets of the relay, and where their files and logs go.
pub struct Targets {
    pub list: Vec<Arc<TargetRuntime>>,
    pub tftp_root: PathBuf,
    pub log_dir: PathBuf,
}

impl Targets {
    pub fn get(&self, name: Option<&str>) -> Result<Arc<TargetRuntime>, crate::policy::PolicyError> {
        let table =
            crate::policy::targets::TargetTable { targets: self.list.iter().map(|t| t.target.clone()).collect() };
        let t = table.by_name(name)?;
        Ok(self.list.iter().find(|r| r.target.name == t.name).unwrap().clone())
    }
}

impl DhcpObserver for Targets {
    fn discover(&self, client: &Client) {
        if let Some(rt) = self.list.iter().find(|t| t.target.mac == client.mac) {
            let what = if client.is_chainloader() {
                "chainloader.0"
            } else if client.is_pxe() {
                "PXE ROM"
            } else {
                "client"
            };
            rt.dhcp_discover(format!(
                "from {} ({what}, vendor class {:?})",
                fmt_mac(&client.mac),
                client.vendor_class.as_deref().unwrap_or("")
            ));
        }
    }
}

impl crate::tftp::TftpObserver for Targets {
    /// A file is this target's if it is in its directory or is its config.
    fn sent(&self, peer: std::net::SocketAddr, path: &str, size: u64) {
        let path = path.trim_start_matches('/');
        let Some(rt) = self
            .list
            .iter()
            .find(|t| path.starts_with(&format!("{}/", t.target.dir())) || path == t.target.config_file())
        else {
            return;
        };
        tracing::info!(
            target: "target",
            target_name = %rt.target.name,
            client = %peer.ip(),
            file = %path,
            bytes = size,
            "fetched by TFTP"
        );
        rt.status.lock().unwrap().last_fetch = Some(format!("{} {path} ({size} bytes, to {})", utc_now(), peer.ip()));
    }
}
