//! The console and the reboot judgement on a virtual target with no DHCP
//! of ours: `relay serve` starts QEMU (kind = "qemu", COM1 on a pty, the
//! same kind of device node as /dev/ttyS0, QEMU's user network fetching
//! from the relay's TFTP root), so the only evidence of a new boot is on
//! the console. And the console hub's clients on a bare pty pair, where
//! the test itself plays the target.
//!
//! Run: `scripts/build && cargo nextest run --release -p e2e --test console`.

use e2e::relayd::{pty_pair, qemu_target, serial_then_qemu_reset, RelayServe};
use e2e::{dist, free_port, tftp_root, write_file};
use regex::Regex;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Generous: TCG on a shared 2-core machine (the ROM alone takes ~6 s).
const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(60);
const READY: &str = "kernel: serial console ready";

/// The bytes so far and whether the stream ended, with a wake-up for waiters.
type Stream = Arc<(Mutex<(Vec<u8>, bool)>, Condvar)>;

/// A growing byte stream (a console, a process's output) that tests wait on.
#[derive(Clone)]
struct Watched(Stream);

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

    fn expect_bytes(&self, want: &[u8], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut g = self.0 .0.lock().unwrap();
        while !g.0.windows(want.len()).any(|w| w == want) {
            let now = Instant::now();
            assert!(now < deadline && !g.1, "timed out waiting for bytes {want:?}; got {:?}", g.0);
            g = self.0 .1.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    fn expect_after(&self, from: usize, pattern: &str, timeout: Duration) {
        let re = Regex::new(pattern).unwrap();
        let deadline = Instant::now() + timeout;
        let mut g = self.0 .0.lock().unwrap();
        while !re.is_match(&String::from_utf8_lossy(&g.0[from.min(g.0.len())..])) {
            let now = Instant::now();
            assert!(now < deadline && !g.1, "timed out waiting for /{pattern}/");
            g = self.0 .1.wait_timeout(g, deadline - now).unwrap().0;
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

/// A console client speaking the control socket's `attach` directly (as
/// `socat` could): one JSON line, one `attached` line, then raw bytes.
fn attach_raw(control: &Path, target: &str, replay: usize, read_only: bool) -> (UnixStream, Watched) {
    let mut s = UnixStream::connect(control).unwrap();
    writeln!(s, r#"{{"op":"attach","target":"{target}","replay":{replay},"read_only":{read_only}}}"#).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains(r#""event":"attached""#), "{line}");
    // The replay may have arrived with the answer.
    let early = r.buffer().to_vec();
    (s, Watched::spawn(std::io::Cursor::new(early).chain(r.into_inner())))
}

fn serial_device(r: &RelayServe, target: &str) -> String {
    let st = r.run(&["status", target, "--json"], None, SHORT);
    let re = Regex::new(r#""serial": "([^"]+)""#).unwrap();
    re.captures(&st.stdout).unwrap_or_else(|| panic!("{}", st.stdout))[1].to_string()
}

#[test]
fn console_clients_reboot_and_boot_on_a_virtual_target() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf\n");
    let r =
        RelayServe::start(None, root.path(), "", &qemu_target("vm", "52:54:00:12:34:56", &serial_then_qemu_reset(20)));
    let (_a, seen_a) = attach_raw(&r.control, "vm", 1 << 20, false);
    let (mut b, seen_b) = attach_raw(&r.control, "vm", 0, false);
    seen_a.expect("MBI-CHECK: ok", BOOT);
    seen_a.expect(READY, BOOT);
    // Keystrokes of one client reach the target; its echo reaches both.
    b.write_all(b"hello-from-b\r").unwrap();
    seen_a.expect("hello-from-b", SHORT);
    seen_b.expect("hello-from-b", SHORT);
    // A late client asking for replay gets the boot from the hub's memory.
    let (_c, seen_c) = attach_raw(&r.control, "vm", 1 << 20, false);
    seen_c.expect(r"chainloader \d", SHORT);
    seen_c.expect("hello-from-b", SHORT);

    // The relay holds the port: nobody else can lock it and read half.
    let dev = serial_device(&r, "vm");
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&dev).unwrap();
    // SAFETY: flock on a descriptor we own, non-blocking.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, -1, "{dev} could be locked while the relay owns it");
    drop(f);
    attach_types_and_detaches(&r, &seen_a);

    // The reference kernel acknowledges ~~~k: that is evidence enough.
    let before_reboot = seen_a.text().len();
    let rb = r.run(&["reboot"], None, BOOT);
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(
        rb.stderr.contains(r#"(method serial): the kernel acknowledged: "serial: reboot command received"#),
        "{}",
        rb.stderr
    );
    // `reboot` returns on the acknowledgement, while the target is still
    // resetting: let that boot finish, so that `relay boot` below starts
    // from a running kernel rather than racing chainloader.0 for the config.
    seen_a.expect_after(before_reboot, r"(?s)kernel: reset: via port 0xCF9.*serial console ready", BOOT);

    // `relay boot`: a kernel from stdin that obeys ~~~k silently; judged
    // by chainloader.0's banner on the console (no DHCP of ours here).
    let kernel = std::fs::read(dist("kernel.elf")).unwrap();
    let bt = r.run(
        &["boot", "--kernel", "-", "--cmdline", "noack", "--expect", "MBI-CHECK: ok"],
        Some(kernel.clone()),
        BOOT,
    );
    assert_eq!(bt.code, 0, "{}\n{}", bt.stdout, bt.stderr);
    assert!(
        Regex::new(r"PASS in [0-9.]+ s from the reset to: MBI-CHECK: ok").unwrap().is_match(&bt.stderr),
        "{}",
        bt.stderr
    );
    assert!(bt.stdout.starts_with("chainloader ") || bt.stdout.contains("\nchainloader "), "{}", bt.stdout);
    seen_a.expect(r#"(?s)MBI cmdline="noack".*serial console ready"#, BOOT);
    let rb = r.run(&["reboot", "vm"], None, BOOT);
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(rb.stderr.contains(r#"(method serial): boot banner on the console: "~~~kchainloader "#), "{}", rb.stderr);
    assert!(!rb.stdout.contains("serial: reboot command received"), "{}", rb.stdout);

    // The default failure patterns: a file that is no kernel makes
    // chainloader.0 give up; the whole error line is reported.
    let junk = vec![0x5au8; 64 << 10];
    let bt = r.run(&["boot", "--kernel", "-", "--expect", "MBI-CHECK: ok"], Some(junk), BOOT);
    assert_eq!(bt.code, 1, "{}\n{}", bt.stdout, bt.stderr);
    assert!(
        Regex::new(r"FAIL after [0-9.]+ s: chainloader: .*no Multiboot2 header").unwrap().is_match(&bt.stderr),
        "{}",
        bt.stderr
    );

    let log = r.console_log("vm");
    let stamped = Regex::new(r"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z MBI-CHECK: ok").unwrap();
    assert!(stamped.is_match(&log), "no timestamped MBI-CHECK line in the log:\n{log}");
    assert!(log.matches("MBI-CHECK: ok").count() >= 3, "{log}");
    for want in [
        "hello-from-b",
        "typed-in-attach",
        "serial: reboot command received, rebooting",
        "-- relay: console of vm on",
        "-- relay: new boot after reset method serial",
    ] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }
}

#[test]
fn console_clients_stalled_live_telnet_read_only_and_reboot_evidence_on_a_pty() {
    let (master, dev) = pty_pair();
    let (raw_port, telnet_port) = (free_port(), free_port());
    let root = tempfile::tempdir().unwrap();
    // The "smart plug": a file the reset command appends to.
    let plug = root.path().join("plug.log");
    // As root (as in CI) the control socket also goes to a given group.
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    let r = RelayServe::start(
        None,
        root.path(),
        if as_root { "group = \"daemon\"\n" } else { "" },
        &format!(
            "[[target]]\nname = \"desk\"\nmac = \"52:54:00:00:00:01\"\nserial = {dev:?}\n\
             tcp_port = {raw_port}\ntelnet_port = {telnet_port}\n\
             kernel = {kernel:?}\ncmdline = \"from-config\"\nexpect = \"MBI-CHECK: ok\"\n\
             reset = [{{ method = \"dtr\", pulse_ms = 50 }}, \
                      {{ method = \"command\", run = \"echo power-cycle $RELAY_TARGET $RELAY_MAC >> {plug}; echo plug says ok\", wait = 8 }}, \
                      {{ method = \"serial\", wait = 8 }}]\n",
            plug = plug.display(),
            kernel = dist("kernel.elf").display().to_string()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&r.control).unwrap().permissions().mode() & 0o777, 0o660, "control socket mode");
    if as_root {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: getgrnam with a NUL-terminated name; read at once.
        let gid = unsafe { (*libc::getgrnam(c"daemon".as_ptr())).gr_gid };
        assert_eq!(std::fs::metadata(&r.control).unwrap().gid(), gid, "control socket group");
    }
    let target_sees = Watched::spawn(master.try_clone().unwrap());

    // A raw TCP client that never reads, with the smallest receive buffer.
    let stalled = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    stalled.set_recv_buffer_size(4096).unwrap();
    stalled.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], raw_port)).into()).unwrap();
    // A raw TCP client that reads.
    let live_raw = TcpStream::connect(("127.0.0.1", raw_port)).unwrap();
    let live_raw_sees = Watched::spawn(live_raw.try_clone().unwrap());
    // A telnet client doing what pyserial's rfc2217:// does first.
    let mut tn = TcpStream::connect(("127.0.0.1", telnet_port)).unwrap();
    let tn_sees = Watched::spawn(tn.try_clone().unwrap());
    tn.write_all(&[255, 251, 44, 255, 251, 0, 255, 253, 0, 255, 253, 3]).unwrap(); // WILL COM-PORT, WILL/DO BINARY, DO SGA
    tn.write_all(&[255, 250, 44, 1, 0, 0, 0x25, 0x80, 255, 240]).unwrap(); // SET-BAUDRATE 9600
    tn_sees.expect_bytes(&[255, 253, 44], SHORT); // DO COM-PORT
    tn_sees.expect_bytes(&[255, 250, 44, 101, 0, 0, 0x25, 0x80, 255, 240], SHORT); // applied: 9600
    tn.write_all(&[255, 250, 44, 2, 7, 255, 240]).unwrap(); // SET-DATASIZE 7
    tn_sees.expect_bytes(&[255, 250, 44, 102, 8, 255, 240], SHORT); // the size in force: 8
                                                                    // Read-only and read-write `relay attach`, typing through pipes.
    let mut ro = r
        .client(&["attach", "desk", "--read-only"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ro_sees = Watched::spawn(ro.stdout.take().unwrap());
    let mut rw = r
        .client(&["attach", "desk"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rw_sees = Watched::spawn(rw.stdout.take().unwrap());
    let deadline = Instant::now() + SHORT;
    while r.run(&["status", "desk"], None, SHORT).stdout.matches("since 20").count() < 6 {
        assert!(Instant::now() < deadline, "not all five clients attached");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Typing: the read-only client is refused, the others reach the target.
    ro.stdin.as_mut().unwrap().write_all(b"typed-read-only\r").unwrap();
    ro_sees.expect("read-only; input ignored", SHORT);
    rw.stdin.as_mut().unwrap().write_all(b"typed-read-write\r").unwrap();
    target_sees.expect("typed-read-write", SHORT);
    tn.write_all(b"typed-telnet\r\0").unwrap();
    target_sees.expect("typed-telnet\r", SHORT);

    // 8 MiB from the target, then a marker: every reading client gets it
    // all, the log too, while the stalled client is dropped.
    let line = [b'x'; 127];
    let mut w = master.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..(8 << 20) / 128 {
            w.write_all(&line).unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.write_all(b"end-of-flood\n").unwrap();
    });
    for (who, w) in
        [("raw TCP", &live_raw_sees), ("telnet", &tn_sees), ("read-only attach", &ro_sees), ("attach", &rw_sees)]
    {
        assert!(w.try_expect("end-of-flood", SHORT), "the {who} client did not get the whole flood");
    }
    writer.join().unwrap();
    assert!(!target_sees.text().contains("typed-read-only"), "a read-only client typed into the target");
    assert!(r.daemon_text().contains("dropped: it stopped reading"), "{}", r.daemon_text());
    r.expect_console("desk", 0, "end-of-flood", SHORT);
    assert!(r.console_log("desk").matches(&"x".repeat(127)).count() >= (8 << 20) / 128, "the log lost lines");
    drop(stalled);

    // Reboot: DTR on a pty cannot be pulsed (said clearly); the command
    // "power-cycles" the target, which then prints chainloader.0's banner:
    // evidence.
    let answer = {
        let (mut m, plug) = (master.try_clone().unwrap(), plug.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + SHORT;
            while !std::fs::read_to_string(&plug).unwrap_or_default().contains("power-cycle desk 52:54:00:00:00:01") {
                assert!(Instant::now() < deadline, "the reset command never ran");
                std::thread::sleep(Duration::from_millis(50));
            }
            m.write_all(b"\r\nchainloader 0.1.0\r\n").unwrap();
        })
    };
    let rb = r.run(&["reboot", "desk"], None, SHORT);
    answer.join().unwrap();
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(rb.stderr.contains("cannot drive DTR on") && rb.stderr.contains("no modem-control lines"), "{}", rb.stderr);
    assert!(rb.stderr.contains("reset command: plug says ok"), "{}", rb.stderr);
    assert!(
        rb.stderr.contains(r#"(method command): boot banner on the console: "chainloader 0.1.0""#),
        "{}",
        rb.stderr
    );
    assert!(r.daemon_text().contains("target desk: reset command: plug says ok"), "{}", r.daemon_text());
    // ~~~k alone, answered by the banner.
    let mark = target_sees.text().len();
    let answer = {
        let (mut m, seen) = (master.try_clone().unwrap(), target_sees.clone());
        std::thread::spawn(move || {
            seen.expect_after(mark, "~~~k", SHORT);
            m.write_all(b"\r\nchainloader 0.1.0\r\n").unwrap();
        })
    };
    let rb = r.run(&["reboot", "desk", "--method", "serial"], None, SHORT);
    answer.join().unwrap();
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(rb.stderr.contains(r#"(method serial): boot banner on the console: "chainloader 0.1.0""#), "{}", rb.stderr);
    // `relay boot` with nothing but the target's defaults from relay.toml.
    let mark = target_sees.text().len();
    let answer = {
        let (mut m, seen) = (master.try_clone().unwrap(), target_sees.clone());
        std::thread::spawn(move || {
            seen.expect_after(mark, "~~~k", SHORT);
            m.write_all(b"\r\nchainloader 0.1.0\r\nbooting desk/kernel.elf\r\nMBI-CHECK: ok\r\n").unwrap();
        })
    };
    let bt = r.run(&["boot", "--method", "serial"], None, SHORT);
    answer.join().unwrap();
    assert_eq!(bt.code, 0, "{}", bt.stderr);
    let cfg = std::fs::read_to_string(root.path().join("chainloader.cfg/01-52-54-00-00-00-01")).unwrap();
    assert!(cfg.contains("kernel /desk/kernel.elf from-config"), "{cfg}");
    assert_eq!(std::fs::read(root.path().join("desk/kernel.elf")).unwrap(), std::fs::read(dist("kernel.elf")).unwrap());
    // Nobody answers: every method failed, and the report says so.
    let rb = r.run(&["reboot", "desk"], None, SHORT);
    assert_eq!(rb.code, 3, "{}", rb.stderr);
    for want in
        ["dtr: failed: cannot drive DTR", "command: ran `echo power-cycle", "serial: sent ~~~k 4 time(s)", "no BMC"]
    {
        assert!(rb.stderr.contains(want), "lacks {want:?}:\n{}", rb.stderr);
    }
    let st = r.run(&["status"], None, SHORT);
    assert!(
        st.stdout.contains("desk (52:54:00:00:00:01)")
            && st.stdout.contains("hung since")
            && st.stdout.contains("(read-only)"),
        "{}",
        st.stdout
    );
    let _ = ro.kill();
    let _ = rw.kill();
    let _ = ro.wait();
    let _ = rw.wait();
    drop(master);
}

/// `relay attach` on a terminal (a pty pair here): raw mode, keystrokes to
/// the target, `Ctrl-]` `q` detaches and the terminal settings come back.
fn attach_types_and_detaches(r: &RelayServe, other_client: &Watched) {
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
    let mut child = r
        .client(&["attach", "vm", "--replay-kib", "64"])
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
    // Ctrl-] r: the relay's reboot of this target, reported on the terminal.
    let mark = other_client.text().len();
    master.write_all(b"\x1dr").unwrap();
    screen.expect(r"is rebooting \(method serial\): the kernel acknowledged", BOOT);
    other_client.expect_after(mark, "(?s)chainloader .*serial console ready", BOOT);
    master.write_all(b"\x1dq").unwrap();
    let code = wait_child(&mut child, SHORT);
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(code, Some(0), "attach did not detach on Ctrl-] q:\n{}", screen.text());
    assert_eq!(
        lflag(&slave) & (libc::ICANON | libc::ECHO),
        cooked & (libc::ICANON | libc::ECHO),
        "terminal not restored"
    );
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

/// The log of a target's console across a burst at full speed (the
/// kernel's `burst` switch: 4,000 pseudo-random lines, then their CRC-32)
/// while one client attaches and never reads, others attach and detach
/// all the time, and the log rotates every 64 KiB: the log files, read
/// oldest first, hold every line in order, and the CRC matches.
#[test]
fn the_console_log_keeps_every_byte_of_a_burst_through_stalled_and_churning_clients_and_rotation() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf burst\n");
    let r = RelayServe::start(
        None,
        root.path(),
        "log_max_bytes = 65536\nlog_keep = 40\n",
        &qemu_target("vm", "52:54:00:12:34:56", ""),
    );
    // Attached, and never read from again: its socket buffer fills.
    let mut stalled = UnixStream::connect(&r.control).unwrap();
    writeln!(stalled, r#"{{"op":"attach","target":"vm","replay":1048576,"read_only":false}}"#).unwrap();
    let (_reader, seen) = attach_raw(&r.control, "vm", 1 << 20, true);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (control, done) = (r.control.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, _w) = attach_raw(&control, "vm", (n % 3) * 4096, n % 2 == 0);
                std::thread::sleep(Duration::from_millis(30));
                drop(s);
                n += 1;
            }
            n
        })
    };
    let end = seen.expect(r"BURST-END lines=\d+ crc32=[0-9a-f]{8}", BOOT);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let churned = churn.join().unwrap();
    let re = Regex::new(r"lines=(\d+) crc32=([0-9a-f]{8})").unwrap();
    let c = re.captures(&end).unwrap();
    let (lines, crc): (usize, String) = (c[1].parse().unwrap(), c[2].to_string());
    // The log may trail the live stream by a write, and the end line may
    // already be in a rotated file: read them all, oldest first, until it
    // is there (bounded).
    let read_logs = || {
        let (mut text, mut rotated) = (String::new(), 0);
        for k in (1..=40).rev() {
            if let Ok(t) = std::fs::read_to_string(r.log_dir.join(format!("vm.log.{k}"))) {
                text += &t;
                rotated += 1;
            }
        }
        text += &r.console_log("vm");
        (text, rotated)
    };
    let deadline = Instant::now() + SHORT;
    let (text, rotated) = loop {
        let (text, rotated) = read_logs();
        if text.contains("BURST-END") {
            break (text, rotated);
        }
        assert!(Instant::now() < deadline, "no log file holds BURST-END after {SHORT:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // How many files depends on how the bytes arrived in chunks (the log
    // rotates between writes); that it rotated at all is what matters.
    assert!(rotated >= 1, "the burst should have rotated the log, got {rotated} rotated files");
    let line = Regex::new(r"BURST (\d{6}) ([0-9a-f]{64})\r?$").unwrap();
    let mut sent = Vec::new();
    let mut next = 0usize;
    for l in text.lines() {
        if let Some(m) = line.captures(l) {
            assert_eq!(m[1].parse::<usize>().unwrap(), next, "line {next} missing or out of order");
            sent.extend_from_slice(format!("BURST {} {}\n", &m[1], &m[2]).as_bytes());
            next += 1;
        }
    }
    assert_eq!(next, lines, "the logs hold {next} of the {lines} burst lines");
    assert_eq!(
        format!("{:08x}", bootproto::gzip::crc32(&sent)),
        crc,
        "the logged burst differs from what the kernel sent"
    );
    println!(
        "burst: {lines} lines intact across {rotated} rotated logs, {churned} clients attached and left meanwhile"
    );
    drop(stalled);
}
