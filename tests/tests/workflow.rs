//! The remote workflow end to end, as root: one `relay serve` in a
//! network namespace with two virtual targets (kind = "qemu": the relay
//! starts each QEMU, COM1 on a pty, NIC on a tap on the namespace's
//! bridge), serving DHCP and TFTP; every step is a client of its control
//! socket, as from a laptop over ssh.
//!
//! Run: `scripts/build && cargo nextest run --release -p e2e --test workflow`.

use std::time::Duration;

use e2e::netns::NetNs;
use e2e::relayd::{qemu_target, serial_then_qemu_reset, RelayServe};
use e2e::{dist, tftp_root, write_file};

/// Generous: TCG on a shared 2-core machine, two QEMUs at once.
const BOOT: Duration = Duration::from_secs(180);
const ALPHA_MAC: &str = "52:54:00:12:34:56";

fn targets() -> String {
    // serial first, then QMP; the serial wait is short (its evidence, a
    // DHCPDISCOVER, comes within seconds of a reset under QEMU), the QMP
    // reset's generous.
    let t = |name: &str, mac: &str, tap: &str| {
        qemu_target(name, mac, &(serial_then_qemu_reset(15) + &format!("qemu = {{ netdev = \"tap:{tap}\" }}\n")))
    };
    t("alpha", ALPHA_MAC, "tap0") + &t("beta", "52:54:00:12:34:57", "tap1")
}

fn kernel() -> Vec<u8> {
    std::fs::read(dist("kernel.elf")).unwrap()
}

