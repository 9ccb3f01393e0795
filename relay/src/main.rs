//! `relay`: the host daemon. Thin: parses the command line and hands over
//! to `relay::serve`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "relay", version, about = "DHCP/proxyDHCP + TFTP netboot server for one interface")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve DHCP (or proxyDHCP) and TFTP on one interface.
    Serve {
        /// The interface wired to the target (never the site uplink).
        #[arg(long, short = 'i')]
        interface: String,
        /// Directory served by TFTP (holds chainloader.0, the kernel, chainloader.cfg/).
        #[arg(long)]
        tftp_root: PathBuf,
        /// TOML config: pool, static hosts, tagging rules.
        #[arg(long)]
        config: Option<PathBuf>,
        /// proxyDHCP beside the site's DHCP server: boot information only.
        #[arg(long)]
        proxy: bool,
        /// Serve full DHCP even when another DHCP server answers on the interface.
        #[arg(long)]
        force: bool,
        /// Directory for the lease file [default: /var/lib/relay].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Seconds to listen for another DHCP server before full mode. dnsmasq
        /// and ISC dhcpd ping an address (1-3 s) before they offer it.
        #[arg(long, default_value_t = 5.0)]
        probe_secs: f64,
        /// Do not answer IPv6 router solicitations.
        #[arg(long)]
        no_ra: bool,
    },
    /// Own the serial port: log the target's console and share it with clients on a unix socket.
    Console {
        /// The serial device wired to the target's COM1.
        #[arg(long)]
        serial: String,
        #[arg(long, default_value_t = 115200)]
        baud: u32,
        #[arg(long, default_value = relay::console::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Append the console, timestamped per line, to this file.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Interactive console through the hub (replaces minicom). Ctrl-] q detaches.
    Attach {
        #[arg(long, default_value = relay::console::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Show this many KiB of recent output first.
        #[arg(long, default_value_t = 4)]
        replay_kib: usize,
    },
    /// Send the serial reboot command (~~~k) and wait for the kernel's acknowledgement.
    Reboot {
        /// A running hub's socket [default: /run/relay/console.sock unless --serial].
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Use the serial device directly (no hub running).
        #[arg(long)]
        serial: Option<String>,
        #[arg(long, default_value_t = 115200)]
        baud: u32,
        /// Seconds to wait for the acknowledgement (the command is sent up to 4 times within it).
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// The acknowledgement text (default: the reference kernel's).
        #[arg(long, default_value = relay::reboot::REBOOT_ACK)]
        ack: String,
    },
    /// Reboot the target and wait for the next boot to match --expect (exit 0), --fail (1) or time out (2).
    BootTest {
        #[arg(long)]
        socket: Option<PathBuf>,
        #[arg(long)]
        serial: Option<String>,
        #[arg(long, default_value_t = 115200)]
        baud: u32,
        /// Regex a console line must match for success, e.g. 'MBI-CHECK: ok'.
        #[arg(long)]
        expect: String,
        /// Regex for a failure line (repeatable); default: panics, chainloader errors and countdown.
        #[arg(long)]
        fail: Vec<String>,
        /// Seconds from the reboot command to the expected line.
        #[arg(long, default_value_t = 180.0)]
        timeout: f64,
        #[arg(long, default_value_t = 5.0)]
        reboot_timeout: f64,
        #[arg(long, default_value = relay::reboot::REBOOT_ACK)]
        ack: String,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let Cli { cmd } = Cli::parse();
    let result = match cmd {
        Cmd::Serve { interface, tftp_root, config, proxy, force, state_dir, probe_secs, no_ra } => {
            relay::serve::serve(relay::serve::ServeOptions {
                interface,
                tftp_root,
                config,
                proxy,
                force,
                state_dir,
                probe_wait: Duration::from_secs_f64(probe_secs.max(0.0)),
                no_ra,
            })
        }
        Cmd::Console { serial, baud, socket, log } => {
            relay::console::run(relay::console::ConsoleOptions { serial, baud, socket, log })
        }
        Cmd::Attach { socket, replay_kib } => relay::attach::run(&socket, replay_kib << 10),
        Cmd::Reboot { socket, serial, baud, timeout, ack } => {
            relay::reboot::run_reboot(socket.as_deref(), serial.as_deref(), baud, Duration::from_secs_f64(timeout.max(0.0)), &ack)
                .map(|code| std::process::exit(code))
        }
        Cmd::BootTest { socket, serial, baud, expect, fail, timeout, reboot_timeout, ack } => {
            relay::reboot::run_boot_test(relay::reboot::BootTestOptions {
                socket: socket.as_deref(),
                serial: serial.as_deref(),
                baud,
                expect,
                fail,
                timeout: Duration::from_secs_f64(timeout.max(0.0)),
                reboot_timeout: Duration::from_secs_f64(reboot_timeout.max(0.0)),
                ack,
            })
            .map(|code| std::process::exit(code))
        }
    };
    if let Err(e) = result {
        eprintln!("relay: {e:#}");
        std::process::exit(1);
    }
}
