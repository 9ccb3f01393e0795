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
    };
    if let Err(e) = result {
        eprintln!("relay: {e:#}");
        std::process::exit(1);
    }
}
