//! A QEMU machine whose serial console the test reads and writes.

use regex::Regex;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The exit status QEMU gives for `outb(0xf4, v)` on isa-debug-exit: (v << 1) | 1.
pub fn debug_exit_status(v: u8) -> i32 {
    ((v as i32) << 1) | 1
}

/// How a QEMU machine is started.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub nic: String,
    pub memory_mib: u32,
    /// `-netdev` value; by default user networking with TFTP from `tftp_root`.
    pub netdev: String,
    /// Run inside this network namespace (via `ip netns exec`).
    pub netns: Option<String>,
    pub no_reboot: bool,
    pub extra: Vec<String>,
}

impl QemuConfig {
    /// QEMU's user network with its built-in TFTP server: the simplest way
    /// to netboot, as a user would try it first.
    pub fn user_net(tftp_root: &Path, bootfile: &str) -> Self {
        QemuConfig {
            nic: "e1000".into(),
            memory_mib: 512,
            netdev: format!("user,id=n0,tftp={},bootfile={bootfile}", tftp_root.display()),
            netns: None,
            no_reboot: true,
            extra: vec![],
        }
    }

    /// A tap device (inside `netns`) wired to whatever serves DHCP there.
    pub fn tap(netns: &str, tap: &str) -> Self {
        QemuConfig {
            nic: "e1000".into(),
            memory_mib: 512,
            netdev: format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
            netns: Some(netns.into()),
            no_reboot: true,
            extra: vec![],
        }
    }

    pub fn nic(mut self, model: &str) -> Self {
        self.nic = model.into();
        self
    }

    pub fn reboot_allowed(mut self) -> Self {
        self.no_reboot = false;
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.into());
        self
    }
}

struct Console {
    text: Mutex<(Vec<u8>, bool)>,
    changed: Condvar,
    /// Where a copy of every console byte goes (see `Qemu::tee_console`).
    tee: Mutex<Option<std::sync::mpsc::Sender<Vec<u8>>>>,
}

/// A running QEMU. Dropping it kills the process.
pub struct Qemu {
    child: Child,
    console: Arc<Console>,
    serial: UnixStream,
    _dir: tempfile::TempDir,
    pub log_path: PathBuf,
}

