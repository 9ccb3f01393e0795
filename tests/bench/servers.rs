//! The servers the bench boots from, each started for one boot and
//! stopped after it: dnsmasq in the two configurations the comparison
//! needs, `relay serve`, and Python's http.server on the host for QEMU's
//! user network.

use e2e::netns::NetNs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
pub struct Server {
    child: Child,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command, log: &Path) -> Server {
    let out = std::fs::File::create(log).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Server { child, log: log.to_path_buf() }
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "bench: {what} did not come up within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How dnsmasq is set up for GRUB 2.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum DnsmasqSetup {
    /// The original write-up's options: a range, TFTP, a boot file.
    Seed,
    /// The fair reference: option 60 "PXEClient" in the offer (the ROM
    /// then skips its wait for a ProxyDHCP offer), a router advertisement
    /// (it skips its wait for IPv6 configuration), and no ping before an
    /// offer.
    Tuned,
}

impl DnsmasqSetup {
    pub fn label(self) -> &'static str {
        match self {
            DnsmasqSetup::Seed => "dnsmasq (seed options)",
            DnsmasqSetup::Tuned => "dnsmasq (tuned)",
        }
    }
}

/// dnsmasq on the namespace's bridge, serving DHCP and TFTP from `root`
/// and giving the ROM `bootfile`. Its log records each file it sends.
pub fn dnsmasq(ns: &NetNs, setup: DnsmasqSetup, root: &Path, bootfile: &str, work: &Path) -> Server {
    let _ = std::fs::remove_file(work.join("dnsmasq.leases"));
    let mut cmd = e2e::dnsmasq::command(ns, root, &work.join("dnsmasq.leases"));
    cmd.arg(format!("--dhcp-boot={bootfile}")).arg(format!("--log-facility={}", work.join("dnsmasq.log").display()));
    if setup == DnsmasqSetup::Tuned {
        cmd.args(["--dhcp-option-force=60,PXEClient", "--no-ping", "--enable-ra", "--dhcp-range=fd77::,ra-only"]);
    }
    let _ = std::fs::remove_file(work.join("dnsmasq.log"));
    let mut s = spawn(cmd, &work.join("dnsmasq.out"));
    e2e::dnsmasq::wait_bound(ns);
    s.log = work.join("dnsmasq.log");
    s
}

/// The files dnsmasq's TFTP server sent, from its log ("sent PATH to ADDR").
pub fn dnsmasq_sent_files(log: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let re = regex::Regex::new(r"sent (\S+) to ").unwrap();
    re.captures_iter(&text).map(|c| PathBuf::from(&c[1])).collect()
}

/// `relay serve` on the bridge (zero config), by TFTP only or with HTTP.
pub fn relay(ns: &NetNs, root: &Path, http_port: Option<u16>, work: &Path) -> Server {
    let state = work.join("relay-state");
    let _ = std::fs::remove_dir_all(&state);
    let control = work.join("relay.sock");
    let port = http_port.map(|p| p.to_string());
    let mut extra = vec!["--probe-secs", "1", "--control", control.to_str().unwrap()];
    if let Some(p) = &port {
        extra.extend(["--http-port", p]);
    }
    let mut cmd = ns.command(e2e::relayd::relay_bin().to_str().unwrap());
    cmd.args(e2e::relayd::serve_args(root, &state, &extra)).env("RELAY_LOG", "info");
    let s = spawn(cmd, &work.join("relay.log"));
    let log = s.log.clone();
    wait_for("relay serve", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("relay: full DHCP interface="))
    });
    s
}

/// Python's http.server on the host's loopback, which QEMU's user network
/// reaches as 10.0.2.2: a server none of us wrote.
pub fn python_http(root: &Path, work: &Path) -> (Server, u16) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"]).arg(root).arg(port.to_string());
    let s = spawn(cmd, &work.join("python-http.log"));
    wait_for("python3 -m http.server", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (s, port)
}

/// Frames through the namespace's tap (both directions) so far.
pub fn tap_frames(ns: &NetNs) -> u64 {
    ["rx_packets", "tx_packets"]
        .iter()
        .map(|c| {
            let out = ns.command("cat").arg(format!("/sys/class/net/tap0/statistics/{c}")).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap_or(0)
        })
        .sum()
}
