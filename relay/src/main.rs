//! `relay`: the host daemon and its clients. Thin: parses the command line
//! and calls one function per subcommand.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use relay::control::{self, Client, Event, FileSpec, Request};
use relay::target::TargetStatus;

#[derive(Parser)]
#[command(name = "relay", version, about = "Netboot, console and reboot of target machines with no BMC")]
struct Cli {
    /// The control socket of `relay serve` [default: $RELAY_CONTROL, else /run/relay/control.sock].
    #[arg(long, global = true)]
    control: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The daemon: DHCP/proxyDHCP and TFTP, every target's console, the control socket.
    Serve {
        /// relay.toml: [serve], [dhcp], [[host]], [[rule]], [[target]].
        #[arg(long)]
        config: Option<PathBuf>,
        /// The interface wired to the targets (never the site uplink).
        #[arg(long, short = 'i')]
        interface: Option<String>,
        /// Directory served by TFTP (chainloader.0, chainloader.cfg/, a directory per target).
        #[arg(long)]
        tftp_root: Option<PathBuf>,
        /// proxyDHCP beside the site's DHCP server: boot information only.
        #[arg(long)]
        proxy: bool,
        /// Serve full DHCP even when another DHCP server answers on the interface.
        #[arg(long)]
        force: bool,
        /// Directory for the lease file and QEMU sockets [default: /var/lib/relay].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Seconds to listen for another DHCP server before full mode.
        #[arg(long, default_value_t = 5.0)]
        probe_secs: f64,
        /// Do not answer IPv6 router solicitations.
        #[arg(long)]
        no_ra: bool,
        /// Also serve the TFTP root read-only over HTTP on this port, and
        /// point chainloader.0 at it (option 210): kernels then travel over
        /// TCP, many times faster than TFTP. The PXE ROM still gets
        /// chainloader.0 by TFTP.
        #[arg(long)]
        http_port: Option<u16>,
    },
    /// Interactive console of a target (replaces minicom). Ctrl-] q detaches.
    Attach {
        target: Option<String>,
        /// Watch only: what you type is not sent.
        #[arg(long)]
        read_only: bool,
        /// Show this many KiB of recent output first.
        #[arg(long, default_value_t = 4)]
        replay_kib: usize,
    },
    /// Reset a target with its reset methods in order; exit 0 only when it is seen booting again.
    Reboot {
        target: Option<String>,
        /// Use only this reset method (repeatable), e.g. --method serial.
        #[arg(long = "method")]
        methods: Vec<String>,
    },
    /// Stage a kernel, reset the target, stream its console: exit 0 expect, 1 fail, 2 timeout/silence, 3 no reset.
    Boot {
        target: Option<String>,
        /// The kernel, or - for stdin [default: the target's `kernel`].
        #[arg(long)]
        kernel: Option<String>,
        /// A module, FILE or FILE=STRING (repeatable).
        #[arg(long = "module")]
        modules: Vec<String>,
        #[arg(long)]
        cmdline: Option<String>,
        /// Regex of the console line that means success [default: the target's, else chainloader.0's hand-off].
        #[arg(long)]
        expect: Option<String>,
        /// Regex of a failure line (repeatable); default: panics, chainloader errors and its countdown.
        #[arg(long)]
        fail: Vec<String>,
        /// Seconds from the reset to the verdict [default 180].
        #[arg(long)]
        timeout: Option<f64>,
        /// Seconds without console output that end the boot with 2 [default 60].
        #[arg(long)]
        silence: Option<f64>,
        #[arg(long = "method")]
        methods: Vec<String>,
    },
    /// Each target's state, last boot and console clients.
    Status {
        target: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    relay::log::init(relay::log::Format::from_env());
    let Cli { control, cmd } = Cli::parse();
    let sock = control::socket_path(control.clone());
    let result = match cmd {
        Cmd::Serve { config, interface, tftp_root, proxy, force, state_dir, probe_secs, no_ra, http_port } => {
            relay::serve::serve(relay::serve::ServeOptions {
                interface,
                tftp_root,
                control,
                config,
                proxy,
                force,
                state_dir,
                probe_wait: Duration::from_secs_f64(probe_secs.max(0.0)),
                no_ra,
                http_port,
            })
            .map(|_| 0)
        }
        Cmd::Attach { target, read_only, replay_kib } => attach(&sock, target, read_only, replay_kib << 10),
        Cmd::Reboot { target, methods } => run_events(&sock, &Request::Reboot { target, methods }, vec![]),
        Cmd::Boot { target, kernel, modules, cmdline, expect, fail, timeout, silence, methods } => {
            boot(&sock, target, kernel, modules, cmdline, expect, fail, timeout, silence, methods)
        }
        Cmd::Status { target, json } => status(&sock, target, json),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("relay: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Send a request and print its events: console on stdout, the rest on
/// stderr. The exit status is the daemon's.
fn run_events(sock: &std::path::Path, req: &Request, mut payload: Vec<Box<dyn Read>>) -> Result<i32> {
    let mut c = Client::connect(sock)?;
    c.request(req, &mut payload)?;
    let mut out = std::io::stdout();
    let mut at_line_start = true;
    while let Some(e) = c.event()? {
        match e {
            Event::Console { data } => {
                at_line_start = data.ends_with('\n');
                let _ = out.write_all(data.as_bytes()).and_then(|_| out.flush());
            }
            Event::Info { text } => eprintln!("{}relay: {text}", if at_line_start { "" } else { "\n" }),
            Event::Done { exit, message } => {
                if !message.is_empty() {
                    eprintln!("{}relay: {message}", if at_line_start { "" } else { "\n" });
                }
                return Ok(exit);
            }
            Event::Attached { .. } | Event::Status { .. } => {}
        }
    }
    anyhow::bail!("the relay closed the connection before the end")
}

#[allow(clippy::too_many_arguments)]
fn boot(
    sock: &std::path::Path,
    target: Option<String>,
    kernel: Option<String>,
    modules: Vec<String>,
    cmdline: Option<String>,
    expect: Option<String>,
    fail: Vec<String>,
    timeout: Option<f64>,
    silence: Option<f64>,
    methods: Vec<String>,
) -> Result<i32> {
    let mut payload: Vec<Box<dyn Read>> = vec![];
    let mut file = |path: &str, string: Option<String>| -> Result<FileSpec> {
        if path == "-" {
            let mut buf = vec![];
            std::io::stdin().lock().read_to_end(&mut buf).context("reading the kernel from stdin")?;
            anyhow::ensure!(!buf.is_empty(), "--kernel -: nothing on stdin");
            let spec = FileSpec { name: "-".into(), size: buf.len() as u64, string };
            payload.push(Box::new(std::io::Cursor::new(buf)));
            return Ok(spec);
        }
        let f = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
        let size = f.metadata()?.len();
        payload.push(Box::new(f.take(size)));
        Ok(FileSpec { name: path.to_string(), size, string })
    };
    let kernel = kernel.map(|k| file(&k, None)).transpose()?;
    let mut mods = vec![];
    for m in &modules {
        let (path, string) = match m.split_once('=') {
            Some((p, s)) => (p, Some(s.to_string())),
            None => (m.as_str(), None),
        };
        anyhow::ensure!(path != "-", "--module -: only the kernel can come from stdin");
        mods.push(file(path, string)?);
    }
    let req = Request::Boot { target, kernel, modules: mods, cmdline, expect, fail, timeout, silence, methods };
    run_events(sock, &req, payload)
}

fn attach(sock: &std::path::Path, target: Option<String>, read_only: bool, replay: usize) -> Result<i32> {
    let mut c = Client::connect(sock)?;
    c.request(&Request::Attach { target: target.clone(), read_only, replay }, &mut [])?;
    match c.event()? {
        Some(Event::Attached { target: name, device }) => {
            let (pending, stream) = c.into_raw();
            let sock2 = sock.to_path_buf();
            let t2 = name.clone();
            let reboot: Box<dyn Fn() + Send + Sync> = Box::new(move || {
                let said = |s: &str| eprint!("\r\n[relay: {}]\r\n", s.replace('\n', "\r\n"));
                let r = (|| -> Result<()> {
                    let mut c = Client::connect(&sock2)?;
                    c.request(&Request::Reboot { target: Some(t2.clone()), methods: vec![] }, &mut [])?;
                    while let Some(e) = c.event()? {
                        match e {
                            Event::Info { text } => said(&text),
                            Event::Done { message, .. } => {
                                said(&message);
                                break;
                            }
                            _ => {}
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = r {
                    said(&format!("reboot failed: {e:#}"));
                }
            });
            let what = format!("{name} ({device}){}", if read_only { ", read-only" } else { "" });
            relay::console::attach::run(stream, pending, &what, if read_only { None } else { Some(reboot) })?;
            Ok(0)
        }
        Some(Event::Done { message, exit }) => {
            eprintln!("relay: {message}");
            Ok(exit.max(1))
        }
        other => anyhow::bail!("unexpected answer from the relay: {other:?}"),
    }
}

fn status(sock: &std::path::Path, target: Option<String>, json: bool) -> Result<i32> {
    let mut c = Client::connect(sock)?;
    c.request(&Request::Status, &mut [])?;
    while let Some(e) = c.event()? {
        match e {
            Event::Status { targets } => {
                let list: Vec<_> =
                    targets.into_iter().filter(|t| target.as_deref().is_none_or(|n| n == t.name)).collect();
                if let (Some(t), true) = (&target, list.is_empty()) {
                    anyhow::bail!("no target {t:?}");
                }
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                    continue;
                }
                list.iter().for_each(print_target);
            }
            Event::Done { exit, message } => {
                if !message.is_empty() {
                    eprintln!("relay: {message}");
                }
                return Ok(exit);
            }
            _ => {}
        }
    }
    Ok(0)
}

/// One target of `relay status`, for a person.
fn print_target(t: &TargetStatus) {
    let state = match t.state {
        relay::target::State::Unknown => "off/unknown",
        relay::target::State::Netbooting => "netbooting",
        relay::target::State::Running => "running",
        relay::target::State::Hung => "hung",
    };
    println!("{} ({}) on {}: {state} since {}", t.name, t.mac, t.serial, t.since);
    match &t.last_boot {
        Some(b) => println!(
            "  last boot {}: {} (sha256 {}) {:?}: {}\n  boot log {}",
            b.started,
            b.kernel,
            &b.sha256[..16.min(b.sha256.len())],
            b.cmdline,
            b.verdict,
            b.log
        ),
        None => println!("  last boot: none through this relay"),
    }
    if let Some(e) = &t.last_evidence {
        println!("  last reset: {e}");
    }
    if let Some(f) = &t.last_fetch {
        println!("  last fetched by TFTP: {f}");
    }
    print_console(t);
}

/// The console lines of `relay status`: ports, log, clients.
fn print_console(t: &TargetStatus) {
    let ports: Vec<String> =
        [t.tcp_port.map(|p| format!("raw TCP {p}")), t.telnet_port.map(|p| format!("telnet/RFC 2217 {p}"))]
            .into_iter()
            .flatten()
            .collect();
    if !ports.is_empty() {
        println!("  console ports: {}", ports.join(", "));
    }
    if let Some(l) = &t.console_log {
        println!("  console log {l}");
    }
    println!(
        "  console clients: {}",
        if t.clients.is_empty() { "none".to_string() } else { t.clients.len().to_string() }
    );
    for c in &t.clients {
        println!("    {c}");
    }
}