/// The accelerator: TCG unless NETBOOT_QEMU_ACCEL says otherwise (KVM hangs
/// in the iPXE ROM on the development machines).
pub fn accel() -> String {
    std::env::var("NETBOOT_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into())
}

impl Qemu {
    pub fn start(cfg: &QemuConfig) -> Qemu {
        let dir = tempfile::Builder::new().prefix("netboot-qemu-").tempdir().unwrap();
        let sock = dir.path().join("serial.sock");
        let log_path = dir.path().join("console.log");
        let mut args: Vec<String> = vec![];
        if let Some(ns) = &cfg.netns {
            args.extend(["ip", "netns", "exec", ns].map(String::from));
        }
        args.push("qemu-system-x86_64".into());
        args.extend(
            [
                "-accel",
                &accel(),
                "-m",
                &cfg.memory_mib.to_string(),
                "-display",
                "none",
                "-nodefaults",
                "-vga",
                "std",
                "-boot",
                "n",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-chardev",
                &format!("socket,id=s0,path={},server=on,wait=on", sock.display()),
                "-serial",
                "chardev:s0",
                "-netdev",
                &cfg.netdev,
                "-device",
                &format!("{},netdev=n0", cfg.nic),
            ]
            .map(String::from),
        );
        if cfg.no_reboot {
            args.push("-no-reboot".into());
        }
        args.extend(cfg.extra.iter().cloned());
        let child = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start qemu-system-x86_64 (is qemu-system-x86 installed?)");
        // QEMU waits (wait=on) for us to connect, so no console byte is lost.
        let deadline = Instant::now() + Duration::from_secs(20);
        let serial = loop {
            match UnixStream::connect(&sock) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("QEMU's serial socket never appeared: {e}"),
            }
        };
        let console =
            Arc::new(Console { text: Mutex::new((vec![], false)), changed: Condvar::new(), tee: Mutex::new(None) });
        let (c, mut reader, logp) = (console.clone(), serial.try_clone().unwrap(), log_path.clone());
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(logp).ok();
            let mut buf = [0u8; 4096];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let mut g = c.text.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    c.changed.notify_all();
                    return;
                }
                g.0.extend_from_slice(&buf[..n]);
                if let Some(t) = c.tee.lock().unwrap().as_ref() {
                    let _ = t.send(buf[..n].to_vec());
                }
                if let Some(l) = log.as_mut() {
                    let _ = l.write_all(&buf[..n]);
                }
                c.changed.notify_all();
            }
        });
        Qemu { child, console, serial, _dir: dir, log_path }
    }

    /// Copies the console (what it printed so far, then every byte as it
    /// comes) to `w`, from a thread of its own: a slow or blocked `w` (the
    /// master of a pty nobody reads, while the relay that owns its other
    /// end is down) never holds up the machine. Ends when QEMU does.
    pub fn tee_console(&self, mut w: impl Write + Send + 'static) {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        {
            let g = self.console.text.lock().unwrap();
            tx.send(g.0.clone()).unwrap();
            *self.console.tee.lock().unwrap() = Some(tx);
        }
        std::thread::spawn(move || {
            for b in rx {
                if w.write_all(&b).is_err() {
                    return;
                }
            }
        });
    }

    /// Everything the console has printed so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.console.text.lock().unwrap().0).into_owned()
    }

    /// Wait until the console output (from its beginning) matches `pattern`
    /// (a regex); return the first match. Panics with the whole console on
    /// timeout, so a failing test shows what the machine said.
    pub fn expect(&self, pattern: &str, timeout: Duration) -> String {
        self.try_expect(pattern, timeout).unwrap_or_else(|| {
            panic!("timed out after {timeout:?} waiting for /{pattern}/; console:\n{}", self.output())
        })
    }

    /// Like `expect`, but only looks at output after byte offset `from`.
    pub fn expect_after(&self, from: usize, pattern: &str, timeout: Duration) -> String {
        let re = Regex::new(pattern).unwrap();
        self.wait_until(timeout, |text| {
            let t = String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned();
            re.find(&t).map(|m| m.as_str().to_string())
        })
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for /{pattern}/; console:\n{}", self.output()))
    }

    /// Wait for the reference kernel's verdict line (`MBI-CHECK: ok` or
    /// `MBI-CHECK: FAIL <problem>`) and fail the test unless it is ok.
    /// Returns the console output up to then.
    pub fn expect_self_check_ok(&self, timeout: Duration) -> String {
        let verdict = self.expect("MBI-CHECK: (ok|FAIL.*)", timeout);
        let out = self.output();
        assert!(verdict == "MBI-CHECK: ok", "the kernel's self-check failed ({verdict}):\n{out}");
        out
    }

    pub fn try_expect(&self, pattern: &str, timeout: Duration) -> Option<String> {
        let re = Regex::new(pattern).unwrap();
        self.wait_until(timeout, |text| {
            let t = String::from_utf8_lossy(text);
            re.find(&t).map(|m| m.as_str().to_string())
        })
    }

    /// Byte length of the console output so far (a mark for `expect_after`).
    pub fn mark(&self) -> usize {
        self.console.text.lock().unwrap().0.len()
    }

    fn wait_until<T>(&self, timeout: Duration, mut f: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut g = self.console.text.lock().unwrap();
        loop {
            if let Some(v) = f(&g.0) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline || g.1 {
                return f(&g.0);
            }
            g = self.console.changed.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Type bytes into the target's serial port.
    pub fn send(&mut self, bytes: &[u8]) {
        self.serial.write_all(bytes).unwrap();
        self.serial.flush().unwrap();
    }

    /// Wait for QEMU to exit; its exit code, or None on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- console of the failed machine ---\n{}\n---", self.output());
        }
    }
}
