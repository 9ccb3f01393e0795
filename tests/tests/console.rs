//! The relay as serial console hub, remote reboot and boot-test cycle,
//! against a real QEMU whose COM1 is a pty (`-serial pty`, the same kind of
//! device node as /dev/ttyS0), booting the reference kernel through
//! chainloader.0 on QEMU's user network.
//!
//! Run: `scripts/build && cargo test -p e2e --test console`.
//!
//! QEMU starts paused (`-S`) and is continued through its monitor only once
//! the hub (or the test's own reader) holds the pty, so no console byte is
//! lost: QEMU drops output while nobody has the pty open.

use e2e::{repo_root, tftp_root, write_file};
use regex::Regex;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Generous: TCG on a shared 2-core machine (the ROM alone takes ~6 s).
const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(60);

fn relay_bin() -> PathBuf {
    let p = repo_root().join("target/release/relay");
    assert!(p.exists(), "{} is missing: run scripts/build first", p.display());
    p
}

/// A growing byte stream (a console, a process's output) that tests wait on.
#[derive(Clone)]
struct Watched(Arc<(Mutex<(Vec<u8>, bool)>, Condvar)>);

impl Watched {
    fn spawn(mut r: impl Read + Send + 'static) -> Watched {
        let w = Watched(Arc::new((Mutex::new((vec![], false)), Condvar::new())));
        let w2 = w.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = r.read(&mut buf).unwrap_or(0);
                let mut g = w2.0 .0.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    g.1 = true;
                } else {
                    g.0.extend_from_slice(&buf[..n]);
                }
                w2.0 .1.notify_all();
                if n == 0 {
                    return;
                }
            }
        });
        w
    }

    fn wait_eof(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut g = self.0 .0.lock().unwrap();
        while !g.1 && Instant::now() < deadline {
            g = self.0 .1.wait_timeout(g, deadline - Instant::now()).unwrap().0;
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0 .0.lock().unwrap().0).into_owned()
    }

    fn try_expect(&self, pattern: &str, timeout: Duration) -> bool {
        let re = Regex::new(pattern).unwrap();
        let deadline = Instant::now() + timeout;
        let mut g = self.0 .0.lock().unwrap();
        loop {
            if re.is_match(&String::from_utf8_lossy(&g.0)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || g.1 {
                return false;
            }
            g = self.0 .1.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    fn expect(&self, pattern: &str, timeout: Duration) -> String {
        let re = Regex::new(pattern).unwrap();
        let deadline = Instant::now() + timeout;
        let mut g = self.0 .0.lock().unwrap();
        loop {
            if let Some(m) = re.find(&String::from_utf8_lossy(&g.0)) {
                return m.as_str().to_string();
            }
            let now = Instant::now();
            if now >= deadline || g.1 {
                panic!("timed out after {timeout:?} waiting for /{pattern}/; got:\n{}", String::from_utf8_lossy(&g.0));
            }
            g = self.0 .1.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

/// A QEMU whose COM1 is a pty, started paused.
struct PtyQemu {
    child: Child,
    pty: String,
    monitor: PathBuf,
    mon: Option<(UnixStream, Watched)>,
    dir: tempfile::TempDir,
}

impl PtyQemu {
    fn start(tftp: &Path, no_reboot: bool) -> PtyQemu {
        let dir = tempfile::Builder::new().prefix("netboot-console-").tempdir().unwrap();
        let monitor = dir.path().join("monitor.sock");
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", &e2e::qemu::accel(), "-m", "512", "-display", "none", "-nodefaults", "-vga", "std"])
            .args(["-boot", "n", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-S"])
            .args(["-monitor", &format!("unix:{},server=on,wait=off", monitor.display())])
            .args(["-serial", "pty"])
            .args(["-netdev", &format!("user,id=n0,tftp={},bootfile=chainloader.0", tftp.display())])
            .args(["-device", "e1000,netdev=n0"]);
        if no_reboot {
            // Like -no-reboot, but QEMU pauses instead of exiting: an exit
            // closes the pty master, and Linux then hangs up the slave and
            // flushes what the hub has not read yet (the acknowledgement
            // printed just before the reset). A real ttyS0 has no such race.
            cmd.args(["-action", "reboot=shutdown,shutdown=pause"]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start qemu-system-x86_64");
        // "char device redirected to /dev/pts/3 (label serial0)": QEMU 7.2
        // prints it on stdout (qemu_printf), others on stderr; read both.
        let (tx, rx) = mpsc::channel();
        let outputs: [Box<dyn Read + Send>; 2] =
            [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for out in outputs {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(p) = line.split("redirected to ").nth(1) {
                        let _ = tx.send(p.split_whitespace().next().unwrap_or("").to_string());
                    }
                    eprintln!("qemu: {line}");
                }
            });
        }
        let pty = match rx.recv_timeout(SHORT) {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("QEMU did not say where its pty is: {e}");
            }
        };
        PtyQemu { child, pty, monitor, mon: None, dir }
    }

    /// Start the paused machine; the monitor connection is kept (QEMU
    /// serves one monitor client at a time).
    fn cont(&mut self) {
        let deadline = Instant::now() + SHORT;
        let mut m = loop {
            match UnixStream::connect(&self.monitor) {
                Ok(m) => break m,
                Err(e) if Instant::now() > deadline => panic!("QEMU monitor: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        m.set_write_timeout(Some(SHORT)).unwrap();
        let w = Watched::spawn(m.try_clone().unwrap());
        m.write_all(b"cont\n").unwrap();
        // The monitor answers with a prompt after executing the command.
        w.expect(r"(?s)\(qemu\).*\(qemu\)", SHORT);
        self.mon = Some((m, w));
    }

    /// Wait until the guest has reset (see `start`: the VM is then paused
    /// with status "shutdown"), asking the monitor every 200 ms.
    fn wait_reset(&mut self, timeout: Duration) -> bool {
        let (m, w) = self.mon.as_mut().expect("cont first");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            m.write_all(b"info status\n").unwrap();
            if w.try_expect(r"VM status: paused \(shutdown\)", Duration::from_millis(200)) {
                return true;
            }
        }
        false
    }

}

impl Drop for PtyQemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_child(c: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st.code().unwrap_or(-1));
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A relay process; killed on drop.
struct Proc {
    child: Child,
    out: Watched,
    err: Watched,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(relay_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Watched::spawn(child.stdout.take().unwrap());
        let err = Watched::spawn(child.stderr.take().unwrap());
        Proc { child, out, err }
    }

    /// Exit status; panics with the output on timeout.
    fn finish(&mut self, timeout: Duration) -> i32 {
        match wait_child(&mut self.child, timeout) {
            Some(c) => {
                // All of its output, not just what the reader threads got so far.
                self.out.wait_eof(SHORT);
                self.err.wait_eof(SHORT);
                c
            }
            None => panic!("relay did not finish in {timeout:?}; stdout:\n{}\nstderr:\n{}", self.out.text(), self.err.text()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- relay stdout ---\n{}\n--- relay stderr ---\n{}", self.out.text(), self.err.text());
        }
    }
}

/// `relay console` on the machine's pty, with its socket accepting.
impl Drop for Hub {
    fn drop(&mut self) {
        self.print_log_if_failed();
    }
}

struct Hub {
    /// Kept for its Drop (kills the hub).
    _proc: Proc,
    socket: PathBuf,
    log: PathBuf,
}

impl Hub {
    fn start(q: &PtyQemu) -> Hub {
        let socket = q.dir.path().join("console.sock");
        let log = q.dir.path().join("logs/console.log");
        let proc = Proc::spawn(&[
            "console",
            "--serial",
            &q.pty,
            "--socket",
            socket.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ]);
        let deadline = Instant::now() + SHORT;
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "relay console never listened:\n{}", proc.err.text());
            std::thread::sleep(Duration::from_millis(20));
        }
        Hub { _proc: proc, socket, log }
    }

    /// A client of the hub: a raw socket with the replay header.
    fn client(&self, replay: usize) -> (UnixStream, Watched) {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.write_all(format!("\0RELAY replay={replay}\n").as_bytes()).unwrap();
        let w = Watched::spawn(s.try_clone().unwrap());
        (s, w)
    }

    fn print_log_if_failed(&self) {
        if std::thread::panicking() {
            eprintln!("--- hub log ---\n{}\n---", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
    }

    fn sock(&self) -> &str {
        self.socket.to_str().unwrap()
    }
}

const READY: &str = "kernel: serial console ready";

#[test]
fn console_hub_logs_boot_serves_two_clients_and_reboot_resets() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf\n");
    let mut q = PtyQemu::start(root.path(), true);
    let hub = Hub::start(&q);
    let (_a, seen_a) = hub.client(0);
    let (mut b, seen_b) = hub.client(0);
    q.cont();
    seen_a.expect("MBI-CHECK: ok", BOOT);
    seen_a.expect(READY, SHORT);
    seen_b.expect(READY, SHORT);
    // Keystrokes of one client reach the target; its echo reaches both.
    b.write_all(b"hello-from-b\r").unwrap();
    seen_a.expect("hello-from-b", SHORT);
    seen_b.expect("hello-from-b", SHORT);
    // A late client asking for replay gets the boot from the hub's memory.
    let (_c, seen_c) = hub.client(1 << 20);
    seen_c.expect(r"chainloader \d", SHORT);
    seen_c.expect("hello-from-b", SHORT);

    // The hub holds the port: a direct user is refused, not interleaved.
    let mut direct = Proc::spawn(&["reboot", "--serial", &q.pty, "--timeout", "2"]);
    assert_eq!(direct.finish(SHORT), 1);
    assert!(direct.err.text().contains("in use"), "{}", direct.err.text());
    attach_types_and_detaches(&hub, &seen_a);

    let mut r = Proc::spawn(&["reboot", "--socket", hub.sock(), "--timeout", "20"]);
    assert_eq!(r.finish(SHORT), 0, "stdout:\n{}\nstderr:\n{}", r.out.text(), r.err.text());
    assert!(r.out.text().contains("serial: reboot command received"), "{}", r.out.text());
    assert!(r.err.text().contains("acknowledged"), "{}", r.err.text());
    // The kernel's reset stops the machine (see PtyQemu::start).
    assert!(q.wait_reset(SHORT), "the reboot command did not reset the machine");
    seen_a.expect(r"kernel: reset: via port 0xCF9", SHORT);

    let log = std::fs::read_to_string(&hub.log).unwrap();
    let stamped = Regex::new(r"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z MBI-CHECK: ok").unwrap();
    assert!(stamped.is_match(&log), "no timestamped MBI-CHECK line in the log:\n{log}");
    for want in ["chainloader ", "hello-from-b", "serial: reboot command received, rebooting", "-- relay: console on"] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }
    drop(hub);
}

#[test]
fn boot_test_through_hub_reboots_and_sees_second_boot_pass() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf\n");
    let mut q = PtyQemu::start(root.path(), false);
    let hub = Hub::start(&q);
    let (_a, seen) = hub.client(0);
    q.cont();
    seen.expect(READY, BOOT);
    let mut t = Proc::spawn(&["boot-test", "--socket", hub.sock(), "--expect", "MBI-CHECK: ok", "--timeout", "180"]);
    let code = t.finish(BOOT + SHORT);
    eprintln!("boot-test: {}", t.err.text().trim());
    assert_eq!(code, 0, "stdout:\n{}\nstderr:\n{}", t.out.text(), t.err.text());
    assert!(Regex::new(r"PASS in [0-9.]+ s from reboot command to: MBI-CHECK: ok").unwrap().is_match(&t.err.text()));
    // The second boot went through the firmware and the chainloader again,
    // and the hub logged both boots.
    assert!(t.out.text().contains("chainloader "), "{}", t.out.text());
    let log = std::fs::read_to_string(&hub.log).unwrap();
    assert_eq!(log.matches("MBI-CHECK: ok").count(), 2, "{log}");
}

#[test]
fn reboot_of_hung_kernel_says_power_cycle_needed() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf hang\n");
    let mut q = PtyQemu::start(root.path(), true);
    let hub = Hub::start(&q);
    let (_a, seen) = hub.client(0);
    q.cont();
    seen.expect("hanging with interrupts off", BOOT);
    let mut r = Proc::spawn(&["reboot", "--socket", hub.sock(), "--timeout", "4"]);
    let code = r.finish(SHORT);
    let err = r.err.text();
    assert_eq!(code, 3, "stderr:\n{err}");
    for want in ["did not acknowledge", "hung with interrupts off", "no BMC", "power-cycled", "not even an echo"] {
        assert!(err.contains(want), "message lacks {want:?}:\n{err}");
    }
}

/// Directly on the serial device (no hub): a `--fail` pattern seen during
/// the second boot ends the test with status 1 and names the line.
#[test]
fn boot_test_on_serial_device_stops_at_fail_pattern() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf second-boot-marker\n");
    let mut q = PtyQemu::start(root.path(), false);
    {
        // Watch the first boot ourselves (no thread: no reader may be left
        // on the pty when the relay opens it), then let go of the pty.
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&q.pty).unwrap();
        make_raw(&f);
        q.cont();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + BOOT;
        while !String::from_utf8_lossy(&seen).contains(READY) {
            assert!(Instant::now() < deadline, "first boot not ready:\n{}", String::from_utf8_lossy(&seen));
            let n = f.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
    }
    let mut t = Proc::spawn(&[
        "boot-test",
        "--serial",
        &q.pty,
        "--expect",
        "MBI-CHECK: ok",
        "--fail",
        r#"MBI cmdline=".*second-boot-marker"#,
        "--timeout",
        "180",
    ]);
    let code = t.finish(BOOT + SHORT);
    assert_eq!(code, 1, "stdout:\n{}\nstderr:\n{}", t.out.text(), t.err.text());
    assert!(t.err.text().contains(r#"FAIL after"#) && t.err.text().contains("second-boot-marker"), "{}", t.err.text());
}

fn make_raw(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: plain termios calls on a descriptor we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        libc::cfmakeraw(&mut t);
        // Reads return after 1 s without data, so the wait stays bounded.
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 10;
        assert_eq!(libc::tcsetattr(fd, libc::TCSANOW, &t), 0);
    }
}

/// `relay attach` on a terminal (a pty pair here): raw mode, keystrokes to
/// the target, `Ctrl-]` `q` detaches and the terminal settings come back.
fn attach_types_and_detaches(hub: &Hub, other_client: &Watched) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty fills two descriptors that we then own.
        let rc = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: fresh descriptors from openpty, owned once each.
        unsafe { (std::fs::File::from(OwnedFd::from_raw_fd(m)), OwnedFd::from_raw_fd(s)) }
    };
    let cooked = lflag(&slave);
    assert!(cooked & libc::ICANON != 0 && cooked & libc::ECHO != 0);
    let mut child = Command::new(relay_bin())
        .args(["attach", "--socket", hub.sock(), "--replay-kib", "64"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .spawn()
        .unwrap();
    let screen = Watched::spawn(master.try_clone().unwrap());
    // The replay shows the boot, then the banner says how to leave.
    screen.expect(r"Ctrl-\] q detaches", SHORT);
    screen.expect("MBI-CHECK: ok", SHORT);
    assert_eq!(lflag(&slave) & (libc::ICANON | libc::ECHO), 0, "attach did not put the terminal in raw mode");
    master.write_all(b"typed-in-attach\r").unwrap();
    screen.expect(r"typed-in-attach\r?\n", SHORT);
    other_client.expect("typed-in-attach", SHORT);
    master.write_all(b"\x1dq").unwrap();
    let code = wait_child(&mut child, SHORT);
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(code, Some(0), "attach did not detach on Ctrl-] q:\n{}", screen.text());
    assert_eq!(lflag(&slave) & (libc::ICANON | libc::ECHO), cooked & (libc::ICANON | libc::ECHO), "terminal not restored");
    screen.expect("detached", SHORT);
}

fn lflag(fd: &impl std::os::fd::AsRawFd) -> libc::tcflag_t {
    // SAFETY: tcgetattr fills a termios we own for a descriptor we hold.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd.as_raw_fd(), &mut t), 0);
        t.c_lflag
    }
}

/// The default failure patterns: the next boot's kernel is missing, so the
/// chainloader's TFTP error (then its countdown) ends the test with 1.
#[test]
fn boot_test_default_fail_patterns_catch_missing_kernel() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf\n");
    let mut q = PtyQemu::start(root.path(), false);
    let hub = Hub::start(&q);
    let (_a, seen) = hub.client(0);
    q.cont();
    seen.expect(READY, BOOT);
    write_file(root.path(), "chainloader.cfg/default", "kernel /missing.elf\n");
    let mut t = Proc::spawn(&["boot-test", "--socket", hub.sock(), "--expect", "MBI-CHECK: ok", "--timeout", "180"]);
    let code = t.finish(BOOT + SHORT);
    let err = t.err.text();
    assert_eq!(code, 1, "stdout:\n{}\nstderr:\n{err}", t.out.text());
    assert!(Regex::new(r"FAIL after [0-9.]+ s: .*TFTP error 1 .*missing\.elf").unwrap().is_match(&err), "{err}");
}
