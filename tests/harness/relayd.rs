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

/// A `relay` command line run inside `ns`.
pub fn relay_command(ns: &NetNs, args: &[&str]) -> Command {
    let mut c = ns.command(relay_bin().to_str().unwrap());
    c.args(args).env("RELAY_LOG", "info,relay=debug");
    c
}

/// A relay serving in the namespace until the namespace is dropped (or
/// `stop` is called).
pub struct Relayd {
    pub log: PathBuf,
    pid: u32,
    _dir: tempfile::TempDir,
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
            if text.contains("relay: full DHCP on") || text.contains("relay: proxyDHCP on") {
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
    for (src, dst) in [
        ("/usr/lib/PXELINUX/pxelinux.0", "pxelinux.0"),
        ("/usr/lib/syslinux/modules/bios/ldlinux.c32", "ldlinux.c32"),
    ] {
        std::fs::copy(src, root.join(dst)).unwrap_or_else(|e| panic!("{src}: {e} (apt-get install pxelinux syslinux-common)"));
    }
}
