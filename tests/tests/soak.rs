//! Soak (`scripts/stress`, not `scripts/test`): `relay boot` runs 50
//! consecutive cycles of the reference kernel on one virtual target, the
//! `panic` switch on every fifth and the `hang` switch on every tenth (the
//! reset then escalates from the serial command to QEMU's). Every cycle
//! must end as its switch says (0: passed, 1: the kernel's failure line,
//! 2: silence), and the relay's memory must stay flat.

use std::time::{Duration, Instant};

use e2e::relayd::{qemu_target, serial_then_qemu_reset, RelayServe};
use e2e::{dist, tftp_root, write_file};

const CYCLE: Duration = Duration::from_secs(240);
const CYCLES: usize = 50;

/// The relay daemon's resident set (KiB), found by its config path.
fn relay_rss(r: &RelayServe) -> u64 {
    let cfg = r.dir.path().join("relay.toml");
    let cfg = cfg.to_str().unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(" serve ") && text.contains(cfg) {
            return e2e::proc_status_kib(&e.file_name().to_string_lossy(), "VmRSS:");
        }
    }
    panic!("relay serve with {cfg} is not running");
}

#[test]
#[ignore = "slow: scripts/stress"]
fn fifty_boot_cycles_with_panics_and_hangs() {
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", "kernel /kernel.elf\n");
    let r =
        RelayServe::start(None, root.path(), "", &qemu_target("vm", "52:54:00:12:34:56", &serial_then_qemu_reset(15)));
    r.expect_console("vm", 0, "kernel: serial console ready", CYCLE);
    let kernel = dist("kernel.elf");
    let rss_start = relay_rss(&r);
    let mut unexplained = vec![];
    let mut rss = vec![];
    for n in 1..=CYCLES {
        let (switch, want) = if n % 10 == 0 {
            ("hang", 2)
        } else if n % 5 == 0 {
            ("panic", 1)
        } else {
            ("", 0)
        };
        let t0 = Instant::now();
        let ran = r.run(
            &[
                "boot",
                "vm",
                "--kernel",
                kernel.to_str().unwrap(),
                "--cmdline",
                &format!("noack {switch}"),
                "--expect",
                "serial console ready",
                "--silence",
                "8",
            ],
            None,
            CYCLE,
        );
        let verdict =
            ran.stderr.lines().rev().find(|l| l.contains("PASS") || l.contains("FAIL")).unwrap_or("").to_string();
        let kib = relay_rss(&r);
        rss.push(kib);
        println!(
            "cycle {n:2} {:<6} exit {} (want {want}) in {:5.1} s, relay RSS {kib} KiB: {verdict}",
            if switch.is_empty() { "plain" } else { switch },
            ran.code,
            t0.elapsed().as_secs_f64()
        );
        if ran.code != want {
            unexplained.push(format!("cycle {n} ({switch}): exit {}\n{}\n{}", ran.code, ran.stdout, ran.stderr));
        }
    }
    let (first, last) = (rss[..5].iter().max().copied().unwrap(), rss[CYCLES - 5..].iter().max().copied().unwrap());
    println!("soak: {CYCLES} cycles, {} unexplained; relay RSS {rss_start} KiB at the start, max {first} KiB over the first 5 cycles, {last} KiB over the last 5", unexplained.len());
    assert!(unexplained.is_empty(), "{}", unexplained.join("\n---\n"));
    assert!(last <= first + 8 * 1024, "the relay's memory grew from {first} KiB to {last} KiB over {CYCLES} cycles");
}