#[test]
fn boot_reboot_escalate_and_two_targets_on_one_relay() {
    let root = tftp_root();
    // Until `relay boot` gives a target its own config, both boot the
    // reference kernel, which then idles.
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf\n");
    let mut ns = NetNs::new();
    ns.add_tap("tap1");
    let r = RelayServe::start(Some(&mut ns), root.path(), "interface = \"br0\"\nprobe_secs = 1\n", &targets());
    for t in ["alpha", "beta"] {
        r.expect_console(t, 0, "kernel: serial console ready", BOOT);
    }

    // Two targets, two kernels (the ELF64 one from stdin, the ELF32
    // variant from a file), each in its own directory with its own config.
    let k32 = dist("kernel32.elf");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            r.run(
                &["boot", "alpha", "--kernel", "-", "--cmdline", "noack marker-alpha", "--expect", "MBI-CHECK: ok"],
                Some(kernel()),
                BOOT,
            )
        });
        let b = s.spawn(|| {
            r.run(
                &[
                    "boot",
                    "beta",
                    "--kernel",
                    k32.to_str().unwrap(),
                    "--cmdline",
                    "marker-beta",
                    "--expect",
                    "MBI-CHECK: ok",
                ],
                None,
                BOOT,
            )
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.code, 0, "alpha:\n{}\n{}", a.stdout, a.stderr);
    assert_eq!(b.code, 0, "beta:\n{}\n{}", b.stdout, b.stderr);
    assert!(
        a.stdout.contains("config chainloader.cfg/01-52-54-00-12-34-56: kernel alpha/kernel noack marker-alpha"),
        "{}",
        a.stdout
    );
    assert!(
        a.stdout.contains(r#"MBI cmdline="noack marker-alpha""#) && !a.stdout.contains("marker-beta"),
        "{}",
        a.stdout
    );
    assert!(
        b.stdout.contains("config chainloader.cfg/01-52-54-00-12-34-57: kernel beta/kernel32.elf marker-beta"),
        "{}",
        b.stdout
    );
    assert!(b.stdout.contains(r#"MBI cmdline="marker-beta""#) && !b.stdout.contains("marker-alpha"), "{}", b.stdout);
    assert!(a.stderr.contains("PASS in") && a.stderr.contains("MBI-CHECK: ok"), "{}", a.stderr);
    // The boot's own log, named by target, time and checksum; the daemon says where.
    let log_line = a.stderr.lines().find(|l| l.contains("boot log: ")).expect("boot log path");
    let path = log_line.split("boot log: ").nth(1).unwrap().trim();
    assert!(regex::Regex::new(r"/boots/alpha-\d{8}T\d{6}-[0-9a-f]{12}\.log$").unwrap().is_match(path), "{path}");
    let boot_log = std::fs::read_to_string(path).unwrap();
    assert!(boot_log.contains("MBI-CHECK: ok") && boot_log.contains("PASS in"), "{boot_log}");
    assert!(r.daemon_text().contains(&format!("boot alpha: started log={path}")), "{}", r.daemon_text());

    // The noack kernel obeys ~~~k silently: judged by the PXE ROM's DISCOVER.
    let rb = r.run(&["reboot", "alpha"], None, BOOT);
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(rb.stderr.contains(&format!("(method serial): DHCPDISCOVER from {ALPHA_MAC}")), "{}", rb.stderr);
    assert!(!rb.stdout.contains("serial: reboot command received"), "{}", rb.stdout);
    r.expect_console(
        "alpha",
        0,
        r#"(?s)MBI cmdline="noack marker-alpha".*MBI cmdline="noack marker-alpha".*serial console ready"#,
        BOOT,
    );

    // A panic: exit 1, with the line that decided it.
    let p = r.run(
        &["boot", "alpha", "--kernel", "-", "--cmdline", "panic", "--expect", "serial console ready"],
        Some(kernel()),
        BOOT,
    );
    assert_eq!(p.code, 1, "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stderr.contains("FAIL after") && p.stderr.contains("kernel panic: requested by the 'panic' switch"),
        "{}",
        p.stderr
    );

    // The panicked kernel has interrupts off: ~~~k is not obeyed, the relay
    // moves on to QMP; the `hang` kernel then goes silent: exit 2.
    let h = r.run(
        &["boot", "alpha", "--kernel", "-", "--cmdline", "hang", "--expect", "serial console ready", "--silence", "8"],
        Some(kernel()),
        BOOT,
    );
    assert_eq!(h.code, 2, "{}\n{}", h.stdout, h.stderr);
    for want in [
        "serial: sent ~~~k 4 time(s)",
        "no new boot within 15 s",
        "qemu: QMP system_reset",
        "SILENCE: nothing on the console for 8 s",
        "hanging with interrupts off",
    ] {
        assert!(h.stderr.contains(want), "lacks {want:?}:\n{}", h.stderr);
    }

    // `relay reboot` of the hung kernel escalates from serial to qemu.
    let rb = r.run(&["reboot", "alpha"], None, BOOT);
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(
        rb.stderr.contains("serial: sent ~~~k 4 time(s)") && rb.stderr.contains("(method qemu): DHCPDISCOVER from"),
        "{}",
        rb.stderr
    );

    // With only the serial method, a hung target cannot be reset: exit 3,
    // saying what was tried and what was seen.
    r.expect_console("alpha", 0, r"(?s)kernel: hanging with interrupts off.*kernel: hanging with interrupts off", BOOT);
    let rb = r.run(&["reboot", "alpha", "--method", "serial"], None, BOOT);
    assert_eq!(rb.code, 3, "{}", rb.stderr);
    for want in
        ["showed no sign of a new boot", "serial: sent ~~~k 4 time(s)", "saw nothing", "no BMC", "power-cycled by hand"]
    {
        assert!(rb.stderr.contains(want), "lacks {want:?}:\n{}", rb.stderr);
    }

    let st = r.run(&["status"], None, Duration::from_secs(30));
    assert_eq!(st.code, 0);
    assert!(st.stdout.contains("alpha (52:54:00:12:34:56)") && st.stdout.contains("hung since"), "{}", st.stdout);
    assert!(st.stdout.contains("beta (52:54:00:12:34:57)") && st.stdout.contains("PASS in"), "{}", st.stdout);
    // TFTP asks the target table whose file it sent.
    let fetched =
        regex::Regex::new(r"last fetched by TFTP: \S+ beta/kernel32\.elf \(\d+ bytes, to 10\.77\.0\.\d+\)").unwrap();
    assert!(fetched.is_match(&st.stdout), "{}", st.stdout);
    drop(r);
}

/// While `relay boot` receives a 4 MiB kernel slowly, a TFTP client keeps
/// fetching the target's kernel from the relay: every fetch gets the old
/// file or the new one, whole. The target is a pty played by the test.
#[test]
fn a_boot_during_staging_never_gets_a_partial_file() {
    use std::io::{BufRead, BufReader, Read, Write};
    let (mut master, dev) = e2e::relayd::pty_pair();
    let root = tempfile::tempdir().unwrap();
    let old = vec![b'o'; 4 << 20];
    let new: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8).collect();
    write_file(root.path(), "desk/kernel", &old);
    let mut ns = NetNs::new();
    let r = RelayServe::start(
        Some(&mut ns),
        root.path(),
        "interface = \"br0\"\nprobe_secs = 1\n",
        &format!("[[target]]\nname = \"desk\"\nmac = \"52:54:00:00:00:01\"\nserial = {dev:?}\nreset = [{{ method = \"serial\", wait = 30 }}]\n"),
    );
    // The "target": answers ~~~k with a boot.
    let mut m2 = master.try_clone().unwrap();
    let target = std::thread::spawn(move || {
        let mut seen = vec![];
        let mut buf = [0u8; 256];
        while !seen.windows(4).any(|w| w == b"~~~k") {
            let n = m2.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        m2.write_all(b"\r\nchainloader 0.1.0\r\nbooting desk/kernel\r\nMBI-CHECK: ok\r\n").unwrap();
    });
    // The client side of `relay boot --kernel -`, sending its bytes slowly.
    let (control, new2) = (r.control.clone(), new.clone());
    let client = std::thread::spawn(move || {
        let mut s = std::os::unix::net::UnixStream::connect(control).unwrap();
        writeln!(
            s,
            r#"{{"op":"boot","target":"desk","kernel":{{"name":"-","size":{}}},"expect":"MBI-CHECK: ok"}}"#,
            new2.len()
        )
        .unwrap();
        for piece in new2.chunks(64 << 10) {
            s.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(60));
        }
        let mut events = String::new();
        for line in BufReader::new(s).lines() {
            let line = line.unwrap();
            events.push_str(&line);
            events.push('\n');
            if line.contains(r#""event":"done""#) {
                break;
            }
        }
        events
    });
    let dir = tempfile::tempdir().unwrap();
    let (mut olds, mut news, mut fetches) = (0, 0, 0);
    while !client.is_finished() || news == 0 {
        let out = dir.path().join(format!("k{fetches}"));
        fetches += 1;
        let st = ns
            .command("tftp")
            .args(["10.77.0.1", "-m", "binary", "-c", "get", "desk/kernel"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(st.status.success(), "tftp: {}", String::from_utf8_lossy(&st.stderr));
        let got = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        if got == old {
            olds += 1;
        } else if got == new {
            news += 1;
        } else {
            panic!("fetch {fetches} got a file of {} bytes that is neither the old kernel nor the new one", got.len());
        }
        assert!(fetches < 200, "staging never finished");
    }
    let events = client.join().unwrap();
    target.join().unwrap();
    eprintln!("{fetches} fetches: {olds} old, {news} new");
    assert!(olds > 0, "no fetch overlapped the staging (all {news} got the new file)");
    assert!(events.contains(r#""exit":0"#) && events.contains("PASS in"), "{events}");
    drop(master.flush());
}
