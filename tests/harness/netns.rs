//! Network namespaces that a test creates for anything that serves DHCP, so
//! that no DHCP server ever answers on the machine's own interfaces.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn run(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}

/// A network namespace with a bridge `br0` (address `10.77.0.1/24`) and a
/// tap device `tap0` on it for QEMU. Dropped: the namespace and everything in
/// it is deleted, and processes spawned with `spawn` are killed.
pub struct NetNs {
    pub name: String,
    children: Vec<Child>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl NetNs {
    pub const HOST_ADDR: &'static str = "10.77.0.1";

    pub fn new() -> NetNs {
        let name = format!("nbt{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
        run(&["ip", "netns", "add", &name]);
        let ns = NetNs { name, children: vec![] };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        ns.exec(&["ip", "addr", "add", "10.77.0.1/24", "dev", "br0"]);
        ns.exec(&["ip", "link", "set", "br0", "up"]);
        ns.add_tap("tap0");
        ns
    }

    /// Another tap on the bridge (for a second QEMU, say).
    pub fn add_tap(&self, tap: &str) {
        self.exec(&["ip", "tuntap", "add", tap, "mode", "tap"]);
        self.exec(&["ip", "link", "set", tap, "master", "br0"]);
        self.exec(&["ip", "link", "set", tap, "up"]);
    }

    /// Run a command to completion inside the namespace; it must succeed.
    pub fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        run(&full);
    }

    /// A `Command` that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Whether a socket in the namespace is bound to UDP `port` (`ss`).
    pub fn udp_port_bound(&self, port: u16) -> bool {
        let out = self.command("ss").args(["-Hlun", &format!("sport = :{port}")]).output().unwrap();
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }

    /// Waits until a socket in the namespace is bound to UDP `port`, for
    /// `what` (the server that binds it) at most `timeout`, polling.
    pub fn wait_udp_port_bound(&self, port: u16, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.udp_port_bound(port) {
            assert!(Instant::now() < deadline, "{what} did not bind UDP port {port} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start a long-running process inside the namespace; killed on drop.
    pub fn spawn(&mut self, mut cmd: Command) -> &mut Child {
        let child = cmd.stdin(Stdio::null()).spawn().expect("spawn in netns");
        self.children.push(child);
        self.children.last_mut().unwrap()
    }
}

impl NetNs {
    /// Floods the bridge with UDP broadcasts (1400 bytes each, to
    /// 10.77.0.255:9, one every 100 us) for `dur`, from a thread that
    /// joins the namespace: frames every NIC on the link receives. Returns
    /// how many were sent. Bounded in time; nothing leaves the namespace.
    pub fn flood_broadcast(&self, dur: Duration) -> u64 {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on this thread only, with a valid namespace fd;
            // the thread ends after the flood.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            let s = std::net::UdpSocket::bind((Self::HOST_ADDR, 0)).expect("bind in the namespace");
            s.set_broadcast(true).unwrap();
            let buf = [0x5au8; 1400];
            let end = Instant::now() + dur;
            let mut sent = 0;
            while Instant::now() < end {
                if s.send_to(&buf, "10.77.0.255:9").is_ok() {
                    sent += 1;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            sent
        })
        .join()
        .expect("flood thread")
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).status();
    }
}
