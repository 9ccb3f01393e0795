//! The relay daemon (`target/release/relay`, from `scripts/build`) running
//! inside a test's network namespace, with its log in a file the test reads.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::NetNs;

/// The relay binary built by `scripts/build`.
pub fn relay_bin() -> PathBuf {
    let p = crate::repo_root().join("target/release/relay");
    assert!(p.exists(), "{} is missing: run scripts/build first", p.display());
    p
}

/// The relay's log filter in the tests: every debug line. The relay's
/// events carry their subsystem as target (`dhcp`, `tftp`, ...), so a
/// filter on the crate's name (`relay=debug`) would no longer match them.
const RELAY_LOG: &str = "debug";

/// A `relay` command line run inside `ns`.
pub fn relay_command(ns: &NetNs, args: &[&str]) -> Command {
    let mut c = ns.command(relay_bin().to_str().unwrap());
    c.args(args).env("RELAY_LOG", RELAY_LOG);
    c
}

/// `relay serve` zero config on a test namespace's bridge: `--interface br0
/// --tftp-root ROOT --state-dir STATE`, then `extra` (`--http-port 8080`,
/// `--config FILE`, ...).
pub fn serve_args<'a>(root: &'a Path, state: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["serve", "--interface", "br0", "--tftp-root", root.to_str().unwrap()];
    v.extend(["--state-dir", state.to_str().unwrap()]);
    v.extend_from_slice(extra);
    v
}

/// A relay serving in the namespace until the namespace is dropped (or
/// `stop` is called).
pub struct Relayd {
    pub log: PathBuf,
    pid: u32,
    _dir: tempfile::TempDir,
}

/// SIGKILL to `pid` (a daemon a test spawned), then a bounded wait until
/// it is dead with every descriptor closed: gone, or a zombie whose parent
/// (the namespace's owner) has not reaped it yet, with no thread left (the
/// leader shows Z while its other threads still exit, holding the files).
pub fn kill_and_wait(pid: u32) {
    // SAFETY: kill(2) on a pid we spawned; harmless if it has exited.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) STATE ...: the state follows the last ')'.
        let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("X");
        let open = |dir: &str| std::fs::read_dir(format!("/proc/{pid}/{dir}")).map(|d| d.count()).unwrap_or(0);
        if matches!(state, "Z" | "X") && open("fd") == 0 && open("task") <= 1 {
            return;
        }
        assert!(Instant::now() < deadline, "pid {pid} still runs 10 s after SIGKILL ({state})");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Relayd {
    /// Starts `relay <args>` and waits until it says it is serving.
    pub fn start(ns: &mut NetNs, args: &[&str]) -> Relayd {
        let dir = tempfile::Builder::new().prefix("netboot-relay-").tempdir().unwrap();
        let log = dir.path().join("relay.log");
        let f = std::fs::File::create(&log).unwrap();
        let mut cmd = relay_command(ns, args);
        cmd.stdout(Stdio::from(f.try_clone().unwrap())).stderr(Stdio::from(f));
        let child = ns.spawn(cmd);
        let pid = child.id();
        let r = Relayd { log, pid, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = r.text();
            if text.contains("relay: full DHCP interface=") || text.contains("relay: proxyDHCP interface=") {
                return r;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("relay exited ({st}) before serving:\n{text}");
            }
            assert!(Instant::now() < deadline, "relay did not start within 30 s:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line matching `pattern` and returns it.
    pub fn expect_log(&self, pattern: &str, timeout: Duration) -> String {
        let re = regex::Regex::new(pattern).unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            if let Some(line) = text.lines().find(|l| re.is_match(l)) {
                return line.to_string();
            }
            assert!(Instant::now() < deadline, "no relay log line matches {pattern:?} within {timeout:?}:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the relay (SIGTERM to the `ip netns exec` process, which execs it).
    pub fn stop(&self) {
        // SAFETY: kill(2) on a pid we spawned; harmless if it has exited.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
    }
}

/// A file under `root` that PXELINUX needs, copied from the Debian packages.
pub fn install_pxelinux(root: &Path) {
    for (src, dst) in
        [("/usr/lib/PXELINUX/pxelinux.0", "pxelinux.0"), ("/usr/lib/syslinux/modules/bios/ldlinux.c32", "ldlinux.c32")]
    {
        std::fs::copy(src, root.join(dst))
            .unwrap_or_else(|e| panic!("{src}: {e} (apt-get install pxelinux syslinux-common)"));
    }
}

/// `relay serve --config` with named targets, its control socket and logs
/// in a temporary directory; optionally inside a network namespace (the
/// control socket is a path, so clients run outside it).
/// relay.toml's `[[target]]` table for a virtual target the relay starts
/// itself (kind = "qemu"), named `name`, its NIC's MAC `mac`; `extra` are
/// further lines of the table (`reset = [...]`, `qemu = {...}`), each
/// ending in a newline.
pub fn qemu_target(name: &str, mac: &str, extra: &str) -> String {
    format!("[[target]]\nname = \"{name}\"\nkind = \"qemu\"\nmac = \"{mac}\"\n{extra}")
}

/// The `reset` line of the virtual-target tests: the serial command first,
/// its evidence (a DHCPDISCOVER) awaited `serial_wait` seconds, then QEMU's
/// own reset, whose wait is generous.
pub fn serial_then_qemu_reset(serial_wait: u32) -> String {
    format!("reset = [{{ method = \"serial\", wait = {serial_wait} }}, {{ method = \"qemu\", wait = 90 }}]\n")
}

pub struct RelayServe {
    pub dir: tempfile::TempDir,
    pub control: PathBuf,
    pub daemon_log: PathBuf,
    pub log_dir: PathBuf,
    child: Option<std::process::Child>,
    pid: u32,
}

/// What a client command did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RelayServe {
    /// `config` is the rest of relay.toml; `[serve]` gets control, log_dir
    /// and tftp_root (`tftp`) from here. Waits for "relay: ready".
    pub fn start(ns: Option<&mut NetNs>, tftp: &Path, serve_extra: &str, config: &str) -> RelayServe {
        let dir = tempfile::Builder::new().prefix("netboot-relayd-").tempdir().unwrap();
        let control = dir.path().join("control.sock");
        let log_dir = dir.path().join("logs");
        let daemon_log = dir.path().join("daemon.log");
        let cfg = dir.path().join("relay.toml");
        std::fs::write(
            &cfg,
            format!(
                "[serve]\ntftp_root = {:?}\ncontrol = {:?}\nlog_dir = {:?}\n{serve_extra}\n{config}",
                tftp.display().to_string(),
                control.display().to_string(),
                log_dir.display().to_string()
            ),
        )
        .unwrap();
        let mut r = RelayServe { control, daemon_log, log_dir, child: None, pid: 0, dir };
        r.spawn(ns);
        r
    }

    /// The state directory (leases, QEMU sockets): the same across restarts.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Starts the daemon with this config and state, its output appended
    /// to `daemon_log`, and waits for its (next) "relay: ready" line.
    fn spawn(&mut self, ns: Option<&mut NetNs>) {
        let ready_before = self.daemon_text().matches("relay: ready").count();
        let from = self.daemon_text().len();
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.daemon_log).unwrap();
        let (cfg, state) = (self.dir.path().join("relay.toml"), self.state_dir());
        let args = ["serve", "--config", cfg.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
        let mut cmd = match ns.as_ref() {
            Some(ns) => relay_command(ns, &args),
            None => {
                let mut c = Command::new(relay_bin());
                c.args(args).env("RELAY_LOG", RELAY_LOG);
                c
            }
        };
        cmd.stdout(Stdio::from(f.try_clone().unwrap())).stderr(Stdio::from(f));
        match ns {
            Some(ns) => self.pid = ns.spawn(cmd).id(),
            None => {
                let c = cmd.stdin(Stdio::null()).spawn().unwrap();
                self.pid = c.id();
                self.child = Some(c);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.daemon_text();
            if text.matches("relay: ready").count() > ready_before {
                return;
            }
            // The daemon's fatal error is the line "relay: <why>" (log lines
            // start with a timestamp).
            let new = &text[from.min(text.len())..];
            assert!(
                !new.lines().any(|l| l.starts_with("relay: ")),
                "relay serve (pid {}) did not start:\n{text}",
                self.pid
            );
            assert!(Instant::now() < deadline, "relay serve not ready within 60 s:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash or the OOM killer would end it: no cleanup runs.
    /// Returns once the process is gone (its sockets closed).
    pub fn kill(&mut self) {
        kill_and_wait(self.pid);
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        }
    }

    /// Starts the daemon again with the same config, state and log
    /// directories (after `kill`), as systemd's Restart= would.
    pub fn restart(&mut self, ns: Option<&mut NetNs>) {
        self.child = None;
        self.spawn(ns);
    }

    pub fn daemon_text(&self) -> String {
        std::fs::read_to_string(&self.daemon_log).unwrap_or_default()
    }

    /// Waits for a daemon log line after byte `from` matching `pattern`;
    /// returns the line.
    pub fn expect_daemon_log(&self, from: usize, pattern: &str, timeout: Duration) -> String {
        let re = regex::Regex::new(pattern).unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.daemon_text();
            if let Some(l) = text[from.min(text.len())..].lines().find(|l| re.is_match(l)) {
                return l.to_string();
            }
            assert!(Instant::now() < deadline, "no daemon log line matches /{pattern}/ within {timeout:?}:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client command (`relay boot ...`) talking to this daemon.
    pub fn client(&self, args: &[&str]) -> Command {
        let mut c = Command::new(relay_bin());
        c.args(args).env("RELAY_CONTROL", &self.control);
        c
    }

    /// Run a client to completion, `stdin` fed to it; panics after `timeout`.
    pub fn run(&self, args: &[&str], stdin: Option<Vec<u8>>, timeout: Duration) -> Ran {
        let mut c = self.client(args);
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(data) = stdin {
            let mut si = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = si.write_all(&data);
            });
        }
        let (out, err) = crate::collect_output(&mut child);
        let deadline = Instant::now() + timeout;
        let code = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`relay {}` did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}\ndaemon:\n{}",
                    args.join(" "),
                    out.join().unwrap(),
                    err.join().unwrap(),
                    self.daemon_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let r = Ran { code, stdout: out.join().unwrap(), stderr: err.join().unwrap() };
        eprintln!("--- relay {} -> {}\n{}", args.join(" "), r.code, r.stderr.trim_end());
        r
    }

    pub fn console_log(&self, target: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{target}.log"))).unwrap_or_default()
    }

    /// Wait until the target's console log (after byte `from`) matches.
    pub fn expect_console(&self, target: &str, from: usize, pattern: &str, timeout: Duration) {
        let re = regex::Regex::new(pattern).unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.console_log(target);
            if re.is_match(&t[from.min(t.len())..]) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "console of {target} never matched /{pattern}/ within {timeout:?}:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RelayServe {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- relay serve log ---\n{}\n---", self.daemon_text());
        }
    }
}

/// A pty pair in raw mode: a relay target's serial port (the slave's
/// path) and the test's end (the master), where the test plays the target.
/// The slave stays open in this process too, so the master never sees a
/// hangup while the relay opens or reopens it.
pub fn pty_pair() -> (std::fs::File, String) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty fills two descriptors that we then own.
    assert_eq!(unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) }, 0);
    // SAFETY: fresh descriptors from openpty, owned once each.
    let (master, slave) = unsafe { (std::fs::File::from(OwnedFd::from_raw_fd(m)), OwnedFd::from_raw_fd(s)) };
    let name = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())).unwrap();
    // SAFETY: plain termios calls on a descriptor we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut t), 0);
        libc::cfmakeraw(&mut t);
        assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t), 0);
    }
    std::mem::forget(slave);
    (master, name.display().to_string())
}
